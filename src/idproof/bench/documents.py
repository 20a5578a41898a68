"""`idproof bench documents`: how well, how fast and in how much memory idproof reads MRZs, beside PassportEye.

Each reader (idproof's ``idproof.document.mrz_image.read_mrz``, the PassportEye peer) runs in its own
subprocess (``idproof.bench._documents_worker``), one after another, over the same images of
``<data>/images`` (one warm-up read first, untimed). Figures per reader:

* ground-truth rows (``expected.csv`` rows with ``line1``; ICAO specimens): share whose MRZ lines are all
  exactly right (the lines the reader hands over: idproof's with its check-digit repairs written back,
  PassportEye's after its own OCR clean-up), and per-field accuracy over the nine fields in ``FIELDS``;
* every image with an MRZ (all but the negatives): share read at all, and share read with every check
  digit valid (idproof: ``MrzResult.valid``; PassportEye: all of its ``valid_check_digits``; its stricter
  ``valid_score == 100``, which also wants exact line lengths, is counted too);
* negatives (``gt_source`` starting "negative", i.e. ``fm_nomrz.jpg``): share where the reader says there is
  no MRZ (idproof: ``NoMrzFound``; PassportEye: ``read_mrz`` returns None);
* p50/p95 seconds per image (decode included) and peak resident memory of the worker process (and of
  its largest child process, sampled during the warm-up read: both readers run Tesseract as a child).

Personal data hygiene: MRZ text and field values leave this module only for ground-truth rows (ICAO
specimens of fictional people); for every other image only counts, flags and check names are kept.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from idproof.bench._documents_worker import FIELDS, normalise_fields
from idproof.bench._subprocess import run_worker, threads

OURS, PEER = "idproof", "passporteye"
READERS = (OURS, PEER)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
_PE_SCORE = re.compile(r"^pe_testdata_(\d+)_")


# --- data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocImage:
    file: str  # name inside images/
    path: str  # absolute
    gt_lines: tuple[str, ...] | None  # exact MRZ lines (ICAO specimens) or None
    gt_fields: dict[str, str] | None  # normalised, see normalise_fields
    negative: bool  # the image has no MRZ
    mrz_type: str | None
    pe_recorded_score: int | None  # PassportEye's valid_score recorded by its author (file name prefix)

    @property
    def has_gt(self) -> bool:
        return self.gt_lines is not None


def gt_from_row(row: dict[str, str]) -> tuple[tuple[str, ...] | None, dict[str, str] | None]:
    """Ground-truth lines and normalised fields of one expected.csv row, or (None, None) when it has none."""
    lines = tuple(x.strip() for x in (row.get("line1"), row.get("line2"), row.get("line3")) if x and x.strip())
    if not lines:
        return None, None
    fields = {k: row.get(k, "") for k in FIELDS}
    return lines, normalise_fields(fields)


def read_images(data: Path) -> list[DocImage]:
    """Every image of ``data/images`` (sorted by name) with what ``data/expected.csv`` says about it."""
    img_dir = data / "images"
    rows: dict[str, dict[str, str]] = {}
    expected = data / "expected.csv"
    if expected.is_file():
        with expected.open(newline="", encoding="utf-8-sig") as f:
            for r in csv.DictReader(f):
                rows[Path(r["file"].strip()).name] = r
    out = []
    for p in sorted(img_dir.iterdir()):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        r = rows.get(p.name, {})
        lines, fields = gt_from_row(r) if r else (None, None)
        m = _PE_SCORE.match(p.name)
        out.append(DocImage(
            file=p.name, path=str(p.resolve()), gt_lines=lines, gt_fields=fields,
            negative=(r.get("gt_source") or "").strip().lower().startswith("negative"),
            mrz_type=(r.get("mrz_type") or "").strip() or None,
            pe_recorded_score=int(m.group(1)) if m else None,
        ))  # fmt: skip
    return out


def select_images(images: list[DocImage], limit: int | None) -> list[DocImage]:
    """With ``limit``, a quick mixed sample: round robin over ground-truth rows, negatives and the rest
    (each in name order), so even a small sample scores every kind; kept in name order."""
    if limit is None or limit >= len(images):
        return images
    groups = [[i for i in images if i.has_gt], [i for i in images if i.negative], [i for i in images if not i.has_gt and not i.negative]]
    chosen: list[DocImage] = []
    while len(chosen) < limit:
        for g in groups:
            if g and len(chosen) < limit:
                chosen.append(g.pop(0))
    names = {i.file for i in chosen}
    return [i for i in images if i.file in names]


# --- metrics (pure) ---------------------------------------------------------------------------------


def lines_exact(read: Sequence[str] | None, truth: Sequence[str]) -> bool:
    """All MRZ lines equal (whitespace removed, upper case), same number of lines."""
    if not read:
        return False
    norm = lambda ls: tuple("".join(x.split()).upper() for x in ls)  # noqa: E731
    return norm(read) == norm(truth)


def field_matches(read: dict[str, str] | None, truth: dict[str, str]) -> dict[str, bool]:
    """Per field of FIELDS: the reader's normalised value equals the ground truth (False when nothing was read)."""
    read_n = normalise_fields(read) if read else None
    truth_n = normalise_fields(truth)
    return {k: bool(read_n is not None and read_n[k] == truth_n[k]) for k in FIELDS}


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _pct(values: Iterable[float], q: float) -> float | None:
    v = list(values)
    return round(float(np.percentile(v, q)), 3) if v else None


def reader_figures(images: Sequence[DocImage], results: Sequence[dict]) -> dict[str, Any]:
    """Accuracy and validity figures of one reader from its per-image results (same order as images)."""
    gt = [(img, r) for img, r in zip(images, results) if img.has_gt]
    with_mrz = [(img, r) for img, r in zip(images, results) if not img.negative]
    neg = [(img, r) for img, r in zip(images, results) if img.negative]

    exact = sum(lines_exact(r.get("lines"), img.gt_lines) for img, r in gt)
    exact_as_read = sum(lines_exact(r.get("lines_as_read"), img.gt_lines) for img, r in gt)
    per_field = {k: 0 for k in FIELDS}
    for img, r in gt:
        for k, ok in field_matches(r.get("fields"), img.gt_fields).items():
            per_field[k] += ok
    read = sum(r["status"] == "read" for _, r in with_mrz)
    valid = sum(r["status"] == "read" and bool(r.get("valid")) for _, r in with_mrz)
    out: dict[str, Any] = {
        "gt_rows": len(gt),
        "gt_lines_exact": exact,
        "gt_lines_exact_rate": _rate(exact, len(gt)),
        "gt_lines_exact_as_read": exact_as_read,
        "gt_field_accuracy": _rate(sum(per_field.values()), len(gt) * len(FIELDS)),
        "gt_field_accuracy_per_field": {k: _rate(v, len(gt)) for k, v in per_field.items()},
        "with_mrz": len(with_mrz),
        "read": read,
        "read_rate": _rate(read, len(with_mrz)),
        "valid": valid,
        "valid_rate": _rate(valid, len(with_mrz)),
        "errors": sum(r["status"] == "error" for r in results),
        "negatives": len(neg),
        "negatives_no_mrz": sum(r["status"] == "no_mrz" for _, r in neg),
        "negatives_no_mrz_rate": _rate(sum(r["status"] == "no_mrz" for _, r in neg), len(neg)),
    }
    if any("valid_score" in r for r in results):
        v100 = sum(r.get("valid_score") == 100 for _, r in with_mrz)
        out |= {"valid_score_100": v100, "valid_score_100_rate": _rate(v100, len(with_mrz))}
    return out


def speed_figures(res: dict) -> dict[str, Any]:
    secs = [r["seconds"] for r in res["images"]]
    return {
        "images": len(secs),
        "p50_s": _pct(secs, 50),
        "p95_s": _pct(secs, 95),
        "mean_s": round(float(np.mean(secs)), 3) if secs else None,
        "total_s": round(float(np.sum(secs)), 2),
        "peak_rss_mib": round(res["peak_rss_kib"] / 1024, 1),
        "child_peak_rss_mib": round(res["child_peak_rss_kib"] / 1024, 1) if res.get("child_peak_rss_kib") else None,
        "load_s": res.get("load_s"),
        "warmup_s": res.get("warmup_s"),
        "version": res.get("version"),
        "other_cpu_load_cores": res.get("other_cpu_load_cores"),
        "timings_contended": None if res.get("other_cpu_load_cores") is None else bool(res["other_cpu_load_cores"] > CONTENTION_CORES),
    }


CONTENTION_CORES = 0.25


def image_detail(img: DocImage, r: dict) -> dict[str, Any]:
    """What the per-image list may show: flags and check names; lines and fields only for ground-truth
    rows (ICAO specimens), never for other images."""
    d: dict[str, Any] = {
        "status": r["status"],
        "read_ok": r["status"] == "read",
        "valid": bool(r.get("valid")) if r["status"] == "read" else None,
        "failed_checks": r.get("failed_checks", []) if r["status"] == "read" else None,
        "format": r.get("format"),
        "seconds": r["seconds"],
    }
    if "valid_score" in r:
        d["valid_score"] = r["valid_score"]
    if r.get("attempts") is not None:
        d["attempts"] = r["attempts"]  # idproof's OCR passes
    if r.get("repaired"):
        d["repaired"] = r["repaired"]  # field names only
    if r.get("error"):
        d["error"] = r["error"]
    if img.has_gt:
        matches = field_matches(r.get("fields"), img.gt_fields)
        d |= {
            "lines_exact": lines_exact(r.get("lines"), img.gt_lines),
            "lines_exact_as_read": lines_exact(r.get("lines_as_read"), img.gt_lines),
            "fields_correct": sum(matches.values()),
            "fields_wrong": [k for k, ok in matches.items() if not ok],
            "lines": r.get("lines"),
        }
    return d


# --- workers ----------------------------------------------------------------------------------------


def reader_available(reader: str) -> bool:
    mod = "idproof.document.mrz_image" if reader == OURS else "passporteye"
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def run_reader(reader: str, paths: list[str], tmp: Path, bar=None) -> dict:
    """One reader in a fresh interpreter; returns its result dict (see idproof.bench._documents_worker)."""
    return run_worker("idproof.bench._documents_worker", reader, {"reader": reader, "images": paths}, tmp, bar)


# --- the bench --------------------------------------------------------------------------------------


def run(
    data: str | os.PathLike, *, limit: int | None = None, only: str | None = None, progress: bool = False, verbose: bool = False
) -> dict:
    """Run the document bench; returns the result dict (the `--json` object). With ``progress`` it also
    shows a progress bar and prints the human tables (``verbose``: and the per-image table)."""
    from idproof.errors import IdproofError

    data = Path(data)
    if not (data / "images").is_dir():
        raise IdproofError(f"No images folder at {data / 'images'}.", fix="Pass --data DIR with images/ and expected.csv (or set IDPROOF_DATA).")
    if only is not None and only not in READERS:
        raise IdproofError(f"Unknown reader {only!r}.", fix=f"Choose --only from {', '.join(READERS)}.")
    all_images = read_images(data)
    images = select_images(all_images, limit)
    wanted = [only] if only else list(READERS)
    notes: list[str] = []
    readers = []
    for r in wanted:
        if reader_available(r):
            readers.append(r)
        else:
            what = "idproof.document.mrz_image is not importable" if r == OURS else "passporteye is not installed (requirements/bench-peer.txt)"
            notes.append(f"WARNING: {r} skipped: {what}.")

    paths = [i.path for i in images]
    raw: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="idproof-bench-docs-") as tmp:
        if progress and readers:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            cols = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
            with Progress(*cols, console=Console(stderr=True)) as bar:
                tasks = {r: bar.add_task(r, total=len(paths), start=False) for r in readers}
                for r in readers:  # one after another: timings must not compete for the cores
                    bar.start_task(tasks[r])
                    raw[r] = run_reader(r, paths, Path(tmp), lambda d, n, t=tasks[r]: bar.update(t, completed=d, total=n))
        else:
            for r in readers:
                raw[r] = run_reader(r, paths, Path(tmp))

    figures = {r: reader_figures(images, raw[r]["images"]) | speed_figures(raw[r]) for r in readers}
    per_image = []
    for k, img in enumerate(images):
        row: dict[str, Any] = {"file": img.file, "ground_truth": img.has_gt, "negative": img.negative, "pe_recorded_score": img.pe_recorded_score}
        if img.has_gt:
            row["expected_lines"] = list(img.gt_lines)
        for r in readers:
            row[r] = image_detail(img, raw[r]["images"][k])
        per_image.append(row)

    ratios: dict[str, Any] = {}
    if OURS in figures and PEER in figures:
        o, p = figures[OURS], figures[PEER]
        diff = lambda k: None if o[k] is None or p[k] is None else round(o[k] - p[k], 4)  # noqa: E731
        div = lambda a, b: None if not a or not b else round(a / b, 3)  # noqa: E731
        ratios = {
            "valid_rate_diff": diff("valid_rate"),
            "read_rate_diff": diff("read_rate"),
            "gt_lines_exact_rate_diff": diff("gt_lines_exact_rate"),
            "gt_field_accuracy_diff": diff("gt_field_accuracy"),
            "negatives_no_mrz_rate_diff": diff("negatives_no_mrz_rate"),
            "speedup_p50": div(p["p50_s"], o["p50_s"]),  # > 1: idproof is faster
            "speedup_p95": div(p["p95_s"], o["p95_s"]),
            "peak_rss_ratio": div(o["peak_rss_mib"] + (o["child_peak_rss_mib"] or 0), p["peak_rss_mib"] + (p["child_peak_rss_mib"] or 0)),  # < 1: idproof smaller
        }
    # PassportEye's author-recorded score vs what it scores here (pe_testdata images)
    if PEER in raw:
        pe_rows = [(img, r) for img, r in zip(images, raw[PEER]["images"]) if img.pe_recorded_score is not None]
        if pe_rows:
            same = sum((r.get("valid_score") or 0) == img.pe_recorded_score for img, r in pe_rows)
            figures[PEER]["pe_testdata_images"] = len(pe_rows)
            figures[PEER]["pe_testdata_score_as_recorded"] = same
            figures[PEER]["pe_testdata_recorded_100"] = sum(img.pe_recorded_score == 100 for img, _ in pe_rows)

    notes += [
        "Each reader ran in its own subprocess, one after another, over the same images; one warm-up read first "
        "(imports, model and Tesseract start-up are excluded from the per-image times, reported as load_s / warmup_s). "
        f"OMP_NUM_THREADS={threads()} for both.",
        "seconds per image include decoding the file. peak_rss_mib = the worker's own peak (VmHWM); "
        "child_peak_rss_mib = the largest child process (Tesseract) seen during the untimed warm-up read(s), sampled from /proc; "
        "null when none ran then (idproof calls Tesseract only as a fallback). peak_rss_ratio adds the two.",
        "valid = every check digit the format defines passed (idproof: MrzResult.valid, after its check-digit repair; "
        "PassportEye: all valid_check_digits). PassportEye's valid_score == 100 also requires exact line lengths.",
        "lines exact = every MRZ line equal to the ICAO specimen text: idproof's lines with its repairs written back "
        "(lines_exact_as_read: before repair), PassportEye's lines after its OCR clean-up. Fields are compared "
        "normalised ('<' as space, spaces collapsed).",
        "Only ground-truth rows (ICAO specimens, fictional people) show MRZ lines; other images show counts and check names only.",
    ]
    if limit is not None and limit < len(all_images):
        notes.append(f"--limit {limit}: a quick mixed sample (ground-truth rows, negatives and others in turn), not the full folder.")
    for r in readers:
        if figures[r]["timings_contended"]:
            notes.insert(0, f"WARNING: while the {r} worker ran, other processes kept {figures[r]['other_cpu_load_cores']:.2f} "
                            "cores busy on average: its timings are inflated. Re-run on an idle machine.")  # fmt: skip

    result = {
        "bench": "documents",
        "data": str(data),
        "limit": limit,
        "only": only,
        "counts": {
            "images": len(images),
            "ground_truth": sum(i.has_gt for i in images),
            "with_mrz": sum(not i.negative for i in images),
            "negatives": sum(i.negative for i in images),
            "pe_testdata": sum(i.pe_recorded_score is not None for i in images),
        },
        "fields": list(FIELDS),
        # the shape every idproof bench shares (../shared/DESIGN.md): ours, then the peers
        "idproof": figures.get(OURS),
        "peers": {r: f for r, f in figures.items() if r != OURS},
        "ratios": ratios,
        "images": per_image,
        "notes": notes,
    }
    if progress:
        print_human(result, verbose=verbose)
    return result


# --- human output -----------------------------------------------------------------------------------


def _p(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _n(a: int | None, b: int | None) -> str:
    return "—" if a is None or not b else f"{a}/{b}"


def print_human(result: dict, verbose: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    c = result["counts"]
    title = (f"idproof bench documents — {c['images']} images ({c['ground_truth']} with exact MRZ ground truth, "
             f"{c['with_mrz']} with an MRZ, {c['negatives']} negative)")  # fmt: skip
    figs = ({OURS: result["idproof"]} if result["idproof"] else {}) | result["peers"]
    t = Table(title=title, title_justify="left")
    for col in ("reader", "GT lines\nexact", "GT field\naccuracy", "read\n(MRZ images)", "all checks\nvalid", "PE score\n= 100",
                "negative:\nno MRZ", "p50 s", "p95 s", "peak RSS MiB\n(+child)", "errors"):  # fmt: skip
        t.add_column(col, justify="left" if col == "reader" else "right")
    for name, f in figs.items():
        label = name + (" (peer)" if name == PEER else "") + (f"\n{f['version']}" if f.get("version") else "")
        t.add_row(
            label,
            f"{_n(f['gt_lines_exact'], f['gt_rows'])}\n{_p(f['gt_lines_exact_rate'])}",
            _p(f["gt_field_accuracy"]),
            f"{_n(f['read'], f['with_mrz'])}\n{_p(f['read_rate'])}",
            f"{_n(f['valid'], f['with_mrz'])}\n{_p(f['valid_rate'])}",
            f"{_n(f['valid_score_100'], f['with_mrz'])}" if "valid_score_100" in f else "—",
            _n(f["negatives_no_mrz"], f["negatives"]),
            "—" if f["p50_s"] is None else f"{f['p50_s']:.3f}",
            "—" if f["p95_s"] is None else f"{f['p95_s']:.3f}",
            f"{f['peak_rss_mib']:.0f}" + (f" (+{f['child_peak_rss_mib']:.0f})" if f.get("child_peak_rss_mib") else ""),
            str(f["errors"]),
        )
    console.print(t)

    if figs:
        pf = Table(title="per-field accuracy on the ground-truth rows", title_justify="left")
        pf.add_column("field")
        for name in figs:
            pf.add_column(name, justify="right")
        for k in result["fields"]:
            pf.add_row(k, *(_p(f["gt_field_accuracy_per_field"][k]) for f in figs.values()))
        console.print(pf)

    r = result["ratios"]
    if r:
        sp = r["speedup_p50"]
        console.print(
            f"[bold]idproof vs PassportEye[/bold]: all-checks-valid share {_signed(r['valid_rate_diff'])}, "
            f"read share {_signed(r['read_rate_diff'])}, GT lines exact {_signed(r['gt_lines_exact_rate_diff'])}, "
            f"GT field accuracy {_signed(r['gt_field_accuracy_diff'])}; speed p50 "
            + ("—" if sp is None else f"{sp:.2f}x {'faster' if sp >= 1 else 'slower'}")
            + ("" if r["speedup_p95"] is None else f" (p95 {r['speedup_p95']:.2f}x)")
            + ("" if r["peak_rss_ratio"] is None else f"; peak RSS {r['peak_rss_ratio']:.2f}x PassportEye's (worker + Tesseract child)")
        )
    if PEER in figs and "pe_testdata_images" in figs[PEER]:
        f = figs[PEER]
        console.print(f"PassportEye on its own test images: score here equals the author's recorded score on "
                      f"{f['pe_testdata_score_as_recorded']}/{f['pe_testdata_images']} (recorded 100 on {f['pe_testdata_recorded_100']}).")  # fmt: skip

    if verbose and figs:
        per = Table(title="per image (no MRZ text shown)", title_justify="left")
        per.add_column("file")
        per.add_column("kind")
        for name in figs:
            per.add_column(name)
        for row in result["images"]:
            kind = "GT" if row["ground_truth"] else ("negative" if row["negative"] else "")
            if row["pe_recorded_score"] is not None:
                kind = f"PE recorded {row['pe_recorded_score']}"
            per.add_row(row["file"], kind, *(_cell(row[n]) for n in figs))
        console.print(per)

    for n in result["notes"]:
        console.print(f"[yellow]- {n}[/yellow]" if n.startswith("WARNING") else f"[dim]- {n}[/dim]")


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.1f} pts"


def _cell(d: dict) -> str:
    if d["status"] != "read":
        return f"{d['status']}{' ' + d['error'] if d.get('error') else ''} ({d['seconds']:.2f}s)"
    s = ("valid" if d["valid"] else "fails " + ",".join(d["failed_checks"])) + f" {d['format']}"
    if "valid_score" in d:
        s += f" score {d['valid_score']}"
    if "lines_exact" in d:
        s += f" | lines {'exact' if d['lines_exact'] else 'differ'}, fields {d['fields_correct']}/{len(FIELDS)}"
    return s + f" ({d['seconds']:.2f}s)"
