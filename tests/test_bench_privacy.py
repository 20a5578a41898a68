"""`idproof bench privacy` with tiny settings: every figure is there, positive, and consistent (no timing thresholds)."""

from __future__ import annotations

import json
import math

from conftest import FACES
from typer.testing import CliRunner

from idproof.cli import app


def test_bench_privacy_prints_every_figure_with_its_peer():
    r = CliRunner().invoke(app, ["bench", "privacy", "--face", str(FACES / "face_recognition/obama/obama.jpg"), "--seconds", "0.05",
                                 "--repeats", "1", "--leaves", "2000", "--proof-leaves", "4096", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    s, e, a = d["sealed_template"], d["evidence"], d["audit"]
    rates = [s["seal_per_s"], s["unseal_per_s"], s["peer_raw_aesgcm"]["seal_per_s"], e["sign_per_s"], e["verify_per_s"],
             a["append"]["leaves_per_s"], a["append_single"]["leaves_per_s"], a["peer_plain_audit_row"]["rows_per_s"]]
    assert all(isinstance(x, (int, float)) and x > 0 and math.isfinite(x) for x in rates), rates
    assert 400 < s["sealed_chars"] < 4000 and e["jws_bytes"] > 500
    # a 4,096-leaf tree: every inclusion proof of a full tree is log2(n) = 12 hashes
    assert a["proofs"]["leaves"] == 4096 and set(a["proofs"]["measured_inclusion_hashes"]) == {12}
    assert d["goals"]["audit_append_met"] == (a["append"]["leaves_per_s"] >= 10_000)


def test_bench_privacy_refuses_bad_arguments():
    r = CliRunner().invoke(app, ["bench", "privacy", "--face", "/nonexistent.jpg"])
    assert r.exit_code == 2 and "no such file" in r.output
