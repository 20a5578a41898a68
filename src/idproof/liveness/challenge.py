"""Signed, short-lived, once-only liveness challenges.

The server issues a random sequence of 2-3 actions (``turn_left, blink, smile``...), each with its own
random time window, and a compact token that carries them, signed with HMAC-SHA256 under a key derived
from the issuer key. The client shows the prompts, captures frames, echoes the token, and binds its
frames to the challenge nonce (``binding.py``). On submission the server *redeems* the token: the MAC
must verify (constant time), the challenge must not have expired, and it must not have been redeemed
before (``UsedNonces``). Nothing about the challenge is stored server-side except, until it expires,
the fact that its id was used.

Token: ``base64url(canonical JSON payload) "." base64url(HMAC-SHA256(token_key, "idproof.challenge.v1." + payload_b64))``
with canonical JSON = sorted keys, no spaces, ASCII. Payload fields: ``v`` (1), ``id``, ``n`` (nonce,
base64url of 16 random bytes), ``a`` ([[action, start_ms, end_ms], ...]; times relative to the first
captured frame), ``q`` (the JPEG quality the page must encode frames at), ``iat`` / ``exp`` (Unix
milliseconds).

Keys (HKDF-SHA256 from the issuer key, so one secret serves both without the two uses ever sharing a key):
- token key:   HKDF(issuer_key, salt=None, info="idproof challenge token v1")
- binding key: HKDF(issuer_key, salt=nonce, info="idproof capture binding v1"): different for every
  challenge; it is handed to the client with the challenge (the client must compute the capture MAC)
  and re-derived by the server from the nonce at redemption.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idproof.errors import IdproofError
from idproof.reasons import Reason

__all__ = ["ACTIONS", "ActionStep", "Challenge", "ChallengeError", "ChallengeIssuer", "InMemoryUsedNonces", "UsedNonces"]

ACTIONS: tuple[str, ...] = ("turn_left", "turn_right", "blink", "smile", "mouth_open")
NONCE_BYTES = 16
MAX_TOKEN_CHARS = 2048
_TOKEN_DOMAIN = b"idproof.challenge.v1."
CLOCK_SKEW = timedelta(seconds=5)

# Action timing: the first prompt appears 0.5-1.5 s after capture starts; each action then has a window
# of 2.5-4.0 s; the next window opens 0-0.4 s after the previous one closes. All random per challenge,
# so a recording made for one challenge does not fit another.
FIRST_START_MS = (500, 1500)
WINDOW_MS = (2500, 4000)
PAUSE_MS = (0, 400)
# The page must encode its JPEG frames at this quality (canvas.toBlob("image/jpeg", q / 100)); drawn
# per challenge, so frames re-encoded by another tool at its own quality stand out (binding.py).
JPEG_QUALITY = (85, 95)


class ChallengeError(IdproofError):
    """A challenge token was refused. ``reason`` is the finding to report (subject ``capture``)."""

    code = "challenge_refused"

    def __init__(self, reason: Reason, message: str, *, fix: str = "") -> None:
        self.reason = reason
        super().__init__(message, fix=fix or "Request a new challenge and capture again.")


@dataclass(frozen=True)
class ActionStep:
    action: str
    start_ms: int  # the prompt for this action appears this long after the first captured frame
    end_ms: int  # the action must have started by then


@dataclass(frozen=True)
class Challenge:
    id: str
    nonce: bytes = field(repr=False)
    steps: tuple[ActionStep, ...]
    issued_at: datetime
    expires_at: datetime
    token: str = field(default="", repr=False)
    binding_key: bytes = field(default=b"", repr=False)
    jpeg_quality: int | None = None  # the quality the page must encode frames at (None: any)

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(s.action for s in self.steps)

    def to_client(self) -> dict[str, Any]:
        """What the capture page receives: the token to echo, the prompts and their windows, and the
        per-challenge binding key for the capture MAC (see binding.py)."""
        return {
            "id": self.id,
            "token": self.token,
            "nonce": _b64e(self.nonce),
            "binding_key": _b64e(self.binding_key),
            "actions": [{"action": s.action, "start_ms": s.start_ms, "end_ms": s.end_ms} for s in self.steps],
            "jpeg_quality": self.jpeg_quality,
            "issued_at": self.issued_at.isoformat(timespec="milliseconds"),
            "expires_at": self.expires_at.isoformat(timespec="milliseconds"),
        }


class UsedNonces(Protocol):
    """Remembers redeemed challenge ids until they expire. ``use`` must be atomic: of two concurrent
    calls with the same id exactly one returns True.

    The in-memory store below is correct for ONE process only. A service with several worker processes
    or hosts must use a shared store (a database table with a unique key on the id, ``INSERT`` that
    fails on conflict, rows deleted after ``expires_at``), or a replay sent to another worker passes.
    """

    def use(self, challenge_id: str, expires_at: datetime) -> bool: ...


class InMemoryUsedNonces:
    """Thread-safe, bounded, pruned as entries expire. When full of unexpired ids it refuses new ones
    (fails closed) rather than forgetting any: forgetting would re-open a replay window."""

    def __init__(self, max_entries: int = 100_000, *, clock: Callable[[], datetime] | None = None) -> None:
        self.max_entries = max_entries
        self._clock = clock or (lambda: datetime.now(UTC))
        self._seen: dict[str, datetime] = {}  # insertion order ≈ expiry order (one TTL per issuer)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: datetime) -> None:
        cutoff = now - CLOCK_SKEW
        dead = [k for k, exp in self._seen.items() if exp < cutoff]
        for k in dead:
            del self._seen[k]

    def use(self, challenge_id: str, expires_at: datetime) -> bool:
        with self._lock:
            if challenge_id in self._seen:
                return False
            if len(self._seen) >= self.max_entries:
                self._prune(self._clock())
                if len(self._seen) >= self.max_entries:
                    raise ChallengeError(Reason.CHALLENGE_EXPIRED, "Too many challenges are in use right now.", fix="Try again in a minute.")
            self._seen[challenge_id] = expires_at
            if len(self._seen) % 256 == 0:
                self._prune(self._clock())
            return True


def _b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def _b64d(s: str) -> bytes:
    if not isinstance(s, str) or not s or len(s) > MAX_TOKEN_CHARS:
        raise ValueError("bad base64")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _hkdf(key: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _mac(key: bytes, msg: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(msg)
    return h.finalize()


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class ChallengeIssuer:
    """Issues and redeems challenges. ``key``: at least 32 secret bytes (e.g. from a key file or a KMS).

    ``rng`` needs ``token_bytes(n)`` and ``randbelow(n)`` (the ``secrets`` module; tests may pass a
    seeded stand-in). ``used`` is the once-only store (in-memory by default: one process only)."""

    def __init__(
        self,
        key: bytes,
        *,
        ttl: timedelta = timedelta(seconds=90),
        rng: Any = secrets,
        used: UsedNonces | None = None,
        clock: Callable[[], datetime] | None = None,
        actions: tuple[str, ...] = ACTIONS,
        count: tuple[int, int] = (2, 3),
    ) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < 32:
            raise ValueError("the challenge key must be at least 32 random bytes")
        if not set(actions) <= set(ACTIONS) or len(actions) < count[1]:
            raise ValueError(f"actions must be {count[1]} or more of {ACTIONS}")
        self._key = bytes(key)
        self._token_key = _hkdf(self._key, None, b"idproof challenge token v1")
        self.ttl = ttl
        self.rng = rng
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.used: UsedNonces = used if used is not None else InMemoryUsedNonces(clock=lambda: self.clock())
        self.actions = tuple(actions)
        self.count = count

    def binding_key(self, nonce: bytes) -> bytes:
        return _hkdf(self._key, nonce, b"idproof capture binding v1")

    def _randint(self, lo: int, hi: int) -> int:
        return lo + self.rng.randbelow(hi - lo + 1)

    def issue(self) -> Challenge:
        rng = self.rng
        n = self._randint(*self.count)
        pool = list(self.actions)
        for i in range(len(pool) - 1, 0, -1):  # Fisher-Yates with the CSPRNG
            j = rng.randbelow(i + 1)
            pool[i], pool[j] = pool[j], pool[i]
        chosen = pool[:n]
        steps = []
        t = self._randint(*FIRST_START_MS)
        for a in chosen:
            end = t + self._randint(*WINDOW_MS)
            steps.append(ActionStep(a, t, end))
            t = end + self._randint(*PAUSE_MS)
        now = self.clock()
        nonce = rng.token_bytes(NONCE_BYTES)
        cid = _b64e(rng.token_bytes(12))
        exp = now + self.ttl
        quality = self._randint(*JPEG_QUALITY)
        payload = {"v": 1, "id": cid, "n": _b64e(nonce), "a": [[s.action, s.start_ms, s.end_ms] for s in steps], "q": quality, "iat": _ms(now), "exp": _ms(exp)}
        body = _b64e(canonical_json(payload))
        token = body + "." + _b64e(_mac(self._token_key, _TOKEN_DOMAIN + body.encode("ascii")))
        issued = datetime.fromtimestamp(payload["iat"] / 1000, UTC)
        expires = datetime.fromtimestamp(payload["exp"] / 1000, UTC)
        return Challenge(cid, nonce, tuple(steps), issued, expires, token, self.binding_key(nonce), quality)

    def parse(self, token: str) -> Challenge:
        """Check the token's MAC and form, nothing else (no expiry, no once-only): for tests and for
        reading a token back; a submission must go through ``redeem``."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise ChallengeError(Reason.CHALLENGE_INVALID, "The challenge token is malformed.")
        body, sig = token.split(".")
        try:
            sig_bytes = _b64d(sig)
        except ValueError as exc:
            raise ChallengeError(Reason.CHALLENGE_INVALID, "The challenge token is malformed.") from exc
        h = hmac.HMAC(self._token_key, hashes.SHA256())
        h.update(_TOKEN_DOMAIN + body.encode("ascii", "replace"))
        try:
            h.verify(sig_bytes)  # constant-time comparison
        except InvalidSignature as exc:
            raise ChallengeError(Reason.CHALLENGE_INVALID, "The challenge token's signature is invalid: it was not issued here or was altered.") from exc
        try:
            p = json.loads(_b64d(body))
            if p.get("v") != 1:
                raise ValueError("version")
            nonce = _b64d(p["n"])
            steps = tuple(ActionStep(str(a), int(s), int(e)) for a, s, e in p["a"])
            if len(nonce) != NONCE_BYTES or not steps or any(s.action not in ACTIONS or s.end_ms <= s.start_ms for s in steps):
                raise ValueError("content")
            cid = str(p["id"])
            quality = p.get("q")
            if quality is not None and not (isinstance(quality, int) and 1 <= quality <= 100):
                raise ValueError("quality")
            iat = datetime.fromtimestamp(int(p["iat"]) / 1000, UTC)
            exp = datetime.fromtimestamp(int(p["exp"]) / 1000, UTC)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            # a valid MAC over a malformed payload: only a key holder could make one
            raise ChallengeError(Reason.CHALLENGE_INVALID, "The challenge token is malformed.") from exc
        return Challenge(cid, nonce, steps, iat, exp, token, self.binding_key(nonce), quality)

    def redeem(self, token: str) -> Challenge:
        """The challenge, if its token is genuine, unexpired and used for the first time. Raises
        ChallengeError with reason challenge_invalid / challenge_expired / replayed otherwise."""
        ch = self.parse(token)
        now = self.clock()
        if now > ch.expires_at:
            raise ChallengeError(Reason.CHALLENGE_EXPIRED, "The challenge has expired.")
        if ch.issued_at > now + CLOCK_SKEW:
            raise ChallengeError(Reason.CHALLENGE_INVALID, "The challenge was issued in the future.")
        if not self.used.use(ch.id, ch.expires_at):
            raise ChallengeError(Reason.REPLAYED, "This challenge was already used: a submission can be sent only once.")
        return ch
