"""Quality gate and face mesh on real photos (shared/data/faces), transformed in memory only.

Every rejection reason is produced by a real photo, either as it is (closed eyes, turned heads) or
after an in-memory transformation (blur, darkening, cropping, a mask painted over the mouth...).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from idproof.errors import ModelError
from idproof.face import mesh as mesh_module
from idproof.face.detect import detect_faces
from idproof.face.mesh import MeshModel, rotation_to_euler
from idproof.face.quality import QualityPolicy, QualityReport, assess, measure, select_face
from idproof.face.types import DetectedFace, FaceMesh
from idproof.reasons import Reason

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"

pytestmark = pytest.mark.skipif(not (FACES / "lfw").is_dir(), reason=f"shared face data not found at {FACES}")

# Clean, frontal photos from every subset (LFW news crops, deepface / face_recognition high-res
# photos, faceapi_bbt tight crops); Bobby_Jackson_0001 is the darkest face in LFW (mean luma 57).
CLEAN = [
    "lfw/Abel_Pacheco/Abel_Pacheco_0002.jpg",
    "lfw/Bill_Gates/Bill_Gates_0016.jpg",
    "lfw/Catherine_Bell/Catherine_Bell_0001.jpg",
    "lfw/Bobby_Jackson/Bobby_Jackson_0001.jpg",
    "deepface/deepface_person02/img15.jpg",
    "face_recognition/obama/obama.jpg",
    "faceapi_bbt/penny/penny1.png",
]
BASES = [CLEAN[0], CLEAN[1], CLEAN[3], CLEAN[4], CLEAN[5], CLEAN[6]]

# MediaPipe eye contours (corner, lower lid ..., corner, upper lid ...)
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]


def load(rel: str) -> np.ndarray:
    bgr = cv2.imread(str(FACES / rel), cv2.IMREAD_COLOR)
    assert bgr is not None, rel
    return np.ascontiguousarray(bgr[..., ::-1])


@pytest.fixture(scope="module")
def mesh_model() -> MeshModel:
    return MeshModel.shared()


def largest(rgb: np.ndarray) -> DetectedFace:
    faces = detect_faces(rgb)
    assert faces, "the detector lost the face"
    return max(faces, key=lambda f: f.area)


def check(rgb: np.ndarray, role: str = "selfie", policy: QualityPolicy = QualityPolicy()) -> tuple[DetectedFace | None, QualityReport]:
    """The gate as the engine runs it: detect -> select -> mesh -> assess."""
    faces = detect_faces(rgb)
    face, problems = select_face(faces, rgb.shape, role, policy)  # type: ignore[arg-type]
    if face is None:
        return None, QualityReport(False, problems, {})
    mesh = MeshModel.shared().analyze(rgb, face)
    return face, assess(rgb, face, mesh, role, policy)  # type: ignore[arg-type]


def assess_largest(rgb: np.ndarray, role: str = "selfie") -> QualityReport:
    face = largest(rgb)
    return assess(rgb, face, MeshModel.shared().analyze(rgb, face), role)  # type: ignore[arg-type]


# --- clean photos pass ------------------------------------------------------------------------


@pytest.mark.parametrize("rel", CLEAN)
def test_clean_photo_passes(rel: str, mesh_model: MeshModel) -> None:
    face, report = check(load(rel))
    assert face is not None
    assert report.passed, (rel, report.reasons, report.measures)
    assert report.reasons == ()
    for key in ("inter_eye_px", "sharpness", "brightness", "yaw", "pitch", "roll", "eye_closed", "occlusion", "cut_off"):
        assert key in report.measures
    assert all(isinstance(v, float) and math.isfinite(v) for v in report.measures.values())


def test_lfw_pass_rate() -> None:
    """>= 95% of untouched LFW photos pass (the calibration run over all 1583 gives 98.2%).

    LFW crops often show a neighbour at the same size, so the face is taken as the largest one and
    only the gate itself is measured here, with the selfie thresholds.
    """
    files = sorted((FACES / "lfw").glob("*/*.jpg"))[::10]
    assert len(files) >= 100
    failed = {}
    for path in files:
        report = assess_largest(load(str(path.relative_to(FACES))))
        if not report.passed:
            failed[path.name] = [r.value for r in report.reasons]
    rate = 1 - len(failed) / len(files)
    assert rate >= 0.95, (rate, failed)


# --- each reason from a real, transformed photo -------------------------------------------------


@pytest.mark.parametrize("rel", BASES)
def test_strong_blur_is_blur(rel: str) -> None:
    rgb = load(rel)
    sigma = largest(rgb).inter_eye_px / 8
    _, report = check(cv2.GaussianBlur(rgb, (0, 0), sigma), role="portrait")
    assert Reason.BLUR in report.reasons, report.measures
    assert Reason.UNDEREXPOSED not in report.reasons and Reason.OVEREXPOSED not in report.reasons


@pytest.mark.parametrize("rel", BASES)
def test_darkened_is_underexposed_not_blurred(rel: str) -> None:
    _, report = check((load(rel) * 0.15).astype(np.uint8))
    assert Reason.UNDEREXPOSED in report.reasons, report.measures
    assert Reason.BLUR not in report.reasons  # the focus measure is contrast-normalised


@pytest.mark.parametrize("rel", BASES)
def test_washed_out_is_overexposed(rel: str) -> None:
    washed = (255 - (255 - load(rel).astype(np.float32)) * 0.25).astype(np.uint8)
    _, report = check(washed)
    assert Reason.OVEREXPOSED in report.reasons, report.measures


@pytest.mark.parametrize("rel", [CLEAN[0], CLEAN[2], CLEAN[5]])
def test_clipped_highlights_are_overexposed(rel: str) -> None:
    _, report = check(np.clip(load(rel).astype(np.float32) * 2.5, 0, 255).astype(np.uint8))
    assert Reason.OVEREXPOSED in report.reasons, report.measures


@pytest.mark.parametrize("rel", BASES)
def test_downscaled_face_is_too_small(rel: str) -> None:
    rgb = load(rel)
    ie = largest(rgb).inter_eye_px
    policy = QualityPolicy()
    tiny = cv2.resize(rgb, None, fx=18 / ie, fy=18 / ie, interpolation=cv2.INTER_AREA)
    face, report = check(tiny)
    assert face is not None and face.inter_eye_px < policy.min_inter_eye_px
    assert Reason.FACE_TOO_SMALL in report.reasons
    # ~22 px (as re-detected) is too small for a selfie but fine for a document portrait
    factor = 22 / ie
    for _ in range(3):  # the detector's eye distance on tiny images drifts a little: re-aim
        small = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        got = largest(small).inter_eye_px
        if policy.portrait_min_inter_eye_px + 1 <= got < policy.min_inter_eye_px - 1:
            break
        factor *= 22 / got
    assert Reason.FACE_TOO_SMALL in check(small, "selfie")[1].reasons
    assert Reason.FACE_TOO_SMALL not in check(small, "portrait")[1].reasons


@pytest.mark.parametrize("rel", BASES)
@pytest.mark.parametrize(("side", "cut"), [("right", 0.5), ("top", 0.4)])
def test_face_partly_outside_is_cut_off(rel: str, side: str, cut: float) -> None:
    """Half the face (right) or its top 40% (forehead and eyebrows) cropped away; still detected."""
    rgb = load(rel)
    f = largest(rgb)
    crop = rgb[:, : int(f.x + (1 - cut) * f.width)] if side == "right" else rgb[int(f.y + cut * f.height) :]
    face, report = check(np.ascontiguousarray(crop))
    assert face is not None, "pick a crop the detector still finds"
    assert Reason.FACE_CUT_OFF in report.reasons, report.measures


def test_real_turned_and_tilted_heads_fail_pose(mesh_model: MeshModel) -> None:
    # LFW photos where the head really is turned (yaw ~ +49) or tilted up (pitch ~ +42)
    turned = load("lfw/Steven_Spielberg/Steven_Spielberg_0002.jpg")
    face = largest(turned)
    mesh = mesh_model.analyze(turned, face)
    assert mesh is not None and mesh.yaw_deg > 40
    assert Reason.POSE in assess(turned, face, mesh, "selfie").reasons
    # without a mesh the 5-landmark estimate still catches it
    assert Reason.POSE in assess(turned, face, None, "selfie").reasons

    up = load("lfw/Tatiana_Gratcheva/Tatiana_Gratcheva_0001.jpg")
    face = largest(up)
    mesh = mesh_model.analyze(up, face)
    assert mesh is not None and mesh.pitch_deg > 30 and abs(mesh.yaw_deg) < 15
    assert Reason.POSE in assess(up, face, mesh, "selfie").reasons


def test_pose_sign_convention(mesh_model: MeshModel) -> None:
    rgb = load("lfw/Bill_Gates/Bill_Gates_0013.jpg")  # head turned ~17 deg to the image right
    face = largest(rgb)
    mesh = mesh_model.analyze(rgb, face)
    assert mesh is not None and mesh.yaw_deg > 10
    # nose tip right of the eye midpoint <=> yaw > 0
    assert face.landmarks[2, 0] > face.landmarks[:2, 0].mean()

    flipped = np.ascontiguousarray(rgb[:, ::-1])
    m_flip = mesh_model.analyze(flipped, largest(flipped))
    assert m_flip is not None
    assert m_flip.yaw_deg < -10 and abs(m_flip.yaw_deg + mesh.yaw_deg) < 5
    assert abs(m_flip.roll_deg + mesh.roll_deg) < 5

    h, w = rgb.shape[:2]
    rot = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
    m_rot = mesh_model.analyze(rot, largest(rot))
    assert m_rot is not None
    assert abs((m_rot.roll_deg - mesh.roll_deg) - (-20)) < 6  # counter-clockwise on screen -> roll decreases


def test_rotation_to_euler_on_synthetic_matrices() -> None:
    assert np.allclose(rotation_to_euler(np.eye(4)), (0, 0, 0), atol=1e-9)
    a = math.radians(20)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    yaw, pitch, roll = rotation_to_euler(rz)
    assert abs(yaw) < 1e-6 and abs(pitch) < 1e-6 and abs(abs(roll) - 20) < 1e-6
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    yaw, pitch, roll = rotation_to_euler(ry)
    assert abs(abs(yaw) - 20) < 1e-6 and abs(pitch) < 1e-6 and abs(roll) < 1e-6


def _side_by_side(a: np.ndarray, b: np.ndarray, scale_b: float = 1.0) -> np.ndarray:
    if scale_b != 1.0:
        b = cv2.resize(b, None, fx=scale_b, fy=scale_b, interpolation=cv2.INTER_AREA)
    h = max(a.shape[0], b.shape[0])
    pad = lambda x: cv2.copyMakeBorder(x, 0, h - x.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(90, 90, 90))  # noqa: E731
    return np.ascontiguousarray(np.hstack([pad(a), pad(b)]))


def test_two_people_side_by_side() -> None:
    a, b = load(CLEAN[0]), load(CLEAN[2])  # two different people, one face each
    both = _side_by_side(a, b)
    faces = detect_faces(both)
    assert len(faces) == 2
    face, reasons = select_face(faces, both.shape, "selfie", QualityPolicy())
    assert face is None and reasons == (Reason.MULTIPLE_FACES,)
    assert check(both, "selfie")[1].reasons == (Reason.MULTIPLE_FACES,)

    # ID document: the larger portrait is the one used, the smaller ("ghost") one is ignored
    doc = _side_by_side(a, b, scale_b=0.6)
    face, reasons = select_face(detect_faces(doc), doc.shape, "portrait", QualityPolicy())
    assert reasons == () and face is not None and face.centre[0] < a.shape[1]
    # ... and the same with the larger portrait on the right
    doc = _side_by_side(cv2.resize(b, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA), a)
    face, reasons = select_face(detect_faces(doc), doc.shape, "portrait", QualityPolicy())
    assert reasons == () and face is not None and face.centre[0] > doc.shape[1] - a.shape[1]

    # a small face in the background of a selfie is allowed
    bg = _side_by_side(a, b, scale_b=0.3)
    face, reasons = select_face(detect_faces(bg), bg.shape, "selfie", QualityPolicy())
    assert reasons == () and face is not None and face.centre[0] < a.shape[1]


def test_no_face() -> None:
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert select_face(detect_faces(blank), blank.shape, "selfie") == (None, (Reason.NO_FACE,))
    assert select_face([], (10, 10, 3), "portrait") == (None, (Reason.NO_FACE,))


@pytest.mark.parametrize(
    "rel",
    # real photos with closed eyes, found by scanning all 1635 shared images with the blink scores
    ["lfw/Hu_Jintao/Hu_Jintao_0015.jpg", "lfw/Charles_Bronson/Charles_Bronson_0002.jpg"],
)
def test_real_closed_eyes(rel: str, mesh_model: MeshModel) -> None:
    rgb = load(rel)
    face = largest(rgb)
    mesh = mesh_model.analyze(rgb, face)
    assert mesh is not None and min(mesh.eye_blink_left, mesh.eye_blink_right) > QualityPolicy().max_eye_closed
    assert Reason.EYES_CLOSED in assess(rgb, face, mesh, "selfie").reasons


def _paint_eyes_shut(rgb: np.ndarray, mesh: FaceMesh, inter_eye: float) -> np.ndarray:
    """Inpaint both eyes from the surrounding skin and draw a lash line along the lower lid."""
    mask = np.zeros(rgb.shape[:2], np.uint8)
    for eye in (RIGHT_EYE, LEFT_EYE):
        cv2.fillPoly(mask, [mesh.points[eye].astype(np.int32)], 255)
    k = max(3, int(0.1 * inter_eye)) | 1
    mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
    out = cv2.inpaint(rgb, mask, max(3, int(0.1 * inter_eye)), cv2.INPAINT_TELEA)
    lash = tuple(int(v) for v in np.median(out[mask > 0], axis=0) * 0.35)
    for eye in (RIGHT_EYE, LEFT_EYE):
        cv2.polylines(out, [mesh.points[eye][:9].astype(np.int32)], False, lash, max(1, round(inter_eye / 35)), cv2.LINE_AA)
    return out


@pytest.mark.parametrize("rel", ["lfw/Aron_Ralston/Aron_Ralston_0001.jpg", "face_recognition/obama/obama.jpg"])
def test_blink_scores_respond_to_painted_shut_eyes(rel: str, mesh_model: MeshModel) -> None:
    """Painting the eyes shut raises both blink scores (not always past the threshold: see report)."""
    rgb = load(rel)
    face = largest(rgb)
    before = mesh_model.analyze(rgb, face)
    assert before is not None
    shut = _paint_eyes_shut(rgb, before, face.inter_eye_px)
    after = mesh_model.analyze(shut, largest(shut))
    assert after is not None
    assert after.eye_blink_left > before.eye_blink_left + 0.2
    assert after.eye_blink_right > before.eye_blink_right + 0.2


def _cover_lower_face(rgb: np.ndarray, fill: str) -> np.ndarray:
    """A mask-like rectangle from just below the nose tip to below the chin, across the face box."""
    f = largest(rgb)
    out = rgb.copy()
    h, w = rgb.shape[:2]
    y0 = int(f.landmarks[2, 1] + 0.15 * f.inter_eye_px)
    y1 = min(h, int(f.y + 1.1 * f.height))
    x0, x1 = max(0, int(f.x)), min(w, int(f.x + f.width))
    region = out[y0:y1, x0:x1]
    if fill == "grey":
        region[:] = (128, 128, 128)
    elif fill == "black":
        region[:] = (20, 20, 20)
    elif fill == "cheek":  # flat patch of this person's own cheek colour ("hand-coloured")
        lx, ly = f.landmarks[0]
        cy = int((ly + f.landmarks[3, 1]) / 2)
        r = max(2, int(0.08 * f.inter_eye_px))
        region[:] = np.median(rgb[cy - r : cy + r, int(lx) - r : int(lx) + r].reshape(-1, 3), axis=0)
    else:  # light-blue surgical mask with shading and fabric noise
        rr, cc = np.mgrid[0 : region.shape[0], 0 : region.shape[1]]
        shade = 1.0 - 0.15 * (cc / max(1, region.shape[1] - 1) - 0.5) - 0.1 * rr / max(1, region.shape[0] - 1)
        noise = np.random.default_rng(0).normal(0, 3, region.shape[:2])
        region[:] = np.clip(np.array([150, 190, 220])[None, None, :] * shade[..., None] + noise[..., None], 0, 255)
    return out


@pytest.mark.parametrize("rel", [CLEAN[0], CLEAN[1], CLEAN[3], CLEAN[5], CLEAN[6]])
@pytest.mark.parametrize("fill", ["grey", "black", "cloth", "cheek"])
def test_covered_lower_face_is_occluded(rel: str, fill: str) -> None:
    report = assess_largest(_cover_lower_face(load(rel), fill))
    assert Reason.OCCLUDED in report.reasons, report.measures


# --- measures do not depend on resolution -------------------------------------------------------


@pytest.mark.parametrize(("rel", "factor"), [(CLEAN[0], 2.0), (CLEAN[4], 0.5), (CLEAN[5], 0.5)])
def test_measures_do_not_depend_on_resolution(rel: str, factor: float) -> None:
    rgb = load(rel)
    resized = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)
    m0 = measure(rgb, largest(rgb), None)
    m1 = measure(resized, largest(resized), None)
    assert m1["inter_eye_px"] == pytest.approx(m0["inter_eye_px"] * factor, rel=0.1)
    for key in ("sharpness", "brightness", "luma_p5", "luma_p95"):
        assert m1[key] == pytest.approx(m0[key], rel=0.15, abs=3), key


# --- model integrity ------------------------------------------------------------------------------


def test_mesh_model_checksum_mismatch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "face_landmarker.task"
    fake.write_bytes(b"not the pinned model")
    monkeypatch.setattr(mesh_module, "model_path", lambda name: fake)
    with pytest.raises(ModelError) as info:
        mesh_module._load_model_bytes()
    assert "SHA-256" in info.value.message and "install.sh" in info.value.fix


def test_mesh_model_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mesh_module, "model_path", lambda name: tmp_path / "gone.task")
    with pytest.raises(ModelError) as info:
        mesh_module._load_model_bytes()
    assert "install.sh" in info.value.fix


def test_mesh_points_in_image_coordinates(mesh_model: MeshModel) -> None:
    rgb = load(CLEAN[5])  # 910x1137 photo: the mesh runs on a downscaled crop
    face = largest(rgb)
    mesh = mesh_model.analyze(rgb, face)
    assert mesh is not None and mesh.points.shape == (478, 2)
    # MediaPipe's eye centres (mean of each eye contour) agree with RetinaFace's within 10% of the eye distance
    eyes = sorted([mesh.points[RIGHT_EYE].mean(0), mesh.points[LEFT_EYE].mean(0)], key=lambda p: p[0])
    for mp_eye, rf_eye in zip(eyes, face.landmarks[:2]):
        assert np.linalg.norm(mp_eye - rf_eye) < 0.1 * face.inter_eye_px
