"""`idproof bench registry`: the bulk loader writes rows the Registry reads as its own, the bench database is
fresh and dropped, and the bench at a tiny size prints every figure (SQLite, and PostgreSQL when
$IDPROOF_TEST_PG_URL is set: scripts/test.sh starts a throw-away cluster and sets it)."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from idproof.bench import registry as br
from idproof.errors import IdproofError
from idproof.registry import Registry, normalize_number

PG_URL = os.environ.get("IDPROOF_TEST_PG_URL")
DBS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="IDPROOF_TEST_PG_URL is not set"))]
SIZE = 2000


def _db(kind: str) -> str:
    return "sqlite" if kind == "sqlite" else PG_URL


def test_numbers_are_distinct_e164_and_spread():
    nums = [br.number(i) for i in range(50_000)]
    assert len(set(nums)) == len(nums)
    assert all(normalize_number(n) == n for n in nums[:2000])
    assert nums[:5] != sorted(nums[:5])  # not in key order: inserts land all over the primary key's index
    assert br.number(10**10 - 1) != br.number(0) and len(br.number(10**10 - 1)) == 14


def test_parse_sizes():
    assert br.parse_sizes("10000,1000000") == [10_000, 1_000_000]
    assert br.parse_sizes("10k, 1M,2_000") == [10_000, 1_000_000, 2_000]
    for bad in ("", "ten", "0", "-5"):
        with pytest.raises(IdproofError):
            br.parse_sizes(bad)


@pytest.mark.parametrize("kind", DBS)
def test_bulk_loaded_rows_are_read_by_the_registry_as_its_own(kind):
    with br.fresh_database(_db(kind)) as target:
        with Registry(target.url) as reg:
            ops = [reg.add_operator(f"op{i}")[0] for i in range(br.OPERATORS)]
            op_ids = [o.operator_id for o in ops]
            steps = []
            pop = br.bulk_load(target, op_ids, SIZE, seed=3, progress=steps.append)
            assert steps[-1] == SIZE and pop.size == SIZE and len(pop.holder) == len(pop.operator) == SIZE
            per_identity = Counter(pop.holder)
            assert len(pop.handles) == len(per_identity) and max(per_identity.values()) <= reg.cap
            assert 1.7 < SIZE / len(pop.handles) < 2.5  # mean 2.1 numbers an identity

            # my_numbers of loaded identities: exactly their loaded numbers, with operator, status and time
            for idx in random.Random(1).sample(range(len(pop.handles)), 25):
                want = sorted(br.number(i) for i in range(SIZE) if pop.holder[i] == idx)
                got = reg.my_numbers(pop.handles[idx])
                assert sorted(b.number for b in got) == want
                assert all(b.status == "active" and b.handle == pop.handles[idx] for b in got)
                assert all(b.bound_at.tzinfo is not None and b.bound_at < datetime.now(UTC) for b in got)
                for b in got:
                    assert b.operator_id == op_ids[pop.operator[[br.number(i) for i in range(SIZE)].index(b.number)]]
            # an operator's lookup, a dispute, an unbind, a transfer of loaded numbers all work
            i = 7
            num, op = br.number(i), ops[pop.operator[i]]
            assert reg.lookup(num, op).handle == pop.handles[pop.holder[i]]
            holder = pop.handles[pop.holder[i]]
            fresh = br.write_fresh_proofings(target, [(holder, op.operator_id), ("ab" * 32, op.operator_id)])
            assert [reg.get_proofing(p).outcome for p in fresh] == ["accept", "accept"]
            moved = reg.transfer(num, current_proofing_id=fresh[0], new_proofing_id=fresh[1], operator=op)
            assert moved.handle == "ab" * 32
            assert reg.dispute(br.number(8), pop.handles[pop.holder[8]]).status == "suspended"
            # the cap counts loaded numbers: an identity loaded with 5 takes no sixth
            full = next(h for h, n in per_identity.items() if n == 5)
            pid = br.write_fresh_proofings(target, [(pop.handles[full], op.operator_id)])[0]
            with pytest.raises(Exception) as e:
                reg.bind(br.number(SIZE + 1), pid, op)
            assert getattr(e.value, "code", None) == "identity_cap_reached"
            # the setup audit rows are there, marked
            auditor, _ = reg.add_operator("Regulator", role="auditor")
            first = reg.audit(auditor, limit=3)
            assert [a.action for a in first] == ["bind"] * 3 and all(a.details["setup"] == "bench bulk load" for a in first)
            # the fresh proofings are fresh: bind through the API with one
            pid = br.write_fresh_proofings(target, [("cd" * 32, op.operator_id)])[0]
            assert reg.bind(br.number(SIZE + 2), pid, op).handle == "cd" * 32
            assert reg._now() - reg.get_proofing(pid).decided_at < timedelta(minutes=1)
        assert br._count(target, "bindings") == SIZE + 1


@pytest.mark.skipif(not PG_URL, reason="IDPROOF_TEST_PG_URL is not set")
def test_postgresql_bench_database_is_fresh_and_dropped():
    import psycopg

    def databases() -> set[str]:
        with psycopg.connect(PG_URL, autocommit=True) as c:
            return {r[0] for r in c.execute("SELECT datname FROM pg_database")}

    before = databases()
    with pytest.raises(RuntimeError), br.fresh_database(PG_URL) as target:
        name = target.url.rsplit("/", 1)[1]
        assert name.startswith("idproof_bench_") and name not in before and name in databases()
        assert "idproof_bench_" not in PG_URL
        raise RuntimeError("a failing bench still drops its database")
    assert databases() == before


def test_unknown_db_is_refused():
    with pytest.raises(IdproofError), br.fresh_database("mysql://x@y/z"):
        pass


def _check(result: dict, kind: str, clients: int) -> None:
    assert result["bench"] == "registry" and result["db"] == kind
    assert result["counts"]["sizes"] == [SIZE] and result["counts"]["clients"] == clients
    assert set(result) >= {"data", "counts", "idproof", "peers", "ratios", "machine", "database", "goals", "setup", "notes"}
    ours, floor = result["idproof"][str(SIZE)], result["peers"][br.FLOOR][str(SIZE)]
    for key in ("binds_per_s", "binds_per_s_clients", "bind_many_per_s", "bind_many_per_s_clients", "transfers_per_s", "transfers_per_s_clients"):
        assert ours[key] > 0, key
    for key in ("binds_per_s", "binds_per_s_clients", "bind_many_per_s", "bind_many_per_s_clients"):
        assert floor[key] > 0, key
    for who in (ours, floor):
        assert 0 < who["my_numbers_p50_ms"] <= who["my_numbers_p95_ms"] <= who["my_numbers_p99_ms"] <= who["my_numbers_max_ms"]
    assert result["ratios"][str(SIZE)]["binds_vs_floor"] > 0
    assert result["machine"]["cpus"] >= 1 and result["database"]["kind"] == kind
    assert result["setup"][str(SIZE)]["rows"]["bindings"] == SIZE
    assert result["setup"][str(SIZE)]["rows_at_end"]["bindings"] > SIZE
    assert all(set(p["codes"]) == {"ok"} for p in result["phases"][str(SIZE)].values())  # nothing timed was refused
    assert not any(n.startswith("WARNING: some timed operations were refused") for n in result["notes"])
    goals = result["goals"][str(SIZE)]
    assert goals["binds_goal_applies"] is (kind == "postgresql") and goals["my_numbers_goal_applies"] is False
    json.dumps(result)


@pytest.mark.slow
def test_bench_command_json_on_sqlite():
    from idproof.cli import app

    res = CliRunner().invoke(app, ["bench", "registry", "--db", "sqlite", "--sizes", str(SIZE), "--ops", "100", "--clients", "2", "--batch", "50", "--json"])
    assert res.exit_code == 0, res.output
    _check(json.loads(res.stdout), "sqlite", 2)


@pytest.mark.slow
@pytest.mark.skipif(not PG_URL, reason="IDPROOF_TEST_PG_URL is not set")
def test_bench_on_postgresql_and_its_table():
    result = br.run(PG_URL, [SIZE], ops=100, clients=2, batch=50)
    _check(result, "postgresql", 2)
    assert result["database"]["server_version"] and "fsync" in result["database"]


def test_bench_command_refuses_bad_options():
    from idproof.cli import app

    for args in (["--db", "oracle://x"], ["--sizes", "lots"], ["--ops", "3"], ["--batch", "5000"]):
        res = CliRunner().invoke(app, ["bench", "registry", *args, "--json"])
        assert res.exit_code == 2, (args, res.output)
