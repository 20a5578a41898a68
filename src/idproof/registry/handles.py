"""The identity handle: the only way the registry knows a person.

``handle = HMAC-SHA256(registry key, canonical document identity)``. The registry key lives outside the
database (a key file, an environment variable, or a KMS-style callable), so a full copy of the database
cannot turn a known document number into a handle, and handles from two deployments with different keys
cannot be joined.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac

from idproof.document.mrz import MrzResult
from idproof.errors import IdproofError

__all__ = ["DocumentIdentity", "RegistryKey", "RegistryKeyError"]

_DOMAIN = b"idproof/identity-handle/v1"
_KEY_BYTES = 32


class RegistryKeyError(IdproofError):
    code = "registry_key_unavailable"


@dataclass(frozen=True)
class DocumentIdentity:
    """What names a document for the registry: issuing state, document type, number (or a chip's
    stable identifier). The type is the first letter of the document code (P, I, A, C, V): ICAO leaves
    the second letter to the issuer, and it must not split one document into two identities."""

    issuing_state: str
    document_type: str
    document_number: str = field(repr=False)  # personal data: kept out of repr and logs

    @classmethod
    def from_mrz(cls, mrz: MrzResult) -> DocumentIdentity:
        return cls(mrz.issuing_state, (mrz.document_code or "?")[0], mrz.document_number)

    def canonical(self) -> bytes:
        parts = (self.issuing_state.upper(), self.document_type.upper(), self.document_number.upper().replace("<", ""))
        return b"\x1f".join([_DOMAIN, *(p.encode("ascii", "strict") for p in parts)])


class RegistryKey:
    """The secret behind identity handles. Construct with ``load`` (``file:PATH``, ``env:VAR`` or
    ``kms:module:function``), ``from_file``, ``from_env`` or ``generate_file``; never from the database."""

    def __init__(self, key: bytes | Callable[[bytes], bytes], *, key_id: str | None = None) -> None:
        if isinstance(key, bytes):
            if len(key) < _KEY_BYTES:
                raise RegistryKeyError(
                    f"The registry key is {len(key)} bytes; at least {_KEY_BYTES} are needed.",
                    fix="Generate one with `idproof registry keygen PATH`.",
                )
            secret = key

            def mac(message: bytes) -> bytes:
                h = hmac.HMAC(secret, hashes.SHA256())
                h.update(message)
                return h.finalize()

            self._mac = mac
            # key id: a hash of a MAC, so the id reveals nothing about the key itself
            self.key_id = key_id or hashlib.sha256(mac(b"idproof/key-id")).hexdigest()[:16]
        else:
            self._mac = key  # KMS-style: the key never enters this process
            self.key_id = key_id or hashlib.sha256(key(b"idproof/key-id")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"RegistryKey(key_id={self.key_id!r})"

    def handle(self, identity: DocumentIdentity) -> str:
        return self._mac(identity.canonical()).hex()

    # --- where keys come from ---------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> RegistryKey:
        p = Path(path)
        try:
            raw = p.read_bytes().strip()
        except OSError as e:
            raise RegistryKeyError(
                f"The registry key file {p.name!r} cannot be read ({type(e).__name__}).",
                fix="Point IDPROOF_REGISTRY_KEY at the key file, or create one with `idproof registry keygen PATH`.",
            ) from e
        return cls(_decode(raw, f"key file {p.name!r}"))

    @classmethod
    def from_env(cls, var: str = "IDPROOF_REGISTRY_KEY_B64") -> RegistryKey:
        value = os.environ.get(var)
        if not value:
            raise RegistryKeyError(f"${var} is not set.", fix=f"Set {var} to a base64 32-byte key.")
        return cls(_decode(value.encode(), f"${var}"))

    @classmethod
    def load(cls, spec: str) -> RegistryKey:
        """``file:PATH`` | ``env:VAR`` | ``kms:module:function`` (function(message) -> HMAC bytes)."""
        kind, _, rest = spec.partition(":")
        if kind == "file" and rest:
            return cls.from_file(rest)
        if kind == "env" and rest:
            return cls.from_env(rest)
        if kind == "kms" and ":" in rest:
            module, func = rest.rsplit(":", 1)
            try:
                fn = getattr(importlib.import_module(module), func)
            except (ImportError, AttributeError) as e:
                raise RegistryKeyError(f"KMS provider {rest!r} cannot be imported.", fix="Check the module:function name.") from e
            return cls(fn)
        raise RegistryKeyError(f"Unknown registry key source {spec!r}.", fix="Use file:PATH, env:VAR or kms:module:function.")

    @classmethod
    def generate_file(cls, path: str | os.PathLike) -> RegistryKey:
        """Write a new random key (base64, mode 0600). Refuses to overwrite: a new key orphans every handle."""
        p = Path(path)
        key = secrets.token_bytes(_KEY_BYTES)
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as e:
            raise RegistryKeyError(
                f"{p.name!r} already exists; a new key would orphan every handle made with the old one.",
                fix="Keep the existing key, or choose another path.",
            ) from e
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(key) + b"\n")
        return cls(key)


def _decode(raw: bytes, what: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as e:
        raise RegistryKeyError(f"The {what} is not base64.", fix="Generate a key with `idproof registry keygen PATH`.") from e
