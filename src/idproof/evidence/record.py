"""The evidence record: what one proofing decided and on what, with no personal data and no image.

A record is built from a :class:`~idproof.decision.Decision` and the raw inputs (never kept: only their
salted hashes), then signed by the service (``idproof.evidence.signing``). The person and the operator each
get a copy; anyone holding the service's public key can check it offline.

What a record holds: outcome, reasons, score(s), threshold and its calibrated target FMR, scorer,
calibration / model / code versions, the checks performed, the document summary the decision already
carries (format, issuing state, check results: no name, number or date of birth), salted SHA-256 hashes of
the inputs, the capture nonce, and the decision and issue times.

What it never holds: image or frame bytes, face templates, MRZ text, the holder's name, document number or
birth date (``Decision.holder`` is never read), nor ``Decision.subject_handle``: that keyed pseudonym is the
same for every proofing of one document, so copies handed to different operators would become linkable.

Input hashes, and the trade-off of the salt. Each record draws a fresh random 32-byte salt and stores
``SHA-256(salt || input bytes)`` per input, with the salt in the record:

- whoever still holds the exact file (the person, the operator) can show it was that input: hash it with the
  record's salt and compare (:meth:`EvidenceRecord.matches_input`);
- the same image in two records gives unrelated hashes, so records cannot be linked through their inputs,
  and no precomputed table of image hashes (e.g. from another leak) finds anything;
- but the salt is no secret: a party holding a leaked record *and the exact same bytes* can confirm the
  match. A photo's bytes cannot be guessed (a second photo of the person, or the same photo re-encoded,
  hashes differently), which is why this is acceptable for images, frames and EF.SOD (signed, high entropy)
  - and why DG1 (the MRZ as ~90 bytes, guessable from a name, number and birth date) is refused as an
  input role: hash EF.SOD instead, whose signature covers DG1's hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from idproof.decision import Decision
from idproof.errors import IdproofError

FORMAT = "idproof-evidence/v1"
INPUT_HASH = "sha-256(salt||input)"  # names the construction, so a verifier can recompute it with any tool
SALT_BYTES = 32

EvidenceReason = Literal[
    "malformed",  # not a compact JWS, or its header is not a JSON object with only alg, kid, typ
    "alg_not_eddsa",  # header alg is anything but EdDSA ("none" and HMAC included)
    "wrong_typ",  # header typ is not idproof-evidence+jws
    "unknown_kid",  # no given public key has this RFC 7638 thumbprint
    "bad_signature",  # the signature does not verify under the key the kid names
    "invalid_record",  # signed, but the payload is not a valid, canonical evidence record
    "bad_public_key",  # the public key given to verify with is not an Ed25519 key (PEM, JWK or JWK set)
    "bad_key",  # the private key file is unusable or would be overwritten
    "bad_input",  # from_decision / save was called with something a record cannot hold
]


class EvidenceError(IdproofError):
    """Evidence could not be built, signed, stored or verified. ``reason`` is stable and machine-readable."""

    code = "bad_evidence"

    def __init__(self, reason: EvidenceReason, message: str, *, fix: str = "") -> None:
        self.reason = reason
        super().__init__(message, fix=fix)


_ROLE = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,63}$")
# Inputs whose bytes are guessable from a person's data: their salted hash (salt in the record) would
# confirm a guess of that data. See the module docstring.
_LOW_ENTROPY_ROLE = re.compile(r"(^|[._/-])(dg1|mrz)($|[._/-])")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,256}$")  # printable ASCII, no spaces: ids and nonces


def input_hash(salt: bytes, data: bytes) -> str:
    """``SHA-256(salt || data)`` in hex: the hash a record keeps of one input."""
    return hashlib.sha256(salt + data).hexdigest()


@dataclass(frozen=True)
class EvidenceRecord:
    """One decision's evidence. Build with :func:`from_decision`; sign with ``EvidenceKey.sign``."""

    record_id: str
    proofing_id: str | None
    outcome: str
    reasons: tuple[str, ...]
    score: float | None
    threshold: float | None
    target_fmr: float | None
    model_scores: Mapping[str, float]
    scorer: str
    calibration_version: str
    model_versions: Mapping[str, str]
    code_version: str
    checks_performed: tuple[str, ...]
    document: Mapping[str, Any]  # Decision.document: non-personal facts about the document
    input_salt: str  # hex of the 32 random bytes
    input_hashes: Mapping[str, str | tuple[str, ...]]  # role -> hash, or one hash per frame in order
    capture_nonce: str | None
    decided_at: str  # ISO 8601 with zone, from the decision
    issued_at: str  # ISO 8601 with zone, when the record was made
    format: str = field(default=FORMAT)

    def matches_input(self, role: str, data: bytes) -> bool:
        """Was ``data`` (exact bytes) the input recorded under ``role`` (or one of its frames)?"""
        recorded = self.input_hashes.get(role)
        if recorded is None:
            return False
        digest = input_hash(bytes.fromhex(self.input_salt), data)
        candidates = (recorded,) if isinstance(recorded, str) else recorded
        return any(hmac.compare_digest(digest, c) for c in candidates)

    @property
    def issued(self) -> datetime:
        return datetime.fromisoformat(self.issued_at).astimezone(UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "record_id": self.record_id,
            "proofing_id": self.proofing_id,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "score": self.score,
            "threshold": self.threshold,
            "target_fmr": self.target_fmr,
            "model_scores": dict(self.model_scores),
            "scorer": self.scorer,
            "calibration_version": self.calibration_version,
            "model_versions": dict(self.model_versions),
            "code_version": self.code_version,
            "checks_performed": list(self.checks_performed),
            "document": _plain(self.document),
            "input_hash": INPUT_HASH,
            "input_salt": self.input_salt,
            "input_hashes": {k: v if isinstance(v, str) else list(v) for k, v in self.input_hashes.items()},
            "capture_nonce": self.capture_nonce,
            "decided_at": self.decided_at,
            "issued_at": self.issued_at,
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity. One record, one byte string:
        the signed payload is exactly this, and a verifier refuses any other spelling."""
        try:
            return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise EvidenceError("bad_input", f"the evidence record is not plain JSON ({e}).",
                                fix="Records hold strings, finite numbers, lists and objects only.") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> EvidenceRecord:
        """Parse and validate a record (strict: every field, its type, nothing extra, canonical spelling)."""
        try:
            obj = json.loads(text, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as e:
            raise _invalid(f"payload is not JSON ({e})") from None
        record = cls.from_dict(obj)
        raw = text.decode("utf-8") if isinstance(text, bytes) else text
        if record.to_json() != raw:
            raise _invalid("payload is not in canonical form")
        return record

    @classmethod
    def from_dict(cls, obj: Any) -> EvidenceRecord:
        if not isinstance(obj, dict):
            raise _invalid("payload is not a JSON object")
        expected = set(_FIELDS)
        if set(obj) != expected:
            missing, extra = sorted(expected - set(obj)), sorted(set(obj) - expected)
            raise _invalid(f"fields differ (missing: {missing or 'none'}, unexpected: {extra or 'none'})")
        for name, check in _FIELDS.items():
            if not check(obj[name]):
                raise _invalid(f"field {name!r} has a wrong type or value")
        if obj["format"] != FORMAT:
            raise _invalid(f"format {obj['format']!r} is not {FORMAT!r}")
        if obj["input_hash"] != INPUT_HASH:
            raise _invalid(f"input_hash {obj['input_hash']!r} is not {INPUT_HASH!r}")
        return cls(
            record_id=obj["record_id"],
            proofing_id=obj["proofing_id"],
            outcome=obj["outcome"],
            reasons=tuple(obj["reasons"]),
            score=_num(obj["score"]),
            threshold=_num(obj["threshold"]),
            target_fmr=_num(obj["target_fmr"]),
            model_scores={k: float(v) for k, v in obj["model_scores"].items()},
            scorer=obj["scorer"],
            calibration_version=obj["calibration_version"],
            model_versions=dict(obj["model_versions"]),
            code_version=obj["code_version"],
            checks_performed=tuple(obj["checks_performed"]),
            document=obj["document"],
            input_salt=obj["input_salt"],
            input_hashes={k: v if isinstance(v, str) else tuple(v) for k, v in obj["input_hashes"].items()},
            capture_nonce=obj["capture_nonce"],
            decided_at=obj["decided_at"],
            issued_at=obj["issued_at"],
            format=obj["format"],
        )

    def summary_lines(self) -> list[str]:
        """A short human summary (the CLI prints it)."""
        lines = [f"outcome: {self.outcome}", f"reasons: {', '.join(self.reasons) or '-'}"]
        if self.score is not None:
            lines.append(f"score: {self.score:.6f}  threshold: {self.threshold:.6f}  target FMR: {self.target_fmr:g}")
        lines += [
            f"scorer: {self.scorer}  calibration: {self.calibration_version}  code: {self.code_version}",
            "models: " + ", ".join(f"{k}={v}" for k, v in sorted(self.model_versions.items())),
            "inputs: " + (", ".join(sorted(self.input_hashes)) or "-") + f" (salted {INPUT_HASH})",
            f"capture nonce: {self.capture_nonce or '-'}",
            f"proofing: {self.proofing_id or '-'}  record: {self.record_id}",
            f"decided: {self.decided_at}  issued: {self.issued_at}",
        ]
        return lines


def from_decision(
    decision: Decision,
    *,
    inputs: Mapping[str, bytes | Sequence[bytes]],
    capture_nonce: str | None = None,
    proofing_id: str | None = None,
    salt: bytes | None = None,
    issued_at: datetime | None = None,
) -> EvidenceRecord:
    """The evidence record of one decision.

    ``inputs``: the raw uploaded bytes by role (``document``, ``selfie``, ``chip.sod``, ``chip.dg2``, ...);
    a sequence of bytes (``frames``) gets one hash per item, in order. Only salted hashes are kept; roles
    naming DG1 or the MRZ are refused (guessable; see the module docstring). ``salt``: tests only (a fresh
    random one per record otherwise). ``issued_at``: defaults to now.
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
        raise EvidenceError("bad_input", f"the input salt must be {SALT_BYTES} bytes.", fix="Leave salt=None for a random one.")
    hashes: dict[str, str | tuple[str, ...]] = {}
    for role, data in inputs.items():
        if not isinstance(role, str) or not _ROLE.match(role):
            raise EvidenceError("bad_input", f"input role {role!r} is not a short lowercase name.",
                                fix="Use names like document, selfie, frames, chip.sod.")
        if _LOW_ENTROPY_ROLE.search(role):
            raise EvidenceError("bad_input", f"input role {role!r} holds guessable personal data (the MRZ).",
                                fix="Leave DG1 / MRZ out; hash chip.sod, whose signature covers DG1's hash.")
        if isinstance(data, (bytes, bytearray, memoryview)):
            hashes[role] = input_hash(salt, bytes(data))
        elif isinstance(data, Sequence) and not isinstance(data, str) and all(isinstance(b, (bytes, bytearray, memoryview)) for b in data):
            hashes[role] = tuple(input_hash(salt, bytes(b)) for b in data)
        else:
            raise EvidenceError("bad_input", f"input {role!r} is not bytes or a sequence of bytes.",
                                fix="Pass the raw uploaded bytes (never a path or a decoded image).")
    for what, value in (("capture_nonce", capture_nonce), ("proofing_id", proofing_id)):
        if value is not None and not (isinstance(value, str) and _TOKEN.match(value)):
            raise EvidenceError("bad_input", f"{what} must be printable ASCII without spaces, at most 256 characters.")
    issued = (issued_at or datetime.now(UTC))
    if issued.tzinfo is None:
        raise EvidenceError("bad_input", "issued_at has no time zone.", fix="Pass an aware datetime (UTC).")
    m = decision.match
    record = EvidenceRecord(
        record_id=str(uuid.uuid4()),
        proofing_id=proofing_id,
        outcome=decision.outcome.value,
        reasons=decision.reasons,
        score=float(m.score) if m else None,
        threshold=float(m.threshold) if m else None,
        target_fmr=float(m.target_fmr) if m else None,
        model_scores={k: float(v) for k, v in m.model_scores.items()} if m else {},
        scorer=decision.scorer,
        calibration_version=decision.calibration_version,
        model_versions=dict(decision.model_versions),
        code_version=decision.code_version,
        checks_performed=tuple(decision.checks_performed),
        document=_plain(decision.document),  # never decision.holder / subject_handle: see the module docstring
        input_salt=salt.hex(),
        input_hashes=hashes,
        capture_nonce=capture_nonce,
        decided_at=decision.decided_at,
        issued_at=issued.astimezone(UTC).isoformat(timespec="seconds"),
    )
    EvidenceRecord.from_json(record.to_json())  # what we sign must be what a verifier accepts
    return record


# --- validation ------------------------------------------------------------------------------------------

def _invalid(why: str) -> EvidenceError:
    return EvidenceError("invalid_record", f"not a valid evidence record: {why}.",
                         fix="Ask the service for its copy again; this one cannot be used as evidence.")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _plain(value: Any) -> Any:
    """A deep copy as plain JSON types (tuples become lists), so equality survives a round trip."""
    return json.loads(json.dumps(value, allow_nan=False))


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_str(v: Any, limit: int = 256) -> bool:
    return isinstance(v, str) and 0 < len(v) <= limit


def _is_time(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return datetime.fromisoformat(v).tzinfo is not None
    except ValueError:
        return False


def _is_hashes(v: Any) -> bool:
    if not isinstance(v, dict):
        return False
    for role, h in v.items():
        if not _ROLE.match(role):
            return False
        if isinstance(h, str):
            ok = bool(_HEX64.match(h))
        else:
            ok = isinstance(h, list) and all(isinstance(x, str) and _HEX64.match(x) for x in h)
        if not ok:
            return False
    return True


_FIELDS: dict[str, Any] = {
    "format": _is_str,
    "record_id": lambda v: isinstance(v, str) and _TOKEN.match(v) is not None,
    "proofing_id": lambda v: v is None or (isinstance(v, str) and _TOKEN.match(v) is not None),
    "outcome": lambda v: v in ("accept", "reject", "retry"),
    "reasons": lambda v: isinstance(v, list) and all(_is_str(r) for r in v),
    "score": lambda v: v is None or _is_num(v),
    "threshold": lambda v: v is None or _is_num(v),
    "target_fmr": lambda v: v is None or (_is_num(v) and 0 < v < 1),
    "model_scores": lambda v: isinstance(v, dict) and all(_is_str(k) and _is_num(x) for k, x in v.items()),
    "scorer": lambda v: isinstance(v, str),
    "calibration_version": lambda v: isinstance(v, str),
    "model_versions": lambda v: isinstance(v, dict) and all(_is_str(k) and isinstance(x, str) for k, x in v.items()),
    "code_version": lambda v: isinstance(v, str),
    "checks_performed": lambda v: isinstance(v, list) and all(_is_str(c) for c in v),
    "document": lambda v: isinstance(v, dict),
    "input_hash": _is_str,
    "input_salt": lambda v: isinstance(v, str) and _HEX64.match(v) is not None,
    "input_hashes": _is_hashes,
    "capture_nonce": lambda v: v is None or (isinstance(v, str) and _TOKEN.match(v) is not None),
    "decided_at": _is_time,
    "issued_at": _is_time,
}
