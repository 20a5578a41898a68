"""Dense face mesh, head pose and eye closure from MediaPipe FaceLandmarker (tasks API, IMAGE mode).

Used by the quality gate and by active liveness. Of the 52 blendshapes we keep the five in
``ACTION_BLENDSHAPES`` (eye blinks for the quality gate and the blink challenge; smile and jaw-open for
the smile / mouth_open challenges, i.e. "was the requested movement made") and nothing else: idproof
never infers emotion or demographics.

The landmarker runs on a square crop around the face the detector found (box side x1.6), not on
the whole image: it is faster on large photos, and with ``num_faces=1`` it looks at *that* face
when several are present. Points are mapped back to full-image pixel coordinates.

Pose convention (verified on real LFW photos, see tests/test_quality.py):
- ``yaw_deg``  > 0: the head is turned towards the image right (the nose points to the image right);
  a horizontal flip of the image changes its sign.
- ``pitch_deg`` > 0: the head is tilted up (chin up); a vertical shift of the gaze down gives < 0.
- ``roll_deg`` > 0: the face is rotated clockwise in the image (as seen on screen); rotating the
  image by +20 deg counter-clockwise with ``cv2.getRotationMatrix2D(c, 20, 1)`` gives roll ~ -20.

Cost (2-core x86 CPU, XNNPACK, crops capped at 384 px): ~13 ms per call on a 250x250 LFW photo,
15-25 ms on 1-2.5 MP photos (the crop itself is the extra); loading the model once ~0.9 s.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import math
import os
import threading
from functools import cache

import cv2
import numpy as np

from idproof.errors import ModelError
from idproof.face.models import MODELS, REINSTALL, model_path
from idproof.face.types import DetectedFace, FaceMesh

MODEL_NAME = "mediapipe_face_landmarker"
CROP_SCALE = 1.6  # crop side = this x the larger side of the detector box
MAX_CROP_SIDE = 384  # larger crops are downscaled: the landmark network itself works at 256x256
N_POINTS = 478
ACTION_BLENDSHAPES = ("eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "jawOpen")



@contextlib.contextmanager
def _quiet_stderr():
    """MediaPipe's C++ core writes INFO/WARNING lines (XNNPACK delegate, feedback tensors) straight to
    file descriptor 2 while the graph starts, ignoring GLOG_minloglevel. Silence fd 2 for that moment
    only; Python exceptions still propagate."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_model_bytes() -> bytes:
    path = model_path(MODEL_NAME)  # raises ModelError if missing / wrong SHA-256
    try:
        data = path.read_bytes()
    except OSError as exc:  # pragma: no cover - race with a file removal
        raise ModelError(f"Model {MODEL_NAME} could not be read at {path}.", fix=REINSTALL) from exc
    # hash the very bytes handed to MediaPipe (the file could change between check and read)
    if hashlib.sha256(data).hexdigest() != MODELS[MODEL_NAME].sha256:
        raise ModelError(f"Model {MODEL_NAME} at {path} does not match its pinned SHA-256.", fix=REINSTALL)
    return data


def rotation_to_euler(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's facial transformation matrix (4x4 or 3x3).

    MediaPipe's canonical face is in a right-handed camera frame (x to the image right, y up,
    z towards the camera). With R = Ry(yaw) @ Rx(pitch) @ Rz(roll) the signs are adjusted so that the
    convention in the module docstring holds.
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    # remove any scale the geometry pipeline left in the matrix
    r = r / np.linalg.norm(r, axis=0, keepdims=True)
    pitch = math.degrees(math.asin(-float(np.clip(r[1, 2], -1.0, 1.0))))
    yaw = math.degrees(math.atan2(float(r[0, 2]), float(r[2, 2])))
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[1, 1])))
    return yaw, -pitch, -roll


def face_crop(rgb: np.ndarray, face: DetectedFace, scale: float = CROP_SCALE) -> tuple[np.ndarray, float, float, float]:
    """Square crop around ``face`` (padded with black where it leaves the image).

    Returns (crop, x0, y0, factor): a crop pixel (u, v) is image pixel (x0 + u / factor, y0 + v / factor).
    """
    h, w = rgb.shape[:2]
    cx, cy = face.centre
    side = max(face.width, face.height) * scale
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 8)
    x1, y1 = x0 + s, y0 + s
    crop = np.zeros((s, s, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1, :3]
    factor = 1.0
    if s > MAX_CROP_SIDE:
        factor = MAX_CROP_SIDE / s
        crop = cv2.resize(crop, (MAX_CROP_SIDE, MAX_CROP_SIDE), interpolation=cv2.INTER_AREA)
    return crop, float(x0), float(y0), factor


class MeshModel:
    """One FaceLandmarker, created once per process (``MeshModel.shared()``); calls are serialised."""

    def __init__(self) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=_load_model_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with _quiet_stderr():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
            # the first inference starts the graph's calculators (and their log lines)
            self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
        self._lock = threading.Lock()
        # MediaPipe dispatches every call through a ThreadPoolExecutor that concurrent.futures shuts down
        # at interpreter exit *before* atexit handlers run; its own __del__ then fails noisily. Close it
        # while that executor still runs (threading's exit hooks run last-registered first).
        register = getattr(threading, "_register_atexit", atexit.register)
        try:
            register(self.close)
        except RuntimeError:  # pragma: no cover - created while the interpreter shuts down
            atexit.register(self.close)

    @staticmethod
    def shared() -> "MeshModel":
        """The process-wide instance (created, and the model verified, on first use)."""
        return _shared()

    get = shared

    def close(self) -> None:
        lm, self._landmarker = getattr(self, "_landmarker", None), None
        if lm is not None:
            try:
                lm.close()
            except RuntimeError:  # executor already shut down: nothing left to free, silence __del__
                lm._handle = None

    def analyze(self, rgb: np.ndarray, face: DetectedFace) -> FaceMesh | None:
        """Mesh of ``face`` in an RGB uint8 image, or None when the landmarker finds no face there."""
        import mediapipe as mp

        if rgb.ndim != 3 or rgb.dtype != np.uint8:
            raise ValueError("analyze() expects an RGB uint8 image of shape (H, W, 3)")
        crop, x0, y0, factor = face_crop(rgb, face)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
        with self._lock:
            if self._landmarker is None:
                raise ModelError("The face landmarker was closed.", fix="Create a new MeshModel.")
            result = self._landmarker.detect(image)
        if not result.face_landmarks:
            return None
        side = crop.shape[0]
        pts = np.array([(p.x, p.y) for p in result.face_landmarks[0]], dtype=np.float32) * side
        pts = pts / factor + np.array([x0, y0], dtype=np.float32)
        blink = {c.category_name: float(c.score) for c in result.face_blendshapes[0]} if result.face_blendshapes else {}
        transform = None
        if result.facial_transformation_matrixes:
            transform = np.asarray(result.facial_transformation_matrixes[0], dtype=np.float64)
            yaw, pitch, roll = rotation_to_euler(transform)
        else:  # pragma: no cover - requested in the options, always present
            yaw = pitch = roll = float("nan")
        points_3d = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], dtype=np.float32)
        # MediaPipe's "Left"/"Right" blendshapes are the subject's own left/right.
        return FaceMesh(
            points=pts,
            yaw_deg=yaw,
            pitch_deg=pitch,
            roll_deg=roll,
            eye_blink_left=blink.get("eyeBlinkLeft", float("nan")),
            eye_blink_right=blink.get("eyeBlinkRight", float("nan")),
            blendshapes={k: blink[k] for k in ACTION_BLENDSHAPES if k in blink},
            points_3d=points_3d,
            transform=transform,
        )


@cache
def _shared() -> MeshModel:
    return MeshModel()


def analyze(rgb: np.ndarray, face: DetectedFace) -> FaceMesh | None:
    """Convenience: ``MeshModel.shared().analyze(rgb, face)``."""
    return _shared().analyze(rgb, face)
