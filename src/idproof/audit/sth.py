"""Signed tree heads: Ed25519 (``cryptography``) over a small text body, in the spirit of C2SP checkpoints.

The signed message is exactly these four lines, UTF-8, each ending in ``\\n``::

    idproof-audit/v1
    <size, decimal>
    <root, standard base64 of the 32 bytes>
    <timestamp, RFC 3339 UTC with microseconds, e.g. 2026-01-02T03:04:05.123456Z>

``key_id`` is the first 8 bytes (16 hex digits) of SHA-256 over the raw 32-byte Ed25519 public key: it says
which key signed, it is not trusted for anything (the verifier brings the public key).

Key files: the private key is PKCS#8 PEM (unencrypted, written 0600), the public key SubjectPublicKeyInfo PEM
beside it as ``<file>.pub``. The private key never enters the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

CONTEXT = "idproof-audit/v1"

PublicKeyLike = Ed25519PublicKey | bytes | str | Path


def format_time(t: datetime) -> str:
    """RFC 3339, UTC, microseconds: the one spelling of a time inside signed or hashed data."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)  # the databases hand back UTC; SQLite drops the zone
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> datetime:
    t = datetime.fromisoformat(s)  # Python 3.11 reads a trailing Z
    if t.tzinfo is None:
        raise ValueError(f"time without a zone: {s!r}")
    return t.astimezone(UTC)


def utc(t: datetime) -> datetime:
    """An aware UTC datetime (a naive one, as SQLite returns it, is UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_key(key)).digest()[:8].hex()


def load_public_key(key: PublicKeyLike) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, PEM bytes/text, raw 32 bytes, or a PEM file's path."""
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, Path) or (isinstance(key, str) and not key.lstrip().startswith("-----")):
        key = Path(key).read_bytes()
    if isinstance(key, str):
        key = key.encode()
    if len(key) == 32:
        return Ed25519PublicKey.from_public_bytes(key)
    loaded = serialization.load_pem_public_key(key)
    if not isinstance(loaded, Ed25519PublicKey):
        raise TypeError("the tree head key must be an Ed25519 public key")
    return loaded


def tree_head_message(size: int, root: bytes, timestamp: datetime) -> bytes:
    """The bytes an Ed25519 tree head signature covers (see the module docstring)."""
    if size < 0 or len(root) != 32:
        raise ValueError("a tree head has a size >= 0 and a 32-byte root")
    return f"{CONTEXT}\n{size}\n{base64.b64encode(root).decode()}\n{format_time(timestamp)}\n".encode()


@dataclass(frozen=True)
class SignedTreeHead:
    size: int
    root: bytes
    timestamp: datetime
    signature: bytes
    key_id: str

    def message(self) -> bytes:
        return tree_head_message(self.size, self.root, self.timestamp)

    def verify(self, public_key: PublicKeyLike) -> bool:
        """True when ``signature`` is the given key's Ed25519 signature over this head (and the key ids agree)."""
        key = load_public_key(public_key)
        if self.key_id != key_id_of(key):
            return False
        try:
            key.verify(self.signature, self.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "timestamp": format_time(self.timestamp),
            "signature": base64.b64encode(self.signature).decode(),
            "key_id": self.key_id,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SignedTreeHead:
        try:
            size = obj["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError(f"bad size {size!r}")
            root = bytes.fromhex(obj["root"])
            if len(root) != 32:
                raise ValueError("root is not 32 bytes")
            return cls(size, root, parse_time(obj["timestamp"]), base64.b64decode(obj["signature"], validate=True),
                       str(obj["key_id"]))
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise ValueError(f"not a signed tree head: {e}") from None


class TreeHeadSigner:
    """Signs tree heads with one Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def generate(cls) -> TreeHeadSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | Path) -> TreeHeadSigner:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError(f"{path} is not an Ed25519 private key")
        return cls(key)

    @classmethod
    def load_or_generate(cls, path: str | Path) -> TreeHeadSigner:
        """The key in ``path``; a new one written there (and ``<path>.pub``) when the file does not exist."""
        path = Path(path)
        if path.exists():
            return cls.load(path)
        signer = cls.generate()
        signer.save(path)
        return signer

    def save(self, path: str | Path) -> None:
        """Write the private key (PKCS#8 PEM, mode 0600, never overwriting) and ``<path>.pub``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        Path(str(path) + ".pub").write_bytes(self.public_pem())

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, size: int, root: bytes, timestamp: datetime | None = None) -> SignedTreeHead:
        # microseconds are the precision of the signed text (and of both databases)
        ts = utc(timestamp or datetime.now(UTC))
        return SignedTreeHead(size, bytes(root), ts, self._key.sign(tree_head_message(size, root, ts)), self.key_id)
