"""RFC 9457 problem details: every error the service returns is ``application/problem+json`` with a
stable ``code`` (also the last segment of ``type``) a client can branch on, and a ``fix`` it can show.

Registry errors keep the registry's own code; their HTTP status is chosen here, once:

=========================  ======  =========================================================
code                       status  why
=========================  ======  =========================================================
invalid_number             422     the number is not a valid subscriber number
proofing_not_found         404     no proofing with that id
proofing_not_accepted      409     the proofing exists but did not end in accept
proofing_expired           409     the proofing is older than the registry's maximum age
identity_cap_reached       409     the person already holds the maximum number of lines
number_already_bound       409     the number is bound already
number_suspended           409     the number is suspended after a dispute
same_holder                409     a transfer to the holder who has the number already
not_the_holder             409     a transfer whose "current" proofing is not of the holder
number_not_found           404     the number is not bound
not_your_number            403     the number is bound through another operator / person
forbidden                  403     the key's role may not do this
=========================  ======  =========================================================

A registry code not in this table (a newer registry) is 409.
``proofing_expired`` and ``proofing_not_accepted`` are 409, not 422: the request is well-formed, but the
state of the proofing it names forbids the change; the fix is a new proofing, not a different request.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from idproof.errors import CalibrationError, IdproofError, ModelError

__all__ = [
    "PROBLEM_BASE", "PROBLEM_MEDIA_TYPE", "REGISTRY_STATUS", "Problem", "ProblemError", "install_handlers",
    "problem_response", "problem_responses",
]

log = logging.getLogger("idproof.service")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://idproof.dev/problems/"

REGISTRY_STATUS: dict[str, int] = {
    "invalid_number": 422,
    "proofing_not_found": 404,
    "proofing_not_accepted": 409,
    "proofing_expired": 409,
    "identity_cap_reached": 409,
    "number_already_bound": 409,
    "number_suspended": 409,
    "same_holder": 409,
    "not_the_holder": 409,
    "number_not_found": 404,
    "not_your_number": 403,
    "forbidden": 403,
}

# What the client should do, when the raising code did not say.
_FIX: dict[str, str] = {
    "invalid_number": "Send the phone number in international E.164 form, e.g. +441632960001.",
    "proofing_not_found": "Use the proofing_id returned by PUT /v1/proofings/{id}/selfie.",
    "proofing_not_accepted": "Only an accepted proofing can bind a number: run a new proofing (POST /v1/proofings).",
    "proofing_expired": "The proofing is too old: run a new proofing (POST /v1/proofings) and use its proofing_id.",
    "identity_cap_reached": "The person holds the maximum number of lines: they must end a contract first.",
    "number_already_bound": "The number is in use: transfer it (POST /v1/numbers/{number}/transfer) or choose another.",
    "number_suspended": "The number is suspended after a dispute by the person it is registered to: resolve the dispute first.",
    "same_holder": "The new proofing is of the current holder: nothing to transfer.",
    "not_the_holder": "current_proofing_id must be a fresh accepted proofing of the person the number is registered to.",
    "number_not_found": "Check the number; it is not bound to anyone.",
    "not_your_number": "Only the operator (or person) the number is bound to may do this.",
    "forbidden": "Use a key with the role this endpoint needs.",
    "unauthorized": "Send `Authorization: Bearer <key>` with a valid key.",
    "invalid_request": "Correct the fields listed in `errors` and send the request again.",
    "not_found": "Check the URL against /openapi.json.",
    "method_not_allowed": "Check the method against /openapi.json.",
    "bad_request": "Check the request against /openapi.json.",
    "not_acceptable": "Accept application/json (and application/problem+json for errors).",
    "upload_too_large": "Send a smaller file.",
    "unsupported_media_type": "Check the Content-Type against /openapi.json.",
    "http_error": "Check the request against /openapi.json.",
    "internal_error": "Try again later; if it persists, report the time of the request to the operator.",
}


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is: body/query/path/header, then field names.")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus ``code`` (stable, machine-readable) and ``fix`` (what to do)."""

    type: str = Field(description="A URI naming the problem kind: https://idproof.dev/problems/{code}.")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code; the last segment of `type`.")
    fix: str = Field(description="What the client or person should do about it.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(default=None, description="Field-level errors (validation only).")


class ProblemError(Exception):
    """Raise from a handler or dependency to answer with a problem."""

    def __init__(self, status: int, code: str, detail: str, *, fix: str = "", title: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.fix = fix or _FIX.get(code, "")
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}


def problem_response(status: int, code: str, detail: str, *, fix: str = "", title: str | None = None,
                     instance: str | None = None, headers: dict[str, str] | None = None,
                     errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + code, title=title or HTTPStatus(status).phrase, status=status, detail=detail, code=code,
        fix=fix or _FIX.get(code, ""), instance=instance, errors=errors,  # type: ignore[arg-type]
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers,
                        media_type=PROBLEM_MEDIA_TYPE)


_DESCRIPTIONS = {
    400: "Bad request", 401: "Missing or invalid key / token", 403: "The key's role may not do this",
    404: "Not found", 409: "The state of the named resource forbids this", 413: "Upload too large",
    415: "Unsupported Content-Type", 422: "Invalid request", 500: "Internal error", 503: "Busy: try again later",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented as problem+json."""
    return {s: {"model": Problem, "description": _DESCRIPTIONS.get(s, HTTPStatus(s).phrase),
                "content": {PROBLEM_MEDIA_TYPE: {}}} for s in statuses}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Field, message and type only: the offending input is never echoed back (it may be personal data).
    return [{"loc": [p if isinstance(p, (str, int)) else str(p) for p in e.get("loc", ())],
             "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 413: "upload_too_large",
               415: "unsupported_media_type"}


def install_handlers(app: FastAPI) -> None:
    from idproof.registry.errors import RegistryError  # the registry core's errors

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, fix=exc.fix, title=exc.title,
                                instance=request.url.path, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return problem_response(422, "invalid_request", f"The request is not valid: {where}." if where else
                                "The request is not valid.", instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 400 and "parsing the body" in detail:  # FastAPI: body not decodable (not UTF-8)
            return problem_response(422, "invalid_request", "The request body cannot be decoded as UTF-8 JSON.",
                                    fix="Send a UTF-8 JSON body with Content-Type: application/json.",
                                    instance=request.url.path)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no resource at {request.url.path}."
        return problem_response(exc.status_code, code, detail, instance=request.url.path,
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(RegistryError)
    async def _registry(request: Request, exc: RegistryError) -> JSONResponse:
        status = REGISTRY_STATUS.get(exc.code, 409)
        return problem_response(status, exc.code, exc.message, fix=exc.fix, instance=request.url.path)

    @app.exception_handler(IdproofError)
    async def _idproof(request: Request, exc: IdproofError) -> JSONResponse:
        if isinstance(exc, (ModelError, CalibrationError)):  # the server is misconfigured, not the request
            log.error("server misconfigured: %s", exc)
            return problem_response(500, exc.code, "The server cannot verify right now.",
                                    fix="The operator must fix the server installation (models / calibration).",
                                    instance=request.url.path)
        return problem_response(422, exc.code, exc.message, fix=exc.fix, instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "The server failed to handle the request.",
                                instance=request.url.path)
