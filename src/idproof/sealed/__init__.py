"""Sealed templates: a person's face template that only the person can unlock, for re-authentication
without the document (SIM swap, "my numbers"). The server keeps no readable template, so it cannot search.

    >>> sealed, code = SealedTemplates(db_url, sealing_key, verifier).enroll(handle, portrait.template)
    >>> SealedTemplates(...).reauthenticate(sealed, code, "selfie.jpg").outcome
    <Outcome.ACCEPT: 'accept'>

Names are loaded on first use: ``idproof.sealed.store`` (imported by the migrations) must stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idproof.sealed.service import ReauthResult, SealedTemplates, generate_sealing_key, load_sealing_key
    from idproof.sealed.template import (
        RecoveryCodeError,
        SealedTemplateError,
        new_recovery_code,
        parse_recovery_code,
        seal,
        unseal,
    )

_EXPORTS = {
    "ReauthResult": "service",
    "SealedTemplates": "service",
    "generate_sealing_key": "service",
    "load_sealing_key": "service",
    "RecoveryCodeError": "template",
    "SealedTemplateError": "template",
    "new_recovery_code": "template",
    "parse_recovery_code": "template",
    "seal": "template",
    "unseal": "template",
}
__all__ = [
    "ReauthResult",
    "RecoveryCodeError",
    "SealedTemplateError",
    "SealedTemplates",
    "generate_sealing_key",
    "load_sealing_key",
    "new_recovery_code",
    "parse_recovery_code",
    "seal",
    "unseal",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'idproof.sealed' has no attribute {name!r}")
    return getattr(importlib.import_module(f"idproof.sealed.{_EXPORTS[name]}"), name)
