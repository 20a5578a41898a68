"""Face quality gate, ISO/IEC 29794-5 in spirit: is this face image fit for 1:1 comparison?

Every measure is taken on the face *aligned* onto the 112x112 ArcFace crop (5-point similarity,
see ``idproof.face.align``) -- the scale the embedders see -- so the numbers do not depend on the
resolution of the photo. Large photos are area-downscaled first so the warp does not alias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np

from idproof.face.align import ARCFACE_112, similarity_transform
from idproof.face.types import DetectedFace, FaceMesh
from idproof.reasons import Reason

Role = Literal["selfie", "portrait"]

ALIGN = 112  # measures are taken on the 112x112 ArcFace crop


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds of the gate. Defaults: see the calibration notes on each field."""

    min_inter_eye_px: float = 30.0
    portrait_min_inter_eye_px: float = 20.0
    min_sharpness: float = 0.0
    min_brightness: float = 0.0
    max_dark_fraction: float = 1.0
    max_brightness: float = 255.0
    max_bright_fraction: float = 1.0
    max_yaw_deg: float = 90.0
    max_pitch_deg: float = 90.0
    max_eye_closed: float = 1.0
    max_occlusion: float = 1.0
    multiple_face_area_ratio: float = 0.35
    max_outside_fraction: float = 0.1


@dataclass(frozen=True)
class QualityReport:
    passed: bool
    reasons: tuple[Reason, ...]  # empty when passed
    measures: dict[str, float]


# --- regions of the aligned 112x112 crop ------------------------------------------------------


def _ellipse_mask(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    yy, xx = np.mgrid[0:ALIGN, 0:ALIGN].astype(np.float32)
    return ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0


def _rect_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((ALIGN, ALIGN), bool)
    m[y0:y1, x0:x1] = True
    return m


# inner face (forehead to chin, cheek to cheek), eyes at y~52, nose tip y~72, mouth y~92, chin y~106
FACE_REGION = _ellipse_mask(56, 64, 28, 40)
# skin reference: both cheeks beside the nose, below the eyes
CHEEK_REGION = _rect_mask(26, 60, 42, 76) | _rect_mask(70, 60, 86, 76)
# what a mask, a scarf or a hand covers first: mouth and chin
LOWER_REGION = _rect_mask(36, 80, 76, 106)


def aligned_face(rgb: np.ndarray, face: DetectedFace, size: int = ALIGN) -> tuple[np.ndarray, np.ndarray]:
    """(crop, valid): the face warped onto the ArcFace template, and where the crop lies inside the image."""
    pts = face.landmarks.astype(np.float64)
    dst = ARCFACE_112 * (size / 112)
    scale = float(np.linalg.norm(dst[1] - dst[0])) / max(face.inter_eye_px, 1e-3)
    img = rgb
    if scale < 0.6:  # area-downscale the region around the face first: a linear warp would alias
        h, w = rgb.shape[:2]
        cx, cy = face.centre
        half = 1.5 * max(face.width, face.height)
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(cx + half) + 1, w), min(int(cy + half) + 1, h)
        if x1 > x0 and y1 > y0:
            f = scale * 1.25
            region = rgb[y0:y1, x0:x1]
            img = cv2.resize(region, (max(1, round(region.shape[1] * f)), max(1, round(region.shape[0] * f))),
                             interpolation=cv2.INTER_AREA)
            pts = (pts - [x0, y0]) * [img.shape[1] / region.shape[1], img.shape[0] / region.shape[0]]
    m = similarity_transform(pts, dst)
    crop = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ones = np.full(img.shape[:2], 255, np.uint8)
    valid = cv2.warpAffine(ones, m, (size, size), flags=cv2.INTER_NEAREST, borderValue=0) > 0
    return crop, valid


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def sharpness(gray: np.ndarray, mask: np.ndarray) -> float:
    """Contrast-normalised focus measure: std of the Laplacian over std of the luminance in ``mask``."""
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return float(lap[inner].std() / (gray[mask].std() + 2.0))


def occlusion(rgb: np.ndarray, valid: np.ndarray) -> float:
    """Fraction of the mouth/chin region whose colour is unlike this person's own cheek skin."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    ref_mask = CHEEK_REGION & valid
    low_mask = LOWER_REGION & valid
    if ref_mask.sum() < 20 or low_mask.sum() < 20:
        return 0.0
    ref = np.median(ycc[ref_mask], axis=0)
    low = ycc[low_mask]
    chroma = np.linalg.norm(low[:, 1:] - ref[1:], axis=1)
    ratio = np.log((low[:, 0] + 8) / (ref[0] + 8))
    unlike = (chroma > 14) | (np.abs(ratio) > math.log(2.2))
    return float(unlike.mean())


def pose_from_landmarks(face: DetectedFace) -> tuple[float, float]:
    """(yaw, roll) in degrees from the 5 landmarks, for when no mesh is available.

    yaw: horizontal offset of the nose tip from the eye midpoint, in the eye-line frame, over the
    inter-eye distance, mapped to degrees by atan(offset / 0.55) (fitted to the mesh yaw on LFW).
    Sign as FaceMesh.yaw_deg (+ = turned to the image right).
    """
    le, re, nose = face.landmarks[0], face.landmarks[1], face.landmarks[2]
    axis = re - le
    d = float(np.linalg.norm(axis)) or 1.0
    u = axis / d
    off = float(np.dot(nose - (le + re) / 2, u)) / d
    yaw = math.degrees(math.atan(off / 0.55))
    roll = math.degrees(math.atan2(float(axis[1]), float(axis[0])))
    return yaw, roll


def measure(rgb: np.ndarray, face: DetectedFace, mesh: FaceMesh | None) -> dict[str, float]:
    """All raw measures (numbers only) of one face."""
    h, w = rgb.shape[:2]
    crop, valid = aligned_face(rgb, face)
    gray = _luma(crop)
    face_px = FACE_REGION & valid
    if face_px.sum() < 50:
        face_px = FACE_REGION
    vals = gray[face_px]
    out_l = max(0.0, -face.x)
    out_t = max(0.0, -face.y)
    out_r = max(0.0, face.x + face.width - w)
    out_b = max(0.0, face.y + face.height - h)
    m: dict[str, float] = {
        "inter_eye_px": face.inter_eye_px,
        "face_width_px": face.width,
        "detector_score": face.score,
        "sharpness": sharpness(gray, face_px),
        "brightness": float(vals.mean()),
        "dark_fraction": float((vals <= 20).mean()),
        "bright_fraction": float((vals >= 245).mean()),
        "occlusion": occlusion(crop, valid),
        "outside_fraction": max(out_l / face.width, out_r / face.width, out_t / face.height, out_b / face.height),
    }
    if mesh is not None:
        pts = mesh.points
        m["mesh_outside_fraction"] = float(
            ((pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)).mean()
        )
        m["yaw"] = mesh.yaw_deg
        m["pitch"] = mesh.pitch_deg
        m["roll"] = mesh.roll_deg
        m["eye_blink_left"] = mesh.eye_blink_left
        m["eye_blink_right"] = mesh.eye_blink_right
        m["eye_closed"] = min(mesh.eye_blink_left, mesh.eye_blink_right)
    else:
        m["yaw"], m["roll"] = pose_from_landmarks(face)
    return m
