"""`idproof bench liveness`: the split, the threshold fit, and the JSON shape at a small size."""

from __future__ import annotations

import json

import numpy as np

from idproof.bench.liveness import CONFIGURATIONS, PEER, fit_thresholds, plan, split_side
from idproof.liveness.passive import shipped_calibration


def test_split_never_puts_a_person_on_both_sides(shared):
    tasks, split = plan(shared, limit=400)
    side: dict[str, set[str]] = {}
    for t in tasks:
        side.setdefault(t["subject"], set()).add(t["split"])
    assert all(len(s) == 1 for s in side.values())
    assert {t["split"] for t in tasks} == {"fit", "held"}
    # replay and deepfake subjects are spread over both sides; silent-face is never fitted
    video = {t["subject"]: t["split"] for t in tasks if t["source"] == "video" and t["pai"] == "video_replay"}
    assert sorted(video.values()) == ["fit", "held"]
    assert all(t["split"] == "held" for t in tasks if t["source"] == "silentface")
    assert len(split["casia_fasd_subjects"]["fit"]) == len(split["casia_fasd_subjects"]["held"]) == 5
    # the split does not depend on how much is sampled
    assert split_side(["a", "b", "c", "d"], "x") == split_side(["d", "c", "b", "a"], "x")
    small, _ = plan(shared, limit=20)
    by_key = {t["key"]: t["split"] for t in tasks}
    assert all(by_key[t["key"]] == t["split"] for t in small)


def test_shipped_calibration_was_fitted_on_this_split(shared):
    cal = shipped_calibration()
    _, split = plan(shared, limit=0)
    fitted = cal["fit"]["split"]
    assert fitted["casia_fasd_subjects"] == split["casia_fasd_subjects"] and fitted["video_subjects"] == split["video_subjects"]
    assert set(cal["configurations"]) == set(CONFIGURATIONS) and cal["version"]
    assert cal["passive_model"]["channel_order"] == "bgr" and cal["passive_model"]["crop_scale"] == 2.7


def test_fit_thresholds_keeps_bpcer_and_catches_separable_attacks():
    rng = np.random.default_rng(0)
    bona = rng.normal(0, 1, (200, 2))
    attack = np.vstack([rng.normal([4, 0], 0.5, (50, 2)), rng.normal([0, 4], 0.5, (50, 2)), rng.normal(0, 1, (20, 2))])
    w = np.full(len(attack), 1 / len(attack))
    groups = ["a"] * 100 + ["b"] * 100
    thr = fit_thresholds(bona, attack, w, ["x", "y"], 0.05, groups=groups)
    rejected = (bona >= [thr["x"], thr["y"]]).any(axis=1)
    assert rejected[:100].mean() <= 0.05 and rejected[100:].mean() <= 0.05
    caught = (attack >= [thr["x"], thr["y"]]).any(axis=1)
    assert caught[:100].mean() >= 0.98  # the two separable attack types
    # not judged (NaN) never fires and does not break the fit
    bona[::7, 1] = np.nan
    thr2 = fit_thresholds(bona, attack, w, ["x", "y"], 0.05)
    assert np.isfinite(list(thr2.values())).all()


def test_bench_liveness_json_shape_small(shared):
    """The CLI at a small size: one JSON object with the shared bench shape and every configuration."""
    from typer.testing import CliRunner

    from idproof.cli import app

    res = CliRunner().invoke(app, ["bench", "liveness", "--data", str(shared), "--limit", "4", "--casia-per-subject", "1",
                                   "--frames-per-clip", "1", "--workers", "1", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"bench", "data", "counts", "idproof", "peers", "ratios"} <= set(out) and out["bench"] == "liveness"
    assert set(out["configurations"]) == set(CONFIGURATIONS) and set(out["peers"]) == {PEER}
    for fig in (*out["configurations"].values(), *out["peers"].values()):
        for family in ("shared", "synthetic"):
            assert set(fig[family]) == {"held", "all"}
            b = fig[family]["all"]["bpcer"]
            assert set(b) >= {"rate", "errors", "n", "ci95", "no_face", "subjects"} and b["n"] > 0
            assert 0 <= b["ci95"][0] <= b["rate"] <= b["ci95"][1] <= 1
            assert b["errors"] == round(b["rate"] * b["n"])
    synthetic = out["idproof"]["synthetic"]["held"]
    assert {"screen", "print", "warped_photo"} <= set(synthetic)  # made from the held-out live CASIA crops
    assert {"fired", "no_face", "subjects"} <= set(synthetic["screen"])
    assert {"casia_attack", "video_replay", "video_deepfake", "silentface_attack"} <= set(out["idproof"]["shared"]["all"])
    # 4 face photos and 10 live CASIA crops (1 per subject), 3 synthetic attacks each
    assert out["counts"]["synthetic"] == 3 * (4 + 10) and out["counts"]["presentations"] == 4 + 20 + 3 + 15 + out["counts"]["synthetic"]
    assert out["calibration"]["source"].startswith("shipped") and "HELD-OUT" in out["notes"][0]
    assert set(out["ratios"]) == {"shared", "synthetic"} and "shared" in out["goals"]
    assert any("SYNTHETIC" in v for v in out["pai_species"].values())
