"""Read the MRZ from a photo or scan of a document: find the band, OCR it, parse it.

How it works, and why:

1. **Find candidate bands.** MRZ text is dark, dense, evenly spaced characters in 2–3 long parallel
   lines. A black-hat filter keeps dark-on-light strokes, a horizontal gradient keeps character
   edges, and a wide closing merges each text line into one blob; blobs that are long, thin and
   come in parallel groups of 2–3 are MRZ candidates. ``minAreaRect`` gives each band's angle, so
   pages rotated by ±15° (and upside-down pages, tried as a 180° turn) are read straight.
2. **OCR** each band with Tesseract (Debian's ``tesseract-ocr``, Apache-2.0) restricted to the MRZ
   alphabet ``A–Z 0–9 <``. The band image goes to Tesseract through a pipe, never a file: document
   images are personal data and are not written to disk.
3. **Vote with check digits.** Several crops and binarisations of each band are read; each reading is
   snapped to the ICAO line lengths and parsed (``parse_mrz`` repairs O/0-style confusions only where
   a check digit then passes). The reading with the most passing check digits wins, and reading
   stops at the first one where every check passes.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date

import cv2
import numpy as np

from idproof._timing import ms_since
from idproof.document import ocrb
from idproof.document.mrz import _LETTER_TO_DIGIT, MrzError, MrzResult, parse_mrz
from idproof.errors import IdproofError

__all__ = ["MrzReading", "NoMrzFound", "OcrUnavailable", "read_mrz"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
_LINE_LENGTHS = (44, 36, 30)
_WORK_SIDE = 1200  # locate the band on a copy whose longer side is this many pixels
_OCR_CHAR_HEIGHT = 36  # upscale bands so that characters are about this tall for Tesseract
_TESSERACT_TIMEOUT_S = 20


class NoMrzFound(IdproofError):
    """No machine-readable zone could be found or read in the document image."""

    code = "no_mrz_found"


class OcrUnavailable(IdproofError):
    """The OCR engine is not installed."""

    code = "ocr_unavailable"


@dataclass(frozen=True)
class MrzReading:
    lines: tuple[str, ...]  # the MRZ as OCR read it (snapped to ICAO line lengths), before repair
    result: MrzResult | None  # the parse, with check-digit repairs; None if the lines are not an MRZ
    angle_deg: float = 0.0  # rotation of the band in the image (180 = upside-down page)
    attempts: int = 0  # OCR passes made
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.result is not None and self.result.valid


# --- 1. finding the band ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Band:
    center: tuple[float, float]  # in original-image pixels
    size: tuple[float, float]  # (length along the text, height across the lines)
    angle: float  # degrees; rotating the image by this makes the text horizontal
    score: float


def _gray(rgb: np.ndarray) -> np.ndarray:
    if rgb.size == 0:  # cvtColor asserts on an empty array; an empty image simply has no MRZ
        return np.zeros((0, 0), np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def _text_lines(gray: np.ndarray, scale: float) -> list[tuple[np.ndarray, tuple]]:
    """Long, thin blobs of dark text: candidate MRZ lines (contour, minAreaRect) at work scale."""
    h, w = gray.shape
    # max(1, ...): a very thin strip (aspect ratio > 2400:1) would otherwise round to 0 px and crash resize.
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    side = max(small.shape)
    blur = cv2.GaussianBlur(small, (3, 3), 0)
    blackhat = cv2.morphologyEx(blur, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (17, 7)))
    grad = np.abs(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=-1))
    grad = cv2.normalize(grad, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    out = []
    for close_w in (21, 35):
        joined = cv2.morphologyEx(grad, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (close_w, 3)))
        _, binary = cv2.threshold(joined, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 3)))
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            rect = cv2.minAreaRect(c)
            length, height, angle = _normalise_rect(rect)
            if length < 0.15 * side or height < 4 or length / height < 8 or abs(angle) > 25:
                continue
            if cv2.contourArea(c) / (length * height) < 0.45:
                continue
            out.append((c, (rect[0], length, height, angle)))
    return out


def _normalise_rect(rect) -> tuple[float, float, float]:
    """(length along the text, height across it, angle in (-90, 90]) for a minAreaRect."""
    (_, _), (rw, rh), angle = rect
    if rw < rh:
        rw, rh, angle = rh, rw, angle + 90
    if angle > 90:
        angle -= 180
    return rw, rh, angle


def _find_bands(gray: np.ndarray) -> list[_Band]:
    """Groups of 2-3 parallel text lines of equal length and even spacing (the MRZ), best first;
    single long lines come after the groups as a fallback."""
    h, w = gray.shape
    if h == 0 or w == 0:  # an empty image has no MRZ (and would divide by zero below)
        return []
    scale = _WORK_SIDE / max(h, w)
    lines = _text_lines(gray, scale)
    groups: list[tuple[float, list[int]]] = []
    for i, (_, (ci, li, hi, ai)) in enumerate(lines):
        axis = np.array([np.cos(np.radians(ai)), np.sin(np.radians(ai))])
        normal = np.array([-axis[1], axis[0]])
        mates = []
        for j, (_, (cj, lj, hj, aj)) in enumerate(lines):
            if j == i or abs(aj - ai) > 4 or not 0.75 < lj / li < 1.33:
                continue
            d = np.subtract(cj, ci)
            across, along = float(d @ normal), float(d @ axis)
            if 1.2 * hi < abs(across) < 9 * hi and abs(along) < 0.15 * li:
                mates.append((across, j))
        below = sorted((a, j) for a, j in mates if a > 0)
        group = [i]
        if below and below[0][0] < 4.5 * hi:
            group.append(below[0][1])
            # a third line only at the same spacing (TD1)
            third = [j for a, j in below[1:] if abs(a - 2 * below[0][0]) < 0.25 * below[0][0]]
            group += third[:1]
        if len(group) >= 2:
            groups.append((len(group) * li, group))
    bands: list[_Band] = []
    for _, group in sorted(groups, key=lambda g: -g[0]):
        bands.append(_band_of([lines[k][0] for k in group], scale, score=len(group)))
    for c, (_, length, _, _) in sorted(lines, key=lambda x: -x[1][1])[:3]:
        bands.append(_band_of([c], scale, score=0.5))
    unique: list[_Band] = []
    for b in bands:
        if all(np.hypot(b.center[0] - u.center[0], b.center[1] - u.center[1]) > 0.3 * u.size[1] + 5 or abs(b.size[1] - u.size[1]) > 0.3 * u.size[1] for u in unique):
            unique.append(b)
    return unique[:5]


def _band_of(contours: list[np.ndarray], scale: float, *, score: float) -> _Band:
    rect = cv2.minAreaRect(np.vstack(contours))
    length, height, angle = _normalise_rect(rect)
    (cx, cy) = rect[0]
    return _Band((cx / scale, cy / scale), (length / scale, height / scale), angle, score)


def _crop_band(gray: np.ndarray, band: _Band, *, pad_x: float, pad_y: float, flip: bool) -> np.ndarray:
    """Cut the band out straight (rotate about its centre), with some margin, upscaled for OCR."""
    length, height = band.size
    out_w = int(length * (1 + 2 * pad_x))
    out_h = int(height * (1 + 2 * pad_y))
    m = cv2.getRotationMatrix2D(band.center, band.angle + (180 if flip else 0), 1.0)
    m[0, 2] += out_w / 2 - band.center[0]
    m[1, 2] += out_h / 2 - band.center[1]
    crop = cv2.warpAffine(gray, m, (out_w, out_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return crop


# --- 2. OCR -------------------------------------------------------------------------------------------


def _tesseract() -> str:
    exe = os.environ.get("IDPROOF_TESSERACT") or shutil.which("tesseract")
    if not exe:
        raise OcrUnavailable(
            "Tesseract OCR is not installed, so the MRZ cannot be read from an image.",
            fix="Install Debian's tesseract-ocr and tesseract-ocr-eng (scripts/install.sh does), or set IDPROOF_TESSERACT.",
        )
    return exe


def _ocr(image: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - encoding a uint8 array cannot fail
        return ""
    cmd = [
        _tesseract(), "stdin", "stdout", "--psm", "6", "-l", "eng",
        "-c", f"tessedit_char_whitelist={_ALPHABET}",
        "-c", "load_system_dawg=0", "-c", "load_freq_dawg=0",
    ]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(cmd, input=png.tobytes(), capture_output=True, timeout=_TESSERACT_TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.decode("ascii", "ignore")


def _variants(crop: np.ndarray, height_px: float) -> list[np.ndarray]:
    """Crops prepared for OCR: upscaled so characters are ~_OCR_CHAR_HEIGHT px, then plain and binarised."""
    lines_guess = 3 if height_px and crop.shape[1] / max(height_px, 1) < 9 else 2
    char_h = height_px / (lines_guess * 1.6) if height_px else 20
    f = float(np.clip(_OCR_CHAR_HEIGHT / max(char_h, 1), 0.5, 6))
    big = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    norm = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX)
    _, otsu = cv2.threshold(cv2.GaussianBlur(norm, (3, 3), 0), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    adaptive = cv2.adaptiveThreshold(norm, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 2 * int(_OCR_CHAR_HEIGHT * 1.5) + 1, 15)
    return [otsu, norm, adaptive]


# --- 3. from OCR text to MRZ lines --------------------------------------------------------------------

_NON_MRZ = re.compile(r"[^A-Z0-9<]")


def _snap(line: str, width: int) -> str:
    line = line.rstrip()
    if len(line) > width:
        # Extra characters are most often filler '<' read twice or noise at the ends.
        stripped = line.rstrip("<")
        line = stripped[:width] if len(stripped) >= width else (stripped + "<" * width)[:width]
    return line.ljust(width, "<")


def _candidate_line_sets(text: str) -> list[list[str]]:
    raw = [_NON_MRZ.sub("", ln.upper().replace(" ", "")) for ln in text.splitlines()]
    raw = [ln for ln in raw if len(ln) >= 20]
    out: list[list[str]] = []
    for n, width in ((2, 44), (2, 36), (3, 30)):
        for i in range(len(raw) - n + 1):
            group = raw[i : i + n]
            if all(abs(len(ln) - width) <= max(4, width // 8) for ln in group):
                out.append([_snap(ln, width) for ln in group])
    return out


def _score(result: MrzResult) -> tuple[int, int]:
    passed = sum(result.checks.values())
    return passed, -len(result.repaired)


# Positions that can only hold letters (or '<'): names, state codes, sex, document code.
_ALPHA_SPANS: dict[int, tuple[tuple[int, int, int], ...]] = {  # line width -> (line, start, end)
    44: ((0, 0, 44), (1, 10, 13), (1, 20, 21)),
    36: ((0, 0, 36), (1, 10, 13), (1, 20, 21)),
    30: ((0, 0, 5), (1, 7, 8), (1, 15, 18), (2, 0, 30)),
}
_DIGIT_TO_LETTER = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B", "4": "A"})
# Where the check-digit-protected fields sit, to write parse_mrz's repairs back into the lines.
_FIELD_SPANS: dict[int, dict[str, tuple[int, int, int]]] = {
    44: {"document_number": (1, 0, 9), "document_number_check_digit": (1, 9, 10), "date_of_birth": (1, 13, 19),
         "date_of_birth_check_digit": (1, 19, 20), "expiry_date": (1, 21, 27), "expiry_date_check_digit": (1, 27, 28),
         "optional_data": (1, 28, 42), "optional_check_digit": (1, 42, 43), "composite_check_digit": (1, 43, 44)},
    36: {"document_number": (1, 0, 9), "document_number_check_digit": (1, 9, 10), "date_of_birth": (1, 13, 19),
         "date_of_birth_check_digit": (1, 19, 20), "expiry_date": (1, 21, 27), "expiry_date_check_digit": (1, 27, 28),
         "composite_check_digit": (1, 35, 36)},
    30: {"document_number": (0, 5, 14), "document_number_check_digit": (0, 14, 15), "date_of_birth": (1, 0, 6),
         "date_of_birth_check_digit": (1, 6, 7), "expiry_date": (1, 8, 14), "expiry_date_check_digit": (1, 14, 15),
         "composite_check_digit": (1, 29, 30)},
}


def _force_letters(lines: list[str]) -> list[str]:
    width = len(lines[0])
    out = [list(line) for line in lines]
    for li, a, b in _ALPHA_SPANS.get(width, ()):
        if li < len(out):
            out[li][a:b] = "".join(out[li][a:b]).translate(_DIGIT_TO_LETTER)
    return ["".join(x) for x in out]


def _write_back(lines: list[str], result: MrzResult, today: date | None) -> list[str]:
    """Apply parse_mrz's check-digit repairs to the lines, keeping them only if the re-parse is clean."""
    if not result.repaired:
        return lines
    spans = _FIELD_SPANS.get(len(lines[0]), {})
    out = [list(line) for line in lines]
    for name in result.repaired:
        if name not in spans:
            return lines
        li, a, b = spans[name]
        old = lines[li][a:b]
        new = "".join(_LETTER_TO_DIGIT.get(c, c) for c in old) if name.endswith("check_digit") else result.raw_fields.get(name, "")
        if name == "optional_data":
            new = _padded_optional(old, result)
        if len(new) > b - a or not new:
            return lines
        out[li][a:b] = new.ljust(b - a, "<")
    fixed = ["".join(x) for x in out]
    try:
        again = parse_mrz(fixed, today=today)
    except MrzError:
        return lines
    return fixed if again.valid and not again.repaired else lines


def _padded_optional(old: str, result: MrzResult) -> str:
    value = result.optional_data.replace(" ", "<")
    return value if len(value) == len(old.rstrip("<")) else ""


def _parse(lines: list[str], today: date | None) -> tuple[list[str], MrzResult] | None:
    lines = _force_letters(lines)
    try:
        result = parse_mrz(lines, today=today)
    except MrzError:
        return None
    return _write_back(lines, result, today), result


_MAX_VARIANTS = 256


def _parse_with_alternatives(lines: list[str], alternatives: list[list[str]], today: date | None) -> tuple[list[str], MrzResult] | None:
    """Parse; if check digits fail, try the reader's runner-up characters inside the failing fields.

    A variant is taken only if it is the one variant that makes every check digit pass: check digits,
    not guesses, decide between O and 0."""
    first = _parse(lines, today)
    if first is None or first[1].valid:
        return first
    spans = _FIELD_SPANS.get(len(lines[0]), {})
    failing = set(first[1].failed_checks)
    if "composite" in failing:
        failing |= {"document_number", "date_of_birth", "expiry_date", "optional"}
    cells = []
    for name in failing:
        for key in (name, "optional_data" if name == "optional" else name):
            if key in spans:
                li, a, b = spans[key]
                cells += [(li, k) for k in range(a, b) if alternatives[li][k]]
                checkspan = spans.get(f"{name}_check_digit")
                if checkspan:
                    cli, ca, _ = checkspan
                    if alternatives[cli][ca]:
                        cells.append((cli, ca))
    cells = sorted(set(cells))
    choices = [lines[li][k] + alternatives[li][k] for li, k in cells]
    if not cells or np.prod([len(c) for c in choices], dtype=float) > _MAX_VARIANTS:
        return first
    valid: dict[tuple[str, ...], tuple[list[str], MrzResult]] = {}
    for combo in itertools.product(*choices):
        variant = [list(line) for line in lines]
        for (li, k), ch in zip(cells, combo):
            variant[li][k] = ch
        found = _parse(["".join(v) for v in variant], today)
        if found and found[1].valid:
            valid[tuple(found[0])] = found
    if len(valid) == 1:
        return next(iter(valid.values()))
    return first


def _best_parse(text: str, today: date | None) -> tuple[list[str], MrzResult] | None:
    best = None
    for lines in _candidate_line_sets(text):
        found = _parse(lines, today)
        if found and (best is None or _score(found[1]) > _score(best[1])):
            best = found
    return best


def _scaled_for_cells(crop: np.ndarray, band: _Band) -> np.ndarray:
    # Band height covers 2-3 lines with gaps; aim for ~40 px per text line.
    lines = 3 if band.size[0] / max(band.size[1], 1) < 9 else 2
    f = float(np.clip(40 / max(band.size[1] / (lines * 1.25), 1), 0.3, 8))
    return cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)


def read_mrz(rgb: np.ndarray, *, today: date | None = None, use_tesseract: bool = True) -> MrzReading:
    """Find and read the MRZ in a document image (RGB or grey uint8).

    Raises ``NoMrzFound`` when no MRZ band can be read. A band that reads as an MRZ with failing check
    digits is returned (``valid`` False) so the caller can name the unreadable field. Tesseract, when
    installed, is the second engine for bands the fixed-pitch reader cannot cut into cells.
    """
    t0 = time.perf_counter()
    gray = _gray(np.asarray(rgb))
    bands = _find_bands(gray)
    timings = {"locate": ms_since(t0)}
    best: tuple[list[str], MrzResult, float] | None = None
    attempts = 0

    def consider(found: tuple[list[str], MrzResult] | None, angle: float) -> bool:
        nonlocal best
        if found is not None and (best is None or _score(found[1]) > _score(best[1])):
            best = (found[0], found[1], angle)
        return best is not None and best[1].valid

    # 1. fixed-pitch OCR-B cells: fast, cannot insert or drop characters;
    # 2. Tesseract on what the cell reader could not read cleanly.
    engines = [("ocr_cells", _cell_readings(gray, bands, today))]
    if use_tesseract and _tesseract_available():
        engines.append(("ocr_tesseract", _tesseract_readings(gray, bands[:2], today)))
    for name, readings in engines:
        t1 = time.perf_counter()
        done = False
        for angle, found in readings:
            attempts += 1
            if consider(found, angle):
                done = True
                break
        timings[name] = ms_since(t1)
        if done:
            break

    if best is None:
        raise NoMrzFound(
            "No machine-readable zone (MRZ) was found on the document.",
            fix="Photograph the page with the MRZ (the 2 or 3 lines of <<< text) fully visible, flat and in focus.",
        )
    lines, result, angle = best
    return MrzReading(tuple(lines), result, angle_deg=round(((angle + 180) % 360) - 180, 1), attempts=attempts, timings_ms=timings)


def _orientations(gray: np.ndarray, bands: list[_Band], pads: tuple[tuple[float, float], ...]):
    """(angle, straight crop) for each band, upright then upside-down, at each margin."""
    for band in bands:
        for flip in (False, True):
            for pad_x, pad_y in pads:
                yield band, band.angle + (180 if flip else 0), _crop_band(gray, band, pad_x=pad_x, pad_y=pad_y, flip=flip)


def _cell_readings(gray: np.ndarray, bands: list[_Band], today: date | None):
    for band, angle, crop in _orientations(gray, bands, ((0.04, 0.3), (0.08, 0.6))):
        read = ocrb.read_band(_scaled_for_cells(crop, band))
        yield angle, (_parse_with_alternatives(*read, today) if read else None)


def _tesseract_readings(gray: np.ndarray, bands: list[_Band], today: date | None):
    for band, angle, crop in _orientations(gray, bands, ((0.04, 0.25),)):
        for img in _variants(crop, band.size[1]):
            yield angle, _best_parse(_ocr(img), today)


def _tesseract_available() -> bool:
    return bool(os.environ.get("IDPROOF_TESSERACT") or shutil.which("tesseract"))
