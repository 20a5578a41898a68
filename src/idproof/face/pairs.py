"""Scoring labelled pairs for calibration and benchmarks.

Every score is a 1:1 comparison of the two images of one listed pair; templates are computed once per
image and kept in memory for the run only.
"""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idproof.errors import CalibrationError, ImageError
from idproof.face.embed import Template
from idproof.face.engine import FaceEngine, FaceSample
from idproof.imageio import load_image

Pair = tuple[str, str, bool]


@dataclass(frozen=True)
class PairScores:
    model_scores: dict[str, np.ndarray]  # per model, one score per scored pair
    labels: np.ndarray  # bool, genuine = True
    failed_pairs: int  # pairs where either image had no usable face
    failed_genuine: int
    failed_images: tuple[str, ...]
    kept: np.ndarray  # index into the input pairs of each scored pair


def analyze_images(
    paths: Iterable[str],
    engine: FaceEngine,
    *,
    on_image: Callable[[str, FaceSample | None], None] | None = None,
) -> dict[str, Template | None]:
    """Template per image path (None when no face was found or the file is unreadable).

    The quality gate is measured but not enforced here: calibration must see the same faces the
    benchmark's peers see, and a retry decision is not a comparison. The labelled subject of a data-set
    photo is its centred face (role "centred"), not always its largest.
    """
    out: dict[str, Template | None] = {}
    for p in dict.fromkeys(paths):
        try:
            sample = engine.analyze(load_image(p), "centred", embed_even_if_poor=True)
        except ImageError:
            sample = None
        out[p] = sample.template if sample is not None else None
        if on_image:
            on_image(p, sample)
    return out


def score_pairs(pairs: Sequence[Pair], templates: dict[str, Template | None], models: Sequence[str]) -> PairScores:
    from idproof.face.embed import embedder

    scores: dict[str, list[float]] = {m: [] for m in models}
    labels, kept, failed, failed_gen = [], [], 0, 0
    for n, (a, b, same) in enumerate(pairs):
        ta, tb = templates.get(a), templates.get(b)
        if ta is None or tb is None:
            failed += 1
            failed_gen += int(same)
            continue
        for m in models:
            scores[m].append(embedder(m).similarity(ta.vectors[m], tb.vectors[m]))
        labels.append(same)
        kept.append(n)
    bad = tuple(sorted(p for p, t in templates.items() if t is None))
    return PairScores({m: np.asarray(v) for m, v in scores.items()}, np.asarray(labels, bool), failed, failed_gen, bad, np.asarray(kept, int))


def read_identities(path: str | Path) -> dict[str, str]:
    """`file,identity,...` CSV → absolute image path → identity."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file", "identity"} <= set(reader.fieldnames):
            raise CalibrationError(f"{path} needs columns file,identity.", fix="Use the layout of shared/data/faces/identities.csv.")
        return {str((path.parent / r["file"]).resolve()): r["identity"] for r in reader}


def cross_identity_impostors(images: Iterable[str], identities: dict[str, str], limit: int | None = None, seed: int = 0) -> list[Pair]:
    """Every pair of images of two different people (optionally a seeded sample of them).

    Calibrating a low FMR needs far more impostor comparisons than a pairs file lists:
    FMR 1e-4 needs tens of thousands (see metrics.min_impostors_for).
    """
    imgs = sorted(i for i in dict.fromkeys(images) if i in identities)
    pairs = [(a, b, False) for a, b in itertools.combinations(imgs, 2) if identities[a] != identities[b]]
    if limit is not None and len(pairs) > limit:
        pairs = random.Random(seed).sample(pairs, limit)
    return pairs
