"""`idproof bench faces`: accuracy, error rates, speed and memory of every face pipeline, peer included.

Every pipeline (idproof "fast", idproof "accurate", the face_recognition peer) runs in its own
subprocess (``idproof.bench._worker``), one after another, over the same images: each image once,
per-stage times recorded, then the listed pairs scored from the templates held in that process.
Only scores and timings come back; no template is written anywhere.

Accuracy is LFW-protocol style: a best-accuracy threshold is fitted on one fold and measured on the
other, both ways, averaged (2-fold cross-validation). LFW rows use the official View-2 folds 1 and 2
(checked against the data); other rows a seeded identity-disjoint split. A pair with an image in which
no face was found counts as an error.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from idproof.bench._subprocess import run_worker, threads

PEER = "face_recognition"
FAST, DLIB, FUSED = "arcface_fp", "dlib_resnet", "fused:arcface_fp+dlib_resnet"
CANDIDATES = (FAST, DLIB, FUSED)
LFW_FOLD_SIZE = 600  # pairs per official View-2 fold: 300 genuine + 300 impostor
FMRS = (1e-2, 1e-3)
GOAL_LFW_ACCURACY = 0.993
GOAL_SPEEDUP = 2.0
SEED = 0


# --- pairs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    rel_a: str
    rel_b: str
    a: str  # absolute paths
    b: str
    same: bool
    lfw: bool
    fold: int  # 0 / 1 for the 2-fold cross-validation; -1 = crosses the identity split, left out of it


def read_rows(pairs_csv: Path) -> tuple[list[Row], dict[str, Any]]:
    """All rows of the pairs file with their cross-validation fold, and how the folds were made."""
    from idproof.face.calibrate import read_pairs_csv, split_pairs, identity_of

    pairs = read_pairs_csv(pairs_csv)  # validates and resolves; same order as the file
    with Path(pairs_csv).open(newline="", encoding="utf-8-sig") as f:
        rel = [(r["img_a"].strip(), r["img_b"].strip()) for r in csv.DictReader(f)]
    is_lfw = [ra.startswith("lfw/") and rb.startswith("lfw/") for ra, rb in rel]
    lfw_idx = [k for k, x in enumerate(is_lfw) if x]
    folds = [-1] * len(pairs)
    info: dict[str, Any] = {}

    # LFW rows: official View-2 folds 1 and 2 = the first and the next 600 LFW rows. Check that claim.
    folded_lfw: list[int] = []
    if len(lfw_idx) >= 2 * LFW_FOLD_SIZE:
        parts = [lfw_idx[:LFW_FOLD_SIZE], lfw_idx[LFW_FOLD_SIZE : 2 * LFW_FOLD_SIZE]]
        ids = [{identity_of(p) for k in part for p in pairs[k][:2]} for part in parts]
        balanced = all(sum(pairs[k][2] for k in part) == LFW_FOLD_SIZE // 2 for part in parts)
        if balanced and not ids[0] & ids[1]:
            for fold, part in enumerate(parts):
                for k in part:
                    folds[k] = fold
            folded_lfw = parts[0] + parts[1]
            info["lfw"] = "official View-2 folds 1 and 2 (first/next 600 LFW rows; verified 300+300 each, identity-disjoint)"
    if not folded_lfw and lfw_idx:
        info["lfw"] = "LFW rows do not form the two official folds; they join the identity-disjoint split"

    # Every other row: a seeded identity-disjoint split in two halves.
    in_lfw_folds = set(folded_lfw)
    rest = [k for k in range(len(pairs)) if k not in in_lfw_folds]
    if rest:
        split = split_pairs([pairs[k] for k in rest], held_out_fraction=0.5, seed=SEED)
        side = {id(p): 0 for p in split.fit} | {id(p): 1 for p in split.held}
        for k in rest:
            folds[k] = side.get(id(pairs[k]), -1)
        info["other"] = (
            f"identity-disjoint split of the {len(rest)} other rows (calibrate.split_pairs, 0.5, seed {SEED}); "
            f"{len(split.dropped)} impostor pairs that cross it are left out of the cross-validation"
        )
    rows = [Row(ra, rb, a, b, same, lfw, fold) for (ra, rb), (a, b, same), lfw, fold in zip(rel, pairs, is_lfw, folds)]
    return rows, info


def select_rows(rows: list[Row], subset: str | None, limit: int | None) -> list[Row]:
    """Rows whose both paths start with ``subset``; with ``limit``, a balanced sample of N rows: the first
    rows (file order) of each fold × genuine/impostor group in turn, so every fold has both kinds."""
    if subset:
        rows = [r for r in rows if r.rel_a.startswith(subset) and r.rel_b.startswith(subset)]
    if limit is None or limit >= len(rows):
        return rows
    groups: dict[tuple[int, bool], list[int]] = {}
    for k, r in enumerate(rows):
        groups.setdefault((r.fold, not r.same), []).append(k)
    # rows in a fold first, round robin over fold x genuine/impostor; rows outside the folds only if short
    folded = [groups[g] for g in sorted(groups) if g[0] >= 0]
    outside = [groups[g] for g in sorted(groups) if g[0] < 0]
    chosen: list[int] = []
    while len(chosen) < limit:
        for q in [q for q in folded if q] or [q for q in outside if q]:
            if len(chosen) < limit:
                chosen.append(q.pop(0))
    return [rows[k] for k in sorted(chosen)]


# --- workers ----------------------------------------------------------------------------------------


def _run_worker(pipeline: str, images: list[str], pairs: list[list[int]], tmp: Path, bar=None) -> dict:
    """One pipeline in a fresh interpreter; returns its result dict (see idproof.bench._worker)."""
    job = {"pipeline": pipeline, "images": images, "pairs": pairs}
    return run_worker("idproof.bench._worker", pipeline, job, tmp, bar)


# --- figures ----------------------------------------------------------------------------------------


def _pct(values: Sequence[float | None], q: float) -> float | None:
    v = [x for x in values if x is not None]
    return round(float(np.percentile(v, q)), 2) if v else None


def _r(x: float | None, nd: int = 5) -> float | None:
    return None if x is None else round(float(x), nd)


def _best_threshold(s: np.ndarray, y: np.ndarray) -> float | None:
    """Threshold with the most pairs right (match iff score >= t): middle of the best plateau of
    candidate thresholds placed between adjacent distinct scores."""
    if s.size == 0:
        return None
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]])
    g, i = np.sort(s[y]), np.sort(s[~y])
    correct = (g.size - np.searchsorted(g, cands, "left")) + np.searchsorted(i, cands, "left")
    best = np.flatnonzero(correct == correct.max())
    return float(cands[best[len(best) // 2]])


def _correct(s: np.ndarray, y: np.ndarray, thr: float) -> np.ndarray:
    """Per pair: decided right at thr. A failed pair (NaN score) is always wrong."""
    ok = np.isfinite(s)
    return ok & ((np.where(ok, s, -np.inf) >= thr) == y)


def cv_accuracy(s: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[float | None, list[float]]:
    """2-fold cross-validated accuracy (mean of the two test folds) and the two fitted thresholds."""
    accs, thrs = [], []
    for fit in (0, 1):
        fit_m, test_m = folds == fit, folds == 1 - fit
        ok = fit_m & np.isfinite(s)
        if not test_m.any() or not ok.any():
            continue
        thr = _best_threshold(s[ok], y[ok])
        accs.append(float(_correct(s[test_m], y[test_m], thr).mean()))
        thrs.append(thr)
    return (float(np.mean(accs)) if len(accs) == 2 else None), thrs


def _shipped(candidate: str):
    """The shipped calibration for the profile whose scorer is this candidate, or None."""
    from idproof.face.compare import PROFILES, scorer_name

    for profile, models in PROFILES.items():
        if scorer_name(models) == candidate:
            try:
                from idproof.calibration import shipped_calibration

                cal = shipped_calibration(profile)
            except Exception:  # noqa: BLE001 - missing or unreadable: no shipped-threshold figures
                return None, profile
            return (cal if cal.model == candidate else None), profile
    return None, None


def accuracy_figures(
    s: np.ndarray, y: np.ndarray, rows: list[Row], image_failed: int, candidate: str | None, *, use_shipped: bool = True
) -> dict:
    from idproof.face import metrics

    folds = np.array([r.fold for r in rows])
    lfw = np.array([r.lfw for r in rows])
    ok = np.isfinite(s)
    gen, imp = s[ok & y], s[ok & ~y]
    out: dict[str, Any] = {
        "detection_failures": image_failed,
        "failed_pairs": int((~ok).sum()),
        "scored_pairs": int(ok.sum()),
        "genuine_scored": int(gen.size),
        "impostor_scored": int(imp.size),
    }
    acc, thrs = cv_accuracy(s, y, folds)
    acc_lfw, _ = cv_accuracy(s[lfw], y[lfw], folds[lfw]) if lfw.any() else (None, [])
    out |= {"accuracy": _r(acc), "accuracy_lfw": _r(acc_lfw), "accuracy_cv_thresholds": [_r(t, 6) for t in thrs],
            "accuracy_cv_pairs": int((folds >= 0).sum())}  # fmt: skip
    if gen.size and imp.size:
        out |= {"eer": _r(metrics.eer(gen, imp)), "roc_auc": _r(metrics.roc_auc(gen, imp))}
        for f in FMRS:
            t = metrics.threshold_for_fmr(imp, f)
            out[f"tar_at_fmr_{f:.0e}".replace("e-0", "e-")] = _r(float(np.mean(gen >= t)))
            out[f"tar_at_fmr_{f:.0e}_supported".replace("e-0", "e-")] = bool(imp.size >= metrics.min_impostors_for(f))
    else:
        out |= {"eer": None, "roc_auc": None}
        for f in FMRS:
            key = f"tar_at_fmr_{f:.0e}".replace("e-0", "e-")
            out[key], out[key + "_supported"] = None, False

    cal, profile = _shipped(candidate) if candidate else (None, None)
    out["profile"] = profile
    if cal is not None and use_shipped:  # (not for fused scores normalized on the bench itself)
        t = cal.threshold_at(cal.default_fmr)
        right = _correct(s, y, t.threshold)
        out |= {
            "accuracy_at_shipped_threshold": _r(right.mean()),
            "accuracy_lfw_at_shipped_threshold": _r(right[lfw].mean()) if lfw.any() else None,
            "shipped_threshold": _r(t.threshold, 6),
            "shipped_threshold_fmr": t.fmr,
            "shipped_threshold_supported": t.supported,
            "shipped_threshold_observed_fmr": _r(float(np.mean(imp >= t.threshold))) if imp.size else None,
            "shipped_calibration": cal.version,
        }
    else:
        out |= {"accuracy_at_shipped_threshold": None, "shipped_threshold": None, "shipped_threshold_fmr": None}
    return out


def speed_figures(res: dict, models: Sequence[str], *, direct_total: bool) -> dict:
    """p50/p95 ms per stage over the images of one worker; align/embed/e2e over images with a face."""
    t = res["timings_ms"]
    n = len(res["failed"])
    col = lambda k: t.get(k, [None] * n)  # noqa: E731
    with_face = [not f for f in res["failed"]]

    def summed(keys: Sequence[str]) -> list[float | None]:
        out = []
        for k in range(n):
            vals = [col(key)[k] for key in keys]
            out.append(None if not with_face[k] or any(v is None for v in vals) else float(sum(vals)))
        return out

    aligns = [f"align:{m}" for m in models if f"align:{m}" in t]
    embeds = [f"embed:{m}" for m in models]
    align = summed(aligns) if aligns else [None] * n
    embed = summed(embeds)
    e2e = [v if w else None for v, w in zip(col("total"), with_face)] if direct_total else summed(["decode", "detect", *aligns, *embeds])
    out = {"images": n}
    for name, vals in (("e2e", e2e), ("decode", col("decode")), ("detect", col("detect")), ("align", align), ("embed", embed)):
        prefix = "" if name == "e2e" else f"{name}_"
        out[f"{prefix}p50_ms"] = _pct(vals, 50)
        out[f"{prefix}p95_ms"] = _pct(vals, 95)
    out |= {
        "peak_rss_mib": round(res["peak_rss_kib"] / 1024, 1),
        "model_load_ms": res["model_load_ms"],
        "worker": res["pipeline"],
        "threads": res["threads"],
        "face_choice": res["face_choice"],
        "images_with_several_faces": int(sum(k > 1 for k in res["faces_found"])),
        "other_cpu_load_cores": res.get("other_cpu_load_cores"),
        "timings_contended": _contended(res),
    }
    return out


CONTENTION_CORES = 0.25  # other processes' average busy cores above which a worker's timings are flagged


def _contended(res: dict) -> bool | None:
    load = res.get("other_cpu_load_cores")
    return None if load is None else bool(load > CONTENTION_CORES)


# --- plot -------------------------------------------------------------------------------------------


def write_plot(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from idproof.face import metrics

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (roc, det) = plt.subplots(1, 2, figsize=(13, 5.5))
    lo, tar_min = 1.0, 1.0
    for name, (gen, imp) in curves.items():
        if not gen.size or not imp.size:
            continue
        _, fmr, fnmr = metrics.roc_points(gen, imp)
        # zero rates are drawn at 0.5/n (a log axis has no 0)
        fmr_f, fnmr_f = 0.5 / imp.size, 0.5 / gen.size
        fmr_c, fnmr_c = np.maximum(fmr, fmr_f), np.maximum(fnmr, fnmr_f)
        label = f"{name} (EER {metrics.eer(gen, imp):.2%})"
        roc.plot(fmr_c, 1 - fnmr, label=label, drawstyle="steps-pre")
        det.plot(fmr_c, fnmr_c, label=label, drawstyle="steps-pre")
        lo, tar_min = min(lo, fmr_f, fnmr_f), min(tar_min, float((1 - fnmr)[fmr > 0].min(initial=1.0)))
    roc.set(xscale="log", xlim=(lo, 1), ylim=(max(0.0, tar_min - 0.02), 1.002), xlabel="FMR (false match rate; 0 drawn at 0.5/n)", ylabel="TAR (true accept rate)", title="ROC")
    det.set(xscale="log", yscale="log", xlim=(lo, 1), ylim=(lo, 1), xlabel="FMR (0 drawn at 0.5/n)", ylabel="FNMR (false non-match rate; 0 drawn at 0.5/n)", title="DET")
    for ax in (roc, det):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is roc else "upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the bench --------------------------------------------------------------------------------------


def run(
    pairs: str | os.PathLike,
    *,
    subset: str | None = None,
    limit: int | None = None,
    plot: str | os.PathLike | None = Path("out/bench-faces.png"),
    with_peers: bool = True,
    progress: bool = False,
) -> dict:
    """Run the face bench; returns the result dict (the `--json` object). With ``progress`` it also
    shows a progress bar and prints the human tables."""
    from idproof.errors import CalibrationError
    from idproof.face.compare import DEFAULT_PROFILE, PROFILES, Scorer, scorer_name

    pairs = Path(pairs)
    all_rows, fold_info = read_rows(pairs)
    rows = select_rows(all_rows, subset, limit)
    if not rows:
        raise CalibrationError(f"No pairs in {pairs} match subset {subset!r}.", fix="Check --subset (e.g. lfw).")
    images = list(dict.fromkeys(p for r in rows for p in (r.a, r.b)))
    index = {p: k for k, p in enumerate(images)}
    pair_idx = [[index[r.a], index[r.b]] for r in rows]
    y = np.array([r.same for r in rows])

    pipelines = ["idproof-fast", "idproof-accurate"] + ([PEER] if with_peers else [])
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="idproof-bench-") as tmp:
        if progress:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            cols = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
            with Progress(*cols, console=Console(stderr=True)) as bar:
                tasks = {p: bar.add_task(p, total=len(images), start=False) for p in pipelines}
                for p in pipelines:  # one after another: timings must not compete for the cores
                    bar.start_task(tasks[p])
                    results[p] = _run_worker(p, images, pair_idx, Path(tmp), lambda d, n, t=tasks[p]: bar.update(t, completed=d, total=n))
        else:
            for p in pipelines:
                results[p] = _run_worker(p, images, pair_idx, Path(tmp))

    notes: list[str] = []
    scores = {
        FAST: np.array(results["idproof-fast"]["scores"][FAST], dtype=float),
        DLIB: np.array(results["idproof-accurate"]["scores"][DLIB], dtype=float),
    }
    acc_scores = {m: np.array(results["idproof-accurate"]["scores"][m], dtype=float) for m in (FAST, DLIB)}

    # Fusion exactly as the "accurate" profile scores: z-scores against the shipped calibration's impostor stats.
    fused_models = PROFILES["accurate"]
    assert scorer_name(fused_models) == FUSED
    cal, _ = _shipped(FUSED)
    ok = np.isfinite(acc_scores[FAST]) & np.isfinite(acc_scores[DLIB])
    if cal is not None and set(fused_models) <= set(cal.normalization):
        scorer = Scorer(fused_models, cal.normalization, cal.fusion_weights)
        fused_calibrated = True
        notes.append(f"{FUSED}: z-score normalization and weights {cal.fusion_weights} from the shipped calibration {cal.version}.")
    else:
        imp_ok = ok & ~y
        norm = {m: {"mean": float(acc_scores[m][imp_ok].mean()), "std": float(acc_scores[m][imp_ok].std())} for m in fused_models} if imp_ok.any() else {m: {"mean": 0.0, "std": 1.0} for m in fused_models}  # fmt: skip
        scorer = Scorer(fused_models, norm, {m: 0.5 for m in fused_models})
        fused_calibrated = False
        notes.append(f"{FUSED} is UNCALIBRATED: no shipped calibration-accurate.json, so its normalization (impostor mean/std) "
                     "and weights (0.5/0.5) were fitted on this bench's own pairs (in-sample).")  # fmt: skip
    scores[FUSED] = scorer.combine({m: acc_scores[m] for m in fused_models})  # NaN where either model failed

    def failed_images(res: dict) -> int:
        return int(sum(res["failed"]))

    cand: dict[str, dict] = {}
    sources = {FAST: ("idproof-fast", (FAST,), True), DLIB: ("idproof-accurate", (DLIB,), False), FUSED: ("idproof-accurate", fused_models, True)}
    for name, (worker, models, direct) in sources.items():
        res = results[worker]
        cand[name] = {"models": list(models)} | accuracy_figures(scores[name], y, rows, failed_images(res), name, use_shipped=name != FUSED or fused_calibrated) | speed_figures(res, models, direct_total=direct)
    cand[FUSED]["calibrated"] = fused_calibrated
    peers: dict[str, dict] = {}
    if with_peers:
        res = results[PEER]
        s = np.array(res["scores"][PEER], dtype=float)
        scores[PEER] = s
        peers[PEER] = {"models": ["dlib HOG detector", "dlib 5-point predictor", "dlib ResNet"]} | accuracy_figures(s, y, rows, failed_images(res), None) | speed_figures(res, (PEER,), direct_total=True)  # fmt: skip
        peers[PEER]["align_p50_ms"] = peers[PEER]["align_p95_ms"] = None  # inside face_encodings, not separable

    # --- ratios and goals
    ratios: dict[str, dict] = {"speedup_vs_face_recognition": {}, "speedup_p95_vs_face_recognition": {}}
    goals: dict[str, dict] = {f"lfw_accuracy_ge_{GOAL_LFW_ACCURACY}": {}, "speedup_ge_2_at_equal_or_better_accuracy": {}}
    peer = peers.get(PEER)
    for name, c in list(cand.items()) + list(peers.items()):
        goals[f"lfw_accuracy_ge_{GOAL_LFW_ACCURACY}"][name] = c["accuracy_lfw"] is not None and c["accuracy_lfw"] >= GOAL_LFW_ACCURACY
    for name, c in cand.items():
        if peer and c["p50_ms"] and peer["p50_ms"]:
            ratios["speedup_vs_face_recognition"][name] = round(peer["p50_ms"] / c["p50_ms"], 3)
            ratios["speedup_p95_vs_face_recognition"][name] = round(peer["p95_ms"] / c["p95_ms"], 3)
            at_least_as_accurate = c["accuracy"] is not None and peer["accuracy"] is not None and c["accuracy"] >= peer["accuracy"]
            goals["speedup_ge_2_at_equal_or_better_accuracy"][name] = bool(ratios["speedup_vs_face_recognition"][name] >= GOAL_SPEEDUP and at_least_as_accurate)
        else:
            goals["speedup_ge_2_at_equal_or_better_accuracy"][name] = None

    # --- plot
    plot_path = None
    if plot:
        plot_path = Path(plot)
        curves = {n: (scores[n][np.isfinite(scores[n]) & y], scores[n][np.isfinite(scores[n]) & ~y]) for n in (*CANDIDATES, *peers)}
        write_plot(plot_path, curves, f"{pairs.name}{' subset ' + subset if subset else ''}: {len(rows)} pairs "
                   f"({int(y.sum())} genuine, {int((~y).sum())} impostor), {len(images)} images")  # fmt: skip

    n_imp = int((~y).sum())
    from idproof.face import metrics

    need = metrics.min_impostors_for(1e-3)
    notes += [
        "Model load time is excluded from every timing (reported as model_load_ms); each pipeline ran one warm-up image first.",
        f"Each pipeline ran in its own subprocess, one after another, with IDPROOF_THREADS=OMP_NUM_THREADS={threads()} "
        "(ONNX Runtime's intra-op threads); dlib (dlib_resnet, face_recognition) is single-threaded. "
        "peak_rss_mib = that process's peak resident memory (VmHWM: interpreter, imports, models, images).",
        "Per image, once per pipeline: e2e = decode + detect + align + embed, p50/p95 over images where a face was found; "
        "detect (incl. face choice) over all images. idproof's quality gate (face mesh) is not part of these pipelines.",
        f"{DLIB} figures come from the idproof-accurate worker (detect once, both models): its e2e = decode + detect + dlib align + "
        "dlib embed; its peak RSS is that worker's (both models loaded), an upper bound.",
        f"idproof face choice: {results['idproof-accurate']['face_choice']}.",
        *(
            [f"face_recognition peer: load_image_file, face_locations (HOG, upsample 1), face_encodings; face choice: "
             f"{results[PEER]['face_choice']}; similarity = 1 - face_distance. Its embed time includes its alignment (align null)."]
            if PEER in results else []
        ),
        "accuracy: 2-fold cross-validation (best-accuracy threshold fitted on one fold, measured on the other, both ways, "
        "averaged); a pair with a failed image counts as an error. " + " ".join(f"{k}: {v}." for k, v in fold_info.items()),
        f"EER / AUC / TAR on the scored pairs only (failed pairs excluded). {n_imp} impostor pairs: TAR at FMR 1e-3 "
        + ("is supported." if n_imp >= need else f"is NOT supported (needs >= {need}); the number is printed anyway."),
        "Templates stayed in each worker's memory; only scores and timings were written (to a temporary folder, then deleted).",
    ]
    notes[:0] = [
        f"WARNING: while the {p} worker ran, other processes kept {res['other_cpu_load_cores']:.2f} of "
        f"{res.get('cpu_count')} cores busy on average: its timings (and speedups using them) are inflated. "
        "Re-run on an idle machine."
        for p, res in results.items()
        if _contended(res)
    ]
    used = {c.version: c for c in (_shipped(n)[0] for n in CANDIDATES) if c is not None}
    for c in used.values():
        notes.append(f"Shipped calibration {c.version} ({c.model}) was fitted on {c.pairs_source!r}: where that overlaps "
                     "these pairs, accuracy at the shipped threshold is partly in-sample.")  # fmt: skip
    if limit is not None and limit < len(select_rows(all_rows, subset, None)):
        notes.append(f"--limit {limit}: a balanced quick sample (first rows of each fold x genuine/impostor group), not the full file.")

    default = scorer_name(PROFILES[DEFAULT_PROFILE])
    counts = {
        "pairs": len(rows), "genuine": int(y.sum()), "impostor": n_imp, "images": len(images),
        "lfw_pairs": int(sum(r.lfw for r in rows)),
        "cv_fold_pairs": [int(sum(r.fold == f for r in rows)) for f in (0, 1)],
        "cv_excluded_pairs": int(sum(r.fold < 0 for r in rows)),
    }  # fmt: skip
    result = {
        "bench": "faces",
        "data": str(pairs),
        "subset": subset,
        "limit": limit,
        "counts": counts,
        "idproof": {"profile": DEFAULT_PROFILE, "candidate": default} | cand[default],
        "candidates": cand,
        "peers": peers,
        "ratios": ratios,
        "goals": goals,
        "plot": str(plot_path) if plot_path else None,
        "notes": notes,
    }
    if progress:
        print_human(result)
    return result


# --- human output -----------------------------------------------------------------------------------


def _f(x: Any, kind: str = "pct") -> str:
    if x is None:
        return "—"
    if kind == "pct":
        return f"{x * 100:.2f}%"
    if kind == "ms":
        return f"{x:.1f}"
    return str(x)


def print_human(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    rows = [(n, c, "") for n, c in result["candidates"].items()] + [(n, c, " (peer)") for n, c in result["peers"].items()]
    c = result["counts"]
    title = (f"idproof bench faces — {c['pairs']} pairs ({c['genuine']} genuine / {c['impostor']} impostor, "
             f"{c['lfw_pairs']} LFW), {c['images']} images")  # fmt: skip

    acc = Table(title=title + " — accuracy", title_justify="left")
    for col in ("pipeline", "no face\n(images)", "failed\npairs", "accuracy\n(2-fold CV)", "accuracy\nLFW", "acc @ shipped\nthreshold",
                "EER", "TAR @\nFMR 1e-2", "TAR @\nFMR 1e-3", "ROC AUC"):  # fmt: skip
        acc.add_column(col, justify="left" if col == "pipeline" else "right")
    for name, f, tag in rows:
        shipped = _f(f.get("accuracy_at_shipped_threshold"))
        if f.get("shipped_threshold_fmr"):
            shipped += f"\n(FMR {f['shipped_threshold_fmr']:g})"
        tar3 = _f(f.get("tar_at_fmr_1e-3")) + ("" if f.get("tar_at_fmr_1e-3_supported") else "*")
        tar2 = _f(f.get("tar_at_fmr_1e-2")) + ("" if f.get("tar_at_fmr_1e-2_supported") else "*")
        label = name + tag + (" (uncalibrated)" if f.get("calibrated") is False else "")
        acc.add_row(label, str(f["detection_failures"]), str(f["failed_pairs"]), _f(f["accuracy"]), _f(f["accuracy_lfw"]),
                    shipped, _f(f["eer"]), tar2, tar3, f"{f['roc_auc']:.4f}" if f["roc_auc"] is not None else "—")  # fmt: skip
    console.print(acc)

    speed = Table(title="speed — ms per image, p50 / p95 (model load excluded)", title_justify="left")
    for col in ("pipeline", "decode", "detect", "align", "embed", "end to end", "peak RSS\nMiB", "speedup vs\nface_recognition"):
        speed.add_column(col, justify="left" if col == "pipeline" else "right")
    ratios = result["ratios"]["speedup_vs_face_recognition"]
    for name, f, tag in rows:
        pp = lambda k: f"{_f(f[k + 'p50_ms'], 'ms')} / {_f(f[k + 'p95_ms'], 'ms')}"  # noqa: E731
        speed.add_row(name + tag, pp("decode_"), pp("detect_"), pp("align_"), pp("embed_"), pp(""), f"{f['peak_rss_mib']:.0f}",
                      f"{ratios[name]:.2f}x" if name in ratios else "—")  # fmt: skip
    console.print(speed)

    console.print("[bold]Goals[/bold]")
    for goal, per in result["goals"].items():
        marks = ", ".join(f"{n} {'[green]yes[/green]' if v else ('[red]no[/red]' if v is not None else '—')}" for n, v in per.items())
        console.print(f"  {goal}: {marks}")
    console.print(f"  idproof default profile {result['idproof']['profile']!r} = {result['idproof']['candidate']}")
    console.print("* TAR at an FMR the impostor count cannot support (rule of three); shown anyway.")
    for n in result["notes"]:
        console.print(f"[yellow]- {n}[/yellow]" if n.startswith("WARNING") else f"[dim]- {n}[/dim]")
    if result["plot"]:
        console.print(f"ROC/DET plot: {result['plot']}")
