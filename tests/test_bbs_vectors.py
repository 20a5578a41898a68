"""BBS core (draft-irtf-cfrg-bbs-signatures) against the published test vectors, plus the
fixture accounting test: every JSON fixture file under shared/vectors/bbs must be consumed
by one of the tests/test_bbs_*.py modules.

Vectors: ../shared/vectors/bbs (copied from Wind4Greg/grotto-bbs-signatures @ ae45ce71).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from bbs_fixtures import SUITES, VECTORS, _h, _id, _load, _suite

from idproof.credential.bbs import SHA256, SHAKE256, Ciphersuite, core
from idproof.credential.bbs._suite import R, seeded_random_scalars

pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"BBS test vectors not found at {VECTORS}")

CORE = VECTORS / "core"


def _files(pattern: str) -> list[Path]:
    return sorted(CORE.glob(pattern)) if CORE.is_dir() else []


GENERATORS = _files("*/generators.json")
H2S = _files("*/h2s.json")
MAP_TO_SCALAR = _files("*/MapMessageToScalarAsHash.json")
KEYPAIR = _files("*/keypair.json")
MOCKED_RNG = _files("*/mockedRng.json")
SIGNATURES = _files("*/signature/*.json")
PROOFS = _files("*/proof/*.json")
MESSAGES = _files("messages.json")

#: Fixture files this module consumes (used by the accounting test).
CONSUMED = GENERATORS + H2S + MAP_TO_SCALAR + KEYPAIR + MOCKED_RNG + SIGNATURES + PROOFS + MESSAGES


def _mocked_rng(suite_dir: Path, suite: Ciphersuite):
    """The draft's mocked RNG: seed and DST from the suite's mockedRng.json."""
    m = _load(suite_dir / "mockedRng.json")
    seed, dst = _h(m["seed"]), _h(m["dst"])
    return lambda count: seeded_random_scalars(seed, dst, count, suite)


@pytest.mark.parametrize("path", GENERATORS, ids=_id)
def test_generators(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    assert suite.P1.to_compressed_bytes().hex() == v["P1"]
    gens = core.create_generators(len(v["MsgGenerators"]) + 1, suite)
    assert gens[0].hex() == v["Q1"]
    assert [g.hex() for g in gens[1:]] == v["MsgGenerators"]


@pytest.mark.parametrize("path", H2S, ids=_id)
def test_hash_to_scalar(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    assert suite.hash_to_scalar(_h(v["message"]), _h(v["dst"])).to_be_bytes().hex() == v["scalar"]


@pytest.mark.parametrize("path", MAP_TO_SCALAR, ids=_id)
def test_map_message_to_scalar(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    assert _h(v["dst"]) == suite.api_id + b"MAP_MSG_TO_SCALAR_AS_HASH_"
    scalars = core.messages_to_scalars([_h(c["message"]) for c in v["cases"]], suite)
    assert [s.hex() for s in scalars] == [c["scalar"] for c in v["cases"]]


@pytest.mark.parametrize("path", MESSAGES, ids=_id)
def test_messages_file(path: Path) -> None:
    """core/messages.json is the message list every multi-message vector signs."""
    msgs = _load(path)
    for suite_name in SUITES:
        mapping = _load(CORE / suite_name / "MapMessageToScalarAsHash.json")
        assert [c["message"] for c in mapping["cases"]] == msgs
        assert _load(CORE / suite_name / "signature" / "signature004.json")["messages"] == msgs


@pytest.mark.parametrize("path", KEYPAIR, ids=_id)
def test_keypair(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    sk = core.keygen(_h(v["keyMaterial"]), _h(v["keyInfo"]), _h(v["keyDst"]), suite)
    assert sk.hex() == v["keyPair"]["secretKey"]
    assert core.sk_to_pk(sk, suite).hex() == v["keyPair"]["publicKey"]
    # key_dst defaults to api_id || "KEYGEN_DST_"
    assert core.keygen(_h(v["keyMaterial"]), _h(v["keyInfo"]), suite=suite) == sk


@pytest.mark.parametrize("path", MOCKED_RNG, ids=_id)
def test_mocked_rng(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    got = seeded_random_scalars(_h(v["seed"]), _h(v["dst"]), v["count"], suite)
    assert [f"{x:064x}" for x in got] == v["mockedScalars"]


@pytest.mark.parametrize("path", SIGNATURES, ids=_id)
def test_signature(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    kp = v["signerKeyPair"]
    pk, header = _h(kp["publicKey"]), _h(v["header"])
    msgs = [_h(m) for m in v["messages"]]
    assert core.verify(pk, _h(v["signature"]), header, msgs, suite) is v["result"]["valid"]
    if v["result"]["valid"]:
        assert core.sign(_h(kp["secretKey"]), pk, header, msgs, suite).hex() == v["signature"]


@pytest.mark.parametrize("path", PROOFS, ids=_id)
def test_proof(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    pk, header, ph = _h(v["signerPublicKey"]), _h(v["header"]), _h(v["presentationHeader"])
    msgs = [_h(m) for m in v["messages"]]
    idx = v["disclosedIndexes"]
    ok = core.proof_verify(pk, _h(v["proof"]), header, ph, [msgs[i] for i in idx], idx, suite)
    assert ok is v["result"]["valid"]
    if v["result"]["valid"]:
        rng = _mocked_rng(path.parents[1], suite)
        proof = core.proof_gen(pk, _h(v["signature"]), header, ph, msgs, idx, suite, rng=rng)
        assert proof.hex() == v["proof"]
        # the trace's random scalars are the mocked RNG's output
        trace = v["trace"]["random_scalars"]
        rs = rng(5 + len(msgs) - len(idx))
        assert (
            f"{rs[0]:064x}" == trace["r1"]
            and f"{rs[-1]:064x}" == (trace["m_tilde_scalars"] or [trace["r3_tilde"]])[-1]
        )


# ------------------------------------------------------------------------------------------------
# Fixture accounting
# ------------------------------------------------------------------------------------------------


def _consumed_by(module_file: str) -> list[Path]:
    path = Path(__file__).with_name(module_file)
    name = f"_bbs_accounting_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return list(mod.CONSUMED)


def test_every_fixture_file_is_consumed() -> None:
    found = {p.resolve() for p in VECTORS.rglob("*.json")}
    consumed = {p.resolve() for p in CONSUMED}
    consumed |= {p.resolve() for p in _consumed_by("test_bbs_blind.py")}
    consumed |= {p.resolve() for p in _consumed_by("test_bbs_pseudonym.py")}
    unused = sorted(os.path.relpath(p, VECTORS) for p in found - consumed)
    missing = sorted(os.path.relpath(p, VECTORS) for p in consumed - found)
    assert not unused, f"fixture files not consumed by any test: {unused}"
    assert not missing, f"tests reference fixture files that do not exist: {missing}"
    assert len(found) == 101, f"expected the 101 JSON fixture files of the MANIFEST, found {len(found)}"


# ------------------------------------------------------------------------------------------------
# Behaviour beyond the vectors: real randomness, malformed input
# ------------------------------------------------------------------------------------------------

ALL_SUITES = pytest.mark.parametrize("suite", [SHA256, SHAKE256], ids=lambda s: s.name)


def _keys(suite: Ciphersuite) -> tuple[bytes, bytes]:
    sk = core.keygen(b"\x07" * 32, b"test", suite=suite)
    return sk, core.sk_to_pk(sk, suite)


def _non_subgroup_point(cls, size: int) -> bytes:
    """A compressed point on the curve but outside the prime-order subgroup (search by x)."""
    for x in range(1, 1000):
        octs = bytearray(size)
        octs[-1] = x
        octs[0] |= 0x80  # compression flag
        try:
            p = cls.from_compressed_bytes_unchecked(bytes(octs))
        except ValueError:
            continue
        if not p.is_in_subgroup():
            return bytes(octs)
    raise AssertionError("no non-subgroup point found")


@ALL_SUITES
def test_roundtrip_real_randomness(suite: Ciphersuite) -> None:
    sk, pk = _keys(suite)
    msgs = [
        b"given_name=Ada",
        b"family_name=Lovelace",
        b"birth_year=1815",
        b"",
        b"nationality=GB",
        b"x" * 200,
    ]
    sig = core.sign(sk, pk, b"hdr", msgs, suite)
    assert len(sig) == 80 and core.verify(pk, sig, b"hdr", msgs, suite)
    assert not core.verify(pk, sig, b"other", msgs, suite)
    p1 = core.proof_gen(pk, sig, b"hdr", b"ph", msgs, [2, 0], suite)
    p2 = core.proof_gen(pk, sig, b"hdr", b"ph", msgs, [0, 2], suite)
    assert p1 != p2  # fresh randomness -> unlinkable proofs
    assert len(p1) == 272 + 32 * 4
    for p in (p1, p2):
        assert core.proof_verify(pk, p, b"hdr", b"ph", [msgs[0], msgs[2]], [0, 2], suite)
        # the verifier may list the disclosed (index, message) pairs in any order
        assert core.proof_verify(pk, p, b"hdr", b"ph", [msgs[2], msgs[0]], [2, 0], suite)
        assert not core.proof_verify(pk, p, b"hdr", b"ph2", [msgs[0], msgs[2]], [0, 2], suite)
        assert not core.proof_verify(pk, p, b"hdr", b"ph", [msgs[0], msgs[1]], [0, 2], suite)
        assert not core.proof_verify(pk, p, b"hdr", b"ph", [msgs[0], msgs[2]], [0, 1], suite)
    # nothing disclosed / everything disclosed
    p0 = core.proof_gen(pk, sig, b"hdr", b"", msgs, [], suite)
    assert core.proof_verify(pk, p0, b"hdr", b"", [], [], suite)
    pa = core.proof_gen(pk, sig, b"hdr", b"", msgs, range(6), suite)
    assert core.proof_verify(pk, pa, b"hdr", b"", msgs, list(range(6)), suite)
    # no messages at all
    s0 = core.sign(sk, pk, b"", [], suite)
    assert core.verify(pk, s0, b"", [], suite)
    assert core.proof_verify(pk, core.proof_gen(pk, s0, b"", b"", [], [], suite), b"", b"", [], [], suite)


@ALL_SUITES
def test_verification_rejects_malformed_input(suite: Ciphersuite) -> None:
    from py_arkworks_bls12381 import G1Point, G2Point

    sk, pk = _keys(suite)
    msgs = [b"a", b"b", b"c"]
    sig = core.sign(sk, pk, b"h", msgs, suite)
    proof = core.proof_gen(pk, sig, b"h", b"p", msgs, [1], suite)
    ident_g1 = G1Point.identity().to_compressed_bytes()
    bad_g1 = _non_subgroup_point(G1Point, 48)
    bad_g2 = _non_subgroup_point(G2Point, 96)
    r_octs = R.to_bytes(32, "big")

    def v(pk_=pk, sig_=sig, h=b"h", m=msgs):
        return core.verify(pk_, sig_, h, m, suite)

    assert v()
    for bad_sig in (
        sig[:-1],
        sig + b"\0",
        b"",
        ident_g1 + sig[48:],
        bad_g1 + sig[48:],
        sig[:48] + r_octs,
        sig[:48] + bytes(32),
        sig[:48] + b"\xff" * 32,
        b"\xff" * 80,
    ):
        assert v(sig_=bad_sig) is False
    for bad_pk in (
        pk[:-1],
        b"",
        G2Point.identity().to_compressed_bytes(),
        bad_g2,
        b"\xff" * 96,
        b"\x00" * 96,
    ):
        assert v(pk_=bad_pk) is False
    assert v(m=[b"a", b"b", "c"]) is False  # type: ignore[list-item]
    assert v(m=None) is False  # type: ignore[arg-type]
    assert core.verify(pk, sig, "h", msgs, suite) is False  # type: ignore[arg-type]
    assert core.verify(pk, sig, b"h", msgs, "SHA256") is False  # type: ignore[arg-type]

    def pv(p=proof, idx=(1,), dm=(b"b",), pk_=pk):
        return core.proof_verify(pk_, p, b"h", b"p", list(dm), list(idx), suite)

    assert pv()
    for bad in (
        proof[:-1],
        proof + b"\0",
        proof[:-32],
        proof + bytes(32),
        b"",
        ident_g1 + proof[48:],
        bad_g1 + proof[48:],
        proof[:48] + ident_g1 + proof[96:],
        proof[:96] + bad_g1 + proof[144:],
        proof[:144] + r_octs + proof[176:],
        proof[:-32] + r_octs,
        proof[:-32] + b"\xff" * 32,
    ):
        assert pv(p=bad) is False
    assert pv(idx=(3,)) is False and pv(idx=(-1,)) is False and pv(idx=(1, 1), dm=(b"b", b"b")) is False
    assert pv(idx=(1, 2)) is False  # lengths differ
    assert pv(idx=(True,)) is False  # type: ignore[arg-type]
    assert pv(pk_=bad_g2) is False
    # a forged "proof" with identity Abar/Bbar must not verify
    forged = ident_g1 + ident_g1 + proof[96:]
    assert pv(p=forged) is False


@ALL_SUITES
def test_generation_rejects_invalid_input(suite: Ciphersuite) -> None:
    sk, pk = _keys(suite)
    _, other_pk = (
        core.keygen(b"\x08" * 32, suite=suite),
        core.sk_to_pk(core.keygen(b"\x08" * 32, suite=suite), suite),
    )
    with pytest.raises(ValueError, match="key_material"):
        core.keygen(b"short", suite=suite)
    with pytest.raises(ValueError, match="key_info"):
        core.keygen(b"\x01" * 32, b"\x00" * 65536, suite=suite)
    for bad_sk in (b"", bytes(32), R.to_bytes(32, "big"), b"\xff" * 32, sk[:-1]):
        with pytest.raises(ValueError):
            core.sk_to_pk(bad_sk, suite)
        with pytest.raises(ValueError):
            core.sign(bad_sk, pk, b"", [b"m"], suite)
    with pytest.raises(ValueError, match="does not match"):
        core.sign(sk, other_pk, b"", [b"m"], suite)
    with pytest.raises(ValueError):
        core.sign(sk, pk, b"", ["text"], suite)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        core.sign(sk, pk, b"", b"not-a-list", suite)  # type: ignore[arg-type]
    sig = core.sign(sk, pk, b"", [b"m0", b"m1"], suite)
    for bad_idx in ([2], [-1], [0, 0], ["0"]):
        with pytest.raises(ValueError):
            core.proof_gen(pk, sig, b"", b"", [b"m0", b"m1"], bad_idx, suite)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signature"):
        core.proof_gen(pk, sig[:-1], b"", b"", [b"m0", b"m1"], [0], suite)
    with pytest.raises(ValueError, match="public key"):
        core.proof_gen(b"\x00" * 96, sig, b"", b"", [b"m0", b"m1"], [0], suite)
    with pytest.raises(ValueError, match="rng"):
        core.proof_gen(pk, sig, b"", b"", [b"m0", b"m1"], [0], suite, rng=lambda n: [1] * (n - 1))
    with pytest.raises(ValueError):
        core.sign(sk, pk, b"", [b"m"], "SHA256")  # type: ignore[arg-type]


def test_hash_to_curve_composition_matches_rfc9380() -> None:
    """The SHAKE-256 suite composes hash_to_curve from hash_to_field + map_from_fp; the same
    composition with XMD reproduces the library's hash_to_curve and RFC 9380 J.9.1."""
    from py_arkworks_bls12381 import G1Point

    from idproof.credential.bbs._hash import expand_message_xmd, expand_message_xof
    from idproof.credential.bbs._suite import P_FIELD

    dst = b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"
    expected_x = (
        "052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a1"
    )
    assert SHA256.hash_to_curve_g1(b"", dst).to_xy_bytes_be()[:48].hex() == expected_x
    u = expand_message_xmd(b"", dst, 128)
    q = [
        G1Point.map_from_fp_be((int.from_bytes(u[64 * i : 64 * i + 64], "big") % P_FIELD).to_bytes(48, "big"))
        for i in range(2)
    ]
    assert (q[0] + q[1]).to_xy_bytes_be()[:48].hex() == expected_x
    # RFC 9380 K.1 / K.6 expand_message vectors (msg = "", len_in_bytes = 0x20)
    assert expand_message_xmd(b"", b"QUUX-V01-CS02-with-expander-SHA256-128", 32).hex() == (
        "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"
    )
    assert expand_message_xof(b"", b"QUUX-V01-CS02-with-expander-SHAKE256", 32).hex() == (
        "2ffc05c48ed32b95d72e807f6eab9f7530dd1c2f013914c8fed38c5ccc15ad76"
    )
    assert SHAKE256.hash_to_curve_g1(b"abc", b"DST").is_in_subgroup()
