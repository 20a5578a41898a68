"""Fit decision thresholds for target false-match rates, store them, and check them on held-back pairs.

A threshold for FMR p is fitted on *impostor* scores only (``metrics.threshold_for_fmr``). Whether the
data can support p at all is decided by the rule of three (``metrics.min_impostors_for``): an FMR
claimed from too few impostor pairs is kept but flagged ``supported=False``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from idproof.errors import CalibrationError
from idproof.face import metrics

FORMAT = "idproof.calibration/1"
DEFAULT_FMRS = (1e-2, 1e-3, 1e-4)
PREFERRED_DEFAULT_FMR = 1e-3

Pair = tuple[str, str, bool]


def _field_error(field_name: str, problem: str) -> CalibrationError:
    err = CalibrationError(
        f"Calibration field {field_name!r} {problem}.",
        fix="Regenerate the file with `idproof calibrate` instead of editing it by hand.",
    )
    err.field = field_name  # type: ignore[attr-defined]  # machine-readable, for callers and tests
    return err


@dataclass(frozen=True)
class Threshold:
    fmr: float  # target false-match rate
    threshold: float  # match iff score >= threshold
    impostor_pairs: int  # impostor scores it was fitted on
    supported: bool  # impostor_pairs >= metrics.min_impostors_for(fmr)


@dataclass(frozen=True)
class Calibration:
    version: str
    model: str  # scoring pipeline, e.g. "fused:arcface_fp+dlib_resnet"
    score_kind: str  # what the thresholds apply to, e.g. "fused_z" or "cosine"
    created: str  # ISO date
    pairs_source: str
    genuine_pairs: int
    impostor_pairs: int
    thresholds: tuple[Threshold, ...]  # FMRs descending
    default_fmr: float
    normalization: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> {"mean", "std"}
    fusion_weights: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # fit-split eer, auc, accuracy, tar@fmr=...

    def __post_init__(self) -> None:
        # Consistency checks shared by fit() and load(): a calibration that passes them cannot claim an
        # FMR its own impostor count does not support, nor default to an FMR it has no threshold for.
        if not self.thresholds:
            raise _field_error("thresholds", "is empty")
        fmrs = [t.fmr for t in self.thresholds]
        if len(set(fmrs)) != len(fmrs):
            raise _field_error("thresholds", f"repeats an FMR: {fmrs}")
        for n, t in enumerate(self.thresholds):
            if not 0 < t.fmr < 1:
                raise _field_error(f"thresholds[{n}].fmr", f"must be strictly between 0 and 1, got {t.fmr!r}")
            if not math.isfinite(t.threshold):
                raise _field_error(f"thresholds[{n}].threshold", f"must be finite, got {t.threshold!r}")
            if t.supported != (t.impostor_pairs >= metrics.min_impostors_for(t.fmr)):
                raise _field_error(
                    f"thresholds[{n}].supported",
                    f"is {t.supported} but {t.impostor_pairs} impostor pairs "
                    f"{'do not ' if t.supported else ''}reach the {metrics.min_impostors_for(t.fmr)} needed for FMR {t.fmr:g}",
                )
        if self.default_fmr not in fmrs:
            raise _field_error("default_fmr", f"{self.default_fmr!r} has no threshold (available: {_fmt(fmrs)})")

    def threshold_at(self, fmr: float) -> Threshold:
        """The threshold fitted for exactly this FMR (no interpolation: other FMRs were never measured)."""
        for t in self.thresholds:
            if t.fmr == fmr:
                return t
        raise CalibrationError(
            f"No threshold calibrated for FMR {fmr!r} in calibration {self.version}.",
            fix=f"Use one of {_fmt([t.fmr for t in self.thresholds])}, or recalibrate with that FMR.",
        )

    def to_json(self) -> str:
        d: dict[str, Any] = {"format": FORMAT, **asdict(self)}
        d["thresholds"] = [asdict(t) for t in self.thresholds]
        return json.dumps(d, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise CalibrationError(f"Calibration is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}).") from None
        return cls._from_dict(d)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a crash mid-write must not leave a half calibration for the verifier to load."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CalibrationError(f"Calibration file not found: {path}.", fix="Run `idproof calibrate` to create it.") from None
        except (OSError, UnicodeDecodeError) as e:
            raise CalibrationError(f"Calibration file {path} cannot be read ({type(e).__name__}).") from None
        return cls.from_json(text)

    @classmethod
    def _from_dict(cls, d: Any) -> Calibration:
        if not isinstance(d, dict):
            raise _field_error("(top level)", f"must be a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise _field_error("format", f"must be {FORMAT!r}, got {d.get('format')!r}")
        expected = {"format"} | set(cls.__dataclass_fields__)
        if unknown := sorted(set(d) - expected):
            raise _field_error(unknown[0], "is not a calibration field (typo, or a newer format?)")
        raw = d.get("thresholds")
        if not isinstance(raw, list):
            raise _field_error("thresholds", "must be a list")
        thresholds = []
        for n, t in enumerate(raw):
            where = f"thresholds[{n}]"
            if not isinstance(t, dict) or set(t) != set(Threshold.__dataclass_fields__):
                raise _field_error(where, f"must be an object with keys {sorted(Threshold.__dataclass_fields__)}")
            thresholds.append(
                Threshold(
                    fmr=_num(t, "fmr", where),
                    threshold=_num(t, "threshold", where),
                    impostor_pairs=_count(t, "impostor_pairs", where),
                    supported=_typed(t, "supported", bool, where),
                )
            )
        return cls(
            version=_text(d, "version"),
            model=_text(d, "model"),
            score_kind=_text(d, "score_kind"),
            created=_text(d, "created"),
            pairs_source=_typed(d, "pairs_source", str),
            genuine_pairs=_count(d, "genuine_pairs"),
            impostor_pairs=_count(d, "impostor_pairs"),
            thresholds=tuple(thresholds),
            default_fmr=_num(d, "default_fmr"),
            normalization=_normalization(d.get("normalization"), "normalization"),
            fusion_weights=_floats(d.get("fusion_weights"), "fusion_weights"),
            metrics=_floats(d.get("metrics"), "metrics"),
        )


# --- field parsers for _from_dict: each names the exact field it rejects ------------------------------


def _typed(d: dict, key: str, kind: type, where: str = "") -> Any:
    name = f"{where}.{key}" if where else key
    if key not in d:
        raise _field_error(name, "is missing")
    v = d[key]
    if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):  # JSON true is not a count
        raise _field_error(name, f"must be {kind.__name__}, got {type(v).__name__}")
    return v


def _text(d: dict, key: str) -> str:
    v = _typed(d, key, str)
    if not v.strip():
        raise _field_error(key, "is empty")
    return v


def _num(d: dict, key: str, where: str = "") -> float:
    name = f"{where}.{key}" if where else key
    v = d.get(key)
    if key not in d or isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _field_error(name, "is missing" if key not in d else f"must be a finite number, got {v!r}")
    return float(v)


def _count(d: dict, key: str, where: str = "") -> int:
    v = _typed(d, key, int, where)
    if v < 0:
        raise _field_error(f"{where}.{key}" if where else key, f"must be >= 0, got {v}")
    return v


def _floats(v: Any, name: str) -> dict[str, float]:
    if not isinstance(v, dict):
        raise _field_error(name, "must be an object of numbers")
    return {k: _num(v, k, name) for k in v}


def _normalization(v: Any, name: str) -> dict[str, dict[str, float]]:
    if not isinstance(v, dict):
        raise _field_error(name, "must be an object (model -> {mean, std})")
    return {m: _floats(stats, f"{name}.{m}") for m, stats in v.items()}


def _fmt(fmrs: list[float]) -> str:
    return ", ".join(f"{f:g}" for f in fmrs)


# --- fitting ----------------------------------------------------------------------------------------


def _default_fmr(thresholds: tuple[Threshold, ...]) -> float:
    """1e-3 when the data support it; else the strictest supported FMR; else (nothing supported) the
    loosest one fitted — it stays flagged unsupported, so callers can refuse to rely on it."""
    supported = [t.fmr for t in thresholds if t.supported]
    if PREFERRED_DEFAULT_FMR in supported:
        return PREFERRED_DEFAULT_FMR
    return min(supported) if supported else max(t.fmr for t in thresholds)


def fit(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    *,
    model: str,
    pairs_source: str,
    fmrs: tuple[float, ...] | list[float] = DEFAULT_FMRS,
    normalization: dict[str, dict[str, float]] | None = None,
    fusion_weights: dict[str, float] | None = None,
    score_kind: str = "similarity",
    created: str | None = None,
) -> Calibration:
    """Fit one threshold per FMR on the impostor scores; metrics are in-sample (the fit split)."""
    g, i = metrics._scores(genuine, "genuine"), metrics._scores(impostor, "impostor")
    if np.ptp(np.concatenate([g, i])) == 0:
        raise CalibrationError(
            f"All {g.size + i.size} scores are equal ({g[0]!r}): they separate nothing, so no threshold can be fitted.",
            fix="Check the scoring pipeline (a constant score usually means a broken model or empty templates).",
        )
    auc = metrics.roc_auc(g, i)
    if auc < 0.5:
        raise CalibrationError(
            f"Genuine pairs score lower than impostor pairs (AUC {auc:.3f} < 0.5).",
            fix="Pass similarities (higher = more alike), not distances, and check the pair labels.",
        )
    fmrs = sorted({metrics._rate(f, "fmr") for f in fmrs}, reverse=True)
    if not fmrs:
        raise CalibrationError("No target FMRs given.", fix=f"Pass fmrs, e.g. {DEFAULT_FMRS}.")
    thresholds = tuple(
        Threshold(f, metrics.threshold_for_fmr(i, f), int(i.size), i.size >= metrics.min_impostors_for(f)) for f in fmrs
    )
    default = _default_fmr(thresholds)
    default_t = next(t.threshold for t in thresholds if t.fmr == default)
    m = {"eer": metrics.eer(g, i), "auc": auc, "accuracy": metrics.accuracy_at(g, i, default_t)}
    for f in fmrs:
        if (tar := metrics.tar_at_fmr(g, i, f)) is not None:  # only FMRs the data support
            m[f"tar@fmr={f:g}"] = tar
    norm = {k: {s: float(x) for s, x in v.items()} for k, v in (normalization or {}).items()}
    weights = {k: float(w) for k, w in (fusion_weights or {}).items()}
    content = dict(model=model, score_kind=score_kind, pairs_source=pairs_source, genuine_pairs=int(g.size),
                   impostor_pairs=int(i.size), thresholds=[asdict(t) for t in thresholds], default_fmr=default,
                   normalization=norm, fusion_weights=weights)  # fmt: skip
    created = created or date.today().isoformat()
    # version = date + content hash: two calibrations share a version only if they decide identically.
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]
    content["thresholds"] = thresholds
    return Calibration(version=f"{created}.{digest}", created=created, metrics=m, **content)


# --- pairs files and identity-disjoint splits --------------------------------------------------------


def read_pairs_csv(path: str | os.PathLike) -> list[Pair]:
    """``img_a,img_b,same`` rows → (abs path a, abs path b, same). Image paths are relative to the CSV's
    folder; ``same`` is 1/0 (true/false, yes/no accepted). Errors name the offending line."""
    path = Path(path)
    truthy, falsy = {"1", "true", "yes"}, {"0", "false", "no"}
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise CalibrationError(f"Pairs file {path} cannot be opened ({type(e).__name__}).") from None
    with f:
        reader = csv.DictReader(f)
        missing = [c for c in ("img_a", "img_b", "same") if c not in (reader.fieldnames or [])]
        if missing:
            raise CalibrationError(
                f"{path}, line 1: missing column(s) {', '.join(missing)} (header is {reader.fieldnames}).",
                fix="The first line must be `img_a,img_b,same`.",
            )
        root = path.resolve().parent
        pairs: list[Pair] = []
        for row in reader:
            line = reader.line_num
            a, b, same = ((row.get(c) or "").strip() for c in ("img_a", "img_b", "same"))
            if not a or not b:
                raise CalibrationError(f"{path}, line {line}: empty image path.")
            if same.lower() not in truthy | falsy:
                raise CalibrationError(f"{path}, line {line}: 'same' must be 1 or 0, got {same!r}.")
            pairs.append((str((root / a).resolve()), str((root / b).resolve()), same.lower() in truthy))
    if not pairs:
        raise CalibrationError(f"{path} has a header but no pairs.")
    return pairs


def identity_of(image: str) -> str:
    """``…/lfw/Abel_Pacheco/x.jpg`` → ``lfw/Abel_Pacheco``: the image's folder (with its subset, so two
    data sets that both have a ``john`` folder stay two people)."""
    parent = Path(image).parent
    return f"{parent.parent.name}/{parent.name}"


class PairSplit(NamedTuple):
    fit: list[Pair]
    held: list[Pair]
    dropped: list[Pair]  # pairs whose two identities ended up on different sides


def split_pairs(pairs: list[Pair], held_out_fraction: float = 0.3, seed: int = 0) -> PairSplit:
    """Deterministic, identity-disjoint split into (fit, held, dropped); ``fit, held = split[:2]``.

    No identity appears on both sides, otherwise the held-out check would re-measure faces the threshold
    was fitted on. To lose as few pairs as possible, identities linked by any pair (connected
    components) move together, so most pairs are kept. Whole components fill the held side in a seeded
    random order up to ``held_out_fraction`` of the pairs (so the fraction is approximate). A component
    too big to fit there (e.g. every identity paired with every other) is split identity by identity,
    each held with probability ``held_out_fraction``; only its pairs that then cross sides are dropped.
    """
    f = metrics._rate(held_out_fraction, "held_out_fraction")
    if not pairs:
        raise CalibrationError("No pairs to split.")
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    ids = [(identity_of(a), identity_of(b)) for a, b, _ in pairs]
    for ia, ib in ids:
        ra, rb = root(ia), root(ib)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # deterministic root, whatever the pair order
    members: dict[str, list[str]] = {}
    size: dict[str, int] = {}
    for ident in sorted(parent):
        members.setdefault(root(ident), []).append(ident)
    for ia, _ in ids:
        size[root(ia)] = size.get(root(ia), 0) + 1

    rng = np.random.default_rng(seed)
    target = f * len(pairs)
    comps = sorted(members)
    order = [comps[k] for k in rng.permutation(len(comps))]
    held_ids: set[str] = set()
    for c in (c for c in order if size[c] > target):  # too big to move whole: split by identity
        held_ids.update(m for m, r in zip(members[c], rng.random(len(members[c]))) if r < f)
    held_n = sum(1 for ia, ib in ids if ia in held_ids and ib in held_ids)
    for c in (c for c in order if size[c] <= target):
        if held_n + size[c] <= target:
            held_ids.update(members[c])
            held_n += size[c]

    out = PairSplit([], [], [])
    for pair, (ia, ib) in zip(pairs, ids):
        a_held, b_held = ia in held_ids, ib in held_ids
        (out.dropped if a_held != b_held else out.held if a_held else out.fit).append(pair)
    return out


# --- held-out check ---------------------------------------------------------------------------------


def check_held_out(
    calibration: Calibration,
    genuine_held: npt.ArrayLike,
    impostor_held: npt.ArrayLike,
    confidence: float = 0.95,
    impostor_identities: tuple[Sequence[str], Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Per calibrated FMR: what the fitted threshold does on held-back pairs.

    ``consistent`` is True when the target FMR lies inside the Clopper–Pearson interval of the held-out
    FMR, or when there were no false matches at all (observed 0 <= target). The interval covers only the
    held-out sampling noise, not the noise in the fitted threshold itself, so with fit and held-out sets
    of similar size a correctly calibrated threshold still reads "inconsistent" more often than 5 %.

    With ``impostor_identities`` (the two people of each impostor pair) the interval is a cluster
    bootstrap over people instead (``boot_low``/``boot_high``), and ``consistent`` uses it: impostor pairs
    that share people are not independent, which the binomial interval assumes.
    """
    g, i = metrics._scores(genuine_held, "held-out genuine"), metrics._scores(impostor_held, "held-out impostor")
    rows = []
    for t in calibration.thresholds:
        fm = int(np.count_nonzero(i >= t.threshold))
        lo, hi = metrics.fmr_confidence_interval(fm, i.size, confidence)
        if impostor_identities is not None:
            blo, bhi = metrics.cluster_bootstrap_fmr(i >= t.threshold, *impostor_identities, confidence=confidence)
            consistent = blo <= t.fmr <= bhi
        else:
            blo = bhi = None
            consistent = fm == 0 or lo <= t.fmr <= hi
        rows.append({
            "fmr": t.fmr,
            "threshold": t.threshold,
            "supported": t.supported,
            "false_matches": fm,
            "n": int(i.size),
            "observed_fmr": fm / i.size,
            "ci_low": lo,
            "ci_high": hi,
            "confidence": confidence,
            "boot_low": blo,
            "boot_high": bhi,
            "consistent": consistent,
            "tar": float(np.mean(g >= t.threshold)),
            "held_supported": i.size >= metrics.min_impostors_for(t.fmr),
        })  # fmt: skip
    return rows
