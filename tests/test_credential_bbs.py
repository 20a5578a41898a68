"""The person-held BBS credential: attributes, issuer, wallet round trip, and every refusal of the verifier.

Negative tests start from one valid presentation and change exactly one thing, then assert the specific
``reason``: the test fails if the check under test is removed.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pickle
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import idproof.credential.issuer as issuer_module
import idproof.credential.wallet as wallet_module
from idproof.credential.attributes import ATTRIBUTES, CredentialAttributes, age_at_least, encode_message
from idproof.credential.issuer import BbsIssuer, IssuerKey, issuer_metadata
from idproof.credential.verify import CredentialError, VerifiedCredential, verify
from idproof.credential.wallet import Wallet
from idproof.decision import HolderFacts

ISSUER = "https://idproof.example"
SERVICE_A = "https://shop-a.example"
SERVICE_B = "https://bank-b.example"
NONCE = "nonce-7c1d2e"
PASSPHRASE = "correct horse battery staple"
ADULT = HolderFacts("Anna", "Müller", "D", date(1990, 5, 17))


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    monkeypatch.setattr(wallet_module, "SCRYPT_N", 2**14)  # the real cost (2^17) is for people, not test loops


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(presentation: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(presentation + "=" * (-len(presentation) % 4)))


def encode(doc: dict[str, Any]) -> str:
    return b64e(json.dumps(doc, separators=(",", ":")).encode())


class Setup:
    """An issuer with one key, and a wallet holding one credential for ADULT."""

    def __init__(self, tmp: Path, holder: HolderFacts = ADULT, key: IssuerKey | None = None) -> None:
        self.key = key or IssuerKey.generate()
        self.meta = issuer_metadata([self.key], ISSUER)
        self.issuer = BbsIssuer(self.key, ISSUER)
        self.attrs = CredentialAttributes.from_holder(holder)
        self.wallet = Wallet.create(tmp / "wallet.json", PASSPHRASE)
        self.response = self.issuer.issue(self.wallet.issuance_request(), self.attrs)
        self.stored = self.wallet.accept(self.response, self.meta)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wallet_module, "SCRYPT_N", 2**14)
        return Setup(tmp_path_factory.mktemp("bbs"))


@pytest.fixture(scope="module")
def good(setup) -> str:
    return setup.wallet.present(SERVICE_A, NONCE, ["age_over_18"])


def refused(reason: str, presentation: str, meta: dict, *, service_id: str = SERVICE_A, nonce: str = NONCE,
            now: datetime | None = None) -> CredentialError:
    with pytest.raises(CredentialError) as info:
        verify(presentation, meta, service_id=service_id, nonce=nonce, now=now)
    assert info.value.reason == reason, info.value
    assert info.value.fix  # every refusal says what to do
    return info.value


# --- attributes ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("birth", "years", "today", "expected"), [
    (date(2000, 6, 15), 18, date(2018, 6, 14), False),  # the day before the 18th birthday
    (date(2000, 6, 15), 18, date(2018, 6, 15), True),   # on it
    (date(2000, 6, 15), 21, date(2021, 6, 14), False),
    (date(2000, 6, 15), 21, date(2021, 6, 15), True),
    (date(2000, 1, 1), 18, date(2017, 12, 31), False),  # year boundary
    (date(2000, 1, 1), 18, date(2018, 1, 1), True),
    # born on a leap day: the birthday of a common year is 1 March (never a day early)
    (date(2004, 2, 29), 18, date(2022, 2, 28), False),
    (date(2004, 2, 29), 18, date(2022, 3, 1), True),
    (date(2004, 2, 29), 21, date(2025, 2, 28), False),
    (date(2004, 2, 29), 21, date(2025, 3, 1), True),
    (date(2000, 2, 29), 21, date(2021, 2, 28), False),
    (date(2000, 2, 29), 21, date(2021, 3, 1), True),
    (date(2006, 3, 1), 18, date(2024, 2, 29), False),   # a leap day the day before an 18th birthday
    (date(2006, 2, 28), 18, date(2024, 2, 28), True),
    (None, 18, date(2030, 1, 1), False),
    (date(2030, 1, 1), 18, date(2020, 1, 1), False),  # birth date in the future
])
def test_age_boundaries(birth, years, today, expected):
    assert age_at_least(birth, years, today) is expected


def test_age_flags_from_holder_at_boundaries():
    born = date(2004, 2, 29)
    before = CredentialAttributes.from_holder(HolderFacts("A", "B", "D", born), today=date(2025, 2, 28))
    on = CredentialAttributes.from_holder(HolderFacts("A", "B", "D", born), today=date(2025, 3, 1))
    assert (before.age_over_18, before.age_over_21) == (True, False)
    assert (on.age_over_18, on.age_over_21) == (True, True)
    unknown = CredentialAttributes.from_holder(HolderFacts("A", "B", "D", None), today=date(2025, 3, 1))
    assert (unknown.age_over_18, unknown.age_over_21) == (False, False)
    assert unknown.expires == date(2025, 3, 31)
    assert CredentialAttributes.from_holder(ADULT, today=date(2025, 3, 1), lifetime=timedelta(days=7)).expires == \
        date(2025, 3, 8)


def test_attributes_encoding_is_canonical_and_minimal():
    attrs = CredentialAttributes.from_holder(ADULT, today=date(2026, 1, 2))
    claims = attrs.to_claims()
    assert list(claims) == list(ATTRIBUTES)
    assert claims == {"verified": True, "age_over_18": True, "age_over_21": True, "given_name": "Anna",
                      "family_name": "Müller", "issuing_state": "D", "expires": "2026-02-01"}
    assert attrs.messages() == [b"verified=true", b"age_over_18=true", b"age_over_21=true", b"given_name=Anna",
                                "family_name=Müller".encode(), b"issuing_state=D", b"expires=2026-02-01"]
    assert CredentialAttributes.from_claims(json.loads(json.dumps(claims))) == attrs
    assert "1990" not in json.dumps(claims)  # no birth date, only the thresholds
    assert "Anna" not in repr(attrs)
    # a value cannot pass for another attribute: the name prefix fixes the position
    assert encode_message("given_name", "x\nfamily_name=y") == b"given_name=x\nfamily_name=y"
    with pytest.raises(TypeError):
        encode_message("age_over_18", "true")
    with pytest.raises(ValueError):
        encode_message("document_number", "X123")
    # one Unicode spelling: decomposed input is stored composed (NFC)
    decomposed = CredentialAttributes.from_holder(HolderFacts("Anna", "Mu\u0308ller", "D", None))
    assert decomposed.family_name == "Müller"


# --- issuer key ------------------------------------------------------------------------------------------------

def test_issuer_key_save_load_and_jwk(tmp_path):
    key = IssuerKey.generate(kid="k1", valid_for=timedelta(days=10))
    path = tmp_path / "issuer.json"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(CredentialError) as info:
        key.save(path)
    assert info.value.reason == "key_exists"
    loaded = IssuerKey.load(path)
    assert loaded == key and loaded.not_after - loaded.not_before == timedelta(days=10)
    jwk = key.public_jwk()
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use", "nbf", "exp"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"], jwk["kid"]) == \
        ("OKP", "BLS12381G2", "BBS-SHA256-PSEUDONYM", "sig", "k1")
    assert len(base64.urlsafe_b64decode(jwk["x"] + "==")) == 96
    assert jwk["exp"] - jwk["nbf"] == 10 * 86400
    assert "secret" not in repr(key) and b64e(key.secret_key) not in json.dumps(jwk)
    assert issuer_metadata([key], ISSUER) == {"issuer": ISSUER, "keys": [jwk]}
    doc = json.loads(path.read_text())
    doc["pk"] = IssuerKey.generate().public_jwk()["x"]
    (tmp_path / "mixed.json").write_text(json.dumps(doc))
    with pytest.raises(CredentialError, match="does not belong"):
        IssuerKey.load(tmp_path / "mixed.json")


def test_issuer_refuses_bad_commitment_and_bad_key_window(setup):
    req = setup.wallet.issuance_request()
    raw = bytearray(base64.urlsafe_b64decode(req["commitment"] + "=="))
    raw[-1] ^= 1  # the proof of correctness no longer verifies
    with pytest.raises(CredentialError) as info:
        setup.issuer.issue({**req, "commitment": b64e(bytes(raw))}, setup.attrs)
    assert info.value.reason == "commitment_invalid"
    with pytest.raises(CredentialError) as info:
        setup.issuer.issue({**req, "commitment": "%%%"}, setup.attrs)
    assert info.value.reason == "malformed"
    with pytest.raises(CredentialError) as info:
        setup.issuer.issue({"format": "other", "commitment": req["commitment"]}, setup.attrs)
    assert info.value.reason == "malformed"
    with pytest.raises(CredentialError) as info:
        setup.issuer.issue(req, setup.attrs, now=setup.key.not_after + timedelta(seconds=1))
    assert info.value.reason == "key_not_valid"
    short = BbsIssuer(IssuerKey.generate(valid_for=timedelta(days=2)), ISSUER)
    with pytest.raises(CredentialError, match="outlive"):  # a 30-day credential under a 2-day key
        short.issue(req, setup.attrs)


def _issuer_side_state(issuer: BbsIssuer) -> tuple[bytes, dict[str, int]]:
    """Everything the issuer could keep: its instance state (pickled) and the size of every container or
    cache at class and module level."""
    sizes: dict[str, int] = {}
    for where, namespace in (("class", vars(BbsIssuer)), ("key", vars(IssuerKey)), ("module", vars(issuer_module))):
        for name, value in namespace.items():
            if name.startswith("__"):  # Python's own bookkeeping (pickle adds __slotnames__)
                continue
            if isinstance(value, (dict, list, set, bytearray)):
                sizes[f"{where}.{name}"] = len(value)
            if hasattr(value, "cache_info"):
                sizes[f"{where}.{name}()"] = value.cache_info().currsize
    return pickle.dumps(issuer), sizes


def test_issuer_keeps_no_state(tmp_path):
    key = IssuerKey.generate()
    issuer = BbsIssuer(key, ISSUER)
    assert set(vars(issuer)) == {"key", "issuer_id"}
    before = _issuer_side_state(issuer)
    wallets = [Wallet.create(tmp_path / f"w{i}.json", PASSPHRASE) for i in range(3)]
    responses = [issuer.issue(w.issuance_request(), CredentialAttributes.from_holder(ADULT)) for w in wallets]
    after = _issuer_side_state(issuer)
    assert after == before
    assert set(vars(issuer)) == {"key", "issuer_id"}
    blob = after[0]
    for r in responses:
        assert base64.urlsafe_b64decode(r["signature"] + "==") not in blob
        assert base64.urlsafe_b64decode(r["signer_nym_entropy"] + "==") not in blob


# --- round trip ------------------------------------------------------------------------------------------------

def test_full_round_trip(tmp_path):
    key = IssuerKey.generate()
    meta = issuer_metadata([key], ISSUER)
    issuer = BbsIssuer(key, ISSUER)
    path = tmp_path / "wallet.json"
    Wallet.create(path, PASSPHRASE)
    with pytest.raises(CredentialError) as info:
        Wallet.create(path, PASSPHRASE)
    assert info.value.reason == "wallet_exists"
    wallet = Wallet.open(path, PASSPHRASE)
    request = wallet.issuance_request()
    assert set(request) == {"format", "commitment"}
    attrs = CredentialAttributes.from_holder(ADULT)
    response = issuer.issue(request, attrs)
    assert set(response) == {"format", "issuer", "kid", "signature", "signer_nym_entropy", "claims"}
    stored = wallet.accept(response, meta)
    assert stored.claims == attrs.to_claims() and stored.kid == key.kid and stored.issuer == ISSUER

    # on disk: encrypted, 0600, no claim value in clear; wrong passphrase refused
    text = path.read_bytes()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for value in ("Anna", "Müller", "Müller".encode().decode("latin-1"), "age_over_18", "given_name",
                  attrs.expires.isoformat(), response["signature"]):
        assert value.encode("utf-8", "ignore") not in text
    with pytest.raises(CredentialError) as info:
        Wallet.open(path, "wrong passphrase")
    assert info.value.reason == "wallet_locked" and "passphrase" in info.value.fix

    reopened = Wallet.open(path, PASSPHRASE)
    assert [c.claims for c in reopened.credentials()] == [attrs.to_claims()]
    presentation = reopened.present(SERVICE_A, NONCE, ["age_over_18"])
    result = verify(presentation, meta, service_id=SERVICE_A, nonce=NONCE)
    assert isinstance(result, VerifiedCredential)
    assert result.disclosed == {"age_over_18": True, "expires": attrs.expires}
    assert (result.issuer, result.kid, result.expires) == (ISSUER, key.kid, attrs.expires)
    assert len(bytes.fromhex(result.pseudonym)) == 48
    assert set(decode(presentation)) == {"format", "issuer", "kid", "disclosed", "disclosed_indexes", "proof",
                                         "pseudonym", "aud", "nonce"}
    assert "Anna" not in json.dumps(decode(presentation))


def test_disclosing_more_and_nothing(setup):
    everything = setup.wallet.present(SERVICE_A, NONCE, list(ATTRIBUTES))
    result = verify(everything, setup.meta, service_id=SERVICE_A, nonce=NONCE)
    assert {k: (v.isoformat() if isinstance(v, date) else v) for k, v in result.disclosed.items()} == \
        setup.attrs.to_claims()
    only_expiry = verify(setup.wallet.present(SERVICE_A, NONCE, []), setup.meta, service_id=SERVICE_A, nonce=NONCE)
    assert only_expiry.disclosed == {"expires": setup.attrs.expires}
    assert only_expiry.pseudonym == result.pseudonym
    with pytest.raises(CredentialError) as info:
        setup.wallet.present(SERVICE_A, NONCE, ["age_over_18", "birth_date"])
    assert info.value.reason == "attribute_unknown"


def test_accept_refuses_altered_or_foreign_responses(setup, tmp_path):
    wallet = Wallet.create(tmp_path / "w.json", PASSPHRASE)
    with pytest.raises(CredentialError) as info:
        wallet.accept(setup.response, setup.meta)  # no request made by this wallet
    assert info.value.reason == "no_pending_request"
    response = setup.issuer.issue(wallet.issuance_request(), setup.attrs)
    for change in ({"claims": {**response["claims"], "age_over_21": False}},
                   {"signature": setup.response["signature"]},  # another holder's signature
                   {"signer_nym_entropy": setup.response["signer_nym_entropy"]}):
        with pytest.raises(CredentialError) as info:
            wallet.accept({**response, **change}, setup.meta)
        assert info.value.reason == "signature_invalid"
    with pytest.raises(CredentialError) as info:
        wallet.accept({**response, "kid": "nope"}, setup.meta)
    assert info.value.reason == "unknown_kid"
    with pytest.raises(CredentialError) as info:
        wallet.accept({**response, "issuer": "https://evil.example"}, setup.meta)
    assert info.value.reason == "issuer_mismatch"
    assert wallet.credentials() == []
    wallet.accept(response, setup.meta)  # the pending request survived the refusals
    assert len(wallet.credentials()) == 1


# --- refusals ----------------------------------------------------------------------------------------------------

def test_good_presentation_verifies(setup, good):
    assert verify(good, setup.meta, service_id=SERVICE_A, nonce=NONCE).disclosed["age_over_18"] is True


def test_replay_with_another_nonce_refused(setup, good):
    refused("nonce_mismatch", good, setup.meta, nonce="another-nonce")
    # rewriting the declared nonce does not help: the proof binds the nonce the verifier expects
    refused("proof_invalid", encode({**decode(good), "nonce": "another-nonce"}), setup.meta, nonce="another-nonce")


def test_replay_to_another_audience_refused(setup, good):
    refused("audience_mismatch", good, setup.meta, service_id=SERVICE_B)
    refused("proof_invalid", encode({**decode(good), "aud": SERVICE_B}), setup.meta, service_id=SERVICE_B)
    # B's pseudonym cannot be swapped in either: the proof binds service A's context
    at_b = decode(setup.wallet.present(SERVICE_B, NONCE, ["age_over_18"]))
    refused("proof_invalid", encode({**decode(good), "aud": SERVICE_B, "pseudonym": at_b["pseudonym"]}), setup.meta,
            service_id=SERVICE_B)


@pytest.mark.parametrize("change", [
    {"age_over_18": False},
    {"expires": "2099-12-31"},
])
def test_modified_disclosed_attribute_refused(setup, good, change):
    doc = decode(good)
    refused("proof_invalid", encode({**doc, "disclosed": {**doc["disclosed"], **change}}), setup.meta)


def test_modified_name_refused(setup):
    doc = decode(setup.wallet.present(SERVICE_A, NONCE, ["given_name"]))
    assert doc["disclosed"]["given_name"] == "Anna"
    refused("proof_invalid", encode({**doc, "disclosed": {**doc["disclosed"], "given_name": "Anne"}}), setup.meta)
    # an attribute added without being proven
    refused("proof_invalid", encode({**doc, "disclosed": {**doc["disclosed"], "age_over_21": True},
                                     "disclosed_indexes": [2, 3, 6]}), setup.meta)


def test_pseudonym_of_someone_else_refused(setup, good, tmp_path):
    other = Setup(tmp_path, HolderFacts("Bob", "Roe", "F", date(1980, 1, 1)), key=setup.key)
    theirs = decode(other.wallet.present(SERVICE_A, NONCE, ["age_over_18"]))
    refused("proof_invalid", encode({**decode(good), "pseudonym": theirs["pseudonym"]}), setup.meta)


def test_other_issuer_key_or_unknown_kid_refused(setup, good, tmp_path):
    second = IssuerKey.generate(kid="second")
    refused("unknown_kid", good, issuer_metadata([second], ISSUER))
    # the same kid published with another key (a substituted or rotated key): the proof does not verify
    impostor = IssuerKey(setup.key.kid, second.not_before, second.not_after, second.secret_key, second.public_key)
    refused("proof_invalid", good, issuer_metadata([impostor], ISSUER))
    # the issuer's other (valid) key named in the presentation: the header binds the kid and the key differs
    both = issuer_metadata([setup.key, second], ISSUER)
    assert verify(good, both, service_id=SERVICE_A, nonce=NONCE)
    refused("proof_invalid", encode({**decode(good), "kid": "second"}), both)
    # another issuer's metadata
    refused("issuer_mismatch", good, issuer_metadata([setup.key], "https://other-issuer.example"))
    # a credential from another issuer with its own key, presented against ours
    foreign = Setup(tmp_path)
    refused("unknown_kid", foreign.wallet.present(SERVICE_A, NONCE, ["age_over_18"]), setup.meta)


def test_expired_credential_refused(setup, good):
    expires = setup.attrs.expires
    last_day = datetime(expires.year, expires.month, expires.day, 23, 59, tzinfo=UTC)
    assert verify(good, setup.meta, service_id=SERVICE_A, nonce=NONCE, now=last_day).expires == expires
    err = refused("expired", good, setup.meta, now=last_day + timedelta(minutes=1))
    assert expires.isoformat() in err.message
    # expires cannot be hidden: a presentation without it is refused before the proof is checked
    doc = decode(good)
    refused("malformed", encode({**doc, "disclosed": {"age_over_18": True}, "disclosed_indexes": [1]}), setup.meta)


def test_key_outside_validity_refused(setup, good):
    refused("key_not_valid", good, setup.meta, now=setup.key.not_before - timedelta(seconds=1))
    refused("key_not_valid", good, setup.meta, now=setup.key.not_after)
    with pytest.raises(ValueError):
        verify(good, setup.meta, service_id=SERVICE_A, nonce=NONCE, now=datetime(2026, 1, 1))  # naive


@pytest.mark.parametrize("mutate", [
    lambda p: p + "*",                                   # not base64url
    lambda p: p[:-7],                                    # truncated envelope
    lambda p: b64e(b"not json"),
    lambda p: b64e(b"[1, 2, 3]"),
    lambda p: "",
    lambda p: "A" * 20000,                               # oversized
    lambda p: encode({k: v for k, v in decode(p).items() if k != "proof"}),      # missing field
    lambda p: encode({**decode(p), "extra": "x"}),                               # unknown field
    lambda p: encode({**decode(p), "format": "idproof-bbs-nym/2"}),
    lambda p: encode({**decode(p), "proof": 42}),
    lambda p: encode({**decode(p), "proof": "a+b/"}),
    lambda p: encode({**decode(p), "disclosed": {"age_over_18": "yes", "expires": "2030-01-01"}}),
    lambda p: encode({**decode(p), "disclosed": {**decode(p)["disclosed"], "birth_date": "1990-01-01"}}),
    lambda p: encode({**decode(p), "disclosed_indexes": [0, 6]}),
    lambda p: encode({**decode(p), "disclosed": {**decode(p)["disclosed"], "expires": "tomorrow!!"}}),
])
def test_malformed_presentations_refused(setup, good, mutate):
    refused("malformed", mutate(good), setup.meta)


@pytest.mark.parametrize("cut", [1, 32, 48, 200])
def test_truncated_or_padded_proof_refused(setup, good, cut):
    doc = decode(good)
    proof = base64.urlsafe_b64decode(doc["proof"] + "==")
    refused("proof_invalid", encode({**doc, "proof": b64e(proof[:-cut])}), setup.meta)
    refused("proof_invalid", encode({**doc, "proof": b64e(proof + bytes(cut))}), setup.meta)
    refused("proof_invalid", encode({**doc, "pseudonym": b64e(bytes(48))}), setup.meta)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=10)
_FIELDS = ["format", "issuer", "kid", "disclosed", "disclosed_indexes", "proof", "pseudonym", "aud", "nonce"]


def _verify_or_credential_error(setup, presentation):
    try:
        return verify(presentation, setup.meta, service_id=SERVICE_A, nonce=NONCE)
    except CredentialError as exc:
        assert exc.reason in {"malformed", "proof_invalid", "unknown_kid", "issuer_mismatch", "audience_mismatch",
                              "nonce_mismatch"}
        return None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_verify_only_raises_credential_error(setup, good, data):
    kind = data.draw(st.sampled_from(["text", "field", "char", "proof_bytes"]))
    doc = decode(good)
    if kind == "text":
        candidate = data.draw(st.text(max_size=300) | st.binary(max_size=300).map(b64e))
    elif kind == "field":
        name = data.draw(st.sampled_from(_FIELDS))
        candidate = encode({**doc, name: data.draw(_JSON)})
    elif kind == "char":
        i = data.draw(st.integers(0, len(good) - 1))
        candidate = good[:i] + data.draw(st.characters(codec="ascii")) + good[i + 1:]
    else:
        proof = bytearray(base64.urlsafe_b64decode(doc["proof"] + "=="))
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] ^= data.draw(st.integers(1, 255))
        candidate = encode({**doc, "proof": b64e(bytes(proof))})
    result = _verify_or_credential_error(setup, candidate)
    if result is not None:  # only an unchanged meaning may verify
        assert result == verify(good, setup.meta, service_id=SERVICE_A, nonce=NONCE)


def test_verify_refuses_bad_metadata(setup, good):
    for meta in ({}, {"issuer": ISSUER}, {"issuer": ISSUER, "keys": "x"}, [1]):
        refused("metadata_invalid", good, meta)  # type: ignore[arg-type]
    jwk = copy.deepcopy(setup.meta["keys"][0])
    refused("metadata_invalid", good, {"issuer": ISSUER, "keys": [{**jwk, "x": jwk["x"][:-4]}]})
    refused("metadata_invalid", good, {"issuer": ISSUER, "keys": [{**jwk, "d": "secret"}]})
