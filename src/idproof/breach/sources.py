"""What the breach drill reads: a full copy of the database, as an attacker who stole it would hold it.

Three ways in, each giving a :class:`Snapshot` (every table, every row, every value, plus the raw bytes
of the stolen files where there are any):

- an SQLite file (``path`` or ``sqlite:///path``): the tables through SQLite, read from a private copy of
  the file with its ``-wal`` / ``-shm`` / ``-journal`` (the original is never opened for writing), and
  the raw bytes of those files, free pages and unreplayed WAL frames included;
- a plain SQL dump from ``pg_dump`` (``--pg-dump FILE``): ``COPY ... FROM stdin`` blocks and ``INSERT``
  statements parsed as text, no server needed, and the dump's raw bytes;
- a live PostgreSQL database (``postgresql://...``): every base table of every user schema.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from idproof.errors import IdproofError

__all__ = ["Cell", "RawFile", "Snapshot", "SourceError", "Table", "from_pg_dump", "from_postgres", "from_sqlite", "load_snapshot"]


class SourceError(IdproofError):
    """The database copy cannot be read (missing file, not SQLite, not a dump, server unreachable)."""

    code = "breach_source_unreadable"


@dataclass
class Table:
    name: str
    columns: list[str]
    types: list[str]
    key: list[int]  # indexes of the columns that name a row (primary key); empty: ``refs`` says how
    rows: list[tuple] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)  # one row reference per row ("rowid=12", "line 4031")


@dataclass(frozen=True)
class Cell:
    table: str
    column: str
    row: str
    value: Any

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column} [{self.row}]"


@dataclass(frozen=True)
class RawFile:
    name: str
    data: bytes = field(repr=False)


@dataclass
class Snapshot:
    kind: Literal["sqlite", "pg_dump", "postgresql"]
    source: str  # for the report: which file or database (no password)
    tables: dict[str, Table]
    raw: list[RawFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def cells(self) -> Iterator[Cell]:
        for t in self.tables.values():
            for row, ref in zip(t.rows, t.refs, strict=True):
                for col, value in zip(t.columns, row, strict=False):
                    yield Cell(t.name, col, ref, value)

    @property
    def row_count(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())


def _ref(table: Table, row: tuple, fallback: str) -> str:
    if table.key:
        return ", ".join(f"{table.columns[i]}={_short(row[i])}" for i in table.key)
    return fallback


def _short(v: Any) -> str:
    s = v.hex() if isinstance(v, bytes | bytearray | memoryview) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


# --- SQLite ----------------------------------------------------------------------------------------------


def from_sqlite(path: str | Path) -> Snapshot:
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"No SQLite file at {p}.", fix="Pass the stolen database file (or sqlite:///PATH); its -wal/-shm files are read from beside it.")
    raw = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = Path(str(p) + suffix)
        if f.is_file():
            raw.append(RawFile(f.name, f.read_bytes()))
    if not raw[0].data.startswith(b"SQLite format 3\x00"):
        raise SourceError(f"{p.name} is not an SQLite database file.", fix="Pass the database file itself, or use --pg-dump for a PostgreSQL dump.")
    tables: dict[str, Table] = {}
    with tempfile.TemporaryDirectory(prefix="idproof-breach-") as tmp:
        # a private copy: SQLite replays the WAL into it; the stolen files stay exactly as they were
        copy = Path(tmp) / "copy.sqlite3"
        for suffix in ("", "-wal", "-shm", "-journal"):
            if Path(str(p) + suffix).is_file():
                shutil.copyfile(str(p) + suffix, str(copy) + suffix)
        try:
            conn = sqlite3.connect(copy)
            try:
                names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
                for name in names:
                    info = conn.execute(f'PRAGMA table_info("{_sq(name)}")').fetchall()
                    cols = [r[1] for r in info]
                    types = [r[2] or "" for r in info]
                    pk = [i for i, r in sorted(enumerate(info), key=lambda x: x[1][5]) if r[5]]
                    t = Table(name, cols, types, pk)
                    try:
                        cur = conn.execute(f'SELECT rowid, * FROM "{_sq(name)}"')
                        for r in cur:
                            row = tuple(r[1:])
                            t.rows.append(row)
                            t.refs.append(_ref(t, row, f"rowid={r[0]}"))
                    except sqlite3.OperationalError:  # WITHOUT ROWID: the primary key names the row
                        for n, r in enumerate(conn.execute(f'SELECT * FROM "{_sq(name)}"')):
                            t.rows.append(tuple(r))
                            t.refs.append(_ref(t, tuple(r), f"row {n + 1}"))
                    tables[name] = t
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            raise SourceError(f"SQLite cannot read {p.name} ({e}).", fix="Pass an intact copy of the database file.") from e
    return Snapshot("sqlite", f"SQLite file {p}", tables, raw)


def _sq(name: str) -> str:
    return name.replace('"', '""')


# --- pg_dump (plain SQL) -----------------------------------------------------------------------------------

_COPY = re.compile(r"^COPY\s+(\S+?)\s*\(([^)]*)\)\s+FROM\s+stdin;\s*$")
_CREATE = re.compile(r"CREATE TABLE\s+(\S+)\s*\((.*?)\n\);", re.DOTALL)
_COPY_ESC = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_COPY_CHARS = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_PKEY = re.compile(r"ALTER TABLE ONLY\s+(\S+)\s+ADD CONSTRAINT\s+\S+\s+PRIMARY KEY\s*\(([^)]*)\);")
_BYTEA_HEX = re.compile(r"\\x((?:[0-9a-fA-F]{2})*)")


def _ident(name: str) -> str:
    """public.bindings -> bindings; "odd name" -> odd name."""
    parts = [p.strip('"') for p in re.findall(r'"[^"]*"|[^.]+', name)]
    if len(parts) > 1 and parts[0] == "public":
        parts = parts[1:]
    return ".".join(parts)


def _copy_unescape(field_text: str) -> str | None:
    if field_text == "\\N":
        return None

    def sub(m: re.Match) -> str:
        if m.group(1) is not None:
            return chr(int(m.group(1), 8))
        if m.group(2) is not None:
            return chr(int(m.group(2), 16))
        return _COPY_CHARS.get(m.group(3), m.group(3))

    return _COPY_ESC.sub(sub, field_text) if "\\" in field_text else field_text


def _typed(value: str | None) -> Any:
    """A dump value as the attacker would read it: bytea in hex form becomes bytes, the rest stays text."""
    if value is not None and value.startswith("\\x"):
        m = _BYTEA_HEX.fullmatch(value)
        if m:
            return bytes.fromhex(m.group(1))
    return value


def from_pg_dump(path: str | Path) -> Snapshot:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise SourceError(f"Cannot read the dump {p} ({type(e).__name__}).", fix="Pass a plain SQL dump: pg_dump --format=plain DBNAME > FILE.") from e
    if data[:5] == b"PGDMP":
        raise SourceError(f"{p.name} is a custom-format dump.", fix=f"Convert it to plain SQL first: pg_restore -f {p.name}.sql {p.name}")
    text = data.decode("utf-8", errors="replace")
    types: dict[str, dict[str, str]] = {}
    for m in _CREATE.finditer(text):
        cols = {}
        for line in m.group(2).splitlines():
            parts = line.strip().rstrip(",").split(None, 1)
            if len(parts) == 2 and not parts[0].upper().startswith(("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN")):
                cols[parts[0].strip('"')] = parts[1]
        types[_ident(m.group(1))] = cols
    tables: dict[str, Table] = {}

    def table(name: str, cols: list[str]) -> Table:
        t = tables.get(name)
        if t is None:
            tt = types.get(name, {})
            t = tables[name] = Table(name, cols, [tt.get(c, "") for c in cols], [])
        return t

    lines = text.split("\n")
    i = 0
    inserts = 0
    while i < len(lines):
        m = _COPY.match(lines[i])
        if m:
            cols = [c.strip().strip('"') for c in m.group(2).split(",")]
            t = table(_ident(m.group(1)), cols)
            i += 1
            while i < len(lines) and lines[i] != "\\.":
                row = tuple(_typed(_copy_unescape(f)) for f in lines[i].split("\t"))
                t.rows.append(row)
                t.refs.append(f"dump line {i + 1}")
                i += 1
        i += 1
    for m in re.finditer(r"^INSERT INTO\s+(\S+?)\s*(?:\(([^)]*)\))?\s*VALUES\s*", text, re.MULTILINE):
        name = _ident(m.group(1))
        cols = [c.strip().strip('"') for c in m.group(2).split(",")] if m.group(2) else (list(types.get(name, {})) or None)
        line_no = text.count("\n", 0, m.start()) + 1
        try:
            rows = _parse_values(text, m.end())
        except ValueError:
            continue
        inserts += 1
        for r in rows:
            t = table(name, cols or [f"col{k + 1}" for k in range(len(r))])
            t.rows.append(tuple(_typed(v) if isinstance(v, str) else v for v in r))
            t.refs.append(f"dump line {line_no}")
    # rows are named by their primary key where the dump declares one (ALTER TABLE ... PRIMARY KEY (...))
    for m in _PKEY.finditer(text):
        t = tables.get(_ident(m.group(1)))
        if t is None:
            continue
        key = [t.columns.index(c.strip().strip('"')) for c in m.group(2).split(",") if c.strip().strip('"') in t.columns]
        if key:
            t.key = key
            t.refs = [f"{_ref(t, row, '')} ({ref})" for row, ref in zip(t.rows, t.refs, strict=True)]
    snap = Snapshot("pg_dump", f"pg_dump file {p}", tables, [RawFile(p.name, data)])
    if not tables:
        snap.notes.append("the dump holds no COPY block or INSERT statement (schema only?)")
    return snap


def _parse_values(text: str, pos: int) -> list[tuple]:
    """``(v, v, ...), (...);`` from ``pos``: strings ('' and E'' escapes), numbers, NULL, booleans, casts."""
    rows: list[tuple] = []
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n or text[pos] != "(":
            raise ValueError("expected (")
        pos += 1
        row: list[Any] = []
        while True:
            while pos < n and text[pos].isspace():
                pos += 1
            value, pos = _parse_value(text, pos)
            row.append(value)
            while pos < n and text[pos].isspace():
                pos += 1
            if text.startswith("::", pos):  # a cast: skip the type name
                pos += 2
                m = re.compile(r'[\w."\[\] ]+?(?=[,)])').match(text, pos)
                pos = m.end() if m else pos
            if pos < n and text[pos] == ",":
                pos += 1
                continue
            if pos < n and text[pos] == ")":
                pos += 1
                break
            raise ValueError("expected , or )")
        rows.append(tuple(row))
        while pos < n and text[pos].isspace():
            pos += 1
        if pos < n and text[pos] == ",":
            pos += 1
            continue
        return rows


def _parse_value(text: str, pos: int) -> tuple[Any, int]:
    if text.startswith(("E'", "e'"), pos):
        return _parse_string(text, pos + 1, backslash=True)
    if text.startswith("'", pos):
        return _parse_string(text, pos, backslash=False)
    m = re.compile(r"NULL|true|false|-?[0-9][0-9.eE+-]*|'[^']*'").match(text, pos)
    if not m:
        raise ValueError("unknown value")
    tok = m.group(0)
    value: Any = None if tok == "NULL" else tok == "true" if tok in ("true", "false") else tok
    return value, m.end()


def _parse_string(text: str, pos: int, *, backslash: bool) -> tuple[str, int]:
    out = []
    pos += 1
    n = len(text)
    while pos < n:
        c = text[pos]
        if c == "'":
            if text.startswith("''", pos):
                out.append("'")
                pos += 2
                continue
            return "".join(out), pos + 1
        if backslash and c == "\\" and pos + 1 < n:
            out.append(_COPY_CHARS.get(text[pos + 1], text[pos + 1]))
            pos += 2
            continue
        out.append(c)
        pos += 1
    raise ValueError("unterminated string")


# --- live PostgreSQL -----------------------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    """psycopg values as plain Python: memoryview -> bytes, Decimal/UUID -> str; JSON, lists and dates stay."""
    if isinstance(v, memoryview):
        return v.tobytes()
    if isinstance(v, Decimal | UUID):
        return str(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def redact_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def from_postgres(url: str) -> Snapshot:
    try:
        import psycopg
        from psycopg import sql
    except ImportError as e:  # pragma: no cover - psycopg is a dependency
        raise SourceError("psycopg is not installed.", fix="pip install 'psycopg[binary]'") from e
    dsn = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.Error as e:
        raise SourceError(f"Cannot connect to {redact_url(url)} ({type(e).__name__}).",
                          fix="Check the URL, or dump the database and pass --pg-dump FILE instead.") from e
    tables: dict[str, Table] = {}
    with conn:
        listed = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, name in listed:
            cols = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position", (schema, name)).fetchall()
            pk = [r[0] for r in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary", (f'"{schema}"."{name}"',)).fetchall()]
            names = [c[0] for c in cols]
            label = name if schema == "public" else f"{schema}.{name}"
            t = Table(label, names, [c[1] for c in cols], [names.index(k) for k in pk if k in names])
            q = sql.SQL("SELECT ctid::text, * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            for r in conn.execute(q):
                row = tuple(_plain(v) for v in r[1:])
                t.rows.append(row)
                t.refs.append(_ref(t, row, f"ctid={r[0]}"))
            tables[label] = t
        try:
            lo = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
        except psycopg.Error:  # a role without the privilege: said in the notes, not fatal
            lo = -1
    snap = Snapshot("postgresql", f"PostgreSQL {redact_url(url)} (live read)", tables)
    snap.notes.append("live read: tables only (no raw data files; dead tuples and WAL are not visible this way)")
    if lo > 0:
        snap.notes.append(f"{lo} large object(s) in pg_largeobject are not read; dump them with pg_dump --large-objects")
    elif lo < 0:
        snap.notes.append("pg_largeobject_metadata is not readable with this role: large objects were not checked")
    return snap


def load_snapshot(*, db: str | None = None, pg_dump: str | Path | None = None) -> Snapshot:
    """``db``: an SQLite path, ``sqlite:///path`` or ``postgresql://...``; ``pg_dump``: a plain SQL dump file."""
    if (db is None) == (pg_dump is None):
        raise SourceError("Give exactly one database copy.", fix="Use --db sqlite:///PATH (or PATH, or postgresql://...) or --pg-dump FILE.")
    if pg_dump is not None:
        return from_pg_dump(pg_dump)
    assert db is not None
    if db.startswith(("postgresql:", "postgres:", "postgresql+")):
        return from_postgres(db)
    if db.startswith("sqlite:"):
        path = re.sub(r"^sqlite(\+\w+)?:///", "", db)
        if path == db:
            raise SourceError(f"Cannot read the SQLite URL {db!r}.", fix="Use sqlite:///relative/path or sqlite:////absolute/path.")
        return from_sqlite(path)
    return from_sqlite(db)
