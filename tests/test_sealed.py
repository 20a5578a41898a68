"""Sealed templates held by the person: seal / unseal, recovery codes, and re-authentication end to end on
real faces and a migrated database (SQLite, and PostgreSQL where scripts/test.sh provides one)."""

from __future__ import annotations

import base64
import gc
import re
import secrets
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import inspect, text

from conftest import FACES, jpeg_bytes, read_rgb
from idproof.face.embed import Template
from idproof.reasons import Outcome
from idproof.sealed import SealedTemplates, generate_sealing_key, load_sealing_key, new_recovery_code, parse_recovery_code
from idproof.sealed.template import (
    _CROCKFORD,
    PREFIX,
    RecoveryCodeError,
    SealedFormatError,
    SealedHandleMismatch,
    SealedSecretWrong,
    SealedSignatureInvalid,
    open_sealed,
    parse_sealed,
    seal,
    unseal,
)
from idproof.storage.models import Base
from idproof.storage.store import make_engine, migrate

OBAMA = FACES / "face_recognition/obama/obama.jpg"
OBAMA2 = FACES / "face_recognition/obama/obama2.jpg"
BIDEN = FACES / "face_recognition/biden/biden.jpg"


def handle() -> str:
    return secrets.token_hex(32)


def edit(sealed: str, offset: int, value: bytes) -> str:
    """The sealed template with its raw bytes at ``offset`` replaced (offset < 0: from the end)."""
    blob = parse_sealed(sealed).raw
    offset %= len(blob)
    raw = blob[:offset] + value + blob[offset + len(value) :]
    return PREFIX + base64.b32encode(raw).decode().rstrip("=")


def unit_template(seed: int = 0) -> Template:
    v = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return Template({"arcface_fp": v / np.linalg.norm(v)})


# --- recovery codes ----------------------------------------------------------------------------------------


def test_recovery_code_round_trips_and_every_single_typo_or_swap_is_caught():
    code = new_recovery_code()
    assert re.fullmatch(r"([0-9A-Z]{4}-){7}[0-9A-Z]{4}", code)
    secret = parse_recovery_code(code)
    assert len(secret) * 8 >= 128 and secret != parse_recovery_code(new_recovery_code())
    # case, spaces, dashes and the look-alikes O / I / L do not matter
    assert parse_recovery_code(" " + code.lower().replace("-", " ") + "\n") == secret
    assert parse_recovery_code(code.replace("0", "O").replace("1", "I")) == secret

    chars = code.replace("-", "")
    for i, c in enumerate(chars):  # every one-character substitution, guaranteed by the CRC-16
        for other in _CROCKFORD:
            if other != c:
                with pytest.raises(RecoveryCodeError, match="typo"):
                    parse_recovery_code(chars[:i] + other + chars[i + 1 :])
    for i in range(len(chars) - 1):  # every swap of two neighbours
        if chars[i] != chars[i + 1]:
            with pytest.raises(RecoveryCodeError, match="typo"):
                parse_recovery_code(chars[:i] + chars[i + 1] + chars[i] + chars[i + 2 :])

    with pytest.raises(RecoveryCodeError, match="31 characters; it should have 32") as e:
        parse_recovery_code(code[:-1])
    assert e.value.fix and e.value.code == "recovery_code_invalid"
    with pytest.raises(RecoveryCodeError, match="Character 1 ") as e:
        parse_recovery_code("U" + code[1:])  # U is not in Crockford's alphabet
    assert chars not in str(e.value)  # the code never ends up in a log line


# --- seal / unseal (crypto only) ---------------------------------------------------------------------------


def test_seal_unseal_round_trip_is_compact_and_every_binding_is_checked():
    key, h, other = Ed25519PrivateKey.generate(), handle(), handle()
    secret = parse_recovery_code(new_recovery_code())
    tpl = unit_template()
    sealed = seal(tpl, secret, handle=h, version=3, signing_key=key)
    # QR alphanumeric mode holds it (upper case, digits, ':'); ~1.1 k characters for a 512-D int8 template
    assert re.fullmatch(r"IDPS:[A-Z2-7]+", sealed) and len(sealed) < 1200
    blob = parse_sealed(sealed)
    assert (blob.handle, blob.version, blob.format) == (h, 3, 1)

    got = unseal(sealed, secret, public_key=key.public_key(), expected_handle=h).vectors["arcface_fp"]
    assert float(np.dot(got, tpl.vectors["arcface_fp"])) > 0.9999  # int8: cosine to the original
    f16 = seal(tpl, secret, handle=h, version=1, signing_key=key, quantization="float16")
    assert float(np.dot(unseal(f16, secret, public_key=key.public_key()).vectors["arcface_fp"], tpl.vectors["arcface_fp"])) > 0.999999
    assert len(f16) > len(sealed) + 700

    with pytest.raises(SealedSecretWrong):
        unseal(sealed, parse_recovery_code(new_recovery_code()), public_key=key.public_key())
    with pytest.raises(SealedHandleMismatch):
        unseal(sealed, secret, public_key=key.public_key(), expected_handle=other)
    # the handle field edited: the issuer's signature no longer verifies
    with pytest.raises(SealedSignatureInvalid):
        unseal(edit(sealed, 9, bytes.fromhex(other)), secret, public_key=key.public_key())
    # the version field edited (an old template passed off as the newest)
    with pytest.raises(SealedSignatureInvalid):
        unseal(edit(sealed, 41, (4).to_bytes(4, "big")), secret, public_key=key.public_key())
    # one ciphertext byte flipped
    flipped = bytes([blob.raw[100] ^ 1])
    with pytest.raises(SealedSignatureInvalid):
        unseal(edit(sealed, 100, flipped), secret, public_key=key.public_key())
    # sealed by somebody else's key
    with pytest.raises(SealedSignatureInvalid):
        unseal(sealed, secret, public_key=Ed25519PrivateKey.generate().public_key())
    # without the signature check, the identity is still bound: the key and AAD name the handle
    with pytest.raises(SealedHandleMismatch):
        open_sealed(blob, secret, handle=other)
    for bad in ("", "hello", PREFIX + "0189", sealed[:200]):
        with pytest.raises(SealedFormatError):
            parse_sealed(bad)


def test_sealing_key_file_is_private_and_never_overwritten(tmp_path: Path):
    path = tmp_path / "sealing.pem"
    key = generate_sealing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_sealing_key(path).public_key() == key.public_key()
    with pytest.raises(Exception, match="already exists"):
        generate_sealing_key(path)


# --- the service on real faces and a real database -----------------------------------------------------------


@pytest.fixture(scope="module")
def verifier():
    from idproof.api import Verifier

    return Verifier()  # the selfie goes through the quality gate and passive PAD, as in a proofing


@pytest.fixture(scope="module")
def obama_portrait(verifier):
    sample = verifier.engine.analyze(read_rgb(OBAMA), "portrait")
    assert sample.usable
    return sample


@pytest.fixture
def service(db_url, verifier):
    return SealedTemplates(db_url, Ed25519PrivateKey.generate(), verifier)


def test_reauthentication_accepts_the_same_person_and_rejects_another(service, obama_portrait):
    h = handle()
    sealed, code = service.enroll(h, obama_portrait)
    same = service.reauthenticate(sealed, code, OBAMA2, expected_handle=h)
    assert (same.outcome, same.reason, same.handle, same.version) == (Outcome.ACCEPT, "match:match", h, 1)
    assert same.score >= same.threshold == service.verifier.threshold.threshold and same.target_fmr == 0.001
    other = service.reauthenticate(sealed, code, jpeg_bytes(read_rgb(BIDEN)))  # bytes as an upload gives them
    assert (other.outcome, other.reason) == (Outcome.REJECT, "match:below_threshold")
    assert other.score < other.threshold


def test_refusals_name_their_reason(service, obama_portrait, verifier):
    a, b = handle(), handle()
    sealed, code = service.enroll(a, obama_portrait)
    selfie = OBAMA2.read_bytes()

    def reason(*args, **kw) -> tuple[Outcome, str]:
        r = service.reauthenticate(*args, **kw)
        assert r.score is None and r.text  # refused before any face is compared, with what to do
        return r.outcome, r.reason

    assert reason(sealed, new_recovery_code(), selfie) == (Outcome.REJECT, "sealed_secret_wrong")
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert reason(sealed, typo, selfie) == (Outcome.RETRY, "recovery_code_invalid")
    # A's sealed template presented as B's (e.g. for B's number)
    assert reason(sealed, code, selfie, expected_handle=b) == (Outcome.REJECT, "sealed_handle_mismatch")
    # A's sealed template with its handle field edited to B
    assert reason(edit(sealed, 9, bytes.fromhex(b)), code, selfie) == (Outcome.REJECT, "sealed_signature_invalid")
    assert reason(edit(sealed, 9, bytes.fromhex(b)), code, selfie, expected_handle=b)[1] == "sealed_signature_invalid"
    # one byte of the ciphertext, or of the signature, changed
    blob = parse_sealed(sealed).raw
    assert reason(edit(sealed, 200, bytes([blob[200] ^ 0x80])), code, selfie)[1] == "sealed_signature_invalid"
    assert reason(edit(sealed, -1, bytes([blob[-1] ^ 1])), code, selfie)[1] == "sealed_signature_invalid"
    # issued by another idproof (another sealing key)
    foreign, foreign_code = SealedTemplates(service.engine, Ed25519PrivateKey.generate(), verifier).enroll(b, obama_portrait)
    assert reason(foreign, foreign_code, selfie)[1] == "sealed_signature_invalid"
    # signed with this key but never recorded here (e.g. a database restored from before it was issued)
    secret = parse_recovery_code(code)
    unrecorded = seal(obama_portrait.template, secret, handle=handle(), version=1, signing_key=service._signing_key)
    assert reason(unrecorded, code, selfie)[1] == "sealed_unknown"
    assert reason("IDPS:NOT-A-TEMPLATE", code, selfie) == (Outcome.REJECT, "sealed_malformed")
    # and the genuine one still works
    assert service.reauthenticate(sealed, code, selfie, expected_handle=a).accepted


def test_renewal_revokes_the_old_version_and_revoke_revokes_all(service, obama_portrait):
    h = handle()
    old, old_code = service.enroll(h, obama_portrait)
    new, new_code = service.enroll(h, obama_portrait.template)  # re-enrolment: a new secret, version 2
    assert new_code != old_code and parse_sealed(new).version == 2
    r = service.reauthenticate(old, old_code, OBAMA2)
    assert (r.outcome, r.reason, r.version) == (Outcome.REJECT, "sealed_revoked", 1)
    assert service.reauthenticate(new, old_code, OBAMA2).reason == "sealed_secret_wrong"  # old secret, new template
    assert service.reauthenticate(new, new_code, OBAMA2).accepted

    assert service.revoke(h) == 1 and service.revoke(h) == 0
    assert service.reauthenticate(new, new_code, OBAMA2).reason == "sealed_revoked"
    third, third_code = service.enroll(h, obama_portrait)  # after a revocation: a higher version, valid again
    assert parse_sealed(third).version == 3 and service.reauthenticate(third, third_code, OBAMA2).accepted


def test_selfie_problems_ask_for_a_retry_as_in_a_proofing(service, obama_portrait):
    sealed, code = service.enroll(handle(), obama_portrait)
    r = service.reauthenticate(sealed, code, b"")
    assert (r.outcome, r.reason, r.score) == (Outcome.RETRY, "selfie:bad_image", None)
    blank = np.full((480, 640, 3), 128, np.uint8)
    r = service.reauthenticate(sealed, code, jpeg_bytes(blank))
    assert (r.outcome, r.reason) == (Outcome.RETRY, "selfie:no_face") and "face" in r.text.lower()


def test_database_holds_no_template_and_the_schema_is_the_model(service, obama_portrait, db_url):
    h = handle()
    sealed, code = service.enroll(h, obama_portrait)
    service.enroll(h, obama_portrait)
    raw = parse_sealed(sealed).raw
    vector = obama_portrait.template.vectors["arcface_fp"]
    with service.engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"include_object": only_sealed_templates})
        assert compare_metadata(ctx, Base.metadata) == []  # migration 0003 == SealedTemplateRecord
        cols = {col["name"] for col in inspect(c).get_columns("sealed_templates")}
        cells = [v for t in inspect(c).get_table_names() for row in c.execute(text(f'SELECT * FROM "{t}"')) for v in row]
    assert cols == {"handle", "version", "blob_hash", "salt", "created_at", "revoked_at"}
    # every value is a short hex digest, a number, a time or NULL: no vector, no blob, no bytes
    for v in cells:
        assert not isinstance(v, (bytes, bytearray, memoryview, float, list)), type(v)
        if isinstance(v, str):
            assert len(v) <= 64 and code.replace("-", "") not in v.upper()
    assert any(v == h for v in cells)
    if db_url.startswith("sqlite"):  # the file itself, write-ahead log included
        path = Path(db_url.removeprefix("sqlite:///"))
        data = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
        for needle in (vector.tobytes()[:64], vector.astype(np.float16).tobytes()[:32], raw[85:149], sealed[5:69].encode()):
            assert needle not in data


def only_sealed_templates(obj, name, type_, reflected, compare_to) -> bool:
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table == "sealed_templates"


def test_the_unsealed_template_is_not_retained(service, obama_portrait):
    sealed, code = service.enroll(handle(), obama_portrait)
    # what an unsealed copy looks like (int8 values, so unlike the portrait's own template), then dropped
    unsealed = unseal(sealed, parse_recovery_code(code), public_key=service._signing_key.public_key())
    expected = unsealed.vectors["arcface_fp"].copy()
    del unsealed
    assert not np.array_equal(expected, obama_portrait.template.vectors["arcface_fp"])

    assert service.reauthenticate(sealed, code, OBAMA2).accepted
    gc.collect()
    held = [o for o in gc.get_objects() if isinstance(o, Template)]
    assert not [t for t in held if any(np.array_equal(v, expected) for v in t.vectors.values())]
    assert not [k for k, v in vars(service).items() if isinstance(v, (Template, np.ndarray)) or "template" in k]


def test_a_url_opens_and_migrates_the_database(tmp_path, verifier):
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    s = SealedTemplates(url, Ed25519PrivateKey.generate(), verifier)
    assert "sealed_templates" in inspect(s.engine).get_table_names()
    migrate(make_engine(url))  # idempotent
