"""The audit log: an append-only Merkle tree (RFC 9162) over SQLAlchemy Core tables.

Every proofing decision, registry change, lookup and template unseal is one leaf. A leaf carries a sequence
number, a time, an event type and (optionally) the person's keyed handle; anything else goes into a JSON
``payload`` that the leaf commits to only through its SHA-256, so payloads can be purged after their retention
period and every leaf still verifies. Never put personal data (names, numbers, document data, images,
templates) in a leaf; the handle is already the keyed HMAC of the identity.

Leaf (the bytes hashed as the RFC's entry, ``leaf_hash = SHA-256(0x00 || leaf)``) is the canonical JSON
(keys sorted, no spaces, UTF-8, no NaN/Infinity) of::

    {"event": <str>, "handle": <64 hex or null>, "payload_sha256": <64 hex or null>, "seq": <int>,
     "time": "<RFC 3339 UTC with microseconds>", "v": 1}

where ``payload_sha256`` is SHA-256 of the payload's canonical JSON (null when there was no payload). ``seq``
is the leaf's index in the tree (0-based), so a leaf cannot be moved without its hash changing.

Tables (on ``idproof.storage.models.Base.metadata``, so the schema check covers them; created by migration
0005, or by ``MerkleLog.create_tables`` for embedded use):

- ``audit_leaves(seq pk, leaf_hash, created_at, event, handle (indexed), payload (JSON, purgeable),
  payload_hash)``: one row per leaf; ``leaf_hash`` doubles as the tree's level-0 nodes.
- ``audit_nodes(level, idx, hash)``, pk ``(level, idx)``: every perfect subtree of level >= 1, written once when
  its last leaf is appended (``CompactRange``). With the leaf hashes they answer any root, inclusion proof or
  consistency proof for any size with O(log^2 n) stored hashes read in one query, never rehashing leaves.
- ``audit_tree_heads(size pk, root, timestamp, signature, key_id)``: the signed tree heads; the primary key
  makes the log unable to sign two roots for one size.

Appends are serialised: PostgreSQL takes a transaction-scoped advisory lock (``pg_advisory_xact_lock``),
SQLite its single write lock (a no-op UPDATE first, so a deferred transaction cannot read a stale size). Both
are released at the caller's commit or rollback: a rolled-back transaction leaves no leaf and no node.
PostgreSQL appends need READ COMMITTED (the default): a REPEATABLE READ snapshot taken before the lock could
miss the previous append and fail on the primary key (safely: nothing is written).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from idproof.audit.merkle import (
    LEAF_PREFIX,
    CompactRange,
    NodeId,
    consistency_ranges,
    fold,
    inclusion_ranges,
    leaf_hash,
    range_nodes,
    verify_consistency,
    verify_inclusion,
)
from idproof.audit.sth import (
    SignedTreeHead,
    TreeHeadSigner,
    format_time,
    parse_time,
    utc,
)
from idproof.storage.models import Base

LEAF_VERSION = 1
EXPORT_FORMAT = "idproof-audit-export"
EXPORT_VERSION = 1

# --- tables ------------------------------------------------------------------------------------------------

# The schema's one MetaData (idproof.storage.models imports this module at its bottom, so Base.metadata is the
# whole schema and the migrations are checked against these tables too).
metadata: MetaData = Base.metadata

# SQLite: INTEGER PRIMARY KEY is the rowid (no second index); PostgreSQL: BIGINT.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

audit_leaves = Table(
    "audit_leaves",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("event", String(64), nullable=False),
    Column("handle", String(64), nullable=True),
    Column("payload", JSON(none_as_null=True), nullable=True),
    Column("payload_hash", LargeBinary(32), nullable=True),
    Index("ix_audit_leaves_handle", "handle"),
)

audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,  # the primary key is the table (one B-tree, not two)
)

audit_tree_heads = Table(
    "audit_tree_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("key_id", String(64), nullable=False),
)

TABLES = (audit_leaves, audit_nodes, audit_tree_heads)

# --- leaves ------------------------------------------------------------------------------------------------

_EVENT = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_HANDLE = re.compile(r"[0-9a-f]{64}")  # hex HMAC-SHA256 (idproof.registry.handles)


# json.dumps with these options builds a new encoder on every call: one, made once, encodes the same bytes
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN/Infinity: one byte string per JSON value."""
    return _CANONICAL.encode(obj).encode()


def payload_hash(payload: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(payload)).digest()


def leaf_data(seq: int, time: datetime, event: str, handle: str | None, payload_sha256: bytes | None) -> bytes:
    """The leaf's bytes (the RFC's entry d; its hash is SHA-256(0x00 || d)). See the module docstring."""
    return canonical_json({
        "v": LEAF_VERSION,
        "seq": seq,
        "time": format_time(time),
        "event": event,
        "handle": handle,
        "payload_sha256": payload_sha256.hex() if payload_sha256 is not None else None,
    })


def check_event(event: str, handle: str | None, payload: dict[str, Any] | None) -> None:
    """Leaves carry an event type and a keyed handle, never personal data: refuse anything else up front."""
    if not isinstance(event, str) or not _EVENT.fullmatch(event):
        raise ValueError(f"audit event must match {_EVENT.pattern}: {event!r}")
    if handle is not None and (not isinstance(handle, str) or not _HANDLE.fullmatch(handle)):
        raise ValueError("audit handle must be a keyed handle (64 lowercase hex digits) or None")
    if payload is not None:
        if not isinstance(payload, dict):
            raise TypeError("audit payload must be a JSON object (dict) or None")
        canonical_json(payload)  # JSON-representable, string keys, finite numbers


@dataclass(frozen=True)
class AuditEvent:
    event: str
    handle: str | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One leaf as stored (and exported). ``payload`` is None once purged; ``payload_hash`` stays."""

    seq: int
    time: datetime
    event: str
    handle: str | None
    payload: dict[str, Any] | None
    payload_hash: bytes | None
    leaf_hash: bytes

    def leaf_data(self) -> bytes:
        return leaf_data(self.seq, self.time, self.event, self.handle, self.payload_hash)

    def computed_leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf_data())

    @property
    def purged(self) -> bool:
        return self.payload is None and self.payload_hash is not None

    def payload_ok(self) -> bool:
        """The payload, where still present, matches the hash the leaf commits to."""
        if self.payload is None:
            return True
        return self.payload_hash is not None and payload_hash(self.payload) == self.payload_hash

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": format_time(self.time),
            "event": self.event,
            "handle": self.handle,
            "payload": self.payload,
            "payload_sha256": self.payload_hash.hex() if self.payload_hash is not None else None,
            "leaf_hash": self.leaf_hash.hex(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AuditEntry:
        try:
            seq = obj["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError(f"bad seq {seq!r}")
            ph = obj.get("payload_sha256")
            payload = obj.get("payload")
            if payload is not None and not isinstance(payload, dict):
                raise ValueError("payload is not an object")
            lh = bytes.fromhex(obj["leaf_hash"])
            if len(lh) != 32 or (ph is not None and len(bytes.fromhex(ph)) != 32):
                raise ValueError("hashes must be 32 bytes")
            return cls(seq, parse_time(obj["time"]), str(obj["event"]),
                       None if obj.get("handle") is None else str(obj["handle"]),
                       payload, bytes.fromhex(ph) if ph is not None else None, lh)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not an audit leaf: {e}") from None

    @classmethod
    def _from_row(cls, r: Any) -> AuditEntry:
        return cls(r.seq, utc(r.created_at), r.event, r.handle, r.payload,
                   bytes(r.payload_hash) if r.payload_hash is not None else None, bytes(r.leaf_hash))


# --- proofs as values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    seq: int  # the leaf's index
    tree_size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]

    def verify(self, root: bytes) -> bool:
        return verify_inclusion(self.leaf_hash, self.seq, self.tree_size, self.path, root)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "tree_size": self.tree_size, "leaf_hash": self.leaf_hash.hex(),
                "path": [h.hex() for h in self.path]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> InclusionProof:
        return cls(int(obj["seq"]), int(obj["tree_size"]), bytes.fromhex(obj["leaf_hash"]),
                   tuple(bytes.fromhex(h) for h in obj["path"]))


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    path: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> bool:
        return verify_consistency(self.old_size, self.new_size, old_root, new_root, self.path)

    def to_json(self) -> dict[str, Any]:
        return {"old_size": self.old_size, "new_size": self.new_size, "path": [h.hex() for h in self.path]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ConsistencyProof:
        return cls(int(obj["old_size"]), int(obj["new_size"]), tuple(bytes.fromhex(h) for h in obj["path"]))


class AuditIntegrityError(RuntimeError):
    """The stored log does not agree with what was signed before (it changed under us)."""


# --- the nodes of a stored tree ----------------------------------------------------------------------------

_CHUNK = 400  # bound parameters per IN list


class DbNodes:
    """``NodeSource`` over the tables: level 0 from ``audit_leaves.leaf_hash``, the rest from ``audit_nodes``.

    The queries are plain SQL through the driver, one statement text per shape (how many ids at each level),
    so both the driver's statement cache and PostgreSQL's prepared statements reuse them: building the same
    query through SQLAlchemy's expression language cost most of an append (it reads the frontier, one node per
    level, every time)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"

    def get_nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        ids = set(ids)
        out: dict[NodeId, bytes] = {}
        leaves = sorted(i for lvl, i in ids if lvl == 0)
        inner = sorted(n for n in ids if n[0] > 0)
        m = self._mark
        for k in range(0, len(leaves), _CHUNK):
            chunk = leaves[k:k + _CHUNK]
            sql = f"SELECT seq, leaf_hash FROM audit_leaves WHERE seq IN ({', '.join([m] * len(chunk))})"
            for seq, h in self.conn.exec_driver_sql(sql, tuple(chunk)):
                out[(0, seq)] = bytes(h)
        for k in range(0, len(inner), _CHUNK):
            # (level = l AND idx IN (..)) OR ..: both databases search the primary key for each term, where
            # SQLite answers a (level, idx) IN (VALUES ..) row-value list with a full scan of the table
            by_level: dict[int, list[int]] = {}
            for level, idx in inner[k:k + _CHUNK]:
                by_level.setdefault(level, []).append(idx)
            terms, params = [], []
            for lvl, idxs in by_level.items():
                terms.append(f"(level = {m} AND idx IN ({', '.join([m] * len(idxs))}))")
                params += [lvl, *idxs]
            sql = f"SELECT level, idx, hash FROM audit_nodes WHERE {' OR '.join(terms)}"
            for level, idx, h in self.conn.exec_driver_sql(sql, tuple(params)):
                out[(level, idx)] = bytes(h)
        missing = ids - out.keys()
        if missing:
            raise AuditIntegrityError(f"stored tree is missing node(s) (level, index) {sorted(missing)[:5]}")
        return out


def _fold_ranges(ranges: Sequence[tuple[int, int]], nodes: dict[NodeId, bytes]) -> tuple[bytes, ...]:
    return tuple(fold([nodes[n] for n in range_nodes(a, b)]) for a, b in ranges)


# --- the log -----------------------------------------------------------------------------------------------

_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"idproof.audit.append").digest()[:8], "big", signed=True)


class ExportSummary(NamedTuple):
    leaves: int
    tree_heads: int


EventLike = AuditEvent | tuple[str, str | None, dict[str, Any] | None] | tuple[str, str | None]


class MerkleLog:
    """The audit log over an engine's tables. ``signer`` may be None for a read-only or append-only use (no
    tree heads signed through this object)."""

    def __init__(self, engine: Engine, signer: TreeHeadSigner | None = None, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.signer = signer
        self._clock = clock or (lambda: datetime.now(UTC))
        self._dialect = engine.dialect.name

    def create_tables(self) -> None:
        """Create the three tables where missing (tests, embedded use; production runs the migration, which
        also adds the append-only triggers)."""
        metadata.create_all(self.engine, tables=list(TABLES))

    # --- writing -----------------------------------------------------------------------------------------

    def append(self, conn: Connection, event: str, handle: str | None = None,
               payload: dict[str, Any] | None = None) -> int:
        """Append one leaf inside the caller's transaction (``conn``); returns its seq. It commits or rolls
        back with the caller's change."""
        return self.append_many(conn, [AuditEvent(event, handle, payload)])[0]

    def append_many(self, conn: Connection, events: Iterable[EventLike]) -> list[int]:
        """Append leaves in order inside the caller's transaction, with one read of the frontier and one bulk
        insert per table; returns their seqs. All share one timestamp. Nothing is written (and the lock is
        not taken) when any event is invalid."""
        prepared = []
        for e in events:
            e = e if isinstance(e, AuditEvent) else AuditEvent(*e)
            check_event(e.event, e.handle, None)
            if e.payload is None:
                prepared.append((e.event, e.handle, None, None))
                continue
            if not isinstance(e.payload, dict):
                raise TypeError("audit payload must be a JSON object (dict) or None")
            try:
                pj = canonical_json(e.payload).decode()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"audit payload is not plain JSON: {exc}") from None
            prepared.append((e.event, e.handle, pj, hashlib.sha256(pj.encode()).digest()))
        if not prepared:
            return []
        self._lock(conn)
        size = self._size(conn)
        cr = CompactRange(size, self._frontier(conn, size))
        now = utc(self._clock())
        when = format_time(now)
        nodes: list[tuple[int, int, bytes]] = []
        keep = lambda level, idx, h: nodes.append((level, idx, h))
        leaves: list[tuple] = []
        sha256 = hashlib.sha256
        for seq, (event, handle, pj, ph) in enumerate(prepared, start=size):
            # leaf_data() spelled out: the same canonical JSON (keys sorted; event and handle are checked against
            # patterns without characters JSON would escape), at a fraction of json.dumps's cost
            hx = "null" if handle is None else f'"{handle}"'
            px = "null" if ph is None else f'"{ph.hex()}"'
            data = f'{{"event":"{event}","handle":{hx},"payload_sha256":{px},"seq":{seq},"time":"{when}","v":{LEAF_VERSION}}}'
            lh = sha256(LEAF_PREFIX + data.encode()).digest()
            cr.append(lh, keep)
            leaves.append((seq, lh, event, handle, pj, ph))
        self._insert_rows(conn, now, leaves, nodes)
        return list(range(size, size + len(prepared)))

    def _insert_rows(self, conn: Connection, now: datetime, leaves: list[tuple], nodes: list[tuple]) -> None:
        """One bulk insert per table through the driver (SQLite: executemany; PostgreSQL: one INSERT .. SELECT
        unnest of binary arrays): per-row SQLAlchemy type processing would be most of an append's cost. The values are what the column types store (SQLite: SQLAlchemy's DateTime text, JSON
        text; PostgreSQL: timestamptz and json from psycopg), so Core reads them back as usual."""
        if self._dialect == "sqlite":
            at = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime storage format (UTC)
            conn.exec_driver_sql(
                "INSERT INTO audit_leaves (seq, leaf_hash, created_at, event, handle, payload, payload_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(seq, lh, at, ev, h, pj, ph) for seq, lh, ev, h, pj, ph in leaves])
            if nodes:
                conn.exec_driver_sql("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
        else:  # PostgreSQL: one INSERT .. SELECT unnest(arrays) per table, one array parameter a column
            seqs, lhs, evs, hs, pjs, phs = (list(col) for col in zip(*leaves))
            conn.exec_driver_sql(
                "INSERT INTO audit_leaves (seq, leaf_hash, created_at, event, handle, payload, payload_hash) "
                "SELECT s, lh, %s, e, h, p::json, ph FROM unnest(%b::bigint[], %b::bytea[], %b::text[], %b::text[], "
                "%b::text[], %b::bytea[]) AS t(s, lh, e, h, p, ph)",
                (now, seqs, lhs, evs, hs, pjs, phs))
            if nodes:
                lv, ix, hh = (list(col) for col in zip(*nodes))
                conn.exec_driver_sql(
                    "INSERT INTO audit_nodes (level, idx, hash) SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])",
                    (lv, ix, hh))

    def sign_tree_head(self, conn: Connection | None = None) -> SignedTreeHead:
        """Sign the tree as it is now (in ``conn``'s transaction, else its own) and store the head. The same
        size twice gives the stored head back. Before signing, the new tree is checked against the last signed
        head (a consistency proof from the stored nodes): a log that shrank or changed is never signed over."""
        if self.signer is None:
            raise RuntimeError("this MerkleLog has no TreeHeadSigner")
        if conn is None:
            with self.engine.begin() as c:
                return self._sign(c)
        return self._sign(conn)

    def _sign(self, conn: Connection) -> SignedTreeHead:
        assert self.signer is not None
        self._lock(conn)
        size = self._size(conn)
        root = CompactRange(size, self._frontier(conn, size)).root()
        last = self._latest_head(conn)
        if last is not None:
            if last.size > size:
                raise AuditIntegrityError(f"the log has {size} leaves but tree head {last.size} was signed: leaves were removed")
            if last.size == size:
                if last.root != root:
                    raise AuditIntegrityError(f"tree head {size} was signed with another root: the stored log changed")
                return last
            proof = self._consistency_path(conn, last.size, size)
            if not verify_consistency(last.size, size, last.root, root, proof):
                raise AuditIntegrityError(f"the stored tree of size {size} is not consistent with signed tree head {last.size}")
        sth = self.signer.sign(size, root, self._clock())
        conn.execute(insert(audit_tree_heads).values(size=sth.size, root=sth.root, timestamp=sth.timestamp,
                                                     signature=sth.signature, key_id=sth.key_id))
        return sth

    def purge_payloads(self, before: datetime) -> int:
        """Drop the payload of every leaf older than ``before`` (SQL NULL); the leaf keeps ``payload_hash`` and
        so its hash. Returns how many payloads went."""
        with self.engine.begin() as conn:
            res = conn.execute(update(audit_leaves)
                               .where(audit_leaves.c.created_at < utc(before), audit_leaves.c.payload.is_not(None))
                               .values(payload=null()))
            return res.rowcount

    # --- reading -----------------------------------------------------------------------------------------

    def size(self, conn: Connection | None = None) -> int:
        if conn is not None:
            return self._size(conn)
        with self.engine.connect() as c:
            return self._size(c)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default), from the stored perfect subtrees."""
        with self.engine.connect() as conn:
            n = self._size(conn) if size is None else self._check_size(conn, size)
            return CompactRange(n, self._frontier(conn, n)).root()

    def entry(self, seq: int) -> AuditEntry | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(audit_leaves).where(audit_leaves.c.seq == seq)).first()
        return AuditEntry._from_row(r) if r is not None else None

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[AuditEntry]:
        """Leaves in seq order (streamed)."""
        q = select(audit_leaves).where(audit_leaves.c.seq >= start).order_by(audit_leaves.c.seq)
        if stop is not None:
            q = q.where(audit_leaves.c.seq < stop)
        with self.engine.connect() as conn:
            for r in conn.execution_options(yield_per=5000).execute(q):
                yield AuditEntry._from_row(r)

    def tree_heads(self) -> list[SignedTreeHead]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(audit_tree_heads).order_by(audit_tree_heads.c.size)).all()
        return [self._head(r) for r in rows]

    def tree_head(self, size: int) -> SignedTreeHead | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(audit_tree_heads).where(audit_tree_heads.c.size == size)).first()
        return self._head(r) if r is not None else None

    def latest_tree_head(self) -> SignedTreeHead | None:
        with self.engine.connect() as conn:
            return self._latest_head(conn)

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """The proof that leaf ``seq`` is in the tree of ``tree_size`` leaves (default: the latest signed head)."""
        with self.engine.connect() as conn:
            n = self._proof_size(conn, tree_size)
            if not 0 <= seq < n:
                raise ValueError(f"leaf {seq} is not in the tree of size {n}")
            ranges = inclusion_ranges(seq, n)
            nodes = DbNodes(conn).get_nodes({(0, seq)} | {nid for a, b in ranges for nid in range_nodes(a, b)})
            return InclusionProof(seq, n, nodes[(0, seq)], _fold_ranges(ranges, nodes))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """The proof that the tree of ``new_size`` leaves (default: the latest signed head) extends the tree of
        ``old_size`` leaves."""
        with self.engine.connect() as conn:
            n = self._proof_size(conn, new_size)
            if not 0 <= old_size <= n:
                raise ValueError(f"no consistency proof from size {old_size} to {n}")
            return ConsistencyProof(old_size, n, self._consistency_path(conn, old_size, n))

    def entries_for_handle(self, handle: str, tree_size: int | None = None) -> list[tuple[AuditEntry, InclusionProof]]:
        """Every leaf about ``handle`` in the tree of ``tree_size`` leaves (default: the latest signed head),
        each with its inclusion proof in that tree. Only that handle's leaves: the caller has authenticated the
        person first (the handle comes from their proofing)."""
        if not _HANDLE.fullmatch(handle or ""):
            raise ValueError("not a keyed handle")
        with self.engine.connect() as conn:
            n = self._proof_size(conn, tree_size)
            rows = conn.execute(select(audit_leaves)
                                .where(audit_leaves.c.handle == handle, audit_leaves.c.seq < n)
                                .order_by(audit_leaves.c.seq)).all()
            entries = [AuditEntry._from_row(r) for r in rows]
            plans = [inclusion_ranges(e.seq, n) for e in entries]
            nodes = DbNodes(conn).get_nodes({nid for plan in plans for a, b in plan for nid in range_nodes(a, b)})
        return [(e, InclusionProof(e.seq, n, e.leaf_hash, _fold_ranges(plan, nodes))) for e, plan in zip(entries, plans)]

    # --- export ------------------------------------------------------------------------------------------

    def export_records(self) -> Iterator[dict[str, Any]]:
        """The export, record by record: a header, every signed tree head (by size), every leaf (by seq)."""
        heads = self.tree_heads()
        yield {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": format_time(self._clock()),
               "hash": "RFC 9162 SHA-256", "leaf_version": LEAF_VERSION}
        for h in heads:
            yield {"tree_head": h.to_json()}
        for e in self.entries():
            yield {"leaf": e.to_json()}

    def export(self, path: str | Path) -> ExportSummary:
        """Write the log as JSON lines (``export_records``) for ``idproof audit verify``."""
        leaves = heads = 0
        with open(path, "w", encoding="utf-8") as f:
            for rec in self.export_records():
                if "leaf" in rec:
                    leaves += 1
                elif "tree_head" in rec:
                    heads += 1
                f.write(json.dumps(rec, separators=(",", ":"), ensure_ascii=False) + "\n")
        return ExportSummary(leaves, heads)

    # --- internals ---------------------------------------------------------------------------------------

    def _lock(self, conn: Connection) -> None:
        if self._dialect == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        elif self._dialect == "sqlite":
            # any UPDATE takes SQLite's one write lock (waiting busy_timeout), even one that changes no row
            conn.exec_driver_sql("UPDATE audit_tree_heads SET size = size WHERE 0")
        else:
            raise NotImplementedError(f"audit log on {self._dialect}: only PostgreSQL and SQLite")

    @staticmethod
    def _size(conn: Connection) -> int:
        last = conn.exec_driver_sql("SELECT max(seq) FROM audit_leaves").scalar()  # the primary key's last entry
        return 0 if last is None else last + 1

    def _check_size(self, conn: Connection, size: int) -> int:
        n = self._size(conn)
        if not 0 <= size <= n:
            raise ValueError(f"the log has {n} leaves, not {size}")
        return size

    def _proof_size(self, conn: Connection, tree_size: int | None) -> int:
        if tree_size is None:
            head = self._latest_head(conn)
            if head is None:
                raise LookupError("no signed tree head yet: sign one first (proofs are against signed heads)")
            return head.size
        return self._check_size(conn, tree_size)

    @staticmethod
    def _frontier(conn: Connection, size: int) -> list[bytes]:
        ids = CompactRange.node_ids(size)
        got = DbNodes(conn).get_nodes(ids)
        return [got[i] for i in ids]

    @staticmethod
    def _consistency_path(conn: Connection, old: int, new: int) -> tuple[bytes, ...]:
        ranges = consistency_ranges(old, new)
        nodes = DbNodes(conn).get_nodes({nid for a, b in ranges for nid in range_nodes(a, b)})
        return _fold_ranges(ranges, nodes)

    def _latest_head(self, conn: Connection) -> SignedTreeHead | None:
        r = conn.execute(select(audit_tree_heads).order_by(audit_tree_heads.c.size.desc()).limit(1)).first()
        return self._head(r) if r is not None else None

    @staticmethod
    def _head(r: Any) -> SignedTreeHead:
        return SignedTreeHead(r.size, bytes(r.root), utc(r.timestamp), bytes(r.signature), r.key_id)


def proof_size_bytes(size: int) -> dict[str, int]:
    """Largest inclusion / consistency proof in a tree of ``size`` leaves, in hashes and bytes (the bound
    ceil(log2 n) hashes for inclusion, and at most ceil(log2 n) + 1 for consistency, times 32 bytes)."""
    d = math.ceil(math.log2(size)) if size > 1 else 0
    return {"inclusion_hashes": d, "inclusion_bytes": 32 * d, "consistency_hashes_max": d + 1,
            "consistency_bytes_max": 32 * (d + 1)}
