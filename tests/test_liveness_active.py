"""Active liveness, signed challenges and capture binding, on the real clips in ../shared/data/video.

The clips have no challenge (they are expression / turning / replay recordings), so detections are
checked against labels.csv, and the challenge path is exercised by issuing a challenge whose actions and
windows fit a real clip. Synthetic attacks made here (and said so): a still photo "turned" by a 2D
perspective warp, and a sequence spliced from two people's clips.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache

import cv2
import numpy as np
import pytest
from conftest import FACES, SHARED, read_rgb
from PIL import Image

from idproof import Outcome
from idproof.liveness.active import (
    ActiveChecker,
    LivenessPolicy,
    _pad_finding,
    flat_turn_frames,
    match_actions,
)
from idproof.liveness.binding import (
    Submission,
    check_submission,
    compute_binding,
    verify_binding,
)
from idproof.liveness.challenge import (
    ACTIONS,
    ActionStep,
    ChallengeError,
    ChallengeIssuer,
    InMemoryUsedNonces,
)
from idproof.liveness.frames import (
    FrameError,
    FrameLimits,
    FrameSequence,
    decode_frames,
    read_frames,
    read_video,
)
from idproof.reasons import Reason

VIDEO = SHARED / "video"
KEY = b"k" * 32
LABELS = {r["file"]: r for r in csv.DictReader((VIDEO / "labels.csv").open())}


# --- helpers ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ScriptedRng:
    """``randbelow`` answers from a script (to issue a challenge that fits a recorded clip); bytes are random."""

    def __init__(self, values: list[int]) -> None:
        self.values = list(values)

    def randbelow(self, n: int) -> int:
        v = self.values.pop(0)
        assert 0 <= v < n
        return v

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)


def jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def submit(issuer: ChallengeIssuer, ch, frames: list[tuple[bytes, int]], **kw) -> Submission:
    return Submission(ch.token, tuple(frames), compute_binding(ch.binding_key, ch.nonce, frames), **kw)


@cache
def clip(name: str, fps: float = 10.0) -> FrameSequence:
    return read_video(VIDEO / name, FrameLimits(sample_fps=fps))


@pytest.fixture(scope="module")
def checker() -> ActiveChecker:
    return ActiveChecker(pad=None, policy=LivenessPolicy(analysis_fps=10))


@cache
def _checked(name: str):
    return ActiveChecker(pad=None, policy=LivenessPolicy(analysis_fps=10)).check(clip(name))


@pytest.fixture(scope="module")
def zubair(checker):
    return checker.check(clip("antispoof-zubair_real.mp4"))


@pytest.fixture(scope="module")
def small_frames() -> list[np.ndarray]:
    """20 real frames (640x360) for the binding tests; no model runs on them."""
    return [f.rgb for f in clip("antispoof-zubair_real.mp4").frames[:20]]


# --- challenge: issue, sign, redeem once ------------------------------------------------------------


def test_challenge_is_random_short_signed_and_redeemable_once():
    clock = Clock()
    issuer = ChallengeIssuer(KEY, clock=clock)
    ch = issuer.issue()
    assert 2 <= len(ch.steps) <= 3 and len(set(ch.actions)) == len(ch.actions) and set(ch.actions) <= set(ACTIONS)
    assert all(s.end_ms - s.start_ms >= 2500 for s in ch.steps)
    assert all(a.end_ms <= b.start_ms for a, b in zip(ch.steps, ch.steps[1:]))  # one prompt at a time, in order
    assert ch.expires_at - ch.issued_at == timedelta(seconds=90)
    client = ch.to_client()
    json.dumps(client)
    assert client["token"] == ch.token and len(client["binding_key"]) == 43 and 85 <= client["jpeg_quality"] <= 95
    assert len(ch.token) < 400  # compact

    got = issuer.redeem(ch.token)
    assert (got.id, got.nonce, got.steps, got.binding_key) == (ch.id, ch.nonce, ch.steps, ch.binding_key)
    with pytest.raises(ChallengeError) as e:
        issuer.redeem(ch.token)
    assert e.value.reason is Reason.REPLAYED

    # order, actions and timing vary between challenges
    many = [issuer.issue() for _ in range(60)]
    assert len({c.actions for c in many}) > 20
    assert len({c.steps[0].start_ms for c in many}) > 20
    assert len({c.nonce for c in many}) == 60


def test_expired_and_tampered_tokens_are_refused():
    clock = Clock()
    issuer = ChallengeIssuer(KEY, clock=clock)
    ch = issuer.issue()
    clock.advance(91)
    with pytest.raises(ChallengeError) as e:
        issuer.redeem(ch.token)
    assert e.value.reason is Reason.CHALLENGE_EXPIRED

    ch = issuer.issue()
    body, sig = ch.token.split(".")
    payload = json.loads(__import__("base64").urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["a"] = [["blink", 0, 60_000]]  # an easier challenge, under the old signature
    from idproof.liveness.challenge import _b64e, canonical_json

    forged = _b64e(canonical_json(payload)) + "." + sig
    other = ChallengeIssuer(b"x" * 32, clock=clock).issue().token  # signed by another key
    for bad in (forged, other, "", "abc", "a.b", "." * 5, "x" * 5000, ch.token[:-2] + "AA", ch.token + "A"):
        with pytest.raises(ChallengeError) as e:
            issuer.redeem(bad)
        assert e.value.reason is Reason.CHALLENGE_INVALID, bad[:20]
    issuer.redeem(ch.token)  # the genuine one still works (refusals did not spend it)

    with pytest.raises(ValueError):
        ChallengeIssuer(b"short")


def test_used_nonces_are_bounded_pruned_and_fail_closed():
    clock = Clock()
    store = InMemoryUsedNonces(max_entries=2, clock=clock)
    exp = clock.now + timedelta(seconds=90)
    assert store.use("a", exp) and store.use("b", exp)
    assert not store.use("a", exp)
    with pytest.raises(ChallengeError):  # full of live ids: refuse rather than forget one
        store.use("c", exp)
    clock.advance(120)
    assert store.use("c", clock.now + timedelta(seconds=90)) and len(store) == 1


# --- binding ----------------------------------------------------------------------------------------


def test_binding_mac_covers_every_frame_its_order_and_time(small_frames):
    issuer = ChallengeIssuer(KEY)
    ch = issuer.issue()
    frames = [(jpeg(f, 90), 100 * i) for i, f in enumerate(small_frames[:6])]
    mac = compute_binding(ch.binding_key, ch.nonce, frames)
    assert verify_binding(ch.binding_key, ch.nonce, frames, mac)
    swapped = frames[:2] + [(jpeg(small_frames[10], 90), 200)] + frames[3:]
    reordered = [frames[1], frames[0]] + frames[2:]
    retimed = frames[:3] + [(frames[3][0], 301)] + frames[4:]
    for bad in (swapped, reordered, retimed, frames[:-1], frames + [frames[-1]]):
        assert not verify_binding(ch.binding_key, ch.nonce, bad, mac)
    other = issuer.issue()  # the same frames bound to another challenge
    assert not verify_binding(other.binding_key, other.nonce, frames, mac)


def test_replayed_submission_and_swapped_frame_are_refused(small_frames):
    clock = Clock()
    issuer = ChallengeIssuer(KEY, clock=clock)
    ch = issuer.issue()
    frames = [(jpeg(f, ch.jpeg_quality), 100 * i) for i, f in enumerate(small_frames)]
    sub = submit(issuer, ch, frames)
    clock.advance(5)
    first = check_submission(issuer, sub)
    assert first.findings == () and first.frames is not None and len(first.frames) == 20
    second = check_submission(issuer, sub)
    assert [f.reason for f in second.findings] == ["capture:replayed"] and second.rejects and second.frames is None

    ch = issuer.issue()
    frames = [(jpeg(f, ch.jpeg_quality), 100 * i) for i, f in enumerate(small_frames)]
    good = submit(issuer, ch, frames)
    tampered = Submission(good.token, good.frames[:5] + ((frames[12][0], 500),) + good.frames[6:], good.mac)
    clock.advance(5)
    r = check_submission(issuer, tampered)
    assert [f.reason for f in r.findings] == ["capture:binding_invalid"] and r.rejects and r.frames is None
    # the token is spent: the untampered submission cannot follow it
    assert [f.reason for f in check_submission(issuer, good).findings] == ["capture:replayed"]
    # hex and base64url MACs are both accepted
    ch = issuer.issue()
    frames = [(jpeg(f, ch.jpeg_quality), 100 * i) for i, f in enumerate(small_frames[:8])]
    mac = compute_binding(ch.binding_key, ch.nonce, frames)
    assert check_submission(issuer, Submission(ch.token, tuple(frames), mac.hex())).findings == ()


def _stream(issuer, clock, small_frames, *, stamps=None, datas=None, advance=30.0):
    ch = issuer.issue()
    datas = datas or [jpeg(f, ch.jpeg_quality) for f in small_frames]
    stamps = stamps if stamps is not None else [100 * i for i in range(len(datas))]
    clock.advance(advance)
    return [f.reason for f in check_submission(issuer, submit(issuer, ch, list(zip(datas, stamps)))).findings], ch


def test_stream_checks_flag_duplicates_impossible_timing_and_reencoding(small_frames):
    clock = Clock()
    issuer = ChallengeIssuer(KEY, clock=clock)
    n = len(small_frames)
    base = [100 * i for i in range(n)]
    assert _stream(issuer, clock, small_frames)[0] == []
    assert _stream(issuer, clock, small_frames, stamps=base[:5] + [base[3]] + base[6:])[0] == ["capture:timing_impossible:non_monotonic"]
    assert _stream(issuer, clock, small_frames, stamps=[3 * i for i in range(n)])[0] == ["capture:timing_impossible:too_fast"]
    assert _stream(issuer, clock, small_frames, stamps=[700 * i for i in range(n)])[0] == ["capture:timing_irregular:too_slow"]
    assert _stream(issuer, clock, small_frames, stamps=base[:10] + [t + 3000 for t in base[10:]])[0] == ["capture:timing_irregular:gap"]
    # 7.6 s of frames, but the challenge was issued only 1 s before they arrived
    reasons, _ = _stream(issuer, clock, small_frames, stamps=[400 * i for i in range(n)], advance=1.0)
    assert reasons == ["capture:timing_impossible:longer_than_session"]

    still = [small_frames[0]] * 8 + list(small_frames[8:])
    reasons, _ = _stream(issuer, clock, still)
    assert reasons == ["capture:duplicate_frames"]

    # frames re-encoded at another quality than the page was told to use (85-95)
    reasons, _ = _stream(issuer, clock, small_frames, datas=[jpeg(f, 60) for f in small_frames])
    assert reasons == ["capture:reencoded:quality"]
    mixed = [jpeg(f, 90 if i < 10 else 70) for i, f in enumerate(small_frames)]  # two encoders spliced
    assert "capture:stream_inconsistent:quantisation" in _stream(issuer, clock, small_frames, datas=mixed)[0]
    resized = [jpeg(f if i % 2 else cv2.resize(f, (480, 270)), 90) for i, f in enumerate(small_frames)]
    assert "capture:stream_inconsistent:size" in _stream(issuer, clock, small_frames, datas=resized)[0]
    # every frame padded to the same byte length (a constant-size re-encoder or a synthetic stream)
    ch2 = issuer.issue()
    raw = [jpeg(f, ch2.jpeg_quality) for f in small_frames]
    longest = max(map(len, raw))
    padded = [d + b"\0" * (longest - len(d)) for d in raw]
    clock.advance(30)
    sub = submit(issuer, ch2, list(zip(padded, base)))
    assert [f.reason for f in check_submission(issuer, sub).findings] == ["capture:reencoded:constant_size"]


# --- frames -----------------------------------------------------------------------------------------


def test_frames_from_video_bytes_folder_and_limits(tmp_path, small_frames):
    data = (VIDEO / "cnnfd-lestari_real.mp4").read_bytes()
    seq = read_video(data, FrameLimits(sample_fps=10))
    assert 30 <= len(seq) <= 40 and seq.kind == "video" and seq.frames[0].t_ms == 0
    assert all(b.t_ms - a.t_ms >= 90 for a, b in zip(seq, seq.frames[1:]))
    assert max(seq.frames[0].rgb.shape[:2]) <= 1280
    short = read_video(VIDEO / "ffpp_original_519.mp4", FrameLimits(max_duration_s=2.0, sample_fps=None))
    assert short.truncated and short.duration_ms <= 2000
    with pytest.raises(FrameError):
        read_video(b"not a video" * 100)
    with pytest.raises(FrameError):
        read_video(data, FrameLimits(max_video_bytes=1000))

    for i, f in enumerate(small_frames[:5]):
        Image.fromarray(f).save(tmp_path / f"frame_{i:03d}_{1000 + 90 * i}ms.jpg")
    folder = read_frames(tmp_path)
    assert folder.kind == "folder" and [f.t_ms for f in folder] == [1000 + 90 * i for i in range(5)]
    (tmp_path / "frame_999.jpg").write_bytes((tmp_path / "frame_000_1000ms.jpg").read_bytes())
    assert read_frames(tmp_path, fps=20).frames[1].t_ms == 50  # names without times: nominal fps
    with pytest.raises(FrameError):
        decode_frames([(jpeg(small_frames[0], 90), 0)] * 5, FrameLimits(max_frames=4))
    with pytest.raises(FrameError):
        decode_frames([(b"garbage", 0)])


# --- actions on the labelled real clips --------------------------------------------------------------


LABELLED = ["blinkdetector_video.mp4", "antispoof-zubair_real.mp4", "liveportrait_d0.mp4", "liveportrait_d18.mp4", "sadtalker_WDA_AlexandriaOcasioCortez_000.mp4"]


@pytest.mark.parametrize("name", LABELLED)
def test_labelled_actions_are_detected(name):
    r = _checked(name)
    labelled = set(LABELS[name]["actions"].split(";")) - {"none", "nod"}
    seen = {e.action for e in r.actions_seen}
    assert labelled <= seen, (labelled, seen)
    if not labelled & {"turn_left", "turn_right"}:
        assert not seen & {"turn_left", "turn_right"}  # no turn where none was made
    assert r.passed, r.reasons  # live, one person, real motion: nothing to report offline
    assert r.timings_ms["per_frame"] < 150


def test_blinks_are_counted_as_events():
    blinks = [e for e in _checked("blinkdetector_video.mp4").actions_seen if e.action == "blink"]
    assert len(blinks) >= 4  # "repeated blinks" in a 14 s clip
    assert sum(e.end_ms is not None for e in blinks) >= len(blinks) - 1  # closed, then open again


def test_order_of_requested_actions_matters(zubair):
    turns = [e for e in zubair.actions_seen if e.action.startswith("turn")]
    first, second = turns[0].action, next(e.action for e in turns if e.action != turns[0].action)
    ok = match_actions(zubair.actions_seen, [ActionStep("smile", 0, 10**9), ActionStep(first, 0, 10**9), ActionStep(second, 0, 10**9)])
    assert all(ok)
    reverse = match_actions(zubair.actions_seen, [ActionStep(second, 0, 10**9), ActionStep(first, 0, 10**9)])
    assert reverse[0] is not None and reverse[1] is None  # one turn each way: the reverse order is not there
    early = match_actions(zubair.actions_seen, [ActionStep(first, 0, int(turns[0].onset_ms) - 1000)])
    assert early == [None]  # made, but after its window closed


@pytest.mark.parametrize("name", ["antispoof-zubair_fake.mp4", "cnnfd-lestari_fake.mp4"])
def test_replayed_photo_on_a_screen_does_not_pass_a_turn_challenge(checker, name):
    r = checker.check(clip(name), actions=["turn_left"])
    assert not r.passed and "liveness:challenge_not_met:turn_left" in r.reasons
    assert not any(e.action.startswith("turn") for e in r.actions_seen)  # no turn either way
    for turn in ("turn_left", "turn_right"):
        assert match_actions(r.actions_seen, [ActionStep(turn, 0, 10**9)]) == [None]


def test_real_turning_head_has_parallax(zubair):
    assert zubair.parallax is not None and zubair.parallax >= 0.6
    assert "liveness:flat_motion" not in zubair.reasons
    assert zubair.same_face_min_score is not None and zubair.same_face_min_score > 0.3


def test_photo_turned_by_a_2d_warp_is_flat_motion(checker):
    """Synthetic: obama.jpg warped about its vertical axis, 0 → 35 → -35 → 0 degrees."""
    photo = read_rgb(FACES / "face_recognition/obama/obama.jpg")
    photo = cv2.resize(photo, (640, round(640 * photo.shape[0] / photo.shape[1])))
    r = checker.check(flat_turn_frames(photo, max_deg=35, n=30), actions=["turn_left", "turn_right"])
    assert "liveness:flat_motion" in r.reasons and r.parallax < 0.5, (r.parallax, r.cues)
    assert not r.passed and any(f.rejects for f in r.findings)
    assert {"liveness:challenge_not_met:turn_left", "liveness:challenge_not_met:turn_right"} <= set(r.reasons)


def _canvas(rgb: np.ndarray, size=(512, 640)) -> np.ndarray:
    out = np.zeros((*size, 3), np.uint8)
    h, w = rgb.shape[:2]
    s = min(size[0] / h, size[1] / w)
    small = cv2.resize(rgb, (round(w * s), round(h * s)))
    y, x = (size[0] - small.shape[0]) // 2, (size[1] - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def test_splice_of_two_people_is_face_changed(checker):
    """Synthetic: 3 s of one person's clip followed by 3 s of another's."""
    a = [f.rgb for f in clip("antispoof-zubair_real.mp4").frames[:30]]
    b = [f.rgb for f in clip("liveportrait_d0.mp4").frames[:30]]
    seq = FrameSequence.from_arrays([_canvas(x) for x in a + b], fps=10)
    portrait = checker.engine.analyze(_canvas(a[5]), "portrait")
    r = checker.check(seq, portrait=portrait)
    assert "liveness:face_changed" in r.reasons and not r.passed
    assert r.same_face_min_score < checker.threshold
    assert len(r.portrait_scores) >= 2 and max(r.portrait_scores) >= checker.threshold > min(r.portrait_scores)


def test_pad_verdict_becomes_findings_by_majority():
    class Pad:
        def __init__(self, attack_calls):
            self.attack_calls, self.n = attack_calls, 0

        def assess(self, rgb, face=None):
            self.n += 1
            attack = self.n in self.attack_calls
            return type("R", (), {"is_attack": attack, "score": 0.9 if attack else 0.1, "reasons": ("pad:screen_moire",) if attack else ()})()

    seq = clip("liveportrait_d0.mp4")
    flagged = ActiveChecker(pad=Pad({1, 2, 3}), policy=LivenessPolicy(analysis_fps=10)).check(seq)
    assert "liveness:presentation_attack:screen_moire" in flagged.reasons and not flagged.passed
    assert flagged.pad["attacks"] == 3 and flagged.findings[-1].rejects
    one = ActiveChecker(pad=Pad({2}), policy=LivenessPolicy(analysis_fps=10)).check(seq)
    assert one.passed and one.pad["attacks"] == 1  # one frame of three is not a majority
    assert _pad_finding("pad:glare").reason == "liveness:presentation_attack:glare"
    assert _pad_finding("liveness:flat_motion").reason == "liveness:flat_motion"


# --- the pipeline: a capture submission end to end ------------------------------------------------


@pytest.fixture(scope="module")
def zubair_capture(zubair):
    """A challenge that a real clip answers: its two head turns, in the order the clip makes them, each
    in its window; the frames sent as the page would (JPEG at the challenge's quality, capture times)."""
    turns = [e for e in zubair.actions_seen if e.action.startswith("turn")]
    first = turns[0]
    second = next(e for e in turns if e.action != first.action)
    seq = clip("antispoof-zubair_real.mp4", 15)
    t_start = first.onset_ms - 1500  # the first turn starts 1.5 s into the capture
    frames = [f for f in seq.frames if t_start <= f.t_ms <= t_start + 7500][::2]
    def make(clock, reverse=False):
        # randbelow answers: count 2; Fisher-Yates over (first, second): 1 keeps the order, 0 swaps it;
        # first window [500, 3000], second [3000, 7000]; the pause after it; JPEG quality 90
        script = [0, 0 if reverse else 1, 0, 0, 0, 1500, 0, 5]
        issuer = ChallengeIssuer(KEY, clock=clock, rng=ScriptedRng(script), actions=(first.action, second.action), count=(2, 2))
        ch = issuer.issue()
        order = (second.action, first.action) if reverse else (first.action, second.action)
        assert ch.actions == order and ch.jpeg_quality == 90
        data = [(jpeg(f.rgb, 90), round(f.t_ms - frames[0].t_ms)) for f in frames]
        return issuer, ch, data

    portrait = next(f.rgb for f in seq.frames if abs(f.t_ms - 13000) < 70)
    return make, portrait


@pytest.fixture(scope="module")
def face_verifier():
    from idproof.api import Verifier

    return Verifier(face_only=True)


def test_capture_submission_end_to_end_then_replay_and_swap(face_verifier, zubair_capture):
    make, portrait = zubair_capture
    clock = Clock()
    issuer, ch, data = make(clock)
    sub = submit(issuer, ch, data)
    clock.advance(12)
    d = face_verifier.verify_capture(jpeg(portrait, 95), sub, issuer)
    assert d.outcome is Outcome.ACCEPT, d.reasons
    assert {"challenge_redemption", "capture_binding", "liveness_challenge", "liveness_same_face", "liveness_3d_motion", "face_match_1to1"} <= set(d.checks_performed)
    live = d.quality["liveness"]
    assert live["passed"] == 1.0 and live["parallax"] >= 0.6 and live["frames_used"] >= 20
    assert d.timings_ms["liveness.per_frame"] > 0
    json.loads(d.to_json())

    again = face_verifier.verify_capture(jpeg(portrait, 95), sub, issuer)  # the same signed submission, twice
    assert again.outcome is Outcome.REJECT and again.reasons == ("capture:replayed",) and again.match is None

    issuer, ch, data = make(clock)
    swapped = data[:10] + [(data[30][0], data[10][1])] + data[11:]  # frame 10 replaced, time kept
    bad = Submission(ch.token, tuple(swapped), compute_binding(ch.binding_key, ch.nonce, data))
    clock.advance(12)
    d = face_verifier.verify_capture(jpeg(portrait, 95), bad, issuer)
    assert d.outcome is Outcome.REJECT and d.reasons == ("capture:binding_invalid",)


def test_capture_that_misses_its_challenge_is_a_retry(face_verifier, zubair_capture):
    make, portrait = zubair_capture
    clock = Clock()
    issuer, ch, data = make(clock, reverse=True)  # the clip's two turns, but asked for in the other order
    clock.advance(12)
    d = face_verifier.verify_capture(jpeg(portrait, 95), submit(issuer, ch, data), issuer)
    assert d.outcome is Outcome.RETRY and d.match is None
    assert f"liveness:challenge_not_met:{ch.actions[0]}" in d.reasons


@pytest.mark.slow
def test_cli_verify_selfie_video(tmp_path, zubair_capture):
    from typer.testing import CliRunner

    from idproof.cli import app
    from idproof.document.specimen import make_specimen

    _, portrait = zubair_capture
    doc = tmp_path / "doc.png"
    Image.fromarray(make_specimen(portrait, kind="TD3", seed=3).image).save(doc)
    video = VIDEO / "antispoof-zubair_real.mp4"
    res = CliRunner().invoke(app, ["verify", "--document", str(doc), "--selfie-video", str(video), "--challenge-actions", "smile", "--no-store", "--json"])
    out = json.loads(res.stdout[res.stdout.index("{") :])
    assert res.exit_code == 0 and out["outcome"] == "accept", out["reasons"]
    assert out["quality"]["liveness"]["frames_used"] > 50
    res = CliRunner().invoke(app, ["verify", "--document", str(doc), "--selfie-video", str(VIDEO / "cnnfd-lestari_fake.mp4"), "--challenge-actions", "blink,turn_left", "--no-store"])
    assert res.exit_code == 1 and "liveness:challenge_not_met:turn_left" in res.stdout
    res = CliRunner().invoke(app, ["verify", "--document", str(doc), "--selfie-video", str(video), "--challenge-actions", "wave", "--no-store"])
    assert res.exit_code == 2
