"""End to end on the real service: a real specimen passport and a real selfie are proven, the person's wallet
takes a BBS credential and an SD-JWT VC batch over HTTP (OpenID4VCI-style, pre-authorized code), and two
independent services (relying parties, tiny FastAPI apps here) check "over 18" offline with the issuer keys
they fetched once. Then the issuer's database file and every log record are searched for any trace of the
presentations (proofs, pseudonyms, service ids, nonces), of what was issued, and of the person's name and
birth date: there must be none.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from pathlib import Path

import pytest
from conftest import FACES
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from jwcrypto.jwk import JWK
from pydantic import BaseModel

from idproof.credential import sdjwt
from idproof.credential.issuer import IssuerKey
from idproof.credential.relying_party import (
    check_response,
    make_request,
    requested_claims,
)
from idproof.credential.verify import CredentialError
from idproof.credential.wallet import Wallet
from idproof.registry.handles import RegistryKey
from idproof.service import Settings, create_app
from idproof.service.credential_offers import SdJwtIssuerKey
from idproof.service.models import PRE_AUTHORIZED_GRANT

KEY = RegistryKey(b"idproof-credential-e2e-registry-key!")
ISSUER = "http://testserver"
FR = FACES / "face_recognition"
SERVICE_A = "https://shop-a.example/age-check"
SERVICE_B = "https://bar-b.example/entry"
# the specimen passport's holder (idproof.document.specimen.SpecimenFields defaults)
PERSONAL = ("ERIKSSON", "ANNA MARIA", "1974-08-12", "740812", "19740812", "L898902C3")

_verifier = None


def shared_verifier(key, policy):
    global _verifier
    if _verifier is None:
        from idproof.api import Verifier

        _verifier = Verifier(registry_key=KEY, document_policy=policy)
    return _verifier


# --- a relying party: asks for "over 18", verifies offline, keeps one account per pseudonym -----------------------


class Finish(BaseModel):
    nonce: str
    vp_token: dict[str, list[str]]


def relying_party(service_id: str, issuer_keys: dict) -> FastAPI:
    """A service that knows the issuer only through its key document (fetched once, before any visit)."""
    app = FastAPI()
    pending: dict[str, dict] = {}  # nonce -> request, until answered (once)
    accounts: dict[str, int] = {}  # pseudonym -> account number
    app.state.accounts = accounts

    @app.post("/login/start")
    def start() -> dict:
        req = make_request(service_id, ["age_over_18"])
        pending[req["nonce"]] = req
        return req

    @app.post("/login/finish")
    def finish(body: Finish) -> dict:
        req = pending.pop(body.nonce, None)
        if req is None:
            raise HTTPException(400, "unknown or used nonce")
        try:
            v = check_response(req, body.vp_token, issuer_keys)
        except CredentialError as e:
            raise HTTPException(400, e.reason) from None
        if v.disclosed["age_over_18"] is not True:
            raise HTTPException(403, "not over 18")
        new = v.pseudonym not in accounts
        account = accounts.setdefault(v.pseudonym, len(accounts) + 1)
        return {"account": account, "new": new}

    return app


def visit(rp: TestClient, wallet: Wallet, seen: list[str]) -> dict:
    """One login: the service's request, the wallet's presentation (only the claims asked for), the answer."""
    req = rp.post("/login/start").json()
    pres = wallet.present(req["client_id"], req["nonce"], requested_claims(req))
    doc = json.loads(base64.urlsafe_b64decode(pres + "=" * (-len(pres) % 4)))
    seen += [pres, doc["proof"], doc["pseudonym"], req["nonce"], req["client_id"]]
    r = rp.post("/login/finish", json={"nonce": req["nonce"], "vp_token": {"idproof": [pres]}})
    assert r.status_code == 200, r.text
    return r.json() | {"presentation": pres, "request": req}


# --- the scans ------------------------------------------------------------------------------------------------------


def database_text(data_dir: Path) -> tuple[str, bytes]:
    """Every row of every table as text, and the raw bytes of every file (database, WAL, shared memory)."""
    rows: list[str] = []
    with sqlite3.connect(data_dir / "registry.sqlite3") as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert {"proofing_decisions", "audit_log"} <= set(tables) or len(tables) >= 3, tables
        for t in tables:
            for row in db.execute(f'SELECT * FROM "{t}"'):
                rows.append(t + "|" + "|".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row))
    raw = b"".join(p.read_bytes() for p in sorted(data_dir.iterdir()) if p.is_file())
    return "\n".join(rows), raw


def forms(secret: str) -> list[str]:
    """The secret, and, for hex or base64url text, the other spelling of the same bytes."""
    out = [secret]
    try:
        raw = bytes.fromhex(secret)
        out.append(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    except ValueError:
        pass
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        if len(raw) >= 16:
            out.append(raw.hex())
    except ValueError:
        pass
    return out


def assert_absent(secrets: list[str], text: str, raw: bytes, where: str) -> None:
    lowered = text.lower()
    for s in secrets:
        for f in forms(s):
            assert f.lower() not in lowered, f"{where} holds {f[:24]}..."
            assert f.encode() not in raw, f"{where} (raw bytes) holds {f[:24]}..."


# --- the test --------------------------------------------------------------------------------------------------


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_prove_issue_present_to_two_services_and_leave_no_trace(tmp_path, obama_passport, everything_logged):
    caplog = everything_logged
    data, keys = tmp_path / "data", tmp_path / "keys"
    data.mkdir()
    keys.mkdir()
    IssuerKey.generate().save(keys / "bbs.json")
    SdJwtIssuerKey.generate().save(keys / "sdjwt.json")
    settings = Settings(registry_key=KEY, db_url=f"sqlite:///{data / 'registry.sqlite3'}",
                        verifier_factory=shared_verifier, credential_issuer=ISSUER,
                        bbs_issuer_key=f"file:{keys / 'bbs.json'}", sdjwt_issuer_key=f"file:{keys / 'sdjwt.json'}")
    issued: list[str] = []  # what the issuer signed: it must keep no record of it
    seen: list[str] = []  # what the services saw: the issuer must never learn it

    with TestClient(create_app(settings), raise_server_exceptions=False) as issuer:
        registry = issuer.app.state.idproof.registry
        op = {"Authorization": f"Bearer {registry.add_operator('tel-one')[1]}"}

        def prove(doc: bytes, selfie: bytes) -> dict:
            sid = issuer.post("/v1/proofings", headers=op).json()["session_id"]
            r = issuer.put(f"/v1/proofings/{sid}/document", content=doc, headers=op | {"Content-Type": "image/png"})
            assert r.status_code == 200, r.text
            r = issuer.put(f"/v1/proofings/{sid}/selfie", files={"file": ("s.jpg", selfie, "image/jpeg")}, headers=op)
            assert r.status_code == 200, r.text
            return r.json()

        # 1. the proofing: accepted, with a credential offer
        passport = obama_passport.read_bytes()
        d = prove(passport, (FR / "obama/obama2.jpg").read_bytes())
        assert d["outcome"] == "accept", d
        offer = d["credential_offer"]
        assert offer["credential_issuer"] == ISSUER
        assert offer["credential_configuration_ids"] == ["idproof_bbs", "idproof_sd_jwt"]
        code = offer["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]

        # a rejected proofing (another person's selfie) and a retry (unreadable document) get no offer
        rejected = prove(passport, (FR / "biden/biden2.jpg").read_bytes())
        assert rejected["outcome"] == "reject" and rejected["credential_offer"] is None
        retry = prove(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 100, (FR / "obama/obama2.jpg").read_bytes())
        assert retry["outcome"] == "retry" and retry["credential_offer"] is None

        # 2. what wallets and verifiers fetch, once
        meta = issuer.get("/.well-known/openid-credential-issuer").json()
        keys_doc = issuer.get("/.well-known/idproof-issuer-keys").json()
        assert meta["credential_endpoint"] == ISSUER + "/v1/credential"

        # 3. token (the code works once), then the credentials
        token_url = meta["token_endpoint"].removeprefix(ISSUER)
        r = issuer.post(token_url, data={"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code})
        assert r.status_code == 200, r.text
        tok = r.json()
        again = issuer.post(token_url, data={"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code})
        assert again.status_code == 400 and again.json()["code"] == "invalid_grant"
        assert again.headers["content-type"].startswith("application/problem+json")
        auth = {"Authorization": f"Bearer {tok['access_token']}"}
        unknown = issuer.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs",
                                                      "proof": {"commitment": "AAAA"}},
                              headers={"Authorization": "Bearer " + "A" * 43})
        assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_token"
        assert unknown.headers["content-type"].startswith("application/problem+json")

        # the person's CLI wallet: init, request, (the request goes to the issuer), accept
        from typer.testing import CliRunner

        from idproof.credential.wallet_cli import app as wallet_cli

        wallet_path, passphrase = tmp_path / "wallet" / "wallet.json", "a long wallet passphrase"
        cli = CliRunner(env={"IDPROOF_WALLET_PASSPHRASE": passphrase})
        assert cli.invoke(wallet_cli, ["init", str(wallet_path)]).exit_code == 0
        out = cli.invoke(wallet_cli, ["request", "--wallet", str(wallet_path), "--out", str(tmp_path / "request.json")])
        assert out.exit_code == 0, out.output
        r = issuer.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs",
                                                "proof": json.loads((tmp_path / "request.json").read_text())}, headers=auth)
        assert r.status_code == 200, r.text
        bbs_response = r.json()["credentials"][0]["credential"]
        issued += [bbs_response["signature"], bbs_response["signer_nym_entropy"]]
        (tmp_path / "response.json").write_text(json.dumps(bbs_response))
        (tmp_path / "issuer-keys.json").write_text(json.dumps(keys_doc["bbs"]))
        out = cli.invoke(wallet_cli, ["accept", "--wallet", str(wallet_path), "--response", str(tmp_path / "response.json"),
                                      "--issuer-metadata", str(tmp_path / "issuer-keys.json")])
        assert out.exit_code == 0, out.output
        wallet = Wallet.open(wallet_path, passphrase)
        (cred,) = wallet.credentials()
        assert cred.claims["age_over_18"] is True and cred.claims["verified"] is True

        holder_keys = [JWK.generate(kty="EC", crv="P-256") for _ in range(4)]
        r = issuer.post("/v1/credential", json={"credential_configuration_id": "idproof_sd_jwt", "proofs": {
            "jwk": [k.export_public(as_dict=True) for k in holder_keys]}}, headers=auth)
        assert r.status_code == 200, r.text
        batch = [c["credential"] for c in r.json()["credentials"]]
        issued += [c.split("~")[0].split(".")[2] for c in batch]  # the issuer's signatures
        wallet.add_sdjwt_batch(batch, [k.export_private(as_dict=True) for k in holder_keys])
        assert wallet.sdjwt_remaining() == 4
        # both configurations fetched: the token (and the attributes behind it) are gone
        r = issuer.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs",
                                                "proof": wallet.issuance_request()}, headers=auth)
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        assert len(issuer.app.state.idproof.credentials.offers) == 0

        # 4. from here on the issuer must receive nothing: verification is offline
        after_issuance: list[str] = []
        issuer.event_hooks["request"].append(lambda request: after_issuance.append(str(request.url)))

        rp_a = TestClient(relying_party(SERVICE_A, keys_doc["bbs"]))
        rp_b = TestClient(relying_party(SERVICE_B, keys_doc["bbs"]))
        a1, a2 = visit(rp_a, wallet, seen), visit(rp_a, wallet, seen)
        # the CLI's presentation is accepted by a service too (same person, same pseudonym at A)
        req = rp_a.post("/login/start").json()
        out = cli.invoke(wallet_cli, ["present", "--wallet", str(wallet_path), "--to", req["client_id"], "--nonce", req["nonce"],
                                      *[a for c in requested_claims(req) for a in ("--show", c)]])
        assert out.exit_code == 0, out.output
        cli_pres = out.output.strip().splitlines()[-1]
        r = rp_a.post("/login/finish", json={"nonce": req["nonce"], "vp_token": {"idproof": [cli_pres]}})
        assert r.status_code == 200 and r.json()["account"] == 1 and not r.json()["new"], r.text
        seen += [cli_pres, req["nonce"]]
        b1, b2 = visit(rp_b, wallet, seen), visit(rp_b, wallet, seen)
        assert (a1["account"], a1["new"], a2["account"], a2["new"]) == (1, True, 1, False)  # stable at A
        assert (b1["account"], b1["new"], b2["account"], b2["new"]) == (1, True, 1, False)  # stable at B
        (nym_a,), (nym_b,) = rp_a.app.state.accounts, rp_b.app.state.accounts
        assert nym_a != nym_b  # unlinkable across services
        assert a1["presentation"] != a2["presentation"]  # every presentation is a fresh proof
        # a presentation is good once, at the service it was made for
        replay = rp_a.post("/login/finish", json={"nonce": a1["request"]["nonce"], "vp_token": {"idproof": [a1["presentation"]]}})
        assert replay.status_code == 400
        req_b = rp_b.post("/login/start").json()
        stolen = rp_b.post("/login/finish", json={"nonce": req_b["nonce"], "vp_token": {"idproof": [a2["presentation"]]}})
        assert stolen.status_code == 400 and stolen.json()["detail"] in ("audience_mismatch", "nonce_mismatch")
        seen += [req_b["nonce"]]
        # an SD-JWT VC of the batch, to service A, verified offline too
        sd_nonce = "sd-" + a1["request"]["nonce"][:16]
        sd_pres = wallet.present_sdjwt(SERVICE_A, sd_nonce, ["age_over_18"])
        v = sdjwt.verify(sd_pres, keys_doc["sd_jwt"], aud=SERVICE_A, nonce=sd_nonce)
        assert v.claims == {"age_over_18": True}
        seen += [sd_pres.rsplit("~", 1)[1], sd_nonce]
        assert after_issuance == []  # the issuer learned nothing of any presentation

        # an expired access token is refused too (the offer store's clock moved past the 10 minutes)
        d2 = prove(passport, (FR / "obama/obama2.jpg").read_bytes())
        code2 = d2["credential_offer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
        tok2 = issuer.post(token_url, data={"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code2}).json()
        store = issuer.app.state.idproof.credentials.offers
        real_clock = store.clock
        store.clock = lambda: real_clock() + 601
        r = issuer.post("/v1/credential", json={"credential_configuration_id": "idproof_bbs",
                                                "proof": wallet.issuance_request()},
                        headers={"Authorization": f"Bearer {tok2['access_token']}"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_token", r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        store.clock = real_clock
        issued += [code, tok["access_token"], code2, tok2["access_token"]]

    # 5. the issuer's database: no presentation, no pseudonym, no service, no nonce; nothing it issued; no name
    assert len(seen) > 20 and len({nym_a, nym_b}) == 2
    seen += [nym_a, nym_b, SERVICE_A, SERVICE_B]
    text, raw = database_text(data)
    assert "accept" in text and d["proofing_id"] in text  # the scan does read the decisions
    assert_absent(seen, text, raw, "the issuer's database")
    assert_absent(issued, text, raw, "the issuer's database")
    for value in PERSONAL:
        assert value.lower() not in text.lower() and value.encode() not in raw, value

    # 6. the logs, every logger at DEBUG: nothing of the above either
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)  # every SQL statement, with its parameters
    assert any("/v1/credential/token" in r.getMessage() for r in caplog.records)  # the issuance requests
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert_absent(seen + issued, logged, logged.encode(), "the logs")
    for value in PERSONAL:
        assert value.lower() not in logged.lower(), value
