"""kill -9 a registry writer in the middle of a batch of binds: afterwards every bind is whole (the binding
and its audit row) or absent, on SQLite and on PostgreSQL.

This file is also the writer: ``python test_registry_crash.py URL PLAN [STALL]`` binds the plan's numbers in
order, printing each number once its transaction has committed. With STALL (a number), it stops for good inside
that number's transaction, after the binding row is written and before its audit row: a kill there is
certainly mid-transaction, where a kill at a random instant only probably is.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HANDLES = 40
PER_HANDLE = 5  # the cap: the batch fills every identity exactly
ROUNDS = 3


def writer(url: str, plan_path: str, stall: str | None = None) -> None:
    from idproof.registry import NumberAlreadyBoundError, Principal, Registry

    audit = Registry._audit

    def stalling_audit(self, conn, at, action, actor, number, *rest):
        if number == stall:
            print("stalled", flush=True)
            time.sleep(600)
        return audit(self, conn, at, action, actor, number, *rest)

    Registry._audit = stalling_audit
    plan = json.loads(Path(plan_path).read_text())
    reg = Registry(url, cap=PER_HANDLE)
    operator = Principal(**plan["operator"])
    print("ready", flush=True)
    for num, proofing_id in plan["binds"]:
        try:
            reg.bind(num, proofing_id, operator)
        except NumberAlreadyBoundError:
            continue  # committed before an earlier kill
        print(num, flush=True)


if __name__ == "__main__":
    writer(*sys.argv[1:])
    sys.exit(0)


from sqlalchemy import select

from idproof.decision import Decision
from idproof.reasons import Outcome
from idproof.registry import Registry
from idproof.storage.models import AuditRecord, NumberBinding


def start_writer(db_url: str, plan: Path, *stall: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, __file__, db_url, str(plan), *stall], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    return proc


def state(reg: Registry) -> tuple[set, list]:
    with reg.engine.connect() as c:
        bindings = set(c.execute(select(NumberBinding.number, NumberBinding.handle)))
        audited = list(c.execute(select(AuditRecord.number, AuditRecord.handle).where(AuditRecord.action == "bind")))
    return bindings, audited


def assert_whole(reg: Registry, acknowledged: set[str]) -> set[str]:
    bindings, audited = state(reg)
    assert len(audited) == len(set(audited)), "a bind was audited twice"
    assert set(audited) == bindings, "a binding without its audit row, or an audit row without its binding"
    bound = {n for n, _ in bindings}
    assert acknowledged <= bound, "a committed bind was lost"
    return bound


def test_kill_9_mid_batch_leaves_every_bind_whole_or_absent(db_url, tmp_path):
    reg = Registry(db_url, cap=PER_HANDLE)
    operator, _ = reg.add_operator("Acme")
    now = datetime.now(UTC).isoformat()
    proofings = []
    for _ in range(HANDLES):
        d = Decision(Outcome.ACCEPT, (), None, "test", "test", {}, {}, decided_at=now, subject_handle=secrets.token_hex(32))
        proofings.append(reg.record_proofing(d).id)
    binds = [(f"+3161{i:07d}", proofings[i % HANDLES]) for i in range(HANDLES * PER_HANDLE)]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"operator": vars(operator), "binds": binds}))

    rng = random.Random(5)
    acknowledged: set[str] = set()
    for round in range(ROUNDS):
        # the last round stalls inside a bind's transaction; the others are killed at a random instant
        bound_now = {n for n, _ in state(reg)[0]}
        pending = [n for n, _ in binds if n not in bound_now]
        stall = pending[40] if round == ROUNDS - 1 else None  # beyond the lines read before the wait
        proc = start_writer(db_url, plan, *([stall] if stall else []))
        for _ in range(rng.randint(15, 35)):  # let it commit some, then kill it mid-batch
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            acknowledged.add(line.strip())
        if stall:
            while (line := proc.stdout.readline()) != "stalled\n":
                assert line, proc.stderr.read()
                acknowledged.add(line.strip())
        else:
            time.sleep(rng.uniform(0, 0.005))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        acknowledged |= set(rest.split())  # printed before the kill, still in the pipe
        assert proc.returncode == -signal.SIGKILL
        bound = assert_whole(reg, acknowledged)
        assert len(bound) < len(binds), "the writer finished before it was killed"
        assert stall not in bound  # its binding row was written, uncommitted: gone with the process
        assert len(bound - acknowledged) <= 1  # at most the one bind that committed but was not yet printed

    # restarted once more, the writer completes the batch; nothing was lost or doubled along the way
    proc = start_writer(db_url, plan)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert assert_whole(reg, acknowledged | set(out.split())) == {n for n, _ in binds}
    reg.close()
