"""The face stage end to end for one image: detect → select → quality gate → align + embed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from idproof._timing import ms_since
from idproof.face.compare import DEFAULT_PROFILE, PROFILES
from idproof.face.detect import detect_faces, warm_up as warm_up_detector
from idproof.face.embed import Template, embed_timed, embedder
from idproof.face.quality import QualityPolicy, QualityReport, Role, assess, select_face
from idproof.face.types import DetectedFace


@dataclass(frozen=True)
class FaceSample:
    """What the face stage learned from one image. Holds the template in memory only."""

    role: Role
    faces_found: int
    face: DetectedFace | None
    quality: QualityReport
    template: Template | None = field(repr=False)
    timings_ms: dict[str, float]

    @property
    def usable(self) -> bool:
        return self.template is not None and self.quality.passed


class FaceEngine:
    """Loads models once; `analyze` is safe to call repeatedly from one thread."""

    def __init__(
        self,
        profile: str = DEFAULT_PROFILE,
        *,
        policy: QualityPolicy | None = None,
        check_quality: bool = True,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
        self.profile = profile
        self.models = PROFILES[profile]
        self.policy = policy or QualityPolicy()
        self.check_quality = check_quality
        # Load every model now, not inside the first request (and its timings).
        warm_up_detector()
        for m in self.models:
            embedder(m)
        if check_quality:
            self._mesh()

    def _mesh(self):
        from idproof.face.mesh import MeshModel

        return MeshModel.shared()

    def analyze(self, rgb: np.ndarray, role: Role, *, embed_even_if_poor: bool = False) -> FaceSample:
        t = {}
        t0 = time.perf_counter()
        faces = detect_faces(rgb)
        t["detect"] = ms_since(t0)

        face, problems = select_face(faces, rgb.shape, role, self.policy)
        if face is None:
            return FaceSample(role, len(faces), None, QualityReport(False, problems, {}), None, t)

        t0 = time.perf_counter()
        if self.check_quality:
            mesh = self._mesh().analyze(rgb, face)
            report = assess(rgb, face, mesh, role, self.policy)
            if problems:
                report = QualityReport(False, tuple(dict.fromkeys(problems + report.reasons)), report.measures)
        else:
            report = QualityReport(not problems, problems, {})
        t["quality"] = ms_since(t0)

        template = None
        if report.passed or embed_even_if_poor:
            template, embed_timings = embed_timed(self.models, rgb, face)
            t.update(embed_timings)
        return FaceSample(role, len(faces), face, report, template, t)

