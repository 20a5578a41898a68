"""The few functions a newcomer calls.

    >>> import idproof
    >>> decision = idproof.verify("passport.jpg", "selfie.jpg")
    >>> decision.outcome, decision.reasons
    (<Outcome.ACCEPT: 'accept'>, ('match:match',))

The pipeline reads top to bottom: document (MRZ or chip, portrait) → face → decision. With a video or
a capture page's frames (``Verifier.verify_frames`` / ``verify_capture``): document → capture binding →
liveness (challenge, same face, 3-D motion, passive PAD) → best frame → face → decision.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from idproof._timing import ms_since
from idproof import __version__
from idproof.calibration import shipped_calibration
from idproof.decision import Decision, Finding, HolderFacts, Match, decide, finding
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

if TYPE_CHECKING:
    from idproof.liveness.active import ActiveChecker
    from idproof.liveness.binding import Submission
    from idproof.liveness.challenge import Challenge, ChallengeIssuer
    from idproof.liveness.frames import Frame, FrameLimits, FrameSequence

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
        self._active: ActiveChecker | None = None
        self._pad: Any = None
        self._pad_status = "off" if face_only else None  # None: loaded on first selfie

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
        stage = self._document_stage(document_image, chip, findings, timings, checks)
        document_summary, handle, portrait = stage.summary, stage.handle, stage.portrait
        # A document that must be rejected ends here: no face is processed for nothing.
        if stage.rejected:
            timings["total"] = ms_since(start)
            return self._decision(findings, None, timings, {}, checks, document_summary, handle)

        # selfie → face
        t0 = time.perf_counter()
        selfie_rgb = _load(selfie_image, "selfie", findings)
        timings["selfie.load"] = ms_since(t0)
        selfie = None
        if selfie_rgb is not None:
            selfie = self.engine.analyze(selfie_rgb, "selfie")
            findings += _quality_findings(selfie, "selfie")
            timings.update({f"selfie.{k}": v for k, v in selfie.timings_ms.items()})
            # One still proves no liveness (use verify_frames for that), but a screen, print or mask
            # in it can still be caught: passive PAD on the selfie's one face.
            if selfie.faces_found == 1 and selfie.face is not None and self._selfie_pad() is not None:
                t0 = time.perf_counter()
                findings += self._pad_findings(selfie_rgb, selfie)
                timings["selfie.pad"] = ms_since(t0)
                checks.append("presentation_attack_detection")

        # 1:1 comparison, only when both sides are usable
        match = self._match(findings, portrait, selfie)
        timings["total"] = ms_since(start)
        checks += ["face_detection", "quality_gate", "face_match_1to1"]
        quality = {s.role: s.quality.measures for s in (portrait, selfie) if s is not None}
        return self._decision(findings, match, timings, quality, checks, document_summary, handle, stage.holder, selfie)

    def verify_frames(
        self,
        document_image: ImageInput | None,
        frames: FrameSequence | Sequence[Frame] | str | os.PathLike,
        *,
        chip: ChipInput | None = None,
        challenge: Challenge | None = None,
        actions: Sequence[str] | None = None,
        capture_findings: Sequence[Finding] = (),
        mirrored: bool = False,
    ) -> Decision:
        """Like ``verify``, with a frame sequence instead of one selfie: liveness first, then the 1:1
        match of the best-quality frame against the document portrait.

        ``frames``: a FrameSequence, frames, or a video file / folder of frame images (offline use).
        ``challenge``: a redeemed challenge (its actions and time windows are checked); ``actions``:
        offline, the actions to look for in order, without time windows; neither: passive PAD, same
        face, 3-D motion and timing only. ``capture_findings``: from ``check_submission`` (use
        ``verify_capture``, which does both).

        Outcome per reason (reasons.REJECTING): a presentation attack or capture injection
        (liveness:face_changed, flat_motion, presentation_attack; capture:binding_invalid, replayed,
        challenge_invalid, timing_impossible, stream_inconsistent, reencoded) rejects; what a live
        person can fail by accident (liveness:challenge_not_met, too_few_frames, multiple_faces,
        bad_video; capture:challenge_expired, duplicate_frames, timing_irregular) asks for a retry.
        """
        from idproof.liveness.binding import stream_findings
        from idproof.liveness.frames import FrameError, read_frames

        start = time.perf_counter()
        findings: list[Finding] = []
        timings: dict[str, float] = {}
        checks = ["image_intake"]
        stage = self._document_stage(document_image, chip, findings, timings, checks)
        if stage.rejected:
            timings["total"] = ms_since(start)
            return self._decision(findings, None, timings, {}, checks, stage.summary, stage.handle)
        portrait = stage.portrait

        if challenge is not None or capture_findings:
            checks += ["challenge_redemption", "capture_binding", "capture_stream"]
        findings += capture_findings
        no_frames = not isinstance(frames, (str, os.PathLike)) and len(frames) == 0
        if any(f.rejects for f in capture_findings) or (capture_findings and no_frames):
            # a forged, replayed or tampered capture: its frames are not looked at
            timings["total"] = ms_since(start)
            return self._decision(findings, None, timings, {}, checks, stage.summary, stage.handle)

        t0 = time.perf_counter()
        seq: FrameSequence | Sequence[Frame] | None = None
        if isinstance(frames, (str, os.PathLike)):
            try:
                seq = read_frames(frames)
            except FrameError as e:
                findings.append(finding(Reason.BAD_VIDEO, "liveness", e.message))
            if seq is not None:
                # a file has no binding; its timing and repeated frames still say something
                findings += [f for f in stream_findings(seq) if f.code in (Reason.TIMING_IMPOSSIBLE, Reason.DUPLICATE_FRAMES)]
                checks.append("capture_stream")
        else:
            seq = frames
        timings["liveness.read"] = ms_since(t0)

        live = None
        selfie = None
        if seq is not None and len(seq):
            live = self.active.check(seq, challenge=challenge, actions=actions, portrait=portrait, mirrored=mirrored)
            findings += live.findings
            timings.update({f"liveness.{k}": v for k, v in live.timings_ms.items()})
            checks += (["liveness_challenge"] if live.requested else []) + ["liveness_same_face", "liveness_3d_motion"]
            if live.pad.get("status") in ("loaded", "given"):
                checks.append("presentation_attack_detection")
            selfie = live.selfie
            if selfie is not None and not any(f.code is Reason.TOO_FEW_FRAMES for f in live.findings):
                findings += _quality_findings(selfie, "selfie")
                timings.update({f"selfie.{k}": v for k, v in selfie.timings_ms.items()})
            elif selfie is None and not live.findings:
                findings.append(finding(Reason.NO_FACE, "selfie"))
        elif seq is not None:
            findings.append(finding(Reason.TOO_FEW_FRAMES, "liveness", "(no frames)"))

        match = self._match(findings, portrait, selfie)
        timings["total"] = ms_since(start)
        checks += ["face_detection", "quality_gate", "face_match_1to1"]
        quality = {s.role: s.quality.measures for s in (portrait, selfie) if s is not None}
        if live is not None:
            quality["liveness"] = live.summary()
        return self._decision(findings, match, timings, quality, checks, stage.summary, stage.handle, stage.holder, selfie)

    def verify_capture(
        self,
        document_image: ImageInput | None,
        submission: Submission,
        issuer: ChallengeIssuer,
        *,
        chip: ChipInput | None = None,
        limits: FrameLimits | None = None,
        enforce_jpeg_quality: bool = True,
    ) -> Decision:
        """A capture page's submission end to end: redeem its challenge token (signature, expiry, once
        only), verify the capture MAC over the frames as received, check the stream, then
        ``verify_frames`` with the challenge's actions and windows."""
        from idproof.liveness.binding import check_submission

        cc = check_submission(issuer, submission, limits=limits, expected_jpeg_quality="challenge" if enforce_jpeg_quality else None)
        return self.verify_frames(document_image, cc.frames if cc.frames is not None else (), chip=chip, challenge=cc.challenge, capture_findings=cc.findings)

    def _selfie_pad(self) -> Any:
        """The passive PAD for single selfies ("fused"; frame sequences use LivenessPolicy.pad_configuration)."""
        if self._pad_status is None:
            from idproof.liveness.active import _load_pad

            self._pad, self._pad_status = _load_pad("fused")  # no challenge here: the model's cue is needed
        return self._pad

    def _pad_findings(self, rgb: Any, selfie: FaceSample) -> list[Finding]:
        from idproof.liveness.active import pad_findings

        try:
            result = self._pad.assess(rgb, face=selfie.face)
        except Exception as exc:  # noqa: BLE001 - a PAD fault must not pass as "no attack"
            return [finding(Reason.PRESENTATION_ATTACK, "liveness", f"presentation-attack detection failed ({type(exc).__name__})", qualifier="pad_error")]
        return pad_findings([result]) if getattr(result, "is_attack", False) else []

    @property
    def active(self) -> ActiveChecker:
        """The active-liveness checker, built on first use with this verifier's engine, scorer and threshold."""
        if self._active is None:
            from idproof.liveness.active import ActiveChecker

            lenient = min(t.threshold for t in self.calibration.thresholds if t.supported)
            self._active = ActiveChecker(self.engine, self.scorer, self.threshold.threshold, lenient_threshold=lenient)
        return self._active

    def _match(self, findings: list[Finding], portrait: FaceSample | None, selfie: FaceSample | None) -> Match | None:
        if findings or portrait is None or selfie is None or not portrait.usable or not selfie.usable:
            return None
        scores = self.scorer.model_scores(portrait.template, selfie.template)
        return Match(
            score=round(self.scorer.combine(scores), 6),
            threshold=self.threshold.threshold,
            target_fmr=self.threshold.fmr,
            model_scores={k: round(v, 6) for k, v in scores.items()},
        )

    def _document_stage(self, document_image, chip, findings: list[Finding], timings: dict[str, float], checks: list[str]) -> _DocumentStage:
        """Document page and/or chip → their findings (appended), summary, registry handle and portrait."""
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

        if any(f.rejects for f in findings):
            return _DocumentStage(document_summary, handle, None, True)

        portrait = None
        if reference is not None and reference.portrait_image is not None:
            portrait = self.engine.analyze(reference.portrait_image, "portrait")
            findings += _quality_findings(portrait, "chip" if reference is chip_doc else "document")
            timings.update({f"document.{k}": v for k, v in portrait.timings_ms.items()})
        holder = _holder_facts(reference.mrz) if reference is not None and not self.face_only else None
        return _DocumentStage(document_summary, handle, portrait, False, holder)

    def _decision(self, findings, match, timings, quality, checks, document, handle=None, holder=None,
                  selfie: FaceSample | None = None) -> Decision:
        d = decide(
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
        if not d.accepted:
            return d
        # memory only (Decision.to_dict drops both): the holder's facts for a credential, the selfie's
        # template for a sealed template the person keeps (idproof.sealed)
        extra: dict[str, Any] = {}
        if holder is not None:
            extra["holder"] = holder
        if selfie is not None and selfie.template is not None:
            extra["selfie_template"] = selfie.template
        return dataclasses.replace(d, **extra) if extra else d


@dataclass(frozen=True)
class _DocumentStage:
    summary: dict
    handle: str | None
    portrait: FaceSample | None
    rejected: bool
    holder: HolderFacts | None = None


def _holder_facts(mrz) -> HolderFacts | None:
    """The holder's name, state and birth date from a valid MRZ (for the person's own credential)."""
    if mrz is None or not mrz.valid:
        return None

    def clean(v: str) -> str:
        return " ".join(v.replace("<", " ").split())

    return HolderFacts(clean(mrz.secondary_identifier), clean(mrz.primary_identifier), mrz.issuing_state, mrz.date_of_birth)


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
