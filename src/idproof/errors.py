"""Errors idproof raises. Each one says what went wrong *and what to do about it*.

Messages never contain image bytes, template values or document text: they may end up in logs.
"""

from __future__ import annotations


class IdproofError(Exception):
    """Base class. ``code`` is stable and machine-readable; ``fix`` tells the caller what to change."""

    code: str = "idproof_error"

    def __init__(self, message: str, *, fix: str = "") -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message} {fix}".strip())


class ImageError(IdproofError):
    """The input could not be used as an image (corrupt, empty, too large, unsupported)."""

    code = "bad_image"


class ModelError(IdproofError):
    """A model file is missing or does not match its pinned SHA-256."""

    code = "model_unavailable"


class CalibrationError(IdproofError):
    """A calibration file or pairs file is malformed, or the data cannot support the request."""

    code = "bad_calibration"
