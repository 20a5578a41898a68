"""Sealed templates over HTTP: the person keeps their face template, sealed; the server keeps none.

- Enrolment: ``PUT /v1/proofings/{id}/selfie?sealed_template=true``. On an accepted proofing the selfie's
  template is sealed under a fresh recovery code and returned once in the decision (``sealed_template``);
  a newer one (the next accepted proofing with the flag) revokes every earlier one.
- Re-authentication: ``POST /v1/reauth`` (operator key) with the sealed template, its recovery code and a
  live selfie; the template is unsealed in memory on the verification thread, compared 1:1 and dropped.
  An accept is recorded as a proofing decision of its own (outcome and scores only) and brings a fresh
  person token, so "my numbers" works without the document. With ``number`` the number must be one of the
  operator's and registered to that same person (the SIM-swap check).
- Revocation: ``DELETE /v1/me/sealed-template`` with the person token.

Why an operator key for /v1/reauth: anonymous clients cannot hammer the face engine or probe sealed
templates, and at a SIM swap it is the operator who serves the person (and whose number is checked).

Nothing of a sealed template, its recovery code or the template inside it is logged, stored or echoed;
the database holds a salted hash of each sealed template and whether it is revoked (``idproof.sealed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from idproof.decision import Decision, Match, finding
from idproof.reasons import Reason
from idproof.service.deps import Operator, PersonHandle, ServiceState, State
from idproof.service.models import ReauthOut, ReauthReasonOut, SealedTemplateOut
from idproof.service.problems import ProblemError, problem_responses
from idproof.service.uploads import _too_large, read_form_upload

if TYPE_CHECKING:
    from idproof.sealed import ReauthResult

__all__ = ["issue_sealed_template", "me", "reauth"]

log = logging.getLogger("idproof.service")

reauth = APIRouter(prefix="/v1/reauth", tags=["sealed template"])
me = APIRouter(prefix="/v1/me", tags=["person"])

TEXT_PARTS = ("sealed", "recovery_code", "number")
_TEXT_LIMITS = {"sealed": 16_384, "recovery_code": 256, "number": 64}  # characters; a sealed template is ~1.1 k
_TEXT_BYTES = sum(_TEXT_LIMITS.values())
_binary = {"type": "string", "format": "binary"}
REAUTH_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["sealed", "recovery_code", "selfie"],
    "properties": {
        "sealed": {"type": "string", "maxLength": _TEXT_LIMITS["sealed"],
                   "description": "The sealed template as issued (the text starting with IDPS:, e.g. read from its QR code)."},
        "recovery_code": {"type": "string", "maxLength": _TEXT_LIMITS["recovery_code"],
                          "description": "The recovery code issued with it (case, spaces and dashes do not matter)."},
        "selfie": {**_binary, "description": "A live selfie (JPEG or PNG), read in memory and dropped."},
        "number": {"type": "string", "maxLength": _TEXT_LIMITS["number"],
                   "description": "Optional (SIM swap): one of your numbers; it must be registered to the person "
                                  "the sealed template was issued to, or the answer is a reject "
                                  "(sealed_handle_mismatch)."},
    },
}}}}}

_SEALED_REFUSALS = frozenset({
    "sealed_malformed", "sealed_signature_invalid", "sealed_handle_mismatch", "sealed_unknown", "sealed_revoked",
    "sealed_model_mismatch", "sealed_secret_wrong", "recovery_code_invalid",
})
_NUMBER_MISMATCH_TEXT = ("This number is not registered to the person this sealed template was issued to. "
                         "Check the number, or have the holder of the number prove themselves with their document.")


def _not_configured() -> ProblemError:
    return ProblemError(404, "sealed_templates_not_configured", "This server does not issue or accept sealed templates.",
                        fix="Start the server with --sealing-key PATH (make the key once with "
                            "`idproof sealed keygen PATH`); until then, prove with the document.")


def _audit(state: ServiceState, action: str, actor: str, handle: str | None, details: dict) -> None:
    """One row of the registry's audit trail (the registry's own writer, in its own transaction)."""
    registry = state.registry
    registry._tx(lambda conn: registry._audit(conn, registry._now(), action, actor, None, handle, details))


# --- enrolment, from an accepted proofing -------------------------------------------------------------------------


def issue_sealed_template(state: ServiceState, decision: Decision, operator_id: str) -> SealedTemplateOut | None:
    """Seal an accepted decision's selfie template for its identity (revoking earlier ones); None when the
    server has no sealing key or the decision is not an accepted one with a handle and a template."""
    if state.sealing_key is None or not decision.accepted or not decision.subject_handle:
        return None
    if decision.selfie_template is None:
        return None
    from idproof.sealed import SealedTemplateError
    from idproof.sealed.template import parse_sealed

    try:
        sealed, code = state.sealed.enroll(decision.subject_handle, decision.selfie_template)  # type: ignore[union-attr]
    except SealedTemplateError as e:  # the template lacks this service's vectors: nothing to seal
        log.warning("no sealed template issued: %s", e.code)
        return None
    version = parse_sealed(sealed).version
    _audit(state, "sealed_enrol", operator_id, decision.subject_handle, {"version": version})
    return SealedTemplateOut(sealed=sealed, recovery_code=code, version=version)


# --- re-authentication --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReauthDecision(Decision):
    """A re-authentication as a proofing decision, for the registry (and evidence): outcome, score, threshold
    and its reasons as the sealed layer names them (``sealed_secret_wrong``, ``match:match``, ...)."""

    reauth_reasons: tuple[str, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.reauth_reasons


def reauth_decision(state: ServiceState, result: ReauthResult) -> ReauthDecision:
    from idproof import __version__
    from idproof.face.embed import model_versions

    v = state.verifier()
    face = result.reason not in _SEALED_REFUSALS  # the template opened and the selfie went to the face engine
    checks = ["sealed_template_signature"]
    if result.handle is not None and result.reason not in ("sealed_signature_invalid", "sealed_malformed"):
        checks.append("sealed_template_revocation")
    if face:
        checks += ["sealed_template_unseal", "image_intake", "face_detection", "quality_gate"]
        if "selfie.pad" in result.timings_ms:
            checks.append("presentation_attack_detection")
        checks.append("face_match_1to1")
    match = None
    if result.score is not None:
        match = Match(score=result.score, threshold=result.threshold,
                      target_fmr=result.target_fmr if result.target_fmr is not None else v.threshold.fmr, model_scores={})
    return ReauthDecision(
        outcome=result.outcome,
        findings=(),
        match=match,
        scorer=v.scorer.name,
        calibration_version=v.calibration.version,
        model_versions=model_versions(["retinaface_mobilenet", "mediapipe_face_landmarker", *v.engine.models]) if face else {},
        timings_ms=dict(result.timings_ms),
        checks_performed=tuple(checks),
        code_version=__version__,
        document={"source": "sealed_template", **({"sealed_version": result.version} if result.version else {})},
        subject_handle=result.handle,
        reauth_reasons=tuple(result.reasons),
    )


def _reauthenticate(state: ServiceState, sealed: str, code: str, selfie: bytes,
                    expected_handle: str | None) -> tuple[ReauthResult, ReauthDecision]:
    result = state.sealed.reauthenticate(sealed, code, selfie, expected_handle=expected_handle)  # type: ignore[union-attr]
    return result, reauth_decision(state, result)


def _reason_text(reason: str, fallback: str) -> str:
    """The person-facing text of one face reason (``selfie:low_quality:blur``); ``fallback`` otherwise."""
    subject, _, rest = reason.partition(":")
    for r in sorted(Reason, key=lambda r: -len(r.value)):  # longest first: "low_quality:blur" before "..."
        if rest == r.value or rest.startswith(r.value + ":"):
            return finding(r, subject).text  # type: ignore[arg-type]
    return fallback


def _text_part(parts: dict[str, bytes], name: str) -> str | None:
    raw = parts.get(name)
    if not raw:
        return None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ProblemError(422, "invalid_reauth_field", f"The part {name!r} is not UTF-8 text.",
                           fix=f"Send {name} as plain text, exactly as it was issued.") from None
    if len(text) > _TEXT_LIMITS[name]:
        raise ProblemError(422, "invalid_reauth_field", f"The part {name!r} is longer than {_TEXT_LIMITS[name]:,} characters.",
                           fix=f"Send {name} exactly as it was issued.")
    return text or None


@reauth.post("", response_model=ReauthOut, openapi_extra=REAUTH_BODY,
             responses=problem_responses(401, 403, 404, 413, 415, 422, 500),
             summary="Re-authenticate a person with their sealed template, recovery code and a live selfie")
async def post_reauth(request: Request, state: State, op: Operator) -> ReauthOut:
    """Multipart parts `sealed`, `recovery_code`, `selfie` (and optionally `number`). The sealed template's
    issuer signature, revocation and version are checked, the recovery code opens it in memory, and the
    selfie (quality gate, passive PAD) is compared 1:1 with it at the calibrated threshold; then the
    template is dropped. A refused template or code is an answer, not an error: `reject` or `retry` with
    the reason (sealed_secret_wrong, sealed_revoked, ...). An `accept` is recorded as a proofing decision
    (outcome and scores only) and returns a fresh `person_token`.

    Needs an operator key (the operator serving the person, e.g. at a SIM swap): anonymous clients cannot
    use the face engine or probe sealed templates. With `number`, the number must be one of this operator's
    (else 404 / 403 as for GET /v1/numbers/{number}) and registered to the same person (else a reject)."""
    if state.sealing_key is None:
        raise _not_configured()
    parts = await read_form_upload(request, (*TEXT_PARTS, "selfie"), state.max_upload_bytes + _TEXT_BYTES)
    selfie = parts.pop("selfie", b"")
    if len(selfie) > state.max_upload_bytes:
        raise _too_large(state.max_upload_bytes)
    sealed, code, number = (_text_part(parts, p) for p in TEXT_PARTS)
    del parts
    missing = [name for name, value in (("sealed", sealed), ("recovery_code", code), ("selfie", selfie)) if not value]
    if missing:
        raise ProblemError(422, "reauth_fields_missing", f"The upload lacks: {', '.join(missing)}.",
                           fix="Send the sealed template, its recovery code and a selfie as the multipart parts "
                               "sealed, recovery_code and selfie.")
    expected = None
    if number is not None:  # the SIM-swap check: one of this operator's numbers, registered to whom?
        binding = await run_in_threadpool(state.registry.lookup, number, op)
        expected = binding.handle

    # face work: on the verification thread, like proofings (the sealed layer logs the attempt itself)
    run = partial(_reauthenticate, state, sealed, code, selfie, expected)
    del code, sealed
    result, decision = await state.run_verifier(run)
    del run
    record = await run_in_threadpool(state.registry.record_proofing, decision, operator_id=op.operator_id)
    token = await run_in_threadpool(state.registry.issue_person_token, record.id) if result.accepted else None
    evidence = None
    if state.evidence_key is not None:
        from idproof.service.routes_proofings import sign_evidence

        evidence = await run_in_threadpool(sign_evidence, state, decision, record.id, {"selfie": selfie})
    del selfie

    texts = [result.text] if len(result.reasons) == 1 else [_reason_text(r, result.text) for r in result.reasons]
    if expected is not None and result.reason == "sealed_handle_mismatch":
        texts = [_NUMBER_MISMATCH_TEXT]
    return ReauthOut(
        outcome=result.outcome.value,
        reasons=[ReauthReasonOut(reason=r, text=t) for r, t in zip(result.reasons, texts)],
        score=result.score, threshold=result.threshold, target_fmr=result.target_fmr,
        person_token=token, evidence=evidence,
    )


# --- revocation, by the person ------------------------------------------------------------------------------------


@me.delete("/sealed-template", status_code=204, responses=problem_responses(401, 404, 422, 500),
           summary="Revoke your sealed templates (lost, stolen, or no longer wanted)")
def revoke_sealed_template(state: State, handle: PersonHandle) -> Response:
    """Every sealed template issued to you stops working at once. Get a new one with your next proofing
    (the operator asks for one with `?sealed_template=true`). Answers 204 also when there was none."""
    if state.sealing_key is None:
        raise _not_configured()
    revoked = state.sealed.revoke(handle)  # type: ignore[union-attr]  (a sync handler: off the event loop)
    _audit(state, "sealed_revoke", "person", handle, {"revoked": revoked})
    return Response(status_code=204)
