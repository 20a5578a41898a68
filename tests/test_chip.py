"""Chip passive authentication (ICAO 9303 parts 10-12) on generated chips with a real face image:
passes, each failure reason, trust stores, file naming, and fuzzing of every byte-level parser."""

from __future__ import annotations

import functools
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from asn1crypto import cms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image, features

from conftest import SHARED
from idproof.document import chip as chip_mod
from idproof.document.chip import (
    ChipError,
    ChipReading,
    TrustStore,
    iter_tlv,
    load_chip_files,
    passive_authentication,
    read_tlv,
)
from idproof.document.chip_issue import ChipData, TestPKI, _tlv, build_dg2, build_master_list, issue_chip
from idproof.errors import IdproofError

FACE = SHARED / "faces/face_recognition/obama/obama.jpg"
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
NOW = datetime.now(timezone.utc)
KNOWN_CODES = {
    "sod_malformed", "chip_signature_invalid", "dsc_not_found", "csca_untrusted", "csca_expired", "dsc_expired",
    "dsc_key_usage_invalid", "dg_missing", "dg_hash_mismatch", "dg_malformed", "unsupported_algorithm",
}
PERSONAL = ("ERIKSSON", "ANNA", "L898902C3", "740812")


@functools.cache
def face_jpeg() -> bytes:
    return FACE.read_bytes()


@functools.cache
def small_face_rgb() -> np.ndarray:
    with Image.open(FACE) as im:
        return np.asarray(im.convert("RGB").resize((240, 300), Image.LANCZOS))


def encode(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


def pki(algorithm: str = "ecdsa-p256") -> TestPKI:
    return _pki(algorithm)


def chip(algorithm: str = "ecdsa-p256") -> ChipData:
    """One chip per algorithm for the whole run, with the full-size real portrait."""
    return _chip(algorithm)


@functools.cache
def _pki(algorithm: str) -> TestPKI:
    return TestPKI.generate(algorithm=algorithm)  # type: ignore[arg-type]


@functools.cache
def _chip(algorithm: str) -> ChipData:
    return issue_chip(TD3, face_jpeg(), pki=pki(algorithm))


@functools.cache
def small_chip() -> ChipData:
    """Same PKI, a small portrait: keeps the fuzz loops fast."""
    return issue_chip(TD3, encode(small_face_rgb(), "JPEG", quality=90), pki=pki())


def trust(p: TestPKI) -> TrustStore:
    return TrustStore.from_pem(p.csca_pem())


def verify(c: ChipData, *, sod: bytes | None = None, groups=None, store: TrustStore | None = None,
           **kw) -> ChipReading:
    """Passive authentication, plus the privacy rules every result must keep."""
    reading = passive_authentication(c.sod if sod is None else sod, c.data_groups if groups is None else groups,
                                     store or trust(c.pki), **kw)
    for f in reading.failures:  # no personal data in what may be logged
        assert f.code in KNOWN_CODES, f
        assert not any(p in f.text for p in PERSONAL), f.text
    assert not any(p in repr(reading) for p in PERSONAL)
    return reading


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[index] ^= mask
    return bytes(b)


# --- passing chips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa-pss-2048"])
def test_generated_chip_passes(algorithm: str) -> None:
    reading = verify(chip(algorithm))
    assert reading.passive_authenticated, reading.failures
    assert reading.failures == ()
    assert set(reading.checks) >= {"sod_parsed", "sod_signature", "dsc_chain", "dsc_validity", "csca_validity",
                                   "dsc_key_usage", "dg_hash:DG1", "dg_hash:DG2"}
    assert reading.hash_algorithm == "sha256"
    assert reading.signature_algorithm == ("ecdsa-sha256" if algorithm == "ecdsa-p256" else "rsa-pss-sha256")
    assert reading.dsc_subject and "Document Signer UTO" in reading.dsc_subject
    assert reading.csca_subject and "CSCA UTO" in reading.csca_subject


def test_dg1_mrz_is_parsed() -> None:
    mrz = verify(chip()).mrz
    assert mrz is not None and mrz.valid
    assert (mrz.format, mrz.document_number, mrz.issuing_state) == ("TD3", "L898902C3", "UTO")
    assert (mrz.primary_identifier, mrz.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")
    assert mrz.date_of_birth is not None and mrz.date_of_birth.isoformat() == "1974-08-12"


def test_dg2_jpeg_portrait_decodes_to_the_same_image() -> None:
    reading = verify(chip())
    with Image.open(FACE) as im:
        expected = np.asarray(im.convert("RGB"))
    assert reading.portrait_format == "jpeg"
    assert reading.portrait_rgb is not None and reading.portrait_rgb.dtype == np.uint8
    assert np.array_equal(reading.portrait_rgb, expected)


@pytest.mark.parametrize("container", ["jp2", "j2k"])
def test_dg2_jpeg2000_portrait_round_trips_losslessly(container: str) -> None:
    assert features.check("jpg_2000"), "Pillow without OpenJPEG cannot read JPEG 2000 portraits"
    rgb = small_face_rgb()
    jp2 = encode(rgb, "JPEG2000", irreversible=False, no_jp2=container == "j2k")  # reversible 5/3: lossless
    reading = verify(issue_chip(TD3, jp2, pki=pki("rsa-pss-2048"), image_format="jpeg2000"))
    assert reading.passive_authenticated, reading.failures
    assert reading.portrait_format == "jpeg2000"
    assert np.array_equal(reading.portrait_rgb, rgb)


@pytest.mark.parametrize("hash_name", ["sha1", "sha384", "sha512"])
def test_other_hash_algorithms(hash_name: str) -> None:
    reading = verify(issue_chip(TD3, small_face_rgb(), pki=pki(), hash_name=hash_name))
    assert reading.passive_authenticated, reading.failures
    assert reading.hash_algorithm == hash_name


def test_nonstandard_facial_record_header_falls_back_to_image_scan() -> None:
    dg2 = small_chip().dg2
    i = dg2.index(b"FAC\x00010\x00")
    odd = dg2[:i + 4] + b"030\x00" + dg2[i + 8:]  # a 2011-edition version tag we do not walk
    reading = verify(small_chip(), groups={1: small_chip().dg1, 2: odd})
    assert reading.checks["dg_parsed:DG2"] and reading.portrait_rgb is not None
    assert reading.reasons == ("dg_hash_mismatch:DG2",)  # the bytes changed, so the hash must not match


def test_trailing_padding_after_a_data_group_is_ignored() -> None:
    c = small_chip()
    assert verify(c, groups={1: c.dg1 + b"\x00" * 7, 2: c.dg2 + b"\xff" * 3}).passive_authenticated
    assert verify(c, groups={1: c.dg1 + b"junk", 2: c.dg2}).reasons == ("dg_hash_mismatch:DG1",)


# --- failure reasons ---------------------------------------------------------------------------------------


def test_flipped_byte_in_dg2() -> None:
    c = chip()
    reading = verify(c, groups={1: c.dg1, 2: flip(c.dg2, len(c.dg2) // 2)})
    assert not reading.passive_authenticated
    mismatch = [f for f in reading.failures if f.code == "dg_hash_mismatch"]
    assert [(f.qualifier, f.reason) for f in mismatch] == [("DG2", "dg_hash_mismatch:DG2")]
    assert "Data group 2" in mismatch[0].text
    assert reading.checks["dg_hash:DG1"] and not reading.checks["dg_hash:DG2"]
    assert reading.checks["sod_signature"]  # the SOD itself is fine


def _signature_offset(sod: bytes) -> int:
    sd = cms.ContentInfo.load(read_tlv(sod).value)["content"]
    sig = sd["signer_infos"][0]["signature"].native
    return sod.index(sig) + len(sig) // 2


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa-pss-2048"])
def test_flipped_byte_in_signature(algorithm: str) -> None:
    c = chip(algorithm)
    reading = verify(c, sod=flip(c.sod, _signature_offset(c.sod)))
    assert reading.reasons == ("chip_signature_invalid",)
    assert not reading.checks["sod_signature"] and not reading.passive_authenticated


def test_tampered_dg_hash_in_sod_breaks_the_signature() -> None:
    c = small_chip()
    digest = chip_mod._digest("sha256", c.dg2)
    reading = verify(c, sod=flip(c.sod, c.sod.index(digest)))
    assert "chip_signature_invalid" in reading.reasons  # messageDigest no longer matches
    assert "dg_hash_mismatch:DG2" in reading.reasons


def _edit_unsigned(sod: bytes, edit) -> bytes:
    """Re-encode EF.SOD after changing a field the signature does not cover."""
    ci = cms.ContentInfo.load(read_tlv(sod).value)
    edit(ci["content"])
    return _tlv(0x77, ci.dump(force=True))


def test_signer_certificate_not_in_the_sod() -> None:
    def other_serial(sd: cms.SignedData) -> None:
        sid = sd["signer_infos"][0]["sid"].chosen
        sid["serial_number"] = sid["serial_number"].native + 1

    reading = verify(small_chip(), sod=_edit_unsigned(small_chip().sod, other_serial))
    assert reading.reasons == ("dsc_not_found",)
    assert reading.checks["dg_hash:DG2"] and not reading.checks["sod_signature"]


def test_unsupported_signature_algorithm() -> None:
    def dsa(sd: cms.SignedData) -> None:
        sd["signer_infos"][0]["signature_algorithm"] = {"algorithm": "sha256_dsa"}

    reading = verify(small_chip(), sod=_edit_unsigned(small_chip().sod, dsa))
    assert reading.reasons == ("unsupported_algorithm",)
    assert "2.16.840.1.101.3.4.3.2" in reading.failures[0].text  # names the algorithm for the operator


def test_trust_store_without_the_issuing_csca() -> None:
    other_country = TestPKI.generate(country="DEU")
    reading = verify(chip(), store=trust(other_country))
    assert reading.reasons == ("csca_untrusted",)
    assert "No CSCA in the trust store" in reading.failures[0].text
    assert not reading.checks["dsc_chain"] and reading.csca_subject is None


def test_csca_with_the_same_name_but_another_key_is_not_the_issuer() -> None:
    impostor = TestPKI.generate(country="UTO")  # same subject name, different key
    reading = verify(chip(), store=trust(impostor))
    assert reading.reasons == ("csca_untrusted",)
    assert "does not verify" in reading.failures[0].text


def test_dsc_from_another_pki() -> None:
    # SOD signed by a DSC of an untrusted PKI: the signature is fine, the chain is not.
    rogue = issue_chip(TD3, face_jpeg(), pki=TestPKI.generate(country="UTO"))
    assert verify(rogue, store=trust(pki())).reasons == ("csca_untrusted",)


def test_expired_csca() -> None:
    p = TestPKI.generate(csca_valid=(NOW - timedelta(days=4000), NOW - timedelta(days=1)))
    reading = verify(issue_chip(TD3, small_face_rgb(), pki=p))
    assert reading.reasons == ("csca_expired",)
    assert "expired on" in reading.failures[0].text
    assert reading.checks["dsc_chain"] and not reading.checks["csca_validity"]


def test_expired_dsc() -> None:
    p = TestPKI.generate(dsc_valid=(NOW - timedelta(days=4000), NOW - timedelta(days=1)))
    reading = verify(issue_chip(TD3, small_face_rgb(), pki=p))
    assert reading.reasons == ("dsc_expired",)
    assert not reading.checks["dsc_validity"]


def test_validity_is_checked_at_the_given_time() -> None:
    assert verify(small_chip(), at=NOW + timedelta(days=365 * 30)).reasons == ("dsc_expired", "csca_expired")
    early = verify(small_chip(), at=NOW - timedelta(days=30))
    assert early.reasons == ("dsc_expired", "csca_expired")
    assert "not valid until" in early.failures[0].text
    assert verify(small_chip(), at=(NOW + timedelta(days=30)).replace(tzinfo=None)).passive_authenticated


def test_missing_dg2() -> None:
    c = chip()
    reading = verify(c, groups={1: c.dg1})
    assert reading.reasons == ("dg_missing:DG2",)
    assert reading.portrait_rgb is None and reading.mrz is not None
    assert not reading.passive_authenticated


def test_dsc_without_digital_signature_key_usage() -> None:
    reading = verify(issue_chip(TD3, small_face_rgb(), pki=TestPKI.generate(dsc_key_usage_ok=False)))
    assert reading.reasons == ("dsc_key_usage_invalid",)
    assert not reading.checks["dsc_key_usage"]


def test_sod_that_is_not_a_security_object() -> None:
    c = small_chip()
    reading = verify(c, sod=b"\x77\x03\x02\x01\x00")
    assert reading.reasons == ("sod_malformed",)
    assert reading.mrz is not None and reading.portrait_rgb is not None  # still shown, never authenticated
    assert not reading.passive_authenticated


def test_portrait_pixel_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chip_mod, "MAX_PORTRAIT_PIXELS", 10_000)
    reading = verify(small_chip())
    assert reading.reasons == ("dg_malformed:DG2",) and "over the limit" in reading.failures[0].text
    assert reading.portrait_rgb is None


def test_unusable_arguments_raise_chip_error() -> None:
    c = small_chip()
    with pytest.raises(ChipError):
        passive_authentication(c.sod, {99: c.dg1}, trust(c.pki))
    with pytest.raises(ChipError):
        passive_authentication(c.sod, {1: "not bytes"}, trust(c.pki))  # type: ignore[dict-item]
    with pytest.raises(ChipError):
        passive_authentication(c.sod, c.data_groups, None)  # type: ignore[arg-type]
    # string keys and the full dict from load_chip_files are accepted
    groups = {"SOD": c.sod, "DG1": c.dg1, "dg2": c.dg2}
    assert passive_authentication(c.sod, groups, trust(c.pki)).passive_authenticated


# --- trust stores ------------------------------------------------------------------------------------------


def test_master_list_round_trip(tmp_path: Path) -> None:
    signer = TestPKI.generate(country="DEU")
    ml = build_master_list([pki().csca_cert, pki("rsa-pss-2048").csca_cert], signer=signer)
    store = TrustStore.from_master_list(ml)
    assert len(store) == 2 and set(store.certificates) == {pki().csca_cert, pki("rsa-pss-2048").csca_cert}
    assert verify(chip(), store=store).passive_authenticated
    assert verify(chip("rsa-pss-2048"), store=store).passive_authenticated
    # signed by a DSC of the signer's CSCA: verifies against that CSCA, not against another
    assert len(TrustStore.from_master_list(ml, verify_with=trust(signer))) == 2
    with pytest.raises(ChipError, match="does not verify"):
        TrustStore.from_master_list(ml, verify_with=trust(pki()))
    with pytest.raises(ChipError, match="not a readable ICAO CSCA master list"):
        TrustStore.from_master_list(small_chip().sod)
    # and as a file, next to PEM and DER certificates
    (tmp_path / "list.ml").write_bytes(ml)
    (tmp_path / "extra.der").write_bytes(signer.csca_cert.public_bytes(Encoding.DER))
    (tmp_path / "notes.txt").write_text("ignored: not a certificate extension")
    assert len(TrustStore.from_paths([tmp_path])) == 3


def test_trust_store_errors(tmp_path: Path) -> None:
    with pytest.raises(ChipError, match="No readable PEM"):
        TrustStore.from_pem(b"hello")
    (tmp_path / "bad.pem").write_text("not a cert")
    with pytest.raises(ChipError):
        TrustStore.from_paths([tmp_path / "bad.pem"])
    with pytest.raises(ChipError, match="File not found"):
        TrustStore.from_paths([tmp_path / "missing.pem"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChipError, match="No CSCA certificates"):
        TrustStore.from_paths([tmp_path / "empty"])


# --- chip files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [
    ("EF_SOD.bin", "EF_DG1.bin", "EF_DG2.bin"),
    ("SOD.bin", "DG1.BIN", "dg2"),
    ("EF.SOD", "EF.DG1", "EF.DG2.bin"),
    ("sod", "DataGroup1.bin", "datagroup2.bin"),
    ("011D.bin", "0101", "0102.bin"),
])
def test_load_chip_files_naming_styles(tmp_path: Path, names: tuple[str, str, str]) -> None:
    c = small_chip()
    for name, data in zip(names, (c.sod, c.dg1, c.dg2)):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "EF_DG3.bin").write_bytes(b"")  # an unreadable DG3 placeholder: skipped
    (tmp_path / "readme.txt").write_text("not chip data")
    files = load_chip_files(tmp_path)
    assert files == {"SOD": c.sod, "DG1": c.dg1, "DG2": c.dg2}
    assert passive_authentication(files["SOD"], files, trust(c.pki)).passive_authenticated


def test_chip_data_write_and_load(tmp_path: Path) -> None:
    small_chip().write(tmp_path / "dump")
    files = load_chip_files(tmp_path / "dump")
    store = TrustStore.from_paths([tmp_path / "dump" / "csca.pem"])
    assert passive_authentication(files["SOD"], files, store).passive_authenticated


def test_load_chip_files_errors(tmp_path: Path) -> None:
    with pytest.raises(ChipError) as e:
        load_chip_files(tmp_path / "nope")
    assert e.value.code == "chip_files_missing" and e.value.fix
    (tmp_path / "DG1.bin").write_bytes(small_chip().dg1)
    with pytest.raises(ChipError, match="No EF.SOD"):
        load_chip_files(tmp_path)
    (tmp_path / "SOD.bin").write_bytes(small_chip().sod[:40].hex().encode())
    with pytest.raises(ChipError, match="hex text"):
        load_chip_files(tmp_path)
    (tmp_path / "SOD.bin").write_bytes(small_chip().sod)
    (tmp_path / "EF_DG1.bin").write_bytes(chip().dg1 + b"x")
    with pytest.raises(ChipError, match="claim to be DG1"):
        load_chip_files(tmp_path)


# --- BER-TLV ------------------------------------------------------------------------------------------------


def test_tlv_reader_basics() -> None:
    t = read_tlv(bytes.fromhex("5F1F03414243"))
    assert (t.tag, t.value, t.end) == (0x5F1F, b"ABC", 6)
    assert read_tlv(bytes.fromhex("7F6182000100")).value == b"\x00"  # long-form length
    assert [x.tag for x in iter_tlv(bytes.fromhex("02010180 00"))] == [0x02, 0x80]
    for bad in ("", "61", "6180", "618500000000", "1F80", "6105414243",
                "1FFFFFFFFF0100", "61FF"):
        with pytest.raises(ChipError) as e:
            read_tlv(bytes.fromhex(bad))
        assert e.value.code == "chip_tlv_malformed"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 70))
def test_fuzz_tlv_reader(data: bytes, offset: int) -> None:
    try:
        t = read_tlv(data, offset)
    except ChipError:
        return
    assert offset < t.end <= len(data) and t.start == offset
    assert data[t.end - len(t.value):t.end] == t.value


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0x02, 0x61, 0x5F1F, 0x7F61, 0x7F2E]), st.binary(max_size=300))
def test_fuzz_tlv_round_trip(tag: int, value: bytes) -> None:
    encoded = _tlv(tag, value)
    t = read_tlv(encoded)
    assert (t.tag, t.value, t.end) == (tag, value, len(encoded))


# --- fuzzing the whole pipeline ---------------------------------------------------------------------------

_mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**9), st.integers(1, 255)),
    st.tuples(st.just("flip_head"), st.integers(0, 199), st.integers(1, 255)),  # headers hold the structure
    st.tuples(st.just("truncate"), st.integers(0, 10**9), st.just(0)),
    st.tuples(st.just("random"), st.integers(0, 0), st.just(0)),
)


def _mutate(data: bytes, kind: str, pos: int, mask: int, rnd: bytes) -> bytes:
    if kind == "random":
        return rnd
    if kind == "truncate":
        return data[:pos % len(data)]
    return flip(data, (pos if kind == "flip" else pos % 200) % len(data), mask)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["sod", "dg1", "dg2"]), _mutations, st.binary(max_size=200))
def test_fuzz_passive_authentication(target: str, mutation: tuple[str, int, int], rnd: bytes) -> None:
    c = small_chip()
    parts = {"sod": c.sod, "dg1": c.dg1, "dg2": c.dg2}
    parts[target] = _mutate(parts[target], *mutation, rnd)
    reading = verify(c, sod=parts["sod"], groups={1: parts["dg1"], 2: parts["dg2"]})  # must not raise
    assert isinstance(reading, ChipReading)
    if target != "sod" and parts[target] != getattr(c, target):
        assert not reading.passive_authenticated  # any change to a data group must be caught
    if reading.passive_authenticated:
        assert reading.portrait_rgb is not None and reading.mrz is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_sod_and_groups(data: bytes) -> None:
    c = small_chip()
    for sod, groups in ((data, c.data_groups), (c.sod, {1: data, 2: data}), (b"\x77" + data, {1: c.dg1, 2: data})):
        try:
            reading = passive_authentication(sod, groups, trust(c.pki))
        except ChipError:
            continue
        assert not reading.passive_authenticated


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_facial_record_parser(payload: bytes) -> None:
    # Structurally valid DG2 wrapper around an arbitrary biometric data block.
    dg2 = _tlv(0x75, _tlv(0x7F61, _tlv(0x02, b"\x01") + _tlv(0x7F60, _tlv(0x5F2E, b"FAC\x00010\x00" + payload))))
    reading = passive_authentication(small_chip().sod, {1: small_chip().dg1, 2: dg2}, trust(pki()))
    assert "dg_hash_mismatch:DG2" in reading.reasons


def test_build_dg2_rejects_a_mislabelled_image() -> None:
    with pytest.raises(ValueError, match="not a JPEG 2000 image"):
        build_dg2(face_jpeg(), image_format="jpeg2000")


def test_chip_error_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(IdproofError) as e:
        load_chip_files(tmp_path)
    assert isinstance(e.value, ChipError) and e.value.code == "chip_files_missing"
    assert "EF_SOD.bin" in e.value.fix
