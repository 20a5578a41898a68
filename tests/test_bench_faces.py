"""`idproof bench faces` end to end on a small balanced sample of the real pairs file (all workers, peer included)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

PAIRS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "pairs.csv"

pytestmark = pytest.mark.skipif(not PAIRS.is_file(), reason=f"shared face data not found at {PAIRS}")

FIGURES = (
    "accuracy", "accuracy_lfw", "accuracy_at_shipped_threshold", "eer", "tar_at_fmr_1e-2", "tar_at_fmr_1e-3",
    "tar_at_fmr_1e-2_supported", "tar_at_fmr_1e-3_supported", "roc_auc", "detection_failures", "failed_pairs",
    "p50_ms", "p95_ms", "decode_p50_ms", "detect_p50_ms", "detect_p95_ms", "align_p50_ms", "embed_p50_ms",
    "embed_p95_ms", "peak_rss_mib",
)  # fmt: skip


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    pytest.importorskip("face_recognition")
    from idproof.bench.faces import run

    plot = tmp_path_factory.mktemp("bench") / "p.png"
    return run(PAIRS, limit=40, plot=plot, with_peers=True, progress=False), plot


@pytest.mark.slow
def test_bench_faces_shape_and_ranges(bench):
    result, plot = bench
    assert json.loads(json.dumps(result)) == result  # plain JSON, no numpy scalars or NaN
    assert result["bench"] == "faces" and result["data"] == str(PAIRS)
    c = result["counts"]
    assert c["pairs"] == 40 and c["genuine"] + c["impostor"] == 40 and c["genuine"] > 0 and c["impostor"] > 0
    assert 0 < c["images"] <= 80 and c["lfw_pairs"] == 40  # the balanced sample of folds 1/2 is all LFW here

    assert set(result["candidates"]) == {"arcface_fp", "dlib_resnet", "fused:arcface_fp+dlib_resnet"}
    assert set(result["peers"]) == {"face_recognition"}
    from idproof.face.compare import DEFAULT_PROFILE, PROFILES, scorer_name

    default = scorer_name(PROFILES[DEFAULT_PROFILE])
    assert result["idproof"]["profile"] == DEFAULT_PROFILE
    assert result["idproof"]["candidate"] == default

    everyone = result["candidates"] | result["peers"]
    for name, f in everyone.items():
        assert set(FIGURES) <= set(f), (name, set(FIGURES) - set(f))
        assert 0.0 <= f["eer"] <= 0.5, name
        assert f["roc_auc"] >= 0.9, name
        assert 0.5 <= f["accuracy"] <= 1.0 and f["accuracy_lfw"] == f["accuracy"], name
        assert 0.0 <= f["tar_at_fmr_1e-2"] <= 1.0 and 0.0 <= f["tar_at_fmr_1e-3"] <= 1.0, name
        assert f["tar_at_fmr_1e-3_supported"] is False  # 20 impostors cannot support FMR 1e-3
        assert f["detection_failures"] >= 0 and f["failed_pairs"] >= 0
        assert f["p50_ms"] > 0 and f["p95_ms"] >= f["p50_ms"], name
        assert f["detect_p50_ms"] > 0 and f["embed_p50_ms"] > 0, name
        assert f["p50_ms"] >= f["embed_p50_ms"], name  # end to end contains the embedding
        assert f["peak_rss_mib"] > 50, name
    assert everyone["face_recognition"]["align_p50_ms"] is None  # inside face_encodings
    assert all(everyone[n]["align_p50_ms"] > 0 for n in result["candidates"])
    assert result["idproof"]["p50_ms"] == result["candidates"][default]["p50_ms"]

    # ratios come from this run's own p50s
    peer = result["peers"]["face_recognition"]
    speedups = result["ratios"]["speedup_vs_face_recognition"]
    assert set(speedups) == set(result["candidates"])
    for name, ratio in speedups.items():
        assert math.isclose(ratio, peer["p50_ms"] / result["candidates"][name]["p50_ms"], rel_tol=1e-2), name
    goals = result["goals"]
    assert set(goals) == {"lfw_accuracy_ge_0.993", "speedup_ge_2_at_equal_or_better_accuracy"}
    for name, ok in goals["speedup_ge_2_at_equal_or_better_accuracy"].items():
        c = result["candidates"][name]
        assert ok == (speedups[name] >= 2 and c["accuracy"] >= peer["accuracy"]), name

    assert result["plot"] == str(plot) and plot.is_file()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("load time is excluded" in n for n in result["notes"])


@pytest.mark.slow
def test_bench_faces_subset_and_cli_json(tmp_path):
    """--subset/--limit through the command line, without the peer: one JSON object on stdout."""
    from typer.testing import CliRunner

    from idproof.cli import app

    plot = tmp_path / "sub" / "p.png"
    res = CliRunner().invoke(app, ["bench", "faces", "--pairs", str(PAIRS), "--subset", "lfw", "--limit", "8",
                                   "--no-peers", "--plot", str(plot), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["counts"]["pairs"] == 8 and out["counts"]["lfw_pairs"] == 8
    assert out["peers"] == {} and out["ratios"]["speedup_vs_face_recognition"] == {}
    assert plot.is_file()
