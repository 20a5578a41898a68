"""Blind BBS signatures (draft-irtf-cfrg-bbs-blind-signatures) against the published vectors
and beyond: commitment, blind signing, verification, proofs with committed messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from bbs_fixtures import SUITES, VECTORS, _h, _id, _load, _suite

from idproof.credential.bbs import SHA256, SHAKE256, Ciphersuite, blind, core
from idproof.credential.bbs._suite import R, seeded_random_scalars

BLIND = VECTORS / "blind"
pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"BBS test vectors not found at {VECTORS}")


def _files(pattern: str) -> list[Path]:
    return sorted(BLIND.glob(pattern)) if BLIND.is_dir() else []


COMMITS = _files("*/commit/*.json")
SIGNATURES = _files("*/signature/*.json")
PROOFS = _files("*/proof/*.json")
MESSAGES = _files("messages.json")
#: Fixture files this module consumes (used by the accounting test in test_bbs_vectors.py).
CONSUMED = COMMITS + SIGNATURES + PROOFS + MESSAGES


def _scalar(x: str | None) -> bytes | None:
    """Fixture scalars are unpadded hex (JavaScript BigInt.toString(16))."""
    return None if x is None else int(x, 16).to_bytes(32, "big")


#: Fixture files with a known defect in an informational field (kept unmodified, handled explicitly).
KNOWN_FIXTURE_TYPOS = {
    "blind/bls12-381-sha-256/proof/proof005.json": "s"
}  # commitmentWithProof ends in "...e51a03s"


def _rng(v: dict, op: str, suite: Ciphersuite):
    p = v["mockRngParameters"]
    seed, dst = p["SEED"].encode(), p[op]["DST"].encode()
    return lambda count: seeded_random_scalars(seed, dst, count, suite)


@pytest.mark.parametrize("path", MESSAGES, ids=_id)
def test_messages_file(path: Path) -> None:
    """blind/messages.json holds the Signer and committed messages the vectors use."""
    m = _load(path)
    assert len(m["messages"]) == 10 and len(m["committedMessages"]) == 5
    for suite_name in SUITES:
        v = _load(BLIND / suite_name / "signature" / "signature004.json")
        assert v["messages"] == m["messages"] and v["committedMessages"] == m["committedMessages"]
        assert (
            _load(BLIND / suite_name / "commit" / "commit002.json")["committedMessages"]
            == m["committedMessages"]
        )


@pytest.mark.parametrize("path", COMMITS, ids=_id)
def test_commit(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    msgs = [_h(m) for m in v["committedMessages"]]
    cwp, secret_prover_blind = blind.commit(msgs, suite, rng=_rng(v, "commit", suite))
    assert cwp.hex() == v["commitmentWithProof"]
    assert secret_prover_blind == _scalar(v["proverBlind"])
    assert v["result"]["valid"] is True


@pytest.mark.parametrize("path", SIGNATURES, ids=_id)
def test_blind_signature(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    kp = v["signerKeyPair"]
    sk, pk, header = _h(kp["secretKey"]), _h(kp["publicKey"]), _h(v["header"])
    cwp = _h(v["commitmentWithProof"]) if v["commitmentWithProof"] else None
    msgs = [_h(m) for m in v["messages"]]
    committed = [_h(m) for m in v["committedMessages"] or []]
    sig = blind.blind_sign(sk, pk, cwp, header, msgs, suite)
    assert sig.hex() == v["signature"]
    ok = blind.verify(pk, sig, header, msgs, committed, _scalar(v["proverBlind"]), suite)
    assert ok is v["result"]["valid"]
    if committed:
        assert not blind.verify(pk, sig, header, msgs, committed[::-1], _scalar(v["proverBlind"]), suite)
        assert not blind.verify(pk, sig, header, msgs, committed, bytes(31) + b"\x01", suite)


@pytest.mark.parametrize("path", PROOFS, ids=_id)
def test_blind_proof(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    all_msgs = _load(BLIND / "messages.json")
    pk, header, ph = _h(v["signerPublicKey"]), _h(v["header"]), _h(v["presentationHeader"])
    L = v["L"]
    cwp_hex = v["commitmentWithProof"] or ""
    if _id(path) in KNOWN_FIXTURE_TYPOS:  # upstream typo: one stray character after the hex
        assert cwp_hex[-1] == KNOWN_FIXTURE_TYPOS[_id(path)]
        cwp_hex = cwp_hex[:-1]
    cwp = _h(cwp_hex)
    m_count = blind.commitment_length_to_m(cwp)
    assert m_count is not None
    if cwp:  # the commitment the signature was issued on is well formed and its proof verifies
        ctx = blind._ctx(suite)
        assert (
            blind.deserialize_and_validate_commit(ctx.api, cwp, ctx.blind_generators(m_count + 1)) is not None
        )
    msgs = [_h(m) for m in all_msgs["messages"][:L]]
    committed = [_h(m) for m in all_msgs["committedMessages"][:m_count]]
    revealed = {int(k): _h(m) for k, m in v["revealedMessages"].items()}
    revealed_c = {int(k): _h(m) for k, m in (v["revealedCommittedMessages"] or {}).items()}
    assert all(msgs[i] == m for i, m in revealed.items()) and all(
        committed[j] == m for j, m in revealed_c.items()
    )
    idx, cidx = sorted(revealed), sorted(revealed_c)
    proof = blind.proof_gen(
        pk,
        _h(v["signature"]),
        header,
        ph,
        msgs,
        committed,
        idx,
        cidx,
        _scalar(v["proverBlind"]),
        suite,
        rng=_rng(v, "proof", suite),
    )
    assert proof.hex() == v["proof"]
    args = (
        pk,
        _h(v["proof"]),
        header,
        ph,
        L,
        [revealed[i] for i in idx],
        [revealed_c[j] for j in cidx],
        idx,
        cidx,
        suite,
    )
    assert blind.proof_verify(*args) is v["result"]["valid"]
    assert not blind.proof_verify(pk, _h(v["proof"]), header, ph + b"x", *args[4:])
    assert not blind.proof_verify(pk, _h(v["proof"]), header, ph, L + 1, *args[5:])


ALL_SUITES = pytest.mark.parametrize("suite", [SHA256, SHAKE256], ids=lambda s: s.name)


@ALL_SUITES
def test_blind_roundtrip_and_malformed(suite: Ciphersuite) -> None:
    sk = core.keygen(b"\x09" * 32, suite=suite)
    pk = core.sk_to_pk(sk, suite)
    committed = [b"holder-secret-key-binding", b"dob=1990-01-01"]
    msgs = [b"issuer=example", b"level=high", b"exp=2030"]
    cwp, spb = blind.commit(committed, suite)
    sig = blind.blind_sign(sk, pk, cwp, b"hdr", msgs, suite)
    assert blind.verify(pk, sig, b"hdr", msgs, committed, spb, suite)
    assert not blind.verify(pk, sig, b"hdr", msgs, committed, None, suite)
    proof = blind.proof_gen(pk, sig, b"hdr", b"ph", msgs, committed, [1], [1], spb, suite)
    assert blind.proof_verify(pk, proof, b"hdr", b"ph", 3, [msgs[1]], [committed[1]], [1], [1], suite)
    # committed index 1 must not be read as signer index (or vice versa)
    assert not blind.proof_verify(pk, proof, b"hdr", b"ph", 3, [msgs[1], committed[1]], [], [1, 4], [], suite)
    assert not blind.proof_verify(pk, proof, b"hdr", b"ph", 3, [msgs[1]], [committed[0]], [1], [0], suite)
    # the blind factor's position (index L) may never be disclosed
    assert not blind.proof_verify(
        pk, proof, b"hdr", b"ph", 3, [msgs[1], b"x"], [committed[1]], [1, 3], [1], suite
    )
    assert not blind.proof_verify(pk, proof, b"hdr", b"ph", 3, [msgs[1]], [committed[1]], [1], [2], suite)
    assert not blind.proof_verify(pk, proof, b"hdr", b"ph", -1, [msgs[1]], [committed[1]], [1], [1], suite)
    assert not blind.proof_verify(
        pk, proof[:-1], b"hdr", b"ph", 3, [msgs[1]], [committed[1]], [1], [1], suite
    )
    # tampered commitments are refused by the signer
    for bad in (
        cwp[:-1],
        cwp[:48] + bytes(32) + cwp[80:],
        cwp[:-32] + R.to_bytes(32, "big"),
        bytes(48) + cwp[48:],
        cwp[:50] + bytes([cwp[50] ^ 1]) + cwp[51:],
    ):
        with pytest.raises(ValueError):
            blind.blind_sign(sk, pk, bad, b"hdr", msgs, suite)
    with pytest.raises(ValueError):
        blind.proof_gen(pk, sig, b"hdr", b"ph", msgs, committed, [3], [], spb, suite)
    with pytest.raises(ValueError):
        blind.proof_gen(pk, sig, b"hdr", b"ph", msgs, committed, [], [2], spb, suite)
    with pytest.raises(ValueError):
        blind.proof_gen(pk, sig, b"hdr", b"ph", msgs, committed, [], [], R.to_bytes(32, "big"), suite)
    # no commitment at all: equivalent to signing with secret_prover_blind = 0
    sig0 = blind.blind_sign(sk, pk, b"", b"hdr", msgs, suite)
    assert blind.verify(pk, sig0, b"hdr", msgs, [], None, suite)
    p0 = blind.proof_gen(pk, sig0, b"hdr", b"", msgs, [], [0], [], None, suite)
    assert blind.proof_verify(pk, p0, b"hdr", b"", 3, [msgs[0]], [], [0], [], suite)
