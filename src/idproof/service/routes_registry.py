"""Registry endpoints: operators bind / transfer / unbind / look up their numbers and read their
events; a person lists and disputes the numbers registered to them; an auditor reads the audit trail.

Every rule (fresh accepted proofing, identity cap, ownership, suspension, audit rows) is the
registry's: these handlers translate HTTP to `idproof.registry.rules.Registry` calls and back.
No endpoint lists identities or handles, and none takes a face to search with.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from idproof.service.deps import Auditor, Operator, PersonHandle, State
from idproof.service.models import (
    E164,
    NUMBER_DOC,
    AuditEntryOut,
    AuditOut,
    BindIn,
    BindingOut,
    DisputeIn,
    EventOut,
    EventsOut,
    MyNumbersOut,
    TransferIn,
)
from idproof.service.problems import problem_responses

numbers = APIRouter(prefix="/v1/numbers", tags=["registry"])
events = APIRouter(prefix="/v1/events", tags=["registry"])
me = APIRouter(prefix="/v1/me", tags=["person"])
audit = APIRouter(prefix="/v1/audit", tags=["audit"])

Number = Annotated[str, Path(min_length=1, max_length=32, description=NUMBER_DOC, json_schema_extra={"pattern": E164})]
_AUTH = (401, 403, 422, 500)


def _binding(b) -> BindingOut:
    return BindingOut(number=b.number, operator_id=b.operator_id, status=b.status, bound_at=b.bound_at)


@numbers.post("", status_code=201, response_model=BindingOut, responses=problem_responses(*_AUTH, 404, 409),
              summary="Bind a number to the person of a fresh accepted proofing")
def bind(body: BindIn, state: State, op: Operator) -> BindingOut:
    return _binding(state.registry.bind(body.number, body.proofing_id, op))


@numbers.post("/{number}/transfer", response_model=BindingOut, responses=problem_responses(*_AUTH, 404, 409),
              summary="Transfer a number: both holders need a fresh accepted proofing")
def transfer(number: Number, body: TransferIn, state: State, op: Operator) -> BindingOut:
    return _binding(state.registry.transfer(number, current_proofing_id=body.current_proofing_id,
                                            new_proofing_id=body.new_proofing_id, operator=op))


@numbers.delete("/{number}", status_code=204, responses=problem_responses(*_AUTH, 404),
                summary="Unbind a number (contract ended)")
def unbind(number: Number, state: State, op: Operator) -> Response:
    state.registry.unbind(number, op)
    return Response(status_code=204)


@numbers.get("/{number}", response_model=BindingOut, responses=problem_responses(*_AUTH, 404),
             summary="Look up one of your own numbers")
def lookup(number: Number, state: State, op: Operator) -> BindingOut:
    return _binding(state.registry.lookup(number, op))


@events.get("", response_model=EventsOut, responses=problem_responses(*_AUTH),
            summary="Notifications for your numbers (e.g. disputes), oldest first")
def operator_events(state: State, op: Operator, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> EventsOut:
    rows = state.registry.operator_events(op, after_id=after, limit=limit)
    return EventsOut(events=[EventOut(id=e.id, at=e.at, kind=e.kind, number=e.number, details=e.details) for e in rows],
                     next_after=rows[-1].id if rows else after)


@me.get("/numbers", response_model=MyNumbersOut, responses=problem_responses(401, 422, 500),
        summary="Every number registered to you, across operators")
def my_numbers(state: State, handle: PersonHandle) -> MyNumbersOut:
    return MyNumbersOut(numbers=[_binding(b) for b in state.registry.my_numbers(handle)])


@me.post("/numbers/{number}/dispute", response_model=BindingOut, responses=problem_responses(401, 403, 404, 409, 422, 500),
         summary="Dispute a number registered to you: it is suspended and its operator notified")
def dispute(number: Number, state: State, handle: PersonHandle,
            body: Annotated[DisputeIn | None, Body()] = None) -> BindingOut:
    return _binding(state.registry.dispute(number, handle, (body or DisputeIn()).reason))


def subject_ref(handle: str | None) -> str | None:
    """The audit trail's reference to a person: a hash of the handle, so entries about one person can be
    followed without the handle itself (the registry's key to that person) leaving the registry."""
    if handle is None:
        return None
    return hashlib.sha256(b"idproof/audit-subject\x1f" + handle.encode()).hexdigest()[:32]


def _details(details: dict) -> dict:
    """Audit details with every handle (e.g. a transfer's ``from_handle``) replaced by its subject_ref."""
    out = {}
    for k, v in details.items():
        if "handle" in k and (v is None or isinstance(v, str)):
            out[k.replace("handle", "subject_ref")] = subject_ref(v)
        else:
            out[k] = v
    return out


@audit.get("", response_model=AuditOut, responses=problem_responses(*_AUTH),
           summary="The append-only audit trail (auditor keys only)")
def read_audit(state: State, who: Auditor, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditOut:
    rows = state.registry.audit(who, after_seq=after, limit=limit)
    return AuditOut(
        entries=[AuditEntryOut(seq=a.seq, at=a.at, action=a.action, actor=a.actor, number=a.number,
                               subject_ref=subject_ref(a.handle), details=_details(a.details)) for a in rows],
        next_after=rows[-1].seq if rows else after,
    )
