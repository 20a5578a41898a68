"""idproof: privacy-first remote identity proofing (1:1 only, no biometric hoard)."""

__version__ = "0.1.0"

from idproof.decision import Decision, Finding, Match  # noqa: E402
from idproof.errors import IdproofError, ImageError  # noqa: E402
from idproof.reasons import Outcome, Reason  # noqa: E402


def verify(document_image, selfie_image, *, fmr=None):  # noqa: ANN001 - thin lazy re-export
    """Verify a selfie against an identity document's portrait. See :func:`idproof.api.verify`."""
    from idproof.api import verify as _verify

    return _verify(document_image, selfie_image, fmr=fmr)


__all__ = ["Decision", "Finding", "IdproofError", "ImageError", "Match", "Outcome", "Reason", "verify", "__version__"]
