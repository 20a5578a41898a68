"""`idproof calibrate`: score labelled pairs with the real engine, fit thresholds, check them on held-back pairs."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from idproof.face import calibrate as cal
from idproof.face import metrics
from idproof.face.compare import PROFILES, Scorer, scorer_name
from idproof.face.engine import FaceEngine
from idproof.face.pairs import Pair, analyze_images, cross_identity_impostors, read_identities, score_pairs


def _fusion_weights(fit_scores: dict[str, np.ndarray], labels: np.ndarray, norm: dict) -> dict[str, float]:
    """Weight of the first model in a two-model z-score sum, chosen on the fit split by TAR at FMR 1e-3
    (EER breaks ties). Coarse grid on purpose: finer weights would only fit noise."""
    a, b = models = tuple(fit_scores)
    best = None
    for w in np.linspace(0, 1, 11):
        s = Scorer(models, norm, {a: w, b: 1 - w}).combine(fit_scores)
        key = (metrics.tar_at_fmr(s[labels], s[~labels], 1e-3) or 0.0, -metrics.eer(s[labels], s[~labels]))
        if best is None or key > best[0]:
            best = (key, float(w))
    return {a: round(best[1], 2), b: round(1 - best[1], 2)}


def run_calibration(
    pairs_csv: Path,
    *,
    profile: str,
    identities: Path | None,
    held_out: float,
    max_impostors: int,
    out: Path,
    echo: Callable[[str], None] = print,
) -> dict:
    models = PROFILES[profile]
    pairs: list[Pair] = cal.read_pairs_csv(pairs_csv)
    source = str(pairs_csv)
    if identities:
        ids = read_identities(identities)
        by_id: dict[str, list[str]] = {}
        for img, who in ids.items():
            by_id.setdefault(who, []).append(img)
        genuine = [(a, b, True) for imgs in by_id.values() for a, b in itertools.combinations(sorted(imgs), 2)]
        pairs = list(dict.fromkeys(pairs + genuine + cross_identity_impostors(ids, ids, limit=max_impostors)))
        source += f" + all pairs of {identities}"
    fit_pairs, held_pairs = cal.split_pairs(pairs, held_out_fraction=held_out, seed=0)[:2]

    # The quality gate is not enforced in calibration (see analyze_images), so skip its face mesh.
    engine = FaceEngine(profile, check_quality=False)
    images = [p for a, b, _ in fit_pairs + held_pairs for p in (a, b)]
    n_images = len(dict.fromkeys(images))
    done = 0

    def progress(path, sample):
        nonlocal done
        done += 1
        if done % 100 == 0 or done == n_images:
            echo(f"  embedded {done}/{n_images} images")

    templates = analyze_images(images, engine, on_image=progress)
    fit_s = score_pairs(fit_pairs, templates, models)
    held_s = score_pairs(held_pairs, templates, models)

    norm = {m: {"mean": float(v[~fit_s.labels].mean()), "std": float(v[~fit_s.labels].std())} for m, v in fit_s.model_scores.items()}
    weights = _fusion_weights(fit_s.model_scores, fit_s.labels, norm) if len(models) > 1 else {models[0]: 1.0}
    scorer = Scorer(models, norm, weights)

    fs, hs = (np.asarray(scorer.combine(ps.model_scores), dtype=float) for ps in (fit_s, held_s))
    calibration = cal.fit(
        fs[fit_s.labels], fs[~fit_s.labels],
        model=scorer_name(models), pairs_source=source, normalization=norm, fusion_weights=weights,
    )
    calibration.save(out)
    held_imp = [held_pairs[k] for k in held_s.kept[~held_s.labels]]
    people = ([cal.identity_of(a) for a, _, _ in held_imp], [cal.identity_of(b) for _, b, _ in held_imp])
    held = cal.check_held_out(calibration, hs[held_s.labels], hs[~held_s.labels], impostor_identities=people)
    return {
        "calibration": str(out),
        "version": calibration.version,
        "model": calibration.model,
        "fit": {"genuine": int(fit_s.labels.sum()), "impostor": int((~fit_s.labels).sum()), "failed_pairs": fit_s.failed_pairs},
        "held_out": {"genuine": int(held_s.labels.sum()), "impostor": int((~held_s.labels).sum()), "failed_pairs": held_s.failed_pairs, "checks": held},
        "thresholds": [t.__dict__ for t in calibration.thresholds],
        "fusion_weights": weights,
        "images_without_face": list(fit_s.failed_images),
    }
