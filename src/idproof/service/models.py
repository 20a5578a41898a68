"""Request and response bodies. Nothing here carries a name, document number, date of birth, image or
identity handle: a person appears only through their numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

E164 = r"^\+[1-9][0-9]{7,14}$"
NUMBER_DOC = "Subscriber number in E.164 form, e.g. +441632960001 (spaces and dashes are tolerated and dropped)."
# The pattern documents the canonical form; the registry enforces it (422 invalid_number), after dropping
# spaces and dashes, so it is not enforced here as well.
NumberStr = Field(min_length=1, max_length=32, description=NUMBER_DOC, json_schema_extra={"pattern": E164})
ProofingId = Field(min_length=1, max_length=64, description="The proofing_id of a decision.")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    status: Literal["ok"]
    version: str


# --- proofing sessions ---------------------------------------------------------------------------------

class SessionOut(BaseModel):
    session_id: str
    expires_at: datetime = Field(description="The session and its uploads are forgotten at this time.")
    has_document: bool
    has_chip: bool
    max_upload_bytes: int
    capture_url: str = Field(
        description="The person's capture page for this session (camera, liveness challenge, selfie frames). Its "
                    "token works for this session only, once; give the link to the person, never the API key.")
    capture: Literal["open", "challenged", "verifying", "done"] = Field(
        description="Where the capture page is: open (not used yet), challenged (a challenge was issued), "
                    "verifying (frames are being checked), done (see `decision`).")
    decision: DecisionOut | None = Field(
        default=None, description="The decision made from the capture page's frames, once `capture` is done.")


class ReasonOut(BaseModel):
    reason: str = Field(description="Machine-readable, e.g. selfie:low_quality:blur, document:bad_image.")
    code: str
    subject: Literal["document", "chip", "selfie", "match", "liveness", "capture"]
    qualifier: str
    text: str = Field(description="What to tell the person.")


class DecisionOut(BaseModel):
    proofing_id: str = Field(description="Bind numbers with this id while it is fresh.")
    outcome: Literal["accept", "reject", "retry"]
    reasons: list[ReasonOut]
    score: float | None
    threshold: float | None
    target_fmr: float | None = Field(description="False-match rate the threshold is calibrated to.")
    scorer: str
    calibration_version: str
    checks_performed: list[str]
    document: dict[str, Any] = Field(description="What was checked on the document; no personal data.")
    decided_at: str
    person_token: str | None = Field(
        default=None,
        description="Accept only, shown once: give it to the person; `Authorization: Bearer <person_token>` "
                    "lets them list and dispute the numbers registered to them (GET /v1/me/numbers) while the "
                    "proofing is fresh (the registry's proofing max age, 15 minutes by default).",
    )


SessionOut.model_rebuild()


# --- registry ------------------------------------------------------------------------------------------

class BindIn(_In):
    number: str = NumberStr
    proofing_id: str = ProofingId


class TransferIn(_In):
    current_proofing_id: str = Field(min_length=1, max_length=64, description="A fresh accepted proofing of the current holder.")
    new_proofing_id: str = Field(min_length=1, max_length=64, description="A fresh accepted proofing of the new holder.")


class DisputeIn(_In):
    reason: str = Field(default="", max_length=500, description="Why the person disputes the number (free text).")


class BindingOut(BaseModel):
    number: str
    operator_id: str
    status: Literal["active", "suspended"]
    bound_at: datetime


class MyNumbersOut(BaseModel):
    numbers: list[BindingOut]


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    number: str
    details: dict[str, Any]


class EventsOut(BaseModel):
    events: list[EventOut]
    next_after: int = Field(description="Pass as `after` to get the events that follow.")


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    action: str
    actor: str
    number: str | None
    subject_ref: str | None = Field(
        description="A per-deployment reference to the person (a hash of the identity handle): equal for "
                    "entries about the same person, usable nowhere else.")
    details: dict[str, Any]


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int = Field(description="Pass as `after` to get the entries that follow.")
