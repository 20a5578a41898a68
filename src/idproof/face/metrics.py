"""Verification metrics from genuine (same person) and impostor (different people) scores.

Scores are similarities: higher = more alike, and a pair is a *match* iff ``score >= threshold``.
FMR = fraction of impostor pairs that match; FNMR = fraction of genuine pairs that do not; TAR = 1 - FNMR.
Pure numpy + ``math`` (no scipy), so it runs wherever idproof runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from idproof.errors import CalibrationError

# Rule of three: with 0 false matches in n independent impostor comparisons, the one-sided 95 % upper
# bound on the FMR is 1 - 0.05**(1/n) ≈ 3/n. So claiming FMR <= p needs n >= 3/p impostor pairs, and
# even then only if the fitted threshold let (almost) none through. Fewer pairs and the threshold for p
# is set by a handful of extreme scores: it is still computed, but flagged as unsupported.
RULE_OF_THREE = 3.0


def _scores(x: npt.ArrayLike, name: str) -> np.ndarray:
    """1-D, non-empty, finite float64 scores, or a CalibrationError that says which input is wrong."""
    a = np.asarray(x)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise CalibrationError(f"{name} scores must be numbers, got dtype {a.dtype}.")
    if a.ndim != 1:
        raise CalibrationError(f"{name} scores must be a 1-D array, got shape {a.shape}.")
    if a.size == 0:
        raise CalibrationError(f"{name} scores are empty.", fix=f"Score at least one {name} pair.")
    a = a.astype(np.float64, copy=False)
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise CalibrationError(f"{bad} of {a.size} {name} scores are NaN or infinite.", fix="Drop failed comparisons before calibrating.")
    return a


def _rate(value: float, name: str, *, allow_zero: bool = False) -> float:
    v = float(value)
    if not (0.0 <= v < 1.0 if allow_zero else 0.0 < v < 1.0):
        raise CalibrationError(f"{name} must be {'in [0, 1)' if allow_zero else 'strictly between 0 and 1'}, got {value!r}.")
    return v


def roc_points(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, fmr, fnmr) at every distinct observed score, thresholds ascending.

    FMR falls and FNMR rises along the arrays. The "reject everything" point (FMR 0, FNMR 1) lies past
    the last threshold and is not included.
    """
    g, i = np.sort(_scores(genuine, "genuine")), np.sort(_scores(impostor, "impostor"))
    t = np.unique(np.concatenate([g, i]))
    fmr = (i.size - np.searchsorted(i, t, side="left")) / i.size  # impostors with score >= t
    fnmr = np.searchsorted(g, t, side="left") / g.size  # genuines with score < t
    return t, fmr, fnmr


def eer(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Equal error rate: where FMR and FNMR cross, linearly interpolated between adjacent thresholds."""
    _, fmr, fnmr = roc_points(genuine, impostor)
    # Close the curve with "reject everything" so a crossing always exists (FMR - FNMR goes 1 → -1).
    fmr, fnmr = np.append(fmr, 0.0), np.append(fnmr, 1.0)
    diff = fmr - fnmr  # non-increasing; diff[0] = 1 because the lowest threshold accepts every pair
    k = int(np.argmax(diff <= 0))
    if diff[k] == 0:
        return float(fmr[k])
    w = diff[k - 1] / (diff[k - 1] - diff[k])  # where the linear interpolation of diff reaches 0
    return float(fmr[k - 1] + w * (fmr[k] - fmr[k - 1]))


def roc_auc(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """P(genuine score > impostor score) + 0.5 · P(equal): the Mann-Whitney U statistic / (n_g · n_i).

    Computed from average ranks of the pooled scores: O(n log n), no n_g × n_i matrix.
    """
    g, i = _scores(genuine, "genuine"), _scores(impostor, "impostor")
    _, inverse, counts = np.unique(np.concatenate([g, i]), return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mean rank of each tie group
    rank_sum = float(avg_rank[inverse[: g.size]].sum())
    u = rank_sum - g.size * (g.size + 1) / 2.0
    return u / (g.size * i.size)


def accuracy_at(genuine: npt.ArrayLike, impostor: npt.ArrayLike, threshold: float) -> float:
    """Fraction of all pairs decided correctly at ``threshold`` (depends on the genuine:impostor mix)."""
    g, i = _scores(genuine, "genuine"), _scores(impostor, "impostor")
    return float((np.count_nonzero(g >= threshold) + np.count_nonzero(i < threshold)) / (g.size + i.size))


def threshold_for_fmr(impostor: npt.ArrayLike, target_fmr: float) -> float:
    """Smallest threshold t with (impostor scores >= t) / n <= target_fmr.

    Rule: let k = floor(target_fmr · n) false matches be allowed and s the (k+1)-th highest impostor
    score. Every t <= s lets at least k+1 impostors through, every t > s at most k, so the answer is the
    next representable number above s (``nextafter`` in the scores' own precision — float32 scores get a
    float32 step, so the threshold survives a round trip through float32). Ties at s are all rejected,
    which can make the empirical FMR lower than the target: conservative by construction.
    """
    raw = np.asarray(impostor)
    i = _scores(raw, "impostor")
    p = _rate(target_fmr, "target_fmr", allow_zero=True)
    k = math.floor(p * i.size + 1e-9)  # +1e-9: 1e-4 * 30000 must allow 3, not floor(2.9999999999999996)
    s = np.partition(i, i.size - 1 - k)[i.size - 1 - k]  # (k+1)-th largest, O(n)
    dtype = np.float32 if raw.dtype == np.float32 else np.float64
    return float(np.nextafter(dtype(s), dtype(np.inf)))


def min_impostors_for(fmr: float) -> int:
    """Impostor comparisons needed to support an FMR claim: ceil(3 / fmr), the rule of three (see top)."""
    p = _rate(fmr, "fmr")
    return math.ceil(round(RULE_OF_THREE / p, 6))  # round: 3 / 1e-4 is 29999.999999999996 in floats


def tar_at_fmr(genuine: npt.ArrayLike, impostor: npt.ArrayLike, fmr: float) -> float | None:
    """True-accept rate at the threshold fitted for ``fmr``; None when there are fewer impostor pairs
    than ``min_impostors_for(fmr)``, because then that threshold is not a measurement of that FMR."""
    g, i = _scores(genuine, "genuine"), _scores(impostor, "impostor")
    if i.size < min_impostors_for(fmr):
        return None
    return float(np.mean(g >= threshold_for_fmr(i, fmr)))


# --- exact (Clopper–Pearson) binomial interval -------------------------------------------------------


def _log_binom_coeffs(n: int, ks: np.ndarray) -> np.ndarray:
    # math.lgamma per k: accurate to ~1e-9 absolute even at n ~ 1e6, unlike a cumsum of logs.
    lg_n = math.lgamma(n + 1)
    return np.array([lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in ks.tolist()])


def _binom_cdf_fn(x: int, n: int) -> Callable[[float], float]:
    """p ↦ P(X <= x) for X ~ Binomial(n, p), summing the shorter tail in log space (no under/overflow)."""
    lower = x + 1 <= n - x
    ks = np.arange(0, x + 1) if lower else np.arange(x + 1, n + 1)
    log_c = _log_binom_coeffs(n, ks)

    def cdf(p: float) -> float:
        terms = log_c + ks * math.log(p) + (n - ks) * math.log1p(-p)
        m = terms.max()
        tail = math.exp(m) * float(np.exp(terms - m).sum())
        return tail if lower else 1.0 - tail

    return cdf


def _bisect_decreasing(f: Callable[[float], float], target: float) -> float:
    """p in (0, 1) with f(p) = target for a decreasing f, to ~1e-13 relative precision (even for tiny p)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        if hi - lo <= 1e-13 * hi:
            break
        mid = (lo + hi) / 2
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def fmr_confidence_interval(false_matches: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact Clopper–Pearson interval for a rate observed as ``false_matches`` out of ``n``.

    hi solves P(X <= x | hi) = α/2 and lo solves P(X >= x | lo) = α/2 — the same as the Beta quantiles
    B(α/2; x, n-x+1) and B(1-α/2; x+1, n-x), found by bisection on the binomial CDF. Coverage is at
    least ``confidence`` for every true rate (it is conservative, which is what an FMR claim wants).
    """
    x, n = int(false_matches), int(n)
    if n < 1 or not 0 <= x <= n:
        raise CalibrationError(f"Need 0 <= false_matches <= n and n >= 1, got {false_matches} of {n}.")
    alpha = 1.0 - _rate(confidence, "confidence")
    lo = 0.0 if x == 0 else _bisect_decreasing(_binom_cdf_fn(x - 1, n), 1.0 - alpha / 2)  # P(X >= x) = α/2
    hi = 1.0 if x == n else _bisect_decreasing(_binom_cdf_fn(x, n), alpha / 2)
    return lo, hi


def cluster_bootstrap_fmr(
    false_match: np.ndarray,
    ids_a: np.ndarray,
    ids_b: np.ndarray,
    *,
    reps: int = 400,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval for an FMR measured on impostor pairs that share people.

    All-vs-all impostor pairs are not independent trials: one unusual face takes part in thousands of
    them, so the binomial (Clopper–Pearson) interval is far too narrow. Resample *people* with
    replacement instead; a pair counts as often as both of its people were drawn (cluster bootstrap).
    """
    fm = np.asarray(false_match, dtype=np.float64)
    uniq, inv = np.unique(np.concatenate([np.asarray(ids_a), np.asarray(ids_b)]), return_inverse=True)
    a, b = inv[: fm.size], inv[fm.size :]
    rng = np.random.default_rng(seed)
    k = len(uniq)
    stats = np.empty(reps)
    for r in range(reps):
        w = np.bincount(rng.integers(0, k, k), minlength=k).astype(np.float64)
        pw = w[a] * w[b]
        total = pw.sum()
        stats[r] = (pw @ fm) / total if total else np.nan
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.nanpercentile(stats, [tail, 100 - tail])
    return float(lo), float(hi)
