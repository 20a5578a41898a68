"""Proofing sessions: create → document photo and/or chip files → selfie → decision.

The uploads live in the session (process memory) until the selfie arrives; the selfie request takes
the session out of the store, verifies, records the decision (no images, no templates) and drops
every byte. Whatever the outcome, the session is then gone: a retry is a new session.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from idproof.service.deps import Operator, State
from idproof.service.models import DecisionOut, ReasonOut, SessionOut
from idproof.service.problems import ProblemError, problem_responses
from idproof.service.routes_credential import credential_offer
from idproof.service.routes_sealed import issue_sealed_template
from idproof.service.sessions import BudgetSpent, ProofingSession
from idproof.service.uploads import (
    IMAGE_MEDIA_TYPES,
    read_chip_upload,
    read_image_upload,
)

router = APIRouter(prefix="/v1/proofings", tags=["proofing"])

_AUTH = (401, 403, 422, 500)
_binary = {"type": "string", "format": "binary"}
IMAGE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {"file": _binary}}},
    **{t: {"schema": _binary} for t in IMAGE_MEDIA_TYPES},
}}}
CHIP_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["sod", "dg1", "dg2"],
        "properties": {"sod": _binary, "dg1": _binary, "dg2": _binary},
    }},
}}}


def capture_url(request: Request, token: str) -> str:
    """The capture page's URL for a capture token (absolute, as this request reached the server)."""
    return str(request.url_for("capture_page").include_query_params(s=token))


def decision_out(decision, record, person_token: str | None, credential_offer=None) -> DecisionOut:
    m = decision.match
    return DecisionOut(
        proofing_id=record.id,
        outcome=decision.outcome.value,
        reasons=[ReasonOut(reason=f.reason, code=f.code.value, subject=f.subject, qualifier=f.qualifier, text=f.text)
                 for f in decision.findings],
        score=m.score if m else None, threshold=m.threshold if m else None, target_fmr=m.target_fmr if m else None,
        scorer=decision.scorer, calibration_version=decision.calibration_version,
        checks_performed=list(decision.checks_performed), document=decision.document,
        decided_at=decision.decided_at, person_token=person_token, credential_offer=credential_offer,
    )


def _not_found(session_id: str) -> ProblemError:
    return ProblemError(404, "session_not_found", "No open proofing session with this id (expired, finished, or never created).",
                        fix="Start a new proofing with POST /v1/proofings.")


def _busy(detail: str) -> ProblemError:
    return ProblemError(503, "service_busy", detail, fix="Try again in a minute.", headers={"Retry-After": "60"})


def _session_out(state, s: ProofingSession, request: Request) -> SessionOut:
    left = max(0.0, s.expires - time.monotonic())
    return SessionOut(session_id=s.id, expires_at=datetime.now(UTC) + timedelta(seconds=left),
                      has_document=s.document is not None, has_chip=s.chip is not None,
                      max_upload_bytes=state.max_upload_bytes,
                      capture_url=capture_url(request, s.capture_token), capture=s.capture_stage,
                      decision=s.result if isinstance(s.result, DecisionOut) else None)


@router.post("", status_code=201, response_model=SessionOut, responses=problem_responses(*_AUTH, 503),
             summary="Start a proofing session")
def create_session(request: Request, state: State, op: Operator) -> SessionOut:
    """The response's `capture_url` is the person's capture page for this session (see /capture)."""
    s = state.sessions.create(op.operator_id)
    if s is None:
        raise _busy("Too many proofing sessions are open.")
    return _session_out(state, s, request)


@router.get("/{session_id}", response_model=SessionOut, responses=problem_responses(*_AUTH, 404),
            summary="What a session has received so far")
def get_session(session_id: str, request: Request, state: State, op: Operator) -> SessionOut:
    s = state.sessions.get(session_id, op.operator_id)
    if s is None:
        raise _not_found(session_id)
    return _session_out(state, s, request)


@router.delete("/{session_id}", status_code=204, responses=problem_responses(*_AUTH, 404),
               summary="Abandon a session (its uploads are dropped)")
def drop_session(session_id: str, state: State, op: Operator) -> Response:
    if not state.sessions.drop(session_id, op.operator_id):
        raise _not_found(session_id)
    return Response(status_code=204)


async def _store(state: State, request: Request, session_id: str, operator_id: str, **upload) -> SessionOut:
    try:
        s = state.sessions.put(session_id, operator_id, **upload)
    except BudgetSpent:
        raise _busy("The server holds too many uploads right now.") from None
    if s is None:
        raise _not_found(session_id)
    return _session_out(state, s, request)


@router.put("/{session_id}/document", response_model=SessionOut, openapi_extra=IMAGE_BODY,
            responses=problem_responses(*_AUTH, 404, 413, 415, 503),
            summary="Upload a photo of the identity document page (with its MRZ)")
async def put_document(session_id: str, request: Request, state: State, op: Operator) -> SessionOut:
    """The image as the raw body (`image/jpeg`, `image/png`, ... or `application/octet-stream`) or as the
    multipart part `file`. Kept in memory only, until the selfie arrives or the session expires."""
    if state.sessions.get(session_id, op.operator_id) is None:
        raise _not_found(session_id)
    data = await read_image_upload(request, state.max_upload_bytes, "document photo")
    return await _store(state, request, session_id, op.operator_id, document=data)


@router.put("/{session_id}/chip", response_model=SessionOut, openapi_extra=CHIP_BODY,
            responses=problem_responses(*_AUTH, 404, 409, 413, 415, 503),
            summary="Upload the chip files an NFC app read (EF.SOD, DG1, DG2)")
async def put_chip(session_id: str, request: Request, state: State, op: Operator) -> SessionOut:
    """Multipart parts `sod`, `dg1`, `dg2` (raw elementary-file bytes). The chip is checked by passive
    authentication against the server's CSCA trust store when the selfie arrives."""
    if state.sessions.get(session_id, op.operator_id) is None:
        raise _not_found(session_id)
    if state.trust is None:
        raise ProblemError(409, "chip_not_configured", "This server has no CSCA trust store, so it cannot check chips.",
                           fix="Upload a photo of the document page instead, or ask the operator to start the server with --csca.")
    chip = await read_chip_upload(request, state.max_upload_bytes)
    return await _store(state, request, session_id, op.operator_id, chip=chip)


@router.put("/{session_id}/selfie", response_model=DecisionOut, openapi_extra=IMAGE_BODY,
            responses=problem_responses(*_AUTH, 404, 409, 413, 415),
            summary="Upload the selfie: verify, record the decision, close the session")
async def put_selfie(
    session_id: str, request: Request, state: State, op: Operator,
    sealed_template: Annotated[bool, Query(
        description="On accept, also issue the person a sealed template of this selfie and its recovery code "
                    "(`sealed_template` in the decision, shown once), for re-authentication without the document "
                    "(POST /v1/reauth); it revokes their earlier ones. Ignored when the server has no sealing key.",
    )] = False,
) -> DecisionOut:
    """Runs the 1:1 verification (document or chip portrait vs. selfie), records the decision in the
    registry (outcome and scores only) and drops every uploaded byte. On `accept`, the response carries
    `proofing_id` (to bind numbers) and a one-time `person_token` for the person, and with
    `?sealed_template=true` a sealed template and recovery code for the person to keep. A `retry` lists
    what to fix; start a new session for the next attempt."""
    s = state.sessions.get(session_id, op.operator_id)
    if s is None:
        raise _not_found(session_id)
    if s.capture_stage != "open":
        raise ProblemError(409, "capture_in_progress", "The person has started the capture page for this session.",
                           fix="Wait for the capture page's decision (GET /v1/proofings/{id}), or start a new session.")
    if s.document is None and s.chip is None:
        raise ProblemError(409, "document_missing", "The session has no document photo or chip data yet.",
                           fix="Upload the document first: PUT /v1/proofings/{id}/document (or /chip).")
    selfie = await read_image_upload(request, state.max_upload_bytes, "selfie")
    s = state.sessions.take(session_id, op.operator_id)
    if s is None:
        raise _not_found(session_id)
    document, chip = s.document, s.chip
    s.document = s.chip = None  # the session is out of the store; after the call below no reference remains
    decision = await state.verify(document, selfie, chip)
    inputs = evidence_inputs(document=document, selfie=selfie, chip=chip) if state.evidence_key else {}
    del document, chip, selfie
    record = await run_in_threadpool(state.registry.record_proofing, decision, operator_id=op.operator_id)
    token = await run_in_threadpool(state.registry.issue_person_token, record.id) if decision.accepted else None
    evidence = await run_in_threadpool(sign_evidence, state, decision, record.id, inputs)
    sealed = None
    if sealed_template and decision.accepted:
        sealed = await run_in_threadpool(issue_sealed_template, state, decision, op.operator_id)
    out = decision_out(decision, record, token, credential_offer(state, decision))
    return out.model_copy(update={"evidence": evidence, "sealed_template": sealed})


def evidence_inputs(*, document: bytes | None = None, selfie: bytes | None = None, chip: dict[str, bytes] | None = None,
                    frames: list[bytes] | None = None) -> dict:
    """What the evidence record hashes (salted): the uploads as received. Never chip DG1: an MRZ is guessable."""
    out: dict = {k: v for k, v in (("document", document), ("selfie", selfie)) if v is not None}
    out |= {f"chip.{k.lower()}": v for k, v in (chip or {}).items() if k.lower() in ("sod", "dg2")}
    if frames:
        out["frames"] = frames
    return out


def sign_evidence(state, decision, proofing_id: str, inputs: dict, capture_nonce: str | None = None) -> str | None:
    """Sign the decision's evidence record and keep it (personal-data-free) for the person and the operator."""
    if state.evidence_key is None:
        return None
    from idproof.evidence import from_decision
    from idproof.evidence import store as evidence_store

    record = from_decision(decision, inputs=inputs, capture_nonce=capture_nonce, proofing_id=proofing_id)
    token = state.evidence_key.sign(record)
    evidence_store.save(state.registry.engine, token, record)
    return token
