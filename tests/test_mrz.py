"""ICAO 9303 MRZ parsing: real ground-truth rows, published specimens, OCR repair, failure modes."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from idproof.document.mrz import MrzError, check_digit, parse_mrz
from idproof.errors import IdproofError

EXPECTED_CSV = Path(__file__).resolve().parents[1].parent / "shared/data/documents/expected.csv"
TODAY = date(2025, 1, 1)

TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
TD1 = ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")


def _rows() -> list[dict[str, str]]:
    with EXPECTED_CSV.open(newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if (r.get("line1") or "").strip()]


def test_expected_csv_has_rows() -> None:
    assert len(_rows()) >= 1


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r["file"])
def test_expected_csv_rows(row: dict[str, str]) -> None:
    lines = [row[k] for k in ("line1", "line2", "line3") if row[k].strip()]
    r = parse_mrz(lines, today=TODAY)
    assert r.format == row["mrz_type"]
    assert r.valid, r.checks
    assert r.repaired == {}
    assert r.document_code == row["document_code"]
    assert r.issuing_state == row["issuing_country"]
    assert r.document_number == row["document_number"]
    assert r.date_of_birth is not None and r.date_of_birth.strftime("%y%m%d") == row["date_of_birth"]
    assert r.expiry_date is not None and r.expiry_date.strftime("%y%m%d") == row["expiry_date"]
    assert r.sex == row["sex"]
    assert r.nationality == row["nationality"]
    assert r.primary_identifier == row["surname"]
    assert r.secondary_identifier == row["given_names"]
    assert r.unknown_state_codes == ()


def test_check_digit_published_examples() -> None:
    assert check_digit("L898902C3") == 6
    assert check_digit("740812") == 2
    assert check_digit("120415") == 9
    assert check_digit("ZE184226B<<<<<") == 1
    assert check_digit("D23145890") == 7
    assert check_digit("<<<") == 0


def test_td3_specimen() -> None:
    r = parse_mrz("\n".join(TD3), today=TODAY)
    assert r.format == "TD3"
    assert r.valid
    assert r.checks == {"document_number": True, "date_of_birth": True, "expiry_date": True,
                        "optional": True, "composite": True}
    assert (r.document_code, r.issuing_state, r.nationality) == ("P", "UTO", "UTO")
    assert r.document_number == "L898902C3"
    assert r.date_of_birth == date(1974, 8, 12)
    assert r.expiry_date == date(2012, 4, 15)
    assert r.sex == "F"
    assert (r.primary_identifier, r.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")
    assert r.optional_data == "ZE184226B"
    fields = {f.name: f for f in r.fields}
    assert fields["document_number"].check_ok is True and fields["document_number"].repaired_from is None


def test_whitespace_and_lowercase_normalised() -> None:
    text = "  " + TD3[0].lower() + "  \n\n  " + TD3[1][:20] + " " + TD3[1][20:] + "\n"
    r = parse_mrz(text, today=TODAY)
    assert r.valid and r.lines == TD3


def test_td1_specimen() -> None:
    r = parse_mrz(TD1, today=TODAY)
    assert r.format == "TD1"
    assert r.valid, r.checks
    assert set(r.checks) == {"document_number", "date_of_birth", "expiry_date", "composite"}
    assert r.document_number == "D23145890"
    assert r.date_of_birth == date(1974, 8, 12)
    assert r.expiry_date == date(2012, 4, 15)
    assert (r.primary_identifier, r.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")


def test_td1_long_document_number() -> None:
    # Number ABC123456789: check digit 2 (hand: 70+33+12+7+6+3+28+15+6+49+24+9 = 262); composite 8.
    lines = ("I<UTOABC123456<7892<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<8", TD1[2])
    r = parse_mrz(lines, today=TODAY)
    assert r.document_number == "ABC123456789"
    assert r.valid, r.checks


def test_td2_constructed() -> None:
    # Hand-computed 7-3-1 check digits:
    #   T22000129 -> 233 -> 3;  640812 -> 115 -> 5;  310131 -> 41 -> 1;
    #   composite over "T220001293"+"6408125"+"3101311"+"<<<<<<<" -> 366 -> 6
    line1 = "I<D<<MUSTERMANN<<ERIKA".ljust(36, "<")
    line2 = "T220001293D<<6408125F3101311<<<<<<<6"
    assert len(line2) == 36
    r = parse_mrz([line1, line2], today=TODAY)
    assert r.format == "TD2"
    assert r.valid, r.checks
    assert set(r.checks) == {"document_number", "date_of_birth", "expiry_date", "composite"}
    assert (r.issuing_state, r.nationality) == ("D", "D")
    assert r.unknown_state_codes == ()
    assert r.document_number == "T22000129"
    assert r.date_of_birth == date(1964, 8, 12)
    assert r.expiry_date == date(2031, 1, 31)
    assert (r.primary_identifier, r.secondary_identifier) == ("MUSTERMANN", "ERIKA")


def test_visa_formats_detected() -> None:
    mrva = ("V" + TD3[0][1:], TD3[1])
    r = parse_mrz(mrva, today=TODAY)
    assert r.format == "MRVA" and "composite" not in r.checks
    line1 = "V<D<<MUSTERMANN<<ERIKA".ljust(36, "<")
    r = parse_mrz([line1, "T220001293D<<6408125F3101311<<<<<<<<"], today=TODAY)
    assert r.format == "MRVB" and r.valid and "composite" not in r.checks


def test_ocr_confusion_in_birth_date_repaired() -> None:
    bad = TD3[1].replace("7408122", "74O8122")
    r = parse_mrz([TD3[0], bad], today=TODAY)
    assert r.valid, r.checks
    assert r.date_of_birth == date(1974, 8, 12)
    assert r.repaired == {"date_of_birth": "74O812"}
    fields = {f.name: f for f in r.fields}
    assert fields["date_of_birth"].repaired_from == "74O812"


def test_ocr_confusion_in_document_number_repaired() -> None:
    bad = TD3[1].replace("L898902C3", "L8989O2C3")
    r = parse_mrz([TD3[0], bad], today=TODAY)
    assert r.valid, r.checks
    assert r.document_number == "L898902C3"
    assert r.repaired == {"document_number": "L8989O2C3"}


def test_unrepairable_check_digit_fails_named_field() -> None:
    bad = TD3[1].replace("1204159", "1204158")
    r = parse_mrz([TD3[0], bad], today=TODAY)
    assert not r.valid
    assert r.checks["expiry_date"] is False
    assert r.checks["document_number"] and r.checks["date_of_birth"]
    assert "expiry_date" in r.failed_checks
    assert r.repaired == {}


def test_invalid_date_gives_none_and_fails() -> None:
    # 741312 (month 13) with its own correct check digit still fails.
    dob = "741312"
    bad = TD3[1].replace("7408122", dob + str(check_digit(dob)))
    r = parse_mrz([TD3[0], bad], today=TODAY)
    assert r.date_of_birth is None
    assert r.checks["date_of_birth"] is False
    assert not r.valid


def test_century_rules() -> None:
    r = parse_mrz(TD3, today=date(2030, 1, 1))
    assert r.date_of_birth == date(1974, 8, 12)
    assert r.expiry_date == date(2012, 4, 15)
    # Born in 2010: not in the future relative to 2025, so 20YY.
    dob = "100101"
    line2 = TD3[1].replace("7408122", dob + str(check_digit(dob)))
    r = parse_mrz([TD3[0], line2], today=TODAY)
    assert r.date_of_birth == date(2010, 1, 1)
    # Expiry 90 years ahead would be > 50 years: 19YY.
    exp = "900101"
    line2 = TD3[1].replace("1204159", exp + str(check_digit(exp)))
    r = parse_mrz([TD3[0], line2], today=TODAY)
    assert r.expiry_date == date(1990, 1, 1)


def test_unknown_state_flagged_not_fatal() -> None:
    line1 = TD3[0].replace("P<UTO", "P<QQQ")
    line2 = TD3[1].replace("UTO", "QQR")
    r = parse_mrz([line1, line2], today=TODAY)
    assert r.unknown_state_codes == ("QQQ", "QQR")
    assert r.issuing_state == "QQQ"
    assert r.checks["document_number"]


@pytest.mark.parametrize(
    "lines",
    [
        [TD3[0]],
        [TD3[0], TD3[1][:-1]],
        [TD3[0][:36], TD3[1]],
        [TD1[0], TD1[1], TD1[2], TD1[2]],
        [TD1[0], TD1[1] + "<", TD1[2]],
        [TD3[0], TD3[1][:-1] + "#"],
    ],
)
def test_wrong_shape_raises(lines: list[str]) -> None:
    with pytest.raises(MrzError) as ei:
        parse_mrz(lines)
    err = ei.value
    assert isinstance(err, IdproofError)
    assert err.code == "mrz_unreadable"
    assert err.fix
    # Messages never leak MRZ text.
    assert "ERIKSSON" not in str(err) and "L898902C3" not in str(err)
