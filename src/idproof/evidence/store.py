"""Signed evidence records in the database, and their retention.

One row per record: its id, the proofing it belongs to, when it was issued, and the compact JWS. The JWS is
personal-data-free by construction (``idproof.evidence.record``), so the row is safe to keep for as long as
the retention policy says. Rows are stored as issued and returned as stored: verify them with
``verify_evidence`` before relying on one.

No foreign key to ``proofing_decisions``: evidence and decision metadata have their own retention periods,
and purging one must never be blocked by (or cascade into) the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, Text, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from idproof.evidence.record import EvidenceError, EvidenceRecord
from idproof.evidence.signing import unverified_parts
from idproof.storage.models import Base


class EvidenceRow(Base):
    """Migration 0004 creates this table."""

    __tablename__ = "evidence_records"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the record's record_id
    proofing_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # the record's issued_at
    jws: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class StoredEvidence:
    id: str
    proofing_id: str | None
    created_at: datetime  # aware, UTC
    jws: str  # as issued: not re-verified on the way out


def save(engine: Engine, jws: str, record: EvidenceRecord) -> str:
    """Store a signed record; returns its id. ``jws`` must carry exactly ``record`` (the pair is checked, not
    the signature: the caller just made it). Saving the same token again is a no-op."""
    _, payload = unverified_parts(jws)
    if EvidenceRecord.from_dict(payload) != record:
        raise EvidenceError("bad_input", "the JWS does not carry this record.", fix="Save the token that signing this record returned.")
    with Session(engine) as s, s.begin():
        existing = s.get(EvidenceRow, record.record_id)
        if existing is not None:
            if existing.jws != jws:
                raise EvidenceError("bad_input", f"another token is already stored as record {record.record_id}.")
            return record.record_id
        s.add(EvidenceRow(id=record.record_id, proofing_id=record.proofing_id, created_at=record.issued, jws=jws))
    return record.record_id


def get(engine: Engine, record_id: str) -> StoredEvidence | None:
    with Session(engine) as s:
        row = s.get(EvidenceRow, record_id)
        return _stored(row) if row is not None else None


def for_proofing(engine: Engine, proofing_id: str) -> list[StoredEvidence]:
    """The records of one proofing, oldest first."""
    with Session(engine) as s:
        rows = s.scalars(select(EvidenceRow).where(EvidenceRow.proofing_id == proofing_id)
                         .order_by(EvidenceRow.created_at, EvidenceRow.id))
        return [_stored(r) for r in rows]


def purge_older_than(engine: Engine, cutoff: datetime) -> int:
    """Delete every record issued before ``cutoff`` (aware); returns how many went. Idempotent: a second
    run with the same cutoff deletes nothing, and records issued at or after the cutoff are kept."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware (UTC)")
    # UTC on both sides: SQLite keeps the wall-clock time without its zone, and everything is stored as UTC
    cutoff = cutoff.astimezone(UTC)
    with Session(engine) as s, s.begin():
        result = s.execute(delete(EvidenceRow).where(EvidenceRow.created_at < cutoff))
        return int(result.rowcount or 0)


def _stored(row: EvidenceRow) -> StoredEvidence:
    at = row.created_at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite hands back naive UTC
    return StoredEvidence(row.id, row.proofing_id, at, row.jws)
