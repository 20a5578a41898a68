"""`idproof calibrate` on real faces: thresholds fitted on one set of people hold on people it never saw."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import FACES
from idproof.calibration import shipped_calibration
from idproof.cli import app
from idproof.face.calibrate import Calibration
from idproof.face.compare import PROFILES, scorer_name


@pytest.mark.slow
def test_calibrate_reproduces_its_fmr_on_held_back_people(tmp_path):
    out = tmp_path / "calibration.json"
    r = CliRunner().invoke(
        app,
        ["calibrate", "--profile", "fast", "--pairs", str(FACES / "pairs.csv"),
         "--identities", str(FACES / "identities.csv"), "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.output[r.output.index("{"):])
    cal = Calibration.load(out)
    assert cal.model == "arcface_fp"

    # Cross-identity impostors give enough comparisons to back every listed FMR.
    assert all(t.supported for t in cal.thresholds)
    assert [t.fmr for t in cal.thresholds] == [1e-2, 1e-3, 1e-4]
    assert cal.thresholds[0].threshold < cal.thresholds[1].threshold < cal.thresholds[2].threshold

    checks = {c["fmr"]: c for c in report["held_out"]["checks"]}
    for fmr in (1e-2, 1e-3):
        c = checks[fmr]
        assert c["n"] >= 3 / fmr
        assert c["consistent"], c  # target FMR inside the held-out Clopper-Pearson interval
        assert c["tar"] > 0.9


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_shipped_calibrations_are_valid_and_supported(profile):
    cal = shipped_calibration(profile)
    assert cal.model == scorer_name(PROFILES[profile])
    t = cal.threshold_at(cal.default_fmr)
    assert t.supported and t.impostor_pairs >= 3 / t.fmr
    if len(PROFILES[profile]) > 1:
        assert set(cal.normalization) == set(PROFILES[profile])
        assert abs(sum(cal.fusion_weights.values()) - 1) < 1e-6
