"""Read an identity document for a proofing: its data (MRZ from the page, or the chip's DG1) and the
holder's reference portrait (cropped from the page, or the chip's DG2).

The document rules live here too, because they need the date of birth and expiry, which never leave
this module: an expired document is a reject, a holder under the minimum age is a reject (from the
date of birth, never from the face), a check digit that cannot be repaired is a retry naming the field.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np

from idproof._timing import ms_since
from idproof.decision import Finding, finding
from idproof.document.mrz import MrzResult
from idproof.reasons import Reason

__all__ = ["ChipInput", "DocumentPolicy", "DocumentReading", "crop_portrait", "read_chip", "read_document"]

_PORTRAIT_MARGIN = 0.6  # around the face box, in face widths: the face stage needs context to align


@dataclass(frozen=True)
class DocumentPolicy:
    min_age: int = 18  # holder age at proofing, from the MRZ date of birth
    today: date | None = None  # for tests and replays; default: the current date


@dataclass(frozen=True)
class ChipInput:
    """A chip as read by an NFC app: EF.SOD and data groups, plus the CSCA trust store to check it."""

    sod: bytes = field(repr=False)
    data_groups: Mapping[int | str, bytes] = field(repr=False)
    trust: Any  # idproof.document.chip.TrustStore (imported lazily: chip support pulls asn1crypto)


@dataclass(frozen=True)
class DocumentReading:
    source: Literal["document_image", "chip", "face_only"]
    portrait_image: np.ndarray | None = field(repr=False)  # RGB uint8; memory only
    mrz: MrzResult | None = field(default=None, repr=False)  # personal data: never logged or stored
    findings: tuple[Finding, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)  # non-personal facts for the decision record
    timings_ms: dict[str, float] = field(default_factory=dict)


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def mrz_findings(mrz: MrzResult, policy: DocumentPolicy, subject: Literal["document", "chip"]) -> list[Finding]:
    today = policy.today or date.today()
    out: list[Finding] = []
    for name in mrz.failed_checks:
        out.append(finding(Reason.MRZ_UNREADABLE, subject, qualifier=name))
    for name, code in (("issuing_state", mrz.issuing_state), ("nationality", mrz.nationality)):
        if code in mrz.unknown_state_codes:
            out.append(finding(Reason.UNKNOWN_STATE, subject, qualifier=name))
    if out:
        return out  # dates of an unreliable reading decide nothing
    if mrz.expiry_date is not None and mrz.expiry_date < today:
        out.append(finding(Reason.DOCUMENT_EXPIRED, subject))
    if mrz.date_of_birth is not None and age_on(mrz.date_of_birth, today) < policy.min_age:
        out.append(finding(Reason.UNDER_MINIMUM_AGE, subject, f"(Minimum age: {policy.min_age}.)"))
    return out


def _summary(mrz: MrzResult | None, policy: DocumentPolicy) -> dict[str, Any]:
    """What the decision record may keep about the document: no name, number or date of birth."""
    if mrz is None:
        return {}
    today = policy.today or date.today()
    return {
        "mrz_format": mrz.format,
        "document_code": mrz.document_code,
        "issuing_state": mrz.issuing_state,
        "mrz_checks": dict(mrz.checks),
        "mrz_repaired_fields": sorted(mrz.repaired),
        "unknown_state_codes": list(mrz.unknown_state_codes),
        "expired": mrz.expiry_date is not None and mrz.expiry_date < today,
        "min_age": policy.min_age,
        "meets_min_age": mrz.date_of_birth is not None and age_on(mrz.date_of_birth, today) >= policy.min_age,
    }


def crop_portrait(rgb: np.ndarray) -> np.ndarray | None:
    """The holder's portrait: the largest face on the document (ghost images are smaller), with margin."""
    from idproof.face.detect import detect_faces

    faces = detect_faces(rgb)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.area)
    x0, y0, x1, y1 = face.x, face.y, face.x + face.width, face.y + face.height
    m = _PORTRAIT_MARGIN * max(face.width, face.height)
    h, w = rgb.shape[:2]
    a, b = int(max(0, y0 - m)), int(min(h, y1 + m))
    c, d = int(max(0, x0 - m)), int(min(w, x1 + m))
    return np.ascontiguousarray(rgb[a:b, c:d])


def read_document(rgb: np.ndarray, policy: DocumentPolicy | None = None, *, face_only: bool = False) -> DocumentReading:
    """Read a photo or scan of the document page: MRZ (with every check) and the portrait crop.

    ``face_only`` skips the MRZ: the image is then just a reference face (benchmarks, face-stage tests);
    such a decision is not a proofing of a document and says so in ``checks_performed``.
    """
    policy = policy or DocumentPolicy()
    if face_only:
        return DocumentReading("face_only", rgb)
    from idproof.document.mrz_image import NoMrzFound, OcrUnavailable, read_mrz
    from idproof.document.ocrb import FontMissing

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    findings: list[Finding] = []
    mrz = None
    upright = rgb
    try:
        reading = read_mrz(rgb, today=policy.today)
        mrz = reading.result
        if abs(reading.angle_deg) > 90:  # upside-down page: turn it so the face detector sees it upright
            upright = np.ascontiguousarray(rgb[::-1, ::-1])
        if mrz is None:
            findings.append(finding(Reason.NO_MRZ, "document"))
        else:
            findings += mrz_findings(mrz, policy, "document")
    except NoMrzFound:
        findings.append(finding(Reason.NO_MRZ, "document"))
    except (OcrUnavailable, FontMissing) as e:
        findings.append(finding(Reason.OCR_UNAVAILABLE, "document", e.fix))
    timings["mrz"] = ms_since(t0)
    t1 = time.perf_counter()
    portrait = crop_portrait(upright)
    timings["portrait_crop"] = ms_since(t1)
    return DocumentReading(
        "document_image",
        portrait if portrait is not None else upright,
        mrz,
        tuple(findings),
        _summary(mrz, policy),
        timings,
    )


def read_chip(chip: ChipInput, policy: DocumentPolicy | None = None) -> DocumentReading:
    """Passive authentication of the chip data; DG1 gives the MRZ and DG2 the reference portrait."""
    from idproof.document.chip import passive_authentication

    policy = policy or DocumentPolicy()
    t0 = time.perf_counter()
    result = passive_authentication(chip.sod, chip.data_groups, chip.trust)
    findings: list[Finding] = []
    for failure in result.failures:
        try:
            code = Reason(failure.code)
        except ValueError:
            code = Reason.CHIP_UNREADABLE
        findings.append(Finding(code, "chip", failure.text, failure.qualifier))
    if result.passive_authenticated and result.mrz is not None:
        findings += mrz_findings(result.mrz, policy, "chip")
    summary = _summary(result.mrz, policy) | {
        "passive_authentication": result.passive_authenticated,
        "chip_checks": dict(result.checks),
        "hash_algorithm": result.hash_algorithm,
        "signature_algorithm": result.signature_algorithm,
        "portrait_format": result.portrait_format,
    }
    return DocumentReading(
        "chip",
        result.portrait_rgb if result.passive_authenticated else None,
        result.mrz,
        tuple(findings),
        summary,
        {"passive_authentication": ms_since(t0)},
    )


def same_document(a: MrzResult, b: MrzResult) -> bool:
    """Do two MRZ readings (page and chip DG1) name the same document and holder?"""
    keys = ("document_code", "issuing_state", "document_number", "date_of_birth", "expiry_date")
    return all(getattr(a, k) == getattr(b, k) for k in keys)
