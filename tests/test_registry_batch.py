"""Registry.bind_many on SQLite and on a real PostgreSQL: every request gets the answer bind() would give in
that order, under the same cap and with the same audit rows; a batch commits whole or not at all (an error
mid-way, a kill -9 mid-transaction); concurrent batches and binds never exceed the cap nor bind a number twice.

This file is also the crash test's writer: ``python test_registry_batch.py URL PLAN`` runs the plan's batches
in order, printing "committed N" after each, and stalls for good inside the last batch's transaction, after
its binding rows are written and before its audit rows.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path


def writer(url: str, plan_path: str) -> None:
    from idproof.registry import Principal, Registry
    from idproof.storage.models import AuditRecord

    plan = json.loads(Path(plan_path).read_text())
    insert_many = Registry._insert_many
    last = len(plan["batches"]) - 1
    state = {"batch": 0}

    def stalling(self, conn, model, rows):
        if model is AuditRecord and state["batch"] == last:
            print("stalled", flush=True)
            time.sleep(600)
        return insert_many(self, conn, model, rows)

    Registry._insert_many = stalling
    reg = Registry(url)
    operator = Principal(**plan["operator"])
    print("ready", flush=True)
    for k, batch in enumerate(plan["batches"]):
        state["batch"] = k
        reg.bind_many([tuple(x) for x in batch], operator)
        print(f"committed {k}", flush=True)


if __name__ == "__main__":
    writer(*sys.argv[1:])
    sys.exit(0)


import pytest
from sqlalchemy import select

from idproof.decision import Decision
from idproof.reasons import Outcome
from idproof.registry import Binding, ForbiddenError, Registry, RegistryError
from idproof.storage.models import AuditRecord, NumberBinding, RegistryIdentity
from idproof.storage.store import make_engine

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def prove(reg: Registry, handle: str | None, at: datetime, outcome: Outcome = Outcome.ACCEPT, operator_id: str | None = None) -> str:
    d = Decision(outcome, (), None, "test", "test", {}, {}, decided_at=at.isoformat(), subject_handle=handle)
    return reg.record_proofing(d, operator_id=operator_id).id


def outcome(x: Binding | RegistryError) -> str:
    return "bound" if isinstance(x, Binding) else x.code


def state(reg: Registry) -> tuple[set, list]:
    with reg.engine.connect() as c:
        bindings = set(c.execute(select(NumberBinding.number, NumberBinding.handle, NumberBinding.operator_id, NumberBinding.status)))
        audited = [
            (r.number, r.handle, r.actor, r.details["proofing_id"])
            for r in c.execute(select(AuditRecord).where(AuditRecord.action == "bind").order_by(AuditRecord.seq))
        ]
    return bindings, audited


# --- the same answers as bind(), one after another ------------------------------------------------------


class Universe:
    """One copy of a scenario: its own identities, numbers and proofings, with the same structure as the
    other copy, so that bind_many in one and bind() one after another in the other can be compared."""

    def __init__(self, reg: Registry, tag: int, op, other_op, shape: dict) -> None:
        self.tag, self.reg, self.op = tag, reg, op
        now = reg._now()
        self.handles = [secrets.token_hex(32) for _ in range(shape["identities"])]
        self.fresh = [prove(reg, h, now - timedelta(minutes=1), operator_id=op.operator_id) for h in self.handles]
        self.stale = [prove(reg, h, now - timedelta(minutes=16)) for h in self.handles]
        self.rejected = [prove(reg, h, now, Outcome.REJECT) for h in self.handles]
        self.other_ops = [prove(reg, h, now, operator_id=other_op.operator_id) for h in self.handles]
        self.no_handle = prove(reg, None, now)
        for i, held in enumerate(shape["held"]):  # numbers each identity holds before the batch
            for j in range(held):
                reg.bind(self.number(1000 + 10 * i + j), self.fresh[i], op)
        for j in shape["suspended"]:
            reg.dispute(self.number(1000 + 10 * j), self.handles[j])

    def number(self, j: int) -> str:
        return f"+316{self.tag}{j:07d}"

    def request(self, spec: tuple) -> tuple:
        (nk, nj), (pk, pj) = spec
        num = self.number(nj) if nk == "n" else nj
        pid = {
            "fresh": lambda: self.fresh[pj], "stale": lambda: self.stale[pj], "rejected": lambda: self.rejected[pj],
            "other_op": lambda: self.other_ops[pj], "no_handle": lambda: self.no_handle,
            "unknown": lambda: "00000000-0000-4000-8000-000000000000", "not_str": lambda: 12345,
        }[pk]()  # fmt: skip
        return num, pid

    def canonical(self, x):
        """A value with this universe's handles, numbers and proofing ids replaced by their place."""
        ids = {p: (k, i) for k in ("fresh", "stale", "rejected", "other_ops") for i, p in enumerate(getattr(self, k))}
        if isinstance(x, str) and x in self.handles:
            return ("handle", self.handles.index(x))
        if isinstance(x, str) and x.startswith(f"+316{self.tag}"):
            return ("number", x[5:])
        if isinstance(x, str) and x in ids:
            return ids[x]
        if isinstance(x, tuple):
            return tuple(self.canonical(v) for v in x)
        return x


def random_shape(rng: random.Random) -> tuple[dict, list[tuple]]:
    n = 6
    held = [rng.choice([0, 0, 1, 3, 4, 5]) for _ in range(n)]
    shape = {"identities": n, "held": held, "suspended": [i for i in range(n) if held[i] and rng.random() < 0.3]}
    pool = [("n", j) for j in range(12)] + [("n", 1000 + 10 * i + j) for i in range(n) for j in range(held[i])]
    bad = [("bad", "12345"), ("bad", "+0441234567"), ("bad", None)]
    pids = ["fresh"] * 12 + ["stale", "rejected", "other_op", "no_handle", "unknown", "not_str"]
    specs = []
    for _ in range(40):
        num = rng.choice(bad) if rng.random() < 0.08 else rng.choice(pool)
        pk = rng.choice(pids)
        specs.append((num, (pk, rng.randrange(n))))
    return shape, specs


@pytest.mark.parametrize("seed", [5, 6, 7, 8])
def test_bind_many_answers_as_binds_one_after_another_would(db_url, seed):
    clock = Clock()
    with Registry(db_url, clock=clock) as reg:
        op, _ = reg.add_operator("Acme")
        other, _ = reg.add_operator("Globex")
        shape, specs = random_shape(random.Random(seed))
        batch_u, seq_u = Universe(reg, 1, op, other, shape), Universe(reg, 2, op, other, shape)
        before = state(reg)

        answers = reg.bind_many([batch_u.request(s) for s in specs], op)
        expected = []
        for s in specs:
            try:
                expected.append(reg.bind(*seq_u.request(s), op))
            except RegistryError as e:
                expected.append(e)

        assert len(answers) == len(specs)
        assert [outcome(a) for a in answers] == [outcome(e) for e in expected]
        assert {"bound", "identity_cap_reached", "number_already_bound", "number_suspended"} <= set(map(outcome, answers))  # it bites
        for a, e in zip(answers, expected):
            if isinstance(a, Binding):
                assert batch_u.canonical((a.number, a.handle, a.operator_id, a.status)) == seq_u.canonical(
                    (e.number, e.handle, e.operator_id, e.status)
                )
                assert a.bound_at == e.bound_at == clock.now
        # the same rows in the database: bindings, and one audit row per accepted bind with its proofing id
        after = state(reg)
        new_bindings = after[0] - before[0]
        new_audit = after[1][len(before[1]) :]
        for u in (batch_u, seq_u):
            assert len({b for b in new_bindings if b[0].startswith(f"+316{u.tag}")}) == sum(
                outcome(x) == "bound" for x in (answers if u is batch_u else expected)
            )
        canon = lambda u, rows: sorted(u.canonical(tuple(r)) for r in rows if r[0].startswith(f"+316{u.tag}"))
        assert canon(batch_u, new_bindings) == canon(seq_u, new_bindings)
        assert canon(batch_u, new_audit) == canon(seq_u, new_audit)
        assert sorted(a[:2] for a in new_audit) == sorted(b[:2] for b in new_bindings)
        # never above the cap
        for h in batch_u.handles + seq_u.handles:
            assert len(reg.my_numbers(h)) <= reg.cap


def test_bind_many_limits_and_roles(db_url):
    with Registry(db_url) as reg:
        op, _ = reg.add_operator("Acme")
        auditor, _ = reg.add_operator("Regulator", role="auditor")
        pid = prove(reg, secrets.token_hex(32), datetime.now(UTC))
        assert reg.bind_many([], op) == []
        with pytest.raises(ValueError):
            reg.bind_many([(f"+3161{i:07d}", pid) for i in range(1001)], op)
        with pytest.raises(ForbiddenError):
            reg.bind_many([("+31610000001", pid)], auditor)
        # all refused before the database: answered without a transaction
        assert [outcome(a) for a in reg.bind_many([("nope", pid), ("+1", pid)], op)] == ["invalid_number"] * 2
        # the largest batch
        handles = [secrets.token_hex(32) for _ in range(1000)]
        pids = [prove(reg, h, datetime.now(UTC)) for h in handles]
        answers = reg.bind_many([(f"+3162{i:07d}", p) for i, p in enumerate(pids)], op)
        assert all(isinstance(a, Binding) for a in answers) and [a.handle for a in answers] == handles
        assert len(state(reg)[1]) == 1000


def test_a_batch_that_fails_midway_leaves_nothing(db_url, monkeypatch):
    with Registry(db_url) as reg:
        op, _ = reg.add_operator("Acme")
        handles = [secrets.token_hex(32) for _ in range(20)]
        pids = [prove(reg, h, datetime.now(UTC)) for h in handles]
        reg.bind("+31600000001", pids[0], op)
        before = state(reg)
        insert_many = Registry._insert_many

        def failing(self, conn, model, rows):
            if model is AuditRecord:
                raise RuntimeError("disk on fire")  # after the binding rows were written
            return insert_many(self, conn, model, rows)

        monkeypatch.setattr(Registry, "_insert_many", failing)
        with pytest.raises(RuntimeError):
            reg.bind_many([(f"+3163{i:07d}", p) for i, p in enumerate(pids)], op)
        assert state(reg) == before
        with reg.engine.connect() as c:  # not even the identity rows the batch inserted
            assert c.execute(select(RegistryIdentity.handle)).scalars().all() == [handles[0]]
        monkeypatch.setattr(Registry, "_insert_many", insert_many)
        assert all(isinstance(a, Binding) for a in reg.bind_many([(f"+3163{i:07d}", p) for i, p in enumerate(pids)], op))
        assert len(state(reg)[1]) == 21


def test_kill_9_mid_batch_leaves_the_batch_whole_or_absent(db_url, tmp_path):
    with Registry(db_url) as reg:
        op, _ = reg.add_operator("Acme")
        pids = [prove(reg, secrets.token_hex(32), datetime.now(UTC)) for _ in range(300)]
        batches = [[(f"+3164{k:03d}{i:04d}", pids[k * 100 + i]) for i in range(100)] for k in range(3)]
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps({"operator": vars(op), "batches": batches}))
        proc = subprocess.Popen([sys.executable, __file__, db_url, str(plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        while (line := proc.stdout.readline()) != "stalled\n":
            assert line, proc.stderr.read()
            lines.append(line.strip())
        assert lines == ["ready", "committed 0", "committed 1"]
        os.kill(proc.pid, signal.SIGKILL)  # inside the third batch's transaction: its bindings written, no audit row yet
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        bindings, audited = state(reg)
        want = {n for b in batches[:2] for n, _ in b}
        assert {b[0] for b in bindings} == want
        assert sorted(a[0] for a in audited) == sorted(want)
        # the registry answers the lost batch again, whole
        assert all(isinstance(a, Binding) for a in reg.bind_many(batches[2], op))
        assert len(state(reg)[1]) == 300


# --- concurrency ---------------------------------------------------------------------------------------

CLIENTS = 32


def test_32_concurrent_batches_and_binds_to_one_identity_stop_at_the_cap(db_url):
    engine = make_engine(db_url, pool_size=CLIENTS + 1, max_overflow=0)
    reg = Registry(engine, cap=5)
    ops = [reg.add_operator(f"op{i}")[0] for i in range(4)]
    handle = secrets.token_hex(32)
    pids = {o.operator_id: prove(reg, handle, datetime.now(UTC), operator_id=o.operator_id) for o in ops}
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> list[str]:
        op = ops[i % 4]
        nums = [f"+3165{i:03d}{j:04d}" for j in range(3)]
        start.wait()
        if i % 2:  # half the clients send a batch of three, half bind one number
            return [outcome(a) for a in reg.bind_many([(n, pids[op.operator_id]) for n in nums], op)]
        try:
            reg.bind(nums[0], pids[op.operator_id], op)
            return ["bound"]
        except RegistryError as e:
            return [e.code]

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [x for r in pool.map(client, range(CLIENTS)) for x in r]
    assert results.count("bound") == 5
    assert set(results) == {"bound", "identity_cap_reached"} and len(results) == 16 * 3 + 16
    held = [b.number for b in reg.my_numbers(handle)]
    bindings, audited = state(reg)
    assert len(held) == len(set(held)) == 5 == len(bindings)
    assert sorted(a[0] for a in audited) == sorted(held)
    engine.dispose()


def test_concurrent_batches_over_shared_identities_neither_deadlock_nor_exceed_the_cap(db_url):
    """Batches that lock overlapping sets of identities, in every order, race for the same numbers."""
    engine = make_engine(db_url, pool_size=CLIENTS + 1, max_overflow=0)
    reg = Registry(engine, cap=3)
    op, _ = reg.add_operator("Acme")
    handles = [secrets.token_hex(32) for _ in range(12)]
    pids = [prove(reg, h, datetime.now(UTC)) for h in handles]
    start = threading.Barrier(16)

    def client(i: int) -> list:
        rng = random.Random(i)
        reqs = [(f"+3166{rng.randrange(60):07d}", pids[rng.randrange(12)]) for _ in range(25)]
        start.wait()
        return [(n, outcome(a)) for (n, _), a in zip(reqs, reg.bind_many(reqs, op))]

    with ThreadPoolExecutor(16) as pool:
        results = [x for r in pool.map(client, range(16)) for x in r]
    bindings, audited = state(reg)
    bound = [n for n, o in results if o == "bound"]
    assert len(bound) == len(set(bound)) == len(bindings)  # each number bound once, by one request
    assert {b[0] for b in bindings} == set(bound)
    assert sorted(a[0] for a in audited) == sorted(bound)
    assert {o for _, o in results} <= {"bound", "number_already_bound", "identity_cap_reached"}
    for h in handles:
        assert len(reg.my_numbers(h)) <= 3
    engine.dispose()


def test_a_number_taken_by_a_concurrent_bind_after_the_check_is_answered_again(db_url, monkeypatch):
    """PostgreSQL: another identity's bind commits the number between the batch's check and its INSERT;
    the key refuses the INSERT, the batch is answered again (that number: already bound), the rest bound."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: no other bind can commit inside the batch's transaction")
    with Registry(db_url) as reg, Registry(db_url) as rival:
        op, _ = reg.add_operator("Acme")
        handles = [secrets.token_hex(32) for _ in range(4)]
        pids = [prove(reg, h, datetime.now(UTC)) for h in handles]
        rival_pid = prove(reg, secrets.token_hex(32), datetime.now(UTC))
        insert_many = Registry._insert_many
        calls = []

        def racing(self, conn, model, rows):
            if model is NumberBinding and not calls:
                calls.append(1)
                rival.bind("+31670000002", rival_pid, op)  # commits on its own connection
            return insert_many(self, conn, model, rows)

        monkeypatch.setattr(Registry, "_insert_many", racing)
        answers = reg.bind_many([(f"+3167000000{i}", p) for i, p in enumerate(pids)], op)
        assert [outcome(a) for a in answers] == ["bound", "bound", "number_already_bound", "bound"]
        bindings, audited = state(reg)
        assert len(bindings) == len(audited) == 4
