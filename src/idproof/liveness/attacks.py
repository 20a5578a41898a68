"""Synthetic presentation attacks made from bona fide face images, deterministic per seed.

Real attack data here is thin (CASIA-FASD crops, two phone replays), so the benchmark and the tests
also re-present live faces through simulated attack instruments. Every image made here is
**synthetic** and the benchmark says so. Kinds:

* ``screen`` -- the photo shown on a display and re-captured by a camera: every camera pixel
  integrates 3 x 3 points of the display, each of which falls on one R | G | B stripe sub-pixel of a
  display pixel or on the black matrix between them (1.25-2.6 display pixels per camera pixel, turned
  1-10 degrees: the camera cannot resolve the grid and aliases it into moiré); display black level,
  gamma and white point, slight optical blur. Half of them (seeded) also get a lamp's specular
  reflection on the glass over the face (``params["glare"]``).
* ``print`` -- the photo printed with rotated CMYK halftone screens (15/75/0/45 degrees, a 2.6-5 pixel
  cell) on paper with imperfect inks (paper white, lifted black, washed-out colour), paper texture
  and uneven light, re-captured (slight defocus, sheen).
* ``warped_photo`` -- a continuous-tone photo print with a white margin, held up in front of a room
  at selfie distance and "turned" about its vertical axis (perspective warp of a flat photo, 15-35
  degrees, plus a little roll and pitch), re-imaged softly, over a sharp procedurally drawn room
  background (no second face).

Every kind ends in the same camera: half the time auto-levels (pulling a lifted black level back
down, as phone cameras do with a flat scene), sensor noise, JPEG. ``MEANT_CUES`` says which forensic
cue each kind is built to exercise (a print's halftone is periodic too: ``screen_moire``); the tests
and the benchmark report those rates.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from idproof.face.types import DetectedFace

ATTACK_KINDS = ("screen", "print", "warped_photo")
MEANT_CUES: dict[str, tuple[str, ...]] = {
    "screen": ("screen_moire",),  # + "glare" where params["glare"]
    "print": ("screen_moire",),  # the halftone screen is a periodic grid as well
    "warped_photo": ("bezel",),  # the print's edges around the face
}
MAX_SIDE = 512  # synthetic frames: webcam-like size


@dataclass(frozen=True)
class SyntheticAttack:
    kind: str
    image: np.ndarray = field(repr=False)  # RGB uint8
    seed: int
    params: dict[str, Any]

    @property
    def meant_cues(self) -> tuple[str, ...]:
        return MEANT_CUES[self.kind] + (("glare",) if self.params.get("glare") else ())


def attack_seed(key: str, kind: str, seed: int = 0) -> int:
    """A stable seed for one (source image, attack kind) pair."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{kind}:{key}".encode()).digest()[:4], "big")


def make_attack(rgb: np.ndarray, kind: str, seed: int, face: DetectedFace | None = None) -> SyntheticAttack:
    """One synthetic attack of ``kind`` presenting the face in ``rgb``; ``face`` (where known) places glare."""
    rng = np.random.default_rng(seed)
    fn = {"screen": screen_recapture, "print": print_recapture, "warped_photo": warped_photo}[kind]
    image, params = fn(rgb, rng, face)
    return SyntheticAttack(kind, image, seed, params)


# --- helpers ----------------------------------------------------------------------------------------


def _to_lin(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), 2.2)


def _to_srgb(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), 1 / 2.2)


def _camera_finish(lin: np.ndarray, rng: np.random.Generator, params: dict, noise=(1.0, 2.5), quality=(80, 94)) -> np.ndarray:
    """Linear light -> sRGB uint8, with (half the time) the camera's auto-levels, sensor noise and JPEG.

    Auto-levels pull the re-captured black level back down (phone cameras stretch a flat, low-contrast
    scene), so that a lifted black level alone does not give every synthetic attack away."""
    if rng.random() < 0.5:
        luma = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        lo, hi = np.percentile(luma, (0.5, 99.5))
        pull = float(rng.uniform(0.6, 1.0))
        hi = min(float(hi), 1.0)  # highlights (a reflection) stay clipped; they do not darken the rest
        lin = (lin - pull * lo) / max(hi - pull * lo, 1e-3)
        params["auto_levels"] = round(pull, 3)
    else:
        params["auto_levels"] = None
    out = _to_srgb(lin) * 255.0
    sigma = float(rng.uniform(*noise))
    out = out + rng.normal(0, sigma, out.shape).astype(np.float32)
    out8 = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    q = int(rng.integers(quality[0], quality[1] + 1))
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(out8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    params |= {"noise_sigma": round(sigma, 2), "jpeg_quality": q}
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _out_size(h: int, w: int, rng: np.random.Generator) -> tuple[int, int, float]:
    s = float(rng.uniform(1.0, 1.5)) if max(h, w) < 400 else float(rng.uniform(0.8, 1.1))
    s = min(s, MAX_SIDE / max(h, w))
    return max(32, round(h * s)), max(32, round(w * s)), s


def _face_box(face: DetectedFace | None, h: int, w: int, s: float) -> tuple[float, float, float, float]:
    """Face centre and size in output pixels (the image centre where no face is given)."""
    if face is None:
        return w * s / 2, h * s * 0.45, w * s * 0.4, h * s * 0.5
    cx, cy = face.centre
    return cx * s, cy * s, face.width * s, face.height * s


# --- screen -----------------------------------------------------------------------------------------


def screen_recapture(rgb: np.ndarray, rng: np.random.Generator, face: DetectedFace | None = None) -> tuple[np.ndarray, dict]:
    h, w = rgb.shape[:2]
    oh, ow, s = _out_size(h, w, rng)
    q = float(rng.uniform(1.25, 2.6))  # display pixels per camera pixel: the camera cannot resolve them
    sh, sw = round(oh * q), round(ow * q)
    disp = _to_lin(cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0)
    angle = float(rng.choice([-1, 1]) * rng.uniform(1.0, 10.0))
    stripe, row = float(rng.uniform(0.6, 0.9)), float(rng.uniform(0.65, 0.9))  # lit share of a sub-pixel / pixel row
    # every camera pixel integrates SS x SS points of the display (its aperture); each point falls on one
    # sub-pixel (R | G | B stripes) of one display pixel, or on the black matrix between them
    ss = 3
    yy, xx = np.mgrid[0 : oh * ss, 0 : ow * ss].astype(np.float32)
    xx, yy = (xx + 0.5) / ss - ow / 2, (yy + 0.5) / ss - oh / 2
    a = math.radians(angle)
    u = (xx * math.cos(a) + yy * math.sin(a)) * q + sw / 2
    v = (-xx * math.sin(a) + yy * math.cos(a)) * q + sh / 2
    px, py = np.clip(np.floor(u), 0, sw - 1).astype(np.int32), np.clip(np.floor(v), 0, sh - 1).astype(np.int32)
    fu, fv = u - np.floor(u), v - np.floor(v)
    sub = np.minimum((fu * 3).astype(np.int32), 2)
    lit = ((fu * 3 - sub) < stripe) & (fv < row)
    val = disp[py, px, sub] * lit
    lin = np.zeros((oh, ow, 3), np.float32)
    for c in range(3):
        lin[..., c] = (val * (sub == c)).reshape(oh, ss, ow, ss).mean(axis=(1, 3))
    lin /= stripe * row / 3.0  # the camera exposes for the screen's mean brightness
    blur = float(rng.uniform(0.0, 0.35))  # optics, in camera pixels
    if blur > 0.05:
        lin = cv2.GaussianBlur(lin, (0, 0), blur)
    # display and camera tone: black level, gamma, white point
    black = float(rng.uniform(0.0, 0.02))  # display black under room light, camera flare
    gamma = float(rng.uniform(0.8, 1.3))
    white = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.03, 3) + np.array([-0.03, 0.0, 0.05])
    lin = (black + (1 - black) * np.power(np.clip(lin, 0, None), gamma)) * white.astype(np.float32)
    params: dict[str, Any] = {
        "display_px_per_camera_px": round(q, 3), "rotation_deg": round(angle, 2), "subpixel_fill": round(stripe, 3),
        "row_fill": round(row, 3), "optical_blur_px": round(blur, 3), "black_level": round(black, 3), "gamma": round(gamma, 3),
        "scale": round(s, 3), "glare": bool(rng.random() < 0.5),
    }  # fmt: skip
    if params["glare"]:
        fcx, fcy, fw, fh = _face_box(face, h, w, s)
        gx = fcx + rng.uniform(-0.25, 0.25) * fw
        gy = fcy + rng.uniform(-0.3, 0.1) * fh
        sx, sy = rng.uniform(0.08, 0.16) * fw, rng.uniform(0.07, 0.14) * fh
        amp = float(rng.uniform(1.5, 3.0))  # a lamp's reflection outshines the screen
        gy_, gx_ = np.mgrid[0:oh, 0:ow].astype(np.float32)
        g = amp * np.exp(-(((gx_ - gx) / sx) ** 2 + ((gy_ - gy) / sy) ** 2) / 2)
        lin = lin + g[..., None]
        params |= {"glare_sigma_px": [round(float(sx), 1), round(float(sy), 1)], "glare_amplitude": round(amp, 2)}
    return _camera_finish(lin, rng, params), params


# --- print ------------------------------------------------------------------------------------------

# reflectance of each ink (R, G, B): cyan absorbs red, magenta green, yellow blue; black all
_INKS = {"c": (0.18, 0.78, 0.93), "m": (0.93, 0.22, 0.75), "y": (0.95, 0.9, 0.12), "k": (0.1, 0.1, 0.11)}
_SCREEN_ANGLES = {"c": 15.0, "m": 75.0, "y": 0.0, "k": 45.0}


def print_recapture(rgb: np.ndarray, rng: np.random.Generator, face: DetectedFace | None = None) -> tuple[np.ndarray, dict]:
    h, w = rgb.shape[:2]
    oh, ow, s = _out_size(h, w, rng)
    ss = 2  # supersampling of the halftone rendering (the dot edges are anti-aliased analytically)
    period = float(rng.uniform(2.6, 5.0))  # halftone cell, in camera pixels
    src = cv2.resize(rgb, (ow * ss, oh * ss), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    src = np.power(src, np.float32(2.2 / 1.8))  # the printer's tone curve: ink coverage follows lightness, not linear light
    cmy = 1.0 - src
    k = cmy.min(axis=2) * float(rng.uniform(0.5, 0.9))  # under-colour removal
    cmy = (cmy - k[..., None]) / np.maximum(1 - k[..., None], 1e-3)
    coverage = {"c": cmy[..., 0], "m": cmy[..., 1], "y": cmy[..., 2], "k": k}
    yy, xx = np.mgrid[0 : oh * ss, 0 : ow * ss].astype(np.float32)
    cell = period * ss
    turn = float(rng.uniform(-4, 4))  # the print is not square to the camera
    paper = np.array([0.93, 0.92, 0.88], np.float32) * float(rng.uniform(0.95, 1.02))
    refl = np.ones((oh * ss, ow * ss, 3), np.float32) * paper
    for ink, cov in coverage.items():
        a = math.radians(_SCREEN_ANGLES[ink] + turn)
        u = (xx * np.float32(math.cos(a) / cell) + yy * np.float32(math.sin(a) / cell))
        v = (xx * np.float32(-math.sin(a) / cell) + yy * np.float32(math.cos(a) / cell))
        u -= np.round(u)
        v -= np.round(v)
        d = np.sqrt(u * u + v * v)  # distance to the cell centre, in cells
        r = np.sqrt(np.clip(cov, 0, 1) * np.float32(1 / math.pi))
        dot = np.clip((r - d) * np.float32(cell) + np.float32(0.5), 0, 1)  # anti-aliased dot edge
        refl *= 1.0 - dot[..., None] * (1.0 - np.array(_INKS[ink], np.float32))
    lin = cv2.resize(refl, (ow, oh), interpolation=cv2.INTER_AREA)
    blur = float(rng.uniform(0.3, 0.8))
    lin = cv2.GaussianBlur(lin, (0, 0), blur)
    # paper texture and uneven light
    tex = cv2.GaussianBlur(rng.normal(0, 1, (oh, ow)).astype(np.float32), (0, 0), 6) * 6 * float(rng.uniform(0.02, 0.04))
    grain = rng.normal(0, float(rng.uniform(0.01, 0.025)), (oh, ow)).astype(np.float32)
    gx, gy = rng.normal(0, 0.12, 2)
    light = 1 + gx * (np.linspace(-0.5, 0.5, ow)[None, :]) + gy * (np.linspace(-0.5, 0.5, oh)[:, None])
    sheen = float(rng.uniform(0.0, 0.03))  # room light reflected off the paper surface lifts the blacks
    gain = float(rng.uniform(0.85, 1.05))
    lin = (lin * ((1 + tex + grain) * light)[..., None] + sheen) * gain
    params = {"halftone_period_px": round(period, 3), "screen_turn_deg": round(turn, 2), "optical_blur_px": round(blur, 3),
              "sheen": round(sheen, 3), "exposure_gain": round(gain, 3), "scale": round(s, 3)}  # fmt: skip
    return _camera_finish(lin.astype(np.float32), rng, params), params


# --- warped photo -----------------------------------------------------------------------------------


def _room(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A sharp, face-free indoor-ish background in linear light: wall, furniture edges, textures."""
    base = rng.uniform(0.15, 0.7, 3).astype(np.float32)
    grad = np.linspace(1.1, 0.8, h, dtype=np.float32)[:, None, None]
    img = np.ones((h, w, 3), np.float32) * base * grad
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(w // 8, w // 2)), y0 + int(rng.integers(h // 8, h // 2))
        col = rng.uniform(0.03, 0.9, 3)
        cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(c) for c in col), -1, lineType=cv2.LINE_AA)
    # textures: fine and medium detail, everywhere (the room is in focus)
    fine = rng.normal(0, 0.05, (h, w)).astype(np.float32)
    medium = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.5) * 0.25
    img *= (1 + fine + medium)[..., None]
    return _to_lin(np.clip(img, 0, 1))


def warped_photo(rgb: np.ndarray, rng: np.random.Generator, face: DetectedFace | None = None) -> tuple[np.ndarray, dict]:
    H, W = (640, 480) if rng.random() < 0.5 else (480, 640)
    h, w = rgb.shape[:2]
    # the photo print: continuous tone, slightly lifted black and washed-out colour, white margin
    photo = _to_lin(rgb.astype(np.float32) / 255.0)
    black, white = float(rng.uniform(0.0, 0.02)), float(rng.uniform(0.8, 0.95))
    photo = black + (white - black) * photo
    margin = float(rng.uniform(0.03, 0.08))
    mp = round(margin * max(h, w))
    card = np.full((h + 2 * mp, w + 2 * mp, 3), white * 0.97, np.float32)
    card[mp : mp + h, mp : mp + w] = photo
    ch, cw = card.shape[:2]
    # turn the card about its vertical axis (plus a little roll and pitch) and project it
    yaw = float(rng.choice([-1, 1]) * rng.uniform(15, 35))
    roll, pitch = float(rng.uniform(-5, 5)), float(rng.uniform(-6, 6))
    # held at selfie distance: the face on the print is 22-36 % of the frame height (the print is cut by
    # the frame edge where it is larger than that allows)
    face_h = face.height if face is not None else 0.5 * h
    height = float(np.clip(rng.uniform(0.22, 0.36) * H * ch / face_h, 0.3 * H, 0.95 * H))
    k = height / ch
    corners = np.array([[-cw / 2, -ch / 2, 0], [cw / 2, -ch / 2, 0], [cw / 2, ch / 2, 0], [-cw / 2, ch / 2, 0]]) * k
    cy_, sy_ = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    rot = (np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
           @ np.array([[cy_, 0, sy_], [0, 1, 0], [-sy_, 0, cy_]]))  # fmt: skip
    p3 = corners @ rot.T
    f = 1.1 * max(H, W)
    cx = W / 2 + float(rng.uniform(-0.08, 0.08)) * W
    cyy = H / 2 + float(rng.uniform(-0.06, 0.06)) * H
    dst = np.stack([cx + f * p3[:, 0] / (f + p3[:, 2]), cyy + f * p3[:, 1] / (f + p3[:, 2])], axis=1).astype(np.float32)
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
    hm = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(card, hm, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((ch, cw), np.float32), hm, (W, H), flags=cv2.INTER_LINEAR)
    blur = float(rng.uniform(0.7, 1.5))  # the print is re-imaged: softer than the room
    warped = cv2.GaussianBlur(warped, (0, 0), blur)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.6)[..., None]
    light = float(rng.uniform(0.85, 1.15))
    lin = _room(H, W, rng) * (1 - mask) + warped * light * mask
    params = {"yaw_deg": round(yaw, 2), "roll_deg": round(roll, 2), "pitch_deg": round(pitch, 2), "margin": round(margin, 3),
              "card_height_share": round(height / H, 3), "print_blur_px": round(blur, 3), "frame": [W, H]}  # fmt: skip
    return _camera_finish(lin.astype(np.float32), rng, params), params
