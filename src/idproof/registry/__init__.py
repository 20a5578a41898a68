"""The subscriber registry: numbers bound to identity handles, never to names or document numbers."""

from idproof.registry.errors import (
    ForbiddenError,
    IdentityCapReachedError,
    InvalidNumberError,
    NotTheHolderError,
    NotYourNumberError,
    NumberAlreadyBoundError,
    NumberNotFoundError,
    NumberSuspendedError,
    ProofingExpiredError,
    ProofingNotAcceptedError,
    ProofingNotFoundError,
    RegistryError,
    SameHolderError,
)
from idproof.registry.handles import DocumentIdentity, RegistryKey, RegistryKeyError
from idproof.registry.rules import (
    AuditEntry,
    Binding,
    OperatorEvent,
    Principal,
    ProofingRecord,
    Registry,
    normalize_number,
)

__all__ = [
    "AuditEntry",
    "Binding",
    "DocumentIdentity",
    "ForbiddenError",
    "IdentityCapReachedError",
    "InvalidNumberError",
    "NotTheHolderError",
    "NotYourNumberError",
    "NumberAlreadyBoundError",
    "NumberNotFoundError",
    "NumberSuspendedError",
    "OperatorEvent",
    "Principal",
    "ProofingExpiredError",
    "ProofingNotAcceptedError",
    "ProofingNotFoundError",
    "ProofingRecord",
    "Registry",
    "RegistryError",
    "RegistryKey",
    "RegistryKeyError",
    "SameHolderError",
    "normalize_number",
]
