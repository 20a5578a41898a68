"""A fixed-pitch OCR-B reader for MRZ bands.

Every MRZ is printed in OCR-B at a fixed pitch (ICAO 9303 part 3), so a band can be cut into exact
character cells and each cell classified on its own. General-purpose OCR (Tesseract's English model)
reads filler runs ``<<<<`` as ``K``/``<K<`` and inserts or drops characters; a cell reader cannot
insert or drop, and ``<`` is the easiest glyph of all to tell apart.

The classifier is trained when first used, in memory, from the OCR-B font itself (Debian
``fonts-ocr-b``): lines of random MRZ characters are rendered, blurred, noised and re-sampled, then
cut into cells by the *same* segmentation code that reads real bands, and a k-nearest-neighbour
model is fitted on HOG features. Nothing is downloaded and no weights are shipped.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from idproof.errors import IdproofError

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
WIDTHS = (44, 36, 30)  # characters per line: TD3/MRV-A, TD2/MRV-B, TD1
_CELL = (20, 32)  # (w, h) a cell is resampled to before features
_FONT_PATHS = (
    "/usr/share/fonts/opentype/ocr-b/OCRB.otf",
    "/usr/share/fonts/truetype/ocr-b/OCRB.ttf",
)


class FontMissing(IdproofError):
    code = "ocrb_font_missing"


def font_path() -> Path:
    """The OCR-B font (used to train the reader and to print specimen MRZs)."""
    env = os.environ.get("IDPROOF_OCRB_FONT")
    for p in ([env] if env else []) + list(_FONT_PATHS):
        if p and Path(p).is_file():
            return Path(p)
    raise FontMissing(
        "The OCR-B font is not installed.",
        fix="Install Debian's fonts-ocr-b (scripts/install.sh does), or point IDPROOF_OCRB_FONT at OCRB.otf.",
    )


# --- segmentation --------------------------------------------------------------------------------------


def _ink(gray: np.ndarray) -> np.ndarray:
    """Binary ink mask (text = 1) of a band, robust to uneven light."""
    g = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX)
    _, ink = cv2.threshold(cv2.GaussianBlur(g, (3, 3), 0), 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return ink


def _rows(ink: np.ndarray) -> list[tuple[int, int]]:
    """Text rows as (top, bottom) from the horizontal ink profile."""
    prof = ink.sum(axis=1).astype(float)
    if prof.max() <= 0:
        return []
    prof = np.convolve(prof, np.ones(3) / 3, mode="same")
    on = prof > 0.12 * prof.max()
    rows, start = [], None
    for y, v in enumerate(np.append(on, False)):
        if v and start is None:
            start = y
        elif not v and start is not None:
            rows.append((start, y))
            start = None
    return [(a, b) for a, b in rows if b - a >= 5]


def _components(ink_row: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Character-sized blobs (x, y, w, h) in a row, specks removed."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink_row, connectivity=8)
    h = ink_row.shape[0]
    out = []
    for i in range(1, n):
        x, y, w, hh, area = stats[i]
        if area >= max(4, 0.002 * h * h) and hh >= 0.2 * h:
            out.append((int(x), int(y), int(w), int(hh)))
    return sorted(out)


def _grid(comps: list[tuple[int, int, int, int]], width: int) -> tuple[float, float] | None:
    """First cell centre and pitch for a line of ``width`` characters, or None if it does not fit."""
    if len(comps) < width * 0.5:
        return None
    centres = np.array([x + w / 2 for x, _, w, _ in comps])
    first, last = centres[0], centres[-1]
    pitch = (last - first) / (width - 1)
    if pitch <= 2:
        return None
    pos = (centres - first) / pitch
    err = np.abs(pos - np.round(pos)).mean()
    return (first, pitch) if err < 0.22 else None


def _cell_centres(comps: list[tuple[int, int, int, int]], first: float, pitch: float, width: int) -> np.ndarray:
    """Cell centres, refined with a quadratic fit of blob centres against their cell index: a phone
    photo's perspective makes the pitch change slowly along the line."""
    centres = np.array([x + w / 2 for x, _, w, _ in comps])
    k = np.arange(width)
    grid = first + k * pitch
    for _ in range(2):
        idx = np.clip(np.round((centres - grid[0]) / pitch), 0, width - 1).astype(int)
        near = np.abs(centres - grid[idx]) < 0.35 * pitch
        if near.sum() < max(6, width // 3):
            break
        coef = np.polyfit(idx[near], centres[near], 2)
        grid = np.polyval(coef, k)
    return grid


def segment(gray: np.ndarray) -> tuple[int, list[list[np.ndarray]]] | None:
    """Cut a straight MRZ band into cells: (width, rows of cell images), or None if it is not one."""
    ink = _ink(gray)
    rows = _rows(ink)
    if len(rows) < 2:
        return None
    heights = np.array([b - a for a, b in rows])
    best = None
    for n_lines, widths in ((3, (30,)), (2, (44, 36))):
        for i in range(len(rows) - n_lines + 1):
            group = rows[i : i + n_lines]
            hs = heights[i : i + n_lines]
            if hs.max() > 1.6 * hs.min():
                continue
            for width in widths:
                grids = []
                for top, bottom in group:
                    grid = _grid(_components(ink[top:bottom]), width)
                    if grid is None:
                        break
                    grids.append(grid)
                if len(grids) != n_lines:
                    continue
                pitches = [p for _, p in grids]
                if max(pitches) > 1.08 * min(pitches):
                    continue
                fit = -abs(np.median(pitches) / np.median(hs) - 0.62)  # OCR-B cells are ~0.6 of line height
                if best is None or fit > best[0]:
                    best = (fit, width, group, grids)
    if best is None:
        return None
    _, width, group, grids = best
    out = []
    for (top, bottom), (first, pitch) in zip(group, grids):
        pad = int(0.25 * (bottom - top))
        t, b = max(0, top - pad), min(gray.shape[0], bottom + pad)
        centres = _cell_centres(_components(ink[top:bottom]), first, pitch, width)
        cells = []
        for k in range(width):
            c = centres[k]
            x0, x1 = int(round(c - pitch / 2)), int(round(c + pitch / 2))
            cells.append(_normalise_cell(ink[t:b, max(0, x0) : max(1, x1)], bottom - top))
        out.append(cells)
    return width, out


def _normalise_cell(cell_ink: np.ndarray, line_h: int) -> np.ndarray:
    """Centre the ink of one cell on a canvas one line-height tall, then resample to _CELL."""
    ys, xs = np.nonzero(cell_ink)
    size = max(line_h, 1)
    canvas = np.zeros((int(size * 1.3), int(size * 0.9)), np.float32)
    if len(xs):
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        glyph = cell_ink[y0:y1, x0:x1].astype(np.float32)
        gh, gw = glyph.shape
        if gh > canvas.shape[0] or gw > canvas.shape[1]:
            f = min(canvas.shape[0] / gh, canvas.shape[1] / gw)
            glyph = cv2.resize(glyph, (max(1, int(gw * f)), max(1, int(gh * f))), interpolation=cv2.INTER_AREA)
            gh, gw = glyph.shape
        # keep the vertical position (a '<' sits mid-line), centre horizontally
        cy = int((y0 + y1) / 2 * canvas.shape[0] / max(cell_ink.shape[0], 1))
        top = int(np.clip(cy - gh / 2, 0, canvas.shape[0] - gh))
        left = (canvas.shape[1] - gw) // 2
        canvas[top : top + gh, left : left + gw] = glyph
    return cv2.resize(canvas, _CELL, interpolation=cv2.INTER_AREA)


# --- classification ------------------------------------------------------------------------------------

_HOG = cv2.HOGDescriptor(_CELL, (8, 8), (4, 4), (4, 4), 9)


def _features(cells: list[np.ndarray]) -> np.ndarray:
    feats = []
    for c in cells:
        u8 = np.clip(c * 255, 0, 255).astype(np.uint8)
        h = _HOG.compute(u8).ravel()
        small = cv2.resize(c, (10, 16), interpolation=cv2.INTER_AREA).ravel()
        feats.append(np.concatenate([h, 0.5 * small]))
    return np.asarray(feats, np.float32)


def _render_line(text: str, font, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    bbox = font.getbbox(text)
    w, h = bbox[2] + 20, bbox[3] + 24
    img = Image.new("L", (w, h), 255)
    ImageDraw.Draw(img).text((10, 10), text, font=font, fill=int(rng.integers(0, 70)))
    arr = np.asarray(img, np.float32)
    # print / photo damage: resample, blur, noise, uneven background
    f = rng.uniform(0.35, 1.0)
    arr = cv2.resize(arr, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    arr = cv2.GaussianBlur(arr, (0, 0), rng.uniform(0.3, 1.3))
    arr = arr * rng.uniform(0.6, 1.0) + rng.uniform(0, 60)
    arr += rng.normal(0, rng.uniform(1, 12), arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


@cache
def _model() -> cv2.ml.KNearest:
    from PIL import ImageFont

    rng = np.random.default_rng(9303)
    X, y = [], []
    for i in range(90):
        width = WIDTHS[i % 3]
        n_lines = 3 if width == 30 else 2
        fonts = ImageFont.truetype(str(font_path()), int(rng.integers(28, 56)))
        # filler runs as in real MRZs, plus every glyph often enough
        lines = []
        for _ in range(n_lines):
            chars = rng.choice(list(ALPHABET), size=width)
            run = int(rng.integers(0, width // 2))
            chars[width - run :] = "<"
            lines.append("".join(chars))
        imgs = [_render_line(line, fonts, rng) for line in lines]
        wmax = max(im.shape[1] for im in imgs)
        band = np.vstack([np.pad(im, ((0, 0), (0, wmax - im.shape[1])), constant_values=int(np.median(im))) for im in imgs])
        seg = segment(band)
        if seg is None or seg[0] != width:
            continue
        for line, cells in zip(lines, seg[1]):
            X.extend(cells)
            y.extend(ALPHABET.index(ch) for ch in line)
    knn = cv2.ml.KNearest_create()
    knn.train(_features(X), cv2.ml.ROW_SAMPLE, np.asarray(y, np.float32))
    return knn


# OCR-B's letter O and digit 0 are near-identical at MRZ print sizes: always treat them as ambiguous.
_ALWAYS_AMBIGUOUS = {"O": "0", "0": "O"}


def read_band(gray: np.ndarray) -> tuple[list[str], list[list[str]]] | None:
    """Read a straight, upright MRZ band (grey uint8).

    Returns (lines, alternatives): ``alternatives[line][cell]`` holds the other characters the nearest
    neighbours voted for (empty when the cell is clear), for check-digit-guided repair. None if the
    band cannot be cut into MRZ cells.
    """
    seg = segment(gray)
    if seg is None:
        return None
    _, rows = seg
    knn = _model()
    lines, alternatives = [], []
    for cells in rows:
        _, labels, neighbours, _ = knn.findNearest(_features(cells), k=5)
        best = [ALPHABET[int(v)] for v in labels.ravel()]
        alts = []
        for ch, votes in zip(best, neighbours):
            others = {ALPHABET[int(v)] for v in votes} - {ch}
            others |= set(_ALWAYS_AMBIGUOUS.get(ch, ""))
            alts.append("".join(sorted(others)))
        lines.append("".join(best))
        alternatives.append(alts)
    return lines, alternatives
