"""Capture binding: the frames a person submits are tied to the challenge they answer, and the stream
itself is checked for signs of injection (a virtual camera, a recorded or edited sequence).

The MAC (what the capture page computes, and the server recomputes over what it received)::

    key = binding_key                       # per challenge, from Challenge.to_client()["binding_key"]
    msg = nonce                             # 16 raw bytes, Challenge.to_client()["nonce"] (base64url)
          || for each frame, in capture order:
               SHA-256(frame bytes)         # 32 bytes: the exact encoded image (JPEG) sent
               || uint64 big-endian(timestamp_ms)   # capture time, integer milliseconds (performance.now)
    mac = HMAC-SHA256(key, msg)             # sent as 64 hex digits or base64url

In the browser: ``crypto.subtle.importKey("raw", key, {name: "HMAC", hash: "SHA-256"})`` then
``crypto.subtle.sign("HMAC", k, msg)``; ``crypto.subtle.digest("SHA-256", jpegBytes)`` per frame.
Every field has a fixed width, so no two different frame lists give the same message.

What this proves, and what it does not: the submission was made for *this* challenge (the key and the
nonce exist only since it was issued), no frame was swapped, dropped, added or reordered and no
timestamp changed after the page computed the MAC (``capture:binding_invalid``), and, with the
once-only redemption of the token, that it is not a replay of an earlier submission
(``capture:replayed``). It cannot prove that the frames came from a real camera: an attacker who runs
their own client holds the key too. That is what the challenge (an unpredictable action sequence with
random timing), the 3-D plausibility and passive PAD checks, and the stream checks below are for.

Stream checks (each explained where it is computed):
- ``capture:duplicate_frames``            retry   identical consecutive frames
- ``capture:timing_impossible:<why>``     reject  non_monotonic, too_fast, longer_than_session
- ``capture:timing_irregular:<why>``      retry   too_slow, gap
- ``capture:stream_inconsistent:<what>``  reject  format, size, quantisation change mid-stream
- ``capture:reencoded:<why>``             reject  quality (not the JPEG quality the page was told to
  use), constant_size (every frame exactly the same byte length)
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from idproof.decision import Finding, finding
from idproof.liveness.challenge import Challenge, ChallengeError, ChallengeIssuer
from idproof.liveness.frames import (
    Frame,
    FrameError,
    FrameLimits,
    FrameSequence,
    decode_frames,
)
from idproof.reasons import Reason

__all__ = ["CaptureCheck", "Submission", "binding_message", "check_submission", "compute_binding", "stream_findings", "verify_binding"]

# Timing limits for a live camera. Phone and laptop cameras deliver 15-60 fps; the page sends a subset.
MAX_FPS = 120.0  # a median frame interval shorter than 1/120 s: no webcam delivers that
MIN_FPS = 2.0  # a median interval over 500 ms is too sparse to see a blink (100-400 ms)
MAX_GAP_MS = 1500.0  # one gap longer than this: the capture stalled (or was cut)
SESSION_SLACK_MS = 2000.0  # the capture may not last longer than the time since the challenge was issued, + this
DUPLICATE_TOLERANCE = 0.05  # fraction of consecutive pairs that may be identical before we flag it


@dataclass(frozen=True)
class Submission:
    """What the capture page sends: the token it was given, its frames (encoded bytes + capture time in
    ms, in capture order) and the binding MAC (raw bytes, or base64url text)."""

    token: str
    frames: tuple[tuple[bytes, int], ...] = field(repr=False)
    mac: bytes | str = field(repr=False)

    def mac_bytes(self) -> bytes:
        """The MAC as bytes: given raw, as 64 hex digits, or as base64url (43 characters)."""
        if isinstance(self.mac, (bytes, bytearray)):
            return bytes(self.mac)
        s = str(self.mac).strip()
        if len(s) == 64 and all(c in "0123456789abcdefABCDEF" for c in s):
            return bytes.fromhex(s)
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@dataclass(frozen=True)
class CaptureCheck:
    challenge: Challenge | None
    findings: tuple[Finding, ...]
    frames: FrameSequence | None = field(default=None, repr=False)  # None when nothing may be looked at

    @property
    def rejects(self) -> bool:
        return any(f.rejects for f in self.findings)


def _u64(t_ms: int) -> bytes:
    return struct.pack(">Q", int(t_ms))


def binding_message(nonce: bytes, frames: Sequence[tuple[bytes, int]]) -> bytes:
    parts = [bytes(nonce)]
    for data, t in frames:
        parts.append(hashlib.sha256(bytes(data)).digest())
        parts.append(_u64(t))
    return b"".join(parts)


def compute_binding(binding_key: bytes, nonce: bytes, frames: Sequence[tuple[bytes, int]]) -> bytes:
    """The capture MAC, as the page computes it (also a reference client for tests)."""
    h = hmac.HMAC(binding_key, hashes.SHA256())
    h.update(binding_message(nonce, frames))
    return h.finalize()


def verify_binding(binding_key: bytes, nonce: bytes, frames: Sequence[tuple[bytes, int]], mac: bytes) -> bool:
    h = hmac.HMAC(binding_key, hashes.SHA256())
    h.update(binding_message(nonce, frames))
    try:
        h.verify(mac)  # constant-time comparison
    except InvalidSignature:
        return False
    return True


def _valid_timestamp(t) -> bool:
    return isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**63


def check_submission(
    issuer: ChallengeIssuer,
    submission: Submission,
    *,
    limits: FrameLimits | None = None,
    expected_jpeg_quality: int | None | Literal["challenge"] = "challenge",
    now: datetime | None = None,
) -> CaptureCheck:
    """Redeem the token (MAC, expiry, once only), verify the binding MAC over the frames exactly as
    received, then decode them and check the stream. A refused token or a broken binding ends the check:
    the frames are then not decoded at all."""
    try:
        challenge = issuer.redeem(submission.token)
    except ChallengeError as e:
        return CaptureCheck(None, (finding(e.reason, "capture"),))
    # The token is spent from here on, whatever follows: a tampered submission gets no second try.
    frames = list(submission.frames)
    limits = limits or FrameLimits()
    if len(frames) > limits.max_frames:  # bounded before anything is hashed or decoded
        return CaptureCheck(challenge, (finding(Reason.BAD_VIDEO, "liveness", f"(more than {limits.max_frames} frames)"),))
    if not all(isinstance(d, (bytes, bytearray, memoryview)) for d, _ in frames):
        return CaptureCheck(challenge, (finding(Reason.BINDING_INVALID, "capture"),))
    try:
        mac = submission.mac_bytes()
    except (ValueError, TypeError):
        mac = b""
    if not frames or not all(_valid_timestamp(t) for _, t in frames) or not verify_binding(challenge.binding_key, challenge.nonce, frames, mac):
        return CaptureCheck(challenge, (finding(Reason.BINDING_INVALID, "capture"),))
    try:
        seq = decode_frames(((d, float(t)) for d, t in frames), limits)
    except FrameError as e:
        return CaptureCheck(challenge, (finding(Reason.BAD_VIDEO, "liveness", e.message),))
    elapsed = ((now or issuer.clock()) - challenge.issued_at).total_seconds() * 1000
    quality = challenge.jpeg_quality if expected_jpeg_quality == "challenge" else expected_jpeg_quality
    found = stream_findings(seq, session_ms=elapsed, expected_jpeg_quality=quality)
    return CaptureCheck(challenge, tuple(found), seq)


# --- stream checks ----------------------------------------------------------------------------------


def stream_findings(
    frames: FrameSequence | Sequence[Frame],
    *,
    session_ms: float | None = None,
    expected_jpeg_quality: int | None = None,
) -> list[Finding]:
    """Findings about the stream itself; usable on a submission and (timing, duplicates) on a video file."""
    seq = list(frames)
    out: list[Finding] = []
    out += _timing(seq, session_ms)
    out += _duplicates(seq)
    out += _encoding(seq, expected_jpeg_quality)
    return out


def _timing(seq: Sequence[Frame], session_ms: float | None) -> list[Finding]:
    if len(seq) < 2:
        return []
    t = np.array([f.t_ms for f in seq], dtype=np.float64)
    d = np.diff(t)
    out: list[Finding] = []
    # A camera's capture clock only moves forward and never gives two frames the same time. Out-of-order
    # or repeated times, under a valid MAC, mean the client made the times up or re-sequenced frames.
    if (d <= 0).any():
        out.append(finding(Reason.TIMING_IMPOSSIBLE, "capture", f"({int((d <= 0).sum())} frame times out of order or repeated)", qualifier="non_monotonic"))
        return out
    med = float(np.median(d))
    # Frames arriving faster than any webcam delivers: a stream generated or fast-forwarded in software.
    if med < 1000.0 / MAX_FPS:
        out.append(finding(Reason.TIMING_IMPOSSIBLE, "capture", f"(median {med:.1f} ms between frames)", qualifier="too_fast"))
    # The clip cannot be longer than the time since its challenge was issued: a longer one was
    # (at least partly) recorded before the challenge existed.
    if session_ms is not None and t[-1] - t[0] > session_ms + SESSION_SLACK_MS:
        out.append(finding(Reason.TIMING_IMPOSSIBLE, "capture", f"({(t[-1] - t[0]) / 1000:.1f} s of frames, {session_ms / 1000:.1f} s since the challenge)", qualifier="longer_than_session"))
    # Too sparse to see a blink, or a stall: a live person can cause these (slow phone, tab in background).
    if med > 1000.0 / MIN_FPS:
        out.append(finding(Reason.TIMING_IRREGULAR, "capture", f"(median {med:.0f} ms between frames)", qualifier="too_slow"))
    elif float(d.max()) > MAX_GAP_MS:
        out.append(finding(Reason.TIMING_IRREGULAR, "capture", f"(a {float(d.max()) / 1000:.1f} s gap)", qualifier="gap"))
    return out


def _pixels_equal(a: Frame, b: Frame) -> bool:
    return a.rgb.shape == b.rgb.shape and np.array_equal(a.rgb, b.rgb)


def _duplicates(seq: Sequence[Frame]) -> list[Finding]:
    """A camera's sensor noise makes two real consecutive frames differ in some pixel even when nothing
    moves; identical ones come from a frozen, looped or padded stream (an injected still image, a
    sequence stretched to fit a time window). Compared on the encoded bytes when there are any, else
    on the decoded pixels. A few (a page that grabbed one camera frame twice) are tolerated."""
    if len(seq) < 2:
        return []
    same = 0
    for a, b in itertools.pairwise(seq):
        if a.data is not None and b.data is not None:
            same += a.data == b.data or _pixels_equal(a, b)
        else:
            same += _pixels_equal(a, b)
    if same > max(1, DUPLICATE_TOLERANCE * (len(seq) - 1)):
        return [finding(Reason.DUPLICATE_FRAMES, "capture", f"({same} of {len(seq) - 1} consecutive frames identical)")]
    return []


# JPEG luminance quantisation table of ITU-T T.81 Annex K (natural order), which libjpeg(-turbo), and
# with it Chrome's and Firefox's canvas.toBlob("image/jpeg", q), scales by the IJG quality formula.
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.int64)


def ijg_table(quality: int) -> np.ndarray:
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((_STD_LUMA * scale + 50) // 100, 1, 255)


def jpeg_info(data: bytes) -> tuple[str, tuple[int, int], tuple | None, int | None] | None:
    """(format, size, quantisation tables, IJG quality or None) from the header only (no pixels)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "?"
            size = im.size
            tables = None
            quality = None
            q = getattr(im, "quantization", None)
            if fmt == "JPEG" and q:
                tables = tuple(tuple(int(x) for x in q[k]) for k in sorted(q))
                luma = np.array(q[min(q)], dtype=np.int64)
                for cand in range(1, 101):  # Pillow gives the table in natural order
                    if np.array_equal(ijg_table(cand), luma):
                        quality = cand
                        break
            return fmt, size, tables, quality
    except Exception:  # noqa: BLE001 - already decoded once; a header we cannot read gives no hint
        return None


def _encoding(seq: Sequence[Frame], expected_quality: int | None) -> list[Finding]:
    data = [f.data for f in seq if f.data is not None]
    if len(data) < 2:
        return []
    infos = [jpeg_info(d) for d in data]
    if any(i is None for i in infos):
        return []
    out: list[Finding] = []
    # One capture = one camera + one encoder: format, size and quantisation tables stay the same. A
    # change mid-stream means frames from different sources were spliced together (or injected).
    for k, what in ((0, "format"), (1, "size"), (2, "quantisation")):
        if len({i[k] for i in infos}) > 1:  # type: ignore[index]
            out.append(finding(Reason.STREAM_INCONSISTENT, "capture", qualifier=what))
    # The page encodes at the quality the server told it to use. IJG-scaled tables at another quality
    # mean the frames were re-encoded (or produced) by something else. Encoders with non-IJG tables
    # (Safari's, for one) give no quality and no verdict here.
    if expected_quality is not None:
        qs = {i[3] for i in infos if i[3] is not None}  # type: ignore[index]
        if qs and qs != {expected_quality}:
            out.append(finding(Reason.REENCODED, "capture", f"(JPEG quality {sorted(qs)}, expected {expected_quality})", qualifier="quality"))
    # A JPEG's size follows its content: camera frames always differ by some bytes. Every frame exactly
    # the same length is what a constant-bit-rate re-encoder or a padded, synthetic stream produces.
    if len(data) >= 5 and len({len(d) for d in data}) == 1:
        out.append(finding(Reason.REENCODED, "capture", qualifier="constant_size"))
    return out
