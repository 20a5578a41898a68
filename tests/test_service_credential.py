"""Credential issuance over HTTP (OpenID4VCI-style, pre-authorized code), against a stand-in Verifier.

The face pipeline is replaced by a stub whose decision is chosen by the selfie bytes, so these tests cover
the offer / token / credential endpoints, their refusals (all problem+json) and the offer store's limits
quickly; ``test_credential_e2e`` runs the same flow on the real Verifier with a real passport and selfie.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from jwcrypto.jwk import JWK

from idproof.credential import sdjwt
from idproof.credential.attributes import CredentialAttributes
from idproof.credential.issuer import IssuerKey
from idproof.credential.relying_party import check_response, make_request
from idproof.credential.verify import CredentialError
from idproof.credential.wallet import Wallet
from idproof.decision import Decision, HolderFacts
from idproof.reasons import Outcome
from idproof.registry.handles import RegistryKey
from idproof.service import Settings, create_app
from idproof.service.credential_offers import OfferStore, SdJwtIssuerKey
from idproof.service.models import PRE_AUTHORIZED_GRANT
from idproof.service.problems import PROBLEM_BASE

KEY = RegistryKey(b"idproof-credential-tests-registry-key")
ISSUER = "http://testserver"
HOLDER = HolderFacts("ANNA MARIA", "ERIKSSON", "UTO", date(1974, 8, 12))


class StubVerifier:
    """Decides by the selfie: b"accept", b"accept-no-holder" (face-only), b"reject", b"retry"."""

    registry_key = KEY

    def verify_capture(self, document, submission, issuer, chip=None) -> Decision:
        return self.verify(document, b"accept")

    def verify(self, document, selfie, chip=None) -> Decision:
        outcome = {b"reject": Outcome.REJECT, b"retry": Outcome.RETRY}.get(selfie, Outcome.ACCEPT)
        holder = HOLDER if selfie == b"accept" else None
        d = Decision(outcome, (), None, "stub", "stub", {}, {}, subject_handle="cd" * 32 if outcome is Outcome.ACCEPT else None)
        return dataclasses.replace(d, holder=holder)


@pytest.fixture(scope="module")
def keys():
    return IssuerKey.generate(), SdJwtIssuerKey.generate()


class Svc:
    def __init__(self, client: TestClient):
        self.client = client
        self.state = client.app.state.idproof
        _, key = self.state.registry.add_operator("tel")
        self.op = {"Authorization": f"Bearer {key}"}

    def prove(self, selfie: bytes) -> dict:
        c = self.client
        sid = c.post("/v1/proofings", headers=self.op).json()["session_id"]
        r = c.put(f"/v1/proofings/{sid}/document", content=b"doc", headers=self.op | {"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        r = c.put(f"/v1/proofings/{sid}/selfie", content=selfie, headers=self.op | {"Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
        return r.json()

    def code(self) -> str:
        d = self.prove(b"accept")
        return d["credential_offer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]

    def token(self, code: str | None = None) -> dict:
        r = self.client.post("/v1/credential/token", data={"grant_type": PRE_AUTHORIZED_GRANT,
                                                            "pre-authorized_code": code or self.code()})
        assert r.status_code == 200, r.text
        return r.json()


def make_svc(tmp_path, keys=None, **kw) -> TestClient:
    extra = {} if keys is None else {"credential_issuer": ISSUER, "bbs_issuer_key": keys[0], "sdjwt_issuer_key": keys[1]}
    settings = Settings(registry_key=KEY, db_url=f"sqlite:///{tmp_path / 'registry.sqlite3'}",
                        verifier_factory=lambda key, policy: StubVerifier(), **extra, **kw)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def svc(tmp_path, keys):
    with make_svc(tmp_path, keys) as client:
        yield Svc(client)


def assert_problem(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["type"] == PROBLEM_BASE + body["code"]
    assert body["title"] and body["detail"] and body["fix"]
    if code is not None:
        assert body["code"] == code, body
    return body


def bearer(token: dict | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token'] if isinstance(token, dict) else token}"}


def keys_doc(client) -> dict:
    return client.get("/.well-known/idproof-issuer-keys").json()


# --- offers ---------------------------------------------------------------------------------------------------


def test_offer_only_for_an_accepted_proofing_with_holder_data(svc):
    d = svc.prove(b"accept")
    offer = d["credential_offer"]
    assert offer["credential_issuer"] == ISSUER
    assert offer["credential_configuration_ids"] == ["idproof_bbs", "idproof_sd_jwt"]
    code = offer["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    assert len(code) >= 40 and d["person_token"] and code != d["person_token"]
    assert "ERIKSSON" not in json.dumps(d) and "1974" not in json.dumps(d)  # the offer is a code, not the data
    for selfie in (b"reject", b"retry", b"accept-no-holder"):
        assert svc.prove(selfie)["credential_offer"] is None, selfie
    assert len(svc.state.credentials.offers) == 1  # only the accepted one waits


def test_capture_page_decision_carries_the_offer_for_the_operator(svc):
    c = svc.client
    s = c.post("/v1/proofings", headers=svc.op).json()
    c.put(f"/v1/proofings/{s['session_id']}/document", content=b"doc", headers=svc.op | {"Content-Type": "image/png"})
    token = s["capture_url"].split("s=")[1]
    ch = c.post(f"/v1/capture/{token}/challenge").json()
    r = c.put(f"/v1/capture/{token}/frames", files={
        "challenge": (None, ch["token"]), "mac": (None, "00"), "meta": (None, '{"timestamps_ms": [0], "sizes": [3]}'),
        "frames": ("f", b"jpg", "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"outcome", "reasons"}  # the page itself gets the outcome only
    d = c.get(f"/v1/proofings/{s['session_id']}", headers=svc.op).json()["decision"]
    assert d["outcome"] == "accept" and d["credential_offer"]["credential_configuration_ids"]
    assert svc.token(d["credential_offer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"])["access_token"]


def test_without_issuer_keys_there_is_no_offer_and_no_issuer(tmp_path):
    with make_svc(tmp_path) as client:
        s = Svc(client)
        d = s.prove(b"accept")
        assert d["outcome"] == "accept" and d["credential_offer"] is None
        for path in ("/.well-known/openid-credential-issuer", "/.well-known/idproof-issuer-keys"):
            assert_problem(client.get(path), 404, "issuer_not_configured")
        assert_problem(client.post("/v1/credential/nonce"), 404, "issuer_not_configured")
        assert_problem(client.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs"}), 404)


def test_issuer_keys_need_an_issuer_url(tmp_path, keys):
    with pytest.raises(ValueError, match="credential_issuer"):
        create_app(Settings(registry_key=KEY, db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", bbs_issuer_key=keys[0]))


def test_published_metadata(svc):
    c = svc.client
    meta = c.get("/.well-known/openid-credential-issuer").json()
    assert meta["credential_issuer"] == ISSUER
    assert meta["credential_endpoint"] == ISSUER + "/v1/credential"
    assert meta["nonce_endpoint"] == ISSUER + "/v1/credential/nonce"
    confs = meta["credential_configurations_supported"]
    assert confs["idproof_bbs"]["format"] == "idproof-bbs-nym/1"
    assert confs["idproof_sd_jwt"]["format"] == "dc+sd-jwt" and confs["idproof_sd_jwt"]["vct"]
    for conf in confs.values():
        assert [c_["path"] for c_ in conf["credential_metadata"]["claims"]] == [
            ["verified"], ["age_over_18"], ["age_over_21"], ["given_name"], ["family_name"], ["issuing_state"], ["expires"]]
    asm = c.get("/.well-known/oauth-authorization-server").json()
    assert asm["token_endpoint"] == ISSUER + "/v1/credential/token"
    assert asm["pre-authorized_grant_anonymous_access_supported"] is True
    doc = keys_doc(c)
    assert doc["bbs"]["issuer"] == doc["sd_jwt"]["issuer"] == ISSUER
    jwks = doc["bbs"]["keys"] + doc["sd_jwt"]["jwks"]["keys"]
    assert all("d" not in k and isinstance(k["nbf"], int) and k["exp"] > k["nbf"] for k in jwks)
    assert c.get("/.well-known/jwt-vc-issuer").json() == doc["sd_jwt"]


# --- token endpoint -------------------------------------------------------------------------------------------


def test_token_code_works_once(svc):
    c = svc.client
    code = svc.code()
    r = c.post("/v1/credential/token", data={"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["token_type"] == "Bearer" and 0 < t["expires_in"] <= 600 and t["c_nonce"] and t["access_token"] != code
    assert r.headers["cache-control"] == "no-store"
    again = c.post("/v1/credential/token", data={"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code})
    assert_problem(again, 400, "invalid_grant")
    # JSON works too, and `code` stands for `pre-authorized_code`
    r = c.post("/v1/credential/token", json={"grant_type": PRE_AUTHORIZED_GRANT, "code": svc.code()})
    assert r.status_code == 200, r.text


def test_token_refusals(svc):
    c = svc.client
    assert_problem(c.post("/v1/credential/token", data={"grant_type": PRE_AUTHORIZED_GRANT,
                                                        "pre-authorized_code": "x" * 43}), 400, "invalid_grant")
    assert_problem(c.post("/v1/credential/token", data={"grant_type": "authorization_code", "code": "abc"}), 400,
                   "unsupported_grant_type")
    assert_problem(c.post("/v1/credential/token", data={"grant_type": PRE_AUTHORIZED_GRANT}), 422, "invalid_request")
    assert_problem(c.post("/v1/credential/token", data={"code": "abc"}), 422, "invalid_request")
    assert_problem(c.post("/v1/credential/token", content="grant_type=a&grant_type=b",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}), 422, "invalid_request")
    assert_problem(c.post("/v1/credential/token", content=b"[1]", headers={"Content-Type": "application/json"}), 422)
    assert_problem(c.post("/v1/credential/token", content=b"\xff", headers={"Content-Type": "application/json"}), 422)
    assert_problem(c.post("/v1/credential/token", content=b"x", headers={"Content-Type": "text/plain"}), 415)
    assert_problem(c.post("/v1/credential/token", content=b"a=" + b"b" * 9000,
                          headers={"Content-Type": "application/x-www-form-urlencoded"}), 413)


# --- credential endpoint --------------------------------------------------------------------------------------


def test_bbs_and_sdjwt_issued_once_each_then_forgotten(svc, tmp_path):
    c = svc.client
    meta = keys_doc(c)
    t = svc.token()
    wallet = Wallet.create(tmp_path / "wallet.json", "correct horse")
    req = wallet.issuance_request()
    r = c.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs", "proof": req}, headers=bearer(t))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    (issued,) = r.json()["credentials"]
    cred = wallet.accept(issued["credential"], meta["bbs"])
    assert cred.claims["age_over_18"] is True and cred.claims["family_name"] == "ERIKSSON"
    # the same configuration again: refused
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs",
                                                  "proof": wallet.issuance_request()}, headers=bearer(t)),
                   400, "credential_request_denied")
    # the SD-JWT batch
    holder_keys = [JWK.generate(kty="EC", crv="P-256") for _ in range(3)]
    r = c.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt",
                                       "proofs": {"jwk": [k.export_public(as_dict=True) for k in holder_keys]}},
               headers=bearer(t))
    assert r.status_code == 200, r.text
    creds = [x["credential"] for x in r.json()["credentials"]]
    assert len(creds) == 3 and len(set(creds)) == 3
    wallet.add_sdjwt_batch(creds, [k.export_private(as_dict=True) for k in holder_keys])
    pres = wallet.present_sdjwt("https://rp.example", "n-1", ["age_over_18"])
    v = sdjwt.verify(pres, meta["sd_jwt"], aud="https://rp.example", nonce="n-1")
    assert v.claims == {"age_over_18": True} and v.iss == ISSUER
    # both configurations issued: the attributes are gone, and the token with them
    assert len(svc.state.credentials.offers) == 0
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt",
                                                  "proofs": {"jwk": [JWK.generate(kty="EC", crv="P-256").export_public(as_dict=True)]}},
                          headers=bearer(t)), 401, "invalid_token")


def test_refused_proof_does_not_use_up_the_configuration(svc, tmp_path):
    c = svc.client
    t = svc.token()
    bad = [{"credential_configuration_id": "idproof_bbs", "proof": {"commitment": "AAAA"}},
           {"credential_configuration_id": "idproof_bbs", "proof": {"commitment": "not base64!"}},
           {"credential_configuration_id": "idproof_sd_jwt", "proofs": {"jwk": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}},
           {"credential_configuration_id": "idproof_sd_jwt", "proofs": {"jwk": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}}]
    for body in bad:
        assert_problem(c.post("/v1/credential", json=body, headers=bearer(t)), 400, "invalid_proof")
    dup = JWK.generate(kty="OKP", crv="Ed25519").export_public(as_dict=True)
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt",
                                                  "proofs": {"jwk": [dup, dup]}}, headers=bearer(t)), 400, "invalid_proof")
    private = JWK.generate(kty="EC", crv="P-256").export_private(as_dict=True)
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt",
                                                  "proofs": {"jwk": [private]}}, headers=bearer(t)), 400, "invalid_proof")
    # shape errors
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs"}, headers=bearer(t)),
                   400, "invalid_credential_request")
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt",
                                                  "proofs": {"jwk": [dup], "jwt": ["a.b.c"]}}, headers=bearer(t)),
                   400, "invalid_credential_request")
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "mdoc"}, headers=bearer(t)),
                   400, "unknown_credential_configuration")
    assert_problem(c.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt",
                                                  "proofs": {"jwk": [dup] * 21}}, headers=bearer(t)), 422, "invalid_request")
    # after all that, both configurations can still be fetched
    wallet = Wallet.create(tmp_path / "w.json", "pw")
    r = c.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs", "proof": wallet.issuance_request()},
               headers=bearer(t))
    assert r.status_code == 200, r.text
    r = c.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt", "proofs": {"jwk": [dup]}},
               headers=bearer(t))
    assert r.status_code == 200, r.text


def _key_proof(key: JWK, *, nonce: str, aud: str = ISSUER, iat: float | None = None, typ="openid4vci-proof+jwt") -> str:
    from idproof.credential._sdjwt_keys import minimal_public_jwk, sign_compact

    alg = "ES256" if key.get("kty") == "EC" else "EdDSA"
    return sign_compact(key, alg, {"alg": alg, "typ": typ, "jwk": minimal_public_jwk(key)},
                        {"aud": aud, "iat": int(iat if iat is not None else time.time()), "nonce": nonce})


def test_sdjwt_with_openid4vci_key_proofs(svc):
    c = svc.client
    t = svc.token()
    url, sd = "/v1/credential", "idproof_sd_jwt"
    k1, k2 = JWK.generate(kty="EC", crv="P-256"), JWK.generate(kty="OKP", crv="Ed25519")

    def ask(proofs):
        return c.post(url, json={"credential_configuration_id": sd, "proofs": {"jwt": proofs}}, headers=bearer(t))

    n = c.post("/v1/credential/nonce").json()["c_nonce"]
    assert_problem(ask([_key_proof(k1, nonce=n, aud="https://other.example")]), 400, "invalid_proof")
    assert_problem(ask([_key_proof(k1, nonce=n, typ="JWT")]), 400, "invalid_proof")
    assert_problem(ask([_key_proof(k1, nonce=n, iat=time.time() - 3600)]), 400, "invalid_proof")
    h, _, s = _key_proof(k1, nonce=n).split(".")  # a signature over another payload
    assert_problem(ask([f"{h}.{_key_proof(k1, nonce=t['c_nonce']).split('.')[1]}.{s}"]), 400, "invalid_proof")
    assert_problem(ask([_key_proof(k1, nonce="never-issued")]), 400, "invalid_nonce")
    r = ask([_key_proof(k1, nonce=t["c_nonce"]), _key_proof(k2, nonce=n)])
    assert r.status_code == 200, r.text
    creds = [x["credential"] for x in r.json()["credentials"]]
    pres = sdjwt.present(creds[1], k2, disclose=["age_over_21"], aud="https://rp.example", nonce="rp-n")
    assert sdjwt.verify(pres, keys_doc(c)["sd_jwt"], aud="https://rp.example", nonce="rp-n").claims == {"age_over_21": True}


def test_nonce_is_spent_by_a_successful_request(svc):
    c = svc.client
    n = c.post("/v1/credential/nonce").json()["c_nonce"]
    k = JWK.generate(kty="EC", crv="P-256")
    body = {"credential_configuration_id": "idproof_sd_jwt", "proofs": {"jwt": [_key_proof(k, nonce=n)]}}
    t1, t2 = svc.token(), svc.token()
    assert c.post("/v1/credential", json=body, headers=bearer(t1)).status_code == 200
    assert_problem(c.post("/v1/credential", json=body, headers=bearer(t2)), 400, "invalid_nonce")


def test_unknown_missing_and_expired_access_tokens_are_401(svc):
    c = svc.client
    body = {"credential_configuration_id": "idproof_bbs", "proof": {"commitment": "AAAA"}}
    r = assert_problem(c.post("/v1/credential", json=body), 401, "invalid_token")
    r = c.post("/v1/credential", json=body, headers=bearer("x" * 43))
    assert_problem(r, 401, "invalid_token")
    assert r.headers["www-authenticate"].startswith("Bearer")
    # an operator's API key is not an access token
    assert_problem(c.post("/v1/credential", json=body, headers=svc.op), 401, "invalid_token")
    t = svc.token()
    code = svc.code()
    store = svc.state.credentials.offers
    real = store.clock
    store.clock = lambda: real() + 601  # past the offer's 10 minutes
    try:
        assert_problem(c.post("/v1/credential", json=body, headers=bearer(t)), 401, "invalid_token")
        assert_problem(c.post("/v1/credential/token", data={"grant_type": PRE_AUTHORIZED_GRANT,
                                                            "pre-authorized_code": code}), 400, "invalid_grant")
        assert len(store) == 0  # the attributes went with them
    finally:
        store.clock = real


# --- the offer store ------------------------------------------------------------------------------------------


def test_offer_store_bounds_and_deadline():
    attrs = CredentialAttributes.from_holder(HOLDER)
    now = [0.0]
    store = OfferStore(ttl_s=600, max_offers=2, max_nonces=3, clock=lambda: now[0])
    a, b = store.offer(attrs, ("idproof_bbs",)), store.offer(attrs, ("idproof_bbs",))
    assert a and b and store.offer(attrs, ("idproof_bbs",)) is None  # full
    assert "redacted" not in repr(store) and "ERIKSSON" not in repr(store)
    now[0] = 300
    token, expires_in = store.redeem(a)
    assert expires_in == 300 and store.redeem(a) is None  # once; the token lives to the offer's deadline
    assert store.begin(token, "idproof_sd_jwt").status == "not_offered"
    assert store.begin(token, "idproof_bbs").status == "ok"
    assert store.begin(token, "idproof_bbs").status == "already_issued"  # in flight
    store.end(token, "idproof_bbs", issued=False)
    assert store.begin(token, "idproof_bbs").status == "ok"
    store.end(token, "idproof_bbs", issued=True)
    assert store.begin(token, "idproof_bbs").status == "invalid_token" and len(store) == 1
    nonces = [store.new_nonce()[0] for _ in range(4)]
    assert not store.nonce_valid(nonces[0]) and store.use_nonces({nonces[3]}) and not store.use_nonces({nonces[3]})
    now[0] = 600
    assert len(store) == 0 and store.redeem(b) is None


def test_sdjwt_issuer_key_file_round_trip(tmp_path):
    k = SdJwtIssuerKey.generate(valid_for=timedelta(days=90))
    k.save(tmp_path / "sd.json")
    assert (tmp_path / "sd.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        k.save(tmp_path / "sd.json")
    back = SdJwtIssuerKey.load(tmp_path / "sd.json")
    assert back.kid == k.kid and back.not_after == k.not_after and back.metadata(ISSUER) == k.metadata(ISSUER)
    (tmp_path / "bad.json").write_text('{"format": "idproof-sdjwt-issuer-key/1", "jwk": {"kty": "oct"}}')
    with pytest.raises(ValueError, match="not an idproof SD-JWT issuer key"):
        SdJwtIssuerKey.load(tmp_path / "bad.json")


def test_service_loads_issuer_keys_from_files(tmp_path):
    IssuerKey.generate().save(tmp_path / "bbs.json")
    SdJwtIssuerKey.generate().save(tmp_path / "sd.json")
    settings = Settings(registry_key=KEY, db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", credential_issuer=ISSUER + "/",
                        bbs_issuer_key=f"file:{tmp_path / 'bbs.json'}", sdjwt_issuer_key=tmp_path / "sd.json",
                        verifier_factory=lambda key, policy: StubVerifier())
    with TestClient(create_app(settings)) as client:
        assert Svc(client).prove(b"accept")["credential_offer"]["credential_issuer"] == ISSUER


# --- the relying-party helper ------------------------------------------------------------------------------------


def test_relying_party_takes_exactly_the_requested_claims(svc, tmp_path):
    c = svc.client
    meta = keys_doc(c)["bbs"]
    t = svc.token()
    wallet = Wallet.create(tmp_path / "w.json", "pw")
    r = c.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs", "proof": wallet.issuance_request()},
               headers=bearer(t))
    wallet.accept(r.json()["credentials"][0]["credential"], meta)
    req = make_request("https://shop.example", ["age_over_18"])
    assert req["dcql_query"]["credentials"][0]["claims"] == [{"path": ["age_over_18"]}]
    ok = check_response(req, {"idproof": [wallet.present(req["client_id"], req["nonce"], ["age_over_18"])]}, meta)
    assert ok.disclosed["age_over_18"] is True and set(ok.disclosed) == {"age_over_18", "expires"}
    too_much = wallet.present(req["client_id"], req["nonce"], ["age_over_18", "family_name"])
    with pytest.raises(CredentialError) as e:
        check_response(req, too_much, meta)
    assert e.value.reason == "claims_not_requested" and "ERIKSSON" not in str(e.value)
    with pytest.raises(CredentialError) as e:
        check_response(req, wallet.present(req["client_id"], req["nonce"], []), meta)
    assert e.value.reason == "claims_missing"
    other = make_request("https://other.example", ["age_over_18"])
    with pytest.raises(CredentialError) as e:  # a presentation made for another service
        check_response(other, wallet.present(req["client_id"], other["nonce"], ["age_over_18"]), meta)
    assert e.value.reason == "audience_mismatch"
    with pytest.raises(ValueError):
        make_request("https://shop.example", ["shoe_size"])


def test_cli_keygen_keys_start_the_issuer(tmp_path):
    """`idproof credential keygen` writes owner-only key files that `serve`'s settings load; never overwrites."""
    from typer.testing import CliRunner

    from idproof.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["credential", "keygen", str(tmp_path / "keys")])
    assert r.exit_code == 0, r.output
    bbs, sd = tmp_path / "keys" / "bbs-issuer.json", tmp_path / "keys" / "sdjwt-issuer.json"
    assert bbs.stat().st_mode & 0o077 == 0 and sd.stat().st_mode & 0o077 == 0
    before = bbs.read_bytes()
    again = runner.invoke(app, ["credential", "keygen", str(tmp_path / "keys")])
    assert again.exit_code == 2 and "never overwritten" in again.output and bbs.read_bytes() == before
    settings = Settings(registry_key=KEY, db_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", credential_issuer="https://idproof.example",
                        bbs_issuer_key=bbs, sdjwt_issuer_key=sd)
    with TestClient(create_app(settings)) as client:
        keys = client.get("/.well-known/idproof-issuer-keys").json()
    assert keys["issuer"] == "https://idproof.example" and keys["bbs"]["keys"] and keys["sd_jwt"]
