"""Private helpers of :mod:`idproof.credential.sdjwt`: the error type, strict base64url / JSON, digests.

Everything here is encoding, not cryptography: hashing is hashlib's SHA-256, randomness is :mod:`secrets`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import secrets
from typing import Any

from idproof.errors import IdproofError


class SdJwtError(IdproofError):
    """An SD-JWT VC was rejected, or could not be issued / presented.

    ``reason`` is a stable, machine-readable code (``"unreferenced_disclosure"``, ``"kb_stale"``, ...);
    ``message`` says what is wrong and ``fix`` what the caller (issuer, holder or verifier) should change.
    The text never contains claim values, salts or keys: it may end up in logs.
    """

    code = "sdjwt_rejected"

    def __init__(self, reason: str, message: str, *, fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.reason = reason
        self.args = (f"{reason}: {message} {fix}".strip(),)

    def __repr__(self) -> str:
        return f"SdJwtError(reason={self.reason!r}, message={self.message!r})"


SdJwtError.__module__ = "idproof.credential.sdjwt"

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64e(data: bytes) -> str:
    """base64url without padding (RFC 7515 Section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str, *, reason: str, what: str) -> bytes:
    """Strict base64url decoding: the URL-safe alphabet only, no padding, no whitespace, canonical trailing bits.

    A non-canonical encoding would let one value travel as several strings; refusing it keeps every part of a
    presentation single-valued.
    """
    if not isinstance(text, str) or _B64URL.fullmatch(text) is None or len(text) % 4 == 1:
        raise SdJwtError(reason, f"{what} is not base64url (RFC 7515 Section 2: URL-safe alphabet, no padding).",
                         fix="Send the value exactly as it was encoded by its signer.")
    rest = len(text) % 4
    if rest and _ALPHABET.index(text[-1]) & (0x0F if rest == 2 else 0x03):
        # the unused low bits of the last character must be zero (RFC 4648 Section 3.5)
        raise SdJwtError(reason, f"{what} is a non-canonical base64url encoding.",
                         fix="Send the value exactly as it was encoded by its signer.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the regex and length test already exclude this
        raise SdJwtError(reason, f"{what} is not base64url.", fix="Send the value exactly as encoded.") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_loads(raw: bytes, *, reason: str, what: str) -> Any:
    """RFC 8259 JSON from UTF-8 bytes, refusing duplicate member names (RFC 7515 Section 5.2 / RFC 8725 Section
    3.6 ambiguity) and NaN / Infinity."""
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SdJwtError(reason, f"{what} is not valid UTF-8 JSON (or repeats a member name).",
                         fix="Encode it as UTF-8 JSON with unique member names.") from None


def json_dumps(value: Any) -> str:
    """Compact JSON, UTF-8 characters kept as they are (RFC 9901 Section 4.2.1 allows any equivalent encoding)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def sha256_b64(text: str) -> str:
    """base64url(SHA-256(US-ASCII bytes of ``text``)): the digest of a Disclosure (RFC 9901 Section 4.2.3) and
    the ``sd_hash`` of a KB-JWT (Section 4.3.1). Callers pass base64url / compact-JWS text, which is ASCII."""
    return b64e(hashlib.sha256(text.encode("ascii")).digest())


def new_salt() -> str:
    """128 bits from the OS CSPRNG, base64url-encoded (RFC 9901 Section 4.2.1 and Section 9.3)."""
    return b64e(secrets.token_bytes(16))


def new_decoy_digest() -> str:
    """A decoy digest: the hash of a fresh random value (RFC 9901 Section 4.2.5), indistinguishable from a real one."""
    return b64e(hashlib.sha256(secrets.token_bytes(32)).digest())


def jwk_thumbprint(public_jwk: dict[str, str]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint of a public EC / OKP key: the required members, lexicographic order,
    no whitespace."""
    kty = public_jwk.get("kty")
    members = ("crv", "kty", "x", "y") if kty == "EC" else ("crv", "kty", "x")
    canonical = json.dumps({m: public_jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64e(hashlib.sha256(canonical.encode("utf-8")).digest())


def finite_number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (a bool, a string, NaN, infinity, an int too large)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
