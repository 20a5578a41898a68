"""The wallet file (encryption, tamper and passphrase refusals, persistence), SD-JWT batches (once-only), and
the `idproof wallet` CLI."""

from __future__ import annotations

import json
import os
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest
from jwcrypto.jwk import JWK
from typer.testing import CliRunner

import idproof.credential.wallet as wallet_module
from idproof.credential import sdjwt
from idproof.credential.attributes import CredentialAttributes
from idproof.credential.issuer import BbsIssuer, IssuerKey, issuer_metadata
from idproof.credential.verify import CredentialError, verify
from idproof.credential.wallet import Wallet
from idproof.credential.wallet_cli import app
from idproof.decision import HolderFacts

ISSUER = "https://idproof.example"
PASSPHRASE = "correct horse battery staple"
HOLDER = HolderFacts("Anna", "Müller", "D", date(1990, 5, 17))


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    monkeypatch.setattr(wallet_module, "SCRYPT_N", 2**14)


@pytest.fixture(scope="module")
def bbs_issuer() -> tuple[BbsIssuer, dict]:
    key = IssuerKey.generate()
    return BbsIssuer(key, ISSUER), issuer_metadata([key], ISSUER)


def _issued(wallet: Wallet, bbs_issuer) -> None:
    issuer, meta = bbs_issuer
    wallet.accept(issuer.issue(wallet.issuance_request(), CredentialAttributes.from_holder(HOLDER)), meta)


# --- file ------------------------------------------------------------------------------------------------------

def test_file_is_encrypted_and_tamper_evident(tmp_path, bbs_issuer):
    path = tmp_path / "sub" / "wallet.json"
    wallet = Wallet.create(path, PASSPHRASE)
    _issued(wallet, bbs_issuer)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert set(doc) == {"format", "kdf", "cipher", "nonce", "ciphertext"}
    assert doc["kdf"]["name"] == "scrypt" and doc["cipher"] == "AES-256-GCM"
    text = path.read_text()
    for secret in ("Anna", "Müller", "age_over_18", "nym_secret", "signature", ISSUER):
        assert secret not in text
    assert [p.name for p in path.parent.iterdir()] == ["wallet.json"]  # no temp file left behind

    # each save draws a fresh nonce
    first_nonce = doc["nonce"]
    _issued(wallet, bbs_issuer)
    assert json.loads(path.read_text())["nonce"] != first_nonce

    for change in ({"ciphertext": doc["ciphertext"][:-4] + "AAAA"},
                   {"kdf": {**doc["kdf"], "n": 2**13}},     # a weakened KDF is caught by the AEAD's associated data
                   {"nonce": doc["nonce"][::-1]}):
        (tmp_path / "t.json").write_text(json.dumps({**doc, **change}))
        with pytest.raises(CredentialError) as info:
            Wallet.open(tmp_path / "t.json", PASSPHRASE)
        assert info.value.reason == "wallet_locked"
    for junk in ("not json", json.dumps({**doc, "kdf": {**doc["kdf"], "n": 2**30}}), json.dumps({"format": "x"})):
        (tmp_path / "t.json").write_text(junk)
        with pytest.raises(CredentialError) as info:
            Wallet.open(tmp_path / "t.json", PASSPHRASE)
        assert info.value.reason == "malformed"
    with pytest.raises(CredentialError) as info:
        Wallet.open(tmp_path / "missing.json", PASSPHRASE)
    assert info.value.reason == "wallet_missing" and "init" in info.value.fix


def test_default_scrypt_cost_is_the_strong_one(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real cost, once: N=2^17, r=8, p=1
    Wallet.create(tmp_path / "w.json", PASSPHRASE)
    kdf = json.loads((tmp_path / "w.json").read_text())["kdf"]
    assert (kdf["n"], kdf["r"], kdf["p"]) == (2**17, 8, 1)
    assert Wallet.open(tmp_path / "w.json", PASSPHRASE).credentials() == []


def test_pending_request_in_memory_or_saved(tmp_path, bbs_issuer):
    issuer, meta = bbs_issuer
    attrs = CredentialAttributes.from_holder(HOLDER)
    path = tmp_path / "w.json"
    wallet = Wallet.create(path, PASSPHRASE)
    lost = issuer.issue(wallet.issuance_request(), attrs)  # memory only: gone with this Wallet object
    kept = issuer.issue(wallet.issuance_request(keep_pending=True), attrs)
    later = Wallet.open(path, PASSPHRASE)
    with pytest.raises(CredentialError) as info:
        later.accept(lost, meta)
    assert info.value.reason == "signature_invalid"
    later.accept(kept, meta)
    with pytest.raises(CredentialError) as info:  # a pending request is used once
        Wallet.open(path, PASSPHRASE).accept(kept, meta)
    assert info.value.reason == "no_pending_request"
    assert len(Wallet.open(path, PASSPHRASE).credentials()) == 1


def test_present_picks_unexpired_credential(tmp_path, bbs_issuer):
    wallet = Wallet.create(tmp_path / "w.json", PASSPHRASE)
    with pytest.raises(CredentialError) as info:
        wallet.present("https://rp.example", "n", ["age_over_18"])
    assert info.value.reason == "no_credential"
    issuer, meta = bbs_issuer
    old = CredentialAttributes.from_holder(HOLDER, today=date.today() - timedelta(days=40))  # expired 10 days ago
    wallet.accept(issuer.issue(wallet.issuance_request(), old), meta)
    with pytest.raises(CredentialError) as info:
        wallet.present("https://rp.example", "n", ["age_over_18"])
    assert info.value.reason == "no_credential"
    _issued(wallet, bbs_issuer)
    result = verify(wallet.present("https://rp.example", "n", ["age_over_18"]), meta, service_id="https://rp.example",
                    nonce="n")
    assert result.expires > date.today()


# --- SD-JWT VC batches -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sdjwt_issuer() -> tuple[JWK, dict]:
    key = JWK.generate(kty="OKP", crv="Ed25519", kid="sd-1")
    return key, sdjwt.issuer_metadata([key], ISSUER)


def _batch(sdjwt_issuer, n: int) -> tuple[list[str], list[dict]]:
    key, _ = sdjwt_issuer
    holders = [JWK.generate(kty="OKP", crv="Ed25519") for _ in range(n)]
    creds = sdjwt.issue_batch(key, iss=ISSUER, kid="sd-1", vct="https://idproof.example/credentials/identity",
                              claims=CredentialAttributes.from_holder(HOLDER).to_claims(),
                              holder_keys=[JWK(**h.export_public(as_dict=True)) for h in holders],
                              lifetime=timedelta(days=30))
    return creds, [json.loads(h.export_private()) for h in holders]


def test_sdjwt_batch_is_used_once_each(tmp_path, sdjwt_issuer):
    _, meta = sdjwt_issuer
    path = tmp_path / "w.json"
    wallet = Wallet.create(path, PASSPHRASE)
    wallet.add_sdjwt_batch(*_batch(sdjwt_issuer, 3))
    assert "BEGIN" not in path.read_text() and '"d"' not in path.read_text()  # private holder keys encrypted
    hashes = set()
    for i in range(3):
        presentation = Wallet.open(path, PASSPHRASE).present_sdjwt("https://rp.example", f"n{i}", ["age_over_18"])
        result = sdjwt.verify(presentation, meta, aud="https://rp.example", nonce=f"n{i}")
        assert result.claims == {"age_over_18": True}
        hashes.add(result.credential_hash)
    assert len(hashes) == 3  # a different credential each time
    wallet = Wallet.open(path, PASSPHRASE)
    assert wallet.sdjwt_remaining() == 0
    with pytest.raises(CredentialError) as info:
        wallet.present_sdjwt("https://rp.example", "n", ["age_over_18"])
    assert info.value.reason == "no_unused_credential"
    with pytest.raises(CredentialError) as info:
        wallet.present_sdjwt("https://rp.example", "n", ["document_number"])
    assert info.value.reason == "attribute_unknown"


def test_sdjwt_batch_input_checked(tmp_path, sdjwt_issuer):
    wallet = Wallet.create(tmp_path / "w.json", PASSPHRASE)
    creds, keys = _batch(sdjwt_issuer, 2)
    with pytest.raises(ValueError):
        wallet.add_sdjwt_batch(creds, keys[:1])
    with pytest.raises(ValueError):  # public keys only: the wallet could not sign the key binding
        wallet.add_sdjwt_batch(creds, [{k: v for k, v in key.items() if k != "d"} for key in keys])
    assert wallet.sdjwt_remaining() == 0


# --- CLI -------------------------------------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path, bbs_issuer, sdjwt_issuer):
    issuer, meta = bbs_issuer
    runner = CliRunner()
    path = tmp_path / "cli-wallet.json"
    env = {"IDPROOF_WALLET_PASSPHRASE": PASSPHRASE, "IDPROOF_WALLET": str(path)}

    result = runner.invoke(app, ["init", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert path.exists()
    assert runner.invoke(app, ["init", str(path)], env=env).exit_code == 1  # never overwrites

    result = runner.invoke(app, ["request"], env=env)
    assert result.exit_code == 0, result.output
    request = json.loads(result.stdout)
    response_file, meta_file = tmp_path / "response.json", tmp_path / "issuer.json"
    response_file.write_text(json.dumps(issuer.issue(request, CredentialAttributes.from_holder(HOLDER))))
    meta_file.write_text(json.dumps(meta))
    result = runner.invoke(app, ["accept", "--response", str(response_file), "--issuer-metadata", str(meta_file)],
                           env=env)
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["bbs"][0]["claims"]["given_name"] == "Anna" and shown["sdjwt_unused"] == 0
    assert "nym_secret" not in result.stdout and "signature" not in result.stdout
    result = runner.invoke(app, ["show"], env=env)
    assert result.exit_code == 0 and "age_over_18: true" in result.stdout

    result = runner.invoke(app, ["present", "--to", "https://rp.example", "--nonce", "n1", "--show", "age_over_18",
                                 "--show", "given_name"], env=env)
    assert result.exit_code == 0, result.output
    presentation = result.stdout.strip()

    verify_args = ["verify", "--issuer-metadata", str(meta_file), "--service", "https://rp.example"]
    result = runner.invoke(app, [*verify_args, "--nonce", "n1", presentation])
    assert result.exit_code == 0, result.output
    verified = json.loads(result.stdout)
    assert verified["disclosed"] == {"age_over_18": True, "given_name": "Anna",
                                     "expires": shown["bbs"][0]["expires"]}
    assert len(verified["pseudonym"]) == 96
    result = runner.invoke(app, [*verify_args, "--nonce", "n1", "-"], input=presentation + "\n")
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, [*verify_args, "--nonce", "n2", presentation])
    assert result.exit_code == 1 and "nonce_mismatch" in result.output
    result = runner.invoke(app, [*verify_args, "--nonce", "n1", "garbage!"])
    assert result.exit_code == 1 and "malformed" in result.output

    result = runner.invoke(app, ["present", "--to", "x", "--nonce", "n", "--show", "birth_date"], env=env)
    assert result.exit_code == 1 and "attribute_unknown" in result.output
    result = runner.invoke(app, ["present", "--to", "x", "--nonce", "n", "--format", "sd-jwt"], env=env)
    assert result.exit_code == 1 and "no_unused_credential" in result.output

    Wallet.open(path, PASSPHRASE).add_sdjwt_batch(*_batch(sdjwt_issuer, 1))
    result = runner.invoke(app, ["present", "--to", "https://rp.example", "--nonce", "n3", "--show", "age_over_21",
                                 "--format", "sd-jwt", "--wallet", str(path)],
                           env={"IDPROOF_WALLET_PASSPHRASE": PASSPHRASE})
    assert result.exit_code == 0, result.output
    claims = sdjwt.verify(result.stdout.strip(), sdjwt_issuer[1], aud="https://rp.example", nonce="n3").claims
    assert claims == {"age_over_21": True}

    result = runner.invoke(app, ["show"], env={**env, "IDPROOF_WALLET_PASSPHRASE": "wrong"})
    assert result.exit_code == 1 and "wallet_locked" in result.output


def test_cli_prompts_for_passphrase(tmp_path):
    runner = CliRunner()
    path = tmp_path / "w.json"
    env = {"IDPROOF_WALLET_PASSPHRASE": ""}
    result = runner.invoke(app, ["init", str(path)], input=f"{PASSPHRASE}\n{PASSPHRASE}\n", env=env)
    assert result.exit_code == 0, result.output
    assert PASSPHRASE not in result.output  # hidden input
    result = runner.invoke(app, ["show", "--wallet", str(path)], input=f"{PASSPHRASE}\n", env=env)
    assert result.exit_code == 0 and "No BBS credential" in result.output
    Wallet.open(path, PASSPHRASE)
    assert Path(path).stat().st_mode & 0o077 == 0
