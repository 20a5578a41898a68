"""The breach drill: everything an attacker holding a full copy of the database would try.

The attacker has the database (an SQLite file with its WAL, a ``pg_dump``, or read access to a live
PostgreSQL), perhaps the service's configuration without the key files, and perhaps some facts about
some people (``Known``: document numbers, names, birth dates, face photos). The drill runs each attack as
a named check and counts the *usable* items it finds: anything that gives away an image, a face template,
an MRZ, a name, a birth date or a document number, or that turns a known document into its handle or a
known face into a stored row. The goal is zero. Phone numbers are stored by design (operators look them
up) and are reported as such, never as a failure.

    >>> report = run_drill(load_snapshot(db="sqlite:///idproof.sqlite3"), Known.load("known.json"))
    >>> report.usable, report.exit_code
    (0, 0)

What a usable finding reports is its place (``table.column [row]``, or ``file@offset`` in the raw
bytes, with ``→ base64@offset`` for what was decoded on the way) and what it is. Known values are never
printed: a finding names the victim's id and the kind of value, with the value masked.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import gzip
import hashlib
import hmac
import io
import itertools
import json
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from idproof.breach.sources import Cell, Snapshot
from idproof.errors import IdproofError

if TYPE_CHECKING:
    from idproof.api import Verifier

__all__ = [
    "CHECKS",
    "CheckResult",
    "ColumnReview",
    "DrillError",
    "DrillReport",
    "Finding",
    "Known",
    "Victim",
    "load_config",
    "run_drill",
]


class DrillError(IdproofError):
    """The drill's inputs are unusable (known-data file, config file)."""

    code = "breach_drill_input"


# --- what the attacker knows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Victim:
    """What the attacker already knows about one person. Every field is optional."""

    id: str
    surname: str = ""
    given_names: str = ""
    birth_date: date | None = None
    document_number: str = ""
    issuing_state: str = ""
    document_type: str = "P"
    faces: tuple[Path, ...] = ()  # photos of the person (not necessarily anything they uploaded)
    files: tuple[Path, ...] = ()  # exact files the attacker holds that may have been uploaded

    def __repr__(self) -> str:  # the values are personal data: keep them out of logs
        return f"Victim(id={self.id!r})"


@dataclass(frozen=True)
class Known:
    victims: tuple[Victim, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> Known:
        """``{"victims": [{"id", "surname", "given_names", "birth_date": "YYYY-MM-DD", "document_number",
        "issuing_state", "document_type", "faces": [paths], "files": [paths]}]}``; paths relative to the file."""
        p = Path(path)
        fix = 'Write {"victims": [{"id": "v1", "surname": "...", "birth_date": "1980-01-31", "document_number": "...", "issuing_state": "UTO", "faces": ["photo.jpg"]}]}.'
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DrillError(f"Cannot read the known-data file {p} ({type(e).__name__}).", fix=fix) from e
        return cls.from_dict(obj, base=p.parent)

    @classmethod
    def from_dict(cls, obj: Any, *, base: Path = Path(".")) -> Known:
        fix = 'The file is {"victims": [...]}, each victim an object with an "id".'
        if not isinstance(obj, dict) or not isinstance(obj.get("victims"), list):
            raise DrillError("The known-data file has no \"victims\" list.", fix=fix)
        out = []
        for n, v in enumerate(obj["victims"]):
            if not isinstance(v, dict):
                raise DrillError(f"victims[{n}] is not an object.", fix=fix)
            try:
                bd = v.get("birth_date")
                out.append(Victim(
                    id=str(v.get("id") or f"v{n + 1}"),
                    surname=str(v.get("surname") or ""),
                    given_names=str(v.get("given_names") or ""),
                    birth_date=date.fromisoformat(bd) if bd else None,
                    document_number=str(v.get("document_number") or ""),
                    issuing_state=str(v.get("issuing_state") or ""),
                    document_type=str(v.get("document_type") or "P"),
                    faces=tuple(base / f for f in _paths(v.get("faces", v.get("face")))),
                    files=tuple(base / f for f in _paths(v.get("files"))),
                ))
            except ValueError as e:
                raise DrillError(f"victims[{n}]: {e}.", fix="Dates are YYYY-MM-DD.") from e
        return cls(tuple(out))

    def to_dict(self) -> dict[str, Any]:
        return {"victims": [{
            "id": v.id, "surname": v.surname, "given_names": v.given_names,
            "birth_date": v.birth_date.isoformat() if v.birth_date else None,
            "document_number": v.document_number, "issuing_state": v.issuing_state, "document_type": v.document_type,
            "faces": [str(f) for f in v.faces], "files": [str(f) for f in v.files],
        } for v in self.victims]}


def _paths(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


def load_config(path: str | Path) -> dict[str, Any]:
    """The service settings the attacker found (JSON or TOML), without the key files."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DrillError(f"Cannot read the config file {p} ({type(e).__name__}).", fix="Pass the service's settings file (JSON or TOML).") from e
    try:
        obj = json.loads(raw)
    except ValueError:
        import tomllib

        try:
            obj = tomllib.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise DrillError(f"{p.name} is neither JSON nor TOML ({e}).", fix="Pass the settings as JSON or TOML.") from e
    if not isinstance(obj, dict):
        raise DrillError(f"{p.name} is not a settings object.", fix="The settings file is a JSON object or a TOML table.")
    return obj


# --- the report ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    check: str
    where: str  # table.column [row] (→ decoded@offset), or file@0xoffset
    what: str
    usable: bool = True


@dataclass
class CheckResult:
    key: str
    title: str
    tried: str = ""
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def usable(self) -> int:
        return sum(f.usable for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.key, "title": self.title, "tried": self.tried, "usable": self.usable,
                "notes": self.notes, "findings": [asdict(f) for f in self.findings]}


@dataclass(frozen=True)
class ColumnReview:
    table: str
    column: str
    type: str
    values: int  # non-null values
    classification: str
    flag: str = ""  # why it suggests personal data ("" none)
    usable: bool = False


@dataclass
class DrillReport:
    source: str
    kind: str
    tables: int
    rows: int
    raw_bytes: int
    checks: list[CheckResult]
    columns: list[ColumnReview]
    notes: list[str] = field(default_factory=list)
    scope: str = ""  # what every scanning check read

    @property
    def usable(self) -> int:
        return sum(c.usable for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 1 if self.usable else 0

    def check(self, key: str) -> CheckResult:
        return next(c for c in self.checks if c.key == key)

    def usable_findings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings if f.usable]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "tables": self.tables, "rows": self.rows,
                "raw_bytes": self.raw_bytes, "scope": self.scope, "usable": self.usable, "exit_code": self.exit_code,
                "checks": [c.to_dict() for c in self.checks], "columns": [asdict(c) for c in self.columns],
                "notes": self.notes}


CHECKS: dict[str, str] = {
    "images": "Images (magic bytes, raw/base64/hex/zlib)",
    "vectors": "Float vectors / templates",
    "mrz": "MRZ lines",
    "personal_data": "Names, birth dates, document numbers",
    "handles": "Handle recomputation without the key",
    "faces": "Face matching with known photos",
    "sealed": "Sealed templates without the recovery code",
    "evidence": "Evidence records (salted input hashes)",
    "schema": "Schema review",
    "phone_numbers": "Phone numbers (by design, not identity data)",
}

_MAX_FINDINGS = 500  # per check; the rest are counted
_MAX_DEPTH = 2  # decoding levels: base64 inside a JWS inside a column, and no further


# --- helpers ---------------------------------------------------------------------------------------------------


def _mask(s: str) -> str:
    s = str(s)
    if len(s) <= 2:
        return "*" * len(s)
    return s[0] + "*" * (len(s) - 2) + s[-1]


def _printable_fraction(b: bytes) -> float:
    if not b:
        return 0.0
    arr = np.frombuffer(b, dtype=np.uint8)
    return float(np.count_nonzero(((arr >= 0x20) & (arr < 0x7F)) | (arr == 9) | (arr == 10) | (arr == 13))) / arr.size


def _ascii_fold(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _words(s: str) -> list[str]:
    return [w for w in re.split(r"[^a-z]+", _ascii_fold(s).lower()) if w]


_MRZ_WEIGHTS = (7, 3, 1)


def _check_digit(s: str) -> int:
    total = 0
    for i, c in enumerate(s):
        v = int(c) if c.isdigit() else (ord(c) - 55 if "A" <= c <= "Z" else 0)
        total += v * _MRZ_WEIGHTS[i % 3]
    return total % 10


def _valid_yymmdd(s: str) -> bool:
    if not s.isdigit():
        return False
    mm, dd = int(s[2:4]), int(s[4:])
    return 1 <= mm <= 12 and 1 <= dd <= 31


# --- images ---------------------------------------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"RIFF", "WebP"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
)
_BMP_DIB = {12, 40, 52, 56, 64, 108, 124}
_MAX_IMAGE = 32 << 20


def _image_candidates(data: bytes) -> Iterable[tuple[int, str]]:
    for magic, kind in _MAGIC:
        start = 0
        while (i := data.find(magic, start)) >= 0:
            start = i + 1
            if kind == "WebP" and data[i + 8 : i + 12] != b"WEBP":
                continue
            if kind == "BMP" and (data[i + 6 : i + 10] != b"\0\0\0\0" or int.from_bytes(data[i + 14 : i + 18], "little") not in _BMP_DIB):
                continue
            if kind == "TIFF" and not 8 <= int.from_bytes(data[i + 4 : i + 8], "little" if magic[:1] == b"I" else "big") < 1 << 26:
                continue
            yield i, kind


def _open_image(data: bytes) -> tuple[str, tuple[int, int], np.ndarray | None] | None:
    """(format, size, RGB pixels or None) when PIL can parse the header; None when it cannot."""
    from PIL import Image, ImageFile

    try:
        with Image.open(io.BytesIO(data)) as im:
            size, fmt = im.size, im.format or "?"
            if size[0] < 8 or size[1] < 8 or size[0] * size[1] > 50_000_000:
                return None
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = True  # a partly overwritten image still shows a face
            try:
                rgb = np.asarray(im.convert("RGB"))
            except Exception:  # noqa: BLE001 - header parses, pixels do not: still an image
                rgb = None
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
            return fmt, size, rgb
    except Exception:  # noqa: BLE001 - anything PIL refuses is not an image
        return None


# --- float vectors ----------------------------------------------------------------------------------------------

_MIN_DIM = 64


def _true_runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    if mask.size < min_len:
        return []
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    keep = (ends - starts) >= min_len
    return list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))


def _close_gaps(mask: np.ndarray, gap: int = 2) -> np.ndarray:
    """Fill runs of at most ``gap`` False between Trues (an embedding has the odd value near zero)."""
    out = mask.copy()
    if mask.all():
        return out
    d = np.diff(np.concatenate(([0], (~mask).view(np.int8), [0])))
    s, e = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    short = (e - s <= gap) & (s > 0) & (e < mask.size)
    for a, b in zip(s[short].tolist(), e[short].tolist(), strict=True):
        out[a:b] = True
    return out


def _plausible_vector(v: np.ndarray) -> str | None:
    """Why these values look like an embedding (None: they do not)."""
    if v.size < _MIN_DIM or not np.all(np.isfinite(v)):
        return None
    a = np.abs(v)
    if float(a.max()) == 0.0 or float(a.max()) > 64:
        return None
    if np.count_nonzero(a > 0) < 0.9 * v.size:
        return None
    if np.unique(v).size < 0.5 * v.size:
        return None
    # face embeddings are signed, about half negative; bytes of text (high bit clear) read as floats are all
    # positive, and so are most runs of small integers and page pointers
    negative = np.count_nonzero(v < 0) / v.size
    if not 0.15 <= negative <= 0.85:
        return None
    med = float(np.median(a))
    if not 1e-3 <= med <= 10 or float(np.std(v)) < 1e-3:
        return None
    # an embedding's magnitudes sit within a few octaves (std of log2|v| about 1.5-1.9, max/median about 5 for
    # ArcFace and dlib); random bytes read as floats spread over a dozen octaves or more
    nz = a[a > 0]
    if float(np.std(np.log2(nz))) > 2.6 or float(nz.max()) > 30 * med:
        return None
    norm = float(np.linalg.norm(v))
    if 0.9 <= norm <= 1.1:
        return f"L2 norm {norm:.3f} (unit length, like a cosine embedding)"
    return f"L2 norm {norm:.3g}, median |v| {med:.3g}"


def _float_runs(data: bytes) -> list[tuple[int, str, int, str, np.ndarray]]:
    """(byte offset, dtype, count, why, values) for runs of ≥64 embedding-like floats at any alignment."""
    out = []
    for dtype, lo in (("<f4", 1e-6), ("<f2", 1e-4), ("<f8", 1e-6), (">f4", 1e-6)):
        size = np.dtype(dtype).itemsize
        if len(data) < _MIN_DIM * size:
            continue
        for off in range(size):
            n = (len(data) - off) // size
            if n < _MIN_DIM:
                continue
            with np.errstate(all="ignore"):
                a = np.frombuffer(data, dtype=dtype, count=n, offset=off).astype(np.float64)
                mag = np.abs(a)
                ok = np.isfinite(a) & (mag >= lo) & (mag <= 64)
            for s, e in _true_runs(_close_gaps(ok), _MIN_DIM):
                chunk = data[off + s * size : off + e * size]
                if _printable_fraction(chunk) >= 0.8:  # text, read by the text detectors
                    continue
                v = np.where(np.isfinite(a[s:e]), a[s:e], np.nan)
                why = _plausible_vector(v)
                if why:
                    out.append((off + s * size, dtype, e - s, why, v))
    # one finding per place: the same bytes seen as another width are the same item
    out.sort(key=lambda r: (r[0], -r[2]))
    kept: list[tuple[int, str, int, str, np.ndarray]] = []
    for r in out:
        end = r[0] + r[2] * np.dtype(r[1]).itemsize
        if kept and r[0] < kept[-1][0] + kept[-1][2] * np.dtype(kept[-1][1]).itemsize and end > kept[-1][0]:
            continue
        kept.append(r)
    return kept


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMRUN = re.compile(rf"(?:{_NUM}(?:\s*[,;]\s*|\s+)){{{_MIN_DIM - 1},}}{_NUM}")


def _number_runs(text: str) -> list[tuple[int, int, str, np.ndarray]]:
    out = []
    for m in _NUMRUN.finditer(text):
        toks = re.findall(_NUM, m.group(0))
        try:
            v = np.array([float(t) for t in toks], dtype=np.float64)
        except ValueError:
            continue
        fractional = sum(("." in t or "e" in t.lower()) for t in toks)
        if fractional >= 0.5 * len(toks):
            why = _plausible_vector(v)
            if why:
                out.append((m.start(), len(toks), why, v))
        elif np.all(np.abs(v) <= 255) and np.unique(v).size >= 0.2 * v.size and np.count_nonzero(v) >= 0.5 * v.size:
            out.append((m.start(), len(toks), "small integers (a quantized template?)", v))
    return out


# --- MRZ --------------------------------------------------------------------------------------------------------

_MRZ_RUN = re.compile(r"[A-Z0-9<]{30,}")
_MRZ_DATA = {
    "TD3 line 2": (44, re.compile(r"([A-Z0-9<]{9})([0-9<])([A-Z<]{3})([0-9]{6})([0-9])([MFX<])([0-9]{6})([0-9])[A-Z0-9<]{14}[0-9<][0-9]")),
    "TD2 line 2": (36, re.compile(r"([A-Z0-9<]{9})([0-9<])([A-Z<]{3})([0-9]{6})([0-9])([MFX<])([0-9]{6})([0-9])[A-Z0-9<]{7}[0-9]")),
    "TD1 line 1": (30, re.compile(r"[ACI][A-Z0-9<][A-Z<]{3}([A-Z0-9<]{9})([0-9<])[A-Z0-9<]{15}")),
    "TD1 line 2": (30, re.compile(r"([0-9]{6})([0-9])[MFX<]([0-9]{6})([0-9])[A-Z<]{3}[A-Z0-9<]{11}[0-9]")),
}
_MRZ_NAME = {
    "TD3 line 1": (44, re.compile(r"P[A-Z<][A-Z<]{3}[A-Z<]{39}")),
    "TD2 line 1": (36, re.compile(r"[ACIPV][A-Z<][A-Z<]{3}[A-Z<]{31}")),
    "TD1 line 3": (30, re.compile(r"[A-Z<]{30}")),
}
_NAME_FIELD = re.compile(r"[A-Z]{2,}<<[A-Z]{2,}")


def _mrz_lines(text: str) -> list[tuple[int, str]]:
    """(offset, description) of MRZ-shaped lines whose check digits hold (data lines) or that carry a name."""
    out = []
    for m in _MRZ_RUN.finditer(text):
        run = m.group(0)
        if "<" not in run or len(run) > 400:
            continue
        for off in range(len(run) - 29):
            hit = _mrz_at(run, off)
            if hit:
                out.append((m.start() + off, hit))
    # keep the first hit of overlapping windows
    kept: list[tuple[int, str]] = []
    for off, what in out:
        if not kept or off >= kept[-1][0] + 30:
            kept.append((off, what))
    return kept


def _mrz_at(run: str, off: int) -> str | None:
    for name, (n, rx) in _MRZ_DATA.items():
        window = run[off : off + n]
        if len(window) != n:
            continue
        m = rx.fullmatch(window)
        if not m:
            continue
        if name == "TD1 line 2":
            dob, cd = m.group(1), m.group(2)
            if _valid_yymmdd(dob) and _check_digit(dob) == int(cd):
                return f"{name}: birth date with a valid check digit"
            continue
        doc, cd = m.group(1), m.group(2)
        doc_ok = cd.isdigit() and any(c.isalnum() for c in doc) and _check_digit(doc) == int(cd)
        dob_ok = name != "TD1 line 1" and _valid_yymmdd(m.group(4)) and _check_digit(m.group(4)) == int(m.group(5))
        if doc_ok or dob_ok:
            parts = [p for p, ok in (("document number", doc_ok), ("birth date", dob_ok)) if ok]
            return f"{name}: {' and '.join(parts)} with valid check digit(s)"
    for name, (n, rx) in _MRZ_NAME.items():
        window = run[off : off + n]
        if len(window) == n and rx.fullmatch(window) and _NAME_FIELD.search(window) and (off == 0 or run[off - 1] == "<" or name != "TD1 line 3"):
            return f"{name}: holder name field"
    return None


# --- known values -------------------------------------------------------------------------------------------------

_MONTHS = [m.lower() for m in calendar.month_abbr[1:]]
# dates stand alone: not inside a hex string, a version number ("0.1.0" + hex) or a decimal fraction
_SEP_DATE = re.compile(r"(?<![0-9a-z.])([0-9]{4}|[0-9]{1,2})([-./ ])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})(?![0-9a-z]|\.[0-9])")
_COMPACT_DATE = re.compile(r"(?<![0-9a-z.:,])[0-9]{6}(?:[0-9]{2})?(?![0-9a-z]|\.[0-9])")
_MONTH_DATE = re.compile(r"(?<![0-9a-z])([0-9]{1,2})[ -]?(" + "|".join(_MONTHS) + r")[a-z]*\.?,?[ -]?([0-9]{4}|[0-9]{2})(?![0-9a-z])"
                         r"|(?<![a-z])(" + "|".join(_MONTHS) + r")[a-z]*\.? ([0-9]{1,2}),? ([0-9]{4})(?![0-9a-z])")


class _KnownIndex:
    """Every known value in the spellings the drill looks for, as lookup tables."""

    def __init__(self, known: Known) -> None:
        self.surnames: dict[str, set[str]] = {}  # word -> victim ids
        self.given: dict[str, set[str]] = {}
        self.docs: dict[str, str] = {}  # lower-case, '<' removed -> victim id
        self.dobs: dict[date, set[str]] = {}
        self.compact_dobs: dict[str, tuple[set[str], bool]] = {}  # digits -> (victims, 6 digits: weak)
        self.spellings = 0
        for v in known.victims:
            for w in _words(v.surname):
                if len(w) >= 3:
                    self.surnames.setdefault(w, set()).add(v.id)
            for w in _words(v.given_names):
                if len(w) >= 3:
                    self.given.setdefault(w, set()).add(v.id)
            doc = re.sub(r"[^a-z0-9]", "", v.document_number.lower())
            if len(doc) >= 5:
                self.docs[doc] = v.id
            if v.birth_date:
                d = v.birth_date
                self.dobs.setdefault(d, set()).add(v.id)
                y, yy, m, dd = f"{d.year:04d}", f"{d.year % 100:02d}", f"{d.month:02d}", f"{d.day:02d}"
                for s in (y + m + dd, dd + m + y, m + dd + y):
                    self.compact_dobs.setdefault(s, (set(), False))[0].add(v.id)
                for s in (yy + m + dd, dd + m + yy, m + dd + yy):
                    self.compact_dobs.setdefault(s, (set(), True))[0].add(v.id)
        # spellings tried: upper/lower/title/MRZ '<' forms fold into one lower-case token each; dates: ISO,
        # YYMMDD, YYYYMMDD, DDMMYY(YY), MMDDYY(YY), D.M.Y, D/M/Y, M/D/Y, Y/M/D, "12 Aug 1974", "Aug 12, 1974"
        self.spellings = 4 * (len(self.surnames) + len(self.given)) + 3 * len(self.docs) + 14 * len(self.dobs)

    @property
    def empty(self) -> bool:
        return not (self.surnames or self.given or self.docs or self.dobs)

    def scan(self, text: str) -> list[tuple[int, str, str, bool]]:
        """(offset, victim id, what, usable) for every known value in ``text``."""
        low = _ascii_fold(text).lower() if not text.isascii() else text.lower()
        out: list[tuple[int, str, str, bool]] = []
        if self.surnames or self.given:
            words = set(re.findall(r"[a-z]{3,}", low))
            for w in words & self.surnames.keys():
                for m in re.finditer(rf"(?<![a-z]){w}(?![a-z])", low):
                    for vid in self.surnames[w]:
                        out.append((m.start(), vid, f"surname {_mask(w.upper())}", len(w) >= 5 or self._near_given(low, m.start(), vid)))
            for w in words & self.given.keys():
                for m in re.finditer(rf"(?<![a-z]){w}(?![a-z])", low):
                    for vid in self.given[w]:
                        near = self._near_surname(low, m.start(), vid)
                        if near:
                            out.append((m.start(), vid, f"given name {_mask(w.upper())} beside the surname", True))
        if self.docs:
            for m in re.finditer(r"[a-z0-9]{5,}", low):
                tok = m.group(0)
                if tok in self.docs:
                    out.append((m.start(), self.docs[tok], "document number", True))
                elif len(tok) <= 64 and re.search(r"[0-9]", tok):
                    for doc, vid in self.docs.items():
                        if len(doc) >= 6 and doc in tok:
                            out.append((m.start() + tok.index(doc), vid, "document number (inside a longer token)", True))
        if self.dobs:
            for m in _COMPACT_DATE.finditer(low):
                hit = self.compact_dobs.get(m.group(0))
                for vid in hit[0] if hit else ():
                    out.append((m.start(), vid, "birth date (compact digits)", True))
            for m in _SEP_DATE.finditer(low):
                for d in _date_readings(m.group(1), m.group(3), m.group(4)):
                    for vid in self.dobs.get(d, ()):
                        out.append((m.start(), vid, "birth date", True))
            for m in _MONTH_DATE.finditer(low):
                if m.group(1):
                    day, mon, year = m.group(1), m.group(2), m.group(3)
                else:
                    mon, day, year = m.group(4), m.group(5), m.group(6)
                for d in _date_readings(year, str(_MONTHS.index(mon[:3]) + 1), day, ymd=True):
                    for vid in self.dobs.get(d, ()):
                        out.append((m.start(), vid, "birth date (month name)", True))
        return out

    def _near_given(self, low: str, pos: int, vid: str) -> bool:
        window = set(re.findall(r"[a-z]{3,}", low[max(0, pos - 64) : pos + 64]))
        return any(vid in self.given.get(w, ()) for w in window)

    def _near_surname(self, low: str, pos: int, vid: str) -> bool:
        window = set(re.findall(r"[a-z]{3,}", low[max(0, pos - 64) : pos + 64]))
        return any(vid in self.surnames.get(w, ()) for w in window)


def _date_readings(a: str, b: str, c: str, *, ymd: bool = False) -> set[date]:
    """Every date ``a sep b sep c`` could mean: Y-M-D (4-digit year first), else D-M-Y and M-D-Y, with a
    2-digit year in both centuries."""
    out = set()
    ia, ib, ic = int(a), int(b), int(c)
    if ymd or len(a) == 4:
        orders = [(ia, ib, ic)] if len(c) <= 2 else []
    else:
        orders = [(ic, ib, ia), (ic, ia, ib)]
    for y, m, d in orders:
        years = [y] if y >= 100 else [1900 + y, 2000 + y]
        for yy in years:
            try:
                out.add(date(yy, m, d))
            except ValueError:
                pass
    return out


# --- handles ----------------------------------------------------------------------------------------------------

_DOMAIN = b"idproof/identity-handle/v1"
# Keys an attacker tries first: empty and trivial keys, and every registry key that appears in idproof's own
# public source tree (tests): a deployment that copied one of them has no secret at all.
_COMMON_KEYS: tuple[bytes, ...] = (
    b"", b"\x00" * 32, b"\x00" * 16, b"\x00" * 64, b"\xff" * 32, b"0" * 32, b"0" * 64, b"k" * 32, b"x" * 32, b"a" * 32,
    b"key", b"secret", b"changeme", b"change-me", b"password", b"default", b"test", b"admin", b"idproof",
    b"registry", b"registry-key", b"registry_key", b"idproof-registry-key", b"idproof-registry", b"handle",
    b"hmac", b"hmac-key", b"identity", b"development", b"dev", b"prod", b"production", b"example",
    b"idproof-service-tests-registry-key!!", b"idproof-credential-e2e-registry-key!",
    b"idproof-capture-browser-registry-key", b"idproof-credential-tests-registry-key",
    b"idproof-schemathesis-registry-key!!!",
)
_HEX_TOKEN = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32,128}(?![0-9a-fA-F])")


def _identity_messages(v: Victim) -> list[tuple[str, bytes]]:
    state = v.issuing_state.strip().upper()
    dtype = (v.document_type.strip().upper() or "P")[:1]
    num = v.document_number.strip().upper().replace("<", "")
    if not num:
        return []
    msgs: dict[bytes, str] = {}

    def add(label: str, s: str | bytes) -> None:
        b = s.encode() if isinstance(s, str) else s
        msgs.setdefault(b, label)

    add("idproof canonical form", b"\x1f".join([_DOMAIN, state.encode(), dtype.encode(), num.encode()]))
    for sep in ("\x1f", "", "|", ":", "/", "-", " ", ",", "\t", "\n"):
        add(f"state{sep!r}type{sep!r}number", sep.join([state, dtype, num]))
        add(f"state{sep!r}number", sep.join([state, num]))
        add(f"type{sep!r}number", sep.join([dtype, num]))
        add(f"number{sep!r}state", sep.join([num, state]))
    for form in (num, num.lower(), v.document_number, v.document_number + "<" * max(0, 9 - len(v.document_number))):
        add("document number alone", form)
    return [(label, m) for m, label in msgs.items()]


def _config_strings(obj: Any, path: str = "") -> list[tuple[str, str]]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _config_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for n, v in enumerate(obj):
            out += _config_strings(v, f"{path}[{n}]")
    elif isinstance(obj, str | int | float) and not isinstance(obj, bool):
        out.append((path, str(obj)))
    return out


def _key_guesses(config: Mapping[str, Any] | None) -> list[tuple[str, bytes]]:
    keys: dict[bytes, str] = {k: "common/public key" for k in _COMMON_KEYS}
    for path, s in _config_strings(config or {}):
        for form, label in ((s.encode(), f"config {path}"), (s.strip().encode(), f"config {path}")):
            keys.setdefault(form, label)
        ref = re.sub(r"^(file|env|kms):", "", s.strip())
        keys.setdefault(ref.encode(), f"config {path} (reference text)")
        try:
            raw = base64.b64decode(s.strip(), validate=True)
            if raw:
                keys.setdefault(raw, f"config {path} (base64-decoded)")
        except (binascii.Error, ValueError):
            pass
        if re.fullmatch(r"(?:[0-9a-fA-F]{2}){8,}", s.strip()):
            keys.setdefault(bytes.fromhex(s.strip()), f"config {path} (hex-decoded)")
    return [(label, k) for k, label in keys.items()]


def _subject_ref(handle_hex: str) -> str:
    """The audit API's reference to a person (idproof.service.routes_registry.subject_ref)."""
    return hashlib.sha256(b"idproof/audit-subject\x1f" + handle_hex.encode()).hexdigest()[:32]


# --- the drill ------------------------------------------------------------------------------------------------------

_E164 = re.compile(r"(?<![0-9+])\+[1-9][0-9]{7,14}(?![0-9])")
_JWS = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}")
_SEALED = re.compile(r"IDPS:[A-Za-z2-7\s]{100,}")
_HEX_RUN = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){8,}(?![0-9a-fA-F])")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Drill:
    def __init__(self, snapshot: Snapshot, known: Known, config: Mapping[str, Any] | None,
                 verifier: Verifier | Callable[[], Verifier] | None, strict: bool) -> None:
        self.snap, self.known, self.config, self.strict = snapshot, known, config, strict
        self._verifier = verifier
        self.index = _KnownIndex(known)
        self.results = {k: CheckResult(k, t) for k, t in CHECKS.items()}
        self.omitted: dict[str, int] = {}
        self.seen: set[tuple[str, str, str]] = set()
        self.hex_tokens: dict[str, str] = {}
        self.jws: dict[str, tuple[dict, str]] = {}
        self.sealed_blobs: dict[str, str] = {}
        self.vectors: list[tuple[np.ndarray, str]] = []
        self.images: list[tuple[np.ndarray, str]] = []
        self.phones: dict[str, set[str]] = {}
        self.magic_only = 0
        self.scope = ""
        self.counts = {"values": 0, "binary_values": 0, "decoded": 0, "text_bytes": 0, "binary_bytes": 0}

    # -- recording ---

    def add(self, check: str, where: str, what: str, usable: bool = True) -> None:
        key = (check, where, what)
        if key in self.seen:
            return
        self.seen.add(key)
        r = self.results[check]
        if len(r.findings) >= _MAX_FINDINGS:
            self.omitted[check] = self.omitted.get(check, 0) + 1
            if usable:  # still counted: a usable finding past the cap is never dropped from the total
                r.findings.append(Finding(check, where, what, usable))
            return
        r.findings.append(Finding(check, where, what, usable))

    # -- scanning ---

    def scan_cell(self, cell: Cell) -> None:
        self.counts["values"] += 1
        v = cell.value
        if v is None:
            return
        where = cell.where
        if isinstance(v, bytes | bytearray | memoryview):
            data = bytes(v)
            self.counts["binary_values"] += 1
            if len(data) in (16, 20, 32, 48, 64):
                self.hex_tokens.setdefault(data.hex(), where)
            self.scan_binary(data, where, 0)
            if _printable_fraction(data) >= 0.85:
                self.scan_text(data.decode("latin-1"), where, 0, cell=True)
            return
        if isinstance(v, dict | list):
            if isinstance(v, list) and len(v) >= _MIN_DIM and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
                arr = np.asarray(v, dtype=np.float64)
                why = _plausible_vector(arr)
                if why:
                    self.add("vectors", where, f"array of {arr.size} numbers: {why}")
                    self.vectors.append((arr, where))
            text = json.dumps(v, ensure_ascii=False, default=str)
        else:
            text = v if isinstance(v, str) else str(v)
        self.scan_text(text, where, 0, cell=True)
        if not text.isprintable() and not text.isascii():
            self.scan_binary(text.encode("utf-8", "surrogatepass"), where, 0)

    def scan_raw(self, name: str, data: bytes) -> None:
        self.counts["binary_bytes"] += len(data)
        self.scan_binary(data, name, 0, raw=True)
        self.scan_text(data.decode("latin-1"), name, 0, raw=True)

    def _loc(self, where: str, offset: int, raw: bool) -> str:
        return f"{where}@0x{offset:x}" if raw else (f"{where} (offset {offset})" if offset else where)

    def scan_binary(self, data: bytes, where: str, depth: int, *, raw: bool = False) -> None:
        # images
        for off, kind in _image_candidates(data):
            opened = _open_image(data[off : off + _MAX_IMAGE])
            if opened is None:
                if kind == "JPEG 2000":
                    self.add("images", self._loc(where, off, raw or depth > 0), "JPEG 2000 signature box (no decoder here)")
                else:
                    self.magic_only += 1
                continue
            fmt, (w, h), rgb = opened
            self.add("images", self._loc(where, off, raw or depth > 0), f"{fmt} image {w}x{h}" + ("" if rgb is not None else " (header only)"))
            if rgb is not None and len(self.images) < 200:
                self.images.append((rgb, self._loc(where, off, raw or depth > 0)))
        # float vectors
        if len(data) >= _MIN_DIM * 2:
            for off, dtype, count, why, v in _float_runs(data):
                kind = {"<f4": "float32", "<f2": "float16", "<f8": "float64", ">f4": "float32 big-endian"}[dtype]
                self.add("vectors", self._loc(where, off, True), f"{count} {kind} values: {why}")
                if len(self.vectors) < 1000:
                    self.vectors.append((v, self._loc(where, off, True)))
        # compressed
        if depth < _MAX_DEPTH and not raw and data[:2] in (b"\x1f\x8b", b"\x78\x9c", b"\x78\xda", b"\x78\x01"):
            try:
                plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else zlib.decompress(data)
            except (OSError, zlib.error, EOFError):
                plain = b""
            if plain:
                self.scan_decoded(plain, f"{where} → zlib", depth + 1)

    def scan_decoded(self, data: bytes, where: str, depth: int) -> None:
        self.counts["decoded"] += 1
        if len(data) == 32:
            self.hex_tokens.setdefault(data.hex(), where)
        if len(data) >= 64:
            self.scan_binary(data, where, depth)
        if _printable_fraction(data) >= 0.85:
            self.scan_text(data.decode("latin-1"), where, depth)

    def scan_text(self, text: str, where: str, depth: int, *, raw: bool = False, cell: bool = False) -> None:
        self.counts["text_bytes"] += len(text)
        loc_raw = raw or depth > 0
        for off, what in _mrz_lines(text):
            self.add("mrz", self._loc(where, off, loc_raw), what)
        if not self.index.empty:
            for off, vid, what, usable in self.index.scan(text):
                self.add("personal_data", self._loc(where, off, loc_raw), f"{what} of victim {vid}", usable)
        for off, count, why, v in _number_runs(text):
            self.add("vectors", self._loc(where, off, loc_raw), f"{count} numbers as text: {why}")
            if len(self.vectors) < 1000:
                self.vectors.append((v, self._loc(where, off, loc_raw)))
        for m in _HEX_TOKEN.finditer(text):
            self.hex_tokens.setdefault(m.group(0).lower(), self._loc(where, m.start(), loc_raw))
        for m in _SEALED.finditer(text):
            self.sealed_blobs.setdefault(re.sub(r"\s", "", m.group(0)).upper(), self._loc(where, m.start(), loc_raw))
        for m in _JWS.finditer(text):
            self._jws(m.group(0), self._loc(where, m.start(), loc_raw))
        if cell:
            for m in _E164.finditer(text):
                self.phones.setdefault(m.group(0), set()).add(where.split(" [")[0])
        if depth >= _MAX_DEPTH:
            return
        # decode what an attacker would decode: hex, base64 / base64url (JWS segments included)
        for m in _HEX_RUN.finditer(text):
            s = m.group(0)
            if _UUID.fullmatch(text[max(0, m.start() - 9) : m.start() + 27]):
                continue
            self.scan_decoded(bytes.fromhex(s), f"{self._loc(where, m.start(), loc_raw)} → hex", depth + 1)
        for m in _B64_RUN.finditer(text):
            s = m.group(0)
            if re.fullmatch(r"[0-9a-fA-F]+", s) or re.fullmatch(r"[A-Za-z]+", s) or len(s.rstrip("=")) % 4 == 1:
                continue  # hex (decoded above), a plain word, or not base64 at all
            body = s.rstrip("=")
            alt = b"-_" if ("-" in body or "_" in body) else b"+/"
            if "-" in body and "+" in body:
                continue
            try:
                data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=alt, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(data) >= 8:
                self.scan_decoded(data, f"{self._loc(where, m.start(), loc_raw)} → base64", depth + 1)

    def _jws(self, token: str, where: str) -> None:
        parts = token.split(".")
        try:
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, binascii.Error):
            return
        if isinstance(payload, dict):
            key = str(payload.get("record_id") or hashlib.sha256(parts[1].encode()).hexdigest())
            self.jws.setdefault(key, (payload, where))

    # -- the checks ---

    def run(self) -> DrillReport:
        for cell in self.snap.cells():
            self.scan_cell(cell)
        for f in self.snap.raw:
            self.scan_raw(f.name, f.data)
        self.finish_scans()
        self.check_handles()
        self.check_faces()
        self.check_sealed()
        self.check_evidence()
        columns = self.check_schema()
        self.check_phones()
        for k, n in self.omitted.items():
            self.results[k].notes.append(f"{n} more finding(s) past the first {_MAX_FINDINGS} (usable ones are still counted)")
        raw_bytes = sum(len(f.data) for f in self.snap.raw)
        notes = list(self.snap.notes)
        if not self.known.victims:
            notes.append("no --known data: the targeted attacks (known values, handles, faces) had nothing to try")
        return DrillReport(self.snap.source, self.snap.kind, len(self.snap.tables), self.snap.row_count, raw_bytes,
                           list(self.results.values()), columns, notes, self.scope)

    def finish_scans(self) -> None:
        c = self.counts
        raw = f"{len(self.snap.raw)} raw file(s), {c['binary_bytes'] / 1e6:.1f} MB" if self.snap.raw else "no raw files (live read)"
        self.scope = f"{c['values']:,} values ({c['binary_values']:,} binary), {raw}, {c['decoded']:,} decoded base64/hex/zlib blobs"
        r = self.results["images"]
        r.tried = "JPEG, PNG, GIF, WebP, BMP, TIFF, JPEG 2000 signatures, each parsed with PIL"
        if self.magic_only:
            r.notes.append(f"{self.magic_only} signature-like byte sequence(s) did not parse as images (random bytes)")
        r = self.results["vectors"]
        r.tried = (f"runs of ≥{_MIN_DIM} float32/float16/float64 at every alignment with embedding-like values;"
                   f" ≥{_MIN_DIM}-number arrays and lists in text")
        self.results["mrz"].tried = "TD1/TD2/TD3 line shapes with '<' fillers; check digits verified"
        r = self.results["personal_data"]
        if self.index.empty:
            r.tried = "no known values given (--known): nothing targeted to search for"
        else:
            r.tried = (f"{len(self.known.victims)} victims, {self.index.spellings:,} spellings (any case, MRZ '<' forms; ISO, "
                       f"YYMMDD, YYYYMMDD, D.M.Y, D/M/Y, M/D/Y, month-name dates)")
            weak = sum(1 for f in r.findings if not f.usable)
            if weak:
                r.notes.append(f"{weak} short-name hit(s) without the rest of the name nearby: not identifying")

    def check_handles(self) -> None:
        r = self.results["handles"]
        keys = _key_guesses(self.config)
        tokens = self.hex_tokens
        short = {t for t in tokens if len(t) == 32}
        tried = 0
        for v in self.known.victims:
            msgs = _identity_messages(v)
            for label, msg in msgs:
                cands: list[tuple[str, str]] = []
                for hname in ("sha256", "sha3_256", "blake2b", "blake2s", "sha512", "sha1", "md5"):
                    h = hashlib.new(hname, msg) if hname != "blake2b" else hashlib.blake2b(msg, digest_size=32)
                    cands.append((h.hexdigest(), f"plain {hname}"))
                for klabel, key in keys:
                    cands.append((hmac.new(key, msg, hashlib.sha256).hexdigest(), f"HMAC-SHA256 with {klabel} ({len(key)}-byte key)"))
                tried += len(cands)
                for digest, how in cands:
                    where = tokens.get(digest)
                    if where is None and len(digest) == 64:
                        ref = _subject_ref(digest)
                        if ref in short:
                            where = tokens[ref] + " (as the audit subject_ref)"
                    if where is not None:
                        self.add("handles", where, f"handle of victim {v.id} recomputed: {how} over {label}")
        n64 = sum(1 for t in tokens if len(t) == 64)
        if self.known.victims:
            r.tried = (f"{tried:,} candidates: {len(self.known.victims)} documents × encodings × ({len(keys)} guessed HMAC keys "
                       f"+ 7 plain hashes), against {len(tokens):,} stored hex values ({n64:,} of 64 digits)")
        else:
            r.tried = f"no known documents: {len(tokens):,} hex values collected, nothing to recompute"
        if self.config is not None:
            secrets_inline = [p for p, s in _config_strings(self.config)
                              if re.search(r"key|secret|token|password|passphrase", p, re.IGNORECASE)
                              and not re.match(r"^(file|env|kms):", s) and len(s) >= 16 and not s.startswith(("/", "."))]
            if secrets_inline:
                r.notes.append(f"config holds inline value(s) at {', '.join(secrets_inline)} under a key-like name (tried as keys)")
        r.notes.append("a KMS-held key (kms:module:function) cannot be guessed from any copy of the database")

    def _verifier_now(self) -> Verifier | None:
        if self._verifier is None:
            return None
        if callable(self._verifier) and not hasattr(self._verifier, "engine"):
            self._verifier = self._verifier()
        return self._verifier  # type: ignore[return-value]

    def check_faces(self) -> None:
        r = self.results["faces"]
        faces = [(v, p) for v in self.known.victims for p in v.faces]
        targets = len(self.vectors) + len(self.images)
        r.tried = f"{len(faces)} known face photo(s) against {len(self.vectors)} stored vector(s) and {len(self.images)} decodable image(s)"
        if not faces or not targets:
            if faces:
                r.notes.append("nothing stored to compare the known faces with: no vector and no decodable image was found")
            return
        try:
            verifier = self._verifier_now()
        except Exception as e:  # noqa: BLE001 - models missing etc.: reported, the other checks stand
            r.notes.append(f"face engine unavailable ({type(e).__name__}: {e}); the vectors/images found are usable anyway")
            return
        if verifier is None:
            r.notes.append("no face engine given; the vectors/images found are usable anyway")
            return
        from idproof.face.embed import embedder
        from idproof.imageio import load_image

        engine, threshold = verifier.engine, verifier.threshold.threshold
        models = list(verifier.scorer.models)
        known_templates = []
        for v, p in faces:
            try:
                sample = engine.analyze(load_image(p), "selfie", embed_even_if_poor=True)
            except Exception:  # noqa: BLE001 - an unreadable photo is skipped, and said so
                r.notes.append(f"victim {v.id}: face photo {p.name} unreadable")
                continue
            if sample.template is None:
                r.notes.append(f"victim {v.id}: no face found in {p.name}")
                continue
            known_templates.append((v, sample.template))
        # stored vectors: compared per model of matching dimension (cosine for unit embedders, 1 - distance for dlib)
        for vec, where in self.vectors:
            for m in models:
                for v, t in known_templates:
                    ref = np.asarray(t.vectors[m], dtype=np.float64)
                    if ref.size != vec.size:
                        continue
                    probe = vec / (np.linalg.norm(vec) or 1.0) if m != "dlib_resnet" else vec
                    score = float(embedder(m).similarity(ref, probe))
                    cut = threshold if len(models) == 1 else (0.4 if m == "dlib_resnet" else 0.35)
                    if score >= cut:
                        self.add("faces", where, f"stored vector matches victim {v.id}'s face ({m} similarity {score:.3f} ≥ {cut:.3f})")
        for rgb, where in self.images:
            sample = engine.analyze(rgb, "selfie", embed_even_if_poor=True)
            if sample.template is None:
                continue
            for v, t in known_templates:
                score = float(verifier.scorer.score(t, sample.template))
                if score >= threshold:
                    self.add("faces", where, f"stored image shows victim {v.id} (score {score:.3f} ≥ threshold {threshold:.3f})")

    def check_sealed(self) -> None:
        r = self.results["sealed"]
        rows = sum(len(t.rows) for n, t in self.snap.tables.items() if n.split(".")[-1] == "sealed_templates")
        r.tried = (f"{len(self.sealed_blobs)} sealed template(s) (IDPS:...) found; each opened with guessed secrets; "
                   f"{rows} sealed_templates row(s) checked")
        if rows:
            r.notes.append(f"{rows} sealed_templates row(s) hold SHA-256(random salt ‖ sealed blob): nothing to decrypt, not invertible")
        if not self.sealed_blobs:
            return
        from idproof.sealed.template import (
            SealedTemplateError,
            open_sealed,
            parse_sealed,
        )

        guesses = [b"", b"\x00" * 18, b"\xff" * 18, b"0" * 18, b"\x00" * 32]
        for blob_text, where in self.sealed_blobs.items():
            try:
                blob = parse_sealed(blob_text)
            except SealedTemplateError:
                self.add("sealed", where, "IDPS-prefixed text that is not a sealed template", usable=False)
                continue
            opened = False
            for g in guesses:
                try:
                    open_sealed(blob, g)
                    opened = True
                    break
                except (SealedTemplateError, ValueError, TypeError):
                    continue
            if opened:
                self.add("sealed", where, "sealed template opened with a guessed secret")
            else:
                self.add("sealed", where, f"AES-256-GCM ciphertext ({len(blob.ciphertext)} bytes) under a person-held "
                                          "144-bit secret: not openable without the recovery code", usable=False)

    def check_evidence(self) -> None:
        r = self.results["evidence"]
        records = {k: (p, w) for k, (p, w) in self.jws.items() if p.get("format", "").startswith("idproof-evidence")}
        files: list[tuple[Victim, Path, bytes]] = []
        for v in self.known.victims:
            for p in (*v.faces, *v.files):
                try:
                    files.append((v, p, p.read_bytes()))
                except OSError:
                    r.notes.append(f"victim {v.id}: {p.name} unreadable")
        r.tried = (f"{len(records)} signed evidence record(s) decoded; {len(files)} known file(s) hashed with each record's "
                   f"salt ({len(records) * len(files):,} salted hashes)")
        expected = {"format", "record_id", "proofing_id", "outcome", "reasons", "score", "threshold", "target_fmr",
                    "model_scores", "scorer", "calibration_version", "model_versions", "code_version", "checks_performed",
                    "document", "input_hash", "input_salt", "input_hashes", "capture_nonce", "decided_at", "issued_at"}
        for (payload, where) in records.values():
            extra = set(payload) - expected
            if extra:
                self.add("evidence", where, f"record carries unexpected field(s) {sorted(extra)} (scanned like everything else)", usable=False)
            try:
                salt = bytes.fromhex(str(payload.get("input_salt", "")))
            except ValueError:
                continue
            hashes = payload.get("input_hashes") or {}
            recorded = {h: role for role, hs in hashes.items() for h in ([hs] if isinstance(hs, str) else hs)}
            if not recorded:
                continue
            for v, p, data in files:
                digest = hashlib.sha256(salt + data).hexdigest()
                if digest in recorded:
                    self.add("evidence", where, f"victim {v.id}'s exact file {p.name} is this proofing's '{recorded[digest]}' input "
                                                "(confirmable only with the exact uploaded bytes: documented trade-off)",
                             usable=self.strict)
        if records:
            r.notes.append("records are personal-data free by construction; their decoded payloads went through every other check")

    def check_schema(self) -> list[ColumnReview]:
        out = []
        r = self.results["schema"]
        for t in self.snap.tables.values():
            internal = t.name in _INTERNAL_TABLES or t.name.startswith("sqlite_stat")
            for i, col in enumerate(t.columns):
                values = [row[i] for row in t.rows if i < len(row) and row[i] is not None]
                if internal:
                    klass, flag, usable = "database internals (table names, counters, schema version)", "", False
                else:
                    klass, flag, usable = _classify(t.name, col, values)
                ctype = t.types[i] if i < len(t.types) else ""
                out.append(ColumnReview(t.name, col, ctype, len(values), klass, flag, usable))
                if flag:
                    self.add("schema", f"{t.name}.{col}", f"{flag} ({len(values)} value(s))", usable)
        r.tried = f"{len(self.snap.tables)} table(s), {len(out)} column(s) classified by name and content"
        return out

    def check_phones(self) -> None:
        r = self.results["phone_numbers"]
        cols = sorted({c for s in self.phones.values() for c in s})
        r.tried = "E.164 numbers in every value"
        r.notes.append(f"{len(self.phones):,} distinct phone number(s) in {', '.join(cols) or 'no column'}: stored by design "
                       "(operators look them up), bound to keyed handles only, never to identity data")


# --- schema classification ------------------------------------------------------------------------------------------

_INTERNAL_TABLES = {"sqlite_sequence", "alembic_version"}  # their content is still scanned like every other value

_STRONG_TOKENS = {
    "name", "names", "surname", "surnames", "firstname", "lastname", "givenname", "givennames", "forename", "fullname",
    "birth", "birthdate", "dob", "birthday", "passport", "mrz", "nationality", "sex", "gender", "address", "email",
    "photo", "image", "images", "selfie", "portrait", "face", "faces", "picture", "template", "templates", "embedding",
    "embeddings", "vector", "vectors", "biometric", "biometrics", "fingerprint", "ssn", "docnumber", "docno",
}
_PAIRS = {("document", "number"), ("doc", "number"), ("passport", "number"), ("id", "number"), ("date", "birth"),
          ("given", "name"), ("first", "name"), ("last", "name"), ("family", "name")}
_BLOB_TOKENS = {"photo", "image", "images", "selfie", "portrait", "face", "faces", "picture", "template", "templates",
                "embedding", "embeddings", "vector", "vectors", "biometric", "biometrics", "fingerprint"}


def _tokens(name: str) -> list[str]:
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


def _suspicious(name: str) -> str | None:
    toks = _tokens(name)
    for a, b in itertools.pairwise(toks):
        if (a, b) in _PAIRS:
            return f"{a}_{b}"
    for t in toks:
        if t in _STRONG_TOKENS:
            return t
    return None


def _json_flags(obj: Any, path: str = "") -> list[str]:
    """Keys named like personal data whose values look like it (a timing called 'selfie.detect' is not)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            tok = _suspicious(str(k))
            if tok and v not in (None, "", [], {}):
                if tok in _BLOB_TOKENS:
                    if (isinstance(v, str) and len(v) >= 64) or (isinstance(v, list) and len(v) >= 16):
                        out.append(p)
                elif tok == "mrz":
                    if isinstance(v, str | list) and str(k).lower() in ("mrz", "mrz_text", "mrz_line", "mrz_lines"):
                        out.append(p)
                elif isinstance(v, str | int | float | list) and not isinstance(v, bool):
                    out.append(p)
            out += _json_flags(v, p)
    elif isinstance(obj, list):
        for v in obj[:100]:
            out += _json_flags(v, path + "[]")
    return out


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ]00:00(?::00(?:\.0+)?)?(?:Z|[+-]00(?::?00)?)?)?")


def _birthdate_like(values: list[Any]) -> bool:
    strs = [v for v in values if isinstance(v, str)]
    if not strs:
        return False
    limit = date.today().year - 10
    old = 0
    for s in strs:
        m = _ISO_DATE.fullmatch(s.strip())
        if m and 1900 <= int(m.group(1)) <= limit:
            old += 1
    return old >= max(1, 0.5 * len(strs))


def _classify(table: str, column: str, values: list[Any]) -> tuple[str, str, bool]:
    """(classification, flag, usable). A flag names why the column suggests personal data."""
    klass = _content_class(column, values)
    flag, usable = "", False
    tok = _suspicious(column)
    if tok:
        flag = f"column name suggests personal data ('{tok}')"
        usable = bool(values)
        if not values:
            flag += ", but it is empty"
    if _birthdate_like(values):
        flag, usable = "values look like birth dates (old dates without a time)", True
    keys = set()
    for v in values[:5000]:
        obj = v
        if isinstance(v, str) and v[:1] in "{[":
            try:
                obj = json.loads(v)
            except ValueError:
                continue
        if isinstance(obj, dict | list):
            keys.update(_json_flags(obj))
    if keys:
        flag, usable = f"JSON key(s) named like personal data with values: {', '.join(sorted(keys)[:5])}", True
    return klass, flag, usable


def _json_class(values: list[Any]) -> str:
    """JSON, naming the keys that hold free text (what a person typed, e.g. a dispute reason): scanned like all else."""
    free: set[str] = set()

    def walk(obj: Any, key: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, str(k))
        elif isinstance(obj, list):
            for v in obj[:50]:
                walk(v, key)
        elif isinstance(obj, str) and key and " " in obj.strip():
            free.add(key)

    for v in values[:2000]:
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                continue
        walk(v, "")
    if free:
        return f"JSON (public metadata; free text under {', '.join(repr(k) for k in sorted(free)[:4])}, scanned)"
    return "JSON (public metadata)"


def _content_class(column: str, values: list[Any]) -> str:
    if not values:
        return "empty"
    col = column.lower()
    n = len(values)

    def share(pred: Callable[[Any], bool]) -> float:
        return sum(1 for v in values if pred(v)) / n

    if share(lambda v: isinstance(v, bytes)) == 1.0:
        sizes = sorted({len(v) for v in values})
        if sizes == [32]:
            return "hash / MAC (32 bytes, binary)"
        if sizes == [64]:
            return "signature (64 bytes, binary)"
        return f"binary ({sizes[0]}–{sizes[-1]} bytes)"
    if share(lambda v: isinstance(v, bool | int | float) and not isinstance(v, str)) == 1.0:
        return "number (public metadata)"
    if share(lambda v: isinstance(v, dict | list)) == 1.0:
        return _json_class(values)
    strs = [str(v) for v in values]

    def sshare(rx: re.Pattern) -> float:
        return sum(1 for s in strs if rx.fullmatch(s)) / n

    if sshare(re.compile(r"\+[1-9][0-9]{7,14}")) >= 0.9:
        return "phone number (by design, not identity data)"
    if sshare(re.compile(r"[0-9a-f]{64}")) >= 0.9:
        if "handle" in col:
            return "identity handle (HMAC-SHA256 under the registry key)"
        return "hash (64 hex digits)" if re.search(r"sha|hash|digest", col) else "hex digest (64 hex digits)"
    if sshare(re.compile(r"[0-9a-f]{32}")) >= 0.9:
        return "salt (16 random bytes, hex)" if "salt" in col else "hex token (128 bits)"
    if sshare(_UUID) >= 0.9:
        return "identifier (UUID)"
    if sshare(_JWS) >= 0.9:
        return "signed record (compact JWS; payload decoded and scanned)"
    if sshare(re.compile(r"IDPS:[A-Z2-7]+")) >= 0.9:
        return "ciphertext (sealed template)"
    if sshare(re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:?\d{2})?|Z)?")) >= 0.9:
        return "timestamp"
    if all(s[:1] in "{[" for s in strs):
        return _json_class(values)
    if sshare(re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")) >= 0.9:
        return "number (public metadata)"
    if len(set(strs)) <= 16:
        return "label / enum (public metadata)"
    return "text (public metadata)"


# --- entry point -----------------------------------------------------------------------------------------------------------


def run_drill(
    snapshot: Snapshot,
    known: Known | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    verifier: Verifier | Callable[[], Verifier] | None = None,
    strict: bool = False,
) -> DrillReport:
    """Run every attack on ``snapshot``. ``verifier`` (or a factory, called only when something stored could be
    compared with a known face) supplies the face engine, scorer and threshold; ``strict`` also counts
    confirmations that need the exact uploaded file (evidence input hashes) as usable."""
    return _Drill(snapshot, known or Known(), config, verifier, strict).run()


def summarize(report: DrillReport) -> str:
    """One line for logs: how many usable items, where the first few are."""
    found = report.usable_findings()
    head = "; ".join(f"{f.check}: {f.where}: {f.what}" for f in found[:5])
    return f"{report.usable} usable item(s)" + (f": {head}" if head else "")
