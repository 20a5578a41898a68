"""Errors the registry raises. ``code`` is stable (clients and the HTTP layer key on it); ``fix`` says what to do.

Messages never contain a handle or anything personal: they may end up in logs and problem+json bodies.
"""

from __future__ import annotations

from idproof.errors import IdproofError

__all__ = [
    "ForbiddenError",
    "IdentityCapReachedError",
    "InvalidNumberError",
    "NotTheHolderError",
    "NotYourNumberError",
    "NumberAlreadyBoundError",
    "NumberNotFoundError",
    "NumberSuspendedError",
    "ProofingExpiredError",
    "ProofingNotAcceptedError",
    "ProofingNotFoundError",
    "RegistryError",
    "SameHolderError",
]


class RegistryError(IdproofError):
    """Base class of every refusal the registry makes."""

    code = "registry_error"


class InvalidNumberError(RegistryError):
    """The number is not E.164 ('+', then 8 to 15 digits)."""

    code = "invalid_number"


class ProofingNotFoundError(RegistryError):
    code = "proofing_not_found"


class ProofingNotAcceptedError(RegistryError):
    """The proofing did not accept the person, or carries no identity handle."""

    code = "proofing_not_accepted"


class ProofingExpiredError(RegistryError):
    """The proofing is older than the registry's proofing_max_age."""

    code = "proofing_expired"


class IdentityCapReachedError(RegistryError):
    """The identity already holds the maximum number of lines (across operators)."""

    code = "identity_cap_reached"


class NumberAlreadyBoundError(RegistryError):
    code = "number_already_bound"


class NumberNotFoundError(RegistryError):
    code = "number_not_found"


class NotYourNumberError(RegistryError):
    """An operator sees and changes only the numbers it bound."""

    code = "not_your_number"


class NumberSuspendedError(RegistryError):
    """The number is disputed by its holder: no bind or transfer until the operator resolves it."""

    code = "number_suspended"


class ForbiddenError(RegistryError):
    """The principal's role does not allow this operation."""

    code = "forbidden"


class SameHolderError(RegistryError):
    """A transfer whose new holder is the current holder."""

    code = "same_holder"


class NotTheHolderError(RegistryError):
    """A transfer whose 'current' proofing is not of the number's holder."""

    code = "not_the_holder"
