"""BBS per-verifier linkability (draft-irtf-cfrg-bbs-per-verifier-linkability) against the
published vectors and beyond: nym commitment, blind issuance with signer entropy,
finalization, proofs with pseudonyms."""

from __future__ import annotations

from pathlib import Path

import pytest
from bbs_fixtures import SUITES, VECTORS, _h, _id, _load, _suite

from idproof.credential.bbs import SHA256, SHAKE256, Ciphersuite, core, pseudonym
from idproof.credential.bbs._suite import seeded_random_scalars

NYM = VECTORS / "pseudonym"
pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"BBS test vectors not found at {VECTORS}")


def _files(pattern: str) -> list[Path]:
    return sorted(NYM.glob(pattern)) if NYM.is_dir() else []


COMMITS = _files("*/nymCommit/*.json")
SIGNATURES = _files("*/nymSignature/*.json")
PROOFS = _files("*/nymProof/*.json")
MESSAGES = _files("messages.json")
#: Fixture files this module consumes (used by the accounting test in test_bbs_vectors.py).
CONSUMED = COMMITS + SIGNATURES + PROOFS + MESSAGES


def _scalar(x: str) -> bytes:
    return int(x, 16).to_bytes(32, "big")


def _messages() -> list[bytes]:
    return [_h(m) for m in _load(NYM / "messages.json")]


def _rng(v: dict, op: str, suite: Ciphersuite):
    p = v["mockRngParameters"]
    seed, dst = p["SEED"].encode(), p[op]["DST"].encode()
    return lambda count: seeded_random_scalars(seed, dst, count, suite)


@pytest.mark.parametrize("path", MESSAGES, ids=_id)
def test_messages_file(path: Path) -> None:
    """pseudonym/messages.json holds the Signer messages of the nym signature and proof vectors."""
    msgs = _load(path)
    assert len(msgs) == 10
    for suite_name, suite in SUITES.items():
        v = _load(NYM / suite_name / "nymSignature" / "nymSignature001.json")
        # the signature trace lists the message scalars under the pseudonym api_id
        scalars = pseudonym._ctx(suite).api.messages_to_scalars([_h(m) for m in msgs])
        assert [s.to_be_bytes().hex() for s in scalars] == v["trace"]["msg_scalars"]
        assert _load(NYM / suite_name / "nymProof" / "nymProof001.json")["L"] == len(msgs)


@pytest.mark.parametrize("path", COMMITS, ids=_id)
def test_nym_commit(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    msgs = [_h(m) for m in v["committedMessages"]]
    cwp, spb = pseudonym.commit(msgs, _scalar(v["proverNym"]), suite, rng=_rng(v, "commit", suite))
    assert cwp.hex() == v["commitmentWithProof"]
    assert spb == _scalar(v["proverBlind"]) == _scalar(v["trace"]["secret_prover_blind"])
    assert v["result"]["valid"] is True


@pytest.mark.parametrize("path", SIGNATURES, ids=_id)
def test_nym_signature(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    kp = v["signerKeyPair"]
    sk, pk, header = _h(kp["secretKey"]), _h(kp["publicKey"]), _h(v["header"])
    msgs = _messages()
    assert [m.hex() for m in msgs] == _load(NYM / "messages.json")
    entropy = _scalar(v["signer_nym_entropy"])
    sig, back = pseudonym.blind_sign(sk, pk, _h(v["commitmentWithProof"]), header, msgs, entropy, suite)
    assert sig.hex() == v["signature"] and back == entropy
    nym_secret = pseudonym.verify_and_finalize(
        pk, sig, header, msgs, [], _scalar(v["proverNym"]), entropy, _scalar(v["proverBlind"]), suite
    )
    assert (nym_secret is not None) is v["result"]["valid"]
    assert nym_secret == _scalar(v["nym_secret"])
    # a wrong entropy share gives a different nym secret, which the signature does not cover
    assert (
        pseudonym.verify_and_finalize(
            pk,
            sig,
            header,
            msgs,
            [],
            _scalar(v["proverNym"]),
            _scalar(v["proverNym"]),
            _scalar(v["proverBlind"]),
            suite,
        )
        is None
    )


@pytest.mark.parametrize("path", PROOFS, ids=_id)
def test_nym_proof(path: Path) -> None:
    suite, v = _suite(path), _load(path)
    pk, header, ph = _h(v["signerPublicKey"]), _h(v["header"]), _h(v["presentationHeader"])
    L = v["L"]
    msgs = _messages()[:L]
    idx, cidx = v["disclosedIndexes"], v["disclosedComIndexes"]
    ctx = _h(v["context_id"])
    proof, nym = pseudonym.proof_gen(
        pk,
        _h(v["signature"]),
        header,
        ph,
        _scalar(v["nym_secret"]),
        ctx,
        msgs,
        [],
        idx,
        cidx,
        _scalar(v["proverBlind"]),
        suite,
        rng=_rng(v, "proof", suite),
    )
    assert proof.hex() == v["proof"]
    assert nym.hex() == v["pseudonym"] == v["trace"]["pseudonym"]
    assert pseudonym.calculate_pseudonym(ctx, _scalar(v["nym_secret"]), suite) == nym
    disclosed = [msgs[i] for i in idx]
    args = (header, ph, _h(v["pseudonym"]), ctx, L, disclosed, [], idx, cidx, suite)
    assert pseudonym.proof_verify(pk, _h(v["proof"]), *args) is v["result"]["valid"]
    # another context, another pseudonym, a modified disclosed message: all rejected
    assert not pseudonym.proof_verify(
        pk, _h(v["proof"]), header, ph, _h(v["pseudonym"]), ctx + b"x", L, disclosed, [], idx, cidx, suite
    )
    other = pseudonym.calculate_pseudonym(ctx, _scalar(v["proverBlind"]), suite)
    assert not pseudonym.proof_verify(
        pk, _h(v["proof"]), header, ph, other, ctx, L, disclosed, [], idx, cidx, suite
    )
    assert not pseudonym.proof_verify(
        pk,
        _h(v["proof"]),
        header,
        ph,
        _h(v["pseudonym"]),
        ctx,
        L,
        [b"x"] + disclosed[1:],
        [],
        idx,
        cidx,
        suite,
    )


ALL_SUITES = pytest.mark.parametrize("suite", [SHA256, SHAKE256], ids=lambda s: s.name)


@ALL_SUITES
def test_pseudonym_end_to_end(suite: Ciphersuite) -> None:
    from py_arkworks_bls12381 import G1Point

    sk = core.keygen(b"\x0a" * 32, suite=suite)
    pk = core.sk_to_pk(sk, suite)
    # holder
    prover_nym = pseudonym.random_prover_nym()
    committed = [b"holder-device-key", b"dob=1990-01-01"]
    cwp, spb = pseudonym.commit(committed, prover_nym, suite)
    # issuer
    msgs = [b"issuer=idproof", b"assurance=substantial", b"age_over_18=true"]
    sig, entropy = pseudonym.blind_sign(sk, pk, cwp, b"vc-header", msgs, suite=suite)
    # holder
    nym_secret = pseudonym.verify_and_finalize(
        pk, sig, b"vc-header", msgs, committed, prover_nym, entropy, spb, suite
    )
    assert nym_secret is not None and nym_secret != prover_nym
    assert (
        pseudonym.verify_and_finalize(
            pk, sig, b"vc-header", msgs[:2], committed, prover_nym, entropy, spb, suite
        )
        is None
    )
    assert (
        pseudonym.verify_and_finalize(
            pk, sig, b"vc-header", msgs, committed, prover_nym, entropy, b"\x00", suite
        )
        is None
    )

    # presentations
    def present(ctx: bytes, idx=(2,), cidx=(1,)):
        return pseudonym.proof_gen(
            pk,
            sig,
            b"vc-header",
            b"nonce",
            nym_secret,
            ctx,
            msgs,
            committed,
            list(idx),
            list(cidx),
            spb,
            suite,
        )

    def check(proof, nym, ctx, idx=(2,), cidx=(1,), L=3, dm=None, dcm=None):
        dm = [msgs[i] for i in idx] if dm is None else dm
        dcm = [committed[j] for j in cidx] if dcm is None else dcm
        return pseudonym.proof_verify(
            pk, proof, b"vc-header", b"nonce", nym, ctx, L, dm, dcm, list(idx), list(cidx), suite
        )

    p1, n1 = present(b"service-a")
    p2, n2 = present(b"service-a")
    p3, n3 = present(b"service-b")
    assert n1 == n2 != n3 and p1 != p2  # stable per context, unlinkable proofs
    assert check(p1, n1, b"service-a") and check(p2, n2, b"service-a") and check(p3, n3, b"service-b")
    assert (
        not check(p1, n3, b"service-a")
        and not check(p3, n3, b"service-a")
        and not check(p1, n1, b"service-b")
    )
    assert not check(p1, n1, b"service-a", cidx=(0,))
    assert not check(p1, n1, b"service-a", dcm=[b"dob=2000-01-01"])
    assert not check(p1, n1, b"service-a", L=4)
    # the nym secret (last committed position) and the prover blind are never disclosable
    assert not check(p1, n1, b"service-a", cidx=(1, 2), dcm=[committed[1], nym_secret])
    assert not check(p1, n1, b"service-a", idx=(2, 3), dm=[msgs[2], spb])
    # malformed pseudonyms
    for bad in (
        b"",
        n1[:-1],
        G1Point.identity().to_compressed_bytes(),
        G1Point().to_compressed_bytes(),
        b"\xff" * 48,
    ):
        assert not check(p1, bad, b"service-a")
    assert not check(p1[:-1], n1, b"service-a")
    assert not check(p1, n1, "service-a")  # type: ignore[arg-type]
    # nothing disclosed
    p4, n4 = present(b"service-a", idx=(), cidx=())
    assert n4 == n1 and check(p4, n4, b"service-a", idx=(), cidx=())
    # generation-side errors
    with pytest.raises(ValueError):
        present(b"service-a", cidx=(2,))  # would disclose the nym secret
    with pytest.raises(ValueError):
        present(b"service-a", idx=(3,))
    with pytest.raises(ValueError):
        pseudonym.commit([], bytes(32), suite)
    with pytest.raises(ValueError):
        pseudonym.blind_sign(sk, pk, b"", b"vc-header", msgs, suite=suite)  # no nym committed
    with pytest.raises(ValueError):
        pseudonym.blind_sign(sk, pk, cwp[:-1] + bytes([cwp[-1] ^ 1]), b"vc-header", msgs, suite=suite)
    with pytest.raises(ValueError):
        pseudonym.proof_gen(pk, sig, b"h", b"", bytes(32), b"ctx", msgs, committed, [], [], spb, suite)
