"""Passive presentation-attack detection (PAD) on one frame: a real model plus forensic cues, fused.

Cues (``PadCue.name``), every score oriented **higher = more attack-like**:

* ``passive_model`` -- ``fr_liveness.onnx`` from npm ``faceplugin-face-recognition-js@0.0.1`` (a
  MiniFASNet-style 3-class anti-spoofing net), run as that package's ``lib/fr_liveness.js`` does: the
  detector box is scaled by 2.7 about its centre, limited to the image (``scale = min((H-1)/h,
  (W-1)/w, 2.7)``) and shifted back inside it, cut out with integer (``parseInt``) bounds, resized to
  128x128 (bilinear), fed as raw 0-255 float32 values, NCHW, no mean / std; output softmax, class 0 =
  live. One deliberate difference: the JS feeds the canvas's R,G,B, but the network was evidently
  trained on OpenCV BGR images -- fed RGB it is near chance on the shared spoof data (CASIA ROC AUC
  0.50), fed BGR it reaches 0.90 and bona fide photos score live. ``channel_order`` in the calibration
  says which is used (``bgr``). Score = 1 - softmax[0] (spoof probability).
* the five forensic cues of ``idproof.liveness.forensic``.

Fusion: every cue has a threshold fitted on the fit split of the data (``pad-calibration.json``,
written by ``idproof bench liveness --write-calibration``); the frame is an attack when at least one cue
reaches its threshold, and the reasons name exactly those cues. The fused score is a logistic of the
largest threshold margin (each margin in that cue's own fitted scale, see ``cue_margin``), so
``score >= 0.5`` <=> some cue fired.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from idproof.errors import CalibrationError, ImageError
from idproof.face.types import DetectedFace
from idproof.liveness import forensic

CUE_NAMES = ("passive_model", *forensic.FORENSIC_CUES)
DEFAULT_CONFIGURATION = "fused"
FUSED_SLOPE = 3.0  # fused score = logistic(3 x largest margin): ~0.05 for a typical bona fide frame
CROP_SCALE = 2.7  # lib/fr_liveness.js: alignLivenessImage(img, bbox, 2.7)
INPUT_SIZE = 128


@dataclass(frozen=True)
class PadCue:
    name: str
    score: float  # higher = more attack-like; NaN = not judged on this frame (never fires)
    threshold: float
    fired: bool


@dataclass(frozen=True)
class PadResult:
    score: float  # fused, in [0, 1]
    threshold: float
    is_attack: bool
    cues: tuple[PadCue, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """``pad:<cue>`` for every cue that fired, when the frame is judged an attack; else ()."""
        return tuple(f"pad:{c.name}" for c in self.cues if c.fired) if self.is_attack else ()

    def cue(self, name: str) -> PadCue | None:
        return next((c for c in self.cues if c.name == name), None)


# --- calibration ------------------------------------------------------------------------------------


def shipped_calibration_path() -> Path:
    return Path(str(resources.files("idproof") / "data" / "pad-calibration.json"))


@cache
def _shipped() -> dict[str, Any]:
    path = shipped_calibration_path()
    if not path.is_file():
        raise CalibrationError(
            "No presentation-attack calibration is shipped (idproof/data/pad-calibration.json).",
            fix="Run `idproof bench liveness --write-calibration src/idproof/data/pad-calibration.json`.",
        )
    return json.loads(path.read_text())


def shipped_calibration() -> dict[str, Any]:
    """The shipped PAD calibration (a fresh copy: callers may change theirs)."""
    return json.loads(json.dumps(_shipped()))


# --- the passive model ------------------------------------------------------------------------------


def liveness_crop(rgb: np.ndarray, face: DetectedFace, scale: float = CROP_SCALE, size: int = INPUT_SIZE) -> np.ndarray:
    """The 128x128 RGB crop ``alignLivenessImage`` of lib/fr_liveness.js cuts (box -> 2.7x, kept inside)."""
    src_h, src_w = rgb.shape[:2]
    # predictLiveness: x1,y1,x2,y2 = parseInt(bbox); width = |x2-x1|, height = |y2-y1|
    x, y = int(face.x), int(face.y)
    box_w = abs(int(face.x + face.width) - x)
    box_h = abs(int(face.y + face.height) - y)
    box_w, box_h = max(box_w, 1), max(box_h, 1)
    s = min((src_h - 1) / box_h, min((src_w - 1) / box_w, scale))
    new_w, new_h = box_w * s, box_h * s
    cx, cy = box_w / 2 + x, box_h / 2 + y
    l, t, r, b = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if l < 0:
        r -= l
        l = 0
    if t < 0:
        b -= t
        t = 0
    if r > src_w - 1:
        l -= r - src_w + 1
        r = src_w - 1
    if b > src_h - 1:
        t -= b - src_h + 1
        b = src_h - 1
    rx, ry = max(int(l), 0), max(int(t), 0)
    rw, rh = min(int(r - l), src_w - 1), min(int(b - t), src_h - 1)
    roi = rgb[ry : ry + max(rh, 1), rx : rx + max(rw, 1)]
    return cv2.resize(roi, (size, size), interpolation=cv2.INTER_LINEAR)


@cache
def _liveness_session():
    from idproof.face import onnx
    from idproof.face.models import model_path

    return onnx.session(str(model_path("faceplugin_liveness")))


def passive_model_probabilities(rgb: np.ndarray, face: DetectedFace, *, channel_order: str = "bgr", scale: float = CROP_SCALE) -> np.ndarray:
    """Softmax over the model's 3 classes (class 0 = live) for the face in ``rgb``."""
    crop = liveness_crop(rgb, face, scale)
    if channel_order == "bgr":
        crop = crop[..., ::-1]
    elif channel_order != "rgb":
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', not {channel_order!r}")
    x = np.ascontiguousarray(crop.transpose(2, 0, 1)[None].astype(np.float32))  # raw 0..255, NCHW
    logits = _liveness_session().run(None, {"input": x})[0][0].astype(np.float64)
    p = np.exp(logits - logits.max())
    return p / p.sum()


def passive_model_score(rgb: np.ndarray, face: DetectedFace, *, channel_order: str = "bgr") -> float:
    """Spoof probability 1 - softmax[0] (higher = more attack-like)."""
    return float(1.0 - passive_model_probabilities(rgb, face, channel_order=channel_order)[0])


# --- fusion -----------------------------------------------------------------------------------------


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def cue_margin(name: str, score: float, threshold: float, spread: float) -> float:
    """(score - threshold) in units of the cue's fitted spread (the distance from the fit side's bona
    fide median to the threshold): 0 at the threshold, about -1 for a typical bona fide frame. The
    passive model's in logits."""
    if name == "passive_model":
        return (_logit(score) - _logit(threshold)) / spread
    return (score - threshold) / spread


def measure_all(rgb: np.ndarray, face: DetectedFace, cues: tuple[str, ...] = CUE_NAMES, *, channel_order: str = "bgr") -> dict[str, float | None]:
    """Raw score of every named cue on this frame (None = not judged)."""
    out: dict[str, float | None] = {}
    if "passive_model" in cues:
        out["passive_model"] = passive_model_score(rgb, face, channel_order=channel_order)
    out |= forensic.measure(rgb, face, tuple(c for c in cues if c != "passive_model"))
    return out


def decide(raw: dict[str, float | None], config: dict[str, Any]) -> PadResult:
    """Apply one calibrated configuration (``{"thresholds": {...}, "spreads": {...}}``) to raw cue scores."""
    cues, margins = [], []
    for name, thr in config["thresholds"].items():
        s = raw.get(name)
        spread = float(config.get("spreads", {}).get(name, 1.0)) or 1.0
        if s is None or not math.isfinite(s):
            cues.append(PadCue(name, float("nan"), float(thr), False))
            continue
        fired = bool(s >= thr)
        cues.append(PadCue(name, float(s), float(thr), fired))
        margins.append(cue_margin(name, float(s), float(thr), spread))
    top = max(margins) if margins else -math.inf
    score = 1.0 / (1.0 + math.exp(-max(min(FUSED_SLOPE * top, 50.0), -50.0)))
    is_attack = any(c.fired for c in cues)
    return PadResult(score=score, threshold=0.5, is_attack=is_attack, cues=tuple(cues))


class PassivePad:
    """Passive PAD with a shipped (or given) calibration; ``assess`` one RGB frame at a time."""

    def __init__(self, calibration: dict | None = None, *, configuration: str = DEFAULT_CONFIGURATION) -> None:
        self.calibration = calibration if calibration is not None else shipped_calibration()
        try:
            self.config = self.calibration["configurations"][configuration]
            model = self.calibration["passive_model"]
        except KeyError as e:
            raise CalibrationError(f"PAD calibration lacks {e.args[0]!r}.", fix="Use a pad-calibration.json written by `idproof bench liveness --write-calibration`.") from None
        unknown = set(self.config["thresholds"]) - set(CUE_NAMES)
        if unknown:
            raise CalibrationError(f"PAD calibration names unknown cues {sorted(unknown)}.", fix="Use a calibration written by this idproof version.")
        self.configuration = configuration
        self.channel_order = model.get("channel_order", "bgr")
        self.version = self.calibration.get("version")

    @property
    def cue_names(self) -> tuple[str, ...]:
        return tuple(self.config["thresholds"])

    def measure(self, rgb: np.ndarray, face: DetectedFace) -> dict[str, float | None]:
        return measure_all(rgb, face, self.cue_names, channel_order=self.channel_order)

    def assess(self, rgb: np.ndarray, face: DetectedFace | None = None) -> PadResult:
        """Judge one RGB uint8 frame; ``face`` defaults to the largest face the detector finds."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ImageError("Presentation-attack detection needs an RGB uint8 image (H x W x 3).", fix="Decode the image with idproof.imageio.load_image first.")
        if face is None:
            from idproof.face.detect import detect_faces

            faces = detect_faces(rgb)
            if not faces:
                raise ImageError("No face found for presentation-attack detection.", fix="Capture the face frontally, closer and well lit.")
            face = faces[0]
        return decide(self.measure(rgb, face), self.config)
