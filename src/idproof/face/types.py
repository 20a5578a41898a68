"""Plain data that flows between the face modules."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Order of the five landmarks everywhere in idproof (image coordinates, "left" = image left):
# left eye centre, right eye centre, nose tip, left mouth corner, right mouth corner.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class DetectedFace:
    """One face found by the detector, in pixel coordinates of the (EXIF-upright) RGB image."""

    x: float
    y: float
    width: float
    height: float
    score: float
    landmarks: np.ndarray = field(repr=False)  # (5, 2) float32, order = LANDMARK_NAMES

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def inter_eye_px(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.width / 2, self.y + self.height / 2)


@dataclass(frozen=True)
class FaceMesh:
    """Dense landmarks and head pose from MediaPipe FaceLandmarker, used by the quality gate and active liveness."""

    points: np.ndarray = field(repr=False)  # (478, 2) float32, pixel coordinates
    yaw_deg: float  # + = head turned to the image right
    pitch_deg: float  # + = head tilted up
    roll_deg: float
    eye_blink_left: float  # blendshape scores in [0, 1]; 1 = closed
    eye_blink_right: float
    # For active liveness only (is a requested movement performed?): the few blendshapes listed in
    # mesh.ACTION_BLENDSHAPES, never used to infer emotion; empty when not computed.
    blendshapes: dict[str, float] = field(default_factory=dict, repr=False)
    # (478, 3) float32 normalised landmarks of the crop MediaPipe saw (x, y in [0, 1], z relative depth), or None
    points_3d: np.ndarray | None = field(default=None, repr=False)
    transform: np.ndarray | None = field(default=None, repr=False)  # 4x4 facial transformation matrix
