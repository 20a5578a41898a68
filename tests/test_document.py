"""The document stage end to end: MRZ from real and specimen document images, the document rules
(expiry, minimum age, unreadable field), the portrait, and chip passive authentication in verify."""

from __future__ import annotations

import csv
import io
import zlib
from datetime import date, datetime, timedelta, UTC

import numpy as np
import pytest
from PIL import Image

from conftest import FACES, SHARED, jpeg_bytes, read_rgb
from idproof import Outcome
from idproof.api import Verifier
from idproof.document import ChipInput, DocumentPolicy
from idproof.document.chip import TrustStore
from idproof.document.chip_issue import TestPKI, issue_chip
from idproof.document.mrz_image import NoMrzFound, read_mrz
from idproof.document.specimen import SpecimenFields, _draw_td3, compose_mrz, crop_portrait, make_specimen
from idproof.imageio import load_image

DOCS = SHARED / "documents"
OBAMA = read_rgb(FACES / "face_recognition/obama/obama.jpg")
OBAMA2 = FACES / "face_recognition/obama/obama2.jpg"
BIDEN = FACES / "face_recognition/biden/biden.jpg"
TODAY = date(2026, 11, 23)


def _ground_truth() -> list[dict]:
    with open(DOCS / "expected.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["line1"]]


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(document_policy=DocumentPolicy(min_age=18, today=TODAY))


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _fields(**kw) -> SpecimenFields:
    return SpecimenFields(expiry_date=kw.pop("expiry_date", date(2031, 1, 1)), **kw)


# --- MRZ from real document images --------------------------------------------------------------------


@pytest.mark.parametrize("row", _ground_truth(), ids=lambda r: r["file"].split("/")[-1])
def test_ground_truth_documents_read_exactly(row):
    reading = read_mrz(load_image(DOCS / row["file"]), today=TODAY)
    expected = tuple(x for x in (row["line1"], row["line2"], row["line3"]) if x)
    assert reading.valid
    assert reading.lines == expected
    r = reading.result
    assert (r.document_number, r.issuing_state, r.sex) == (row["document_number"], row["issuing_country"], row["sex"])
    assert r.date_of_birth.strftime("%y%m%d") == row["date_of_birth"]


def test_document_without_mrz_is_named(verifier):
    rgb = load_image(DOCS / "images/fm_nomrz.jpg")
    with pytest.raises(NoMrzFound) as e:
        read_mrz(rgb)
    assert e.value.code == "no_mrz_found" and "MRZ" in e.value.fix
    d = verifier.verify(DOCS / "images/fm_nomrz.jpg", OBAMA2)
    assert d.outcome is Outcome.RETRY and "document:no_mrz_found" in d.reasons


# --- the document rules, on specimens made from real faces ----------------------------------------------


def test_specimen_passport_and_matching_selfie_accepted(verifier, obama_passport):
    d = verifier.verify(obama_passport, OBAMA2)
    assert d.outcome is Outcome.ACCEPT, d.reasons
    assert d.document["source"] == "document_image" and d.document["mrz_format"] == "TD3"
    assert d.document["expired"] is False and d.document["meets_min_age"] is True
    assert {"mrz_check_digits", "document_expiry", "minimum_age", "face_match_1to1"} <= set(d.checks_performed)
    # the decision (stored, logged, returned) carries no personal document data
    blob = d.to_json()
    for text in ("ERIKSSON", "ANNA", "L898902C3", "1974-08-12", "740812"):
        assert text not in blob
    assert verifier.verify(obama_passport, BIDEN).outcome is Outcome.REJECT


def test_expired_document_is_rejected_before_any_face_work(verifier):
    spec = make_specimen(OBAMA, _fields(expiry_date=date(2024, 5, 1)), seed=2)
    d = verifier.verify(_png(spec.image), OBAMA2)
    assert d.outcome is Outcome.REJECT and d.reasons == ("document:document_expired",)
    assert d.match is None and "selfie.load" not in d.timings_ms


@pytest.mark.parametrize("min_age, outcome", [(18, Outcome.ACCEPT), (21, Outcome.REJECT)])
def test_minimum_age_comes_from_the_date_of_birth(min_age, outcome):
    born = date(2008, 6, 1)  # 18 on TODAY
    spec = make_specimen(OBAMA, _fields(date_of_birth=born), seed=3)
    d = Verifier(document_policy=DocumentPolicy(min_age=min_age, today=TODAY)).verify(_png(spec.image), OBAMA2)
    assert d.outcome is outcome, d.reasons
    if outcome is Outcome.REJECT:
        assert d.reasons == ("document:under_minimum_age",)
        assert "21" in d.findings[0].text


def test_check_digit_that_cannot_be_repaired_names_the_field(verifier):
    fields = _fields()
    lines = list(compose_mrz(fields, "TD3"))
    dob_check = lines[1][19]
    lines[1] = lines[1][:19] + str((int(dob_check) + 5) % 10) + lines[1][20:]  # digit for digit: no repair can help
    image = _draw_td3(crop_portrait(OBAMA), fields, tuple(lines), True)
    d = verifier.verify(_png(image), OBAMA2)
    assert d.outcome is Outcome.RETRY
    assert "document:mrz_unreadable:date_of_birth" in d.reasons
    assert any("check digit" in f.text for f in d.findings)


@pytest.mark.parametrize(
    "opts",
    [
        {"rotation_deg": 12.0},
        {"rotation_deg": -14.0},
        {"upside_down": True},
        {"perspective": 0.08, "blur_sigma": 0.8, "noise_sigma": 4.0, "jpeg_quality": 80},
    ],
    ids=["rot+12", "rot-14", "upside-down", "phone-photo"],
)
def test_rotated_and_photographed_pages_still_read(opts):
    fields = _fields(document_number="X49Z20OB1", secondary_identifier="JOSÉ LUIS")
    spec = make_specimen(OBAMA, fields, degrade_opts=opts, seed=5)
    reading = read_mrz(spec.image, today=TODAY)
    assert reading.valid and reading.lines == spec.mrz_lines
    if opts.get("upside_down"):
        assert abs(reading.angle_deg) > 170


def test_td1_card_with_long_document_number(verifier):
    fields = _fields(document_number="D23145890734", primary_identifier="STEVENSON", secondary_identifier="PETER JOHN")
    spec = make_specimen(OBAMA, fields, kind="TD1", seed=7)
    assert spec.mrz_lines[0][14] == "<"  # overflow into the optional data (9303 part 5)
    reading = read_mrz(spec.image, today=TODAY)
    assert reading.valid and reading.result.document_number == "D23145890734"
    assert verifier.verify(_png(spec.image), OBAMA2).outcome is Outcome.ACCEPT


def test_portrait_is_the_largest_face_not_the_ghost(obama_passport):
    from idproof.document.reading import crop_portrait as doc_crop
    from idproof.face.detect import detect_faces

    page = load_image(obama_passport)
    assert len(detect_faces(page)) == 2  # portrait + ghost image
    crop = doc_crop(page)
    assert crop is not None and crop.shape[0] < page.shape[0] / 1.5
    faces = detect_faces(crop)
    assert len(faces) == 1 and faces[0].width > 0.3 * crop.shape[1]


# --- chip data in verify --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chip_case():
    spec = make_specimen(OBAMA, _fields(), seed=11)
    pki = TestPKI.generate()
    chip = issue_chip(spec.mrz_lines, spec.portrait_jpeg, pki=pki)
    return spec, pki, chip


def _chip_input(chip, trust, dg_override: dict | None = None) -> ChipInput:
    dgs = {1: chip.dg1, 2: chip.dg2} | (dg_override or {})
    return ChipInput(chip.sod, dgs, trust)


def test_chip_alone_is_a_reference_portrait(verifier, chip_case):
    spec, pki, chip = chip_case
    trust = TrustStore.from_pem(pki.csca_pem())
    d = verifier.verify(None, OBAMA2, chip=_chip_input(chip, trust))
    assert d.outcome is Outcome.ACCEPT, d.reasons
    assert d.document["source"] == "chip" and d.document["passive_authentication"] is True
    assert "chip_passive_authentication" in d.checks_performed
    # chip and page together: same MRZ, accepted
    d = verifier.verify(_png(spec.image), OBAMA2, chip=_chip_input(chip, trust))
    assert d.outcome is Outcome.ACCEPT, d.reasons


def test_altered_chip_portrait_is_rejected_with_the_data_group(verifier, chip_case):
    _, pki, chip = chip_case
    dg2 = bytearray(chip.dg2)
    dg2[len(dg2) // 2] ^= 0x01
    d = verifier.verify(None, OBAMA2, chip=_chip_input(chip, TrustStore.from_pem(pki.csca_pem()), {2: bytes(dg2)}))
    assert d.outcome is Outcome.REJECT and "chip:dg_hash_mismatch:DG2" in d.reasons
    assert d.match is None


def test_chip_from_an_untrusted_or_expired_csca_is_rejected(verifier, chip_case):
    _, _, chip = chip_case
    other = TestPKI.generate()
    d = verifier.verify(None, OBAMA2, chip=_chip_input(chip, TrustStore.from_pem(other.csca_pem())))
    assert d.outcome is Outcome.REJECT and "chip:csca_untrusted" in d.reasons

    now = datetime.now(UTC)
    old = TestPKI.generate(csca_valid=(now - timedelta(days=3650), now - timedelta(days=1)), dsc_valid=(now - timedelta(days=400), now + timedelta(days=30)))
    spec = make_specimen(OBAMA, _fields(), seed=12)
    expired_chip = issue_chip(spec.mrz_lines, spec.portrait_jpeg, pki=old)
    d = verifier.verify(None, OBAMA2, chip=_chip_input(expired_chip, TrustStore.from_pem(old.csca_pem())))
    assert d.outcome is Outcome.REJECT and "chip:csca_expired" in d.reasons


def test_chip_of_another_document_than_the_page_is_rejected(verifier, chip_case):
    _, pki, chip = chip_case
    other_page = make_specimen(OBAMA, _fields(document_number="ZZ1234567"), seed=13)
    d = verifier.verify(_png(other_page.image), OBAMA2, chip=_chip_input(chip, TrustStore.from_pem(pki.csca_pem())))
    assert d.outcome is Outcome.REJECT and "chip:chip_mrz_mismatch" in d.reasons


# --- bad document input -----------------------------------------------------------------------------------


def _bomb_png(side: int = 20000) -> bytes:
    """A valid PNG header claiming side x side pixels, with a tiny compressed body."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "payload, hint",
    [
        (b"this is a text file, not a photo", "format"),
        (jpeg_bytes(OBAMA)[:5000], "truncated"),
        (_bomb_png(), "pixels"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n", "pdf"),
    ],
    ids=["not-an-image", "truncated-jpeg", "20000x20000", "pdf"],
)
def test_bad_document_input_is_a_retry_naming_the_fix(verifier, payload, hint):
    d = verifier.verify(payload, OBAMA2)
    assert d.outcome is Outcome.RETRY
    assert d.reasons[0] == "document:bad_image"
    assert hint in d.findings[0].text.lower(), d.findings[0].text
