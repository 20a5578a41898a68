"""The subscriber registry on SQLite and on a real PostgreSQL: rules, scopes, audit, concurrency."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

from idproof.decision import Decision
from idproof.reasons import Outcome
from idproof.registry import (
    DocumentIdentity,
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
    Registry,
    RegistryError,
    RegistryKey,
    SameHolderError,
    normalize_number,
)
from idproof.storage.models import AuditRecord, Base, NumberBinding
from idproof.storage.store import MIGRATIONS, make_engine


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def decision(handle: str | None, at: datetime, outcome: Outcome = Outcome.ACCEPT) -> Decision:
    return Decision(
        outcome, (), None, scorer="test", calibration_version="test", model_versions={}, timings_ms={},
        decided_at=at.isoformat(), subject_handle=handle,
    )  # fmt: skip


def new_handle() -> str:
    return secrets.token_hex(32)


def number(i: int) -> str:
    return f"+44770090{i:04d}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reg(db_url, clock) -> Registry:
    with Registry(db_url, clock=clock) as r:
        yield r


def prove(reg: Registry, handle: str, clock: Clock | None = None, **kw) -> str:
    return reg.record_proofing(decision(handle, clock() if clock else datetime.now(UTC), **kw)).id


def bind_audit(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(select(AuditRecord.number, AuditRecord.handle).where(AuditRecord.action == "bind"))]


def dump(engine: Engine, db_url: str) -> str:
    """Every row of every table as text, plus (SQLite) the raw database and WAL bytes."""
    parts = []
    with engine.connect() as c:
        for table in inspect(c).get_table_names():
            parts += [repr(tuple(row)) for row in c.execute(text(f'SELECT * FROM "{table}"'))]
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        for p in (path, path.with_name(path.name + "-wal")):
            if p.exists():
                parts.append(p.read_bytes().decode("latin-1"))
    return "\n".join(parts)


# --- schema ------------------------------------------------------------------------------------------------


def test_schema_is_the_models_holds_nothing_personal_and_audit_is_append_only(reg, clock):
    with reg.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []  # migrations == models
        columns = {f"{t}.{col['name']}" for t in inspect(c).get_table_names() for col in inspect(c).get_columns(t)}
    assert {"identities.handle", "bindings.number", "audit_log.seq", "operator_events.id", "operators.key_sha256"} <= columns
    personal = ("name", "birth", "dob", "document", "passport", "image", "photo", "portrait", "selfie", "face",
                "template", "embedding", "given", "surname", "address", "api_key", "plaintext")  # fmt: skip
    assert not [c for c in columns if any(p in c.split(".")[1] for p in personal)]

    op, _ = reg.add_operator("Acme")
    reg.bind(number(1), prove(reg, new_handle(), clock), op)
    for stmt in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), reg.engine.begin() as c:
            c.execute(text(stmt))
    assert len(bind_audit(reg.engine)) == 1


def test_migration_down_to_0001_and_up_again(db_url):
    Registry(db_url).close()
    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    for step in (lambda: command.downgrade(cfg, "0001"), lambda: command.upgrade(cfg, "head")):
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step()
    with engine.connect() as c:
        assert "bindings" in inspect(c).get_table_names()
    engine.dispose()


def test_registry_has_no_way_to_list_identities():
    public = {n for n in dir(Registry) if not n.startswith("_")}
    assert public == {
        "record_proofing", "get_proofing", "add_operator", "authenticate", "issue_person_token", "person_handle",
        "bind", "bind_many", "transfer", "unbind", "lookup", "my_numbers", "dispute", "operator_events", "audit", "close",
        # the Merkle audit log: a person's own leaves, tree heads and proofs (hashes only), the auditor's export
        "who_checked_me", "audit_tree_head", "audit_consistency", "audit_export",
    }  # fmt: skip


def test_numbers_are_e164_after_dropping_spaces_and_dashes():
    assert normalize_number("+44 7700-900 123") == "+447700900123"
    for bad in ("447700900123", "+0447700900", "+1234567", "+1234567890123456", "+44 77OO 900123", "", None, "+४४७७००९००१२३"):
        with pytest.raises(InvalidNumberError) as e:
            normalize_number(bad)
        assert e.value.code == "invalid_number" and e.value.fix


# --- proofings, keys, tokens ----------------------------------------------------------------------------------


def test_bind_needs_a_fresh_accepted_proofing_with_a_handle(reg, clock):
    op, _ = reg.add_operator("Acme")
    handle = new_handle()
    refusals = {
        "proofing_not_found": "00000000-0000-0000-0000-000000000000",
        "proofing_not_accepted": prove(reg, handle, clock, outcome=Outcome.REJECT),
        "proofing_expired": prove(reg, handle, clock),
    }
    no_handle = prove(reg, None, clock)
    clock.advance(minutes=15, seconds=1)
    for code, pid in refusals.items():
        with pytest.raises(RegistryError) as e:
            reg.bind(number(1), pid, op)
        assert e.value.code == code and e.value.fix
    with pytest.raises(ProofingNotAcceptedError, match="no identity handle"):
        reg.bind(number(1), no_handle, op)
    assert reg.my_numbers(handle) == [] and bind_audit(reg.engine) == []

    fresh = prove(reg, handle, clock)
    assert reg.get_proofing(fresh).handle == handle and reg.get_proofing("nope") is None
    b = reg.bind("+44 7700-900001", fresh, op)
    assert (b.number, b.status, b.operator_id, b.bound_at) == (number(1), "active", op.operator_id, clock.now)
    assert handle not in repr(b)  # the handle stays out of logs
    with pytest.raises(InvalidNumberError):
        reg.bind("07700 900001", fresh, op)


def test_a_proofing_made_through_one_operator_cannot_be_used_by_another(reg, clock):
    acme, _ = reg.add_operator("Acme")
    other, _ = reg.add_operator("Other")
    handle = new_handle()
    pid = reg.record_proofing(decision(handle, clock()), operator_id=acme.operator_id).id
    with pytest.raises(RegistryError) as e:
        reg.bind(number(7), pid, other)
    assert e.value.code == "proofing_not_found"  # the id's existence is not revealed to the other operator
    assert reg.bind(number(7), pid, acme).number == number(7)


def test_decision_store_records_metadata_and_the_handle_on_both_databases(db_url):
    from idproof.storage import Store

    store = Store(db_url)
    handle = new_handle()
    rid = store.record_decision(decision(handle, datetime.now(UTC)))
    row = store.get_decision(rid)
    assert row.outcome == "accept" and row.subject_handle == handle and store.count_decisions() == 1
    store.engine.dispose()


def test_api_keys_and_person_tokens_are_stored_hashed(reg, clock, db_url):
    op, key = reg.add_operator("Acme")
    auditor, audit_key = reg.add_operator("Regulator", role="auditor")
    assert reg.authenticate(key) == op and reg.authenticate(audit_key) == auditor
    assert reg.authenticate(key + "x") is None and reg.authenticate("") is None and reg.authenticate(None) is None
    with pytest.raises(ValueError):
        reg.add_operator("Acme", role="root")

    # a real keyed handle from a document identity: the document number never reaches the database
    handle = RegistryKey(b"k" * 32).handle(DocumentIdentity("UTO", "P", "L898902C3"))
    token = reg.issue_person_token(prove(reg, handle, clock))
    assert reg.person_handle(token) == handle and reg.person_handle("forged") is None
    with pytest.raises(ProofingNotAcceptedError):
        reg.issue_person_token(prove(reg, handle, clock, outcome=Outcome.RETRY))
    reg.bind(number(1), prove(reg, handle, clock), op)

    everything = dump(reg.engine, db_url)
    for secret in (key, audit_key, token, "L898902C3"):
        assert secret not in everything
    assert reg.person_handle(token) == handle
    clock.advance(minutes=16)  # the token lives only as long as its proofing is fresh
    assert reg.person_handle(token) is None
    with pytest.raises(ProofingExpiredError):
        reg.issue_person_token(prove(reg, handle, clock=lambda: clock.now - timedelta(minutes=20)))


def test_roles_auditor_reads_the_audit_trail_and_nothing_else(reg, clock):
    op, _ = reg.add_operator("Acme")
    auditor, _ = reg.add_operator("Regulator", role="auditor")
    pid = prove(reg, new_handle(), clock)
    for call in (
        lambda: reg.bind(number(1), pid, auditor),
        lambda: reg.lookup(number(1), auditor),
        lambda: reg.unbind(number(1), auditor),
        lambda: reg.operator_events(auditor),
        lambda: reg.audit(op),
    ):
        with pytest.raises(ForbiddenError) as e:
            call()
        assert e.value.code == "forbidden"
    reg.bind(number(1), pid, op)
    reg.lookup(number(1), op)
    entries = reg.audit(auditor)
    assert [(e.action, e.actor, e.number) for e in entries] == [("bind", op.operator_id, number(1)), ("lookup", op.operator_id, number(1))]
    assert entries[0].details == {"proofing_id": pid} and entries[1].seq > entries[0].seq
    assert reg.audit(auditor, after_seq=entries[0].seq) == entries[1:]
    assert len(reg.audit(auditor, limit=1)) == 1


# --- registry rules -------------------------------------------------------------------------------------------


def test_cap_counts_every_operator_and_suspended_numbers(reg, clock):
    a, _ = reg.add_operator("Acme")
    b, _ = reg.add_operator("Bravo")
    handle = new_handle()
    pid = prove(reg, handle, clock)
    for i in range(5):
        reg.bind(number(i), pid, a if i < 3 else b)
    with pytest.raises(IdentityCapReachedError) as e:
        reg.bind(number(5), pid, b)
    assert e.value.code == "identity_cap_reached" and "5" in e.value.message
    reg.dispute(number(4), handle)  # suspended still counts
    with pytest.raises(IdentityCapReachedError):
        reg.bind(number(5), pid, a)
    reg.unbind(number(4), b)  # ending a line (even a disputed one) frees a slot
    reg.bind(number(5), pid, a)
    assert sorted(x.number for x in reg.my_numbers(handle)) == [number(i) for i in (0, 1, 2, 3, 5)]


def test_a_number_is_bound_once_and_not_while_disputed(reg, clock):
    op, _ = reg.add_operator("Acme")
    alice, bob = new_handle(), new_handle()
    reg.bind(number(1), prove(reg, alice, clock), op)
    with pytest.raises(NumberAlreadyBoundError):
        reg.bind(number(1), prove(reg, bob, clock), op)
    reg.dispute(number(1), alice, "not mine")
    with pytest.raises(NumberSuspendedError):
        reg.bind(number(1), prove(reg, bob, clock), op)
    assert [x.number for x in reg.my_numbers(bob)] == []


def test_operators_see_and_change_only_their_own_numbers(reg, clock):
    a, _ = reg.add_operator("Acme")
    b, _ = reg.add_operator("Bravo")
    alice, bob = new_handle(), new_handle()
    reg.bind(number(1), prove(reg, alice, clock), a)
    for call in (
        lambda: reg.lookup(number(1), b),
        lambda: reg.unbind(number(1), b),
        lambda: reg.transfer(number(1), current_proofing_id=prove(reg, alice, clock), new_proofing_id=prove(reg, bob, clock), operator=b),
    ):
        with pytest.raises(NotYourNumberError) as e:
            call()
        assert e.value.code == "not_your_number"
    with pytest.raises(NumberNotFoundError):
        reg.lookup(number(2), a)
    found = reg.lookup("+44 7700 900001", a)
    assert (found.number, found.handle, found.operator_id, found.status) == (number(1), alice, a.operator_id, "active")
    reg.unbind(number(1), a)
    with pytest.raises(NumberNotFoundError):
        reg.unbind(number(1), a)
    auditor, _ = reg.add_operator("Regulator", role="auditor")
    assert [e.action for e in reg.audit(auditor)] == ["bind", "lookup", "unbind"]  # refusals change nothing


def test_transfer_needs_both_holders_proven_and_is_one_transaction(reg, clock, monkeypatch):
    op, _ = reg.add_operator("Acme")
    alice, bob, carol = new_handle(), new_handle(), new_handle()
    reg.bind(number(1), prove(reg, alice, clock), op)
    bob_full = prove(reg, bob, clock)
    for i in range(2, 7):
        reg.bind(number(i), bob_full, op)
    stale_alice = prove(reg, alice, clock)
    clock.advance(minutes=20)
    a, b, c = prove(reg, alice, clock), prove(reg, bob, clock), prove(reg, carol, clock)

    def refused(exc, **kw):
        with pytest.raises(exc) as e:
            reg.transfer(number(1), operator=op, **kw)
        return e.value

    assert refused(ProofingExpiredError, current_proofing_id=stale_alice, new_proofing_id=c).code == "proofing_expired"
    assert refused(ProofingNotAcceptedError, current_proofing_id=a, new_proofing_id=prove(reg, carol, clock, outcome=Outcome.REJECT))
    assert refused(SameHolderError, current_proofing_id=a, new_proofing_id=a).code == "same_holder"
    assert refused(NotTheHolderError, current_proofing_id=c, new_proofing_id=b).code == "not_the_holder"
    assert refused(IdentityCapReachedError, current_proofing_id=a, new_proofing_id=b)  # bob holds 5 already

    # a failure after the binding row changed rolls the whole transfer back
    real_audit = Registry._audit

    def failing_audit(self, conn, at, action, *args):
        if action == "transfer":
            raise RuntimeError("disk full")
        return real_audit(self, conn, at, action, *args)

    monkeypatch.setattr(Registry, "_audit", failing_audit)
    with pytest.raises(RuntimeError):
        reg.transfer(number(1), current_proofing_id=a, new_proofing_id=c, operator=op)
    monkeypatch.undo()
    assert [x.number for x in reg.my_numbers(alice)] == [number(1)] and reg.my_numbers(carol) == []

    moved = reg.transfer("+447700900001", current_proofing_id=a, new_proofing_id=c, operator=op)
    assert (moved.handle, moved.status, moved.bound_at) == (carol, "active", clock.now)
    assert reg.my_numbers(alice) == [] and [x.number for x in reg.my_numbers(carol)] == [number(1)]
    auditor, _ = reg.add_operator("Regulator", role="auditor")
    (entry,) = [e for e in reg.audit(auditor) if e.action == "transfer"]
    assert entry.handle == carol and entry.details == {"from_handle": alice, "current_proofing_id": a, "new_proofing_id": c}


def test_my_numbers_and_dispute(reg, clock):
    a, _ = reg.add_operator("Acme")
    b, _ = reg.add_operator("Bravo")
    alice, bob = new_handle(), new_handle()
    reg.bind(number(1), prove(reg, alice, clock), a)
    clock.advance(seconds=1)
    reg.bind(number(2), prove(reg, alice, clock), b)
    reg.bind(number(3), prove(reg, bob, clock), b)
    mine = reg.my_numbers(alice)
    assert [(x.number, x.operator_id, x.status) for x in mine] == [(number(1), a.operator_id, "active"), (number(2), b.operator_id, "active")]
    assert {x.handle for x in mine} == {alice}

    for call in (lambda: reg.my_numbers(None), lambda: reg.dispute(number(1), None)):  # an unknown token's handle
        with pytest.raises(ForbiddenError):
            call()
    with pytest.raises(NumberNotFoundError):  # bob's number: the same answer as an unbound one
        reg.dispute(number(3), alice)
    disputed = reg.dispute("+44 7700 900002", alice, "  I never signed up for this line  ")
    assert (disputed.number, disputed.status, disputed.operator_id) == (number(2), "suspended", b.operator_id)
    assert [x.status for x in reg.my_numbers(alice)] == ["active", "suspended"]
    (event,) = reg.operator_events(b)
    assert (event.kind, event.number, event.operator_id, event.details) == (
        "dispute", number(2), b.operator_id, {"reason": "I never signed up for this line"},
    )  # fmt: skip
    assert reg.operator_events(a) == [] and reg.operator_events(b, after_id=event.id) == []
    reg.dispute(number(2), alice)  # again: still suspended, no second event
    assert len(reg.operator_events(b)) == 1
    with pytest.raises(NumberSuspendedError):
        reg.transfer(number(2), current_proofing_id=prove(reg, alice, clock), new_proofing_id=prove(reg, bob, clock), operator=b)

    auditor, _ = reg.add_operator("Regulator", role="auditor")
    person = [(e.action, e.number, e.handle) for e in reg.audit(auditor) if e.actor == "person"]
    assert person == [("my_numbers", None, alice), ("dispute", number(2), alice), ("my_numbers", None, alice), ("dispute", number(2), alice)]


# --- concurrency ----------------------------------------------------------------------------------------------

CLIENTS = 32


def _assert_exactly_cap_bound(reg: Registry, handle: str, results: list[str]) -> None:
    assert sorted(set(results)) == ["bound", "identity_cap_reached"], results
    assert results.count("bound") == 5 and results.count("identity_cap_reached") == CLIENTS - 5
    held = [x.number for x in reg.my_numbers(handle)]
    assert len(held) == len(set(held)) == 5
    audited = bind_audit(reg.engine)
    assert len(audited) == 5 and sorted(n for n, _ in audited) == sorted(held) and {h for _, h in audited} == {handle}


def test_32_concurrent_binds_to_one_identity_stop_at_the_cap(db_url):
    engine = make_engine(db_url, pool_size=CLIENTS + 1, max_overflow=0)  # every client its own connection
    reg = Registry(engine, cap=5)
    ops = [reg.add_operator(f"op{i}")[0] for i in range(4)]  # the cap holds across operators
    handle = new_handle()
    pid = prove(reg, handle)
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> str:
        start.wait()
        try:
            reg.bind(number(i), pid, ops[i % 4])
            return "bound"
        except RegistryError as e:
            return e.code

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    _assert_exactly_cap_bound(reg, handle, results)
    engine.dispose()


def _process_client(url, pid, operator, num, start, results) -> None:
    reg = Registry(url, cap=5)  # its own engine and connection, in its own process
    start.wait()
    try:
        reg.bind(num, pid, operator)
        results.put("bound")
    except RegistryError as e:
        results.put(e.code)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(repr(e))
    reg.close()
    results.close()
    results.join_thread()
    # A forked child of a process that already runs model thread pools (the face tests load them) can
    # hang in interpreter shutdown; its work is done and flushed, so leave without running it.
    os._exit(0)


def test_32_concurrent_processes_bind_to_one_identity_stop_at_the_cap(db_url):
    with Registry(db_url, cap=5) as reg:
        op, _ = reg.add_operator("Acme")
        handle = new_handle()
        pid = prove(reg, handle)
        reg.engine.dispose()  # no pooled connection is inherited by the children
        ctx = multiprocessing.get_context("fork")  # the parent's imports are reused: 32 starts stay cheap
        start, results = ctx.Barrier(CLIENTS), ctx.Queue()
        procs = [ctx.Process(target=_process_client, args=(db_url, pid, op, number(i), start, results)) for i in range(CLIENTS)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        _assert_exactly_cap_bound(reg, handle, outcomes)


def test_crossing_transfers_do_not_deadlock(db_url):
    """Transfers in both directions between two people at once: sorted identity locks, no deadlock, and
    each number moves exactly once."""
    engine = make_engine(db_url, pool_size=CLIENTS + 1, max_overflow=0)
    reg = Registry(engine)
    op, _ = reg.add_operator("Acme")
    alice, bob = new_handle(), new_handle()
    pa, pb = prove(reg, alice), prove(reg, bob)
    reg.bind(number(1), pa, op)
    reg.bind(number(2), pb, op)
    start = threading.Barrier(16)

    def client(i: int) -> str:
        start.wait()
        num, cur, new = (number(1), pa, pb) if i % 2 else (number(2), pb, pa)
        try:
            reg.transfer(num, current_proofing_id=cur, new_proofing_id=new, operator=op)
            return "moved"
        except RegistryError as e:
            return e.code

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(client, range(16)))
    assert results.count("moved") == 2 and results.count("not_the_holder") == 14
    assert [x.number for x in reg.my_numbers(alice)] == [number(2)] and [x.number for x in reg.my_numbers(bob)] == [number(1)]
    with engine.connect() as c:
        assert c.execute(select(NumberBinding.number)).scalars().all().__len__() == 2
    engine.dispose()
