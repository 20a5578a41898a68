"""Bounded fuzzing (hypothesis): the MRZ parser and the image reader raise only their documented errors.

``parse_mrz`` may raise ``MrzError`` and nothing else, and what it returns must be self-consistent:
``valid`` iff every check passed, a repair is only reported for a field whose check then passes, and
with no repair every check equals a naive ICAO 9303 recomputation over the raw lines.
``read_mrz`` on hostile arrays (noise, flat, tiny, very thin, random drawings) may only return an
``MrzReading`` or raise ``NoMrzFound``.

Set ``IDPROOF_FUZZ_SCALE`` (e.g. 20) to multiply the example counts for a longer local run.
"""

from __future__ import annotations

import os
from datetime import date

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from idproof.document import mrz_image
from idproof.document.mrz import (
    MrzError,
    MrzResult,
    _birth_date,
    _expiry_date,
    check_digit,
    parse_mrz,
)

TODAY = date(2025, 1, 1)
SCALE = max(1, int(os.environ.get("IDPROOF_FUZZ_SCALE", "1")))
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
# digits, fillers and the OCR-confusable letters, weighted so check digits sometimes pass
MRZ_CHARS = st.sampled_from(ALPHABET + "<<<<<<<<0123456789" + "ODQIBSZG")
SHAPES = ((3, 30), (2, 36), (2, 44))

SPECIMENS = {
    "TD1_long": ("I<UTOD23145890<7349<<<<<<<<<<<", "3407127M9507122UTO<<<<<<<<<<<2", "STEVENSON<<PETER<JOHN<<<<<<<<<"),
    "TD1": ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"),
    "TD2": ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"),
    "TD3": ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"),
    "MRVA": ("V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L8988901C4XXX4009078F96121096ZE184226B<<<<<<"),
    "MRVB": ("V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "L8988901C4XXX4009078F9612109<<<<<<<<"),
}

_CHECK_NAMES = {
    "TD1": {"document_number", "date_of_birth", "expiry_date", "composite"},
    "TD2": {"document_number", "date_of_birth", "expiry_date", "composite"},
    "TD3": {"document_number", "date_of_birth", "expiry_date", "optional", "composite"},
    "MRVA": {"document_number", "date_of_birth", "expiry_date"},
    "MRVB": {"document_number", "date_of_birth", "expiry_date"},
}


# --- oracle ------------------------------------------------------------------------------------------


def _ok(data: str, check: str, *, filler_ok: bool = False) -> bool:
    if check == "<":
        return filler_ok and set(data) <= {"<"}
    return check in "0123456789" and check_digit(data) == int(check)


def _naive_checks(fmt: str, lines: tuple[str, ...], today: date) -> dict[str, bool]:
    """ICAO 9303 check digits straight from the raw lines (no repair)."""
    if fmt == "TD1":
        l1, l2, _ = lines
        num, num_c = l1[5:14], l1[14]
        if num_c == "<" and l1[15] != "<":  # long document number continued in the optional field
            ext = l1[15:30].split("<", 1)[0]
            num, num_c = num + ext[:-1], ext[-1]
        dob, dob_c, exp, exp_c = l2[0:6], l2[6], l2[8:14], l2[14]
        composite = _ok(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29])
    else:
        l2 = lines[1]
        num, num_c = l2[0:9], l2[9]
        dob, dob_c, exp, exp_c = l2[13:19], l2[19], l2[21:27], l2[27]
        composite = None
        if fmt == "TD3":
            composite = _ok(l2[0:10] + l2[13:20] + l2[21:43], l2[43])
        elif fmt == "TD2":
            composite = _ok(l2[0:10] + l2[13:20] + l2[21:35], l2[35])
    out = {
        "document_number": _ok(num, num_c),
        "date_of_birth": _ok(dob, dob_c) and _birth_date(dob, today) is not None,
        "expiry_date": _ok(exp, exp_c) and _expiry_date(exp, today) is not None,
    }
    if fmt == "TD3":
        out["optional"] = _ok(lines[1][28:42], lines[1][42], filler_ok=True)
    if composite is not None:
        out["composite"] = composite
    return out


def _check_name(repaired_key: str) -> str:
    name = repaired_key.removesuffix("_check_digit")
    return {"optional_data": "optional"}.get(name, name)


def _assert_consistent(r: MrzResult, today: date) -> None:
    assert isinstance(r, MrzResult)
    assert r.format in _CHECK_NAMES
    width = len(r.lines[0])
    assert (len(r.lines), width) in SHAPES and all(len(line) == width for line in r.lines)
    assert all(set(line) <= set(ALPHABET) for line in r.lines)
    assert set(r.checks) == _CHECK_NAMES[r.format]
    assert all(isinstance(v, bool) for v in r.checks.values())
    assert r.valid is (all(r.checks.values()))
    assert set(r.failed_checks) == {k for k, v in r.checks.items() if not v}
    for key in r.repaired:  # a repair is only reported where it made the check pass
        assert r.checks[_check_name(key)] is True, (key, r.checks)
    if r.checks["date_of_birth"]:
        assert r.date_of_birth is not None and r.date_of_birth <= today
    if r.checks["expiry_date"]:
        assert r.expiry_date is not None
    if not r.repaired:
        assert r.checks == _naive_checks(r.format, r.lines, today)
    for f in r.fields:  # the per-field view must not crash either
        assert f.repaired_from is None or f.name in r.repaired


def _parse(value, today: date = TODAY) -> MrzResult | None:
    try:
        r = parse_mrz(value, today=today)
    except MrzError:
        return None
    _assert_consistent(r, today)
    return r


# --- parse_mrz ---------------------------------------------------------------------------------------

FUZZ = settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(), st.dates())
def test_parse_mrz_arbitrary_text(text: str, today: date) -> None:
    _parse(text, today)


@FUZZ
@given(st.lists(st.text(max_size=60), max_size=5))
def test_parse_mrz_arbitrary_lines(lines: list[str]) -> None:
    _parse(lines)


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none(), st.binary(max_size=5)), max_size=4))
def test_parse_mrz_non_string_lines_raise_mrz_error(items: list) -> None:
    _parse(items)


@st.composite
def _mrz_shaped(draw) -> list[str]:
    n, width = draw(st.sampled_from(SHAPES))
    lines = [draw(st.text(MRZ_CHARS, min_size=width, max_size=width)) for _ in range(n)]
    if draw(st.booleans()):  # a plausible document code (P, I, V ...) exercises the format detection
        lines[0] = draw(st.sampled_from("PIVAC")) + lines[0][1:]
    return lines


@FUZZ
@given(_mrz_shaped(), st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_parse_mrz_random_mrz_shaped(lines: list[str], today: date) -> None:
    _parse(lines, today)
    _parse("\n".join(lines).lower(), today)  # as one text, lower case


@st.composite
def _mutated_specimen(draw) -> list[str]:
    lines = [list(line) for line in SPECIMENS[draw(st.sampled_from(sorted(SPECIMENS)))]]
    for _ in range(draw(st.integers(1, 4))):
        li = draw(st.integers(0, len(lines) - 1))
        k = draw(st.integers(0, len(lines[li]) - 1))
        lines[li][k] = draw(MRZ_CHARS)
    return ["".join(line) for line in lines]


@FUZZ
@given(_mutated_specimen())
# TD1: filler in the document-number check position, filler first in the optional field (once IndexError)
@example(["I<UTOD23145890<<349<<<<<<<<<<<", SPECIMENS["TD1_long"][1], SPECIMENS["TD1_long"][2]])
@example(["I<UTOD23145890<<<<<<<<<<<<<<<<", SPECIMENS["TD1_long"][1], SPECIMENS["TD1_long"][2]])
@example(["I<UTOD23145890<7349<<<<<<<<<<7", SPECIMENS["TD1_long"][1], SPECIMENS["TD1_long"][2]])
@example(["I<UTOD23145890<734997342123456", SPECIMENS["TD1_long"][1], SPECIMENS["TD1_long"][2]])
# TD1: "long number" of zero extra characters (just a check digit after the filler): the composite
# check digit must still cover line 1 positions 6-30 as printed (it once dropped the filler)
@example(["I<UTOD23145890<7<<<<<<<<<<<<<<", "3407127M9507122UTO<<<<<<<<<<<4", SPECIMENS["TD1_long"][2]])
@example(["I<UTOD23145890<<<<<<<<<<<<<<<<", "3407127M9507122UTO<<<<<<<<<<<<", SPECIMENS["TD1_long"][2]])
@example(["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<<0"])
@example(["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "LB9B9O2C3GUTO74O8122F12O4159ZE184226B<<<<<1O"])
def test_parse_mrz_mutated_specimens(lines: list[str]) -> None:
    _parse(lines)


@pytest.mark.parametrize("name", sorted(SPECIMENS))
def test_specimens_are_valid_and_consistent(name: str) -> None:
    r = _parse(SPECIMENS[name])
    assert r is not None and r.valid and not r.repaired


# --- read_mrz ----------------------------------------------------------------------------------------

READ = settings(max_examples=25 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
EDGE_SIZES = [(1, 1), (1, 2), (2, 1), (5, 500), (500, 5), (3000, 20), (20, 3000), (1, 3000), (3000, 1),
              (1, 5000), (0, 0), (0, 7), (7, 0), (9, 13), (64, 64)]


def _read(image: np.ndarray, **kw) -> None:
    try:
        reading = mrz_image.read_mrz(image, today=TODAY, **kw)
    except mrz_image.NoMrzFound:
        return
    assert isinstance(reading, mrz_image.MrzReading)
    if reading.result is not None:
        _assert_consistent(reading.result, TODAY)
    assert reading.valid == (reading.result is not None and reading.result.valid)


def _image(seed: int, shape: tuple[int, int], rgb: bool, fill: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    full = (*shape, 3) if rgb else shape
    if fill == "noise":
        return rng.integers(0, 256, full, dtype=np.uint8)
    return np.full(full, 0 if fill == "black" else 255, np.uint8)


@READ
@given(
    st.integers(0, 2**32 - 1),
    st.one_of(
        st.sampled_from(EDGE_SIZES),
        st.tuples(st.integers(1, 600), st.integers(1, 600)),
        st.tuples(st.integers(1, 40), st.integers(1000, 3000)),  # thin strips: noise here makes "lines"
    ),
    st.booleans(),
    st.sampled_from(["noise", "black", "white"]),
)
@example(0, (1, 3000), False, "white")  # work-scale resize rounded to 0 px: cv2.error
@example(0, (1, 5000), True, "noise")
@example(0, (3000, 1), False, "black")
@example(0, (0, 0), False, "noise")  # empty image: ZeroDivisionError
@example(0, (0, 7), True, "white")  # empty image: cv2.error in resize
def test_read_mrz_noise_and_flat_images(seed: int, shape: tuple[int, int], rgb: bool, fill: str) -> None:
    _read(_image(seed, shape, rgb, fill), use_tesseract=False)


@st.composite
def _drawing(draw) -> np.ndarray:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.sampled_from([(40, 600), (300, 400), (420, 600), (120, 900), (700, 500)]))
    img = np.full((h, w, 3), int(rng.integers(150, 256)), np.uint8)
    for _ in range(int(rng.integers(0, 25))):
        p1 = (int(rng.integers(-50, w + 50)), int(rng.integers(-50, h + 50)))
        p2 = (int(rng.integers(-50, w + 50)), int(rng.integers(-50, h + 50)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, p1, p2, colour, int(rng.choice([-1, 1, 2, 4])))  # -1: filled
        else:
            cv2.line(img, p1, p2, colour, int(rng.integers(1, 6)))
    if draw(st.booleans()):  # 2-3 lines of MRZ-alphabet text: long thin dark bands the locator will pick up
        n, width = SHAPES[int(rng.integers(0, 3))]
        scale = float(rng.uniform(0.3, 0.8))
        for i in range(n):
            text = "".join(rng.choice(list(ALPHABET + "<<<<<<"), size=width))
            cv2.putText(img, text, (5, h - 10 - int((n - 1 - i) * 30 * scale * 1.6)), cv2.FONT_HERSHEY_PLAIN, scale * 1.4, (20, 20, 20), 1)
    if draw(st.booleans()):
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return img


@READ
@given(_drawing(), st.booleans())
def test_read_mrz_random_drawings(img: np.ndarray, use_tesseract: bool) -> None:
    _read(img, use_tesseract=use_tesseract)


@st.composite
def _ocrb_band(draw) -> np.ndarray:
    """Mutated specimen MRZs printed in OCR-B, rotated, blurred and noised: the whole reading path
    (band location, cell segmentation, k-NN, runner-up repair, write-back) on damaged input."""
    from PIL import Image, ImageDraw, ImageFont

    from idproof.document.ocrb import FontMissing, font_path

    try:
        font = ImageFont.truetype(str(font_path()), draw(st.integers(18, 40)))
    except FontMissing:
        pytest.skip("OCR-B font not installed")
    lines = draw(_mutated_specimen())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    step = int(font.size * draw(st.floats(1.1, 2.2)))
    w = int(font.getlength(lines[0])) + 80
    img = Image.new("L", (w, step * len(lines) + 80), int(rng.integers(170, 256)))
    pen = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        pen.text((40, 40 + i * step), line, font=font, fill=int(rng.integers(0, 90)))
    arr = np.asarray(img, np.float32)
    angle = draw(st.sampled_from([0.0, 3.0, -12.0, 180.0, 90.0])) + float(rng.uniform(-2, 2))
    m = cv2.getRotationMatrix2D((arr.shape[1] / 2, arr.shape[0] / 2), angle, 1.0)
    arr = cv2.warpAffine(arr, m, (arr.shape[1], arr.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    arr = cv2.GaussianBlur(arr, (0, 0), float(rng.uniform(0.3, 2.0)))
    arr += rng.normal(0, float(rng.uniform(0, 25)), arr.shape)
    gray = np.clip(arr, 0, 255).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB) if draw(st.booleans()) else gray


@settings(max_examples=15 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(_ocrb_band())
def test_read_mrz_damaged_ocrb_bands(img: np.ndarray) -> None:
    _read(img, use_tesseract=False)
