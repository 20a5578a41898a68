"""Tables. Every column here is safe to leak: no image, template, name, date of birth or document number.

A person appears only as ``handle``: HMAC-SHA256(registry key, document identity), the key kept outside the
database (idproof.registry.handles). Secrets (API keys, person tokens) are stored as SHA-256 digests.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit sequence.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")
HANDLE = String(64)  # hex HMAC-SHA256
NUMBER = String(16)  # E.164: '+' and at most 15 digits


class ProofingDecision(Base):
    __tablename__ = "proofing_decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    target_fmr: Mapped[float | None] = mapped_column(Float)
    scorer: Mapped[str] = mapped_column(String(128))
    calibration_version: Mapped[str] = mapped_column(String(64))
    model_versions: Mapped[dict] = mapped_column(JSON)
    timings_ms: Mapped[dict] = mapped_column(JSON)
    code_version: Mapped[str] = mapped_column(String(32))
    # 0002: what the registry needs from a proofing: whose it is (keyed handle) and which operator ran it
    subject_handle: Mapped[str | None] = mapped_column(HANDLE)
    operator_id: Mapped[str | None] = mapped_column(String(36))


class Operator(Base):
    """An operator (binds numbers) or an auditor (reads the audit trail). The API key is stored as SHA-256."""

    __tablename__ = "operators"
    __table_args__ = (CheckConstraint("role IN ('operator', 'auditor')", name="ck_operators_role"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))  # the company's display name, never a person's
    role: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegistryIdentity(Base):
    """One row per handle: the row that concurrent binds for one person lock (the cap is checked under it)."""

    __tablename__ = "identities"

    handle: Mapped[str] = mapped_column(HANDLE, primary_key=True)


class NumberBinding(Base):
    __tablename__ = "bindings"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="ck_bindings_status"),)

    number: Mapped[str] = mapped_column(NUMBER, primary_key=True)
    handle: Mapped[str] = mapped_column(ForeignKey("identities.handle"), index=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    bound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    proofing_id: Mapped[str] = mapped_column(ForeignKey("proofing_decisions.id"))


class PersonToken(Base):
    """A person's short-lived bearer token (SHA-256 of it), valid while its proofing is fresh."""

    __tablename__ = "person_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    handle: Mapped[str] = mapped_column(HANDLE)
    proofing_id: Mapped[str] = mapped_column(ForeignKey("proofing_decisions.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditRecord(Base):
    """Append-only (database triggers refuse UPDATE and DELETE); written in the same transaction as the change."""

    __tablename__ = "audit_log"
    __table_args__ = ({"sqlite_autoincrement": True},)  # never reuse a seq

    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(36))  # an operator id, or "person"
    number: Mapped[str | None] = mapped_column(NUMBER)
    handle: Mapped[str | None] = mapped_column(HANDLE)
    details: Mapped[dict] = mapped_column(JSON)


class OperatorEventRecord(Base):
    """The webhook outbox: what an operator must be told (a dispute of one of its numbers)."""

    __tablename__ = "operator_events"
    __table_args__ = (
        Index("ix_operator_events_operator_id_id", "operator_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.id"))
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(NUMBER)
    details: Mapped[dict] = mapped_column(JSON)


# Tables whose models live with the code that owns them, on this Base, so that Base.metadata is the whole
# schema (the migrations are checked against it). Imported last: they import Base from here.
from idproof.audit import log as _audit_log  # noqa: E402,F401  (audit_leaves / audit_nodes / audit_tree_heads)
from idproof.evidence import store as _evidence_store  # noqa: E402,F401
from idproof.sealed import store as _sealed_store  # noqa: E402,F401
