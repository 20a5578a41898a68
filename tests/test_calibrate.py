"""Threshold calibration and verification metrics, checked against known distributions and the real pairs file."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from idproof.errors import CalibrationError
from idproof.face import calibrate as cal
from idproof.face import metrics

PAIRS_CSV = Path(__file__).resolve().parents[1].parent / "shared/data/faces/pairs.csv"


def phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def gaussians(seed: int, n_gen: int, n_imp: int, d: float = 0.6, s: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(d, s, n_gen), rng.normal(0.0, s, n_imp)


# --- metrics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmr", [1e-2, 1e-3, 1e-4])
def test_threshold_for_fmr_reproduces_on_fresh_samples(fmr: float) -> None:
    rng = np.random.default_rng(7)
    # Fit on 2M so the threshold's own sampling error is small next to the 200k fresh sample's; with
    # equal sizes even a perfect threshold lands outside the fresh 95 % interval ~17 % of the time.
    t = metrics.threshold_for_fmr(rng.normal(0.0, 0.1, 2_000_000), fmr)
    fresh = rng.normal(0.0, 0.1, 200_000)
    k = int(np.count_nonzero(fresh >= t))
    lo, hi = metrics.fmr_confidence_interval(k, fresh.size, 0.999)
    assert lo <= fmr <= hi, (k, lo, hi)
    # The threshold's true FMR; a quantile from k = fmr·n tail points has relative s.d. ≈ 1/sqrt(k): allow 4.
    assert phi(-t / 0.1) == pytest.approx(fmr, rel=4 / math.sqrt(fmr * 2_000_000))


def test_threshold_for_fmr_is_the_smallest_conservative_threshold() -> None:
    imp = np.random.default_rng(3).normal(0, 1, 10_001)
    for fmr in (0.5, 0.01, 1e-3, 1e-4, 0.0):
        t = metrics.threshold_for_fmr(imp, fmr)
        assert np.mean(imp >= t) <= fmr
        assert np.mean(imp >= np.nextafter(t, -np.inf)) > fmr  # one step lower breaks the target
    # ties at the cut-off are all rejected; exact multiples allow exactly k false matches
    assert metrics.threshold_for_fmr(np.array([0.0, 1.0, 1.0, 1.0]), 0.5) > 1.0
    assert np.count_nonzero(np.arange(30_000.0) >= metrics.threshold_for_fmr(np.arange(30_000.0), 1e-4)) == 3
    # float32 scores get a float32 step, so the threshold survives a float32 round trip
    f32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    assert np.count_nonzero(f32 >= np.float32(metrics.threshold_for_fmr(f32, 0.0))) == 0


def test_eer_and_auc_match_gaussian_closed_forms() -> None:
    for d, eer_tol in ((0.6, 0.15), (0.2, 0.02)):  # relative tolerance; EER is tiny (0.00135) for d = 0.6
        g, i = gaussians(11, 200_000, 200_000, d=d)
        assert metrics.eer(g, i) == pytest.approx(phi(-d / 0.2), rel=eer_tol)
        assert metrics.roc_auc(g, i) == pytest.approx(phi(d / (0.1 * math.sqrt(2))), abs=2e-3 if d < 0.5 else 2e-5)


def test_auc_counts_ties_half_and_is_fast() -> None:
    rng = np.random.default_rng(5)
    g, i = rng.integers(0, 6, 300), rng.integers(0, 5, 200)
    brute = ((g[:, None] > i[None]) + 0.5 * (g[:, None] == i[None])).mean()
    assert metrics.roc_auc(g, i) == pytest.approx(brute, abs=1e-12)
    assert metrics.roc_auc([1.0, 1.0], [1.0]) == 0.5
    g, i = gaussians(1, 100_000, 100_000)
    start = time.perf_counter()
    metrics.roc_auc(g, i)
    assert time.perf_counter() - start < 2.0


def test_roc_points_eer_accuracy_on_a_small_example() -> None:
    g, i = np.array([0.9, 0.8, 0.4]), np.array([0.1, 0.5, 0.3])
    t, fmr, fnmr = metrics.roc_points(g, i)
    assert t.tolist() == [0.1, 0.3, 0.4, 0.5, 0.8, 0.9]
    assert fmr.tolist() == pytest.approx([1, 2 / 3, 1 / 3, 1 / 3, 0, 0])
    assert fnmr.tolist() == pytest.approx([0, 0, 0, 1 / 3, 1 / 3, 2 / 3])
    assert metrics.eer(g, i) == pytest.approx(1 / 3)
    assert metrics.eer([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert metrics.accuracy_at(g, i, 0.6) == pytest.approx(5 / 6)


def test_min_impostors_and_tar_needs_enough_impostors() -> None:
    assert [metrics.min_impostors_for(f) for f in (1e-2, 1e-3, 1e-4)] == [300, 3000, 30000]
    g, i = gaussians(2, 1000, 2999)
    assert metrics.tar_at_fmr(g, i, 1e-3) is None
    assert metrics.tar_at_fmr(g, np.append(i, 0.0), 1e-3) == pytest.approx(1.0, abs=0.01)


def test_clopper_pearson_known_values() -> None:
    assert metrics.fmr_confidence_interval(5, 10) == pytest.approx((0.187086, 0.812914), abs=1e-6)  # textbook
    lo, hi = metrics.fmr_confidence_interval(0, 3000)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 3000), rel=1e-9)
    assert metrics.fmr_confidence_interval(10, 10)[0] == pytest.approx(0.025 ** (1 / 10), rel=1e-9)
    lo, hi = metrics.fmr_confidence_interval(3, 40)
    lo2, hi2 = metrics.fmr_confidence_interval(37, 40)
    assert (lo, hi) == pytest.approx((1 - hi2, 1 - lo2), abs=1e-12)
    lo, hi = metrics.fmr_confidence_interval(1000, 1_000_000)  # large n stays fast and near the normal approx
    half = 1.96 * math.sqrt(1e-3 * (1 - 1e-3) / 1e6)
    assert lo == pytest.approx(1e-3 - half, rel=0.02) and hi == pytest.approx(1e-3 + half, rel=0.02)


def test_metrics_reject_empty_and_bad_inputs() -> None:
    for fn in (metrics.eer, metrics.roc_auc, metrics.roc_points):
        with pytest.raises(CalibrationError, match="genuine scores are empty"):
            fn([], [0.1])
        with pytest.raises(CalibrationError, match="impostor scores are empty"):
            fn([0.1], np.array([]))
    with pytest.raises(CalibrationError, match="NaN"):
        metrics.threshold_for_fmr([0.1, float("nan")], 0.01)
    with pytest.raises(CalibrationError, match="target_fmr"):
        metrics.threshold_for_fmr([0.1], 1.0)
    with pytest.raises(CalibrationError, match="1-D"):
        metrics.roc_auc(np.zeros((2, 2)), [0.0])
    with pytest.raises(CalibrationError):
        metrics.fmr_confidence_interval(5, 3)
    # all-equal scores are well defined for the metrics (chance level) ...
    assert metrics.eer([0.5] * 3, [0.5] * 4) == 0.5 and metrics.roc_auc([0.5] * 3, [0.5] * 4) == 0.5


# --- fit, Calibration, JSON -------------------------------------------------------------------------


def test_fit_flags_unsupported_fmrs_and_picks_default() -> None:
    g, i = gaussians(4, 2000, 600)
    small = cal.fit(g, i, model="m", pairs_source="synthetic")
    assert [(t.fmr, t.supported) for t in small.thresholds] == [(1e-2, True), (1e-3, False), (1e-4, False)]
    assert small.default_fmr == 1e-2
    assert "tar@fmr=0.0001" not in small.metrics and "tar@fmr=0.01" in small.metrics
    g, i = gaussians(4, 2000, 100_000)
    big = cal.fit(g, i, model="m", pairs_source="synthetic")
    assert all(t.supported for t in big.thresholds) and big.default_fmr == 1e-3
    assert big.threshold_at(1e-4).threshold > big.threshold_at(1e-3).threshold > big.threshold_at(1e-2).threshold
    assert big.metrics["auc"] > 0.999 and big.metrics["eer"] < 0.01
    tiny = cal.fit([0.9, 0.8], [0.1, 0.2], model="m", pairs_source="s")  # nothing supported: loosest, flagged
    assert tiny.default_fmr == 1e-2 and not tiny.threshold_at(1e-2).supported
    with pytest.raises(CalibrationError, match="No threshold calibrated for FMR 0.005.*0.01, 0.001, 0.0001"):
        big.threshold_at(0.005)


def test_fit_rejects_degenerate_scores() -> None:
    with pytest.raises(CalibrationError, match="All 7 scores are equal"):
        cal.fit([0.5] * 3, [0.5] * 4, model="m", pairs_source="s")
    with pytest.raises(CalibrationError, match="impostor scores are empty"):
        cal.fit([0.5], [], model="m", pairs_source="s")
    with pytest.raises(CalibrationError, match="distances"):
        cal.fit([0.1, 0.2], [0.8, 0.9], model="m", pairs_source="s")


def fitted() -> cal.Calibration:
    g, i = gaussians(8, 1000, 40_000)
    return cal.fit(g, i.astype(np.float32), model="fused:arcface_fp+dlib_resnet", pairs_source="synthetic", score_kind="fused_z",
                   normalization={"arcface_fp": {"mean": np.float64(0.02), "std": 0.07}}, fusion_weights={"arcface_fp": 0.6, "dlib_resnet": 0.4})  # fmt: skip


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    c = fitted()
    assert cal.Calibration.from_json(c.to_json()) == c
    c.save(tmp_path / "sub" / "cal.json")
    back = cal.Calibration.load(tmp_path / "sub" / "cal.json")
    assert back == c and back.to_json() == c.to_json()
    assert c.version.startswith(c.created) and c.version == fitted().version  # content-hashed, deterministic
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cal.json"]  # no temp file left behind


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("model"), "model"),
        (lambda d: d.update(genuine_pairs="12"), "genuine_pairs"),
        (lambda d: d["thresholds"][1].update(threshold=None), "thresholds[1].threshold"),
        (lambda d: d["thresholds"][2].update(supported=True, impostor_pairs=600), "thresholds[2].supported"),
        (lambda d: d["thresholds"][0].update(fmr=1.5), "thresholds[0].fmr"),
        (lambda d: d.update(default_fmr=0.05), "default_fmr"),
        (lambda d: d["normalization"]["arcface_fp"].update(std="x"), "normalization.arcface_fp.std"),
        (lambda d: d.update(format="other/9"), "format"),
        (lambda d: d.update(thresholds=[]), "thresholds"),
        (lambda d: d.update(treshold=1), "treshold"),
    ],
)
def test_malformed_calibration_names_the_field(tmp_path: Path, edit, field: str) -> None:
    d = json.loads(fitted().to_json())
    edit(d)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(d))
    with pytest.raises(CalibrationError) as e:
        cal.Calibration.load(path)
    assert e.value.field == field and repr(field) in str(e.value)


def test_unreadable_calibration_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"format": ')
    with pytest.raises(CalibrationError, match="not valid JSON .line 1"):
        cal.Calibration.load(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="not found"):
        cal.Calibration.load(tmp_path / "missing.json")


def test_check_held_out() -> None:
    c = fitted()
    g, i = gaussians(9, 500, 40_000)
    rows = cal.check_held_out(c, g, i)
    assert [r["fmr"] for r in rows] == [1e-2, 1e-3, 1e-4]
    for r, t in zip(rows, c.thresholds):
        assert r["n"] == 40_000 and r["false_matches"] == np.count_nonzero(i >= t.threshold)
        assert r["ci_low"] <= r["observed_fmr"] == r["false_matches"] / 40_000 <= r["ci_high"]
        assert r["consistent"] == (r["false_matches"] == 0 or r["ci_low"] <= r["fmr"] <= r["ci_high"])
    json.dumps(rows)  # plain Python types, ready for a report
    # Re-checking on the fit impostors themselves reproduces each FMR almost exactly: always consistent.
    _, fit_i = gaussians(8, 1000, 40_000)
    assert all(r["consistent"] for r in cal.check_held_out(c, g, fit_i.astype(np.float32)))
    bad = cal.check_held_out(c, g, i + 0.05)  # impostors drifted up: FMR far above target
    assert not bad[0]["consistent"] and bad[0]["ci_low"] > 1e-2
    zero = cal.check_held_out(c, g, i[:10])
    assert all(r["consistent"] and r["false_matches"] == 0 for r in zero)


# --- pairs files and splits -------------------------------------------------------------------------


def test_read_real_pairs_csv() -> None:
    pairs = cal.read_pairs_csv(PAIRS_CSV)
    assert len(pairs) == 1487
    assert sum(same for _, _, same in pairs) == 693
    for a, b, _ in pairs:
        assert Path(a).is_absolute() and Path(a).is_file() and Path(b).is_file()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("img_a,img_b\nx/a.jpg,x/b.jpg\n", "line 1: missing column.*same"),
        ("img_a,img_b,same\nx/a.jpg,y/b.jpg,1\nx/a.jpg,y/c.jpg,maybe\n", "line 3: 'same' must be 1 or 0, got 'maybe'"),
        ("img_a,img_b,same\nx/a.jpg,y/b.jpg,0\n\nx/a.jpg,,1\n", "line 4: empty image path"),
        ("img_a,img_b,same\nx/a.jpg,y/b.jpg\n", "line 2: 'same' must be 1 or 0"),
        ("img_a,img_b,same\n", "no pairs"),
    ],
)
def test_bad_pairs_csv(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "pairs.csv").write_text(text)
    with pytest.raises(CalibrationError, match=match):
        cal.read_pairs_csv(tmp_path / "pairs.csv")


def test_read_pairs_csv_resolves_relative_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "p.csv").write_text("img_a,img_b,same\nlfw/A/1.jpg,../lfw/B/1.jpg,TRUE\n")
    assert cal.read_pairs_csv(tmp_path / "d" / "p.csv") == [(str(tmp_path / "d/lfw/A/1.jpg"), str(tmp_path / "lfw/B/1.jpg"), True)]


def _sides(split: cal.PairSplit) -> tuple[set[str], set[str]]:
    return tuple({cal.identity_of(p) for a, b, _ in side for p in (a, b)} for side in split[:2])  # type: ignore[return-value]


def test_split_real_pairs_is_identity_disjoint_and_deterministic() -> None:
    pairs = cal.read_pairs_csv(PAIRS_CSV)
    split = cal.split_pairs(pairs, 0.3, seed=0)
    fit_ids, held_ids = _sides(split)
    assert not fit_ids & held_ids
    assert len(split.fit) + len(split.held) + len(split.dropped) == len(pairs)
    assert len(split.dropped) == 0  # identities linked by pairs move together, so none are lost here
    assert 0.25 < len(split.held) / len(pairs) <= 0.3
    assert any(not same for *_, same in split.held) and any(same for *_, same in split.held)
    assert cal.split_pairs(list(pairs), 0.3, seed=0) == split
    assert cal.split_pairs(pairs, 0.3, seed=1) != split
    fit, held = cal.split_pairs(pairs)[:2]
    assert (fit, held) == (split.fit, split.held)


def test_split_breaks_a_fully_connected_set_by_identity() -> None:
    people = [f"/d/set/p{n:02d}/{k}.jpg" for n in range(40) for k in range(3)]
    pairs = [(a, b, cal.identity_of(a) == cal.identity_of(b)) for x, a in enumerate(people) for b in people[x + 1 :]]
    split = cal.split_pairs(pairs, 0.3, seed=0)
    fit_ids, held_ids = _sides(split)
    assert not fit_ids & held_ids and fit_ids and held_ids
    assert split.dropped and all(cal.identity_of(a) != cal.identity_of(b) for a, b, _ in split.dropped)
    assert len(split.fit) + len(split.held) + len(split.dropped) == len(pairs)
    with pytest.raises(CalibrationError):
        cal.split_pairs([], 0.3)
    with pytest.raises(CalibrationError, match="held_out_fraction"):
        cal.split_pairs(pairs, 1.0)


def test_identity_is_subset_and_folder() -> None:
    assert cal.identity_of("lfw/Abel_Pacheco/x.jpg") == "lfw/Abel_Pacheco"
    assert cal.identity_of("/abs/faces/faceapi_bbt/amy/amy2.png") == "faceapi_bbt/amy"
