"""One MRZ reader in its own process, so its peak RSS and timings are its own.

    python -m idproof.bench._documents_worker JOB.json RESULT.json

JOB.json: {"reader": "idproof" | "passporteye", "images": [absolute paths]}.
RESULT.json: per image, what the reader made of it: a status ("read": an MRZ was parsed, "unparsed": the
reader found an MRZ-like zone but could not parse it, "no_mrz": the reader says there is none, "error":
it raised), the MRZ format, whether every check digit passed, the names of the failed checks, the MRZ
lines and the nine compared fields (normalised, see ``normalise_fields``) and seconds spent. The parent
(``idproof.bench.documents``) keeps lines and field values only for ICAO specimen rows with ground
truth; RESULT.json lives in a temporary folder that is deleted after the run. Nothing here prints MRZ
text (stdout carries only ``@@progress DONE TOTAL`` lines, stderr only exception class names).

PassportEye is the benchmark's peer only: it is imported here, never by idproof's runtime code.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from idproof.bench._subprocess import worker_main
from typing import Any

from idproof.bench._worker import peak_rss_kib

READERS = ("idproof", "passporteye")
FIELDS = (
    "document_code", "issuing_country", "document_number", "date_of_birth", "sex", "expiry_date",
    "nationality", "surname", "given_names",
)  # fmt: skip
WARMUP_TRIES = 3


def normalise_value(name: str, value: Any) -> str:
    """One field as compared: upper case, '<' fillers as spaces, runs of spaces collapsed, stripped."""
    s = " ".join(str(value or "").upper().replace("<", " ").split())
    if name == "sex" and s == "":
        s = "X"  # '<' (unspecified) is reported as 'X' by idproof and as '<' by PassportEye
    return s


def normalise_fields(fields: dict[str, Any]) -> dict[str, str]:
    return {k: normalise_value(k, fields.get(k)) for k in FIELDS}


def _cpu_snapshot() -> tuple[float, float, float]:
    """(wall s, machine busy CPU s, CPU s of this process *and its waited-for children*: Tesseract runs
    as a child process, and must not count as someone else's load)."""
    busy = 0.0
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system


def _other_load(a: tuple[float, float, float], b: tuple[float, float, float]) -> float | None:
    wall = b[0] - a[0]
    if wall <= 0 or not b[1]:
        return None
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / wall)


class ChildPeakSampler:
    """Largest VmHWM of this process's child processes (after their exec), sampled every few ms.

    A child's ``RUSAGE_CHILDREN`` peak is useless here: it carries this process's own RSS from the fork.
    Sampling /proc costs CPU, so it runs only around the untimed warm-up read(s), never the timed pass.
    """

    def __init__(self, every_s: float = 0.005) -> None:
        import threading

        self.peak_kib = 0
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._me = str(os.getpid())
        try:
            self._comm = Path("/proc/self/comm").read_text().strip()
        except OSError:
            self._comm = ""

    def __enter__(self) -> "ChildPeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._every)

    def sample(self) -> None:
        try:
            pids = [d for d in os.listdir("/proc") if d.isdigit()]
        except OSError:
            return
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                ppid = stat.rsplit(")", 1)[1].split()[1]
                if ppid != self._me:
                    continue
                status = Path(f"/proc/{pid}/status").read_text()
            except (OSError, IndexError):
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("Name", "").strip() == self._comm:
                continue  # forked, not yet exec'd: still this process's image
            try:
                self.peak_kib = max(self.peak_kib, int(fields.get("VmHWM", "0 kB").split()[0]))
            except ValueError:
                pass


# --- readers ----------------------------------------------------------------------------------------

# Where parse_mrz's repairs sit in the lines: field -> (line index, start, end) and check digit -> (line, pos).
_SPANS = {
    "TD1": {"document_number": (0, 5, 14), "date_of_birth": (1, 0, 6), "expiry_date": (1, 8, 14)},
    "LINE2": {"document_number": (1, 0, 9), "date_of_birth": (1, 13, 19), "expiry_date": (1, 21, 27)},
}
_CHECKS = {
    "TD1": {"document_number": (0, 14), "date_of_birth": (1, 6), "expiry_date": (1, 14), "composite": (1, 29)},
    "TD2": {"document_number": (1, 9), "date_of_birth": (1, 19), "expiry_date": (1, 27), "composite": (1, 35)},
    "TD3": {"document_number": (1, 9), "date_of_birth": (1, 19), "expiry_date": (1, 27), "optional": (1, 42), "optional_data": (1, 42),
            "composite": (1, 43)},
    "MRVA": {"document_number": (1, 9), "date_of_birth": (1, 19), "expiry_date": (1, 27)},
    "MRVB": {"document_number": (1, 9), "date_of_birth": (1, 19), "expiry_date": (1, 27)},
}  # fmt: skip


def repaired_lines(result: Any) -> tuple[str, ...]:
    """The MRZ lines with idproof's check-digit repairs written back in: what idproof hands a user.

    ``parse_mrz`` keeps the lines as given and reports repairs (``repaired``: field -> original value);
    the repaired values are in ``raw_fields`` (fields) or are the digit the original letter resembles
    (check digits). A TD1 long document number (continued in the optional data) is left as read.
    """
    from idproof.document.mrz import _force_digits

    lines = [list(line) for line in result.lines]
    spans = _SPANS["TD1" if result.format == "TD1" else "LINE2"]
    checks = _CHECKS[result.format]
    for key in result.repaired:
        if key.endswith("_check_digit"):
            name = key[: -len("_check_digit")]
            if name in checks:
                i, pos = checks[name]
                if pos < len(lines[i]):
                    lines[i][pos] = _force_digits(lines[i][pos])
        elif key == "optional_data" and result.format == "TD3":
            # raw_fields keeps it with '<' as spaces; a repair swaps letters and digits only, so the fillers stay put
            chars = iter(result.raw_fields.get("optional_data", "").replace(" ", ""))
            lines[1][28:42] = [c if c == "<" else next(chars, c) for c in lines[1][28:42]]
        elif key in spans:
            i, a, b = spans[key]
            value = result.raw_fields.get(key, "")
            if key == "document_number":
                if len(value) > b - a:
                    continue  # long TD1 document number: spans two fields, left as read
                value = value.ljust(b - a, "<")
            if len(value) == b - a:
                lines[i][a:b] = list(value)
    return tuple("".join(line) for line in lines)


class IdproofReader:
    """``idproof.imageio.load_image`` then ``idproof.document.mrz_image.read_mrz``."""

    name = "idproof"

    def __init__(self) -> None:
        from idproof.document import mrz_image
        from idproof.imageio import load_image

        self._load = load_image
        self._read = mrz_image.read_mrz
        self._no_mrz = getattr(mrz_image, "NoMrzFound", None)
        import idproof

        self.version = getattr(idproof, "__version__", None) or _dist_version("idproof")

    def read(self, path: str) -> dict[str, Any]:
        rgb = self._load(path)
        try:
            reading = self._read(rgb)
        except Exception as e:  # noqa: BLE001 - NoMrzFound (or code "no_mrz_found") is an answer, not a failure
            if (self._no_mrz is not None and isinstance(e, self._no_mrz)) or getattr(e, "code", None) == "no_mrz_found":
                return {"status": "no_mrz"}
            raise
        res = reading.result
        if res is None:
            return {"status": "unparsed", "lines_as_read": list(reading.lines)}
        fields = {
            "document_code": res.raw_fields.get("document_code", res.document_code),
            "issuing_country": res.raw_fields.get("issuing_state", res.issuing_state),
            "document_number": res.raw_fields.get("document_number", res.document_number),
            "date_of_birth": res.raw_fields.get("date_of_birth", ""),
            "sex": res.raw_fields.get("sex", res.sex),
            "expiry_date": res.raw_fields.get("expiry_date", ""),
            "nationality": res.raw_fields.get("nationality", res.nationality),
            "surname": res.primary_identifier,
            "given_names": res.secondary_identifier,
        }
        return {
            "status": "read",
            "format": res.format,
            "valid": bool(res.valid),
            "failed_checks": list(res.failed_checks),
            "repaired": sorted(res.repaired),
            "lines_as_read": list(res.lines),
            "lines": list(repaired_lines(res)),
            "fields": normalise_fields(fields),
            "stage_ms": {k: round(float(v), 3) for k, v in (reading.timings_ms or {}).items()},
            "attempts": getattr(reading, "attempts", None),
        }


# PassportEye's valid_check_digits, in its order, under idproof's check names.
_PE_CHECK_NAMES = ("document_number", "date_of_birth", "expiry_date", "composite", "optional")


class PassportEyeReader:
    """What a PassportEye user writes: ``passporteye.read_mrz(path)`` with its defaults (Tesseract via pytesseract)."""

    name = "passporteye"

    def __init__(self) -> None:
        warnings.filterwarnings("ignore", category=FutureWarning)  # skimage deprecations inside PassportEye
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import passporteye
        from passporteye.mrz.text import MRZOCRCleaner

        self._read = passporteye.read_mrz
        self._clean = MRZOCRCleaner.apply
        self.version = getattr(passporteye, "__version__", None) or _dist_version("passporteye")

    def read(self, path: str) -> dict[str, Any]:
        mrz = self._read(path)
        if mrz is None:
            return {"status": "no_mrz"}
        if mrz.mrz_type is None:
            return {"status": "unparsed", "valid_score": int(mrz.valid_score)}
        checks = list(mrz.valid_check_digits)
        failed = [name for name, ok in zip(_PE_CHECK_NAMES, checks) if not ok]
        text = mrz.aux.get("raw_text") or mrz.aux.get("text") or ""
        d = mrz.to_dict()
        fields = {
            "document_code": d.get("type"),
            "issuing_country": d.get("country"),
            "document_number": d.get("number"),
            "date_of_birth": d.get("date_of_birth"),
            "sex": d.get("sex"),
            "expiry_date": d.get("expiration_date"),
            "nationality": d.get("nationality"),
            "surname": d.get("surname"),
            "given_names": d.get("names"),
        }
        lines = list(self._clean(text))  # the lines PassportEye parsed (its OCR clean-up applied)
        return {
            "status": "read",
            "format": mrz.mrz_type,
            "valid": bool(checks) and all(checks),
            "valid_score": int(mrz.valid_score),
            "failed_checks": failed,
            "lines_as_read": lines,
            "lines": lines,
            "fields": normalise_fields(fields),
            "method": mrz.aux.get("method"),
        }


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


def make_reader(name: str):
    if name == "idproof":
        return IdproofReader()
    if name == "passporteye":
        return PassportEyeReader()
    raise SystemExit(f"unknown reader {name!r}; choose from {READERS}")


def _read_one(reader, path: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        out = reader.read(path)
    except Exception as e:  # noqa: BLE001 - a crash on one image is that image's result, not the run's
        out = {"status": "error", "error": type(e).__name__, "code": getattr(e, "code", None)}
    out["seconds"] = round(time.perf_counter() - t0, 4)
    return out


def run_job(job: dict, progress: Callable[[int, int], None] = lambda d, n: None) -> dict:
    images: Sequence[str] = job["images"]
    t0 = time.perf_counter()
    reader = make_reader(job["reader"])
    load_s = time.perf_counter() - t0

    # Warm-up (not timed): imports, lazily loaded models and Tesseract's first start happen here; the
    # child-process (Tesseract) memory is sampled here too, away from the timed pass.
    t0 = time.perf_counter()
    with ChildPeakSampler() as children:
        for path in images[:WARMUP_TRIES]:
            if _read_one(reader, path)["status"] == "read":
                break
    warmup_s = time.perf_counter() - t0

    snap = _cpu_snapshot()
    per_image = []
    for i, path in enumerate(images):
        per_image.append(_read_one(reader, path))
        progress(i + 1, len(images))
    others = _other_load(snap, _cpu_snapshot())
    hwm, ru = peak_rss_kib()
    return {
        "reader": job["reader"],
        "version": reader.version,
        "load_s": round(load_s, 3),
        "warmup_s": round(warmup_s, 3),
        "images": per_image,
        "peak_rss_kib": hwm,
        "ru_maxrss_kib": ru,
        "child_peak_rss_kib": children.peak_kib or None,  # None: no child process ran during the warm-up
        "other_cpu_load_cores": None if others is None else round(others, 2),
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    return worker_main(run_job, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
