"""Proofing sessions: process memory only, bounded in count, bytes and lifetime.

A session holds the uploads of one proofing (document photo and/or chip files) until the selfie
arrives; then it is taken out of the store (atomically: a second selfie upload cannot reuse it),
verified, and its bytes are dropped. Nothing here is ever written to disk, logged, or persisted;
an expired or finished session is simply forgotten.
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
