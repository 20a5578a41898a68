"""What the server keeps of a sealed template: that it issued it, and whether it is still valid. Never the
template: a salted hash of the sealed blob only (so a leaked table cannot even tell which blob is whose)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idproof.storage.models import HANDLE, Base

__all__ = ["SealedTemplateRecord", "blob_hash", "new_salt"]


class SealedTemplateRecord(Base):
    """One row per (handle, version) issued. ``revoked_at`` is set by a renewal or an explicit revocation."""

    __tablename__ = "sealed_templates"
    __table_args__ = (CheckConstraint("version >= 1", name="ck_sealed_templates_version"),)

    handle: Mapped[str] = mapped_column(HANDLE, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    blob_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256(salt ‖ sealed blob)
    salt: Mapped[str] = mapped_column(String(32))  # hex, 16 random bytes per row
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def new_salt() -> str:
    return secrets.token_hex(16)


def blob_hash(salt: str, blob: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + blob).hexdigest()
