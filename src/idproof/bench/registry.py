"""`idproof bench registry`: binds/s, transfers/s and "my numbers" latency of the subscriber registry at
10k and 1M bound numbers, on SQLite or PostgreSQL, beside a raw-SQL floor.

For each size, in a fresh database (a temporary SQLite file, or ``idproof_bench_<random>`` created on the
PostgreSQL server of ``--db`` and dropped afterwards; no other database is touched):

1. **Setup, not timed as binds**: operators through ``Registry.add_operator``; then ``size`` bound numbers on
   synthetic identities (random 32-byte hex handles, 1 to 5 numbers each, mean 2.1; spread over the operators)
   written straight into the tables (PostgreSQL ``COPY``, SQLite ``executemany``): per identity its
   accepted proofing row and ``identities`` row, per number its ``bindings`` row and its ``audit_log``
   "bind" row (marked ``{"setup": "bench bulk load"}``), so every table has the size it would have had.
   Then ``VACUUM ANALYZE`` / ``ANALYZE``. The fresh accepted proofings that the timed binds and transfers
   need are written the same way just before each phase (also setup).
2. **Timed, through the real ``Registry`` API** (rules, locks and audit rows included):
   "my numbers" latency (``my_numbers`` of random loaded identities after a warm-up, one client,
   p50/p95/p99), binds/s (``bind`` of new numbers to new identities, one transaction each), the same with
   K concurrent clients (processes, each its own connection), ``bind_many`` (batches of ``--batch``:
   the same rules and one audit row per bind, one transaction per batch), and transfers/s (``transfer``
   of loaded numbers to new identities, both holders freshly proven), one client and K clients.
3. **Peer, same run, same database**: the raw-SQL floor, through the bare driver (psycopg / sqlite3), no
   SQLAlchemy: per bind ``INSERT`` the identity row (``ON CONFLICT DO NOTHING``) and the binding row, in
   one transaction (per bind, or per batch); no proofing check, no lock, no cap or number check, **no
   audit row**. For "my numbers": the same ``SELECT`` alone, no audit row, no write transaction. It is what
   writing (reading) the rows costs: the ratios show what the rules and the audit add on top.

The timed figures are taken one after another (ours, then the floor, per figure), so they share the
machine's state; clients and database server share the same cores.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from idproof.bench._progress import Bars
from idproof.errors import IdproofError

OURS, FLOOR = "idproof", "raw_sql_floor"
DEFAULT_SIZES = (10_000, 1_000_000)
GOAL_BINDS_PER_S = 5000  # on PostgreSQL, on the project's 2-core machine
GOAL_MY_NUMBERS_P95_MS = 5.0
GOAL_SIZE = 1_000_000
OPERATORS = 4
NUMBERS_PER_IDENTITY = ((1, 0.40), (2, 0.30), (3, 0.15), (4, 0.10), (5, 0.05))  # mean 2.1; never above the cap of 5
CHUNK = 50_000  # rows per load step (one transaction, one progress step)
WARMUP = 200  # untimed my_numbers calls before the timed ones
CONTENTION_CORES = 0.25  # other processes' average load above this during a phase: its timings are flagged
SETUP_TAG = "bench-setup"

# Phone numbers: i -> "+447" + a 10-digit number, (i * _MUL + _ADD) mod 10^10 with _MUL coprime to 10^10, so
# every i below 10^10 gets its own number, in an order that spreads the inserts over the primary key's index
# (as real numbers arrive) instead of appending at its right edge.
_MUL, _ADD, _MOD = 7_919_304_581, 1_234_567_891, 10**10


def number(i: int) -> str:
    return f"+447{(i * _MUL + _ADD) % _MOD:010d}"


def new_handle(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


# --- the database under test ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    kind: str  # "sqlite" | "postgresql"
    url: str  # SQLAlchemy URL of the fresh database (idproof.storage.store.make_engine form)
    dsn: str  # the bare driver's: a file path (SQLite) or a libpq URL (PostgreSQL)
    shown: str  # for reports: no password


def _libpq(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@contextmanager
def fresh_database(db: str, tag: str = "") -> Iterator[Target]:
    """``sqlite``: a new file in a temporary folder (deleted after). A PostgreSQL URL: a new database
    ``idproof_bench_<random>`` on that server (dropped after, even on failure); the URL's own database is
    only used to create and drop it."""
    if db == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="idproof-bench-registry-"))
        try:
            path = tmp / f"registry{tag}.sqlite3"
            yield Target("sqlite", f"sqlite:///{path}", str(path), f"sqlite (temporary file {path})")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if not db.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise IdproofError(f"Unknown --db {db!r}.", fix="Pass --db sqlite, or a postgresql://USER@HOST:PORT/DB URL.")
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(_libpq(db)).set(drivername="postgresql")
    admin_dsn = admin.render_as_string(hide_password=False)
    name = f"idproof_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        raise IdproofError(
            f"Could not create a bench database on {admin.render_as_string(hide_password=True)}: {type(e).__name__}.",
            fix="Pass the URL of a PostgreSQL server you may create databases on (e.g. one from scripts/pg.sh start DIR).",
        ) from e
    target = admin.set(database=name)
    try:
        yield Target(
            "postgresql",
            target.render_as_string(hide_password=False),
            target.render_as_string(hide_password=False),
            target.render_as_string(hide_password=True),
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _connect(target: Target) -> Any:
    """A bare driver connection with the settings the registry's engine uses (SQLite: WAL, foreign keys, busy timeout)."""
    if target.kind == "postgresql":
        import psycopg

        return psycopg.connect(target.dsn)
    conn = sqlite3.connect(target.dsn, isolation_level=None)  # we say BEGIN and COMMIT ourselves
    from idproof.storage.store import _sqlite_pragmas

    _sqlite_pragmas(conn, None)
    return conn


# --- bulk load (setup) -------------------------------------------------------------------------------

_TABLES = {
    "proofing_decisions": ("id", "decided_at", "outcome", "reasons", "scorer", "calibration_version", "model_versions",
                           "timings_ms", "code_version", "subject_handle", "operator_id"),
    "identities": ("handle",),
    "bindings": ("number", "handle", "operator_id", "status", "bound_at", "proofing_id"),
    "audit_log": ("at", "action", "actor", "number", "handle", "details"),
}  # fmt: skip


@dataclass
class Population:
    """What the bench knows about the loaded rows (the database knows it too; this saves asking it)."""

    handles: list[str]  # identity index -> handle
    holder: array  # number index -> identity index
    operator: array  # number index -> operator index
    size: int


class Loader:
    """Writes rows straight into the tables: PostgreSQL ``COPY .. FROM STDIN``, SQLite ``executemany``,
    in the storage formats SQLAlchemy uses (so the Registry reads them as its own). Setup only: no rule runs."""

    def __init__(self, target: Target) -> None:
        self.kind = target.kind
        self.conn = _connect(target)

    def close(self) -> None:
        self.conn.close()

    def _ts(self, dt: datetime) -> str:
        if self.kind == "postgresql":
            return dt.isoformat()
        return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME text, naive UTC

    def write(self, rows: dict[str, list[tuple]]) -> None:
        """One transaction: each table's rows, in _TABLES order (parents before children)."""
        if self.kind == "postgresql":
            with self.conn.transaction(), self.conn.cursor() as cur:
                for table, cols in _TABLES.items():
                    if rows.get(table):
                        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                            copy.write("".join("\t".join(r"\N" if v is None else str(v) for v in row) + "\n" for row in rows[table]))
        else:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for table, cols in _TABLES.items():
                    if rows.get(table):
                        marks = ", ".join("?" * len(cols))
                        self.conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows[table])
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def proofing_row(self, pid: str, at: datetime, handle: str, operator_id: str | None) -> tuple:
        return (pid, self._ts(at), "accept", "[]", SETUP_TAG, SETUP_TAG, "{}", "{}", SETUP_TAG, handle, operator_id)

    def analyze(self) -> None:
        if self.kind == "postgresql":
            self.conn.commit()
            self.conn.autocommit = True
            for table in _TABLES:
                self.conn.execute(f"VACUUM ANALYZE {table}")
            self.conn.autocommit = False
        else:
            self.conn.execute("ANALYZE")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def bulk_load(
    target: Target, operator_ids: Sequence[str], size: int, *, seed: int = 0, progress: Callable[[int], None] | None = None
) -> Population:
    """``size`` bound numbers on new synthetic identities (see the module docstring); setup, not the rules."""
    rng = random.Random(seed)
    counts, weights = zip(*NUMBERS_PER_IDENTITY)
    loader = Loader(target)
    handles: list[str] = []
    holder, operator = array("i"), array("b")
    base = datetime.now(UTC) - timedelta(days=730)
    step = timedelta(days=700) / max(size, 1)  # bound_at spread over two years, in load order
    try:
        done = 0
        while done < size:
            rows: dict[str, list[tuple]] = {t: [] for t in _TABLES}
            chunk_end = min(size, done + CHUNK)
            while done < chunk_end:
                k = min(rng.choices(counts, weights)[0], size - done)
                h, idx = new_handle(rng), len(handles)
                handles.append(h)
                ops = [rng.randrange(len(operator_ids)) for _ in range(k)]
                pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                at = base + step * done
                rows["proofing_decisions"].append(loader.proofing_row(pid, at - timedelta(seconds=30), h, operator_ids[ops[0]]))
                rows["identities"].append((h,))
                for j, o in enumerate(ops):
                    n, t = number(done + j), loader._ts(at + timedelta(seconds=j))
                    rows["bindings"].append((n, h, operator_ids[o], "active", t, pid))
                    details = json.dumps({"proofing_id": pid, "setup": "bench bulk load"})
                    rows["audit_log"].append((t, "bind", operator_ids[o], n, h, details))
                    holder.append(idx)
                    operator.append(o)
                done += k
            loader.write(rows)
            if progress:
                progress(done)
        loader.analyze()
    finally:
        loader.close()
    return Population(handles, holder, operator, size)


def write_fresh_proofings(target: Target, wanted: Sequence[tuple[str, str | None]]) -> list[str]:
    """Fresh accepted proofing rows (decided now) for ``(handle, operator_id)`` pairs; their ids. Setup."""
    loader = Loader(target)
    try:
        now = datetime.now(UTC)
        ids = [str(uuid.uuid4()) for _ in wanted]
        for k in range(0, len(wanted), CHUNK):
            part = zip(ids[k : k + CHUNK], wanted[k : k + CHUNK])
            loader.write({"proofing_decisions": [loader.proofing_row(pid, now, h, op) for pid, (h, op) in part]})
        return ids
    finally:
        loader.close()


# --- timed work: one client's share (run in this process, or in a spawned one per client) ---------------


def _principals(job: dict) -> list[Any]:
    from idproof.registry import Principal

    return [Principal(**p) for p in job["operators"]]


def _work(job: dict, start: Any = None, tick: Callable[[int], None] | None = None) -> dict:
    """Run one client's share of a phase. Connections are opened (and the schema checked) before ``start``
    (a barrier shared by the clients); only what follows it is timed."""
    kind, items = job["kind"], job["items"]
    codes: Counter[str] = Counter()
    lat: list[float] = []
    every = max(1, len(items) // 50)
    target = Target(**job["target"])
    reg = conn = None
    if kind.startswith("floor"):
        conn = _connect(target)
    else:
        from idproof.registry import Registry

        reg = Registry(target.url)
        ops = _principals(job)
    try:
        if start is not None:
            start.wait()
        t0 = time.monotonic()
        if kind == "bind":
            from idproof.registry import RegistryError

            for k, (num, pid, o) in enumerate(items):
                try:
                    reg.bind(num, pid, ops[o])
                    codes["ok"] += 1
                except RegistryError as e:
                    codes[e.code] += 1
                if tick and k % every == 0:
                    tick(k)
        elif kind == "bind_many":
            from idproof.registry import Binding

            b = job["batch"]
            for k in range(0, len(items), b):
                part = items[k : k + b]  # a batch is one operator's (see _bind_items)
                for answer in reg.bind_many([(n, p) for n, p, _ in part], ops[part[0][2]]):
                    codes["ok" if isinstance(answer, Binding) else answer.code] += 1
                if tick:
                    tick(k + len(part))
        elif kind == "transfer":
            from idproof.registry import RegistryError

            for k, (num, cur, new, o) in enumerate(items):
                try:
                    reg.transfer(num, current_proofing_id=cur, new_proofing_id=new, operator=ops[o])
                    codes["ok"] += 1
                except RegistryError as e:
                    codes[e.code] += 1
                if tick and k % every == 0:
                    tick(k)
        elif kind == "my_numbers":
            warm = job.get("warmup", [])
            for h in warm:
                reg.my_numbers(h)
            t0 = time.monotonic()
            for k, h in enumerate(items):
                t = time.perf_counter()
                reg.my_numbers(h)
                lat.append(time.perf_counter() - t)
                if tick and k % every == 0:
                    tick(k)
            codes["ok"] = len(items)
        elif kind in ("floor_bind", "floor_batch"):
            b = job["batch"] if kind == "floor_batch" else 1
            for k in range(0, len(items), b):
                _floor_write(target.kind, conn, items[k : k + b], job["operator_ids"])
                if tick and (b > 1 or k % every == 0):
                    tick(k + b)
            codes["ok"] = len(items)
        elif kind == "floor_my_numbers":
            for h in job.get("warmup", []):
                _floor_read(target.kind, conn, h)
            t0 = time.monotonic()
            for k, h in enumerate(items):
                t = time.perf_counter()
                _floor_read(target.kind, conn, h)
                lat.append(time.perf_counter() - t)
                if tick and k % every == 0:
                    tick(k)
            codes["ok"] = len(items)
        else:
            raise ValueError(f"unknown phase kind {kind!r}")
        t1 = time.monotonic()
    finally:
        if reg is not None:
            reg.close()
        if conn is not None:
            conn.close()
    return {"t0": t0, "t1": t1, "codes": dict(codes), "latencies": lat}


_FLOOR_BIND_SQL = "INSERT INTO bindings (number, handle, operator_id, status, bound_at, proofing_id) VALUES ({m}, {m}, {m}, 'active', {m}, {m})"
_FLOOR_READ_SQL = "SELECT number, handle, operator_id, status, bound_at FROM bindings WHERE handle = {m} ORDER BY bound_at, number"


def _floor_write(kind: str, conn: Any, items: list, operator_ids: list[str]) -> None:
    """The raw-SQL floor's bind(s): identity + binding rows, one transaction, nothing checked, no audit row."""
    now = datetime.now(UTC)
    if kind == "postgresql":
        with conn.transaction(), conn.cursor() as cur:
            if len(items) == 1:
                num, pid, o, h = items[0]
                cur.execute("INSERT INTO identities (handle) VALUES (%s) ON CONFLICT DO NOTHING", (h,))
                cur.execute(_FLOOR_BIND_SQL.format(m="%s"), (num, h, operator_ids[o], now, pid))
            else:  # one statement per table, the rows as arrays: the same shape as Registry.bind_many's writes
                hs = [h for _, _, _, h in items]
                cur.execute("INSERT INTO identities (handle) SELECT unnest(%s::varchar[]) ON CONFLICT DO NOTHING", (sorted(set(hs)),))
                cur.execute(
                    "INSERT INTO bindings (number, handle, operator_id, status, bound_at, proofing_id) "
                    "SELECT unnest(%s::varchar[]), unnest(%s::varchar[]), unnest(%s::varchar[]), 'active', %s, unnest(%s::varchar[])",
                    ([n for n, _, _, _ in items], hs, [operator_ids[o] for _, _, o, _ in items], now, [p for _, p, _, _ in items]),
                )
    else:
        ts = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT INTO identities (handle) VALUES (?) ON CONFLICT DO NOTHING", [(h,) for _, _, _, h in items])
            conn.executemany(_FLOOR_BIND_SQL.format(m="?"), [(n, h, operator_ids[o], ts, p) for n, p, o, h in items])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _floor_read(kind: str, conn: Any, handle: str) -> list:
    if kind == "postgresql":
        with conn.transaction():
            return conn.execute(_FLOOR_READ_SQL.format(m="%s"), (handle,)).fetchall()
    return conn.execute(_FLOOR_READ_SQL.format(m="?"), (handle,)).fetchall()


def _client_main(job: dict, start: Any, results: Any) -> None:
    """A spawned client process: its share of the phase, the result (or the error) on the queue."""
    try:
        results.put(_work(job, start))
    except BaseException as e:  # noqa: BLE001 - the parent reports it
        results.put({"error": f"{type(e).__name__}: {e}"})
        with contextlib.suppress(Exception):
            start.abort()  # release the others from the barrier


def run_phase(job: dict, clients: int, tick: Callable[[int], None] | None = None) -> dict:
    """One timed phase: ``job["items"]`` split over ``clients`` (1: in this process; more: spawned processes,
    each with its own connection, started together at a barrier). Throughput = ops / (last end - first start)."""
    items = job["items"]
    cpu0 = _cpu_snapshot()
    if clients <= 1:
        results = [_work(job, None, tick)]
        if tick:
            tick(len(items))
    else:
        ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited connections or threads
        start, queue = ctx.Barrier(clients), ctx.Queue()
        b = job.get("batch") or 1
        shares = _split(items, clients, b)
        procs = [ctx.Process(target=_client_main, args=(job | {"items": share}, start, queue), daemon=True) for share in shares]
        for p in procs:
            p.start()
        results = [queue.get(timeout=1800) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise RuntimeError(f"a bench client failed: {errors[0]}")
        if tick:
            tick(len(items))
    seconds = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    cpu1 = _cpu_snapshot()
    codes: Counter[str] = Counter()
    for r in results:
        codes.update(r["codes"])
    lat = [x for r in results for x in r["latencies"]]
    busy = None if cpu0 is None or cpu1 is None or cpu1[2] <= cpu0[2] else round((cpu1[0] - cpu0[0]) / (cpu1[2] - cpu0[2]), 2)
    return {
        "ops": len(items), "seconds": seconds, "per_s": len(items) / seconds if seconds > 0 else None,
        "codes": dict(codes), "latencies": lat, "machine_busy_cores": busy, "other_busy_cores": _other_cores(cpu0, cpu1),
    }  # fmt: skip


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(CPU seconds busy on the whole machine, CPU seconds of this bench and of the local PostgreSQL server,
    monotonic time). Ours: this process and its reaped children (the spawned clients); the server: every
    process named ``postgres``, with its reaped children (a closed connection's backend)."""
    try:
        tck = os.sysconf("SC_CLK_TCK")
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
        machine = (user + nice + system + irq + softirq) / tck
        ours = 0
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            if d.name == str(os.getpid()) or comm == "postgres":
                ours += sum(int(x) for x in rest[11:15])  # utime, stime, cutime, cstime
        return machine, ours / tck, time.monotonic()
    except (OSError, ValueError):  # pragma: no cover - not Linux
        return None


def _other_cores(a: tuple | None, b: tuple | None) -> float | None:
    """Cores that other processes (not this bench, not the local database server) kept busy between two snapshots."""
    if a is None or b is None or b[2] <= a[2]:
        return None
    return round(max(0.0, (b[0] - a[0]) - (b[1] - a[1])) / (b[2] - a[2]), 2)


def _split(items: list, k: int, batch: int) -> list[list]:
    """k shares of whole batches, round robin (so every client gets every operator's batches)."""
    batches = [items[i : i + batch] for i in range(0, len(items), batch)]
    return [[x for b in batches[j::k] for x in b] for j in range(k) if batches[j::k]]


# --- the bench ----------------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 3)


def latency_figures(lat: Sequence[float]) -> dict[str, Any]:
    return {
        "my_numbers_calls": len(lat),
        "my_numbers_p50_ms": _ms(_pct(lat, 50)),
        "my_numbers_p95_ms": _ms(_pct(lat, 95)),
        "my_numbers_p99_ms": _ms(_pct(lat, 99)),
        "my_numbers_mean_ms": _ms(sum(lat) / len(lat)) if lat else None,
        "my_numbers_max_ms": _ms(max(lat)) if lat else None,
    }


def machine_info() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        pass
    return {
        "cpus": os.cpu_count(), "cpus_usable": usable, "cpu_model": model, "memory_gib": mem,
        "platform": platform.platform(), "python": platform.python_version(),
        "loadavg_at_start": _loadavg(),
    }  # fmt: skip


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def database_info(target: Target) -> dict[str, Any]:
    conn = _connect(target)
    try:
        if target.kind == "postgresql":
            names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_connections")
            return {"kind": "postgresql", "url": target.shown} | {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}
        return {
            "kind": "sqlite", "url": target.shown, "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "synchronous": {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(conn.execute("PRAGMA synchronous").fetchone()[0]),
        }  # fmt: skip
    finally:
        conn.close()


def _db_bytes(target: Target) -> int | None:
    if target.kind == "sqlite":
        p = Path(target.dsn)
        return sum(f.stat().st_size for f in p.parent.glob(p.name + "*"))
    conn = _connect(target)
    try:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    finally:
        conn.close()


def _count(target: Target, table: str) -> int:
    conn = _connect(target)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def run_size(
    target: Target, size: int, *, ops: int, clients: int, batch: int, batch_ops: int, seed: int, bar: Bars
) -> dict[str, Any]:
    """Load ``size`` numbers into the (fresh) target, then time every figure; ours and the floor's."""
    from idproof.registry import Registry

    rng = random.Random(seed + 1)
    with Registry(target.url) as reg:  # migrates the fresh database
        principals = [reg.add_operator(f"bench operator {i + 1}")[0] for i in range(OPERATORS)]
    op_ids = [p.operator_id for p in principals]
    job_base = {"target": vars(target), "operators": [vars(p) for p in principals], "operator_ids": op_ids}

    t = time.monotonic()
    pop = bulk_load(target, op_ids, size, seed=seed, progress=bar.task(f"setup: bulk load {size:,} numbers", size))
    load_s = time.monotonic() - t
    setup = {
        "load_s": round(load_s, 2),
        "numbers_per_s": round(size / load_s) if load_s > 0 else None,
        "identities": len(pop.handles),
        "rows": {"bindings": size, "identities": len(pop.handles), "proofing_decisions": len(pop.handles), "audit_log": size},
        "db_bytes_after_load": _db_bytes(target),
        "how": "PostgreSQL COPY" if target.kind == "postgresql" else "sqlite3 executemany",
    }

    next_number = [size]  # number indexes past the loaded ones are free

    def fresh_numbers(n: int) -> list[str]:
        first = next_number[0]
        next_number[0] += n
        return [number(i) for i in range(first, first + n)]

    def bind_items(n: int, b: int) -> list[tuple[str, str, int]]:
        """n new numbers for n new identities, each with a fresh proofing; the operator changes per batch of b."""
        handles = [new_handle(rng) for _ in range(n)]
        opi = [(k // b) % OPERATORS for k in range(n)]
        pids = write_fresh_proofings(target, [(h, op_ids[o]) for h, o in zip(handles, opi)])
        return list(zip(fresh_numbers(n), pids, opi))

    def floor_items(n: int) -> list[tuple[str, str, int, str]]:
        handles = [new_handle(rng) for _ in range(n)]
        pids = write_fresh_proofings(target, [(h, None) for h in handles])  # the binding row's foreign key
        return [(num, pid, k % OPERATORS, h) for k, (num, pid, h) in enumerate(zip(fresh_numbers(n), pids, handles))]

    unused = list(range(size))
    rng.shuffle(unused)

    def transfer_items(n: int) -> list[tuple[str, str, str, int]]:
        """n loaded numbers, each to a new identity: fresh proofings of the holder and of the new one."""
        picked = [unused.pop() for _ in range(min(n, len(unused)))]
        want: list[tuple[str, str | None]] = []
        for i in picked:
            o = op_ids[pop.operator[i]]
            want += [(pop.handles[pop.holder[i]], o), (new_handle(rng), o)]
        pids = write_fresh_proofings(target, want)
        return [(number(i), pids[2 * k], pids[2 * k + 1], pop.operator[i]) for k, i in enumerate(picked)]

    ours: dict[str, Any] = {}
    floor: dict[str, Any] = {}
    refused: dict[str, dict] = {}
    raw: dict[str, dict] = {}

    def phase(label: str, who: str, job: dict, k: int) -> dict:
        res = run_phase(job_base | job, k, bar.task(f"{label} ({'floor' if who == FLOOR else 'idproof'})", len(job["items"])))
        raw[f"{who}:{label}"] = {x: res[x] for x in ("ops", "seconds", "codes", "machine_busy_cores", "other_busy_cores")}
        bad = {c: n for c, n in res["codes"].items() if c != "ok"}
        if bad:
            refused[f"{who}:{label}"] = bad
        return res

    # "my numbers": random loaded identities, after a warm-up on others
    lookups = [pop.handles[rng.randrange(len(pop.handles))] for _ in range(ops)]
    warm = [pop.handles[rng.randrange(len(pop.handles))] for _ in range(min(WARMUP, ops))]
    ours |= latency_figures(phase("my_numbers", OURS, {"kind": "my_numbers", "items": lookups, "warmup": warm}, 1)["latencies"])
    floor |= latency_figures(phase("my_numbers", FLOOR, {"kind": "floor_my_numbers", "items": lookups, "warmup": warm}, 1)["latencies"])

    def per_s(res: dict) -> float | None:
        return None if res["per_s"] is None else round(res["per_s"], 1)

    for k, suffix in ((1, ""), (clients, "_clients")):
        if k == 1 or clients > 1:
            ours["binds_per_s" + suffix] = per_s(phase(f"bind x{k}", OURS, {"kind": "bind", "items": bind_items(ops, 1)}, k))
            floor["binds_per_s" + suffix] = per_s(phase(f"bind x{k}", FLOOR, {"kind": "floor_bind", "items": floor_items(ops)}, k))
    for k, suffix in ((1, ""), (clients, "_clients")):
        if k == 1 or clients > 1:
            job = {"kind": "bind_many", "items": bind_items(batch_ops, batch), "batch": batch}
            ours["bind_many_per_s" + suffix] = per_s(phase(f"bind_many/{batch} x{k}", OURS, job, k))
            job = {"kind": "floor_batch", "items": floor_items(batch_ops), "batch": batch}
            floor["bind_many_per_s" + suffix] = per_s(phase(f"batch/{batch} x{k}", FLOOR, job, k))
    for k, suffix in ((1, ""), (clients, "_clients")):
        if k == 1 or clients > 1:
            n = min(ops, len(unused) // (2 if k == 1 else 1))
            ours["transfers_per_s" + suffix] = per_s(phase(f"transfer x{k}", OURS, {"kind": "transfer", "items": transfer_items(n)}, k))

    return {
        OURS: ours,
        FLOOR: floor,
        "setup": setup,
        "refused": refused,
        "phases": raw,
        "rows_at_end": {"bindings": _count(target, "bindings"), "audit_log": _count(target, "audit_log")},
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 3)


def size_ratios(ours: dict, floor: dict, clients: int) -> dict[str, Any]:
    return {
        "binds_vs_floor": _ratio(ours.get("binds_per_s"), floor.get("binds_per_s")),
        "binds_clients_vs_floor_clients": _ratio(ours.get("binds_per_s_clients"), floor.get("binds_per_s_clients")),
        "bind_many_vs_floor_batch": _ratio(ours.get("bind_many_per_s"), floor.get("bind_many_per_s")),
        "bind_many_clients_vs_floor_batch_clients": _ratio(ours.get("bind_many_per_s_clients"), floor.get("bind_many_per_s_clients")),
        "bind_many_speedup_vs_bind": _ratio(ours.get("bind_many_per_s"), ours.get("binds_per_s")),
        f"binds_speedup_{clients}_clients_vs_1": _ratio(ours.get("binds_per_s_clients"), ours.get("binds_per_s")),
        "my_numbers_p95_vs_floor": _ratio(ours.get("my_numbers_p95_ms"), floor.get("my_numbers_p95_ms")),
    }


def goals(kind: str, per_size: dict[int, dict], clients: int, batch: int) -> dict[str, Any]:
    """The issue's goals, checked on what was measured (the binds/s goal is set for PostgreSQL)."""
    out: dict[str, Any] = {}
    for size, r in per_size.items():
        o = r[OURS]
        modes = {
            "bind, 1 client": o.get("binds_per_s"),
            f"bind, {clients} clients": o.get("binds_per_s_clients"),
            f"bind_many/{batch}, 1 client": o.get("bind_many_per_s"),
            f"bind_many/{batch}, {clients} clients": o.get("bind_many_per_s_clients"),
        }
        modes = {m: v for m, v in modes.items() if v is not None}
        best = max(modes, key=lambda m: modes[m]) if modes else None
        per_bind = [v for m, v in modes.items() if m.startswith("bind,")]
        out[str(size)] = {
            "binds_per_s_goal": GOAL_BINDS_PER_S,
            "binds_goal_applies": kind == "postgresql",
            "best_binds_mode": best,
            "best_binds_per_s": modes.get(best) if best else None,
            "met_by_one_transaction_per_bind": bool(per_bind) and max(per_bind) >= GOAL_BINDS_PER_S,
            "met_by_bind_many": any(v >= GOAL_BINDS_PER_S for m, v in modes.items() if m.startswith("bind_many")),
            "my_numbers_p95_ms_goal": GOAL_MY_NUMBERS_P95_MS,
            "my_numbers_goal_applies": size >= GOAL_SIZE,
            "my_numbers_p95_ms": o.get("my_numbers_p95_ms"),
            "my_numbers_met": o.get("my_numbers_p95_ms") is not None and o["my_numbers_p95_ms"] < GOAL_MY_NUMBERS_P95_MS,
        }
    return out


def parse_sizes(text: str) -> list[int]:
    """'10000,1000000', also '10k,1M'."""
    out = []
    for part in str(text).split(","):
        p = part.strip().lower().replace("_", "")
        mult = {"k": 1_000, "m": 1_000_000}.get(p[-1:], 1)
        try:
            n = int(float(p[:-1]) * mult) if mult > 1 else int(p)
        except ValueError:
            raise IdproofError(f"Not a size: {part!r}.", fix="Pass --sizes as comma-separated counts, e.g. 10000,1000000 (or 10k,1M).") from None
        if n < 1:
            raise IdproofError(f"Sizes must be positive, not {n}.", fix="Pass --sizes such as 10000,1000000.")
        out.append(n)
    return out


def run(
    db: str = "sqlite",
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    ops: int = 2000,
    clients: int = 4,
    batch: int = 500,
    batch_ops: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the registry bench; returns the ``--json`` object. With ``progress``: a progress bar on stderr and
    the human table on stdout."""
    if ops < 10:
        raise IdproofError(f"--ops {ops} is too few to time.", fix="Pass --ops 10 or more (2000 by default).")
    if not 1 <= clients <= 64:
        raise IdproofError(f"--clients {clients} is out of range.", fix="Pass --clients between 1 and 64.")
    if not 1 <= batch <= 1000:
        raise IdproofError(f"--batch {batch} is out of range.", fix="Pass --batch between 1 and 1000 (bind_many's limit).")
    batch_ops = batch_ops or max(ops, 10 * batch)
    machine = machine_info()
    per_size: dict[int, dict] = {}
    database: dict[str, Any] = {}
    bar = Bars(progress)
    try:
        for i, size in enumerate(sizes):
            with fresh_database(db, tag=f"-{size}") as target:
                database = database_info(target)
                per_size[size] = run_size(target, size, ops=ops, clients=clients, batch=batch, batch_ops=batch_ops, seed=seed + i, bar=bar)
    finally:
        bar.close()
    machine["loadavg_at_end"] = _loadavg()
    kind = database.get("kind", "sqlite")
    notes = [
        (
            f"Machine: {machine['cpus']} CPU cores ({machine['cpu_model'] or 'unknown model'}); the benchmark's clients and the "
            f"database server share them. On a shared machine timings are noisy (load average at start {machine['loadavg_at_start']}, "
            f"at end {machine['loadavg_at_end']}): compare figures of one run, and repeat a run before trusting a difference of a few per cent."
        ),
        (
            "Setup (not timed): the loaded numbers, identities, proofings and their audit rows are written straight into the tables "
            "(PostgreSQL COPY / SQLite executemany); so are the fresh proofings each timed phase uses. Timed: only Registry calls "
            "(idproof) or the floor's SQL."
        ),
        (
            "binds/s: Registry.bind, one transaction per bind (proofing check, identity lock, number and cap checks, binding row, audit row); "
            f"'clients': {clients} processes, each its own connection, started together; bind_many: batches of {batch} binds of one "
            "operator in one transaction, the same rules and one audit row per bind."
        ),
        "transfers/s: Registry.transfer of loaded numbers to new identities (both holders freshly proven), one transaction each.",
        (
            "my numbers: Registry.my_numbers of random loaded identities (a read and its audit row, one transaction), one client, after "
            f"{WARMUP} warm-up calls."
        ),
        (
            "raw_sql_floor (peer): the bare driver, no SQLAlchemy, no rules: INSERT the identity row (ON CONFLICT DO NOTHING) and the "
            "binding row in one transaction (per bind, or per batch with array parameters), no proofing check, no lock, no cap or "
            "number check and no audit row; for my numbers the SELECT alone. The ratios show what the rules and the audit row cost."
        ),
        "Each phase adds rows: a size is the count at load; rows_at_end says how many there were after all phases.",
    ]
    if kind == "postgresql" and database.get("fsync") == "off":
        notes.append(
            "WARNING: this PostgreSQL server runs with fsync=off (scripts/pg.sh's throw-away cluster): commits do not wait for "
            "the disk. A durable server (fsync=on, synchronous_commit=on) pays a WAL flush per commit: fewer binds/s for one "
            "transaction per bind (batches and concurrent clients amortise it)."
        )
    if kind == "sqlite":
        notes.append("SQLite has one writer: concurrent clients queue for the write lock (busy timeout, retries), they add no throughput.")
    if kind == "postgresql":
        notes.append(f"The binds/s goal ({GOAL_BINDS_PER_S}/s) is set for PostgreSQL on a 2-core machine; 'goals' says which mode met it here.")
    if not any(s >= GOAL_SIZE for s in per_size):
        notes.append(f"The my-numbers goal (p95 < {GOAL_MY_NUMBERS_P95_MS:g} ms) is set at {GOAL_SIZE:,} numbers; no size here is that large.")
    goal = goals(kind, per_size, clients, batch)
    for size, g in goal.items():
        if not g["binds_goal_applies"]:
            continue
        o, f = per_size[int(size)][OURS], per_size[int(size)][FLOOR]
        per_bind = max(v for v in (o.get("binds_per_s"), o.get("binds_per_s_clients")) if v is not None)
        floor_per_bind = max(v for v in (f.get("binds_per_s"), f.get("binds_per_s_clients")) if v is not None)
        many = max(v for v in (o.get("bind_many_per_s"), o.get("bind_many_per_s_clients")) if v is not None)
        verdict = (
            "met by one transaction per bind" if g["met_by_one_transaction_per_bind"]
            else f"met only by bind_many ({many:,.0f} binds/s at best)" if g["met_by_bind_many"]
            else f"not met by any mode here (bind_many {many:,.0f} binds/s at best)"
        )  # fmt: skip
        notes.append(
            f"At {int(size):,} numbers the {GOAL_BINDS_PER_S:,} binds/s goal is {verdict}. One transaction per bind reached "
            f"{per_bind:,.0f}/s at best (1 or {clients} clients), and the raw floor of that shape, with no check and no audit row, "
            f"{floor_per_bind:,.0f}/s: the round trips and the commit of a transaction per bind, not the rules alone, bound it."
        )
    contended = {
        f"{s}:{k}": v["other_busy_cores"]
        for s, r in per_size.items()
        for k, v in r["phases"].items()
        if (v.get("other_busy_cores") or 0) > CONTENTION_CORES
    }
    if contended:
        notes.insert(0, f"WARNING: other processes on this machine kept cores busy during these phases (cores, by phase): {contended}; "
                        "their figures are lower than on an idle machine. Re-run when the machine is idle.")  # fmt: skip
    refusals = {f"{s}:{k}": v for s, r in per_size.items() for k, v in r["refused"].items()}
    if refusals:
        notes.insert(0, f"WARNING: some timed operations were refused (codes per phase): {refusals}")

    result = {
        "bench": "registry",
        "data": "synthetic: random 32-byte hex handles, 1-5 numbers each (mean 2.1), "
        f"{OPERATORS} operators, E.164 numbers spread over +447 0000000000-9999999999",
        "db": kind,
        "counts": {"sizes": list(per_size), "ops": ops, "batch_ops": batch_ops, "batch": batch, "clients": clients, "operators": OPERATORS},
        "machine": machine,
        "database": database,
        # the shape every idproof bench shares (../shared/DESIGN.md), keyed by size
        OURS: {str(s): r[OURS] for s, r in per_size.items()},
        "peers": {FLOOR: {str(s): r[FLOOR] for s, r in per_size.items()}},
        "ratios": {str(s): size_ratios(r[OURS], r[FLOOR], clients) for s, r in per_size.items()},
        "goals": goal,
        "setup": {str(s): r["setup"] | {"rows_at_end": r["rows_at_end"]} for s, r in per_size.items()},
        "phases": {str(s): r["phases"] for s, r in per_size.items()},
        "notes": notes,
    }
    if progress:
        print_human(result)
    return result


# --- human output -----------------------------------------------------------------------------------


def _f(x: Any, unit: str = "") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and unit == "ms":
        return f"{x:.2f} ms"
    return f"{x:,.0f}{unit}" if isinstance(x, (int, float)) else str(x)


def print_human(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    c, m, d = result["counts"], result["machine"], result["database"]
    k = c["clients"]
    db = f"PostgreSQL {d.get('server_version', '')} (fsync={d.get('fsync')})" if d.get("kind") == "postgresql" else f"SQLite {d.get('sqlite_version', '')} ({d.get('journal_mode')}, synchronous={d.get('synchronous')})"
    console.print(f"[bold]idproof bench registry[/bold] — {db}; {m['cpus']} cores ({m['cpu_model']}); "
                  f"{c['ops']} ops per figure ({c['batch_ops']} for batches of {c['batch']}), {k} concurrent clients")  # fmt: skip
    rows = (
        ("binds/s, 1 client", "binds_per_s", ""),
        (f"binds/s, {k} clients", "binds_per_s_clients", ""),
        (f"bind_many/{c['batch']} binds/s, 1 client", "bind_many_per_s", ""),
        (f"bind_many/{c['batch']} binds/s, {k} clients", "bind_many_per_s_clients", ""),
        ("transfers/s, 1 client", "transfers_per_s", ""),
        (f"transfers/s, {k} clients", "transfers_per_s_clients", ""),
        ("my numbers p50", "my_numbers_p50_ms", "ms"),
        ("my numbers p95", "my_numbers_p95_ms", "ms"),
        ("my numbers p99", "my_numbers_p99_ms", "ms"),
    )
    for size in result[OURS]:
        ours, floor, setup = result[OURS][size], result["peers"][FLOOR][size], result["setup"][size]
        t = Table(title=f"{int(size):,} bound numbers (loaded in {setup['load_s']:.0f} s, setup)", title_justify="left")
        for col in ("figure", "idproof (Registry API)", "raw SQL floor (no rules, no audit)", "idproof / floor"):
            t.add_column(col, justify="left" if col == "figure" else "right")
        for label, key, unit in rows:
            if key not in ours and key not in floor:
                continue
            a, b = ours.get(key), floor.get(key)
            t.add_row(label, _f(a, unit), _f(b, unit), "—" if a is None or b is None else f"{_ratio(a, b):.2f}x")
        console.print(t)
        g = result["goals"][size]
        if g["binds_goal_applies"]:
            console.print(
                f"  goal ≥ {g['binds_per_s_goal']:,} binds/s: one transaction per bind "
                + ("[green]met[/green]" if g["met_by_one_transaction_per_bind"] else "[red]not met[/red]")
                + "; bind_many " + ("[green]met[/green]" if g["met_by_bind_many"] else "[red]not met[/red]")
                + f" (best: {g['best_binds_mode']}, {_f(g['best_binds_per_s'])}/s)"
            )
        if g["my_numbers_goal_applies"]:
            console.print(
                f"  goal my numbers p95 < {g['my_numbers_p95_ms_goal']:g} ms: "
                + ("[green]met[/green]" if g["my_numbers_met"] else "[red]not met[/red]")
                + f" ({_f(g['my_numbers_p95_ms'], 'ms')})"
            )
    for n in result["notes"]:
        console.print(f"[yellow]- {n}[/yellow]" if n.startswith("WARNING") else f"[dim]- {n}[/dim]")
