"""Proofing sessions: process memory only, bounded in count, bytes and lifetime.

A session holds the uploads of one proofing (document photo and/or chip files) until the selfie
arrives; then it is taken out of the store (atomically: a second selfie upload cannot reuse it),
verified, and its bytes are dropped. Nothing here is ever written to disk, logged, or persisted;
an expired or finished session is simply forgotten.

Each session also has a capture token, for the person's capture page (``routes_capture``): random, bound
to this one session, usable once for one challenge and then once for one frame submission. Its stages:
``open`` → ``challenged`` (a challenge was issued for it) → ``verifying`` (the frames arrived; the
document is taken out) → ``done`` (the decision summary is kept for the operator until the session expires).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BudgetSpent", "ProofingSession", "SessionStore"]


class BudgetSpent(Exception):
    """The memory budget for buffered uploads (all sessions together) would be exceeded."""


@dataclass
class ProofingSession:
    id: str
    operator_id: str
    created: float  # monotonic seconds
    expires: float
    document: bytes | None = field(default=None, repr=False)
    chip: dict[str, bytes] | None = field(default=None, repr=False)  # {"SOD": ..., "DG1": ..., "DG2": ...}
    capture_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    capture_stage: str = "open"  # open | challenged | verifying | done
    challenge_id: str | None = None  # the one challenge issued through the capture token
    result: object = None  # the decision summary of a finished capture, for the operator

    @property
    def nbytes(self) -> int:
        return len(self.document or b"") + sum(len(v) for v in (self.chip or {}).values())


class SessionStore:
    """Thread-safe; every operation first forgets expired sessions."""

    def __init__(self, *, max_sessions: int, ttl_s: float, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions, self.ttl_s, self.max_bytes = max_sessions, ttl_s, max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, ProofingSession] = {}

    def _sweep(self) -> None:
        now = self._clock()
        for sid in [sid for sid, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[sid]

    def __len__(self) -> int:
        with self._lock:
            self._sweep()
            return len(self._sessions)

    @property
    def buffered_bytes(self) -> int:
        with self._lock:
            self._sweep()
            return sum(s.nbytes for s in self._sessions.values())

    def create(self, operator_id: str) -> ProofingSession | None:
        """A new session, or None when the store is full."""
        with self._lock:
            self._sweep()
            if len(self._sessions) >= self.max_sessions:
                return None
            now = self._clock()
            s = ProofingSession(secrets.token_urlsafe(18), operator_id, now, now + self.ttl_s)
            self._sessions[s.id] = s
            return s

    def _by_capture(self, token: str) -> ProofingSession | None:
        if not token:
            return None
        for s in self._sessions.values():
            if secrets.compare_digest(s.capture_token.encode(), token.encode("utf-8", "replace")):
                return s
        return None

    def by_capture(self, token: str) -> ProofingSession | None:
        """The live session this capture token belongs to, or None."""
        with self._lock:
            self._sweep()
            return self._by_capture(token)

    def start_challenge(self, token: str, challenge_id: str) -> ProofingSession | None:
        """Stage open → challenged, recording the challenge; None when the token is unknown or used."""
        with self._lock:
            self._sweep()
            s = self._by_capture(token)
            if s is None or s.capture_stage != "open":
                return None
            s.capture_stage, s.challenge_id = "challenged", challenge_id
            return s

    def take_capture(self, token: str) -> tuple[ProofingSession, bytes | None, dict[str, bytes] | None] | None:
        """Stage challenged → verifying, taking the uploads out (the caller verifies and drops them);
        None when the token is unknown or not at that stage. The session stays, for its result."""
        with self._lock:
            self._sweep()
            s = self._by_capture(token)
            if s is None or s.capture_stage != "challenged":
                return None
            document, chip = s.document, s.chip
            s.document = s.chip = None
            s.capture_stage = "verifying"
            return s, document, chip

    def finish_capture(self, s: ProofingSession, result: object) -> None:
        with self._lock:
            s.capture_stage, s.result = "done", result

    def get(self, session_id: str, operator_id: str) -> ProofingSession | None:
        """The session, if it exists, is alive, and belongs to this operator (others see nothing)."""
        with self._lock:
            self._sweep()
            s = self._sessions.get(session_id)
            return s if s is not None and s.operator_id == operator_id else None

    def put(self, session_id: str, operator_id: str, *, document: bytes | None = None,
            chip: dict[str, bytes] | None = None) -> ProofingSession | None:
        """Store an upload (replacing an earlier one of the same kind); None when the session is gone
        (expired, taken, another operator's); raises BudgetSpent when the memory budget would be exceeded."""
        with self._lock:
            self._sweep()
            s = self._sessions.get(session_id)
            if s is None or s.operator_id != operator_id:
                return None
            old = len(s.document or b"") if document is not None else 0
            old += sum(len(v) for v in (s.chip or {}).values()) if chip is not None else 0
            new = len(document or b"") + sum(len(v) for v in (chip or {}).values())
            used = sum(x.nbytes for x in self._sessions.values())
            if used - old + new > self.max_bytes:
                raise BudgetSpent
            if document is not None:
                s.document = document
            if chip is not None:
                s.chip = chip
            return s

    def take(self, session_id: str, operator_id: str) -> ProofingSession | None:
        """Remove and return the session (for the final step); None when it is not there."""
        with self._lock:
            self._sweep()
            s = self._sessions.get(session_id)
            if s is None or s.operator_id != operator_id:
                return None
            return self._sessions.pop(session_id)

    def drop(self, session_id: str, operator_id: str) -> bool:
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None or s.operator_id != operator_id:
                return False
            del self._sessions[session_id]
            return True
