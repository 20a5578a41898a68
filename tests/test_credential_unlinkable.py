"""Unlinkability of BBS presentations: 1,000 presentations of one credential, 500 to each of two services.

What a verifier (or two colluding verifiers) sees must not link presentations beyond the pseudonym, and the
pseudonym must link only within one service: no proof component repeats anywhere, the pseudonym is constant
at a service and different across services, and another person gets other pseudonyms.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

import idproof.credential.wallet as wallet_module
from idproof.credential.attributes import ATTRIBUTES, CredentialAttributes
from idproof.credential.issuer import BbsIssuer, IssuerKey, issuer_metadata
from idproof.credential.verify import verify
from idproof.credential.wallet import Wallet
from idproof.decision import HolderFacts

ISSUER = "https://idproof.example"
A, B = "https://shop-a.example", "https://bank-b.example"
PER_SERVICE = 500
# what each presentation asks for, in turn (expires is always added)
ASKS = (["age_over_18"], ["age_over_21", "given_name"], [], ["issuing_state", "verified", "family_name"])


def decode(presentation: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(presentation + "=" * (-len(presentation) % 4)))


def raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Run:
    meta: dict
    wallet: Wallet
    other: Wallet  # a second person's wallet, same issuer
    shown: dict[str, list[tuple[str, str, list[str]]]]  # service -> [(presentation, nonce, asked)]


def _wallet(tmp, name: str, issuer: BbsIssuer, meta: dict, holder: HolderFacts) -> Wallet:
    wallet = Wallet.create(tmp / f"{name}.json", "pass")
    wallet.accept(issuer.issue(wallet.issuance_request(), CredentialAttributes.from_holder(holder)), meta)
    return wallet


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("unlinkable")
    key = IssuerKey.generate()
    meta = issuer_metadata([key], ISSUER)
    issuer = BbsIssuer(key, ISSUER)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wallet_module, "SCRYPT_N", 2**14)
        wallet = _wallet(tmp, "anna", issuer, meta, HolderFacts("Anna", "Müller", "D", date(1990, 5, 17)))
        other = _wallet(tmp, "bob", issuer, meta, HolderFacts("Bob", "Roe", "F", date(1985, 1, 1)))
    shown: dict[str, list[tuple[str, str, list[str]]]] = {A: [], B: []}
    for i in range(2 * PER_SERVICE):
        service = (A, B)[i % 2]
        nonce, asked = f"nonce-{i}", ASKS[(i // 2) % len(ASKS)]
        shown[service].append((wallet.present(service, nonce, asked), nonce, asked))
    return Run(meta, wallet, other, shown)


def test_no_proof_component_repeats(run):
    """Proofs are (Abar, Bbar, D: 48-octet points; then 32-octet scalars): every component of every proof is
    fresh, so no two presentations share a byte string a verifier could match on."""
    seen: set[bytes] = set()
    total = 0
    proofs: set[bytes] = set()
    for service in (A, B):
        for presentation, _, _ in run.shown[service]:
            proof = raw(decode(presentation)["proof"])
            proofs.add(proof)
            parts = [proof[i:i + 48] for i in range(0, 144, 48)] + [proof[i:i + 32] for i in range(144, len(proof), 32)]
            assert (len(proof) - 144) % 32 == 0
            seen.update(parts)
            total += len(parts)
    assert len(proofs) == 2 * PER_SERVICE
    assert len(seen) == total


def test_pseudonym_stable_per_service_and_different_across(run):
    nyms = {s: {decode(p)["pseudonym"] for p, _, _ in run.shown[s]} for s in (A, B)}
    assert len(nyms[A]) == 1 and len(nyms[B]) == 1
    (nym_a,), (nym_b,) = nyms[A], nyms[B]
    assert nym_a != nym_b
    # nothing of A's pseudonym is in anything B receives, in either encoding
    nym_a_raw = raw(nym_a)
    for presentation, _, _ in run.shown[B]:
        assert nym_a not in presentation and nym_a not in base64.urlsafe_b64decode(presentation + "==").decode()
        assert nym_a_raw not in raw(decode(presentation)["proof"])


def test_disclosed_exactly_what_was_asked_and_verifies(run):
    for service in (A, B):
        for i, (presentation, nonce, asked) in enumerate(run.shown[service]):
            doc = decode(presentation)
            want = set(asked) | {"expires"}
            assert set(doc["disclosed"]) == want
            assert doc["disclosed_indexes"] == [ATTRIBUTES.index(n) for n in ATTRIBUTES if n in want]
            assert set(doc) == {"format", "issuer", "kid", "disclosed", "disclosed_indexes", "proof", "pseudonym",
                                "aud", "nonce"}
            if i % 10 == 0:  # verifying all 1,000 adds ~6 s and checks nothing new
                result = verify(presentation, run.meta, service_id=service, nonce=nonce)
                assert set(result.disclosed) == want
                assert result.pseudonym == raw(doc["pseudonym"]).hex()


def test_another_person_gets_other_pseudonyms(run):
    mine = {s: decode(run.shown[s][0][0])["pseudonym"] for s in (A, B)}
    for service in (A, B):
        theirs = [run.other.present(service, f"n{i}", ["age_over_18"]) for i in range(3)]
        nyms = {decode(p)["pseudonym"] for p in theirs}
        assert len(nyms) == 1
        assert nyms.isdisjoint(mine.values())
        assert verify(theirs[0], run.meta, service_id=service, nonce="n0").pseudonym != raw(mine[service]).hex()
