"""The registry's Merkle audit log (idproof.audit) on SQLite and PostgreSQL (``db_url``): every proofing and
registry change appends its leaf in the change's own transaction; no leaf field holds a number; refused or
rolled-back operations leave no leaf; a person gets exactly their own leaves with proofs against a signed
tree head; the export verifies end to end and tampering is named; concurrent writers build one tree; template
unseals are leaves; and the HTTP routes (routes_audit) answer what a person or auditor can check offline."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from idproof.audit import (
    SignedTreeHead,
    TreeHeadSigner,
    audit_leaves,
    audit_nodes,
    verify_log,
)
from idproof.audit.audit_cli import app as audit_app
from idproof.audit.merkle import (
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from idproof.audit.sth import load_public_key, raw_public_key, tree_head_message
from idproof.decision import Decision
from idproof.reasons import Outcome
from idproof.registry import (
    ForbiddenError,
    IdentityCapReachedError,
    NotYourNumberError,
    NumberAlreadyBoundError,
    NumberNotFoundError,
    ProofingExpiredError,
    Registry,
    RegistryError,
    SameHolderError,
)
from idproof.storage.models import AuditRecord
from idproof.storage.store import make_engine

CLIENTS = 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def new_handle() -> str:
    return secrets.token_hex(32)


def number(i: int) -> str:
    return f"+44770090{i:04d}"


def prove(reg: Registry, handle: str | None, at: datetime | None = None, outcome: Outcome = Outcome.ACCEPT,
          operator_id: str | None = None) -> str:
    d = Decision(outcome, (), None, scorer="test", calibration_version="test", model_versions={}, timings_ms={},
                 decided_at=(at or reg._now()).isoformat(), subject_handle=handle)
    return reg.record_proofing(d, operator_id=operator_id).id


def leaves(reg: Registry) -> list:
    return list(reg.audit_log.entries())


def shape(reg: Registry, start: int = 0) -> list[tuple]:
    """(event, handle, payload) of every leaf from ``start``."""
    return [(e.event, e.handle, e.payload) for e in reg.audit_log.entries(start)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer() -> TreeHeadSigner:
    return TreeHeadSigner.generate()


@pytest.fixture
def reg(db_url, clock, signer):
    with Registry(db_url, clock=clock, audit_signer=signer) as r:
        yield r


class World:
    """The workload: proofings (one rejected, without a handle), bind, bind_many, lookup, my_numbers,
    transfer, dispute, unbind; and the leaves each must have made, in order."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.op, _ = reg.add_operator("Acme")
        self.other, _ = reg.add_operator("Globex")
        self.auditor, _ = reg.add_operator("Regulator", role="auditor")
        self.alice, self.bob, self.carol = new_handle(), new_handle(), new_handle()
        op = self.op.operator_id
        exp: list[tuple] = []

        def proofing(pid: str, handle: str | None, outcome: str = "accept") -> None:
            exp.append(("proofing.decision", handle, {"proofing_id": pid, "outcome": outcome, "reasons": [],
                                                      "operator_id": None}))

        self.pa = prove(reg, self.alice)
        proofing(self.pa, self.alice)
        self.pb = prove(reg, self.bob)
        proofing(self.pb, self.bob)
        self.pc = prove(reg, self.carol)
        proofing(self.pc, self.carol)
        self.rejected = prove(reg, None, outcome=Outcome.REJECT)
        proofing(self.rejected, None, "reject")

        reg.bind(number(1), self.pa, self.op)
        exp.append(("registry.bind", self.alice, {"actor": op, "number": number(1), "proofing_id": self.pa}))
        answers = reg.bind_many([(number(2), self.pa), (number(3), self.pb), ("not a number", self.pa),
                                 (number(1), self.pb), (number(4), self.rejected)], self.op)
        assert [type(a).__name__ for a in answers] == ["Binding", "Binding", "InvalidNumberError",
                                                       "NumberAlreadyBoundError", "ProofingNotAcceptedError"]
        exp.append(("registry.bind", self.alice, {"actor": op, "number": number(2), "proofing_id": self.pa}))
        exp.append(("registry.bind", self.bob, {"actor": op, "number": number(3), "proofing_id": self.pb}))
        reg.lookup(number(1), self.op)
        exp.append(("registry.lookup", self.alice, {"actor": op, "number": number(1)}))
        reg.my_numbers(self.alice)
        exp.append(("registry.my_numbers", self.alice, {"actor": "person", "count": 2}))
        reg.transfer(number(3), current_proofing_id=self.pb, new_proofing_id=self.pc, operator=self.op)
        exp.append(("registry.transfer", self.bob, {"actor": op, "number": number(3), "side": "from", "proofing_id": self.pb}))
        exp.append(("registry.transfer", self.carol, {"actor": op, "number": number(3), "side": "to", "proofing_id": self.pc}))
        reg.dispute(number(2), self.alice, "not mine")
        exp.append(("registry.dispute", self.alice, {"actor": "person", "number": number(2), "reason": "not mine",
                                                     "already_suspended": False}))
        reg.unbind(number(2), self.op)
        exp.append(("registry.unbind", self.alice, {"actor": op, "number": number(2), "status": "suspended"}))
        self.expected = exp
        self.numbers = [number(i) for i in range(1, 5)]


@pytest.fixture
def world(reg) -> World:
    return World(reg)


# --- what the workload appends ----------------------------------------------------------------------------


def test_workload_makes_exactly_the_expected_leaves_in_the_changes_transactions(reg, world):
    assert shape(reg) == world.expected
    got = leaves(reg)
    assert [e.seq for e in got] == list(range(len(world.expected)))
    assert all(e.computed_leaf_hash() == e.leaf_hash and e.payload_ok() for e in got)
    # every audit_log row has its leaf (a transfer two: one per holder), and vice versa
    with reg.engine.connect() as c:
        actions = [a for (a,) in c.execute(select(AuditRecord.action).order_by(AuditRecord.seq))]
    registry_leaves = [e.event.removeprefix("registry.") for e in got if e.event.startswith("registry.")]
    assert registry_leaves == [a for a in actions for _ in range(2 if a == "transfer" else 1)]
    # the stored tree is the tree of the leaves
    assert reg.audit_log.root() == MemoryTree(e.leaf_hash for e in got).root()


def test_no_leaf_field_holds_a_number_only_the_purgeable_payload(reg, world):
    digits = [n.removeprefix("+") for n in world.numbers] + [n[-7:] for n in world.numbers]
    with reg.engine.connect() as c:
        rows = c.execute(select(audit_leaves.c.seq, audit_leaves.c.event, audit_leaves.c.handle,
                                audit_leaves.c.leaf_hash, audit_leaves.c.payload_hash)).all()
    assert rows
    for e in leaves(reg):
        data = e.leaf_data().decode()
        assert not any(d in data for d in digits), data
        assert set(json.loads(data)) == {"v", "seq", "time", "event", "handle", "payload_sha256"}
        assert e.handle is None or re.fullmatch(r"[0-9a-f]{64}", e.handle)
    for r in rows:
        assert not any(d in f"{r.event}{r.handle}" for d in digits)
    in_payloads = {e.payload.get("number") for e in leaves(reg)} - {None}
    assert in_payloads == {number(1), number(2), number(3)}
    # and no payload names a second person: a transfer's leaves carry only their own holder's proofing
    for e in leaves(reg):
        others = {world.alice, world.bob, world.carol} - {e.handle}
        assert not any(h in json.dumps(e.payload) for h in others)


def test_refused_and_rolled_back_operations_leave_no_leaf(reg, world, clock, monkeypatch):
    op, other = world.op, world.other
    dave = new_handle()
    pd = prove(reg, dave)
    for i in range(10, 15):
        reg.bind(number(i), pd, op)
    size, root = reg.audit_log.size(), reg.audit_log.root()
    stale = prove(reg, dave, clock.now - timedelta(hours=1))  # a proofing is a leaf of its own
    size, root = size + 1, reg.audit_log.root()
    assert reg.audit_log.size() == size

    refusals = [
        (IdentityCapReachedError, lambda: reg.bind(number(15), pd, op)),  # cap reached, under the lock
        (NumberAlreadyBoundError, lambda: reg.bind(number(1), pd, op)),
        (ProofingExpiredError, lambda: reg.bind(number(16), stale, op)),
        (NotYourNumberError, lambda: reg.lookup(number(1), other)),
        (NumberNotFoundError, lambda: reg.unbind(number(99), op)),
        (SameHolderError, lambda: reg.transfer(number(1), current_proofing_id=world.pa, new_proofing_id=world.pa, operator=op)),
        (IdentityCapReachedError, lambda: reg.transfer(number(1), current_proofing_id=world.pa, new_proofing_id=pd, operator=op)),
        (NumberNotFoundError, lambda: reg.dispute(number(3), world.alice)),  # carol's number, not alice's
        (ForbiddenError, lambda: reg.my_numbers(None)),
    ]
    for exc, call in refusals:
        with pytest.raises(exc):
            call()
        assert (reg.audit_log.size(), reg.audit_log.root()) == (size, root), exc
    answers = reg.bind_many([(number(15), pd), (number(1), pd)], op)  # every request refused
    assert {a.code for a in answers} == {"identity_cap_reached", "number_already_bound"}
    assert reg.audit_log.size() == size

    # a failure after the leaf was appended rolls the leaf (and its nodes) back with the change
    real = Registry._audit

    def failing(self, conn, at, action, *args):
        real(self, conn, at, action, *args)
        raise RuntimeError("disk full")

    monkeypatch.setattr(Registry, "_audit", failing)
    for call in (lambda: reg.unbind(number(1), op), lambda: reg.lookup(number(1), op),
                 lambda: reg.transfer(number(1), current_proofing_id=world.pa, new_proofing_id=world.pb, operator=op)):
        with pytest.raises(RuntimeError):
            call()
    monkeypatch.undo()
    real_many = Registry._insert_many

    def failing_many(self, conn, model, rows):
        real_many(self, conn, model, rows)
        if model is AuditRecord:
            raise RuntimeError("disk full")

    monkeypatch.setattr(Registry, "_insert_many", failing_many)
    with pytest.raises(RuntimeError):
        reg.bind_many([(number(20), world.pa)], op)
    monkeypatch.undo()
    assert (reg.audit_log.size(), reg.audit_log.root()) == (size, root)
    with reg.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(audit_nodes)).scalar() == size - size.bit_count()
    assert [x.number for x in reg.my_numbers(world.alice)] == [number(1)]  # and the changes are not there either


# --- who checked me -------------------------------------------------------------------------------------------


def test_who_checked_me_is_exactly_my_leaves_with_proofs_against_a_signed_head(reg, world, signer, clock):
    all_leaves = leaves(reg)
    view = reg.who_checked_me(world.alice)
    assert view.signed and view.tree_head.verify(signer.public_key)
    assert (view.tree_head.size, view.tree_head.root) == (view.tree_size, view.root) == (len(all_leaves), reg.audit_log.root())
    assert [e.seq for e, _ in view.entries] == [e.seq for e in all_leaves if e.handle == world.alice]
    assert {e.event for e, _ in view.entries} == {"proofing.decision", "registry.bind", "registry.lookup",
                                                   "registry.my_numbers", "registry.dispute", "registry.unbind"}
    assert view.verify(signer.public_key) and not view.verify(TreeHeadSigner.generate().public_key)
    for e, p in view.entries:
        assert verify_inclusion(e.computed_leaf_hash(), e.seq, view.tree_head.size, list(p.path), view.tree_head.root)
    bob = reg.who_checked_me(world.bob)
    assert [(e.event, e.payload.get("side")) for e, _ in bob.entries] == [("proofing.decision", None),
                                                                         ("registry.bind", None), ("registry.transfer", "from")]
    assert bob.tree_head == view.tree_head  # the log did not grow: the same head, not a new signature
    assert reg.who_checked_me(new_handle()).entries == []

    # the log grows: the next answer is against a new head, consistent with the first
    clock.advance(minutes=1)
    reg.lookup(number(1), world.op)
    later = reg.who_checked_me(world.alice)
    assert later.tree_size == view.tree_size + 1 and len(later.entries) == len(view.entries) + 1
    assert later.verify(signer.public_key)
    proof = reg.audit_consistency(view.tree_size, later.tree_size)
    assert proof.verify(view.root, later.root)
    assert verify_consistency(view.tree_size, later.tree_size, view.root, later.root, list(proof.path))
    assert reg.audit_consistency(view.tree_size).new_size == later.tree_size  # default: the latest head
    assert reg.audit_tree_head() == later.tree_head
    with pytest.raises(ValueError):
        reg.audit_consistency(later.tree_size + 5)
    for bad in (None, "", "someone@example.org", world.alice.upper()):
        with pytest.raises(ForbiddenError):
            reg.who_checked_me(bad)


def test_without_a_signer_leaves_are_appended_and_proofs_are_against_the_unsigned_root(db_url, clock):
    with Registry(db_url, clock=clock) as reg:
        op, _ = reg.add_operator("Acme")
        alice = new_handle()
        reg.bind(number(1), prove(reg, alice), op)
        view = reg.who_checked_me(alice)
        assert not view.signed and view.tree_head is None
        assert view.tree_size == 2 and view.root == reg.audit_log.root()
        assert [e.event for e, _ in view.entries] == ["proofing.decision", "registry.bind"]
        assert view.verify() and all(p.verify(view.root) for _, p in view.entries)
        assert reg.audit_tree_head() is None and reg.audit_log.tree_heads() == []
        with pytest.raises(LookupError):
            reg.audit_consistency(1)  # no signed head to default to
        assert reg.audit_consistency(1, 2).verify(reg.audit_log.root(1), view.root)


# --- the whole log: export, verify, tamper --------------------------------------------------------------------


def test_the_export_verifies_and_the_database_refuses_to_rewrite_history(reg, world, signer, tmp_path):
    with pytest.raises(ForbiddenError):
        reg.audit_export(world.op)
    records = list(reg.audit_export(world.auditor))  # signs a head over the whole log first
    report = verify_log(records, signer.public_key)
    assert report.ok, report.lines()
    assert (report.leaves, report.verified_size) == (len(world.expected), len(world.expected))
    path = tmp_path / "export.jsonl"
    reg.audit_log.export(path)
    pub = tmp_path / "sth.pub"
    pub.write_bytes(signer.public_pem())
    res = CliRunner().invoke(audit_app, ["verify", str(path), "--public-key", str(pub)])
    assert res.exit_code == 0 and f"audit log OK: {len(world.expected)} leaves" in res.output, res.output

    # the migration's triggers: no leaf, node or head is changed or removed; only a payload may be purged
    for stmt in ("UPDATE audit_leaves SET event = 'registry.lookup' WHERE seq = 5",
                 "UPDATE audit_leaves SET payload = NULL, handle = NULL WHERE seq = 5",
                 "DELETE FROM audit_leaves WHERE seq = 5", "UPDATE audit_nodes SET idx = idx + 1000",
                 "DELETE FROM audit_nodes", "DELETE FROM audit_tree_heads",
                 "UPDATE audit_tree_heads SET size = size + 1"):
        with pytest.raises(Exception, match="append-only"), reg.engine.begin() as c:
            c.execute(text(stmt))
    assert verify_log(list(reg.audit_export(world.auditor)), signer.public_key).ok


def _disable_triggers(reg: Registry) -> None:
    """What someone who owns the database can do: switch the append-only triggers off."""
    with reg.engine.begin() as c:
        if reg.engine.dialect.name == "postgresql":
            for t in ("audit_leaves", "audit_nodes", "audit_tree_heads"):
                c.execute(text(f"ALTER TABLE {t} DISABLE TRIGGER USER"))
        else:
            names = c.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%' "
                                   "AND tbl_name != 'audit_log'")).scalars().all()
            assert names
            for n in names:
                c.execute(text(f'DROP TRIGGER "{n}"'))


@pytest.mark.parametrize("tamper", ["changed", "dropped", "forked"])
def test_tampering_is_named(reg, world, signer, clock, tmp_path, tamper):
    first = reg.audit_tree_head()  # a head over the workload, then more leaves and a second head
    clock.advance(minutes=1)
    reg.lookup(number(1), world.op)
    reg.my_numbers(world.carol)
    second = reg.audit_tree_head()
    assert (first.size, second.size) == (len(world.expected), len(world.expected) + 2)
    extra: list[SignedTreeHead] = []
    _disable_triggers(reg)
    if tamper == "changed":  # alice's my_numbers becomes bob's: the leaf no longer matches its hash
        with reg.engine.begin() as c:
            c.execute(text("UPDATE audit_leaves SET handle = :h WHERE seq = 8"), {"h": world.bob})
        want = [("leaf_content", 8)]
    elif tamper == "dropped":
        with reg.engine.begin() as c:
            c.execute(text("DELETE FROM audit_leaves WHERE seq = 6"))
        want = [("leaf_missing", 6)]
    else:  # the log's key signed another root for the first size, shown to someone who kept it
        extra = [signer.sign(first.size, hashlib.sha256(b"another history").digest(), clock.now)]
        want = [("fork", first.size), ("root", first.size), ("inconsistent", second.size)]
    path = tmp_path / "export.jsonl"
    reg.audit_log.export(path)
    report = verify_log(path, signer.public_key, extra)
    assert not report.ok
    assert sorted((p.kind, p.position) for p in report.problems) == sorted(want), report.lines()
    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps([h.to_json() for h in extra]))
    pub = tmp_path / "sth.pub"
    pub.write_bytes(signer.public_pem())
    res = CliRunner().invoke(audit_app, ["verify", str(path), "--public-key", str(pub), "--tree-head", str(kept)])
    assert res.exit_code == 1
    assert report.problems[0].message in res.output


# --- concurrency ------------------------------------------------------------------------------------------------


def test_concurrent_binds_batches_and_readers_build_one_consistent_tree(db_url, signer):
    engine = make_engine(db_url, pool_size=CLIENTS + 1, max_overflow=0)  # every client its own connection
    reg = Registry(engine, cap=5, audit_signer=signer)
    ops = [reg.add_operator(f"op{i}")[0] for i in range(4)]
    auditor, _ = reg.add_operator("Regulator", role="auditor")
    handle = new_handle()
    pid = prove(reg, handle)
    batch_people = [new_handle() for _ in range(CLIENTS // 4)]
    batch_pids = [prove(reg, h) for h in batch_people]
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> str:
        start.wait()
        kind = i % 4
        if kind == 0:  # a batch of 3 numbers for one new person
            k = i // 4
            answers = reg.bind_many([(number(1000 + 10 * k + j), batch_pids[k]) for j in range(3)], ops[k % 4])
            return "batch:" + ",".join(sorted({"bound" if not isinstance(a, RegistryError) else a.code for a in answers}))
        if kind == 3:
            view = reg.who_checked_me(handle)  # signs heads while others append
            assert view.verify(signer.public_key)
            return "viewed"
        try:
            reg.bind(number(i), pid, ops[i % 4])
            return "bound"
        except RegistryError as e:
            return e.code

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    binds = [r for i, r in enumerate(results) if i % 4 in (1, 2)]
    assert binds.count("bound") == 5 and binds.count("identity_cap_reached") == len(binds) - 5
    assert results.count("batch:bound") == CLIENTS // 4 and results.count("viewed") == CLIENTS // 4

    got = leaves(reg)
    proofings = 1 + CLIENTS // 4
    assert [e.seq for e in got] == list(range(len(got))) == list(range(proofings + 5 + 3 * (CLIENTS // 4)))
    assert sum(e.event == "registry.bind" and e.handle == handle for e in got) == 5
    assert reg.audit_log.root() == MemoryTree(e.leaf_hash for e in got).root()
    records = list(reg.audit_export(auditor))
    report = verify_log(records, signer.public_key)
    assert report.ok, report.lines()
    assert report.tree_heads >= 1 and report.verified_size == len(got)  # every head the readers got is consistent
    engine.dispose()


# --- template unseals are leaves ---------------------------------------------------------------------------------


def _stub_verifier():
    return SimpleNamespace(scorer=SimpleNamespace(models=("arcface_fp",)), threshold=SimpleNamespace(threshold=0.5, fmr=0.001))


def test_every_reauthentication_attempt_is_a_template_unseal_leaf(reg, world, signer):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from idproof.face.embed import Template
    from idproof.sealed import SealedTemplates, new_recovery_code

    sealed_service = SealedTemplates(reg.engine, Ed25519PrivateKey.generate(), _stub_verifier())
    v = np.random.default_rng(0).normal(size=512).astype(np.float32)
    sealed, code = sealed_service.enroll(world.alice, Template({"arcface_fp": v / np.linalg.norm(v)}))
    before = reg.audit_log.size()
    assert not sealed_service.reauthenticate("IDPS:NOT-A-TEMPLATE", code, b"").accepted
    assert sealed_service.reauthenticate(sealed, new_recovery_code(), b"").reason == "sealed_secret_wrong"
    assert sealed_service.reauthenticate(sealed, code, b"", expected_handle=world.bob).reason == "sealed_handle_mismatch"
    sealed_service.revoke(world.alice)
    assert sealed_service.reauthenticate(sealed, code, b"").reason == "sealed_revoked"
    new = shape(reg, before)
    assert [(ev, h, p["outcome"], p["reason"], p["version"]) for ev, h, p in new] == [
        ("template_unseal", None, "reject", "sealed_malformed", None),
        ("template_unseal", world.alice, "reject", "sealed_secret_wrong", 1),
        ("template_unseal", world.alice, "reject", "sealed_handle_mismatch", None),
        ("template_unseal", world.alice, "reject", "sealed_revoked", 1),
    ]
    assert all(set(p) == {"outcome", "reason", "reasons", "version"} for _, _, p in new)  # nothing of the template or code
    mine = reg.who_checked_me(world.alice)
    assert [e.event for e, _ in mine.entries][-3:] == ["template_unseal"] * 3 and mine.verify(signer.public_key)
    assert "template_unseal" not in {e.event for e, _ in reg.who_checked_me(world.bob).entries}


# --- HTTP: routes_audit -------------------------------------------------------------------------------------------


def _app(reg: Registry):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from idproof.service import routes_audit
    from idproof.service.problems import install_handlers

    app = FastAPI()
    app.state.idproof = SimpleNamespace(registry=reg)
    install_handlers(app)
    for r in (routes_audit.me, routes_audit.audit, routes_audit.well_known):
        app.include_router(r)
    return TestClient(app)


def _unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def test_http_a_person_checks_every_entry_offline_and_auditors_get_heads_proofs_and_the_export(db_url, clock, signer):
    with Registry(db_url, clock=clock, audit_signer=signer) as reg:
        world = World(reg)
        client = _app(reg)
        _, op_key = reg.add_operator("Initech")
        _, auditor_key = reg.add_operator("Regulator 2", role="auditor")
        token = reg.issue_person_token(prove(reg, world.alice))

        key = client.get("/.well-known/idproof-audit-key")
        assert key.status_code == 200 and key.json()["key_id"] == signer.key_id
        public = load_public_key(key.json()["pem"])
        assert base64.urlsafe_b64decode(key.json()["jwk"]["x"] + "=") == raw_public_key(public)

        assert client.get("/v1/me/audit").status_code == 401
        res = client.get("/v1/me/audit", headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 200, res.text
        body = res.json()
        # offline, from the answer and the published key alone
        head = body["tree_head"]
        msg = tree_head_message(head["size"], _unb64(head["root"]), datetime.fromisoformat(head["timestamp"]))
        public.verify(_unb64(head["signature"]), msg)
        assert body["signed"] and head["size"] == body["tree_size"] and head["root"] == body["root"] and body["key_id"] == signer.key_id
        root = _unb64(body["root"])
        assert [e["event"] for e in body["entries"]] == [ev for ev, h, _ in world.expected if h == world.alice] + ["proofing.decision"]
        for e in body["entries"]:
            ph = hashlib.sha256(json.dumps(e["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
            assert ph == e["payload_sha256"]
            leaf = json.dumps({"event": e["event"], "handle": body["handle"], "payload_sha256": e["payload_sha256"],
                               "seq": e["seq"], "time": e["time"], "v": 1}, sort_keys=True, separators=(",", ":")).encode()
            assert leaf_hash(leaf) == _unb64(e["leaf_hash"])
            assert verify_inclusion(leaf_hash(leaf), e["seq"], body["tree_size"], [_unb64(h) for h in e["inclusion_proof"]], root)

        auth = {"Authorization": f"Bearer {auditor_key}"}
        assert client.get("/v1/audit/tree-head", headers={"Authorization": f"Bearer {op_key}"}).status_code == 403
        th = client.get("/v1/audit/tree-head", headers=auth).json()
        assert th == head  # the log has not grown since
        reg.lookup(number(1), world.op)
        th2 = client.get("/v1/audit/tree-head", headers=auth).json()
        assert th2["size"] == th["size"] + 1
        cons = client.get("/v1/audit/consistency", params={"first": th["size"]}, headers=auth).json()
        assert (cons["first"], cons["second"]) == (th["size"], th2["size"])
        assert cons["first_tree_head"] == th and cons["second_tree_head"] == th2
        assert verify_consistency(th["size"], th2["size"], _unb64(th["root"]), _unb64(th2["root"]),
                                  [_unb64(h) for h in cons["proof"]])
        bad = client.get("/v1/audit/consistency", params={"first": 5, "second": 4}, headers=auth)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_tree_size" and bad.json()["fix"]

        exp = client.get("/v1/audit/export", headers=auth)
        assert exp.status_code == 200 and exp.headers["content-type"].startswith("application/x-ndjson")
        records = [json.loads(line) for line in exp.text.splitlines()]
        assert records[0]["format"] == "idproof-audit-export"
        assert verify_log(records, public).ok
        assert client.get("/v1/audit/export", headers={"Authorization": f"Bearer {op_key}"}).status_code == 403

    with Registry(db_url, clock=clock) as unsigned:  # the same database, a server without the key
        client = _app(unsigned)
        r = client.get("/.well-known/idproof-audit-key")
        assert r.status_code == 404 and r.json()["code"] == "audit_not_signed" and r.json()["fix"]
        body = client.get("/v1/me/audit", headers={"Authorization": f"Bearer {token}"}).json()
        assert body["signed"] is False and body["tree_head"] is None and body["entries"]
