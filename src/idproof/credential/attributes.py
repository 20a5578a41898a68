"""The attributes of the person-held credential, and their one canonical encoding as BBS messages.

What goes in is what a relying party may ask about, never more: no document number, no birth date (only the
two age thresholds, computed at issuance), no face template. Every attribute is one BBS message, in
:data:`ATTRIBUTES` order, encoded as ``b"<name>=<value>"`` (booleans ``true``/``false``, strings UTF-8 as
given, dates ISO ``YYYY-MM-DD``). The name prefix ties each value to its position, so no value can pass for
another attribute's even if it contains ``=`` or newlines; the verifier rebuilds the disclosed messages from
the disclosed JSON values with :func:`encode_message`, so both sides get the same bytes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from idproof.decision import HolderFacts

ATTRIBUTES = ("verified", "age_over_18", "age_over_21", "given_name", "family_name", "issuing_state", "expires")
_BOOLS = frozenset({"verified", "age_over_18", "age_over_21"})
_STRINGS = frozenset({"given_name", "family_name", "issuing_state"})
MAX_STRING_CHARS = 256  # a name longer than this is not a name; keeps messages and presentations bounded


def age_at_least(birth_date: date | None, years: int, today: date) -> bool:
    """True once the ``years``-th birthday has come. Someone born on 29 February turns N on 1 March in a
    common year (the later of the two readings, so the credential never says "over 18" a day early)."""
    if birth_date is None or birth_date > today:
        return False
    age = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
    return age >= years


def encode_message(name: str, value: Any) -> bytes:
    """The BBS message for one attribute. Raises ValueError (or TypeError) on a wrong name or value type."""
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a boolean")
        text = "true" if value else "false"
    elif name in _STRINGS:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string")
        if len(value) > MAX_STRING_CHARS:
            raise ValueError(f"{name} is longer than {MAX_STRING_CHARS} characters")
        text = value
    elif name == "expires":
        if not isinstance(value, date) or isinstance(value, datetime):
            raise TypeError("expires must be a date")
        text = value.isoformat()
    else:
        raise ValueError(f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
    return f"{name}={text}".encode()


def claim_value(name: str, raw: Any) -> Any:
    """Turn a JSON claim value back into the attribute's Python value (``expires``: ISO string -> date).
    Raises ValueError / TypeError when it has the wrong type; the caller maps that to its own error."""
    if name == "expires":
        if not isinstance(raw, str) or len(raw) != 10:
            raise TypeError("expires must be an ISO date string YYYY-MM-DD")
        return date.fromisoformat(raw)
    encode_message(name, raw)  # type and name check
    return raw


def _nfc(text: str) -> str:
    # one Unicode spelling per name, so the issuer's and any re-typed copy encode to the same bytes
    return unicodedata.normalize("NFC", text.strip())


@dataclass(frozen=True)
class CredentialAttributes:
    verified: bool
    age_over_18: bool
    age_over_21: bool
    given_name: str
    family_name: str
    issuing_state: str
    expires: date

    def __post_init__(self) -> None:
        for f in fields(self):
            encode_message(f.name, getattr(self, f.name))  # fail at construction, not at signing

    def __repr__(self) -> str:  # personal data: never in a traceback or a log line
        return "CredentialAttributes(<redacted>)"

    @classmethod
    def from_holder(cls, holder: HolderFacts, *, today: date | None = None,
                    lifetime: timedelta = timedelta(days=30)) -> CredentialAttributes:
        """Attributes for the holder of an accepted proofing. Ages are computed here, at issuance, from the
        birth date (unknown birth date: both False); the birth date itself is not carried."""
        if lifetime <= timedelta(0):
            raise ValueError("lifetime must be positive")
        today = today if today is not None else datetime.now(UTC).date()
        return cls(
            verified=True,
            age_over_18=age_at_least(holder.birth_date, 18, today),
            age_over_21=age_at_least(holder.birth_date, 21, today),
            given_name=_nfc(holder.given_name),
            family_name=_nfc(holder.family_name),
            issuing_state=_nfc(holder.issuing_state),
            expires=today + timedelta(days=max(1, lifetime.days)),
        )

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> CredentialAttributes:
        """Inverse of :meth:`to_claims`. Raises ValueError / TypeError on missing, extra or mistyped claims."""
        if not isinstance(claims, dict) or set(claims) != set(ATTRIBUTES):
            raise ValueError(f"claims must have exactly the attributes {', '.join(ATTRIBUTES)}")
        return cls(**{name: claim_value(name, claims[name]) for name in ATTRIBUTES})

    def to_claims(self) -> dict[str, Any]:
        """JSON-friendly ``{name: value}`` in :data:`ATTRIBUTES` order; ``expires`` as an ISO date."""
        return {name: (v.isoformat() if isinstance(v := getattr(self, name), date) else v) for name in ATTRIBUTES}

    def messages(self) -> list[bytes]:
        """The BBS messages, one per attribute, in :data:`ATTRIBUTES` order."""
        return [encode_message(name, getattr(self, name)) for name in ATTRIBUTES]
