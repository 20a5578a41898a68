"""Training-free image-forensic cues of a presentation attack, each one explainable on its own.

Every function takes the RGB uint8 frame and the face found in it and returns one number, oriented so
that **higher means more attack-like**, or ``None`` where the cue cannot be judged on this frame (face
window too small, no background around a tightly cropped face...). A ``None`` cue never fires. The
thresholds are not here: they are fitted on data (``idproof.bench.liveness.fit_calibration``) and
shipped in ``idproof/data/pad-calibration.json``.

* ``screen_moire`` -- a screen re-captured by a camera carries the display's pixel / sub-pixel grid,
  which the camera aliases into moiré; a print carries its halftone screen. Both are *periodic*, so they
  show as isolated peaks in the 2-D spectrum of the inner face (native resolution, never resampled),
  in mid / high frequencies (>= 0.08 cycle per pixel), off the two axes and off the lines at
  multiples of 1/8 cycle per pixel (JPEG blocks). Score: the highest such peak above its local
  spectral background (the largest of a square, a row and a column median, so straight ridges from
  edges are background), in natural-log units.
* ``glare`` -- a glossy print or a screen reflects a light source as a large, smooth, saturated,
  colourless, *compact* blob; skin highlights are small, and clipped over-exposed skin is ragged (eyes,
  brows and mouth cut holes in it). Score: over the near-white (V >= 245, S <= 0.2) connected blobs
  inside the face ellipse, the largest area share of the face box x solidity^3.
* ``bezel`` -- a phone, tablet or paper photo held up to the camera puts straight edges around the
  face (screen bezel, paper border). Score: 0-4, how well long straight segments (probabilistic
  Hough on Canny edges) enclose the face on its left, right, top and bottom.
* ``colour_gamut`` -- paper and screens re-captured by a camera cannot reach the depth of a real
  scene: ink and a lit display are never black, so the re-captured black level rises towards the
  white level (the gamut narrows in lightness). A live face keeps near-black pupils, nostrils and
  shadows beside its highlights at any exposure. Score: black over white level, (L p0.5 + 1) /
  (L p99.5 + 1), of CIELAB lightness in an ellipse of 1.6 x the face box.
* ``sharpness_mismatch`` -- a photo or screen held in front of a real scene is re-imaged (softer)
  while the scene around it is sharp; a live face is at least as sharp as its surroundings (portrait
  focus). Score: log of background sharpness over face sharpness (contrast-normalised Laplacian,
  compared at a 160 px face; background = a ring 2-3.5 face boxes out).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from idproof.face.types import DetectedFace

FORENSIC_CUES = ("screen_moire", "glare", "bezel", "colour_gamut", "sharpness_mismatch")

# screen_moire
MOIRE_MIN_SIDE = 48  # face windows smaller than this carry too few periods to judge
MOIRE_MAX_SIDE = 256  # larger windows are centre-cropped (never resampled: resampling moves the peaks)
MOIRE_MIN_FREQ = 0.08  # cycles / pixel; below: face shape and shading
MOIRE_AXIS_BINS = 1  # bins either side of each axis left out
MOIRE_JPEG_BINS = 1  # bins either side of the k/8 cycle-per-pixel lines left out

# glare
GLARE_MIN_V = 245
GLARE_MAX_S = 0.2
GLARE_MAX_CLIPPED = 0.5  # more of the face ellipse clipped than this: over-exposed, not judged

# bezel
BEZEL_MIN_LEN = 0.45  # segment length as a share of the face height
BEZEL_MAX_GAP = 1.6  # the segment lies within this many face widths / heights of the face box
BEZEL_INSIDE = 0.1  # ... and at most this far (face widths / heights) inside the box's side
BEZEL_IMAGE_BORDER = 0.02  # edges this close to the image border (share of its size) are ignored

# colour_gamut
GAMUT_REGION = 1.6  # ellipse of the face box scaled by this: face, hair and a little surrounding
GAMUT_PERCENTILE = 0.5  # black / white level percentiles

# sharpness_mismatch
SHARP_RING = (2.0, 3.5)  # background ring: between the face box scaled by these two factors
SHARP_MIN_BG_SHARE = 0.15  # of the ring that must lie inside the image


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _box(face: DetectedFace, scale: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Face box scaled about its centre, clipped to the image: x0, y0, x1, y1."""
    cx, cy = face.centre
    hw, hh = face.width * scale / 2, face.height * scale / 2
    h, w = shape[:2]
    return max(0, round(cx - hw)), max(0, round(cy - hh)), min(w, round(cx + hw)), min(h, round(cy + hh))


# --- screen_moire -----------------------------------------------------------------------------------


def _moire_mask(n: int) -> np.ndarray:
    """Spectrum bins (fftshifted n x n) that may hold a screen / halftone peak."""
    f = np.fft.fftshift(np.fft.fftfreq(n))
    fx, fy = np.meshgrid(f, f)
    radius = np.hypot(fx, fy)
    ok = (radius >= MOIRE_MIN_FREQ) & (np.abs(fx) <= 0.5) & (np.abs(fy) <= 0.5)
    ok &= (np.abs(fx) > MOIRE_AXIS_BINS / n) & (np.abs(fy) > MOIRE_AXIS_BINS / n)
    for k in (1, 2, 3, 4):  # k/8 cycles per pixel: JPEG 8x8 block boundaries
        ok &= np.abs(np.abs(fx) - k / 8) > (MOIRE_JPEG_BINS + 0.5) / n
        ok &= np.abs(np.abs(fy) - k / 8) > (MOIRE_JPEG_BINS + 0.5) / n
    return ok


_MASKS: dict[int, np.ndarray] = {}


def _median_1d(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    pad = [(0, 0), (0, 0)]
    pad[axis] = (k // 2, k // 2)
    view = np.lib.stride_tricks.sliding_window_view(np.pad(a, pad, mode="reflect"), k, axis=axis)
    return np.median(view, axis=-1)


def moire_spectrum(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak prominence map (log periodogram over its local background) and the usable-bin mask.

    The background of a bin is the largest of three medians around it: over a square, along its row and
    along its column, so that straight ridges of energy (strong horizontal / vertical edges in the face,
    JPEG block lines) are background, and only isolated peaks -- periodic structure -- stand out."""
    n = min(gray.shape)
    g = gray[:n, :n].astype(np.float32)
    g = g - cv2.GaussianBlur(g, (0, 0), 2.0)  # keep the fine structure only
    g /= g.std() + 1e-3
    win = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(g * win))) ** 2
    logp = np.log(cv2.blur(spec, (3, 3)) + 1e-6).astype(np.float32)  # a windowed peak spreads over ~2 bins
    k = 11 if n < 200 else 15
    # OpenCV's large-kernel median wants 8 bits: quantise (~0.1 log units)
    lo, hi = float(logp.min()), float(logp.max())
    step = max(hi - lo, 1e-6) / 255.0
    q = np.round((logp - lo) / step).astype(np.uint8)
    square = cv2.medianBlur(q, k).astype(np.float32) * step + lo
    background = np.maximum(square, np.maximum(_median_1d(logp, k, 0), _median_1d(logp, k, 1)))
    if n not in _MASKS:
        _MASKS[n] = _moire_mask(n)
    return logp - background, _MASKS[n]


def screen_moire(rgb: np.ndarray, face: DetectedFace) -> float | None:
    x0, y0, x1, y1 = _box(face, 0.8, rgb.shape)  # inner face: no hair / background edges
    side = min(x1 - x0, y1 - y0)
    if side < MOIRE_MIN_SIDE:
        return None
    side = min(side, MOIRE_MAX_SIDE)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    win = _gray(rgb)[cy - side // 2 : cy - side // 2 + side, cx - side // 2 : cx - side // 2 + side]
    prominence, mask = moire_spectrum(win)
    return float(prominence[mask].max())


# --- glare ------------------------------------------------------------------------------------------


def glare(rgb: np.ndarray, face: DetectedFace) -> float | None:
    x0, y0, x1, y1 = _box(face, 1.0, rgb.shape)
    roi = rgb[y0:y1, x0:x1]
    if roi.shape[0] < 8 or roi.shape[1] < 8:
        return None
    mx = roi.max(axis=2).astype(np.float32)
    mn = roi.min(axis=2).astype(np.float32)
    sat = (mx - mn) / np.maximum(mx, 1)
    # only the face itself: an ellipse inside the box (not the wall or the shirt in the box's corners)
    cx, cy = face.centre[0] - x0, face.centre[1] - y0
    yy, xx = np.ogrid[0 : roi.shape[0], 0 : roi.shape[1]]
    inside = ((xx - cx) / (0.45 * face.width)) ** 2 + ((yy - cy) / (0.5 * face.height)) ** 2 <= 1
    blob = ((mx >= GLARE_MIN_V) & (sat <= GLARE_MAX_S) & inside).astype(np.uint8)
    if blob.sum() > GLARE_MAX_CLIPPED * inside.sum():
        return None  # an over-exposed face, not a reflection: the quality gate's business
    if not blob.any():
        return 0.0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(blob, connectivity=8)
    best = 0.0
    for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:5] + 1:  # the largest few blobs
        area = float(stats[i, cv2.CC_STAT_AREA])
        if area < 10:
            break
        contours, _ = cv2.findContours((labels == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        solidity = area / max(cv2.contourArea(cv2.convexHull(np.vstack(contours))), 1.0)
        # a reflection is one compact blob; clipped, over-exposed skin is ragged, with holes for eyes and mouth
        best = max(best, area / (face.width * face.height) * solidity**3)
    return best


# --- bezel ------------------------------------------------------------------------------------------


def bezel(rgb: np.ndarray, face: DetectedFace) -> float | None:
    """0-4: for each side of the face, the best straight segment that runs along it outside the face."""
    h, w = rgb.shape[:2]
    fx0, fy0, fw, fh = face.x, face.y, face.width, face.height
    fx1, fy1 = fx0 + fw, fy0 + fh
    # context: the face box grown by BEZEL_MAX_GAP on every side; analysed at ~3 face heights tall
    cx0, cy0 = max(0, int(fx0 - BEZEL_MAX_GAP * fw)), max(0, int(fy0 - BEZEL_MAX_GAP * fh))
    cx1, cy1 = min(w, int(fx1 + BEZEL_MAX_GAP * fw)), min(h, int(fy1 + BEZEL_MAX_GAP * fh))
    if cx1 - cx0 < fw * 1.2 and cy1 - cy0 < fh * 1.2:
        return None  # a tight face crop: no context to look at
    scale = min(1.0, 360.0 / max(cy1 - cy0, cx1 - cx0))
    gray = _gray(rgb[cy0:cy1, cx0:cx1])
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.GaussianBlur(gray, (0, 0), 1.0)
    edges = cv2.Canny(gray, 30, 90)
    # the image's own border (and black padding bars along it) is no evidence of an instrument
    strip = max(2, int(BEZEL_IMAGE_BORDER * max(h, w) * scale))
    if cx0 == 0:
        edges[:, :strip] = 0
    if cy0 == 0:
        edges[:strip, :] = 0
    if cx1 == w:
        edges[:, -strip:] = 0
    if cy1 == h:
        edges[-strip:, :] = 0
    fh_s, fw_s = fh * scale, fw * scale
    min_len = BEZEL_MIN_LEN * fh_s
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=max(15, int(min_len * 0.5)),
                            minLineLength=max(10, int(min_len)), maxLineGap=max(3, int(0.04 * fh_s)))  # fmt: skip
    if lines is None:
        return 0.0
    # face box in the analysed patch
    bx0, by0 = (fx0 - cx0) * scale, (fy0 - cy0) * scale
    bx1, by1 = bx0 + fw_s, by0 + fh_s
    best = {"left": 0.0, "right": 0.0, "top": 0.0, "bottom": 0.0}
    for x_a, y_a, x_b, y_b in lines[:, 0, :].astype(np.float64):
        dx, dy = x_b - x_a, y_b - y_a
        length = math.hypot(dx, dy)
        angle = abs(math.degrees(math.atan2(dy, dx))) % 180  # 0 = horizontal, 90 = vertical
        if abs(angle - 90) <= 20:  # vertical-ish: a left or right edge
            ylo, yhi = min(y_a, y_b), max(y_a, y_b)
            overlap = max(0.0, min(yhi, by1) - max(ylo, by0)) / fh_s  # runs beside the face
            strength = min(1.0, length / fh_s) * min(1.0, overlap / 0.5)
            if max(x_a, x_b) < bx0 + BEZEL_INSIDE * fw_s:
                best["left"] = max(best["left"], strength)
            elif min(x_a, x_b) > bx1 - BEZEL_INSIDE * fw_s:
                best["right"] = max(best["right"], strength)
        elif angle <= 35 or angle >= 145:  # horizontal-ish (perspective tilts top and bottom edges)
            xlo, xhi = min(x_a, x_b), max(x_a, x_b)
            overlap = max(0.0, min(xhi, bx1) - max(xlo, bx0)) / fw_s
            strength = min(1.0, length / fw_s) * min(1.0, overlap / 0.5)
            if max(y_a, y_b) < by0 + BEZEL_INSIDE * fh_s:
                best["top"] = max(best["top"], strength)
            elif min(y_a, y_b) > by1 - BEZEL_INSIDE * fh_s:
                best["bottom"] = max(best["bottom"], strength)
    return float(sum(best.values()))


# --- colour_gamut -----------------------------------------------------------------------------------


def colour_gamut(rgb: np.ndarray, face: DetectedFace) -> float | None:
    x0, y0, x1, y1 = _box(face, GAMUT_REGION, rgb.shape)
    roi = rgb[y0:y1, x0:x1]
    if roi.shape[0] < 16 or roi.shape[1] < 16:
        return None
    step = max(1, int(max(roi.shape[:2]) // 200))  # percentiles need no more than ~200 x 200 pixels
    roi = np.ascontiguousarray(roi[::step, ::step])
    lightness = cv2.cvtColor(roi, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    cx, cy = (face.centre[0] - x0) / step, (face.centre[1] - y0) / step
    yy, xx = np.ogrid[0 : roi.shape[0], 0 : roi.shape[1]]
    rx, ry = 0.45 * GAMUT_REGION * face.width / step, 0.5 * GAMUT_REGION * face.height / step
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    lo, hi = np.percentile(lightness[inside], (GAMUT_PERCENTILE, 100 - GAMUT_PERCENTILE))
    # black level over white level: independent of exposure; a live scene keeps near-black pupils,
    # nostrils and shadows beside its highlights, a re-captured print or screen cannot
    return float((lo + 1.0) / (hi + 1.0))


# --- sharpness_mismatch -----------------------------------------------------------------------------


def _sharpness(gray: np.ndarray, mask: np.ndarray) -> float:
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    return float(lap[mask].std() / (gray[mask].std() + 4.0))


def sharpness_mismatch(rgb: np.ndarray, face: DetectedFace) -> float | None:
    # only the neighbourhood that holds the ring matters; compare at a fixed face scale (160 px)
    x0, y0, x1, y1 = _box(face, SHARP_RING[1] + 0.1, rgb.shape)
    scale = min(1.0, 160.0 / max(face.width, face.height))
    gray = _gray(rgb[y0:y1, x0:x1]).astype(np.float32)
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    hs, ws = gray.shape
    yy, xx = np.ogrid[0:hs, 0:ws]
    cx, cy = (face.centre[0] - x0) * scale, (face.centre[1] - y0) * scale
    fw, fh = face.width * scale, face.height * scale
    nx, ny = np.abs(xx - cx) / (fw / 2), np.abs(yy - cy) / (fh / 2)
    inner = (nx <= 0.8) & (ny <= 0.8)
    dist = np.maximum(nx, ny)
    ring = (dist >= SHARP_RING[0]) & (dist <= SHARP_RING[1])
    full_ring = (SHARP_RING[1] ** 2 - SHARP_RING[0] ** 2) * fw * fh
    if inner.sum() < 100 or ring.sum() < SHARP_MIN_BG_SHARE * full_ring:
        return None
    face_s = _sharpness(gray, inner)
    bg_s = _sharpness(gray, ring)
    return float(math.log((bg_s + 0.02) / (face_s + 0.02)))


CUE_FUNCTIONS = {
    "screen_moire": screen_moire,
    "glare": glare,
    "bezel": bezel,
    "colour_gamut": colour_gamut,
    "sharpness_mismatch": sharpness_mismatch,
}


def measure(rgb: np.ndarray, face: DetectedFace, cues: tuple[str, ...] = FORENSIC_CUES) -> dict[str, float | None]:
    """Raw score of each named forensic cue on this frame (higher = more attack-like; None = not judged)."""
    return {name: CUE_FUNCTIONS[name](rgb, face) for name in cues}
