"""Tables. Every column here is safe to leak: no image, template, name, date of birth or document number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


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
