"""The few functions a newcomer calls.

    >>> import idproof
    >>> decision = idproof.verify("passport.jpg", "selfie.jpg")
    >>> decision.outcome, decision.reasons
    (<Outcome.ACCEPT: 'accept'>, ('match:match',))

The pipeline reads top to bottom: document → face → decision.
"""

from __future__ import annotations

import os
import time
from functools import cache

from idproof._timing import ms_since
from idproof import __version__
from idproof.calibration import shipped_calibration
from idproof.decision import Decision, Finding, Match, decide, finding
from idproof.document import read_document
from idproof.errors import ImageError
from idproof.face.calibrate import Calibration
from idproof.face.compare import DEFAULT_PROFILE, Scorer
from idproof.face.embed import model_versions
from idproof.face.engine import FaceEngine, FaceSample
from idproof.face.quality import QualityPolicy
from idproof.imageio import load_image
from idproof.reasons import Reason

ImageInput = str | os.PathLike | bytes


class Verifier:
    """A reusable 1:1 verifier: models and calibration are loaded once."""

    def __init__(
        self,
        *,
        profile: str = DEFAULT_PROFILE,
        fmr: float | None = None,
        calibration: Calibration | None = None,
        policy: QualityPolicy | None = None,
    ) -> None:
        self.engine = FaceEngine(profile, policy=policy)
        self.calibration = calibration or shipped_calibration(profile)
        self.scorer = Scorer(self.engine.models, self.calibration.normalization, self.calibration.fusion_weights)
        if self.calibration.model != self.scorer.name:
            raise ValueError(f"calibration is for {self.calibration.model!r}, not {self.scorer.name!r}")
        self.threshold = self.calibration.threshold_at(fmr if fmr is not None else self.calibration.default_fmr)

    def verify(self, document_image: ImageInput, selfie_image: ImageInput) -> Decision:
        """Is the person in the selfie the holder of the document? Raises nothing for bad input:
        problems come back as a `retry` decision whose findings say what to fix."""
        start = time.perf_counter()
        findings: list[Finding] = []
        timings: dict[str, float] = {}

        # document → its portrait
        t0 = time.perf_counter()
        doc_rgb = _load(document_image, "document", findings)
        timings["document.load"] = ms_since(t0)
        portrait = None
        if doc_rgb is not None:
            portrait = self.engine.analyze(read_document(doc_rgb).portrait_image, "portrait")
            findings += _quality_findings(portrait, "document")
            timings.update({f"document.{k}": v for k, v in portrait.timings_ms.items()})

        # selfie → face
        t0 = time.perf_counter()
        selfie_rgb = _load(selfie_image, "selfie", findings)
        timings["selfie.load"] = ms_since(t0)
        selfie = None
        if selfie_rgb is not None:
            selfie = self.engine.analyze(selfie_rgb, "selfie")
            findings += _quality_findings(selfie, "selfie")
            timings.update({f"selfie.{k}": v for k, v in selfie.timings_ms.items()})

        # 1:1 comparison, only when both sides are usable
        match = None
        if not findings and portrait is not None and selfie is not None and portrait.usable and selfie.usable:
            scores = self.scorer.model_scores(portrait.template, selfie.template)
            match = Match(
                score=round(self.scorer.combine(scores), 6),
                threshold=self.threshold.threshold,
                target_fmr=self.threshold.fmr,
                model_scores={k: round(v, 6) for k, v in scores.items()},
            )
        timings["total"] = ms_since(start)

        return decide(
            findings,
            match,
            scorer=self.scorer.name,
            calibration_version=self.calibration.version,
            model_versions=model_versions(["retinaface_mobilenet", "mediapipe_face_landmarker", *self.engine.models]),
            timings_ms=timings,
            quality={s.role: s.quality.measures for s in (portrait, selfie) if s is not None},
            checks_performed=("image_intake", "face_detection", "quality_gate", "face_match_1to1"),
            code_version=__version__,
        )


def _load(source: ImageInput, subject, findings: list[Finding]):
    try:
        return load_image(source)
    except ImageError as e:
        findings.append(finding(Reason.BAD_IMAGE, subject, f"{subject.capitalize()} image: {e.message} {e.fix}".strip()))
        return None


def _quality_findings(sample: FaceSample, subject) -> list[Finding]:
    return [finding(r, subject) for r in sample.quality.reasons]


@cache
def default_verifier(profile: str = DEFAULT_PROFILE, fmr: float | None = None) -> Verifier:
    """One verifier per (profile, FMR) per process: models and calibration load once."""
    return Verifier(profile=profile, fmr=fmr)


def verify(document_image: ImageInput, selfie_image: ImageInput, *, fmr: float | None = None) -> Decision:
    """Verify a selfie against an identity document's portrait with the shipped models and calibration."""
    return default_verifier(DEFAULT_PROFILE, fmr).verify(document_image, selfie_image)
