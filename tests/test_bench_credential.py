"""`idproof bench credential` runs end to end with tiny settings and returns the documented JSON shape.

No timing thresholds here: on a shared 2-core machine rates vary; the bench prints them, tests only check that every
figure is a positive number and that sizes are plausible for what was made.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import sys

import pytest

from idproof.bench import credential as bench

SECONDS, REPEATS = 0.2, 1
HAS_PEER = importlib.util.find_spec("sd_jwt") is not None
NO_PEER = "the sd-jwt peer is not installed (pip install --no-deps -r requirements/bench-peer.txt)"


@pytest.fixture(scope="module")
def result() -> dict:
    return bench.run(json_out=True, seconds=SECONDS, repeats=REPEATS)


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _check_phases(section: dict, phases: tuple[str, ...]) -> None:
    for phase in phases:
        f = section[phase]
        for key in ("per_s", "p50_ms", "p95_ms", "ops", "seconds"):
            assert _positive(f[key]), (phase, key, f[key])
        assert len(f["per_s_repeats"]) == REPEATS and all(_positive(x) for x in f["per_s_repeats"])
        assert f["p95_ms"] >= f["p50_ms"]
        assert f["ops"] >= 3  # the worker's minimum per phase
    for key, size in section["sizes"].items():
        assert isinstance(size, int) and size > 0, (key, size)


def test_shape(result):
    json.dumps(result)  # one JSON object, nothing that does not serialise
    assert result["bench"] == "credential"
    for key in ("data", "counts", "machine", "idproof", "peers", "ratios", "goals", "phases", "setup", "notes"):
        assert key in result
    assert result["counts"]["seconds_per_phase"] == SECONDS and result["counts"]["repeats"] == REPEATS
    assert result["machine"]["pinned_cpu"] >= 0
    assert all(isinstance(n, str) and n for n in result["notes"])
    for impl, phases in result["phases"].items():
        for phase, runs in phases.items():
            assert len(runs) == REPEATS, (impl, phase)
            for r in runs:
                assert "latencies" not in r  # raw latencies stay out of the JSON
                assert 0 < r["core_share"] <= 1.5


def test_bbs_library(result):
    lib = result["idproof"]["bbs_library"]
    _check_phases(lib, ("issue", "present", "verify"))
    s = lib["sizes"]
    assert s["pseudonym_bytes"] == 48  # a compressed G1 point
    assert s["public_key_bytes"] == 96  # a compressed G2 point
    assert s["signature_bytes"] == 80  # A (G1) || e (scalar)
    # 3 G1 points + scalars for 5 hidden messages, the blind, the nym secret, e, r1, r3 and the challenge
    assert 300 <= s["proof_bytes"] <= 1000
    assert lib["info"]["attributes"] == 6 and lib["info"]["disclosed"] == 1


def test_bbs_product(result):
    if not bench.available()["bbs_product"]:
        pytest.skip("idproof.credential.issuer / wallet / verify are not importable")
    prod = result["idproof"].get("bbs_product")
    if prod is None:
        pytest.fail("the product path failed: " + " | ".join(n for n in result["notes"] if "product path" in n))
    _check_phases(prod, ("issue", "present", "verify"))
    s = prod["sizes"]
    assert 500 <= s["presentation_bytes"] < 4000
    if "proof_bytes" in s:  # read from the presentation when it is base64url JSON with a "proof" member
        assert 300 <= s["proof_bytes"] < s["presentation_bytes"]


def test_sdjwt(result):
    if not bench.available()["sdjwt"]:
        pytest.skip("idproof.credential.sdjwt is not importable")
    sd = result["idproof"]["sdjwt"]
    _check_phases(sd, ("issue", "issue_batch", "present", "verify"))
    s = sd["sizes"]
    assert 150 <= s["kb_jwt_bytes"] <= 600  # header + iat/aud/nonce/sd_hash + a 64-byte ES256 signature
    assert 500 <= s["presentation_bytes"] <= 4000
    # the presentation drops 5 of 6 Disclosures and adds the KB-JWT
    assert s["presentation_bytes"] < s["credential_bytes"] + s["kb_jwt_bytes"]


def test_goals(result):
    g = result["goals"]
    assert g["bbs_verify_per_s_goal"] == 150 and g["sdjwt_verify_per_s_goal"] == 2000
    assert _positive(g["bbs_verify_per_s"]) and isinstance(g["bbs_verify_met"], bool)
    assert g["bbs_verify_measured_on"] in result["idproof"]
    if "sdjwt" in result["idproof"]:
        assert _positive(g["sdjwt_verify_per_s"]) and isinstance(g["sdjwt_verify_met"], bool)


@pytest.mark.skipif(not HAS_PEER, reason=NO_PEER)
def test_peer_and_ratios(result):
    peer = result["peers"][bench.PEER]
    assert peer is not None, result["notes"]
    assert peer["version"] == bench.PEER_VERSION
    _check_phases(peer["sdjwt"], ("issue", "present", "verify"))
    assert 150 <= peer["sdjwt"]["sizes"]["kb_jwt_bytes"] <= 600
    if "sdjwt" in result["idproof"]:
        r = result["ratios"][f"sdjwt_vs_{bench.PEER}"]
        for key in ("issue_per_s", "present_per_s", "verify_per_s", "credential_bytes", "presentation_bytes"):
            assert _positive(r[key]), (key, r[key])
    # the peer ran in its own process only
    assert "sd_jwt" not in sys.modules


def test_without_peer_is_explained(result):
    if HAS_PEER:
        assert any(n.startswith(f"Peer {bench.PEER}") for n in result["notes"])
    else:
        assert result["peers"][bench.PEER] is None and result["ratios"] == {}
        assert any("not installed" in n for n in result["notes"])


def test_human_output(result):
    from rich.console import Console

    buf = io.StringIO()
    bench.print_human(result, Console(file=buf, width=200))
    text = buf.getvalue()
    assert "BBS with per-verifier pseudonym" in text and "goal BBS verify" in text and "goal SD-JWT verify" in text
    if "sdjwt" in result["idproof"]:
        assert "SD-JWT VC" in text
    if result["peers"][bench.PEER]:
        assert "(peer)" in text and "idproof / peer" in text


def test_arguments_are_checked():
    with pytest.raises(ValueError):
        bench.run(json_out=True, seconds=0, repeats=1)
    with pytest.raises(ValueError):
        bench.run(json_out=True, seconds=1, repeats=0)


def test_library_only_run():
    """``only`` (and a missing peer) leave out what did not run, with a note, and the goals say what they can."""
    r = bench.run(json_out=True, seconds=0.05, repeats=1, only=("bbs_library",))
    assert set(r["idproof"]) == {"bbs_library"}
    assert r["peers"][bench.PEER] is None and r["ratios"] == {}
    assert r["goals"]["bbs_verify_measured_on"] == "bbs_library"
    assert r["goals"]["sdjwt_verify_per_s"] is None and r["goals"]["sdjwt_verify_met"] is None
    assert any(n.startswith(f"Peer {bench.PEER}") and "no ratios" in n for n in r["notes"])
    assert not any("not importable" in n for n in r["notes"])  # left out by choice, not missing
    buf = io.StringIO()
    from rich.console import Console

    bench.print_human(r, Console(file=buf, width=200))
    assert "SD-JWT VC" not in buf.getvalue()
