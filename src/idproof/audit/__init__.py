"""Tamper-evident audit log: a Merkle tree in the style of Certificate Transparency (RFC 9162).

Every proofing decision, registry change, lookup and template unseal is a leaf; signed tree heads (Ed25519);
inclusion and consistency proofs; ``verify_log`` / ``idproof audit verify`` checks a copy end to end. Leaves
carry keyed handles and event types, never personal data (see ``idproof.audit.log``).
"""

from idproof.audit.log import (
    AuditEntry,
    AuditEvent,
    AuditIntegrityError,
    ConsistencyProof,
    InclusionProof,
    MerkleLog,
    audit_leaves,
    audit_nodes,
    audit_tree_heads,
    metadata,
)
from idproof.audit.sth import SignedTreeHead, TreeHeadSigner, load_public_key
from idproof.audit.verify import AuditReport, Problem, verify_log

__all__ = [
    "AuditEntry",
    "AuditEvent",
    "AuditIntegrityError",
    "AuditReport",
    "ConsistencyProof",
    "InclusionProof",
    "MerkleLog",
    "Problem",
    "SignedTreeHead",
    "TreeHeadSigner",
    "audit_leaves",
    "audit_nodes",
    "audit_tree_heads",
    "load_public_key",
    "metadata",
    "verify_log",
]
