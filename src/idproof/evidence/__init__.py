"""Signed evidence of each decision: a personal-data-free record, signed by the service (Ed25519, compact
JWS), copied to the person and the operator, checkable offline with ``idproof evidence verify``.

    >>> record = from_decision(decision, inputs={"document": doc_bytes, "selfie": selfie_bytes}, capture_nonce=nonce)
    >>> token = EvidenceKey.load("evidence.key").sign(record)
    >>> verify_evidence(token, "evidence.key.pub") == record
    True

Storage and retention: ``idproof.evidence.store`` (``save``, ``get``, ``purge_older_than``).
"""

from idproof.evidence.record import (
    FORMAT,
    EvidenceError,
    EvidenceRecord,
    from_decision,
    input_hash,
)
from idproof.evidence.signing import (
    ALG,
    TYP,
    EvidenceKey,
    load_public_keys,
    unverified_parts,
    verify_evidence,
)

__all__ = [
    "ALG",
    "FORMAT",
    "TYP",
    "EvidenceError",
    "EvidenceKey",
    "EvidenceRecord",
    "from_decision",
    "input_hash",
    "load_public_keys",
    "unverified_parts",
    "verify_evidence",
]
