"""Decision policy: turn what the stages found into accept / reject / retry with reasons.

- retry:  the inputs cannot support a decision (unreadable image, no face, poor quality); the person
          can fix it by taking another photo.
- reject: the document cannot be accepted (expired, holder under age, chip data forged or untrusted),
          or the inputs were good and the faces do not match at the calibrated threshold.
- accept: the faces match at a threshold calibrated to the stated false-match rate.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from idproof.reasons import REJECTING, Outcome, Reason, text_for

if TYPE_CHECKING:
    from idproof.face.embed import Template

Subject = Literal["document", "chip", "selfie", "match", "liveness", "capture"]


@dataclass(frozen=True)
class Finding:
    code: Reason
    subject: Subject
    text: str
    qualifier: str = ""  # which field / data group, e.g. "date_of_birth", "DG2"

    @property
    def reason(self) -> str:
        """Machine-readable reason, e.g. ``selfie:low_quality:blur``, ``document:mrz_unreadable:expiry_date``."""
        base = f"{self.subject}:{self.code.value}"
        return f"{base}:{self.qualifier}" if self.qualifier else base

    @property
    def rejects(self) -> bool:
        return self.code in REJECTING


_FACE_REASONS = {Reason.NO_FACE, Reason.MULTIPLE_FACES} | {r for r in Reason if r.value.startswith("low_quality:")}


def finding(code: Reason, subject: Subject, detail: str = "", *, qualifier: str = "") -> Finding:
    text = text_for(code)
    if subject == "document" and code in _FACE_REASONS:
        text = "Document portrait: " + text[0].lower() + text[1:]
    return Finding(code, subject, f"{text} {detail}".strip(), qualifier)


@dataclass(frozen=True)
class Match:
    score: float
    threshold: float
    target_fmr: float
    model_scores: dict[str, float]

    @property
    def matched(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True)
class HolderFacts:
    """What the accepted document says about its holder, for issuing the person's own credential in the
    same request. Memory only: never serialised (Decision.to_dict drops it), stored or logged."""

    given_name: str
    family_name: str
    issuing_state: str
    birth_date: date | None

    def __repr__(self) -> str:  # personal data: never in a traceback or a log line
        return "HolderFacts(<redacted>)"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    findings: tuple[Finding, ...]
    match: Match | None
    scorer: str
    calibration_version: str
    model_versions: dict[str, str]
    timings_ms: dict[str, float]
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    checks_performed: tuple[str, ...] = ()
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    code_version: str = ""
    document: dict[str, Any] = field(default_factory=dict)  # what was checked on the document; no personal data
    subject_handle: str | None = None  # keyed pseudonym of the document identity (registry key holders only)
    holder: HolderFacts | None = field(default=None, repr=False, compare=False)  # accepted only; memory only
    # The accepted selfie's (or best frame's) face template, for sealing it to the person
    # (idproof.sealed). Accepted only; memory only: never serialised (to_dict drops it), stored or logged.
    selfie_template: Template | None = field(default=None, repr=False, compare=False)

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.reason for f in self.findings)

    @property
    def score(self) -> float | None:
        return self.match.score if self.match else None

    @property
    def threshold(self) -> float | None:
        return self.match.threshold if self.match else None

    def to_dict(self) -> dict[str, Any]:
        # personal data and the face template never leave memory through a serialised decision (and are
        # not even copied on the way: asdict would deep-copy them)
        d = asdict(dataclasses.replace(self, holder=None, selfie_template=None))
        d.pop("holder", None)
        d.pop("selfie_template", None)
        d["outcome"] = self.outcome.value
        d["reasons"] = list(self.reasons)
        d["findings"] = [
            {"reason": f.reason, "code": f.code.value, "subject": f.subject, "qualifier": f.qualifier, "text": f.text}
            for f in self.findings
        ]
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)


def decide(findings: list[Finding], match: Match | None, **context: Any) -> Decision:
    """Findings about the inputs come first: one that a retake cannot fix (expired document, forged
    chip, under age) means reject; any other means retry. Otherwise the match decides."""
    if any(f.rejects for f in findings):
        return Decision(Outcome.REJECT, tuple(findings), match, **context)
    if findings or match is None:
        return Decision(Outcome.RETRY, tuple(findings), match, **context)
    if match.matched:
        return Decision(Outcome.ACCEPT, (finding(Reason.MATCH, "match"),), match, **context)
    return Decision(Outcome.REJECT, (finding(Reason.BELOW_THRESHOLD, "match"),), match, **context)
