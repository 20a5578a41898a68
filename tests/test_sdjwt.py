"""SD-JWT VC (idproof.credential.sdjwt): round trips, batch unlinkability, and one test per rejection rule.

Every negative test starts from a valid presentation and makes exactly one change, re-signing the issuer JWT
(with the issuer's key) and the KB-JWT (with the holder's key, over the new sd_hash) wherever the change would
otherwise break a signature or the sd_hash: so only the check under test can catch it, and the test fails if that
check is removed (it asserts the specific ``reason``). ``test_resigning_helpers_preserve_validity`` proves the
re-signing helpers themselves produce valid presentations. Re-signing uses jwcrypto's JWS object, a code path
independent of the module's own signer.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jws as jw_jws
from jwcrypto.jwa import JWA
from jwcrypto.jwk import JWK, JWKSet

from idproof.credential import sdjwt
from idproof.credential.sdjwt import SdJwtError

ISS = "https://issuer.idproof.example"
VCT = "https://idproof.example/credentials/identity"
AUD = "https://verifier.example"
NONCE = "nonce-5f2b1c0e9a"
NOW = datetime(2026, 3, 10, 14, 37, 12, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
LIFETIME = timedelta(days=30)
CLAIMS: dict[str, Any] = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1815-12-10",
    "age_over_18": True,
    "address": {"street_address": "12 St James's Square", "locality": "London", "country": "GB"},
    "nationalities": ["GB", "IT"],
}


# --- helpers ---------------------------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(disclosure: str) -> str:
    return b64(hashlib.sha256(disclosure.encode("ascii")).digest())


def mk_disclosure(*elements: Any) -> str:
    return b64(json.dumps(list(elements)).encode())


def decode(disclosure: str) -> list[Any]:
    return json.loads(unb64(disclosure))


def jws_sign(key: JWK, header: dict[str, Any], payload: dict[str, Any] | str) -> str:
    """Sign with jwcrypto's JWS object (independent of the module's signer)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    token = jw_jws.JWS(text.encode())
    token.add_signature(key, alg=header["alg"], protected=json.dumps(header))
    return token.serialize(compact=True)


def raw_sign(key: JWK, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """Sign headers jwcrypto's JWS object refuses to produce (crit), through the JWA primitive."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + b64(JWA.signing_alg(header["alg"]).sign(key, signing_input.encode()))


@dataclass
class Parts:
    jwt: str
    disclosures: list[str]
    kb: str

    @classmethod
    def of(cls, presentation: str) -> Parts:
        pieces = presentation.split("~")
        return cls(pieces[0], pieces[1:-1], pieces[-1])

    @property
    def header(self) -> dict[str, Any]:
        return json.loads(unb64(self.jwt.split(".")[0]))

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(unb64(self.jwt.split(".")[1]))

    @property
    def kb_header(self) -> dict[str, Any]:
        return json.loads(unb64(self.kb.split(".")[0]))

    @property
    def kb_payload(self) -> dict[str, Any]:
        return json.loads(unb64(self.kb.split(".")[1]))

    def sd_jwt(self) -> str:
        return self.jwt + "~" + "".join(d + "~" for d in self.disclosures)

    def __str__(self) -> str:
        return self.sd_jwt() + self.kb

    def resign_issuer(self, key: JWK, *, header: dict[str, Any] | None = None,
                      payload: dict[str, Any] | str | None = None) -> Parts:
        self.jwt = jws_sign(key, header if header is not None else self.header,
                            payload if payload is not None else self.payload)
        return self

    def resign_kb(self, key: JWK, *, header: dict[str, Any] | None = None, drop: tuple[str, ...] = (),
                  **claims: Any) -> Parts:
        """A fresh KB-JWT over the current SD-JWT (sd_hash recomputed unless given), signed by ``key``."""
        body = {"iat": NOW_TS, "aud": AUD, "nonce": NONCE, "sd_hash": digest(self.sd_jwt())}
        body.update(claims)
        for name in drop:
            body.pop(name)
        self.kb = jws_sign(key, header or {"alg": "ES256", "typ": "kb+jwt"}, body)
        return self


def find(parts: Parts, name: str) -> str:
    """The presented Disclosure of the top-level claim ``name``."""
    return next(d for d in parts.disclosures if len(decode(d)) == 3 and decode(d)[1] == name)


# --- fixtures --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def issuer() -> JWK:
    return JWK.generate(kty="EC", crv="P-256", kid="issuer-2026-03")


@pytest.fixture(scope="module")
def metadata(issuer: JWK) -> dict[str, Any]:
    return sdjwt.issuer_metadata([issuer], ISS, now=NOW)


@pytest.fixture(scope="module")
def holders() -> list[JWK]:
    return [JWK.generate(kty="EC", crv="P-256") for _ in range(5)]


@pytest.fixture(scope="module")
def batch(issuer: JWK, holders: list[JWK]) -> list[str]:
    # the issuer only ever sees the holders' public keys
    public = [JWK(**h.export_public(as_dict=True)) for h in holders]
    return sdjwt.issue_batch(issuer, iss=ISS, kid="issuer-2026-03", vct=VCT, claims=CLAIMS, holder_keys=public,
                             lifetime=LIFETIME, now=NOW)


@pytest.fixture
def valid(batch: list[str], holders: list[JWK]) -> Parts:
    """A valid presentation: given_name, address.locality and the second nationality, with a KB-JWT."""
    return Parts.of(sdjwt.present(batch[0], holders[0], disclose=["given_name", "address.locality", "nationalities.1"],
                                  aud=AUD, nonce=NONCE, now=NOW))


def check(presentation: Parts | str, keys: Any, **kw: Any) -> sdjwt.VerifiedPresentation:
    args = {"aud": AUD, "nonce": NONCE, "now": NOW} | kw
    return sdjwt.verify(str(presentation), keys, **args)


def rejected(presentation: Parts | str, keys: Any, reason: str, **kw: Any) -> SdJwtError:
    with pytest.raises(SdJwtError) as info:
        check(presentation, keys, **kw)
    assert info.value.reason == reason, f"expected {reason}, got {info.value}"
    assert info.value.message and str(info.value).startswith(reason)
    return info.value


# --- round trips ---------------------------------------------------------------------------------------------------

SUBSETS: list[tuple[list[str], dict[str, Any]]] = [
    ([], {}),
    (["age_over_18"], {"age_over_18": True}),
    (["given_name", "family_name"], {"given_name": "Ada", "family_name": "Lovelace"}),
    (["address.locality", "nationalities.0"], {"address": {"locality": "London"}, "nationalities": ["GB"]}),
    (list(CLAIMS), CLAIMS),
]


def test_round_trip_each_credential_of_the_batch_discloses_exactly_its_subset(batch, holders, metadata):
    assert len(batch) == len(holders) == len(SUBSETS)
    for credential, holder, (disclose, expected) in zip(batch, holders, SUBSETS):
        pres = sdjwt.present(credential, holder, disclose=disclose, aud=AUD, nonce=NONCE, now=NOW)
        result = check(pres, metadata)
        assert result.claims == expected  # exactly those claims and nothing else
        assert (result.iss, result.vct, result.kid, result.key_bound) == (ISS, VCT, "issuer-2026-03", True)
        assert result.holder_thumbprint == holder.thumbprint()  # RFC 7638, cross-checked against jwcrypto
        assert result.exp > NOW and result.iat <= NOW
        # nothing undisclosed travels: the presented Disclosures name only the requested claims and their containers
        names = {decode(d)[1] for d in Parts.of(pres).disclosures if len(decode(d)) == 3}
        wanted = {seg for p in disclose for seg in p.split(".") if not seg.isdigit()}
        if "address" in disclose:
            wanted |= set(CLAIMS["address"])
        assert names == wanted


def test_whole_object_and_array_disclosure_and_tuple_paths(batch, holders, metadata):
    pres = sdjwt.present(batch[1], holders[1], disclose=["address", ("nationalities",)], aud=AUD, nonce=NONCE, now=NOW)
    assert check(pres, metadata).claims == {"address": CLAIMS["address"], "nationalities": ["GB", "IT"]}


def test_the_processed_credential_equals_the_claims_issued(batch, holders, metadata):
    """RFC 9901 Section 7.1 on all Disclosures reconstructs the Unsecured Payload exactly (decoys vanish)."""
    parts = Parts.of(batch[2])
    parts.resign_kb(holders[2])
    assert check(parts, metadata).claims == CLAIMS


def test_every_user_claim_is_selectively_disclosable_with_decoys(batch):
    parts = Parts.of(batch[0])
    payload = parts.payload
    assert set(payload) == {"iss", "vct", "iat", "nbf", "exp", "cnf", "_sd", "_sd_alg"}
    assert payload["_sd_alg"] == "sha-256"
    top = [d for d in parts.disclosures if len(decode(d)) == 3 and decode(d)[1] in CLAIMS]
    assert len(top) == len(CLAIMS)
    assert len(payload["_sd"]) % 4 == 0 and len(payload["_sd"]) > len(CLAIMS)  # decoys pad to the bucket
    assert payload["_sd"] == sorted(payload["_sd"])  # order reveals nothing
    address = decode(find(parts, "address"))[2]
    assert set(address) == {"_sd"} and len(address["_sd"]) == 4  # 3 members + 1 decoy
    nationalities = decode(find(parts, "nationalities"))[2]
    assert all(set(e) == {"..."} for e in nationalities) and len(nationalities) == 4  # 2 elements + 2 decoys
    assert all(len(unb64(decode(d)[0])) == 16 for d in parts.disclosures)  # 128-bit salts
    assert parts.header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-2026-03"}


def test_rfc9901_disclosure_digest_vectors():
    """RFC 9901 Sections 4.2.3 and 4.2.2: the digests of the specification's example Disclosures."""
    from idproof.credential._sdjwt_process import parse_disclosure

    family = parse_disclosure("WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0")
    assert (family.digest, family.name, family.value) == ("X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0",
                                                          "family_name", "Möbius")
    element = parse_disclosure("WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0")
    assert (element.digest, element.name, element.value) == ("w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs",
                                                             None, "FR")


def test_jwcrypto_verifies_what_we_sign(batch, holders, issuer, valid):
    token = jw_jws.JWS()
    token.deserialize(valid.jwt)
    token.verify(JWK(**issuer.export_public(as_dict=True)))
    kb = jw_jws.JWS()
    kb.deserialize(valid.kb)
    kb.verify(JWK(**holders[0].export_public(as_dict=True)))
    assert valid.kb_header == {"alg": "ES256", "typ": "kb+jwt"}
    assert set(valid.kb_payload) == {"iat", "aud", "nonce", "sd_hash"}
    assert valid.kb_payload["sd_hash"] == digest(valid.sd_jwt())


def test_eddsa_issuer_and_holder():
    issuer = JWK.generate(kty="OKP", crv="Ed25519", kid="ed-1")
    holder = JWK.generate(kty="OKP", crv="Ed25519")
    [cred] = sdjwt.issue_batch(issuer, iss=ISS, kid="ed-1", vct=VCT, claims={"age_over_18": True}, holder_keys=[holder],
                               lifetime=LIFETIME, now=NOW)
    assert Parts.of(cred).header["alg"] == "EdDSA"
    pres = sdjwt.present(cred, holder, disclose=["age_over_18"], aud=AUD, nonce=NONCE, now=NOW)
    assert Parts.of(pres).kb_header["alg"] == "EdDSA"
    assert check(pres, sdjwt.issuer_metadata([issuer], ISS, now=NOW)).claims == {"age_over_18": True}


def test_issuer_keys_as_jwk_jwkset_jwks_and_metadata(issuer, metadata, valid):
    public = JWK(**issuer.export_public(as_dict=True))
    keyset = JWKSet()
    keyset.add(public)
    keyset.add(JWK.generate(kty="EC", crv="P-256", kid="other"))
    for keys in (public, issuer, keyset, {"keys": [public.export_public(as_dict=True)]}, metadata):
        assert check(valid, keys).claims["given_name"] == "Ada"
    doc = metadata["jwks"]["keys"][0]
    assert set(doc) == {"kty", "crv", "x", "y", "kid", "alg", "use", "nbf", "exp"}
    assert (doc["alg"], doc["use"], metadata["issuer"]) == ("ES256", "sig", ISS)


def test_disclosures_in_any_order_and_without_key_binding_when_policy_allows(valid, holders, metadata):
    valid.disclosures.reverse()
    valid.resign_kb(holders[0])
    assert check(valid, metadata).claims["address"] == {"locality": "London"}
    bare = Parts(valid.jwt, valid.disclosures, "")
    result = check(bare, metadata, require_key_binding=False)
    assert result.key_bound is False and result.claims["given_name"] == "Ada"


def test_always_visible_user_claims_and_selectively_disclosable_iat(issuer, holders, metadata):
    [cred] = sdjwt.issue_batch(issuer, iss=ISS, kid="issuer-2026-03", vct=VCT, claims={"sub": "u-1", "age": 40},
                               holder_keys=[holders[0]], lifetime=LIFETIME, now=NOW,
                               always_visible=("iss", "vct", "exp", "nbf", "cnf", "sub"))
    parts = Parts.of(cred)
    assert parts.payload["sub"] == "u-1" and "iat" not in parts.payload
    hidden = check(sdjwt.present(cred, holders[0], disclose=[], aud=AUD, nonce=NONCE, now=NOW), metadata)
    assert hidden.claims == {"sub": "u-1"} and hidden.iat is None
    shown = check(sdjwt.present(cred, holders[0], disclose=["iat"], aud=AUD, nonce=NONCE, now=NOW), metadata)
    assert shown.claims == {"sub": "u-1"} and shown.iat == datetime(2026, 3, 10, 14, tzinfo=UTC)


def test_leeway_tolerates_small_clock_skew(valid, issuer, holders, metadata):
    payload = valid.payload | {"exp": NOW_TS - 10}
    valid.resign_issuer(issuer, payload=payload).resign_kb(holders[0])
    assert check(valid, metadata).exp == datetime.fromtimestamp(NOW_TS - 10, tz=UTC)
    rejected(valid, metadata, "expired", leeway=timedelta(0))


def test_legacy_vc_sd_jwt_typ_is_accepted(valid, issuer, holders, metadata):
    valid.resign_issuer(issuer, header=valid.header | {"typ": "vc+sd-jwt"}).resign_kb(holders[0])
    assert check(valid, metadata).claims["given_name"] == "Ada"


# --- batch unlinkability ---------------------------------------------------------------------------------------

def test_batch_credentials_share_no_linkable_value(batch):
    parts = [Parts.of(c) for c in batch]
    salts = [decode(d)[0] for p in parts for d in p.disclosures]
    assert len(salts) == len(set(salts))
    digests: list[str] = []
    for p in parts:
        digests += p.payload["_sd"]
        for d in p.disclosures:
            value = decode(d)[-1]
            if isinstance(value, dict):
                digests += value["_sd"]
            elif isinstance(value, list):
                digests += [e["..."] for e in value]
    assert len(digests) == len(set(digests))  # real and decoy digests alike
    signatures = [p.jwt.split(".")[2] for p in parts]
    assert len(set(signatures)) == len(parts)
    cnfs = [json.dumps(p.payload["cnf"], sort_keys=True) for p in parts]
    assert len(set(cnfs)) == len(parts)
    for p in parts:
        assert set(p.payload["cnf"]["jwk"]) == {"kty", "crv", "x", "y"}  # no kid / private members
    # times: one coarsened value for the whole batch, not per-credential exact times
    times = {(p.payload["iat"], p.payload["nbf"], p.payload["exp"]) for p in parts}
    assert len(times) == 1
    iat, nbf, exp = times.pop()
    assert iat % 3600 == 0 and exp % 3600 == 0 and nbf == iat
    assert iat <= NOW_TS < iat + 3600
    assert NOW_TS + LIFETIME.total_seconds() - 3600 < exp <= NOW_TS + LIFETIME.total_seconds()


def test_two_batches_in_the_same_hour_share_the_time_grid(issuer, holders):
    kw = {"iss": ISS, "kid": "issuer-2026-03", "vct": VCT, "claims": {"a": 1}, "lifetime": LIFETIME}
    [first] = sdjwt.issue_batch(issuer, holder_keys=[holders[0]], now=NOW, **kw)
    [second] = sdjwt.issue_batch(issuer, holder_keys=[holders[1]], now=NOW + timedelta(minutes=20), **kw)
    pick = lambda c: {k: Parts.of(c).payload[k] for k in ("iat", "nbf", "exp")}
    assert pick(first) == pick(second)


def test_batch_rejects_a_repeated_holder_key(issuer, holders):
    with pytest.raises(ValueError, match="repeats an earlier key"):
        sdjwt.issue_batch(issuer, iss=ISS, kid="issuer-2026-03", vct=VCT, claims={"a": 1},
                          holder_keys=[holders[0], JWK(**holders[0].export_public(as_dict=True))],
                          lifetime=LIFETIME, now=NOW)


@pytest.mark.parametrize("kwargs, message", [
    ({"claims": {"iss": "x"}}, "set by issue_batch"),
    ({"claims": {"a": {"_sd": 1}}}, "reserved"),
    ({"claims": {"a": [{"...": 1}]}}, "reserved"),
    ({"claims": {"a": float("nan")}}, "JSON values"),
    ({"always_visible": ("iss", "vct", "nbf", "cnf")}, "must stay in always_visible"),
    ({"lifetime": timedelta(minutes=10)}, "shorter than time_granularity"),
    ({"holder_keys": []}, "non-empty"),
    ({"now": datetime(2026, 3, 10, 14, 0)}, "timezone-aware"),
    ({"kid": "not-the-keys-kid"}, "differs from the issuer key's own kid"),
])
def test_issue_batch_refuses_bad_arguments(issuer, holders, kwargs, message):
    args = {"iss": ISS, "kid": "issuer-2026-03", "vct": VCT, "claims": {"a": 1}, "holder_keys": [holders[0]],
            "lifetime": LIFETIME, "now": NOW} | kwargs
    with pytest.raises(ValueError, match=message):
        sdjwt.issue_batch(issuer, **args)


def test_issue_batch_refuses_unsupported_keys(holders):
    rsa = JWK.generate(kty="RSA", size=2048, kid="r")
    with pytest.raises(SdJwtError) as info:
        sdjwt.issue_batch(rsa, iss=ISS, kid="r", vct=VCT, claims={"a": 1}, holder_keys=[holders[0]],
                          lifetime=LIFETIME, now=NOW)
    assert info.value.reason == "issuer_key_invalid"
    public_only = JWK(**holders[0].export_public(as_dict=True))
    with pytest.raises(SdJwtError) as info:
        sdjwt.issue_batch(public_only, iss=ISS, kid="k", vct=VCT, claims={"a": 1}, holder_keys=[holders[1]],
                          lifetime=LIFETIME, now=NOW)
    assert info.value.reason == "issuer_key_invalid"
    with pytest.raises(SdJwtError) as info:
        sdjwt.issue_batch(JWK.generate(kty="EC", crv="P-256", kid="k"), iss=ISS, kid="k", vct=VCT, claims={"a": 1},
                          holder_keys=[JWK.generate(kty="EC", crv="P-384")], lifetime=LIFETIME, now=NOW)
    assert info.value.reason == "holder_key_invalid"


# --- the holder ------------------------------------------------------------------------------------------------

def test_holder_checks_the_issuer_signature_on_receipt(batch, metadata, issuer):
    """RFC 9901 Section 7.2: the holder verifies what it received (no KB-JWT, so no aud / nonce)."""
    received = sdjwt.verify(batch[4], metadata, aud="", nonce="", now=NOW, require_key_binding=False)
    assert received.claims == CLAIMS and received.key_bound is False
    tampered = Parts.of(batch[4])
    tampered.resign_issuer(JWK.generate(kty="EC", crv="P-256"))
    with pytest.raises(SdJwtError) as info:
        sdjwt.verify(str(tampered), metadata, aud="", nonce="", now=NOW, require_key_binding=False)
    assert info.value.reason == "signature_invalid"
    with pytest.raises(ValueError, match="aud and nonce"):
        sdjwt.verify(batch[4], metadata, aud="", nonce="", now=NOW)


def test_present_refuses_the_wrong_holder_key(batch, holders):
    with pytest.raises(SdJwtError) as info:
        sdjwt.present(batch[0], holders[1], disclose=["given_name"], aud=AUD, nonce=NONCE, now=NOW)
    assert info.value.reason == "holder_key_mismatch"


@pytest.mark.parametrize("path", ["passport_number", "address.planet", "nationalities.2", "given_name.first"])
def test_present_refuses_unknown_claims(batch, holders, path):
    with pytest.raises(SdJwtError) as info:
        sdjwt.present(batch[0], holders[0], disclose=[path], aud=AUD, nonce=NONCE, now=NOW)
    assert info.value.reason == "claim_not_found"
    assert "available" in info.value.message


def test_present_refuses_a_presentation_and_a_bare_string(batch, holders, valid):
    with pytest.raises(SdJwtError) as info:
        sdjwt.present(str(valid), holders[0], disclose=["given_name"], aud=AUD, nonce=NONCE, now=NOW)
    assert info.value.reason == "credential_malformed"
    with pytest.raises(TypeError, match="not a single string"):
        sdjwt.present(batch[0], holders[0], disclose="given_name", aud=AUD, nonce=NONCE, now=NOW)


def test_present_refuses_a_credential_carrying_an_unreferenced_disclosure(batch, holders):
    """RFC 9901 Section 7.2 / 7.1 step 5 on the holder side: a credential padded with a foreign Disclosure."""
    forged = batch[0] + mk_disclosure("c2FsdHNhbHRzYWx0c2FsdA", "age_over_21", True) + "~"
    with pytest.raises(SdJwtError) as info:
        sdjwt.present(forged, holders[0], disclose=["given_name"], aud=AUD, nonce=NONCE, now=NOW)
    assert info.value.reason == "unreferenced_disclosure"


# --- rejections: the issuer-signed JWT ------------------------------------------------------------------------

def test_resigning_helpers_preserve_validity(valid, issuer, holders, metadata):
    """The control for every negative test below: re-signing without a change still verifies."""
    valid.resign_issuer(issuer).resign_kb(holders[0])
    assert check(valid, metadata).claims == {"given_name": "Ada", "address": {"locality": "London"},
                                             "nationalities": ["IT"]}


def test_signature_invalid(valid, holders, metadata):
    header, payload, signature = valid.jwt.split(".")
    claims = json.loads(unb64(payload)) | {"vct": "https://idproof.example/credentials/admin"}
    valid.jwt = ".".join([header, b64(json.dumps(claims).encode()), signature])  # not re-signed: that is the test
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "signature_invalid")


def test_signature_of_wrong_length_is_invalid(valid, holders, metadata):
    """RFC 7518 Section 3.4: R || S, 32 bytes each. A zero byte in front of S keeps the integers (so a lax
    decoder would accept it) but makes a second encoding of the same signature."""
    header, payload, signature = valid.jwt.split(".")
    raw = unb64(signature)
    valid.jwt = ".".join([header, payload, b64(raw[:32] + b"\x00" + raw[32:])])
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "signature_invalid")


def test_alg_none_is_not_allowed(valid, holders, metadata):
    header = valid.header | {"alg": "none"}
    valid.jwt = b64(json.dumps(header).encode()) + "." + valid.jwt.split(".")[1] + "."
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "alg_not_allowed")


def test_hs256_with_the_public_key_as_secret_is_not_allowed(valid, issuer, holders, metadata):
    """The classic algorithm confusion: an HMAC 'signature' keyed with the issuer's public key."""
    secret = JWK(kty="oct", k=b64(issuer.export_public().encode()))
    valid.resign_issuer(secret, header=valid.header | {"alg": "HS256"}).resign_kb(holders[0])
    rejected(valid, metadata, "alg_not_allowed")


def test_alg_that_does_not_belong_to_the_key(valid, holders, metadata):
    ed = JWK.generate(kty="OKP", crv="Ed25519")
    valid.resign_issuer(ed, header=valid.header | {"alg": "EdDSA"}).resign_kb(holders[0])
    rejected(valid, metadata, "alg_key_mismatch")


@pytest.mark.parametrize("typ", ["JWT", "sd+jwt", "kb+jwt", None])
def test_wrong_typ_on_the_issuer_jwt(valid, issuer, holders, metadata, typ):
    header = {k: v for k, v in valid.header.items() if k != "typ"} | ({"typ": typ} if typ else {})
    valid.resign_issuer(issuer, header=header).resign_kb(holders[0])
    rejected(valid, metadata, "typ_invalid")


def test_crit_header_is_refused(valid, issuer, holders, metadata):
    valid.jwt = raw_sign(issuer, valid.header | {"crit": ["exp"]}, valid.payload)
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "header_malformed")


def test_unknown_kid(valid, issuer, holders, metadata):
    valid.resign_issuer(issuer, header=valid.header | {"kid": "issuer-1999-01"}).resign_kb(holders[0])
    rejected(valid, metadata, "unknown_kid")


@pytest.mark.parametrize("kid", [["issuer-2026-03"], {"kid": "issuer-2026-03"}, 7])
def test_kid_that_is_not_a_string(valid, issuer, holders, metadata, kid):
    valid.resign_issuer(issuer, header=valid.header | {"kid": kid}).resign_kb(holders[0])
    rejected(valid, metadata, "header_malformed")


def test_issuer_key_restricted_to_other_uses_is_not_used(valid, issuer, metadata):
    for restriction in ({"use": "enc"}, {"key_ops": ["encrypt"]}, {"key_ops": "verify"}, {"alg": "ES384"}):
        key = metadata["jwks"]["keys"][0] | restriction
        rejected(valid, {"issuer": ISS, "jwks": {"keys": [key]}}, "issuer_keys_invalid")


def test_missing_kid_with_several_issuer_keys(valid, issuer, holders):
    second = JWK.generate(kty="EC", crv="P-256", kid="issuer-2026-04")
    doc = sdjwt.issuer_metadata([issuer, second], ISS, now=NOW)
    assert check(valid, doc).kid == "issuer-2026-03"
    valid.resign_issuer(issuer, header={k: v for k, v in valid.header.items() if k != "kid"}).resign_kb(holders[0])
    rejected(valid, doc, "unknown_kid")


def test_issuer_mismatch_with_the_metadata(valid, issuer, holders, metadata):
    valid.resign_issuer(issuer, payload=valid.payload | {"iss": "https://evil.example"}).resign_kb(holders[0])
    rejected(valid, metadata, "issuer_mismatch")


def test_issuer_key_outside_its_published_validity(valid, issuer):
    expired = sdjwt.issuer_metadata([issuer], ISS, validity={"issuer-2026-03": (NOW - timedelta(days=400),
                                                                                 NOW - timedelta(days=1))}, now=NOW)
    rejected(valid, expired, "key_expired")
    future = sdjwt.issuer_metadata([issuer], ISS, not_before=NOW + timedelta(days=1),
                                   not_after=NOW + timedelta(days=400), now=NOW)
    rejected(valid, future, "key_not_yet_valid")


@pytest.mark.parametrize("alg", ["sha-512", "sha-256-32", "SHA-256", "md5"])
def test_sd_alg_other_than_sha256(valid, issuer, holders, metadata, alg):
    valid.resign_issuer(issuer, payload=valid.payload | {"_sd_alg": alg}).resign_kb(holders[0])
    rejected(valid, metadata, "sd_alg_unsupported")


def test_sd_alg_absent_defaults_to_sha256(valid, issuer, holders, metadata):
    payload = {k: v for k, v in valid.payload.items() if k != "_sd_alg"}
    valid.resign_issuer(issuer, payload=payload).resign_kb(holders[0])
    assert check(valid, metadata).claims["given_name"] == "Ada"


@pytest.mark.parametrize("bad", ["X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0", {"d": "x"}, [1, 2], [None]])
def test_sd_that_is_not_an_array_of_strings(valid, issuer, holders, metadata, bad):
    valid.resign_issuer(issuer, payload=valid.payload | {"_sd": bad}).resign_kb(holders[0])
    rejected(valid, metadata, "sd_malformed")


def test_nested_sd_that_is_not_an_array_of_strings(valid, issuer, holders, metadata):
    valid.resign_issuer(issuer, payload=valid.payload | {"extra": {"_sd": "abc"}}).resign_kb(holders[0])
    rejected(valid, metadata, "sd_malformed")


@pytest.mark.parametrize("change", ["exp", "nbf", "iat"])
def test_validity_claims(valid, issuer, holders, metadata, change):
    value = {"exp": NOW_TS - 3600, "nbf": NOW_TS + 3600, "iat": NOW_TS + 3600}[change]
    valid.resign_issuer(issuer, payload=valid.payload | {change: value}).resign_kb(holders[0])
    rejected(valid, metadata, {"exp": "expired", "nbf": "not_yet_valid", "iat": "iat_in_future"}[change])


@pytest.mark.parametrize("claim", ["iss", "vct", "exp"])
def test_required_claim_missing(valid, issuer, holders, metadata, claim):
    payload = {k: v for k, v in valid.payload.items() if k != claim}
    valid.resign_issuer(issuer, payload=payload).resign_kb(holders[0])
    rejected(valid, metadata, "claim_missing")


@pytest.mark.parametrize("value", ["2026-04-10", True, [1]])
def test_exp_that_is_not_a_numeric_date(valid, issuer, holders, metadata, value):
    valid.resign_issuer(issuer, payload=valid.payload | {"exp": value}).resign_kb(holders[0])
    rejected(valid, metadata, "claim_malformed")


def test_vct_mismatch_when_expected(valid, issuer, holders, metadata):
    assert check(valid, metadata, expected_vct=VCT).vct == VCT
    valid.resign_issuer(issuer, payload=valid.payload | {"vct": "https://idproof.example/credentials/age"})
    valid.resign_kb(holders[0])
    assert check(valid, metadata).vct.endswith("/age")  # only the expectation catches it
    rejected(valid, metadata, "vct_mismatch", expected_vct=VCT)


def test_duplicate_member_names_in_the_payload(valid, issuer, holders, metadata):
    text = json.dumps(valid.payload)
    text = text[:-1] + ', "vct": "https://idproof.example/credentials/admin"}'  # vct twice: which one wins?
    valid.resign_issuer(issuer, payload=text).resign_kb(holders[0])
    rejected(valid, metadata, "jwt_malformed")


@pytest.mark.parametrize("token", ["onlytwo.parts", "a.b.c.d", "e30.e30.%%%", "bm90IGpzb24.e30.AA"])
def test_issuer_jwt_malformed(valid, holders, metadata, token):
    valid.jwt = token
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "jwt_malformed")


def test_non_canonical_base64url_signature(valid, holders, metadata):
    header, payload, signature = valid.jwt.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 64 bytes encode to 86 characters; the last one carries 4 unused bits: setting one keeps the bytes
    last = alphabet.index(signature[-1])
    valid.jwt = ".".join([header, payload, signature[:-1] + alphabet[last | 1]])
    assert unb64(valid.jwt.split(".")[2]) == unb64(signature)
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "jwt_malformed")


def test_presentation_without_tilde_and_too_large(valid, metadata):
    rejected(valid.jwt, metadata, "presentation_malformed")
    rejected(str(valid) + "A" * 600_000, metadata, "too_large")


# --- rejections: Disclosures ------------------------------------------------------------------------------------

def add_to_sd(parts: Parts, issuer: JWK, *disclosures: str) -> None:
    """Put the digests of ``disclosures`` into the top-level _sd (re-signed) and present them."""
    payload = parts.payload
    payload["_sd"] = sorted(payload["_sd"] + [digest(d) for d in disclosures])
    parts.resign_issuer(issuer, payload=payload)
    parts.disclosures += list(disclosures)


SALT = b64(b"0123456789abcdef")


@pytest.mark.parametrize("disclosure", [
    "%%%not-base64url%%%",
    b64(b"not json at all"),
    b64(json.dumps({"salt": SALT, "name": "x", "value": 1}).encode()),
    mk_disclosure(SALT, "x", 1, "extra"),
    mk_disclosure(SALT),
    mk_disclosure(12345, "x", 1),
    mk_disclosure(SALT, 7, 1),
    mk_disclosure(SALT, "an array element"),  # a 2-element Disclosure referenced from _sd
    b64(b'["' + SALT.encode() + b'", "x", NaN]'),
    base64.urlsafe_b64encode(json.dumps([SALT, "x", 12]).encode()).decode(),  # '=' padding is not base64url
], ids=["not-base64url", "not-json", "not-array", "4-elements", "1-element", "salt-not-string",
        "name-not-string", "2-elements-in-_sd", "nan", "padded"])
def test_disclosure_malformed(valid, issuer, holders, metadata, disclosure):
    add_to_sd(valid, issuer, disclosure)
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "disclosure_malformed")


@pytest.mark.parametrize("disclosure", [
    mk_disclosure(SALT, "nationality", "FR"),
    mk_disclosure(SALT, "a", "b", "FR"),
    mk_disclosure(SALT),
], ids=["3-elements", "4-elements", "1-element"])
def test_wrong_length_disclosure_in_an_array_slot(valid, issuer, holders, metadata, disclosure):
    payload = valid.payload
    payload["extra_list"] = [{"...": digest(disclosure)}]
    valid.resign_issuer(issuer, payload=payload)
    valid.disclosures.append(disclosure)
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "disclosure_malformed")


def test_empty_disclosure(valid, holders, metadata):
    valid.disclosures.insert(1, "")
    valid.resign_kb(holders[0])
    assert "'~~'" in rejected(valid, metadata, "disclosure_malformed").message


def test_unreferenced_disclosure(valid, holders, metadata):
    valid.disclosures.append(mk_disclosure(SALT, "age_over_21", True))
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "unreferenced_disclosure")


def test_nested_disclosure_without_its_container_is_unreferenced(batch, holders, metadata):
    """RFC 9901 Section 4.2.6: a Disclosure whose digest sits inside an unpresented Disclosure is unreferenced."""
    full = Parts.of(batch[0])
    address = decode(find(full, "address"))[2]
    locality = next(d for d in full.disclosures if digest(d) in address["_sd"] and decode(d)[1] == "locality")
    parts = Parts(full.jwt, [locality], "").resign_kb(holders[0])
    rejected(parts, metadata, "unreferenced_disclosure")


def test_sd_jwt_pypi_weakness_forged_unreferenced_disclosure_is_rejected(batch, holders, metadata):
    """The `sd-jwt` PyPI package's verifier (like sd-jwt-rust before its issue #50) builds a digest -> Disclosure
    map and only looks up the digests it meets in the payload: a Disclosure that no digest references is dropped
    silently instead of rejected (RFC 9901 Section 7.1 step 5). Whoever can append to a presentation (a holder, or
    anyone forwarding a KB-less one) can then slip forged "claims" past the verifier to code that reads the raw
    Disclosures. Here the holder forges age_over_21 and signs a perfectly valid KB-JWT over it; and a relay adds
    one to a presentation without key binding. Both are refused."""
    honest = Parts.of(sdjwt.present(batch[3], holders[3], disclose=["age_over_18"], aud=AUD, nonce=NONCE, now=NOW))
    assert check(honest, metadata).claims == {"age_over_18": True}
    forged = mk_disclosure(b64(b"attacker-chosen!"), "age_over_21", True)

    by_holder = Parts(honest.jwt, honest.disclosures + [forged], "").resign_kb(holders[3])
    rejected(by_holder, metadata, "unreferenced_disclosure")

    by_relay = Parts(honest.jwt, honest.disclosures + [forged], "")
    rejected(by_relay, metadata, "unreferenced_disclosure", require_key_binding=False)

    # also with a claim name that exists but was not disclosed (a forged value for a hidden claim)
    forged_name = mk_disclosure(b64(b"attacker-chosen!"), "given_name", "Mallory")
    rejected(Parts(honest.jwt, honest.disclosures + [forged_name], "").resign_kb(holders[3]), metadata,
             "unreferenced_disclosure")


def test_the_same_disclosure_twice(valid, holders, metadata):
    valid.disclosures.append(find(valid, "given_name"))
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "duplicate_disclosure")


def test_a_digest_twice_in_sd(valid, issuer, holders, metadata):
    payload = valid.payload
    payload["_sd"] = sorted(payload["_sd"] + [digest(find(valid, "given_name"))])
    valid.resign_issuer(issuer, payload=payload).resign_kb(holders[0])
    rejected(valid, metadata, "duplicate_digest")


def test_a_decoy_digest_twice(valid, issuer, holders, metadata):
    presented = {digest(d) for d in valid.disclosures}
    payload = valid.payload
    decoy = next(d for d in payload["_sd"] if d not in presented)
    payload["_sd"] = sorted(payload["_sd"] + [decoy])
    valid.resign_issuer(issuer, payload=payload).resign_kb(holders[0])
    rejected(valid, metadata, "duplicate_digest")


def test_a_digest_both_in_sd_and_in_an_array(valid, issuer, holders, metadata):
    presented = {digest(d) for d in valid.disclosures}
    payload = valid.payload
    undisclosed = next(d for d in payload["_sd"] if d not in presented)
    payload["extra_list"] = [{"...": undisclosed}]
    valid.resign_issuer(issuer, payload=payload).resign_kb(holders[0])
    rejected(valid, metadata, "duplicate_digest")


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_disclosure_with_a_reserved_claim_name(valid, issuer, holders, metadata, name):
    add_to_sd(valid, issuer, mk_disclosure(SALT, name, ["x"]))
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "claim_name_reserved")


def test_disclosure_colliding_with_a_plaintext_claim(valid, issuer, holders, metadata):
    valid.resign_issuer(issuer, payload=valid.payload | {"given_name": "Mallory"}).resign_kb(holders[0])
    rejected(valid, metadata, "claim_name_collision")


def test_two_disclosures_with_the_same_claim_name(valid, issuer, holders, metadata):
    add_to_sd(valid, issuer, mk_disclosure(SALT, "given_name", "Mallory"))
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "claim_name_collision")


@pytest.mark.parametrize("claim", ["exp", "nbf", "cnf", "vct"])
def test_validity_claim_arriving_in_a_disclosure(valid, issuer, holders, metadata, claim):
    """draft-ietf-oauth-sd-jwt-vc Section 3.2.2.2: iss, nbf, exp, cnf, vct MUST NOT be selectively disclosed."""
    payload = valid.payload
    value = payload.pop(claim)
    disclosure = mk_disclosure(SALT, claim, value)
    payload["_sd"] = sorted(payload["_sd"] + [digest(disclosure)])
    valid.resign_issuer(issuer, payload=payload)
    valid.disclosures.append(disclosure)
    valid.resign_kb(holders[0])
    rejected(valid, metadata, "reserved_claim_disclosed")


@pytest.mark.parametrize("change", ["dots-in-object", "dots-with-extra-member", "dots-not-string", "nested-sd-alg"])
def test_payload_structure(valid, issuer, holders, metadata, change):
    extra = {"dots-in-object": {"profile": {"...": "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"}},
             "dots-with-extra-member": {"list": [{"...": "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0", "x": 1}]},
             "dots-not-string": {"list": [{"...": 5}]},
             "nested-sd-alg": {"profile": {"_sd_alg": "sha-256"}}}[change]
    valid.resign_issuer(issuer, payload=valid.payload | extra).resign_kb(holders[0])
    rejected(valid, metadata, "payload_malformed")


def test_nesting_bomb(valid, issuer, holders, metadata):
    deep: Any = "x"
    for _ in range(80):
        deep = [deep]
    valid.resign_issuer(issuer, payload=valid.payload | {"deep": deep}).resign_kb(holders[0])
    rejected(valid, metadata, "payload_malformed")


# --- rejections: key binding ------------------------------------------------------------------------------------

def test_kb_missing(valid, metadata):
    valid.kb = ""
    rejected(valid, metadata, "kb_missing")


def test_kb_with_wrong_typ(valid, holders, metadata):
    valid.resign_kb(holders[0], header={"alg": "ES256", "typ": "JWT"})
    rejected(valid, metadata, "kb_typ_invalid")
    valid.resign_kb(holders[0], header={"alg": "ES256"})
    rejected(valid, metadata, "kb_typ_invalid")


def test_kb_not_signed_by_the_cnf_key(valid, holders, metadata):
    valid.resign_kb(holders[1])  # another (valid) holder key of the same batch
    rejected(valid, metadata, "kb_signature_invalid")


def test_kb_alg_none(valid, metadata):
    header = b64(json.dumps({"alg": "none", "typ": "kb+jwt"}).encode())
    body = b64(json.dumps({"iat": NOW_TS, "aud": AUD, "nonce": NONCE, "sd_hash": digest(valid.sd_jwt())}).encode())
    valid.kb = header + "." + body + "."
    rejected(valid, metadata, "alg_not_allowed")


def test_kb_alg_of_another_key_type(valid, metadata):
    ed = JWK.generate(kty="OKP", crv="Ed25519")
    valid.resign_kb(ed, header={"alg": "EdDSA", "typ": "kb+jwt"})
    rejected(valid, metadata, "alg_key_mismatch")


def test_sd_hash_mismatch_after_removing_a_disclosure(valid, metadata):
    valid.disclosures.remove(find(valid, "given_name"))  # the KB-JWT is left as the holder signed it
    rejected(valid, metadata, "sd_hash_mismatch")


def test_sd_hash_over_other_disclosures(valid, batch, holders, metadata):
    valid.resign_kb(holders[0], sd_hash=digest(batch[0]))  # the hash of the full issued credential
    rejected(valid, metadata, "sd_hash_mismatch")


def test_nonce_mismatch(valid, holders, metadata):
    rejected(valid, metadata, "nonce_mismatch", nonce="nonce-of-another-session")
    valid.resign_kb(holders[0], nonce="nonce-of-another-session")
    rejected(valid, metadata, "nonce_mismatch")


@pytest.mark.parametrize("aud", ["https://other-verifier.example", [AUD], None])
def test_aud_mismatch(valid, holders, metadata, aud):
    if aud is None:
        valid.resign_kb(holders[0], drop=("aud",))
    else:
        valid.resign_kb(holders[0], aud=aud)
    rejected(valid, metadata, "aud_mismatch")


def test_kb_too_old(valid, holders, metadata):
    valid.resign_kb(holders[0], iat=NOW_TS - 5 * 60)
    assert check(valid, metadata).key_bound  # five minutes old: still accepted
    valid.resign_kb(holders[0], iat=NOW_TS - 6 * 60)
    rejected(valid, metadata, "kb_stale")
    valid.resign_kb(holders[0], exp=NOW_TS - 60)
    rejected(valid, metadata, "kb_stale")


def test_kb_from_the_future(valid, holders, metadata):
    valid.resign_kb(holders[0], iat=NOW_TS + 120)
    rejected(valid, metadata, "kb_iat_in_future")


def test_kb_malformed(valid, holders, metadata):
    valid.resign_kb(holders[0], drop=("iat",))
    rejected(valid, metadata, "kb_malformed")
    valid.kb = "two.parts"
    rejected(valid, metadata, "kb_malformed")


def test_cnf_missing_or_malformed(valid, issuer, holders, metadata):
    payload = {k: v for k, v in valid.payload.items() if k != "cnf"}
    valid.resign_issuer(issuer, payload=payload).resign_kb(holders[0])
    rejected(valid, metadata, "cnf_missing")
    leaked = valid.payload | {"cnf": {"jwk": holders[0].export_private(as_dict=True)}}
    valid.resign_issuer(issuer, payload=leaked).resign_kb(holders[0])
    rejected(valid, metadata, "cnf_malformed")
    off_curve = holders[0].export_public(as_dict=True) | {"y": b64(b"\x01" * 32)}
    valid.resign_issuer(issuer, payload=valid.payload | {"cnf": {"jwk": off_curve}}).resign_kb(holders[0])
    rejected(valid, metadata, "cnf_malformed")


# --- issuer key documents ----------------------------------------------------------------------------------------

def test_issuer_key_documents_that_cannot_be_used(valid, issuer):
    private_doc = {"issuer": ISS, "jwks": {"keys": [issuer.export_private(as_dict=True)]}}
    rejected(valid, private_doc, "issuer_keys_invalid")
    rejected(valid, {"issuer": ISS, "jwks_uri": "https://issuer.idproof.example/jwks"}, "issuer_keys_invalid")
    rsa = JWK.generate(kty="RSA", size=2048, kid="rsa").export_public(as_dict=True)
    rejected(valid, {"keys": [rsa]}, "issuer_keys_invalid")
    rejected(valid, ["not", "a", "document"], "issuer_keys_invalid")


# --- robustness: any JSON anywhere is accepted or refused with a reason, never a crash --------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6)
    | st.sampled_from(["ES256", "EdDSA", "none", "dc+sd-jwt", "kb+jwt", "sha-256", "_sd", "...", AUD, NONCE]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["_sd", "...", "jwk", "kty", "crv", "x", "y", "d", "a"]) | st.text(max_size=4), inner,
        max_size=3),
    max_leaves=6)
FIELDS = [("header", "alg"), ("header", "typ"), ("header", "kid"), ("header", "crit"), ("payload", "_sd"),
          ("payload", "exp"), ("payload", "nbf"), ("payload", "iat"), ("payload", "iss"), ("payload", "vct"),
          ("payload", "cnf"), ("payload", "_sd_alg"), ("payload", "address"), ("kb", "iat"), ("kb", "aud"),
          ("kb", "nonce"), ("kb", "sd_hash"), ("kb", "exp"), ("kb_header", "typ"), ("kb_header", "alg"),
          ("disclosure", ""), ("element", "")]


@pytest.fixture(scope="module")
def base_presentation(batch: list[str], holders: list[JWK]) -> str:
    return sdjwt.present(batch[0], holders[0], disclose=["given_name", "address.locality", "nationalities.1"],
                         aud=AUD, nonce=NONCE, now=NOW)


def sign_any(key: JWK, header: dict[str, Any], payload: dict[str, Any], alg: str = "ES256") -> str:
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + b64(JWA.signing_alg(alg).sign(key, signing_input.encode()))


@given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_json_in_any_field_is_verified_or_refused_with_a_reason(base_presentation, issuer, holders, metadata,
                                                                   field, value):
    parts = Parts.of(base_presentation)
    where, name = field
    header, payload = parts.header, parts.payload
    if where == "header":
        header[name] = value
    elif where == "payload":
        payload[name] = value
    elif where == "disclosure":  # any JSON as a whole Disclosure, referenced from _sd
        disclosure = b64(json.dumps(value).encode())
        payload["_sd"] = sorted(payload["_sd"] + [digest(disclosure)])
        parts.disclosures.append(disclosure)
    elif where == "element":  # any JSON as an array element Disclosure's value
        disclosure = mk_disclosure(SALT, value)
        payload["extra"] = [{"...": digest(disclosure)}, value]
        parts.disclosures.append(disclosure)
    parts.jwt = sign_any(issuer, header, payload)
    kb_header = {"alg": "ES256", "typ": "kb+jwt"}
    kb_payload = {"iat": NOW_TS, "aud": AUD, "nonce": NONCE, "sd_hash": digest(parts.sd_jwt())}
    if where == "kb":
        kb_payload[name] = value
    elif where == "kb_header":
        kb_header[name] = value
    parts.kb = sign_any(holders[0], kb_header, kb_payload)
    try:
        result = check(parts, metadata)
    except SdJwtError as exc:
        assert exc.reason and exc.message
    else:  # accepted: then the change was harmless (e.g. another vct, a plaintext claim, an extra KB claim)
        assert result.iss == ISS and isinstance(result.vct, str) and result.exp > NOW
        assert result.vct == (value if field == ("payload", "vct") else VCT)


KEY_FIELDS = ["kty", "crv", "x", "y", "kid", "alg", "use", "key_ops", "nbf", "exp", "d"]


@given(where=st.sampled_from(["document", "metadata", "key"]), field=st.sampled_from(KEY_FIELDS), value=JSON_VALUES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_issuer_key_document_is_used_or_refused_with_a_reason(base_presentation, metadata, where, field, value):
    if where == "document":
        doc: Any = value
    elif where == "metadata":
        doc = {"issuer": ISS, "jwks": value} if field in ("kty", "crv") else {"issuer": value, "jwks": metadata["jwks"]}
    else:
        key = dict(metadata["jwks"]["keys"][0])
        key[field] = value
        doc = {"issuer": ISS, "jwks": {"keys": [key]}}
    try:
        result = check(base_presentation, doc)
    except SdJwtError as exc:
        assert exc.reason and exc.message
    else:
        assert result.claims["given_name"] == "Ada"
