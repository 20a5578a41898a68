"""The few functions a newcomer calls.

    >>> import idproof
    >>> decision = idproof.verify("passport.jpg", "selfie.jpg")
    >>> decision.outcome, decision.reasons
    (<Outcome.ACCEPT: 'accept'>, ('match:match',))

The pipeline reads top to bottom: document (MRZ or chip, portrait) → face → decision.
"""

from __future__ import annotations

import os
import time
from functools import cache

from idproof._timing import ms_since
from idproof import __version__
from idproof.calibration import shipped_calibration
from idproof.decision import Decision, Finding, Match, decide, finding
from idproof.document import ChipInput, DocumentPolicy, read_chip, read_document
from idproof.document.reading import same_document
from idproof.errors import ImageError
from idproof.face.calibrate import Calibration
from idproof.face.compare import DEFAULT_PROFILE, Scorer
from idproof.face.embed import model_versions
from idproof.face.engine import FaceEngine, FaceSample
from idproof.face.quality import QualityPolicy
from idproof.imageio import load_image
from idproof.reasons import Reason
from idproof.registry.handles import DocumentIdentity, RegistryKey

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
        document_policy: DocumentPolicy | None = None,
        face_only: bool = False,
        registry_key: RegistryKey | None = None,
    ) -> None:
        """``face_only=True`` compares two face photos without reading any document (benchmarks and
        face-stage tests): such a decision proves nothing about a document, and says so."""
        self.engine = FaceEngine(profile, policy=policy)
        self.document_policy = document_policy or DocumentPolicy()
        self.face_only = face_only
        self.registry_key = registry_key  # with it, decisions carry the identity handle for the registry
        self.calibration = calibration or shipped_calibration(profile)
        self.scorer = Scorer(self.engine.models, self.calibration.normalization, self.calibration.fusion_weights)
        if self.calibration.model != self.scorer.name:
            raise ValueError(f"calibration is for {self.calibration.model!r}, not {self.scorer.name!r}")
        self.threshold = self.calibration.threshold_at(fmr if fmr is not None else self.calibration.default_fmr)

    def verify(
        self, document_image: ImageInput | None, selfie_image: ImageInput, *, chip: ChipInput | None = None
    ) -> Decision:
        """Is the person in the selfie the holder of the document? Raises nothing for bad input:
        problems come back as a `retry` decision whose findings say what to fix.

        ``chip`` (an ePassport / eID chip's EF.SOD and data groups with a CSCA trust store) is the
        stronger reference: after passive authentication its DG2 portrait is matched, and a page photo,
        if also given, must carry the same MRZ as DG1.
        """
        start = time.perf_counter()
        findings: list[Finding] = []
        timings: dict[str, float] = {}
        checks = ["image_intake"]

        # document → its data and portrait
        page = chip_doc = None
        if document_image is not None:
            t0 = time.perf_counter()
            doc_rgb = _load(document_image, "document", findings)
            timings["document.load"] = ms_since(t0)
            if doc_rgb is not None:
                page = read_document(doc_rgb, self.document_policy, face_only=self.face_only)
                findings += page.findings
                timings.update({f"document.{k}": v for k, v in page.timings_ms.items()})
        if chip is not None:
            chip_doc = read_chip(chip, self.document_policy)
            findings += chip_doc.findings
            timings.update({f"chip.{k}": v for k, v in chip_doc.timings_ms.items()})
            checks.append("chip_passive_authentication")
            if page is not None and page.mrz is not None and chip_doc.mrz is not None and page.mrz.valid:
                if not same_document(page.mrz, chip_doc.mrz):
                    findings.append(finding(Reason.CHIP_MRZ_MISMATCH, "chip"))
        elif document_image is None:
            findings.append(finding(Reason.BAD_IMAGE, "document", "Send a photo of the identity document, or its chip data."))
        if not self.face_only:
            checks += ["mrz_check_digits", "document_expiry", "minimum_age"]
        reference = chip_doc if chip_doc is not None else page
        document_summary = {"source": reference.source, **reference.summary} if reference is not None else {}
        handle = None
        if self.registry_key is not None and reference is not None and reference.mrz is not None and reference.mrz.valid:
            handle = self.registry_key.handle(DocumentIdentity.from_mrz(reference.mrz))

        # A document that must be rejected ends here: no face is processed for nothing.
        if any(f.rejects for f in findings):
            timings["total"] = ms_since(start)
            return self._decision(findings, None, timings, {}, checks, document_summary, handle)

        portrait = None
        if reference is not None and reference.portrait_image is not None:
            portrait = self.engine.analyze(reference.portrait_image, "portrait")
            findings += _quality_findings(portrait, "chip" if reference is chip_doc else "document")
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
        checks += ["face_detection", "quality_gate", "face_match_1to1"]
        quality = {s.role: s.quality.measures for s in (portrait, selfie) if s is not None}
        return self._decision(findings, match, timings, quality, checks, document_summary, handle)

    def _decision(self, findings, match, timings, quality, checks, document, handle=None) -> Decision:
        return decide(
            findings,
            match,
            scorer=self.scorer.name,
            calibration_version=self.calibration.version,
            model_versions=model_versions(["retinaface_mobilenet", "mediapipe_face_landmarker", *self.engine.models]),
            timings_ms=timings,
            quality=quality,
            checks_performed=tuple(checks),
            code_version=__version__,
            document=document,
            subject_handle=handle,
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


def verify(
    document_image: ImageInput | None, selfie_image: ImageInput, *, chip: ChipInput | None = None, fmr: float | None = None
) -> Decision:
    """Verify a selfie against an identity document (page photo and/or chip) with the shipped models and calibration."""
    return default_verifier(DEFAULT_PROFILE, fmr).verify(document_image, selfie_image, chip=chip)
