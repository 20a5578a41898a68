"""The tamper-evident Merkle audit log over HTTP (idproof.audit; RFC 9162 in spirit).

- ``GET /v1/me/audit`` (person token): "who checked me": every leaf about the person's own handle (proofings,
  binds, lookups, transfers, disputes, template unseals), each with its inclusion proof against a signed tree
  head, which the server signs on the spot if the log grew. Everything needed to check it offline is in the
  answer; the key is at ``/.well-known/idproof-audit-key``.
- ``GET /v1/audit/tree-head``, ``GET /v1/audit/consistency``, ``GET /v1/audit/export`` (auditor keys): the
  latest signed tree head, a consistency proof between two sizes, and the whole log as JSON lines for
  ``idproof audit verify``.
- ``GET /.well-known/idproof-audit-key``: the Ed25519 public key that signs the tree heads (PEM and JWK).

Hashes are standard base64 (32 bytes), except ``payload_sha256``, which is hex as inside the leaf. The
registry (``Registry.who_checked_me``, ``audit_tree_head``, ``audit_consistency``, ``audit_export``) does the
work; these handlers translate.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from idproof.service.deps import Auditor, PersonHandle, State
from idproof.service.problems import ProblemError, problem_responses

__all__ = ["audit", "me", "well_known"]

me = APIRouter(prefix="/v1/me", tags=["person"])
audit = APIRouter(prefix="/v1/audit", tags=["audit"])
well_known = APIRouter(tags=["audit"])

KEY_PATH = "/.well-known/idproof-audit-key"
_AUTH = (401, 403, 422, 500)
_SIZE = Annotated[int, Query(ge=0, le=2**62)]


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


# --- response bodies ------------------------------------------------------------------------------------------


class TreeHeadOut(BaseModel):
    """A signed tree head. The Ed25519 signature covers exactly these four lines, UTF-8, each ending in a
    newline: ``idproof-audit/v1``, the size in decimal, the root in standard base64, the timestamp as given."""

    size: int = Field(description="Leaves in the tree.")
    root: str = Field(description="RFC 9162 Merkle tree hash (SHA-256) of the first `size` leaves, base64.")
    timestamp: str = Field(description="RFC 3339 UTC with microseconds, exactly as signed.")
    signature: str = Field(description="Ed25519 signature, base64.")
    key_id: str = Field(description=f"First 8 bytes (hex) of SHA-256 of the raw public key: see {KEY_PATH}.")


class MyAuditEntryOut(BaseModel):
    seq: int = Field(description="The leaf's index in the tree.")
    time: str = Field(description="RFC 3339 UTC with microseconds, exactly as in the leaf.")
    event: str = Field(description="proofing.decision, registry.bind / transfer / unbind / lookup / my_numbers / "
                                   "dispute, template_unseal.")
    payload: dict[str, Any] | None = Field(
        description="The details (operator, number, outcome, ...); null once purged by the retention policy (the "
                    "leaf still commits to it through payload_sha256).")
    payload_sha256: str | None = Field(description="SHA-256 (hex) of the payload's canonical JSON, as in the leaf.")
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf), base64.")
    inclusion_proof: list[str] = Field(description="RFC 9162 inclusion proof (audit path) of this leaf in the tree "
                                                   "of `tree_size` leaves, base64 hashes, leaf level first.")


class MyAuditOut(BaseModel):
    handle: str = Field(
        description="Your identity handle as the leaves carry it (a keyed pseudonym, not personal data): needed "
                    "to rebuild each leaf offline. A leaf is the canonical JSON (keys sorted, no spaces) of "
                    '{"event","handle","payload_sha256","seq","time","v":1}.')
    tree_size: int
    root: str = Field(description="The root the proofs lead to, base64.")
    signed: bool = Field(description="False when the server has no tree-head key: the proofs are then against the "
                                     "current root, which nothing signed.")
    tree_head: TreeHeadOut | None = Field(description="The signed head of the tree of `tree_size` leaves.")
    key_id: str | None = Field(description=f"The tree-head key's id; the key itself is at {KEY_PATH}.")
    entries: list[MyAuditEntryOut] = Field(description="Every leaf about you, oldest first.")


class ConsistencyOut(BaseModel):
    first: int
    second: int
    proof: list[str] = Field(description="RFC 9162 consistency proof from the tree of `first` leaves to the tree "
                                         "of `second` leaves, base64 hashes.")
    first_tree_head: TreeHeadOut | None = Field(description="The signed head of size `first`, when one was signed.")
    second_tree_head: TreeHeadOut | None = Field(description="The signed head of size `second`, when one was signed.")


class AuditKeyOut(BaseModel):
    key_id: str
    alg: str = Field(description="Ed25519.")
    pem: str = Field(description="SubjectPublicKeyInfo PEM (`idproof audit verify --public-key`).")
    jwk: dict[str, str] = Field(description="The same key as an RFC 8037 OKP JWK.")


def _head(h: Any) -> TreeHeadOut | None:
    if h is None:
        return None
    j = h.to_json()
    return TreeHeadOut(size=h.size, root=_b64(h.root), timestamp=j["timestamp"], signature=j["signature"],
                       key_id=h.key_id)


def _signer(state: State) -> Any:
    signer = state.registry.audit_log.signer
    if signer is None:
        raise ProblemError(404, "audit_not_signed", "This server does not sign audit tree heads.",
                           fix="Start the server with an audit tree-head key (make one with `idproof audit keygen`).")
    return signer


# --- the person -------------------------------------------------------------------------------------------------


@me.get("/audit", response_model=MyAuditOut, responses=problem_responses(401, 422, 500),
        summary="Who checked me: every audit-log entry about you, with inclusion proofs and a signed tree head")
def my_audit(state: State, handle: PersonHandle) -> MyAuditOut:
    view = state.registry.who_checked_me(handle)
    head = view.tree_head
    signer = state.registry.audit_log.signer
    entries = [
        MyAuditEntryOut(seq=e.seq, time=e.to_json()["time"], event=e.event, payload=e.payload,
                        payload_sha256=e.payload_hash.hex() if e.payload_hash is not None else None,
                        leaf_hash=_b64(p.leaf_hash), inclusion_proof=[_b64(h) for h in p.path])
        for e, p in view.entries
    ]
    return MyAuditOut(handle=view.handle, tree_size=view.tree_size, root=_b64(view.root), signed=view.signed,
                      tree_head=_head(head),
                      key_id=head.key_id if head is not None else (signer.key_id if signer is not None else None),
                      entries=entries)


# --- auditors ---------------------------------------------------------------------------------------------------


@audit.get("/tree-head", response_model=TreeHeadOut, responses=problem_responses(*_AUTH, 404),
           summary="The latest signed tree head of the audit log (signed now if the log grew)")
def tree_head(state: State, who: Auditor) -> TreeHeadOut:
    head = state.registry.audit_tree_head()
    if head is None:
        raise ProblemError(404, "audit_not_signed", "No audit tree head has been signed.",
                           fix="Start the server with an audit tree-head key (make one with `idproof audit keygen`).")
    return _head(head)  # type: ignore[return-value]


@audit.get("/consistency", response_model=ConsistencyOut, responses=problem_responses(*_AUTH, 404),
           summary="Consistency proof between two sizes of the audit log (RFC 9162 2.1.4)")
def consistency(state: State, who: Auditor, first: _SIZE,
                second: Annotated[int | None, Query(ge=0, le=2**62, description="Default: the latest signed tree "
                                                                            "head's size.")] = None) -> ConsistencyOut:
    reg = state.registry
    try:
        proof = reg.audit_consistency(first, second)
    except LookupError:
        raise ProblemError(404, "audit_not_signed", "No audit tree head has been signed, so `second` has no default.",
                           fix="Pass `second` (a size of the log), or start the server with a tree-head key.") from None
    except ValueError as e:
        raise ProblemError(422, "invalid_tree_size", f"No consistency proof for these sizes: {e}.",
                           fix="Pass 0 <= first <= second <= the log's size (GET /v1/audit/tree-head).") from None
    log = reg.audit_log
    return ConsistencyOut(first=proof.old_size, second=proof.new_size, proof=[_b64(h) for h in proof.path],
                          first_tree_head=_head(log.tree_head(proof.old_size)),
                          second_tree_head=_head(log.tree_head(proof.new_size)))


def _lines(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for rec in records:
        yield (json.dumps(rec, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


@audit.get("/export", response_class=StreamingResponse,
           responses={200: {"content": {"application/x-ndjson": {}},
                            "description": "JSON lines: a header, every signed tree head, every leaf (as "
                                           "`idproof audit export` writes them)."},
                      **problem_responses(*_AUTH)},
           summary="The whole audit log as JSON lines, for `idproof audit verify` (signs a fresh tree head first)")
def export(state: State, who: Auditor) -> StreamingResponse:
    records = state.registry.audit_export(who)
    return StreamingResponse(_lines(records), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="idproof-audit.jsonl"'})


# --- the key ---------------------------------------------------------------------------------------------------


@well_known.get(KEY_PATH, response_model=AuditKeyOut, responses=problem_responses(404),
                summary="The public key that signs the audit log's tree heads")
def audit_key(state: State) -> AuditKeyOut:
    """Check tree heads (and so every proof) offline: `idproof audit verify EXPORT --public-key KEY.pem`."""
    from idproof.audit.sth import raw_public_key

    signer = _signer(state)
    x = base64.urlsafe_b64encode(raw_public_key(signer.public_key)).decode().rstrip("=")
    return AuditKeyOut(key_id=signer.key_id, alg="Ed25519", pem=signer.public_pem().decode(),
                       jwk={"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig", "kid": signer.key_id})
