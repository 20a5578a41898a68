"""Face quality gate, ISO/IEC 29794-5 in spirit: is this face image fit for a 1:1 comparison?

Every image measure is taken on the face *aligned* onto the 112x112 ArcFace crop (5-point
similarity, ``idproof.face.align``) -- the scale and framing the embedders see -- so the numbers do
not depend on the resolution of the photo (large photos are area-downscaled first so the warp does
not alias). Pose and eye closure come from the MediaPipe mesh (``idproof.face.mesh``) when there is
one; without it yaw and roll are estimated from the 5 detector landmarks and eye closure is not
judged.

Defaults were calibrated on the real photos in shared/data/faces (all 1583 LFW images + 52
deepface / face_recognition / faceapi_bbt images, 2-core CPU) and on transformed copies of ~250 of
them (blur, darkening, washing out, masks); the percentiles quoted below are from that run.
Only ``eyeBlinkLeft``/``eyeBlinkRight`` are read from the mesh's blendshapes: no emotion, age,
gender or any other demographic attribute is inferred here.
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

Role = Literal["selfie", "portrait", "centred"]

ALIGN = 112  # measures are taken on the 112x112 ArcFace crop (inter-eye distance there: 35 px)


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds of the gate (calibration data and percentiles: see the module docstring)."""

    # Face size: inter-eye distance of the detector's eye centres, in image pixels. Untouched LFW
    # (250x250 news crops): p0.25 21, p0.5 27.5, p1 29.9, median 42 -- 5 of 1583 below 25, all turned
    # heads. The embedders' crop has 35 px, so 25 px means upsampling at most 1.4x. ID-card portraits
    # photographed by a phone are smaller: 20 px (1.75x) is still usable.
    min_inter_eye_px: float = 25.0
    portrait_min_inter_eye_px: float = 20.0
    # Blur: std(Laplacian)/(std(luma)+2) on the aligned face (contrast-normalised, so darkening does
    # not read as blur). Untouched LFW: min 0.130, p0.5 0.162, p1 0.178, median 0.38 (5 of 1583 below
    # 0.15, visibly soft); other sets >= 0.375. Gaussian blur sigma = inter-eye/8: max 0.143;
    # sigma = inter-eye/16: max 0.148 (250 images each, all fail).
    min_sharpness: float = 0.15
    # Exposure is judged on the luma of the inner face ellipse by its *range*, not its mean, so that
    # dark and pale skin are treated alike: an under-exposed face has no highlights, an over-exposed
    # (washed-out) face has no shadows (eyes, brows, nostrils stay dark in any good photo).
    # Percentiles are taken after a sigma=2 px smoothing of the 112 px crop, so that blur does not
    # move them (a blurred dark-skinned face would otherwise lose its highlights).
    # Under: 95th percentile < 70. Untouched LFW min 88.5 (p0.5 106; its *mean* luma goes down to 57
    # for dark skin in dim light and that passes), other sets min 124; x0.15 -> max 37, x0.30 -> p99 70.
    # dark_fraction (share <= 20): LFW max 0.24; a black mask over mouth and chin gives up to 0.69.
    min_highlight_luma: float = 70.0
    max_dark_fraction: float = 0.8
    # Over: 5th percentile > 185. Untouched LFW max 170 (p99.5 150), other sets max 144; LFW blurred
    # (sigma = inter-eye/8) max 179; washed out 255-(255-x)/4 -> min 194. bright_fraction (share >= 245): LFW max 0.15 (p99.5 0.05); x2.5 with
    # clipping -> p1 0.18.
    max_shadow_luma: float = 185.0
    max_bright_fraction: float = 0.2
    # Head pose from the mesh, degrees. Untouched LFW |yaw|: p98 28.6, p99 33.5, 3 of 1581 above 40;
    # |pitch|: p99 21.6, p99.5 24.5, 3 above 30 (all visibly turned / looking up). ICAO's +-5 deg is
    # for passport enrolment; for matching a selfie, 40/30 keeps faces the embedders handle well.
    max_yaw_deg: float = 40.0
    max_pitch_deg: float = 30.0
    # Eyes closed when BOTH blink blendshapes exceed this. Untouched LFW (low-resolution eyes):
    # p99 0.51, p99.5 0.58; the 6 above 0.6 (max 0.73) really are closed or downcast eyes.
    max_eye_closed: float = 0.6
    # Occlusion: share of the lower face covered by something smooth and unlike this person's own
    # cheek skin, or textureless (see ``occlusion``). Untouched LFW p99 0.41, p99.5 0.46, 7 of 1583
    # above 0.5 (a microphone, a glass, sunglasses / face paint on the cheeks, 3 full dark beards).
    max_occlusion: float = 0.5
    # Selfie: another face with at least this share of the largest face's area is a second person.
    multiple_face_area_ratio: float = 0.35
    # ... and is detected with at least this score. Real second faces in LFW score 0.95-1.0; the
    # detector's phantoms (a blurred shoulder, a box straddling two heads) score 0.65-0.85.
    other_face_min_score: float = 0.8
    # Face cut off: share of the face lying outside the image (max of: detector box, mesh points,
    # aligned face ellipse). Untouched LFW: p99.9 0.074, 2 above 0.1 (the largest face there *is* a
    # neighbour cut by the border); other sets max 0.048.
    max_cut_off: float = 0.1
    # Role "centred" (evaluation data only): faces smaller than this share of the largest are not
    # candidates for the centred subject (background faces, false detections).
    centred_min_area_ratio: float = 0.2

    def min_inter_eye(self, role: Role) -> float:
        return self.portrait_min_inter_eye_px if role == "portrait" else self.min_inter_eye_px


@dataclass(frozen=True)
class QualityReport:
    passed: bool
    reasons: tuple[Reason, ...]  # empty when passed
    measures: dict[str, float]  # numbers only


# --- face selection ---------------------------------------------------------------------------


def select_face(
    faces: Sequence[DetectedFace],
    image_shape: tuple[int, ...],
    role: Role,
    policy: QualityPolicy = QualityPolicy(),
) -> tuple[DetectedFace | None, tuple[Reason, ...]]:
    """The face to use, or None with the reason why there is none.

    - no face: ``(None, (NO_FACE,))``;
    - selfie: the largest face, unless another face has at least ``multiple_face_area_ratio`` of its
      area (and a detector score >= ``other_face_min_score``) -> ``(None, (MULTIPLE_FACES,))``; small
      faces in the background are allowed, and so is a second box whose centre lies inside the
      chosen face's box (a duplicate detection of the same head);
    - portrait (ID document): the largest face; the smaller "ghost" portraits are ignored;
    - centred (labelled data sets such as LFW, whose subject is by construction the face at the image
      centre, often beside a larger neighbour): the face nearest the centre among faces at least
      ``centred_min_area_ratio`` of the largest one's area.
    """
    if not faces:
        return None, (Reason.NO_FACE,)
    ranked = sorted(faces, key=lambda f: f.area, reverse=True)
    main = ranked[0]
    if role == "centred":
        h, w = image_shape[:2]
        near = [f for f in ranked if f.area >= policy.centred_min_area_ratio * main.area]
        return min(near, key=lambda f: math.hypot(f.centre[0] - w / 2, f.centre[1] - h / 2)), ()
    if role == "selfie":
        for other in ranked[1:]:
            if other.area < policy.multiple_face_area_ratio * main.area:
                break
            if other.score < policy.other_face_min_score:
                continue
            ox, oy = other.centre
            if main.x <= ox <= main.x + main.width and main.y <= oy <= main.y + main.height:
                continue
            return None, (Reason.MULTIPLE_FACES,)
    return main, ()


# --- regions of the aligned 112x112 crop ------------------------------------------------------

_YY, _XX = np.mgrid[0:ALIGN, 0:ALIGN].astype(np.float32)


def _ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    return ((_XX - cx) / ax) ** 2 + ((_YY - cy) / ay) ** 2 <= 1.0


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return (_XX >= x0) & (_XX < x1) & (_YY >= y0) & (_YY < y1)


# Template landmarks: eyes y~52, nose tip (56, 72), mouth corners y~92; chin ~106.
FACE_REGION = _ellipse(56, 64, 28, 40)  # inner face, forehead to chin, cheek to cheek
CHEEK_REGION = _rect(26, 60, 42, 76) | _rect(70, 60, 86, 76)  # this person's skin reference
MOUTH_REGION = _ellipse(56, 92, 18, 9)
LOWER_REGION = _rect(30, 80, 82, 106) & ~MOUTH_REGION  # what a mask or a hand covers; lips excluded


def aligned_face(rgb: np.ndarray, face: DetectedFace, size: int = ALIGN) -> tuple[np.ndarray, np.ndarray]:
    """(crop, valid): the face warped onto the ArcFace template, and which crop pixels lie in the image."""
    pts = face.landmarks.astype(np.float64)
    dst = ARCFACE_112 * (size / 112)
    scale = float(np.linalg.norm(dst[1] - dst[0])) / max(face.inter_eye_px, 1e-3)
    img = rgb[..., :3]
    off = np.zeros(2)
    shrink = np.ones(2)
    if scale < 0.6:  # area-downscale the region around the face first: a linear warp would alias
        h, w = rgb.shape[:2]
        cx, cy = face.centre
        half = 1.5 * max(face.width, face.height)
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(cx + half) + 1, w), min(int(cy + half) + 1, h)
        if x1 > x0 and y1 > y0:
            region = img[y0:y1, x0:x1]
            f = scale * 1.25
            img = cv2.resize(region, (max(1, round(region.shape[1] * f)), max(1, round(region.shape[0] * f))),
                             interpolation=cv2.INTER_AREA)
            off = np.array([x0, y0], float)
            shrink = np.array([img.shape[1] / region.shape[1], img.shape[0] / region.shape[0]])
    m = similarity_transform((pts - off) * shrink, dst)
    crop = cv2.warpAffine(np.ascontiguousarray(img), m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    # which crop pixels come from inside the full image (the rest is replicated border)
    inv = cv2.invertAffineTransform(similarity_transform(pts, dst))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    h, w = rgb.shape[:2]
    valid = (sx >= -0.5) & (sx < w - 0.5) & (sy >= -0.5) & (sy < h - 0.5)
    return crop, valid


def sharpness(gray: np.ndarray, mask: np.ndarray) -> float:
    """Focus measure, contrast-normalised: std of the Laplacian over (std of the luma + 2) in ``mask``."""
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if inner.sum() < 20:
        return 0.0
    return float(lap[inner].std() / (gray[mask].std() + 2.0))


def occlusion(crop: np.ndarray, valid: np.ndarray) -> float:
    """Share of the lower face (below the nose, lips excluded) that does not look like this person's skin.

    Compared with the median of the person's own cheeks (so the rule is the same for every skin
    tone), a pixel counts as "covered" when
    - its chroma (Cr, Cb) differs by more than 22 or its luma by more than a factor 2.2, *and* it is
      not strongly textured (5x5 luma std below max(3, 1.5x the cheeks')): masks, scarves and
      hands are smooth at this scale, beards and stubble are not; or
    - it is textureless (std below 1.0 and below 0.3x the cheeks'): real skin always carries some.

    Validated on real LFW images (p99.5 0.44; the few above 0.5 are a microphone or a glass in front
    of the mouth and some very dark full beards on lighter skin) and on rectangles over the lower face:
    flat grey / black / white / light blue / cheek-coloured, and shaded + noisy blue / black / white
    "cloth masks": 94-100% caught. Limits: a skin-coloured textured occluder (a real hand) is not
    caught, patterned fabric only ~25-50%, nothing above the nose is judged (sunglasses), very dark
    full beards may still read as covered, and on grayscale photos only luma and texture count.
    """
    ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    luma = ycc[..., 0]
    mu = cv2.blur(luma, (5, 5))
    sd = np.sqrt(np.maximum(cv2.blur(luma * luma, (5, 5)) - mu * mu, 0.0))
    ref_mask = CHEEK_REGION & valid
    low_mask = LOWER_REGION & valid
    if ref_mask.sum() < 20 or low_mask.sum() < 20:
        return 0.0
    ref = np.median(ycc[ref_mask], axis=0)
    ref_sd = float(np.median(sd[ref_mask]))
    low, low_sd = ycc[low_mask], sd[low_mask]
    chroma = np.linalg.norm(low[:, 1:] - ref[1:], axis=1)
    luma_ratio = np.abs(np.log((low[:, 0] + 8.0) / (ref[0] + 8.0)))
    unlike = (chroma > 22.0) | (luma_ratio > math.log(2.2))
    smooth = low_sd < max(3.0, 1.5 * ref_sd)
    flat = low_sd < min(1.0, 0.3 * ref_sd)
    return float(((unlike & smooth) | flat).mean())


def pose_from_landmarks(face: DetectedFace) -> tuple[float, float]:
    """(yaw, roll) in degrees from the 5 landmarks, for when there is no mesh.

    yaw = atan(offset / 0.7), offset = the nose tip's distance from the eye midpoint along the eye
    line over the inter-eye distance; 0.7 is the least-squares fit to the mesh yaw on 1581 LFW faces
    (median abs. error 2.2 deg). Signs as ``FaceMesh``: yaw + = head turned to the image right.
    """
    le, re, nose = face.landmarks[0], face.landmarks[1], face.landmarks[2]
    axis = (re - le).astype(np.float64)
    d = float(np.linalg.norm(axis)) or 1.0
    off = float(np.dot(nose - (le + re) / 2, axis / d)) / d
    yaw = math.degrees(math.atan(off / 0.7))
    roll = math.degrees(math.atan2(float(axis[1]), float(axis[0])))
    return yaw, roll


def measure(rgb: np.ndarray, face: DetectedFace, mesh: FaceMesh | None) -> dict[str, float]:
    """All measures of one face (numbers only)."""
    h, w = rgb.shape[:2]
    crop, valid = aligned_face(rgb, face)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    face_px = FACE_REGION & valid
    if face_px.sum() < 50:
        face_px = FACE_REGION
    vals = gray[face_px]
    # percentiles on a lightly smoothed copy: specular highlights and pores would make them depend
    # on sharpness (a blurred dark-skinned face would lose its highlights and read as too dark)
    smooth = cv2.GaussianBlur(gray, (0, 0), 2.0)[face_px]
    box_out = max(
        -face.x / face.width,
        -face.y / face.height,
        (face.x + face.width - w) / face.width,
        (face.y + face.height - h) / face.height,
        0.0,
    )
    m: dict[str, float] = {
        "inter_eye_px": face.inter_eye_px,
        "detector_score": face.score,
        "sharpness": sharpness(gray, face_px),
        "brightness": float(vals.mean()),
        "luma_p5": float(np.percentile(smooth, 5)),
        "luma_p95": float(np.percentile(smooth, 95)),
        "dark_fraction": float((vals <= 20).mean()),
        "bright_fraction": float((vals >= 245).mean()),
        "occlusion": occlusion(crop, valid),
    }
    cut = [box_out, float(1.0 - valid[FACE_REGION].mean())]
    if mesh is not None:
        pts = mesh.points
        cut.append(float(((pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)).mean()))
        m["yaw"] = mesh.yaw_deg
        m["pitch"] = mesh.pitch_deg
        m["roll"] = mesh.roll_deg
        m["eye_blink_left"] = mesh.eye_blink_left
        m["eye_blink_right"] = mesh.eye_blink_right
        m["eye_closed"] = min(mesh.eye_blink_left, mesh.eye_blink_right)
        m["mesh"] = 1.0
    else:
        m["yaw"], m["roll"] = pose_from_landmarks(face)
        m["mesh"] = 0.0
    m["cut_off"] = max(cut)
    return m


def assess(
    rgb: np.ndarray,
    face: DetectedFace,
    mesh: FaceMesh | None,
    role: Role,
    policy: QualityPolicy = QualityPolicy(),
) -> QualityReport:
    """Judge one selected face. ``mesh`` may be None (no pitch or eye-closure check then)."""
    m = measure(rgb, face, mesh)
    reasons: list[Reason] = []
    if m["cut_off"] > policy.max_cut_off:
        reasons.append(Reason.FACE_CUT_OFF)
    if m["inter_eye_px"] < policy.min_inter_eye(role):
        reasons.append(Reason.FACE_TOO_SMALL)
    blurred = m["sharpness"] < policy.min_sharpness
    if blurred:
        reasons.append(Reason.BLUR)
    dark = m["luma_p95"] < policy.min_highlight_luma or m["dark_fraction"] > policy.max_dark_fraction
    bright = m["luma_p5"] > policy.max_shadow_luma or m["bright_fraction"] > policy.max_bright_fraction
    if dark:
        reasons.append(Reason.UNDEREXPOSED)
    if bright:
        reasons.append(Reason.OVEREXPOSED)
    if abs(m["yaw"]) > policy.max_yaw_deg or abs(m.get("pitch", 0.0)) > policy.max_pitch_deg:
        reasons.append(Reason.POSE)
    if mesh is not None and m["eye_closed"] > policy.max_eye_closed:
        reasons.append(Reason.EYES_CLOSED)
    # occlusion is only measurable on a sharp, well-exposed face: clipped or blurred skin is textureless
    if not (blurred or dark or bright) and m["occlusion"] > policy.max_occlusion:
        reasons.append(Reason.OCCLUDED)
    return QualityReport(passed=not reasons, reasons=tuple(reasons), measures=m)
