"""Enrol a person's sealed template, re-authenticate them with it, renew and revoke it.

The server keeps one row per issued (handle, version): a salted hash of the sealed blob and whether it is
revoked. The template itself exists only inside the person's sealed copy; it is decrypted in memory for one
1:1 comparison with a live selfie and dropped. Without the person's recovery code the server has no
template it can read, so it cannot search faces (1:N) even if it wanted to.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from idproof._timing import ms_since
from idproof.audit.log import MerkleLog
from idproof.decision import Finding, finding
from idproof.errors import ImageError
from idproof.imageio import load_image
from idproof.reasons import Outcome, Reason
from idproof.sealed.store import SealedTemplateRecord as Row
from idproof.sealed.store import blob_hash, new_salt
from idproof.sealed.template import (
    SECRET_BYTES,
    Quantization,
    RecoveryCodeError,
    SealedTemplateError,
    format_recovery_code,
    issuer_kid,
    model_tag,
    open_sealed,
    parse_recovery_code,
    parse_sealed,
    seal,
    verify_sealed,
)
from idproof.storage.store import make_engine, migrate

if TYPE_CHECKING:
    from idproof.api import ImageInput, Verifier
    from idproof.face.embed import Template
    from idproof.face.engine import FaceSample

__all__ = ["ReauthResult", "SealedTemplates", "generate_sealing_key", "load_sealing_key"]

# Why a sealed template was refused, beyond the selfie and match reasons a proofing gives.
SEALED_MALFORMED = "sealed_malformed"
SEALED_SIGNATURE_INVALID = "sealed_signature_invalid"
SEALED_HANDLE_MISMATCH = "sealed_handle_mismatch"
SEALED_UNKNOWN = "sealed_unknown"
SEALED_REVOKED = "sealed_revoked"
SEALED_MODEL_MISMATCH = "sealed_model_mismatch"
SEALED_SECRET_WRONG = "sealed_secret_wrong"
RECOVERY_CODE_INVALID = "recovery_code_invalid"

_TEXT = {
    SEALED_UNKNOWN: "This sealed template was not issued here.",
    SEALED_REVOKED: "This sealed template was renewed or revoked. Use your newest one, or enrol again with your document.",
    SEALED_MODEL_MISMATCH: "This sealed template was made for another face model; enrol again with your document.",
}
_RETRIES = 5


@dataclass(frozen=True)
class ReauthResult:
    """The answer to one re-authentication. ``handle`` is set once the issuer's signature has verified
    (it is then authentic), but only an ``accept`` says the person presenting it is that identity."""

    outcome: Outcome
    reason: str  # the first of ``reasons``: "match:match", "sealed_secret_wrong", "selfie:low_quality:blur", ...
    score: float | None
    threshold: float
    handle: str | None
    version: int | None = None
    target_fmr: float | None = None
    reasons: tuple[str, ...] = ()
    text: str = ""  # what the person should do
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"outcome": self.outcome.value, "reasons": list(self.reasons)}


class SealedTemplates:
    """Issue, check and revoke sealed templates. ``engine_db``: an Engine on a migrated database, or a URL
    (migrated on open). ``signing_key``: the service's Ed25519 sealing key (``load_sealing_key``);
    ``verify_keys``: earlier sealing keys' public halves, so templates issued before a key rotation still open.
    ``verifier``: its face engine, quality gate, passive PAD, scorer and calibrated threshold are used.
    ``audit_log``: the Merkle audit log every re-authentication attempt is appended to (a ``template_unseal``
    leaf); by default one on the same database (the registry's, when they share it)."""

    def __init__(
        self,
        engine_db: Engine | str,
        signing_key: Ed25519PrivateKey,
        verifier: Verifier,
        *,
        verify_keys: Sequence[Ed25519PublicKey] = (),
        quantization: Quantization = "int8",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        audit_log: MerkleLog | None = None,
    ) -> None:
        if isinstance(engine_db, str):
            engine_db = make_engine(engine_db)
            migrate(engine_db)
        self.engine = engine_db
        self._signing_key = signing_key
        self._public_keys = {issuer_kid(k).hex(): k for k in (signing_key.public_key(), *verify_keys)}
        self.verifier = verifier
        self.quantization = quantization
        self._clock = clock
        self._models = tuple(verifier.scorer.models)
        self._model_tag = model_tag(self._models).hex()
        self.audit_log = audit_log if audit_log is not None else MerkleLog(self.engine)

    def __repr__(self) -> str:
        return f"SealedTemplates(kid={issuer_kid(self._signing_key.public_key()).hex()!r}, models={self._models!r})"

    # --- issue ----------------------------------------------------------------------------------------------

    def enroll(self, handle: str, template: Template | FaceSample) -> tuple[str, str]:
        """Seal ``template`` (from an accepted proofing's portrait or selfie) for ``handle`` under a new
        recovery code; record it as the handle's newest version and revoke every earlier one (renewal).
        Returns ``(sealed, recovery_code)``: give both to the person once, keep neither."""
        vectors = getattr(template, "vectors", None)
        if vectors is None:  # a FaceSample
            if not getattr(template, "usable", False):
                raise SealedTemplateError(
                    "This face sample has no usable template.", fix="Enrol from the accepted proofing's portrait or selfie."
                )
            vectors = template.template.vectors  # type: ignore[union-attr]
        missing = [m for m in self._models if m not in vectors]
        if missing:
            raise SealedTemplateError(
                f"The template lacks the vectors of {', '.join(missing)}.",
                fix=f"Make it with a Verifier of this service's profile (models {', '.join(self._models)}).",
            )
        from idproof.face.embed import Template

        only = Template({m: vectors[m] for m in self._models})  # exactly what this service's scorer compares
        secret = secrets.token_bytes(SECRET_BYTES)
        handle = handle.lower()

        def issue(conn: Connection) -> str:
            now = self._clock()
            last = conn.scalar(select(func.max(Row.version)).where(Row.handle == handle)) or 0
            version = last + 1
            sealed = seal(
                only, secret, handle=handle, version=version, signing_key=self._signing_key, issued_at=now, quantization=self.quantization
            )
            salt = new_salt()
            conn.execute(update(Row).where(Row.handle == handle, Row.revoked_at.is_(None)).values(revoked_at=now))
            digest = blob_hash(salt, parse_sealed(sealed).raw)
            conn.execute(
                Row.__table__.insert().values(handle=handle, version=version, blob_hash=digest, salt=salt, created_at=now, revoked_at=None)
            )
            return sealed

        return self._tx(issue), format_recovery_code(secret)

    def revoke(self, handle: str) -> int:
        """Revoke every valid sealed template of ``handle`` (lost, stolen, or the person asked). Returns how many."""
        handle = handle.lower()

        def run(conn: Connection) -> int:
            valid = update(Row).where(Row.handle == handle, Row.revoked_at.is_(None))
            return conn.execute(valid.values(revoked_at=self._clock())).rowcount

        return self._tx(run)

    # --- re-authenticate ------------------------------------------------------------------------------------

    def reauthenticate(
        self, sealed: str, recovery_code: str, selfie: ImageInput, *, expected_handle: str | None = None
    ) -> ReauthResult:
        """Is the person in ``selfie`` the one the sealed template was issued to? The issuer's signature, the
        identity it names (``expected_handle``: e.g. the handle a number is bound to), its version and
        revocation are checked before the recovery code opens it; then the selfie goes through the face
        engine, quality gate and passive PAD, and is compared 1:1 with the unsealed template at the
        calibrated threshold. The unsealed template is dropped before this returns. Raises nothing for bad
        input: every refusal is a result with its reason.

        Every attempt, accepted or refused, appends a ``template_unseal`` leaf to the audit log (its own
        transaction, before the result is returned): the handle once the issuer's signature has verified, and
        in the payload the outcome, the reasons and the template version, nothing of the template or code."""
        result = self._reauthenticate(sealed, recovery_code, selfie, expected_handle=expected_handle)
        self._tx(lambda conn: self.audit_log.append(conn, "template_unseal", _leaf_handle(result.handle), {
            "outcome": result.outcome.value, "reason": result.reason, "reasons": list(result.reasons),
            "version": result.version,
        }))
        return result

    def _reauthenticate(
        self, sealed: str, recovery_code: str, selfie: ImageInput, *, expected_handle: str | None = None
    ) -> ReauthResult:
        start = time.perf_counter()
        timings: dict[str, float] = {}
        refuse = self._refusal
        try:
            blob = parse_sealed(sealed)
        except SealedTemplateError as e:
            return refuse(SEALED_MALFORMED, e, None)
        key = self._public_keys.get(blob.kid)
        try:
            verify_sealed(blob, key or self._signing_key.public_key(), expected_handle=expected_handle)
        except SealedTemplateError as e:
            return refuse(e.code, e, blob.handle if e.code == SEALED_HANDLE_MISMATCH else None)

        with self.engine.connect() as conn:
            row = conn.execute(select(Row.__table__).where(Row.handle == blob.handle, Row.version == blob.version)).first()
            newest = conn.scalar(select(func.max(Row.version)).where(Row.handle == blob.handle))
        if row is None or not secrets.compare_digest(blob_hash(row.salt, blob.raw), row.blob_hash):
            # signed with our key but not recorded here (a database restored from before it was issued?)
            return refuse(SEALED_UNKNOWN, None, blob.handle, blob.version)
        if row.revoked_at is not None or (newest or 0) > blob.version:
            return refuse(SEALED_REVOKED, None, blob.handle, blob.version)
        if blob.models != self._model_tag:
            return refuse(SEALED_MODEL_MISMATCH, None, blob.handle, blob.version)
        try:
            secret = parse_recovery_code(recovery_code)
        except RecoveryCodeError as e:
            return refuse(RECOVERY_CODE_INVALID, e, blob.handle, blob.version, Outcome.RETRY)

        t0 = time.perf_counter()
        try:
            reference = open_sealed(blob, secret, handle=blob.handle)
        except SealedTemplateError as e:
            return refuse(e.code, e, blob.handle, blob.version)
        finally:
            del secret
        timings["unseal"] = ms_since(t0)
        try:
            return self._match(reference, selfie, blob.handle, blob.version, timings, start)
        finally:
            del reference  # the only reference to the unsealed template: nothing keeps it after this call

    def _match(
        self, reference: Template, selfie: ImageInput, handle: str, version: int, timings: dict[str, float], start: float
    ) -> ReauthResult:
        v = self.verifier
        findings: list[Finding] = []
        t0 = time.perf_counter()
        try:
            rgb = load_image(selfie)
        except ImageError as e:
            rgb = None
            findings.append(finding(Reason.BAD_IMAGE, "selfie", f"Selfie image: {e.message} {e.fix}".strip()))
        timings["selfie.load"] = ms_since(t0)
        score = None
        if rgb is not None:
            sample = v.engine.analyze(rgb, "selfie")
            timings.update({f"selfie.{k}": t for k, t in sample.timings_ms.items()})
            findings += [finding(r, "selfie") for r in sample.quality.reasons]
            # as for a proofing's selfie: a screen, print or mask in it is caught by the passive PAD
            if sample.faces_found == 1 and sample.face is not None and v._selfie_pad() is not None:
                t0 = time.perf_counter()
                findings += v._pad_findings(rgb, sample)
                timings["selfie.pad"] = ms_since(t0)
            if not findings and sample.usable:
                score = round(float(v.scorer.score(reference, sample.template)), 6)  # strictly 1:1
            elif not findings:
                findings.append(finding(Reason.NO_FACE, "selfie"))
            del sample, rgb
        timings["total"] = ms_since(start)
        if findings:
            outcome = Outcome.REJECT if any(f.rejects for f in findings) else Outcome.RETRY
        elif score is not None and score >= v.threshold.threshold:
            outcome, findings = Outcome.ACCEPT, [finding(Reason.MATCH, "match")]
        else:
            outcome, findings = Outcome.REJECT, [finding(Reason.BELOW_THRESHOLD, "match")]
        return ReauthResult(
            outcome,
            findings[0].reason,
            score,
            v.threshold.threshold,
            handle,
            version,
            v.threshold.fmr,
            tuple(f.reason for f in findings),
            " ".join(dict.fromkeys(f.text for f in findings)),
            timings,
        )

    def _refusal(
        self,
        reason: str,
        error: SealedTemplateError | None,
        handle: str | None,
        version: int | None = None,
        outcome: Outcome = Outcome.REJECT,
    ) -> ReauthResult:
        text = f"{error.message} {error.fix}".strip() if error is not None else _TEXT.get(reason, "")
        t = self.verifier.threshold
        return ReauthResult(outcome, reason, None, t.threshold, handle, version, t.fmr, (reason,), text)

    def _tx(self, fn: Callable[[Connection], Any]) -> Any:
        """One write transaction; SQLite takes its write lock up front. Two renewals of one handle at once
        collide on the (handle, version) key: the loser retries and becomes the next version."""
        for attempt in range(_RETRIES):
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "sqlite":
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return fn(conn)
            except (IntegrityError, DBAPIError) as e:
                state = getattr(e.orig, "sqlstate", None)
                retry = isinstance(e, IntegrityError) or "locked" in str(e.orig) or state in ("40001", "40P01")
                if attempt + 1 == _RETRIES or not retry:
                    raise
            time.sleep(0.005 * (2**attempt) * (1 + secrets.randbelow(100) / 100))
        raise AssertionError("unreachable")


def _leaf_handle(handle: str | None) -> str | None:
    """A keyed handle (64 lowercase hex) for the leaf, else none: a leaf field never holds anything else."""
    return handle if isinstance(handle, str) and len(handle) == 64 and all(c in "0123456789abcdef" for c in handle) else None


# --- the sealing key: outside the database, like the registry key ---------------------------------------------


def generate_sealing_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """Write a new Ed25519 sealing key (PKCS#8 PEM, mode 0600). Refuses to overwrite: sealed templates signed
    with the old key would stop opening (keep the old public key in ``verify_keys`` when rotating)."""
    key = Ed25519PrivateKey.generate()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise SealedTemplateError(f"{p.name!r} already exists.", fix="Keep the existing sealing key, or choose another path.") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def load_sealing_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise SealedTemplateError(
            f"The sealing key {Path(path).name!r} cannot be read ({type(e).__name__}).",
            fix="Create one with idproof.sealed.generate_sealing_key(PATH).",
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SealedTemplateError(
            "The sealing key is not an Ed25519 key.", fix="Create one with idproof.sealed.generate_sealing_key(PATH)."
        )
    return key
