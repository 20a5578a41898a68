"""The subscriber registry: phone numbers bound to identity handles, under the telecom rules.

- ``bind`` needs an accepted proofing younger than ``proofing_max_age``; the number is bound to that
  proofing's handle. One identity holds at most ``cap`` numbers across all operators (active + suspended),
  enforced under a lock on the identity's row, so concurrent binds can never exceed it.
- ``transfer`` needs fresh accepted proofings of both the current and the new holder; one transaction.
- Operators see and change only their own numbers; a person (``my_numbers``, ``dispute``) sees only the
  numbers of their own handle; auditors read the audit trail and nothing else. Nothing lists identities.
- Every bind / transfer / unbind / lookup / dispute / my_numbers writes its ``audit_log`` row in the same
  transaction as the change: both are there, or neither.
- The same transaction appends the change's leaf (leaves) to the tamper-evident Merkle audit log
  (``idproof.audit``): ``registry.<action>`` with the identity's handle, and the details (actor, number,
  proofing id, status, ...) only in the leaf's purgeable payload, never in a leaf field. ``record_proofing``
  appends ``proofing.decision``. ``who_checked_me`` gives a person their own leaves with inclusion proofs
  against a signed tree head (``audit_signer``).
- ``bind_many`` is bind for a batch (an operator's onboarding queue): the same rules and answers, one audit
  row and one leaf per bind, one transaction for the batch, written with a few set-wise statements instead of
  ~9 per bind (the leaves with one ``MerkleLog.append_many``).

Locking: PostgreSQL locks the ``identities`` row (``INSERT .. ON CONFLICT DO NOTHING`` then ``SELECT .. FOR
UPDATE``), several in sorted order; SQLite has one writer, taken up front with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self, TypeVar

from sqlalchemy import (
    JSON,
    any_,
    bindparam,
    cast,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.types import UserDefinedType

from idproof.audit.log import AuditEntry as LeafEntry
from idproof.audit.log import AuditEvent, ConsistencyProof, InclusionProof, MerkleLog
from idproof.audit.sth import SignedTreeHead, TreeHeadSigner
from idproof.decision import Decision
from idproof.registry.errors import (
    ForbiddenError,
    IdentityCapReachedError,
    InvalidNumberError,
    NotTheHolderError,
    NotYourNumberError,
    NumberAlreadyBoundError,
    NumberNotFoundError,
    NumberSuspendedError,
    ProofingExpiredError,
    ProofingNotAcceptedError,
    ProofingNotFoundError,
    RegistryError,
    SameHolderError,
)
from idproof.storage.models import (
    AuditRecord,
    NumberBinding,
    Operator,
    OperatorEventRecord,
    PersonToken,
    ProofingDecision,
    RegistryIdentity,
)
from idproof.storage.store import make_engine, migrate

__all__ = [
    "AuditEntry",
    "Binding",
    "OperatorEvent",
    "PersonAudit",
    "Principal",
    "ProofingRecord",
    "Registry",
    "normalize_number",
]

T = TypeVar("T")
Role = Literal["operator", "auditor"]
_ROLES = ("operator", "auditor")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")  # country codes never start with 0
_MAX_PAGE = 1000
_MAX_BATCH = 1000  # bind_many: requests per call (one transaction; its identity locks are held to the end)
_MAX_REASON = 500
_RETRIES = 8
_HANDLE = re.compile(r"[0-9a-f]{64}")  # a keyed handle (hex HMAC-SHA256), the only handle a leaf may carry


@dataclass(frozen=True)
class Principal:
    operator_id: str
    name: str
    role: Role


@dataclass(frozen=True)
class ProofingRecord:
    id: str
    outcome: str
    handle: str | None
    decided_at: datetime
    operator_id: str | None


@dataclass(frozen=True)
class Binding:
    number: str
    operator_id: str
    status: Literal["active", "suspended"]
    bound_at: datetime
    handle: str = field(repr=False)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    action: str
    actor: str
    number: str | None
    handle: str | None
    details: dict


@dataclass(frozen=True)
class PersonAudit:
    """A person's own leaves of the Merkle audit log ("who checked me"), each with its inclusion proof in the
    tree of ``tree_size`` leaves whose root is ``root``. ``tree_head`` is the signed head of that tree; None
    when the registry has no tree-head signer, and the proofs are then against ``root`` unsigned (``signed``
    False): they show the leaves are in that tree, not that the log committed to it."""

    handle: str = field(repr=False)
    entries: list[tuple[LeafEntry, InclusionProof]]
    tree_size: int
    root: bytes
    tree_head: SignedTreeHead | None

    @property
    def signed(self) -> bool:
        return self.tree_head is not None

    def verify(self, public_key: Any = None) -> bool:
        """Every proof against ``root``, every leaf's fields against its hash, every payload still present
        against its hash; and with a ``public_key`` the tree head's signature over ``root``."""
        if public_key is not None and (self.tree_head is None or not self.tree_head.verify(public_key)):
            return False
        if self.tree_head is not None and (self.tree_head.size, self.tree_head.root) != (self.tree_size, self.root):
            return False
        return all(
            e.handle == self.handle and e.payload_ok() and e.computed_leaf_hash() == p.leaf_hash == e.leaf_hash
            and p.tree_size == self.tree_size and p.verify(self.root)
            for e, p in self.entries
        )


@dataclass(frozen=True)
class OperatorEvent:
    id: int
    at: datetime
    operator_id: str
    kind: str
    number: str
    details: dict


class _TextArray(list):
    """Strings that psycopg sends to PostgreSQL as one binary ``text[]`` parameter. (As text, psycopg quotes
    every element with regular expressions: about 5 µs an element, most of bind_many's client time.)"""


class _TextArrayType(UserDefinedType):
    """The SQLAlchemy side of a _TextArray parameter: passed through untouched, typed by psycopg's binary dumper."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TEXT[]"


try:  # PostgreSQL's driver; registering a dumper for this private class changes nothing else
    import psycopg
    from psycopg.types.array import ListBinaryDumper

    psycopg.adapters.register_dumper(_TextArray, ListBinaryDumper)
    _BINARY_ARRAYS = True
except ImportError:  # pragma: no cover - SQLite-only installs
    _BINARY_ARRAYS = False


def _pg_array(values: list, item_type: Any) -> Any:
    """One array parameter: binary ``text[]`` for strings, else SQLAlchemy's ARRAY of the column's type."""
    if _BINARY_ARRAYS and all(isinstance(v, str) for v in values):
        return bindparam(None, _TextArray(values), type_=_TextArrayType())
    return bindparam(None, list(values), type_=ARRAY(item_type))


def normalize_number(number: str) -> str:
    """E.164: '+', then 8 to 15 digits. Spaces and dashes are dropped: '+44 7700-900123' -> '+447700900123'."""
    n = re.sub(r"[ \t-]", "", number) if isinstance(number, str) and len(number) <= 64 else ""
    if not _E164.fullmatch(n):
        # the number itself is left out of the message: messages end up in logs
        raise InvalidNumberError(
            "The phone number is not in E.164 form.",
            fix="Send '+', the country code and the subscriber number, 8 to 15 digits in all (e.g. +447700900123).",
        )
    return n


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _utc(dt: datetime | str) -> datetime:
    """Aware UTC. SQLite hands timestamps back naive; they were written as UTC."""
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _binding(row: Any) -> Binding:
    return Binding(row.number, row.operator_id, row.status, _utc(row.bound_at), row.handle)


def _leaf_handle(handle: str | None) -> str | None:
    """The handle a leaf may carry: a keyed handle, else none (a leaf field never holds anything else)."""
    return handle if isinstance(handle, str) and _HANDLE.fullmatch(handle) else None


def _leaf(action: str, actor: str, number: str | None, handle: str | None, details: dict) -> AuditEvent:
    """The Merkle leaf of a registry change: ``registry.<action>`` and the identity's handle in the leaf; the
    actor (operator id or "person"), the number and the other details only in the purgeable payload. Never a
    second person's handle: the payload is shown to the leaf's person (``who_checked_me``)."""
    payload: dict[str, Any] = {"actor": actor}
    if number is not None:
        payload["number"] = number
    payload.update((k, v) for k, v in details.items() if "handle" not in k)
    return AuditEvent(f"registry.{action}", _leaf_handle(handle), payload)


def _leaves(action: str, actor: str, number: str | None, handle: str | None, details: dict) -> list[AuditEvent]:
    """The leaves of one ``audit_log`` row: one, except a transfer's two, one for each holder ("side" from /
    to), each with only that holder's own proofing, so neither person's entries show the other's handle or
    proofing."""
    if action == "transfer":
        return [
            _leaf(action, actor, number, details.get("from_handle"), {"side": "from", "proofing_id": details.get("current_proofing_id")}),
            _leaf(action, actor, number, handle, {"side": "to", "proofing_id": details.get("new_proofing_id")}),
        ]
    return [_leaf(action, actor, number, handle, details)]


class Registry:
    """The registry over one database (SQLite or PostgreSQL). Migrates the schema on open.

    ``url_or_engine``: a URL (``sqlite:///path``, ``postgresql://...``) or an Engine from
    ``idproof.storage.store.make_engine`` (the Registry then leaves disposing it to the caller).
    """

    def __init__(
        self,
        url_or_engine: str | Engine,
        *,
        cap: int = 5,
        proofing_max_age: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] | None = None,
        audit_signer: TreeHeadSigner | None = None,
    ) -> None:
        """``audit_signer``: the Ed25519 key that signs the Merkle audit log's tree heads
        (``idproof audit keygen``). Without one every change still appends its leaf; ``who_checked_me`` then
        answers against the current root, unsigned, and ``audit_tree_head`` signs nothing."""
        if cap < 1:
            raise ValueError("cap must be at least 1")
        if proofing_max_age <= timedelta(0):
            raise ValueError("proofing_max_age must be positive")
        self._owns_engine = isinstance(url_or_engine, str)
        self.engine: Engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        self._dialect = self.engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise RegistryError(
                f"The registry runs on SQLite or PostgreSQL, not {self._dialect}.",
                fix="Use a sqlite:///PATH or postgresql://USER@HOST/DB URL.",
            )
        self.cap = cap
        self.proofing_max_age = proofing_max_age
        self._clock = clock or (lambda: datetime.now(UTC))
        migrate(self.engine)
        # the Merkle audit log on the same database: leaves are appended inside the registry's transactions
        self.audit_log = MerkleLog(self.engine, audit_signer, clock=self._clock)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- proofings --------------------------------------------------------------------------------------

    def record_proofing(self, decision: Decision, *, operator_id: str | None = None) -> ProofingRecord:
        """Store a decision's metadata and its keyed handle (``Decision.subject_handle``); nothing personal."""
        record = ProofingRecord(
            id=str(uuid.uuid4()),
            outcome=str(getattr(decision.outcome, "value", decision.outcome)),
            handle=decision.subject_handle,
            decided_at=_utc(decision.decided_at),
            operator_id=operator_id,
        )
        values = {
            "id": record.id,
            "decided_at": record.decided_at,
            "outcome": record.outcome,
            "reasons": list(decision.reasons),
            "score": decision.score,
            "threshold": decision.threshold,
            "target_fmr": decision.match.target_fmr if decision.match else None,
            "scorer": decision.scorer,
            "calibration_version": decision.calibration_version,
            "model_versions": dict(decision.model_versions),
            "timings_ms": dict(decision.timings_ms),
            "code_version": decision.code_version,
            "subject_handle": record.handle,
            "operator_id": operator_id,
        }
        leaf = AuditEvent(
            "proofing.decision",
            _leaf_handle(record.handle),
            {"proofing_id": record.id, "outcome": record.outcome, "reasons": list(decision.reasons), "operator_id": operator_id},
        )

        def run(conn: Connection) -> None:
            conn.execute(insert(ProofingDecision).values(values))
            self.audit_log.append_many(conn, [leaf])

        self._tx(run)
        return record

    def get_proofing(self, proofing_id: str) -> ProofingRecord | None:
        with self.engine.connect() as conn:
            row = self._proofing_row(conn, proofing_id)
        return None if row is None else self._proofing_record(row)

    # --- operators and auditors -------------------------------------------------------------------------

    def add_operator(self, name: str, role: str = "operator") -> tuple[Principal, str]:
        """A new operator or auditor and its API key. The key is shown only here; the database keeps its SHA-256."""
        if role not in _ROLES:
            raise ValueError(f"role must be one of {_ROLES}, not {role!r}")
        name = name.strip() if isinstance(name, str) else ""
        if not 0 < len(name) <= 128:
            raise ValueError("name must be 1 to 128 characters")
        principal = Principal(str(uuid.uuid4()), name, role)  # type: ignore[arg-type]
        api_key = secrets.token_urlsafe(32)
        self._tx(
            lambda conn: conn.execute(
                insert(Operator).values(
                    id=principal.operator_id,
                    label=name,
                    role=role,
                    key_sha256=_sha256(api_key),
                    created_at=self._now(),
                )
            )
        )
        return principal, api_key

    def authenticate(self, api_key: str) -> Principal | None:
        if not isinstance(api_key, str) or not 0 < len(api_key) <= 256:
            return None
        digest = _sha256(api_key)
        with self.engine.connect() as conn:
            row = conn.execute(select(Operator).where(Operator.key_sha256 == digest)).first()
        # the lookup is by the digest of a 256-bit random key; the compare is constant-time all the same
        if row is None or not hmac.compare_digest(row.key_sha256, digest):
            return None
        return Principal(row.id, row.label, row.role)

    # --- person access ----------------------------------------------------------------------------------

    def issue_person_token(self, proofing_id: str) -> str:
        """A bearer token for the person of one fresh accepted proofing, valid while that proofing is fresh
        (until decided_at + proofing_max_age). Stored as SHA-256."""

        def run(conn: Connection) -> str:
            p = self._fresh_proofing(conn, proofing_id, self._now())
            token = secrets.token_urlsafe(32)
            conn.execute(
                insert(PersonToken).values(
                    token_sha256=_sha256(token),
                    handle=p.subject_handle,
                    proofing_id=p.id,
                    expires_at=_utc(p.decided_at) + self.proofing_max_age,
                )
            )
            return token

        return self._tx(run)

    def person_handle(self, token: str) -> str | None:
        """The handle a person token stands for; None when the token is unknown or expired."""
        if not isinstance(token, str) or not 0 < len(token) <= 256:
            return None
        digest = _sha256(token)
        with self.engine.connect() as conn:
            row = conn.execute(select(PersonToken).where(PersonToken.token_sha256 == digest)).first()
        if row is None or not hmac.compare_digest(row.token_sha256, digest) or self._now() >= _utc(row.expires_at):
            return None
        return row.handle

    # --- registry operations: each with its audit row, in one transaction ----------------------------------

    def bind(self, number: str, proofing_id: str, operator: Principal) -> Binding:
        self._require(operator, "operator")
        number = normalize_number(number)

        def run(conn: Connection) -> Binding:
            now = self._now()
            p = self._fresh_proofing(conn, proofing_id, now, operator.operator_id)
            handle = p.subject_handle
            self._lock_identities(conn, [handle])
            existing = conn.execute(select(NumberBinding.status).where(NumberBinding.number == number)).first()
            if existing is not None:
                raise self._taken(existing.status)
            self._check_cap(conn, handle)
            stmt = self._upsert(NumberBinding).values(
                number=number, handle=handle, operator_id=operator.operator_id, status="active", bound_at=now, proofing_id=p.id
            )
            # a concurrent bind of the same number to another identity holds another lock: the key decides
            if conn.execute(stmt.on_conflict_do_nothing().returning(NumberBinding.number)).first() is None:
                raise self._taken(conn.execute(select(NumberBinding.status).where(NumberBinding.number == number)).scalar() or "active")
            self._audit(conn, now, "bind", operator.operator_id, number, handle, {"proofing_id": p.id})
            return Binding(number, operator.operator_id, "active", now, handle)

        return self._tx(run)

    def bind_many(self, requests: Sequence[tuple[str, str]], operator: Principal) -> list[Binding | RegistryError]:
        """Bind several ``(number, proofing_id)`` pairs in one transaction: the bulk path for an operator's
        onboarding queue, at a fraction of ``bind``'s per-transaction cost.

        Each request gets the answer ``bind`` would give had the requests been made one after another in
        this order: its ``Binding``, or the ``RegistryError`` bind would raise (returned in its place, not
        raised; a refused request writes nothing). The rules are bind's: a fresh accepted proofing made
        through this operator (or through none), a number not yet bound, and the cap per identity counted
        under the identity's lock, requests earlier in the batch included. Every accepted bind writes its own
        ``audit_log`` row, and all of them commit in one transaction with the bindings: a crash leaves the
        whole batch or none of it. At most 1000 requests (``ValueError`` beyond).
        """
        self._require(operator, "operator")
        requests = list(requests)
        if len(requests) > _MAX_BATCH:
            raise ValueError(f"at most {_MAX_BATCH} requests per bind_many call, not {len(requests)}")
        answers: list[Binding | RegistryError | None] = [None] * len(requests)
        wanted: list[tuple[int, str, str]] = []  # (request index, normalised number, proofing id)
        for i, (num, proofing_id) in enumerate(requests):
            try:
                wanted.append((i, normalize_number(num), proofing_id))
            except InvalidNumberError as e:
                answers[i] = e

        def run(conn: Connection) -> list[Binding | RegistryError]:
            out = list(answers)
            now = self._now()
            ids = sorted({pid for _, _, pid in wanted if isinstance(pid, str) and 0 < len(pid) <= 36})
            proofings = {r.id: r for r in self._proofing_rows(conn, ids)}
            proven: list[tuple[int, str, Any]] = []
            for i, num, pid in wanted:
                try:
                    row = proofings.get(pid) if isinstance(pid, str) else None
                    proven.append((i, num, self._check_proofing(row, now, operator.operator_id)))
                except RegistryError as e:
                    out[i] = e
            if not proven:
                return out  # type: ignore[return-value]
            handles = sorted({p.subject_handle for _, _, p in proven})
            self._lock_identities_many(conn, handles)
            # under the locks: which numbers are taken, and how many numbers each identity holds
            numbers = sorted({num for _, num, _ in proven})
            q = select(NumberBinding.number, NumberBinding.status).where(self._among(NumberBinding.number, numbers))
            taken: dict[str, str] = {n: st for n, st in conn.execute(q)}
            q = select(NumberBinding.handle, func.count()).where(self._among(NumberBinding.handle, handles)).group_by(NumberBinding.handle)
            held: dict[str, int] = {h: c for h, c in conn.execute(q)}
            rows, audits, leaves = [], [], []
            for i, num, p in proven:
                handle = p.subject_handle
                if num in taken:
                    out[i] = self._taken(taken[num])
                    continue
                if held.get(handle, 0) >= self.cap:
                    out[i] = self._cap_error(held[handle])
                    continue
                taken[num] = "active"
                held[handle] = held.get(handle, 0) + 1
                rows.append(
                    {"number": num, "handle": handle, "operator_id": operator.operator_id, "status": "active", "bound_at": now, "proofing_id": p.id}
                )
                audits.append(
                    {"at": now, "action": "bind", "actor": operator.operator_id, "number": num, "handle": handle, "details": {"proofing_id": p.id}}
                )
                leaves.append(_leaf("bind", operator.operator_id, num, handle, {"proofing_id": p.id}))
                out[i] = Binding(num, operator.operator_id, "active", now, handle)
            if rows:
                self._insert_many(conn, NumberBinding, rows)
                self._insert_many(conn, AuditRecord, audits)
                self.audit_log.append_many(conn, leaves)  # last: the log's append lock is held only to the commit
            return out  # type: ignore[return-value]

        if not wanted:
            return answers  # type: ignore[return-value]  # every request refused before the database
        for _ in range(_RETRIES):
            try:
                return self._tx(run)
            except IntegrityError as e:
                # A concurrent bind of one of these numbers to another identity held another identity's lock,
                # so the number's key decided: the whole batch rolled back; answer it again, the winner now visible.
                if not self._duplicate_key(e):
                    raise
        raise RegistryError(
            "Concurrent binds of the same numbers kept changing the batch's answers.", fix="Send the batch again."
        )

    def transfer(self, number: str, *, current_proofing_id: str, new_proofing_id: str, operator: Principal) -> Binding:
        """Move a number to a new holder: both holders proven (fresh, accepted), the new one under the cap."""
        self._require(operator, "operator")
        number = normalize_number(number)

        def run(conn: Connection) -> Binding:
            now = self._now()
            self._own_binding(conn, number, operator)  # scope errors first, before anything about the proofings
            cur = self._fresh_proofing(conn, current_proofing_id, now, operator.operator_id)
            new = self._fresh_proofing(conn, new_proofing_id, now, operator.operator_id)
            if cur.subject_handle == new.subject_handle:
                raise SameHolderError(
                    "Both proofings are of the same person: the number is already theirs.",
                    fix="Prove the new holder and pass their proofing as new_proofing_id.",
                )
            self._lock_identities(conn, [cur.subject_handle, new.subject_handle])
            b = self._own_binding(conn, number, operator, lock=True)
            if b.status == "suspended":
                raise self._taken("suspended")
            if b.handle != cur.subject_handle:
                raise NotTheHolderError(
                    "The current proofing is not of the number's holder.",
                    fix="Have the person who holds the number prove themselves, and pass that proofing as current_proofing_id.",
                )
            self._check_cap(conn, new.subject_handle)
            conn.execute(
                update(NumberBinding)
                .where(NumberBinding.number == number)
                .values(handle=new.subject_handle, bound_at=now, proofing_id=new.id, status="active")
            )
            self._audit(
                conn, now, "transfer", operator.operator_id, number, new.subject_handle,
                {"from_handle": cur.subject_handle, "current_proofing_id": cur.id, "new_proofing_id": new.id},
            )  # fmt: skip
            return Binding(number, operator.operator_id, "active", now, new.subject_handle)

        return self._tx(run)

    def unbind(self, number: str, operator: Principal) -> None:
        """End the binding (contract end). Allowed while disputed: ending the line resolves the dispute."""
        self._require(operator, "operator")
        number = normalize_number(number)

        def run(conn: Connection) -> None:
            now = self._now()
            b = self._own_binding(conn, number, operator, lock=True)
            conn.execute(delete(NumberBinding).where(NumberBinding.number == number))
            self._audit(conn, now, "unbind", operator.operator_id, number, b.handle, {"status": b.status})

        self._tx(run)

    def lookup(self, number: str, operator: Principal) -> Binding:
        """One of the operator's own numbers. Audited: a lookup is a read of who holds a line."""
        self._require(operator, "operator")
        number = normalize_number(number)

        def run(conn: Connection) -> Binding:
            b = self._own_binding(conn, number, operator)
            self._audit(conn, self._now(), "lookup", operator.operator_id, number, b.handle, {})
            return b

        return self._tx(run)

    def my_numbers(self, handle: str) -> list[Binding]:
        """Every number bound to this handle, across operators (the person's view; audited)."""
        self._require_handle(handle)

        def run(conn: Connection) -> list[Binding]:
            rows = conn.execute(
                select(NumberBinding).where(NumberBinding.handle == handle).order_by(NumberBinding.bound_at, NumberBinding.number)
            ).all()
            self._audit(conn, self._now(), "my_numbers", "person", None, handle, {"count": len(rows)})
            return [_binding(r) for r in rows]

        return self._tx(run)

    def dispute(self, number: str, handle: str, reason: str = "") -> Binding:
        """The holder disputes a number: it is suspended and its operator gets an event. Disputing a number
        that is already suspended changes nothing and sends no second event."""
        self._require_handle(handle)
        number = normalize_number(number)
        reason = (reason if isinstance(reason, str) else "").strip()[:_MAX_REASON]

        def run(conn: Connection) -> Binding:
            now = self._now()
            row = conn.execute(select(NumberBinding).where(NumberBinding.number == number).with_for_update()).first()
            if row is None or row.handle != handle:
                # the same answer for "not bound" and "bound to someone else": a person learns only about their own
                raise NumberNotFoundError(
                    "No such number is registered to you.",
                    fix="Dispute one of the numbers that my_numbers lists.",
                )
            already = row.status == "suspended"
            if not already:
                conn.execute(update(NumberBinding).where(NumberBinding.number == number).values(status="suspended"))
                # Lock the operator's row so its events commit in id order: a webhook reader paging with
                # after_id can then never skip an event that commits late.
                conn.execute(select(Operator.id).where(Operator.id == row.operator_id).with_for_update()).first()
                conn.execute(
                    insert(OperatorEventRecord).values(
                        at=now, operator_id=row.operator_id, kind="dispute", number=number, details={"reason": reason}
                    )
                )
            self._audit(conn, now, "dispute", "person", number, handle, {"reason": reason, "already_suspended": already})
            return Binding(number, row.operator_id, "suspended", _utc(row.bound_at), row.handle)

        return self._tx(run)

    def operator_events(self, operator: Principal, after_id: int = 0, limit: int = 100) -> list[OperatorEvent]:
        """The operator's outbox (disputes of its numbers), oldest first, after ``after_id``."""
        self._require(operator, "operator")
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OperatorEventRecord)
                .where(OperatorEventRecord.operator_id == operator.operator_id, OperatorEventRecord.id > after_id)
                .order_by(OperatorEventRecord.id)
                .limit(max(1, min(limit, _MAX_PAGE)))
            ).all()
        return [OperatorEvent(r.id, _utc(r.at), r.operator_id, r.kind, r.number, dict(r.details)) for r in rows]

    def audit(self, auditor: Principal, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]:
        """The audit trail, oldest first, after ``after_seq``; auditors only.

        On PostgreSQL seq is allocation order: two transactions can commit out of it, so a reader polling
        the tail should re-read a short overlap rather than trust after_seq to the last row."""
        self._require(auditor, "auditor")
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(AuditRecord)
                .where(AuditRecord.seq > after_seq)
                .order_by(AuditRecord.seq)
                .limit(max(1, min(limit, _MAX_PAGE)))
            ).all()
        return [AuditEntry(r.seq, _utc(r.at), r.action, r.actor, r.number, r.handle, dict(r.details)) for r in rows]

    # --- the Merkle audit log -----------------------------------------------------------------------------

    def who_checked_me(self, handle: str) -> PersonAudit:
        """Every leaf of the Merkle audit log about this handle ("who checked me": proofings, binds, lookups,
        transfers, disputes, template unseals), each with its inclusion proof. With a tree-head signer the
        proofs are against a signed tree head, signed now if the log grew since the last one; without one,
        against the current root, unsigned (``PersonAudit.signed`` is False). Only this handle's leaves: take
        the handle from ``person_handle(token)``. (Reading one's own audit is not itself audited.)"""
        self._require_handle(handle)
        if not _HANDLE.fullmatch(handle):
            raise ForbiddenError("Not an identity handle.", fix="Take the handle from person_handle(token).")
        log = self.audit_log
        if log.signer is not None:
            head = self._tx(log.sign_tree_head)
            size, root = head.size, head.root
        else:
            head = None
            with self.engine.connect() as conn:
                size = log.size(conn)
            root = log.root(size)
        return PersonAudit(handle, log.entries_for_handle(handle, tree_size=size), size, root, head)

    def audit_tree_head(self, *, fresh: bool = True) -> SignedTreeHead | None:
        """The latest signed tree head of the Merkle audit log. With a signer and ``fresh``, a head over the
        log as it is now is signed first (the stored head when the log has not grown since). None when no head
        was ever signed."""
        if fresh and self.audit_log.signer is not None:
            return self._tx(self.audit_log.sign_tree_head)
        return self.audit_log.latest_tree_head()

    def audit_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 9162 consistency proof that the log of ``new_size`` leaves (default: the latest signed head)
        extends the log of ``old_size`` leaves. ``ValueError`` for sizes the log does not have; ``LookupError``
        when ``new_size`` is left out and no head was signed."""
        if new_size is not None and not 0 <= old_size <= new_size:
            raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
        return self.audit_log.consistency_proof(old_size, new_size)

    def audit_export(self, auditor: Principal) -> Any:
        """The whole Merkle audit log as export records (``MerkleLog.export_records``: a header, the signed
        tree heads, every leaf), for ``idproof audit verify``; auditors only. With a signer a head over the
        log as it is now is signed first, so the export ends covered. Leaves carry handles and payloads carry
        numbers: it is the auditor's copy, as ``audit`` is."""
        self._require(auditor, "auditor")
        if self.audit_log.signer is not None:
            self._tx(self.audit_log.sign_tree_head)
        return self.audit_log.export_records()

    # --- internals --------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return _utc(self._clock())

    def _tx(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction, retried on lock timeouts, deadlocks and serialization failures
        (RegistryErrors are answers, not failures: they roll back and propagate)."""
        delay = 0.005
        for attempt in range(_RETRIES):
            try:
                with self.engine.begin() as conn:
                    if self._dialect == "sqlite":
                        # Take the single write lock now: a deferred transaction that reads, then writes
                        # fails with "database is locked" at the write, without waiting, when another wrote first.
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return fn(conn)
            except DBAPIError as e:
                if attempt + 1 == _RETRIES or not self._retryable(e):
                    raise
            time.sleep(delay * (1 + random.random()))  # jitter: retries of a crowd must not collide again
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    def _retryable(self, e: DBAPIError) -> bool:
        if self._dialect == "sqlite":
            return "locked" in str(e.orig) or "busy" in str(e.orig)
        return getattr(e.orig, "sqlstate", None) in ("40001", "40P01")  # serialization failure, deadlock

    def _lock_identities(self, conn: Connection, handles: list[str]) -> None:
        """Lock each identity's row, in sorted order so two transfers can never wait on each other in a cycle.
        SQLite needs nothing more: BEGIN IMMEDIATE already made this the only writer."""
        for handle in sorted(set(handles)):
            conn.execute(self._upsert(RegistryIdentity).values(handle=handle).on_conflict_do_nothing())
            if self._dialect == "postgresql":
                conn.execute(select(RegistryIdentity.handle).where(RegistryIdentity.handle == handle).with_for_update()).one()

    def _lock_identities_many(self, conn: Connection, handles: list[str]) -> None:
        """``_lock_identities`` for many handles in one statement per 1000: each row inserted, or (already
        there) locked by ``ON CONFLICT DO UPDATE .. WHERE false``, which locks the row and writes nothing, in
        sorted order as the single-handle path takes them. (A deadlock all the same is retried by ``_tx``.)"""
        handles = sorted(set(handles))
        for k in range(0, len(handles), _MAX_BATCH):
            chunk = [{"handle": h} for h in handles[k : k + _MAX_BATCH]]
            if self._dialect == "postgresql":
                stmt = pg_insert(RegistryIdentity).from_select(["handle"], self._unnest(RegistryIdentity, chunk))
                conn.execute(stmt.on_conflict_do_update(index_elements=["handle"], set_={"handle": stmt.excluded.handle}, where=false()))
            else:
                conn.execute(sqlite_insert(RegistryIdentity).on_conflict_do_nothing(), chunk)  # one row after another

    def _insert_many(self, conn: Connection, model: type, rows: list[dict]) -> None:
        """INSERT many rows, in order. PostgreSQL: one ``INSERT .. SELECT unnest(array), ..`` (one parameter a
        column, one statement for the server); SQLite: executemany of one prepared statement."""
        if self._dialect == "postgresql":
            conn.execute(insert(model).from_select(list(rows[0]), self._unnest(model, rows)))
        else:
            conn.execute(insert(model), rows)

    @staticmethod
    def _unnest(model: type, rows: list[dict]) -> Any:
        """``SELECT unnest(:col1), :col2, ..``: the rows as one array per column (zipped back in order by
        PostgreSQL), or one plain parameter for a column whose value is the same in every row."""
        table = model.__table__  # type: ignore[attr-defined]
        columns = {c: [r[c] for r in rows] for c in rows[0]}
        same = {c for c, values in columns.items() if all(v == values[0] for v in values)}
        if len(rows) > 1 and same == set(columns):
            same.discard(next(iter(columns)))  # identical rows stay as many rows: one column unnested

        def column(c: str, values: list) -> Any:
            t = table.c[c].type
            if c in same:
                return bindparam(None, values[0], type_=t)
            if isinstance(t, JSON):  # serialised here as SQLAlchemy would, sent as text[], cast back
                return cast(func.unnest(_pg_array([json.dumps(v) for v in values], t)), JSON)
            return func.unnest(_pg_array(values, t))

        return select(*(column(c, values) for c, values in columns.items()))

    def _among(self, column: Any, values: list[str]) -> Any:
        """``column IN values``; on PostgreSQL ``= ANY(array)``: one parameter, so the statement stays small and cached."""
        if self._dialect == "postgresql":
            return column == any_(_pg_array(list(values), column.type))
        return column.in_(values)

    def _duplicate_key(self, e: IntegrityError) -> bool:
        if self._dialect == "postgresql":
            return getattr(e.orig, "sqlstate", None) == "23505"  # unique_violation
        return "UNIQUE constraint failed" in str(e.orig)

    def _upsert(self, model: type) -> Any:
        """INSERT with ON CONFLICT support (both dialects have it; core SQLAlchemy insert does not)."""
        return (pg_insert if self._dialect == "postgresql" else sqlite_insert)(model)

    def _check_cap(self, conn: Connection, handle: str) -> None:
        held = conn.execute(select(func.count()).select_from(NumberBinding).where(NumberBinding.handle == handle)).scalar_one()
        if held >= self.cap:
            raise self._cap_error(held)

    def _cap_error(self, held: int) -> IdentityCapReachedError:
        return IdentityCapReachedError(
            f"This person already holds {held} numbers, the most allowed ({self.cap}, across all operators).",
            fix="The person must end one of their lines (or dispute one that is not theirs) first.",
        )

    def _own_binding(self, conn: Connection, number: str, operator: Principal, *, lock: bool = False) -> Binding:
        q = select(NumberBinding).where(NumberBinding.number == number)
        row = conn.execute(q.with_for_update() if lock else q).first()
        if row is None:
            raise NumberNotFoundError("The number is not bound.", fix="Bind it first, or check the number.")
        if row.operator_id != operator.operator_id:
            raise NotYourNumberError(
                "The number is bound by another operator.", fix="An operator sees and changes only the numbers it bound."
            )
        return _binding(row)

    @staticmethod
    def _taken(status: str) -> RegistryError:
        if status == "suspended":
            return NumberSuspendedError(
                "The number is suspended: its holder disputes it.",
                fix="Resolve the dispute with the holder (unbind the number if the line is to end) first.",
            )
        return NumberAlreadyBoundError(
            "The number is already bound.", fix="Transfer it (both holders proven) or unbind it first."
        )

    def _proofing_row(self, conn: Connection, proofing_id: str) -> Any:
        if not isinstance(proofing_id, str) or not 0 < len(proofing_id) <= 36:
            return None
        return conn.execute(
            select(
                ProofingDecision.id,
                ProofingDecision.outcome,
                ProofingDecision.subject_handle,
                ProofingDecision.decided_at,
                ProofingDecision.operator_id,
            ).where(ProofingDecision.id == proofing_id)
        ).first()

    def _proofing_rows(self, conn: Connection, proofing_ids: list[str]) -> list[Any]:
        cols = (ProofingDecision.id, ProofingDecision.outcome, ProofingDecision.subject_handle, ProofingDecision.decided_at, ProofingDecision.operator_id)
        out: list[Any] = []
        for k in range(0, len(proofing_ids), _MAX_BATCH):
            out += conn.execute(select(*cols).where(self._among(ProofingDecision.id, proofing_ids[k : k + _MAX_BATCH]))).all()
        return out

    @staticmethod
    def _proofing_record(row: Any) -> ProofingRecord:
        return ProofingRecord(row.id, row.outcome, row.subject_handle, _utc(row.decided_at), row.operator_id)

    def _fresh_proofing(self, conn: Connection, proofing_id: str, now: datetime, operator_id: str | None = None) -> Any:
        return self._check_proofing(self._proofing_row(conn, proofing_id), now, operator_id)

    def _check_proofing(self, row: Any, now: datetime, operator_id: str | None = None) -> Any:
        """The proofing row if it is usable for a registry change now (by this operator); else raises why not."""
        # A proofing made through one operator is that operator's to use: another operator who learns
        # the id cannot bind a number to that person. (Not found, so the id's existence is not revealed.)
        if row is None or (operator_id is not None and row.operator_id is not None and row.operator_id != operator_id):
            raise ProofingNotFoundError("No proofing has this id.", fix="Pass the id that record_proofing returned.")
        if row.outcome != "accept":
            raise ProofingNotAcceptedError(
                f"The proofing's outcome is {row.outcome!r}, not 'accept'.",
                fix="Only a person whom proofing accepted can be bound; have them prove themselves again.",
            )
        if not row.subject_handle:
            raise ProofingNotAcceptedError(
                "The proofing carries no identity handle.",
                fix="Run proofing with the registry key (Verifier(registry_key=...)) on a document with a readable MRZ or chip.",
            )
        age = now - _utc(row.decided_at)
        if age > self.proofing_max_age:
            minutes = self.proofing_max_age.total_seconds() / 60
            raise ProofingExpiredError(
                f"The proofing is {age.total_seconds() / 60:.0f} minutes old; the registry accepts {minutes:g} at most.",
                fix="Have the person prove themselves again.",
            )
        return row

    def _audit(
        self, conn: Connection, at: datetime, action: str, actor: str, number: str | None, handle: str | None, details: dict
    ) -> None:
        """The ``audit_log`` row and the Merkle leaves (``_leaves``), in ``conn``'s transaction. Call it last in
        the transaction: the leaves' append holds the log's lock until the commit."""
        conn.execute(
            insert(AuditRecord).values(at=at, action=action, actor=actor, number=number, handle=handle, details=details)
        )
        self.audit_log.append_many(conn, _leaves(action, actor, number, handle, details))

    @staticmethod
    def _require_handle(handle: str | None) -> None:
        if not isinstance(handle, str) or not handle:
            raise ForbiddenError(
                "No person handle: the person is not authenticated.",
                fix="Take the handle from person_handle(token); None there means the token is unknown or expired.",
            )

    @staticmethod
    def _require(who: Principal, role: Role) -> None:
        if not isinstance(who, Principal) or who.role != role:
            raise ForbiddenError(
                f"This needs the {role} role.",
                fix="Authenticate with an operator's API key for registry operations, an auditor's for the audit trail.",
            )
