"""`idproof bench documents`: the metric functions on real expected.csv rows, the worker protocol on real
images (PassportEye peer; idproof's reader when present) and the command line's --json object."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from idproof.bench import documents as bd
from idproof.bench._documents_worker import FIELDS, normalise_fields, repaired_lines

DOCS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "documents"

pytestmark = pytest.mark.skipif(not (DOCS / "expected.csv").is_file(), reason=f"shared document data not found at {DOCS}")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    with (DOCS / "expected.csv").open(newline="", encoding="utf-8-sig") as f:
        return {Path(r["file"]).name: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def images() -> list[bd.DocImage]:
    return bd.read_images(DOCS)


def _by_name(images: list[bd.DocImage], name: str) -> bd.DocImage:
    return next(i for i in images if i.file == name)


def _need_passporteye() -> None:
    pytest.importorskip("passporteye")
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract binary not installed (Debian: tesseract-ocr)")


# --- pure functions -----------------------------------------------------------------------------------


def test_read_images_classifies_the_folder(images):
    names = [i.file for i in images]
    assert names == sorted(names) and len(names) == len(set(names))
    gt = {i.file for i in images if i.has_gt}
    assert gt == {"pe_passport-td3.jpg", "pe_passport-td3.png", "fm_td3.jpg", "fm_td1.jpg", "fm_passport_uk.jpg"}
    assert [i.file for i in images if i.negative] == ["fm_nomrz.jpg"]
    td1 = _by_name(images, "fm_td1.jpg")
    assert len(td1.gt_lines) == 3 and all(len(x) == 30 for x in td1.gt_lines)
    assert td1.gt_fields["given_names"] == "ANNA MARIA" and td1.gt_fields["document_number"] == "D23145890"
    assert _by_name(images, "pe_testdata_79_pass-can.jpg").pe_recorded_score == 79
    assert _by_name(images, "pe_testdata_100_id-mac.jpg").pe_recorded_score == 100
    assert _by_name(images, "fm_td3.jpg").pe_recorded_score is None
    assert all(i.pe_recorded_score is not None for i in images if i.file.startswith("pe_testdata_"))


def test_select_images_mixes_kinds(images):
    assert bd.select_images(images, None) == images
    three = bd.select_images(images, 3)
    assert len(three) == 3
    assert sum(i.has_gt for i in three) == 1 and sum(i.negative for i in three) == 1
    assert [i.file for i in three] == sorted(i.file for i in three)
    assert len(bd.select_images(images, 10)) == 10


def test_lines_exact_on_specimen_rows(rows):
    r = rows["fm_td3.jpg"]
    truth = (r["line1"], r["line2"])
    assert bd.lines_exact(list(truth), truth)
    assert bd.lines_exact([" " + truth[0].lower() + " ", truth[1]], truth)  # whitespace / case do not count
    assert not bd.lines_exact([truth[0], truth[1].replace("UTO", "UT0")], truth)  # one character
    assert not bd.lines_exact([truth[0]], truth)  # a line missing
    assert not bd.lines_exact(None, truth) and not bd.lines_exact([], truth)
    t1 = rows["fm_td1.jpg"]
    assert bd.lines_exact([t1["line1"], t1["line2"], t1["line3"]], (t1["line1"], t1["line2"], t1["line3"]))


def test_field_matches_normalises_names_and_fillers(rows):
    _, truth = bd.gt_from_row(rows["fm_passport_uk.jpg"])
    assert truth["surname"] == "PUDARSAN" and truth["date_of_birth"] == "950520" and truth["sex"] == "M"
    # what a reader hands back, PassportEye style: type 'P<', names with '<' fillers and stray spaces
    read = {k: truth[k] for k in FIELDS} | {"document_code": "P<", "given_names": "HENERT<<<", "surname": " PUDARSAN "}
    assert bd.field_matches(read, truth) == {k: True for k in FIELDS}
    wrong = read | {"given_names": "HENERT K KK", "nationality": "GBP"}
    m = bd.field_matches(wrong, truth)
    assert [k for k, ok in m.items() if not ok] == ["nationality", "given_names"]
    assert bd.field_matches(None, truth) == {k: False for k in FIELDS}
    assert normalise_fields({"sex": "<"})["sex"] == "X" and normalise_fields({"sex": "X"})["sex"] == "X"
    assert normalise_fields({"given_names": "ANNA<MARIA"})["given_names"] == "ANNA MARIA"


def test_reader_figures_on_constructed_results(images):
    """Exact-match, per-field accuracy, read/valid shares and the negative, counted by hand."""
    pick = ["fm_td3.jpg", "fm_td1.jpg", "fm_nomrz.jpg", "pe_testdata_100_pass-cze.jpg", "pe_testdata_0_id-esp.png"]
    imgs = [_by_name(images, n) for n in pick]
    td3, td1 = imgs[0], imgs[1]
    results = [
        # td3: lines exactly right, every field right
        {"status": "read", "valid": True, "failed_checks": [], "lines": list(td3.gt_lines), "lines_as_read": list(td3.gt_lines),
         "fields": dict(td3.gt_fields), "seconds": 1.0},
        # td1: valid read, but one line differs and two fields are wrong (right as read, broken by the reader after)
        {"status": "read", "valid": True, "failed_checks": [], "lines": [td1.gt_lines[0], td1.gt_lines[1], "ERIKSSON<<ANNA<MARIAK<<<<<<<<<"],
         "lines_as_read": list(td1.gt_lines), "fields": dict(td1.gt_fields) | {"nationality": "UT0", "given_names": "ANNA MARIAK"},
         "seconds": 2.0},
        {"status": "no_mrz", "seconds": 0.5},  # the negative, correctly
        {"status": "read", "valid": False, "failed_checks": ["composite"], "seconds": 3.0, "fields": {}},
        {"status": "no_mrz", "seconds": 4.0},  # an MRZ image missed
    ]  # fmt: skip
    f = bd.reader_figures(imgs, results)
    assert f["gt_rows"] == 2 and f["gt_lines_exact"] == 1 and f["gt_lines_exact_rate"] == 0.5
    assert f["gt_lines_exact_as_read"] == 2
    assert f["gt_field_accuracy"] == round(16 / 18, 4)
    per = f["gt_field_accuracy_per_field"]
    assert per["nationality"] == 0.5 and per["given_names"] == 0.5 and per["document_number"] == 1.0
    assert (f["with_mrz"], f["read"], f["valid"]) == (4, 3, 2)
    assert f["read_rate"] == 0.75 and f["valid_rate"] == 0.5
    assert (f["negatives"], f["negatives_no_mrz"], f["negatives_no_mrz_rate"]) == (1, 1, 1.0)
    assert "valid_score_100" not in f and f["errors"] == 0

    # a reader that finds nothing: zero everywhere, the negative right
    none = bd.reader_figures(imgs, [{"status": "no_mrz", "seconds": 0.1}] * len(imgs))
    assert none["gt_lines_exact"] == 0 and none["gt_field_accuracy"] == 0.0 and none["valid"] == 0 and none["negatives_no_mrz"] == 1

    # the per-image detail shows MRZ text only for ground-truth rows
    d_gt = bd.image_detail(td1, results[1])
    assert d_gt["lines_exact"] is False and d_gt["lines_exact_as_read"] is True
    assert d_gt["fields_correct"] == 7 and d_gt["fields_wrong"] == ["nationality", "given_names"]
    d_other = bd.image_detail(imgs[3], results[3] | {"lines": ["SECRET"], "lines_as_read": ["SECRET"]})
    assert "lines" not in d_other and "SECRET" not in json.dumps(d_other)
    assert d_other == {"status": "read", "read_ok": True, "valid": False, "failed_checks": ["composite"], "format": None, "seconds": 3.0}


def test_repaired_lines_writes_idproof_repairs_back(rows):
    """idproof's parse_mrz repairs (O->0 in a date, a letter check digit) show up in the lines it hands over."""
    from idproof.document.mrz import parse_mrz

    r = rows["fm_td3.jpg"]
    line2 = r["line2"]
    broken = line2[:13] + "74O8I2" + line2[19:42] + "I" + line2[43:]  # date of birth with O/I, optional check digit 1 as I
    res = parse_mrz([r["line1"], broken])
    assert res.valid and {"date_of_birth", "optional_check_digit"} <= set(res.repaired)
    assert repaired_lines(res) == (r["line1"], line2)
    assert res.lines != repaired_lines(res)

    # optional data (personal number) repaired like a document number: 0 read as O
    good = line2[:28] + "K0L1<<<<<<<<<<84"
    res_opt = parse_mrz([r["line1"], good[:29] + "O" + good[30:]])
    assert res_opt.valid and "optional_data" in res_opt.repaired
    assert repaired_lines(res_opt) == (r["line1"], good)

    t1 = rows["fm_td1.jpg"]
    l2 = t1["line2"]
    res1 = parse_mrz([t1["line1"], l2[:29] + "G", t1["line3"]])  # composite check digit 6 read as G
    assert res1.valid and "composite_check_digit" in res1.repaired
    assert repaired_lines(res1) == (t1["line1"], l2, t1["line3"])


# --- worker protocol on real images ---------------------------------------------------------------------


@pytest.mark.slow
def test_passporteye_worker_protocol(images, tmp_path):
    _need_passporteye()
    pick = [_by_name(images, n) for n in ("fm_td1.jpg", "fm_nomrz.jpg", "pe_testdata_100_pass-cze.jpg")]
    res = bd.run_reader(bd.PEER, [i.path for i in pick], tmp_path)
    assert res["reader"] == "passporteye" and res["version"] == "2.2.2"
    assert len(res["images"]) == 3 and res["peak_rss_kib"] > 50_000
    td1, neg, cze = res["images"]
    assert neg["status"] == "no_mrz"
    for r in (td1, cze):
        assert r["status"] == "read" and isinstance(r["valid"], bool) and r["seconds"] > 0
        assert set(r["fields"]) == set(FIELDS) and 0 <= r["valid_score"] <= 100
        assert set(r["failed_checks"]) <= {"document_number", "date_of_birth", "expiry_date", "composite", "optional"}
    assert td1["format"] == "TD1" and len(td1["lines"]) == 3
    matches = bd.field_matches(td1["fields"], pick[0].gt_fields)
    assert sum(matches.values()) >= 7, matches  # PassportEye 2.2.2 + Tesseract 5.3 read all 9 here
    f = bd.reader_figures(pick, res["images"])
    assert f["negatives_no_mrz"] == 1 and f["gt_rows"] == 1 and f["with_mrz"] == 2


@pytest.mark.slow
def test_idproof_worker_protocol(images, tmp_path):
    if importlib.util.find_spec("idproof.document.mrz_image") is None:
        pytest.skip("idproof.document.mrz_image not present")
    pick = [_by_name(images, n) for n in ("pe_testdata_100_pass-cze.jpg", "pe_testdata_100_visa-usa.jpg")]
    res = bd.run_reader(bd.OURS, [i.path for i in pick], tmp_path)
    assert res["reader"] == "idproof" and len(res["images"]) == 2
    for r in res["images"]:
        assert r["status"] in {"read", "unparsed", "no_mrz"}, r.get("error")
        if r["status"] == "read":
            assert set(r["fields"]) == set(FIELDS) and isinstance(r["valid"], bool)
            assert len(r["lines"]) == len(r["lines_as_read"]) in (2, 3)


@pytest.mark.slow
def test_cli_bench_documents_json():
    _need_passporteye()
    from typer.testing import CliRunner

    from idproof.cli import app

    res = CliRunner().invoke(app, ["bench", "documents", "--data", str(DOCS), "--only", "passporteye", "--limit", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"bench", "data", "limit", "only", "counts", "fields", "idproof", "peers", "ratios", "images", "notes"} <= set(out)
    assert out["bench"] == "documents" and out["only"] == "passporteye" and out["limit"] == 3
    assert out["counts"]["images"] == 3 and out["counts"]["negatives"] == 1 and out["counts"]["ground_truth"] == 1
    assert out["idproof"] is None and list(out["peers"]) == ["passporteye"] and out["ratios"] == {}
    f = out["peers"]["passporteye"]
    for k in ("gt_lines_exact_rate", "gt_field_accuracy", "gt_field_accuracy_per_field", "read_rate", "valid_rate",
              "valid_score_100_rate", "negatives_no_mrz_rate", "p50_s", "p95_s", "peak_rss_mib", "version"):  # fmt: skip
        assert k in f, k
    assert f["p50_s"] > 0 and f["p95_s"] >= f["p50_s"] and f["negatives_no_mrz"] == 1
    assert len(out["images"]) == 3
    for row in out["images"]:
        assert {"file", "ground_truth", "negative", "pe_recorded_score", "passporteye"} <= set(row)
        d = row["passporteye"]
        assert {"status", "read_ok", "valid", "failed_checks", "seconds"} <= set(d)
        assert ("lines" in d) == row["ground_truth"]  # MRZ text only for the specimen rows
