"""The capture page in a real browser: Debian's Chromium, headless, driven by Playwright (Python), with a
fake camera that plays a real clip, against a real idproof server (uvicorn on localhost) with a real
specimen passport of the same person and the real Verifier.

* A live clip (antispoof-zubair_real.mp4: the man smiles, then turns his head to his right, then to his
  left) → the page shows the three prompts one by one → the frames are sent, bound by the page's MAC →
  the server accepts. The server's challenge is made deterministic here (a scripted random source for
  the real ``ChallengeIssuer``) so that the clip's real actions fall in its windows: smile, turn_right,
  turn_left, in the clip's order.
* A still photo of the same man (one frame of the clip, repeated, with fresh sensor noise per frame, as
  a camera filming a print would give) → the same challenge is not met → refused.

Chromium comes from Debian (scripts/browser.sh installs it; CI runs it through scripts/test.sh); the
test skips, saying why, only where it is not there. A PNG screenshot of every step is written to
out/test-artifacts/ (gitignored).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED
from PIL import Image

from idproof.registry.handles import RegistryKey

CHROMIUM = os.environ.get("IDPROOF_CHROMIUM", "/usr/bin/chromium")
CLIP = SHARED / "video" / "antispoof-zubair_real.mp4"
ARTIFACTS = Path(__file__).resolve().parents[1] / "out" / "test-artifacts"
KEY = RegistryKey(b"idproof-capture-browser-registry-key")
# Leading frames of the clip played backwards before it (real frames of a still-neutral face), so its
# first action (the smile, 1.1 s into the clip) comes after the first prompt even if the page starts
# capturing up to ~1.9 s after the fake camera opened.
LEAD_IN = 15
PORTRAIT_FRAME = 190  # frontal, neutral: the specimen passport's portrait source

# The challenge the scripted random source makes the real issuer draw (see _Scripted):
#   smile [500, 4500] ms, turn_right [4900, 8500], turn_left [8500, 12500] (from the first captured frame)
# The clip with the lead-in has its events at ~2.1 s (smile), ~7.9 s (turn right), ~10.3 s (turn left)
# after the camera opens (measured with idproof.liveness.active on the clip), so every one falls in its
# window for a start-up delay of 0 to ~1.9 s between the camera opening and the first captured frame.
EXPECTED_STEPS = [("smile", 500, 4500), ("turn_right", 4900, 8500), ("turn_left", 8500, 12500)]

pytestmark = pytest.mark.skipif(not CLIP.is_file(), reason=f"the clip {CLIP} is not in ../shared/data")


# --- the browser --------------------------------------------------------------------------------------------


def _chromium_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[test]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium is not installed at {CHROMIUM} (as root: bash scripts/browser.sh, i.e. apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    problem = _chromium_problem()
    if problem:
        pytest.skip(problem)
    return CHROMIUM


# --- fake camera files (YUV4MPEG2, what Chromium's --use-file-for-fake-video-capture plays) -----------------


def write_y4m(path: Path, frames_bgr: list[np.ndarray], fps: int) -> Path:
    h, w = frames_bgr[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for fr in frames_bgr:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(fr, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def clip() -> tuple[list[np.ndarray], int]:
    cap = cv2.VideoCapture(str(CLIP))
    fps = round(cap.get(cv2.CAP_PROP_FPS)) or 15
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr)
    cap.release()
    assert len(frames) > PORTRAIT_FRAME, len(frames)
    return frames, fps


@pytest.fixture(scope="module")
def fake_cameras(clip, tmp_path_factory) -> dict[str, Path]:
    frames, fps = clip
    d = tmp_path_factory.mktemp("fake-camera")
    live = frames[LEAD_IN:0:-1] + frames  # frames 15..1 (backwards), then the whole clip
    rng = np.random.default_rng(7)
    photo = frames[0].astype(np.int16)
    still = [np.clip(photo + rng.normal(0, 2.0, photo.shape).round(), 0, 255).astype(np.uint8) for _ in range(3 * fps)]
    return {"live": write_y4m(d / "live.y4m", live, fps), "still": write_y4m(d / "still.y4m", still, fps)}


# --- the server -----------------------------------------------------------------------------------------------


class _Scripted:
    """A random source for ChallengeIssuer that draws the test's challenge: ``randbelow(n)`` returns the
    scripted values for that ``n`` in turn (0 where none is scripted); ``token_bytes`` stays random."""

    def __init__(self) -> None:
        self.script: dict[int, list[int]] = {}

    def reset(self) -> None:
        self.script = {
            1: [0],  # count (3, 3): three actions
            3: [2], 2: [1],  # Fisher-Yates keeps the order given: smile, turn_right, turn_left
            1001: [0],  # first prompt 500 ms after the first frame
            1501: [1500, 1100, 1500],  # windows of 4000, 3600, 4000 ms
            401: [400, 0, 0],  # pauses between windows
        }

    def randbelow(self, n: int) -> int:
        values = self.script.get(n)
        return values.pop(0) if values else 0

    @staticmethod
    def token_bytes(n: int) -> bytes:
        return os.urandom(n)


@pytest.fixture(scope="module")
def server(tmp_path_factory, clip):
    import uvicorn

    from idproof.document.specimen import make_specimen
    from idproof.liveness.challenge import ChallengeIssuer
    from idproof.service import Settings, create_app

    data = tmp_path_factory.mktemp("capture-server")
    portrait = cv2.cvtColor(clip[0][PORTRAIT_FRAME], cv2.COLOR_BGR2RGB)
    spec = make_specimen(portrait, kind="TD3", seed=11)
    buf = io.BytesIO()
    Image.fromarray(spec.image).save(buf, "PNG")

    def verifier(key, policy):
        from idproof.api import Verifier

        return Verifier(registry_key=key, document_policy=policy)

    app = create_app(Settings(registry_key=KEY, db_url=f"sqlite:///{data / 'registry.sqlite3'}", verifier_factory=verifier))
    rng = _Scripted()
    app.state.capture_issuer = ChallengeIssuer(os.urandom(32), rng=rng, ttl=timedelta(minutes=2),
                                               actions=tuple(a for a, _, _ in EXPECTED_STEPS), count=(3, 3))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, name="idproof-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the idproof server did not start"
        time.sleep(0.05)
    _, operator_key = app.state.idproof.registry.add_operator("capture-test-operator")
    yield {"base": f"http://127.0.0.1:{port}", "auth": {"Authorization": f"Bearer {operator_key}"},
           "document": buf.getvalue(), "rng": rng}
    srv.should_exit = True
    thread.join(30)


def open_session(server) -> dict:
    """What the operator does: a session, the document, then the capture link for the person."""
    import httpx

    with httpx.Client(base_url=server["base"], headers=server["auth"], timeout=60) as c:
        r = c.post("/v1/proofings")
        assert r.status_code == 201, r.text
        s = r.json()
        r = c.put(f"/v1/proofings/{s['session_id']}/document", content=server["document"],
                  headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        assert r.json()["has_document"] is True and r.json()["capture"] == "open"
    assert s["capture_url"].startswith(server["base"] + "/capture?s=")
    server["rng"].reset()
    return s


def operator_view(server, session_id: str) -> dict:
    import httpx

    r = httpx.get(f"{server['base']}/v1/proofings/{session_id}", headers=server["auth"], timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


# --- the run ---------------------------------------------------------------------------------------------------

FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage"]


def run_capture(chromium: str, camera: Path, url: str, name: str) -> tuple[dict, list[Path]]:
    """Drive the page like a person with a keyboard, screenshotting each step. Returns what the page
    finally shows and the screenshots."""
    from playwright.sync_api import sync_playwright

    shots: list[Path] = []

    def shot(page, step: str) -> None:
        p = ARTIFACTS / f"capture-{name}-{len(shots) + 1:02d}-{step}.png"
        page.screenshot(path=str(p))
        shots.append(p)

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        try:
            ctx = browser.new_context(viewport={"width": 375, "height": 667}, device_scale_factor=1,
                                      is_mobile=True, has_touch=True)
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            assert page.title() and page.get_attribute("body", "data-state") == "intro"
            assert "?s=" not in page.url, "the capture token is left in the address bar"
            assert page.evaluate("document.activeElement.id") == "start"
            shot(page, "intro")
            page.keyboard.press("Enter")  # "Start camera", by keyboard
            page.wait_for_selector("#begin:not([hidden])", timeout=20_000)
            page.wait_for_function("() => document.getElementById('hint').textContent.startsWith('Good')", timeout=10_000)
            assert page.evaluate("document.activeElement.id") == "begin"
            shot(page, "camera")
            page.keyboard.press("Enter")  # "I am ready"
            for i in range(1, len(EXPECTED_STEPS) + 1):
                page.wait_for_function(
                    f"() => document.body.dataset.step === '{i}' || document.body.dataset.state !== 'challenge'", timeout=20_000)
                if page.get_attribute("body", "data-state") != "challenge":
                    break
                shot(page, f"step{i}")
            page.wait_for_function("() => ['result', 'error'].includes(document.body.dataset.state)", timeout=90_000)
            shown = page.evaluate("""() => ({
                state: document.body.dataset.state,
                outcome: document.body.dataset.outcome || null,
                text: document.getElementById('outcome').textContent,
                error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
                reasons: [...document.querySelectorAll('#reasons li')].flatMap(li => li.dataset.reason.split(' ')),
                lines: [...document.querySelectorAll('#reasons li')].map(li => li.textContent),
                focused: document.activeElement.id,
                cookies: document.cookie,
                storage: localStorage.length + sessionStorage.length,
                liveRegions: [...document.querySelectorAll('[aria-live]')].map(e => e.id),
            })""")
            shown["idb"] = page.evaluate("() => indexedDB.databases().then(d => d.length)")
            shown["prompt_label"] = page.get_attribute("#progress", "id") and page.inner_text("#progress-label")
            shot(page, "result")
            shown["cookies_ctx"] = ctx.cookies()
        finally:
            browser.close()
    assert not errors, errors
    return shown, shots


def _assert_nothing_stored(shown: dict) -> None:
    assert shown["cookies"] == "" and shown["cookies_ctx"] == []
    assert shown["storage"] == 0 and shown["idb"] == 0
    assert {"prompt", "hint"} <= set(shown["liveRegions"])


def test_live_clip_reaches_an_accept_through_the_capture_page(chromium, fake_cameras, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("capture-live-*.png"):
        old.unlink()
    s = open_session(server)
    t0 = time.perf_counter()
    shown, shots = run_capture(chromium, fake_cameras["live"], s["capture_url"], "live")
    elapsed = time.perf_counter() - t0
    assert shown["state"] == "result", shown
    assert shown["outcome"] == "accept", shown
    assert shown["reasons"] == ["match:match"], shown
    assert shown["focused"] == "result"
    _assert_nothing_stored(shown)
    # the operator sees the decision (with the proofing id to bind numbers), the link is spent
    view = operator_view(server, s["session_id"])
    assert view["capture"] == "done" and view["has_document"] is False
    d = view["decision"]
    assert d["outcome"] == "accept" and d["proofing_id"] and d["person_token"]
    assert {"liveness_challenge", "capture_binding", "liveness_3d_motion", "face_match_1to1"} <= set(d["checks_performed"])
    import httpx

    again = httpx.get(s["capture_url"], timeout=30)
    assert again.status_code == 404 and "cannot be used" in again.text
    # a screenshot of every step
    assert [p.name.split("-", 3)[3] for p in shots] == ["intro.png", "camera.png", "step1.png", "step2.png", "step3.png", "result.png"]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in shots)
    print(f"live capture: {elapsed:.1f} s in the browser; screenshots in {ARTIFACTS}")


def test_still_photo_stream_is_refused_by_the_challenge(chromium, fake_cameras, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("capture-still-*.png"):
        old.unlink()
    s = open_session(server)
    shown, shots = run_capture(chromium, fake_cameras["still"], s["capture_url"], "still")
    assert shown["state"] == "result", shown
    assert shown["outcome"] in ("reject", "retry"), shown
    # none of the three actions happened: the challenge refuses it
    not_met = {r.rsplit(":", 1)[1] for r in shown["reasons"] if r.startswith("liveness:challenge_not_met:")}
    assert not_met == {a for a, _, _ in EXPECTED_STEPS}, shown
    _assert_nothing_stored(shown)
    view = operator_view(server, s["session_id"])
    assert view["capture"] == "done" and view["decision"]["outcome"] == shown["outcome"]
    assert view["decision"]["person_token"] is None
    assert all(p.is_file() and p.stat().st_size > 1000 for p in shots)
    assert shots[-1].name.endswith("result.png")


# --- the capture API without a browser (same server): the link's life, refusals, binding --------------------


def _challenge(c, capture_url: str) -> tuple[str, dict]:
    token = capture_url.rsplit("s=", 1)[1]
    r = c.post(f"/v1/capture/{token}/challenge")
    assert r.status_code == 200, r.text
    return token, r.json()


def _frames_form(ch: dict, frames: list[tuple[bytes, int]], mac: str) -> dict:
    import json

    return {"files": {
        "challenge": (None, ch["token"]), "mac": (None, mac),
        "meta": (None, json.dumps({"timestamps_ms": [t for _, t in frames], "sizes": [len(d) for d, _ in frames]})),
        "frames": ("frames.bin", b"".join(d for d, _ in frames), "application/octet-stream"),
    }}


def _jpeg_frames(clip, quality: int, n: int, step_ms: int) -> list[tuple[bytes, int]]:
    frames, _ = clip
    return [(cv2.imencode(".jpg", frames[i], [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes(), i * step_ms) for i in range(n)]


def test_capture_link_is_bound_to_its_session_and_used_once(server, clip):
    import base64

    import httpx

    from idproof.liveness.binding import compute_binding

    with httpx.Client(base_url=server["base"], timeout=60) as c:
        op = server["auth"]
        # a link before the document: the page opens, but no challenge is issued, and the link stays usable
        r = c.post("/v1/proofings", headers=op)
        assert r.status_code == 201, r.text
        s = r.json()
        assert s["capture"] == "open" and s["decision"] is None
        page = c.get(s["capture_url"])
        assert page.status_code == 200 and 'type="module"' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
        token = s["capture_url"].rsplit("s=", 1)[1]
        r = c.post(f"/v1/capture/{token}/challenge")
        assert r.status_code == 409 and r.json()["code"] == "document_missing", r.text
        r = c.put(f"/v1/proofings/{s['session_id']}/document", content=server["document"], headers=op | {"Content-Type": "image/png"})
        assert r.status_code == 200, r.text

        # one challenge per link; the page is gone once it is issued
        server["rng"].reset()
        token, ch = _challenge(c, s["capture_url"])
        assert [(a["action"], a["start_ms"], a["end_ms"]) for a in ch["actions"]] == EXPECTED_STEPS
        assert ch["duration_ms"] >= EXPECTED_STEPS[-1][2] and 85 <= ch["jpeg_quality"] <= 95
        assert len(base64.urlsafe_b64decode(ch["nonce"] + "==")) == 16 and ch["binding_key"]
        r = c.post(f"/v1/capture/{token}/challenge")
        assert r.status_code == 404 and r.json()["code"] == "capture_not_found"
        assert c.get(s["capture_url"]).status_code == 404
        assert c.get(f"/v1/proofings/{s['session_id']}", headers=op).json()["capture"] == "challenged"
        # meanwhile the operator cannot decide the session another way
        r = c.put(f"/v1/proofings/{s['session_id']}/selfie", content=b"\xff\xd8\xff", headers=op | {"Content-Type": "image/jpeg"})
        assert r.status_code == 409 and r.json()["code"] == "capture_in_progress"

        # another link's challenge is not accepted here (nor is this link spent by it)
        other = c.post("/v1/proofings", headers=op).json()
        c.put(f"/v1/proofings/{other['session_id']}/document", content=server["document"], headers=op | {"Content-Type": "image/png"})
        _, other_ch = _challenge(c, other["capture_url"])
        frames = _jpeg_frames(clip, ch["jpeg_quality"], 20, 100)
        r = c.put(f"/v1/capture/{token}/frames", **_frames_form(other_ch, frames, "00" * 32))
        assert r.status_code == 422 and r.json()["code"] == "challenge_mismatch", r.text

        # frames whose MAC does not verify: refused without being looked at; the link is then spent
        key, nonce = (base64.urlsafe_b64decode(ch[k] + "==") for k in ("binding_key", "nonce"))
        good = compute_binding(key, nonce, frames).hex()
        swapped = [frames[1], frames[0], *frames[2:]]
        r = c.put(f"/v1/capture/{token}/frames", **_frames_form(ch, swapped, good))
        assert r.status_code == 200, r.text
        assert r.json() == {"outcome": "reject", "reasons": [{"reason": "capture:binding_invalid", "text": r.json()["reasons"][0]["text"]}]}
        view = c.get(f"/v1/proofings/{s['session_id']}", headers=op).json()
        assert view["capture"] == "done" and view["has_document"] is False
        assert view["decision"]["outcome"] == "reject" and view["decision"]["person_token"] is None
        # the same submission again, or the genuine one now: the link is spent
        for body in (_frames_form(ch, swapped, good), _frames_form(ch, frames, good)):
            r = c.put(f"/v1/capture/{token}/frames", **body)
            assert r.status_code == 404 and r.json()["code"] == "capture_not_found", r.text

        # the other link, with a correct MAC but 13 s of frames sent right after its challenge was issued:
        # recorded before the challenge existed
        other_token = other["capture_url"].rsplit("s=", 1)[1]
        key, nonce = (base64.urlsafe_b64decode(other_ch[k] + "==") for k in ("binding_key", "nonce"))
        long = _jpeg_frames(clip, other_ch["jpeg_quality"], 130, 100)
        r = c.put(f"/v1/capture/{other_token}/frames", **_frames_form(other_ch, long, compute_binding(key, nonce, long).hex()))
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "reject"
        assert "capture:timing_impossible:longer_than_session" in [x["reason"] for x in r.json()["reasons"]], r.json()

        # malformed uploads are problems, not decisions
        third = c.post("/v1/proofings", headers=op).json()
        c.put(f"/v1/proofings/{third['session_id']}/document", content=server["document"], headers=op | {"Content-Type": "image/png"})
        t3, ch3 = _challenge(c, third["capture_url"])
        bad = _frames_form(ch3, frames, good)
        bad["files"]["meta"] = (None, '{"timestamps_ms": [0], "sizes": [5]}')
        r = c.put(f"/v1/capture/{t3}/frames", **bad)
        assert r.status_code == 422 and r.json()["code"] == "invalid_frames"
        r = c.put(f"/v1/capture/{t3}/frames", content=b"x", headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 415
        assert c.get(f"/v1/proofings/{third['session_id']}", headers=op).json()["capture"] == "challenged"

        # the page's own files only
        assert c.get("/capture/static/capture.js").headers["content-type"].startswith("text/javascript")
        assert c.get("/capture/static/capture.css").status_code == 200
        assert c.get("/capture/static/capture.html").status_code == 404
        assert c.get("/capture/static/..%2Fapp.py").status_code == 404
