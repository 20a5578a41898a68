"""Signed evidence: a real proofing → record → JWS → offline verification; what the record must never hold;
tampering refused with its reason; the CLI; storage and retention on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta

import pytest
from conftest import FACES
from jwcrypto.jwk import JWK, JWKSet
from jwcrypto.jws import JWS
from typer.testing import CliRunner

from idproof import __version__
from idproof.api import Verifier
from idproof.document.specimen import SpecimenFields, compose_mrz
from idproof.evidence import (
    ALG,
    TYP,
    EvidenceError,
    EvidenceKey,
    EvidenceRecord,
    from_decision,
    input_hash,
    verify_evidence,
)
from idproof.evidence import store as evidence_store
from idproof.evidence.cli import app as evidence_app

OBAMA2 = FACES / "face_recognition/obama/obama2.jpg"
NONCE = "n0nce-3f9a1c7e5b2d4a6f"


@pytest.fixture(scope="module")
def proofing(obama_passport):
    """One real proofing: the specimen passport (portrait obama.jpg) against another photo, obama2.jpg."""
    doc, selfie = obama_passport.read_bytes(), OBAMA2.read_bytes()
    decision = Verifier().verify(doc, selfie)
    assert decision.accepted, decision.to_dict()
    return decision, {"document": doc, "selfie": selfie}


@pytest.fixture(scope="module")
def key() -> EvidenceKey:
    return EvidenceKey.generate()


@pytest.fixture(scope="module")
def signed(proofing, key):
    decision, inputs = proofing
    record = from_decision(decision, inputs=inputs, capture_nonce=NONCE, proofing_id="3b0e6a8e-7a43-4f6f-9d5e-0c1d2e3f4a5b")
    return record, key.sign(record)


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _refused(token, keys, reason: str) -> EvidenceError:
    with pytest.raises(EvidenceError) as e:
        verify_evidence(token, keys)
    assert e.value.reason == reason, (e.value.reason, str(e.value))
    assert e.value.fix
    return e.value


def _jws(payload: bytes, jwk: JWK, header: dict) -> str:
    t = JWS(payload)
    t.add_signature(jwk, alg=header["alg"], protected=json.dumps(header))
    return t.serialize(compact=True)


# --- round trip on a real proofing -------------------------------------------------------------------------

def test_real_proofing_signs_and_verifies_with_everything_the_decision_rests_on(proofing, key, signed):
    decision, inputs = proofing
    record, token = signed
    back = verify_evidence(token, key.public_pem())
    assert back == record

    assert back.outcome == "accept" and back.reasons == ("match:match",)
    assert back.score == decision.match.score and back.score >= back.threshold
    assert back.threshold == decision.match.threshold
    assert back.target_fmr == decision.match.target_fmr and back.target_fmr in (1e-2, 1e-3, 1e-4)
    assert back.model_scores == decision.match.model_scores and back.model_scores
    assert back.scorer == decision.scorer
    assert back.calibration_version == decision.calibration_version and back.calibration_version
    assert back.model_versions == decision.model_versions and back.model_versions
    assert back.code_version == __version__
    assert "face_match_1to1" in back.checks_performed and "mrz_check_digits" in back.checks_performed
    assert back.document["mrz_format"] == "TD3" and back.document["expired"] is False
    assert back.capture_nonce == NONCE
    assert back.proofing_id == "3b0e6a8e-7a43-4f6f-9d5e-0c1d2e3f4a5b"
    assert back.decided_at == decision.decided_at
    assert datetime.fromisoformat(back.decided_at) <= back.issued <= datetime.now(UTC)

    # the inputs: salted SHA-256, recomputable by whoever holds the exact file
    salt = bytes.fromhex(back.input_salt)
    assert len(salt) == 32
    assert set(back.input_hashes) == {"document", "selfie"}
    assert back.input_hashes["selfie"] == hashlib.sha256(salt + inputs["selfie"]).hexdigest()
    assert back.matches_input("document", inputs["document"]) and back.matches_input("selfie", inputs["selfie"])
    assert not back.matches_input("selfie", inputs["document"])
    assert not back.matches_input("selfie", inputs["selfie"][:-1])

    header = json.loads(_unb64(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": key.kid, "typ": "idproof-evidence+jws"}


def test_salt_is_fresh_per_record_so_records_do_not_link_through_their_inputs(proofing):
    decision, inputs = proofing
    a, b = (from_decision(decision, inputs=inputs) for _ in range(2))
    assert a.input_salt != b.input_salt and a.record_id != b.record_id
    assert a.input_hashes["selfie"] != b.input_hashes["selfie"]
    assert a.input_hashes["selfie"] != hashlib.sha256(inputs["selfie"]).hexdigest()  # never unsalted


def test_frames_get_one_hash_each_in_order(proofing, key):
    decision, inputs = proofing
    frames = [inputs["selfie"], inputs["selfie"] + b"\x00", inputs["document"]]
    record = from_decision(decision, inputs={"frames": frames, "chip.sod": b"\x77" * 300}, salt=b"\x01" * 32)
    assert record.input_hashes["frames"] == tuple(input_hash(b"\x01" * 32, f) for f in frames)
    assert all(record.matches_input("frames", f) for f in frames)
    assert verify_evidence(key.sign(record), key.public_jwk()) == record


def test_guessable_or_unhashable_inputs_are_refused(proofing):
    decision, inputs = proofing
    for role in ("chip.dg1", "dg1", "mrz", "chip/mrz"):
        with pytest.raises(EvidenceError) as e:
            from_decision(decision, inputs={role: b"P<UTOERIKSSON<<ANNA<MARIA"})
        assert e.value.reason == "bad_input" and "chip.sod" in e.value.fix
    for bad in ({"selfie": str(OBAMA2)}, {"Selfie Photo": b"x"}):
        with pytest.raises(EvidenceError):
            from_decision(decision, inputs=bad)
    with pytest.raises(EvidenceError):
        from_decision(decision, inputs=inputs, salt=b"short")
    with pytest.raises(EvidenceError):
        from_decision(decision, inputs=inputs, capture_nonce="has spaces in it")


def test_payload_holds_no_personal_data_and_no_image(proofing, signed):
    decision, inputs = proofing
    _, token = signed
    assert decision.holder is not None  # the accepted decision does carry the holder's facts in memory...
    payload = _unb64(token.split(".")[1])
    text = payload.decode()
    fields = SpecimenFields()  # what the obama_passport specimen prints (conftest: make_specimen defaults)
    mrz = compose_mrz(fields, "TD3")

    needles = [*mrz, fields.document_number, fields.primary_identifier, *fields.secondary_identifier.split(),
               decision.holder.family_name, decision.holder.given_name]
    for d in (fields.date_of_birth, fields.expiry_date):
        needles += [d.isoformat(), d.strftime("%y%m%d"), d.strftime("%d.%m.%Y"), d.strftime("%d %b %Y").upper()]
    for line in mrz:  # any long stretch of an MRZ line (its fields without the fillers) too
        needles += [chunk for chunk in line.split("<") if len(chunk) >= 6]
    # the random hex fields (salt, hashes, ids) are blanked first: a 6-digit date could turn up in them by chance
    lowered = re.sub(r"[0-9a-f-]{32,}", "#", text.lower())
    for needle in needles:
        assert needle.lower() not in lowered, f"personal data in the evidence payload: {needle!r}"
    assert decision.subject_handle is None or decision.subject_handle not in text

    # ...and no image: small, no slice of either file in raw, base64 or hex form, no unsalted hash of it
    assert len(payload) < 8192
    for data in inputs.values():
        for i in (0, len(data) // 2):
            chunk = data[i : i + 48]
            assert chunk not in payload
            assert base64.b64encode(chunk)[:32].decode() not in text
            assert _b64(chunk)[:32] not in text
            assert chunk.hex() not in text
        assert hashlib.sha256(data).hexdigest() not in text
    assert "holder" not in json.loads(text)


def test_record_json_is_canonical_and_strict(signed):
    record, _ = signed
    text = record.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert EvidenceRecord.from_json(text) == record
    obj = json.loads(text)
    for broken in ({**obj, "extra": 1}, {k: v for k, v in obj.items() if k != "threshold"}, {**obj, "score": "high"},
                   {**obj, "format": "idproof-evidence/v0"}, {**obj, "input_salt": "00"}):
        with pytest.raises(EvidenceError) as e:
            EvidenceRecord.from_json(json.dumps(broken, sort_keys=True, separators=(",", ":")))
        assert e.value.reason == "invalid_record"
    with pytest.raises(EvidenceError):  # same content, other spelling
        EvidenceRecord.from_json(json.dumps(obj, sort_keys=True, indent=1))


# --- tampering -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["outcome", "score", "nonce", "first", "last"])
def test_one_changed_payload_byte_is_refused(signed, key, where):
    _, token = signed
    h, p, s = token.split(".")
    payload = bytearray(_unb64(p))
    text = payload.decode()
    i = {"outcome": text.index('"accept"') + 1, "score": text.index('"score":') + 10,
         "nonce": text.index(NONCE), "first": 0, "last": len(payload) - 1}[where]
    payload[i] ^= 0x01
    _refused(f"{h}.{_b64(bytes(payload))}.{s}", key.public_pem(), "bad_signature")


def test_signature_swapped_from_another_record_is_refused(proofing, signed, key):
    decision, inputs = proofing
    _, token = signed
    other = key.sign(from_decision(decision, inputs=inputs, capture_nonce="another-nonce"))
    h, p, _ = token.split(".")
    _refused(f"{h}.{p}.{other.split('.')[2]}", key.public_pem(), "bad_signature")


def test_wrong_key_is_refused(signed, key):
    record, token = signed
    stranger = EvidenceKey.generate()
    _refused(token, stranger.public_pem(), "unknown_kid")
    # signed by another key under this key's kid: the kid finds the real key, whose check fails
    forged = _jws(record.to_json().encode(), JWK.from_pem(_private_pem(stranger)), {"alg": ALG, "kid": key.kid, "typ": TYP})
    _refused(forged, key.public_pem(), "bad_signature")


def test_alg_none_and_hmac_confusion_are_refused(signed, key):
    record, token = signed
    p = token.split(".")[1]
    none = _b64(json.dumps({"alg": "none", "kid": key.kid, "typ": TYP}).encode())
    _refused(f"{none}.{p}.", key.public_pem(), "alg_not_eddsa")
    # HS256 with the public key's bytes as the secret: the classic confusion
    secret = JWK(kty="oct", k=_b64(key.public_pem()))
    hs = _jws(record.to_json().encode(), secret, {"alg": "HS256", "kid": key.kid, "typ": TYP})
    _refused(hs, key.public_pem(), "alg_not_eddsa")
    # RFC 9864's fully specified Ed25519 is not what we sign with either
    ed = _b64(json.dumps({"alg": "Ed25519", "kid": key.kid, "typ": TYP}).encode())
    _refused(f"{ed}.{p}.{token.split('.')[2]}", key.public_pem(), "alg_not_eddsa")


def test_wrong_typ_is_refused_even_with_a_good_signature(signed, key, tmp_path):
    record, _ = signed
    path = tmp_path / "k.pem"
    key.save(path)
    jwk = JWK.from_pem(path.read_bytes())
    for typ in ("JWT", "idproof-credential+jws", None):
        header = {"alg": ALG, "kid": key.kid, **({"typ": typ} if typ else {})}
        _refused(_jws(record.to_json().encode(), jwk, header), key.public_pem(), "wrong_typ")


def test_malformed_tokens_and_non_record_payloads_are_refused(signed, key, tmp_path):
    record, token = signed
    for bad in ("", "abc", "a.b", token + ".x", token.replace(".", "!", 1), "e30.e30.", "bm90IGpzb24.e30.AA", "W10.e30.AA"):
        _refused(bad, key.public_pem(), "malformed")
    extra = _b64(json.dumps({"alg": ALG, "kid": key.kid, "typ": TYP, "crit": ["b64"], "b64": False}).encode())
    _refused(f"{extra}.{token.split('.')[1]}.{token.split('.')[2]}", key.public_pem(), "malformed")
    # a good signature over something that is not a record
    path = tmp_path / "k.pem"
    key.save(path)
    jwk = JWK.from_pem(path.read_bytes())
    header = {"alg": ALG, "kid": key.kid, "typ": TYP}
    for payload in (b'{"outcome":"accept"}', b"not json", record.to_json().replace('"accept"', '"ok"').encode(),
                    json.dumps(record.to_dict(), indent=2).encode()):
        _refused(_jws(payload, jwk, header), key.public_pem(), "invalid_record")


def test_public_key_forms_and_bad_keys(signed, key, tmp_path):
    record, token = signed
    pem = tmp_path / "evidence.pub"
    pem.write_bytes(key.public_pem())
    jwk_file = tmp_path / "evidence.jwk.json"
    jwk_file.write_text(json.dumps(key.public_jwk()))
    other = EvidenceKey.generate()
    jwks = {"keys": [other.public_jwk(), key.public_jwk()]}
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    for keys in (key.public_pem(), key.public_pem().decode(), pem, str(pem), jwk_file, jwks_file, jwks,
                 key.public_jwk(), JWK(**key.public_jwk()), JWKSet.from_json(json.dumps(jwks))):
        assert verify_evidence(token, keys) == record
    p256 = JWK.generate(kty="EC", crv="P-256")
    for bad in (tmp_path / "missing.pem", b"garbage", {"kty": "oct", "k": "AAAA"}, JWK(**json.loads(p256.export_public()))):
        _refused(token, bad, "bad_public_key")


def test_kid_is_the_rfc7638_thumbprint(key):
    jwk = key.public_jwk()
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}, separators=(",", ":"), sort_keys=True)
    assert jwk["kid"] == key.kid == _b64(hashlib.sha256(members.encode()).digest())
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and "d" not in jwk


def test_key_file_is_private_and_never_overwritten(signed, tmp_path):
    record, _ = signed
    path = tmp_path / "evidence.key"
    k = EvidenceKey.generate()
    k.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(EvidenceError) as e:
        EvidenceKey.generate().save(path)
    assert e.value.reason == "bad_key" and path.read_bytes() == before
    loaded = EvidenceKey.load(path)
    assert loaded.kid == k.kid and "PRIVATE" not in repr(loaded)
    assert verify_evidence(loaded.sign(record), k.public_pem()) == record
    (tmp_path / "not-a-key").write_bytes(k.public_pem())
    with pytest.raises(EvidenceError) as e:
        EvidenceKey.load(tmp_path / "not-a-key")
    assert e.value.reason == "bad_key"


# --- CLI -------------------------------------------------------------------------------------------------

def test_cli_keygen_verify_show(proofing, tmp_path):
    decision, inputs = proofing
    runner = CliRunner()
    keyfile = tmp_path / "evidence.key"
    r = runner.invoke(evidence_app, ["keygen", str(keyfile)])
    assert r.exit_code == 0, r.output
    pub = tmp_path / "evidence.key.pub"
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600 and pub.is_file()
    assert runner.invoke(evidence_app, ["keygen", str(keyfile)]).exit_code == 2  # never overwrites

    record = from_decision(decision, inputs=inputs, capture_nonce=NONCE)
    good = tmp_path / "evidence.jws"
    good.write_text(EvidenceKey.load(keyfile).sign(record) + "\n")
    r = runner.invoke(evidence_app, ["verify", str(good), "--public-key", str(pub)])
    assert r.exit_code == 0, r.output
    assert "VERIFIED" in r.output and "outcome: accept" in r.output and "match:match" in r.output
    assert NONCE in r.output and record.calibration_version in r.output
    r = runner.invoke(evidence_app, ["verify", str(good), "--public-key", str(pub), "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == record.to_dict()

    h, p, s = good.read_text().strip().split(".")
    tampered = tmp_path / "tampered.jws"
    tampered.write_text(f"{h}.{_b64(_unb64(p).replace(b'accept', b'acceqt'))}.{s}")
    r = runner.invoke(evidence_app, ["verify", str(tampered), "--public-key", str(pub)])
    assert r.exit_code == 1 and "bad_signature" in r.output and "outcome" not in r.output

    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(EvidenceKey.generate().public_pem())
    r = runner.invoke(evidence_app, ["verify", str(good), "--public-key", str(stranger)])
    assert r.exit_code == 1 and "unknown_kid" in r.output
    r = runner.invoke(evidence_app, ["verify", str(tmp_path / "nope.jws"), "--public-key", str(pub)])
    assert r.exit_code == 1
    r = runner.invoke(evidence_app, ["verify", str(good), "--public-key", str(good)])
    assert r.exit_code == 1 and "bad_public_key" in r.output

    r = runner.invoke(evidence_app, ["show", str(tampered)])
    assert r.exit_code == 0 and "NOT VERIFIED" in r.output and "acceqt" in r.output
    r = runner.invoke(evidence_app, ["show", str(pub)])
    assert r.exit_code == 1 and "malformed" in r.output


# --- storage and retention -------------------------------------------------------------------------------

def test_store_save_get_and_purge_is_idempotent(db_url, proofing, key):
    from idproof.storage.store import make_engine, migrate

    decision, inputs = proofing
    engine = make_engine(db_url)
    migrate(engine)  # 0004 creates evidence_records
    now = datetime.now(UTC).replace(microsecond=0)
    ages = {"old-1": 400, "old-2": 200, "new-1": 10, "new-2": 0}
    saved = {}
    for label, days in ages.items():
        record = from_decision(decision, inputs=inputs, proofing_id="p-" + label[:3], issued_at=now - timedelta(days=days))
        token = key.sign(record)
        assert evidence_store.save(engine, token, record) == record.record_id
        assert evidence_store.save(engine, token, record) == record.record_id  # again: a no-op
        saved[label] = (record, token)

    rec, token = saved["old-2"]
    row = evidence_store.get(engine, rec.record_id)
    assert row.jws == token and row.created_at == now - timedelta(days=200) and row.proofing_id == "p-old"
    assert verify_evidence(row.jws, key.public_pem()) == rec
    assert [r.id for r in evidence_store.for_proofing(engine, "p-old")] == [saved["old-1"][0].record_id, rec.record_id]
    assert evidence_store.get(engine, "no-such-record") is None
    with pytest.raises(EvidenceError):  # a token that does not carry this record
        evidence_store.save(engine, saved["new-1"][1], saved["new-2"][0])

    cutoff = now - timedelta(days=30)
    assert evidence_store.purge_older_than(engine, cutoff) == 2
    assert evidence_store.purge_older_than(engine, cutoff) == 0  # idempotent
    assert evidence_store.purge_older_than(engine, cutoff.astimezone(timezone_plus_5())) == 0  # same instant, other zone
    assert evidence_store.get(engine, saved["old-1"][0].record_id) is None
    for label in ("new-1", "new-2"):
        r, t = saved[label]
        assert evidence_store.get(engine, r.record_id).jws == t  # newer records kept
    assert evidence_store.purge_older_than(engine, now) == 1  # issued exactly at the cutoff: kept
    assert evidence_store.get(engine, saved["new-2"][0].record_id) is not None
    with pytest.raises(ValueError):
        evidence_store.purge_older_than(engine, datetime.now())
    engine.dispose()


def test_migration_0004_upgrades_and_downgrades(db_url):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from idproof.storage.store import MIGRATIONS, make_engine, migrate

    engine = make_engine(db_url)
    migrate(engine)
    tables = inspect(engine)
    assert "evidence_records" in tables.get_table_names()
    assert {ix["name"] for ix in tables.get_indexes("evidence_records")} >= {
        "ix_evidence_records_created_at", "ix_evidence_records_proofing_id"}
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    assert "evidence_records" not in inspect(engine).get_table_names()
    migrate(engine)
    assert "evidence_records" in inspect(engine).get_table_names()
    engine.dispose()


def timezone_plus_5():
    from datetime import timezone

    return timezone(timedelta(hours=5))


def _private_pem(k: EvidenceKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return k._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_idproof_verify_writes_signed_evidence_and_stores_it(obama_passport, tmp_path):
    """`idproof verify --evidence-out` signs the record with the service key; `idproof evidence verify` checks it
    offline; the stored copy is the same token; the record hashes the very bytes that were verified."""
    from idproof.cli import app as main_app

    runner = CliRunner()
    key = tmp_path / "evidence.key"
    assert runner.invoke(main_app, ["evidence", "keygen", str(key)]).exit_code == 0
    out, db = tmp_path / "decision.jws", f"sqlite:///{tmp_path / 'd.sqlite3'}"
    selfie = FACES / "face_recognition/obama/obama2.jpg"
    r = runner.invoke(main_app, ["verify", "--document", str(obama_passport), "--selfie", str(selfie), "--db", db,
                                 "--evidence-out", str(out), "--evidence-key", str(key)])
    assert r.exit_code == 0, r.output
    token = out.read_text().strip()
    record = verify_evidence(token, tmp_path / "evidence.key.pub")
    assert record.outcome == "accept" and record.proofing_id
    assert record.matches_input("selfie", selfie.read_bytes()) and record.matches_input("document", obama_passport.read_bytes())
    from idproof.storage.store import make_engine

    (stored,) = evidence_store.for_proofing(make_engine(db), record.proofing_id)
    assert stored.jws == token
    ok = runner.invoke(main_app, ["evidence", "verify", str(out), "--public-key", str(tmp_path / "evidence.key.pub")])
    assert ok.exit_code == 0, ok.output
    no_key = runner.invoke(main_app, ["verify", "--document", str(obama_passport), "--selfie", str(selfie), "--no-store",
                                      "--evidence-out", str(tmp_path / "x.jws")], env={"IDPROOF_EVIDENCE_KEY": ""})
    assert no_key.exit_code == 2 and "--evidence-key" in no_key.output
