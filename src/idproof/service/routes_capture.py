"""The person's capture page: camera preview, quality hints, the liveness challenge, the decision.

The operator creates a proofing session (``POST /v1/proofings``), uploads the document, and gives the
person the session's ``capture_url``. That URL carries the session's capture token (random, in memory,
bound to that one session; the operator's API key never reaches the browser). The token is good for one
challenge and then one frame submission:

* ``GET /capture?s=TOKEN`` -- the page (``static/capture.html`` + ``capture.js`` + ``capture.css``).
* ``POST /v1/capture/{token}/challenge`` -- a fresh signed challenge: the actions, their time windows,
  the challenge token and the nonce the page binds the frames to.
* ``PUT /v1/capture/{token}/frames`` -- multipart: ``challenge`` (the challenge token), ``frames`` (the
  JPEG frames, concatenated), ``meta`` (JSON: ``timestamps_ms`` and ``sizes``, one per frame) and
  ``mac`` (the client binding, see ``idproof.liveness.binding``). Read in memory by ``uploads``; runs the
  liveness + match path against the document, records the decision for the operator (who reads it with
  ``GET /v1/proofings/{id}``) and answers the page with the outcome and what to tell the person.

Nothing is kept on the device (the page uses no cookies or storage) and the frames are dropped after
the decision, like every upload.
"""

from __future__ import annotations

import base64
import json
import secrets
from functools import cache
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from idproof.service.deps import State
from idproof.service.models import DecisionOut
from idproof.service.problems import ProblemError, problem_responses
from idproof.service.routes_credential import credential_offer
from idproof.service.routes_proofings import decision_out, evidence_inputs, sign_evidence
from idproof.service.uploads import read_form_upload

__all__ = ["CaptureChallengeOut", "CaptureResultOut", "api", "page"]

STATIC = Path(__file__).with_name("static")
MAX_FRAMES = 300
FRAME_INTERVAL_MS = 100  # ~10 fps
MAX_FRAME_WIDTH = 640
CAPTURE_TAIL_MS = 700  # capture goes on this long after the last window closes (an action begun late is seen)

page = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/v1/capture", tags=["capture"])

# The page loads only its own script and style, talks only to this origin, may use the camera, and may not
# be framed; the capture token never leaves in a Referer; nothing of it is cached.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_ASSETS = {"capture.js": "text/javascript; charset=utf-8", "capture.css": "text/css; charset=utf-8"}

_BAD_LINK = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Link not valid</title></head>
<body><main><h1>This link cannot be used</h1><p>It has expired, has been used already, or is incomplete.
Ask for a new link.</p></main></body></html>"""


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@page.get("/capture", name="capture_page", response_class=HTMLResponse)
def capture_page(state: State, s: str = Query("", max_length=200)) -> Response:
    session = state.sessions.by_capture(s)
    if session is None or session.capture_stage != "open":
        return HTMLResponse(_BAD_LINK, status_code=404, headers=_PAGE_HEADERS)
    return HTMLResponse(_asset("capture.html"), headers=_PAGE_HEADERS)


@page.get("/capture/static/{name}")
def capture_asset(name: str) -> Response:
    if name not in _ASSETS:
        raise ProblemError(404, "not_found", f"There is no resource at /capture/static/{name}.")
    return Response(_asset(name), media_type=_ASSETS[name],
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# --- the API the page calls ---------------------------------------------------------------------------------


class StepOut(BaseModel):
    action: Literal["turn_left", "turn_right", "blink", "smile", "mouth_open"]
    start_ms: int = Field(description="When to show this prompt, in ms from the first captured frame.")
    end_ms: int = Field(description="By when the action must have started, in ms from the first captured frame.")


class CaptureChallengeOut(BaseModel):
    """``Challenge.to_client()`` plus how to capture."""

    id: str
    token: str = Field(description="The signed challenge token: send it back with the frames. Valid once, until expires_at.")
    nonce: str = Field(description="base64url, 16 bytes: the start of the capture MAC's message.")
    binding_key: str = Field(description="base64url: the HMAC-SHA256 key of the capture MAC (this challenge only).")
    actions: list[StepOut] = Field(description="The actions in order, each with its time window.")
    jpeg_quality: int | None = Field(description="Encode the frames as JPEG at this quality (canvas.toBlob quality / 100).")
    issued_at: str
    expires_at: str
    duration_ms: int = Field(description="How long to capture, in ms from the first frame.")
    frame_interval_ms: int = Field(description="At most one frame per this many ms.")
    max_frames: int
    max_width: int = Field(description="Scale frames down to at most this width before encoding.")


class ReasonBrief(BaseModel):
    reason: str
    text: str = Field(description="What to tell the person.")


class CaptureResultOut(BaseModel):
    outcome: Literal["accept", "reject", "retry"]
    reasons: list[ReasonBrief]
    evidence: str | None = Field(default=None, description="The person's copy of the signed evidence record (when the server signs evidence).")


def _bad_token() -> ProblemError:
    return ProblemError(404, "capture_not_found",
                        "This capture link is not valid: it has expired, has been used already, or never existed.",
                        fix="Ask the service that sent you the link for a new one.")


def issuer(request: Request):
    """The app's challenge issuer: ``app.state.capture_issuer`` if set (tests inject a deterministic one),
    else one made on first use with a random per-process key (challenges live minutes, in one process)."""
    app_state = request.app.state
    iss = getattr(app_state, "capture_issuer", None)
    if iss is None:
        from idproof.liveness.challenge import ChallengeIssuer

        iss = app_state.capture_issuer = ChallengeIssuer(secrets.token_bytes(32))
    return iss


def challenge_out(ch: Any) -> CaptureChallengeOut:
    client = ch.to_client()
    duration = max(s.end_ms for s in ch.steps) + CAPTURE_TAIL_MS
    return CaptureChallengeOut(**client, duration_ms=duration, frame_interval_ms=FRAME_INTERVAL_MS,
                               max_frames=min(MAX_FRAMES, duration // FRAME_INTERVAL_MS + 10), max_width=MAX_FRAME_WIDTH)


@api.post("/{token}/challenge", response_model=CaptureChallengeOut, responses=problem_responses(404, 409, 422),
          summary="The liveness challenge for this capture link (once)")
def post_challenge(token: str, request: Request, state: State) -> CaptureChallengeOut:
    """Issues the challenge the page shows: actions in order with their time windows, the signed challenge
    token and the nonce for the frame binding. A capture link gets one challenge."""
    s = state.sessions.by_capture(token)
    if s is None:
        raise _bad_token()
    if s.document is None and s.chip is None:
        raise ProblemError(409, "document_missing", "The document for this check has not been uploaded yet.",
                           fix="Wait until the service has your document, then reload this page.")
    ch = issuer(request).issue()
    if state.sessions.start_challenge(token, ch.id) is None:
        raise _bad_token()
    return challenge_out(ch)


FRAMES_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["challenge", "mac", "meta", "frames"],
    "properties": {
        "challenge": {"type": "string", "description": "The challenge_token."},
        "mac": {"type": "string", "description": "The client MAC (hex), see idproof.liveness.binding."},
        "meta": {"type": "string", "description": 'JSON: {"timestamps_ms": [...], "sizes": [...]}, one per frame.'},
        "frames": {"type": "string", "format": "binary", "description": "The JPEG frames, concatenated in order."},
    },
}}}}}


def _invalid(detail: str) -> ProblemError:
    return ProblemError(422, "invalid_frames", detail, fix="Reload the page and let it capture and send the frames.")


def parse_frames(parts: dict[str, bytes]) -> tuple[str, str, list[bytes], list[int]]:
    missing = [p for p in ("challenge", "mac", "meta", "frames") if not parts.get(p)]
    if missing:
        raise _invalid(f"The upload lacks: {', '.join(missing)}.")
    try:
        meta = json.loads(parts["meta"])
        stamps = [int(t) for t in meta["timestamps_ms"]]
        sizes = [int(n) for n in meta["sizes"]]
    except (ValueError, KeyError, TypeError) as e:
        raise _invalid("The frame metadata is not valid JSON with timestamps_ms and sizes.") from e
    if not 0 < len(sizes) <= MAX_FRAMES or len(stamps) != len(sizes):
        raise _invalid(f"Send 1 to {MAX_FRAMES} frames, each with one timestamp and one size.")
    blob = parts["frames"]
    if any(n <= 0 for n in sizes) or sum(sizes) != len(blob):
        raise _invalid("The frame sizes do not add up to the frames sent.")
    frames, o = [], 0
    for n in sizes:
        frames.append(blob[o:o + n])
        o += n
    try:
        challenge, mac = parts["challenge"].decode("ascii"), parts["mac"].decode("ascii")
    except UnicodeDecodeError as e:
        raise _invalid("The challenge token and the MAC are ASCII text.") from e
    return challenge, mac, frames, stamps


@api.put("/{token}/frames", response_model=CaptureResultOut, response_model_exclude_none=True, openapi_extra=FRAMES_BODY,
         responses=problem_responses(404, 409, 413, 415, 422), summary="Send the challenge frames: liveness, match, decision")
async def put_frames(token: str, request: Request, state: State) -> CaptureResultOut:
    """Checks the frames against the challenge (signed, once, in time; the MAC binds the frames and their
    timestamps to its nonce), then liveness and the face match against the document. The decision is
    recorded for the operator; the page gets the outcome and what to tell the person."""
    from idproof.liveness.binding import Submission
    from idproof.liveness.challenge import ChallengeError

    s = state.sessions.by_capture(token)
    if s is None or s.capture_stage != "challenged":
        raise _bad_token()
    parts = await read_form_upload(request, ("challenge", "mac", "meta", "frames"), state.max_upload_bytes)
    challenge, mac, frames, stamps = parse_frames(parts)
    del parts
    iss = issuer(request)
    try:  # the challenge must be the one issued through this link (its signature is checked again on redeem)
        same = iss.parse(challenge).id == s.challenge_id
    except ChallengeError:
        same = True  # a forged or altered token: redeem() refuses it and the decision says so
    if not same:
        raise ProblemError(422, "challenge_mismatch", "This challenge was not issued for this capture link.",
                           fix="Send the frames with the challenge this page received.")
    taken = state.sessions.take_capture(token)
    if taken is None:
        raise _bad_token()
    s, document, chip = taken
    submission = Submission(challenge, tuple(zip(frames, stamps)), mac)
    inputs = evidence_inputs(document=document, chip=chip, frames=list(frames)) if state.evidence_key else {}
    del frames
    try:
        decision = await state.verify_capture(document, chip, submission, iss)
    finally:
        del document, chip, submission
    record = await run_in_threadpool(state.registry.record_proofing, decision, operator_id=s.operator_id)
    person_token = await run_in_threadpool(state.registry.issue_person_token, record.id) if decision.accepted else None
    evidence = await run_in_threadpool(sign_evidence, state, decision, record.id, inputs, _nonce_of(iss, challenge))
    del inputs
    full: DecisionOut = decision_out(decision, record, person_token, credential_offer(state, decision)).model_copy(update={"evidence": evidence})
    state.sessions.finish_capture(s, full)
    return CaptureResultOut(outcome=full.outcome, reasons=[ReasonBrief(reason=r.reason, text=r.text) for r in full.reasons],
                            evidence=evidence)


def _nonce_of(iss, challenge: str) -> str | None:
    """The challenge's nonce (base64url) for the evidence record; None for a token that does not parse."""
    from idproof.liveness.challenge import ChallengeError

    try:
        return base64.urlsafe_b64encode(iss.parse(challenge).nonce).rstrip(b"=").decode()
    except (ChallengeError, ValueError):
        return None

