"""A face template sealed for the person who owns it: readable only with their recovery secret.

Layout of the sealed blob (big-endian), rendered as ``IDPS:`` + RFC 4648 base32 without padding (upper case
letters and digits only, so a QR code can hold it in its compact alphanumeric mode)::

    header (85 bytes, all of it the AES-GCM associated data)
        format   1   FORMAT (1)
        kid      8   SHA-256(issuer's raw Ed25519 public key)[:8]
        handle  32   the identity handle (HMAC-SHA256, see idproof.registry.handles)
        version  4   the handle's template version (a renewal increments it and revokes the old one)
        issued   8   Unix seconds
        models   4   SHA-256 of the embedder names and their pinned file hashes, [:4]
        salt    16   HKDF salt, random per seal
        nonce   12   AES-GCM nonce, random per seal
    ciphertext      AES-256-GCM(key, nonce, vectors, aad=header), 16-byte tag included
    signature  64   Ed25519 by the issuer over header ‖ ciphertext

    key = HKDF-SHA256(person's secret, salt, info = b"idproof sealed template v1" ‖ handle)

The person's secret is 144 random bits shown once as a recovery code (``new_recovery_code``): a secret that
strong needs no slow password hash, and without it nobody, the issuer included, can read the vectors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import numpy as np
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idproof.errors import IdproofError

if TYPE_CHECKING:
    from idproof.face.embed import Template

__all__ = [
    "FORMAT",
    "PREFIX",
    "Quantization",
    "RecoveryCodeError",
    "SealedBlob",
    "SealedFormatError",
    "SealedHandleMismatch",
    "SealedSecretWrong",
    "SealedSignatureInvalid",
    "SealedTemplateError",
    "issuer_kid",
    "model_tag",
    "new_recovery_code",
    "open_sealed",
    "parse_recovery_code",
    "parse_sealed",
    "seal",
    "unseal",
    "verify_sealed",
]

FORMAT = 1
PREFIX = "IDPS:"
HKDF_INFO = b"idproof sealed template v1"
Quantization = Literal["int8", "float16"]

_HEADER = struct.Struct(">B8s32sIQ4s16s12s")
_SIG_BYTES = 64
_TAG_BYTES = 16
_MAX_CHARS = 16_384  # a sealed template is ~1.1 k characters; refuse anything far bigger before decoding


# --- errors: each one's code is the reason a re-authentication gives ----------------------------------------


class SealedTemplateError(IdproofError):
    code = "sealed_invalid"


class SealedFormatError(SealedTemplateError):
    code = "sealed_malformed"


class SealedSignatureInvalid(SealedTemplateError):
    code = "sealed_signature_invalid"


class SealedHandleMismatch(SealedTemplateError):
    code = "sealed_handle_mismatch"


class SealedSecretWrong(SealedTemplateError):
    code = "sealed_secret_wrong"


class RecoveryCodeError(SealedTemplateError):
    code = "recovery_code_invalid"


# --- the person's secret as a recovery code ---------------------------------------------------------------
#
# 18 random bytes (144 bits) + CRC-16 = 20 bytes = 32 Crockford base32 characters, shown as 8 groups of 4.
# A CRC-16 catches every burst of up to 16 bits, so every single mistyped character (5 bits) and every swap
# of two neighbours (10 bits) is caught for certain, and any other typo with probability 1 - 2^-16.

SECRET_BYTES = 18
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U: nothing to misread
_CROCKFORD_INDEX = {c: i for i, c in enumerate(_CROCKFORD)} | {"O": 0, "I": 1, "L": 1}
_CODE_CHARS = 32


def new_recovery_code() -> str:
    """A fresh secret, as the code the person writes down (``XXXX-XXXX-…``, 8 groups of 4)."""
    return format_recovery_code(secrets.token_bytes(SECRET_BYTES))


def format_recovery_code(secret: bytes) -> str:
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a recovery secret is {SECRET_BYTES} bytes")
    n = int.from_bytes(secret + _crc(secret), "big")
    chars = "".join(_CROCKFORD[(n >> (5 * (_CODE_CHARS - 1 - i))) & 31] for i in range(_CODE_CHARS))
    return "-".join(chars[i : i + 4] for i in range(0, _CODE_CHARS, 4))


def parse_recovery_code(code: str) -> bytes:
    """The secret in a recovery code. Case, spaces and dashes do not matter, O reads as 0 and I / L as 1;
    anything else that is wrong (a missing, extra or mistyped character) raises RecoveryCodeError."""
    fix = "Type the recovery code again exactly as it was given (8 groups of 4 letters and digits)."
    chars = re.sub(r"[\s\-]", "", code).upper()
    if len(chars) != _CODE_CHARS:
        raise RecoveryCodeError(f"The recovery code has {len(chars)} characters; it should have {_CODE_CHARS}.", fix=fix)
    n = 0
    for i, c in enumerate(chars):
        if c not in _CROCKFORD_INDEX:
            raise RecoveryCodeError(f"Character {i + 1} of the recovery code cannot be part of one.", fix=fix)
        n = (n << 5) | _CROCKFORD_INDEX[c]
    raw = n.to_bytes(SECRET_BYTES + 2, "big")
    secret, check = raw[:SECRET_BYTES], raw[SECRET_BYTES:]
    if not secrets.compare_digest(check, _crc(secret)):
        raise RecoveryCodeError("The recovery code has a typo (its check characters do not match).", fix=fix)
    return secret


def _crc(secret: bytes) -> bytes:
    return binascii.crc_hqx(secret, 0xFFFF).to_bytes(2, "big")  # CRC-16/CCITT: error detection, not secrecy


# --- the sealed blob -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedBlob:
    """A parsed sealed template. Everything here is public: the vectors stay encrypted in ``ciphertext``."""

    format: int
    kid: str  # hex
    handle: str  # hex, as the registry writes it
    version: int
    issued_at: datetime
    models: str  # hex model tag
    salt: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    header: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    @property
    def raw(self) -> bytes:
        return self.header + self.ciphertext + self.signature


def issuer_kid(public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8]


def model_tag(models: list[str] | tuple[str, ...]) -> bytes:
    """Which embedders (and which pinned files of them) made the vectors: a template made by another model
    cannot be compared, so a stale one is refused before anything is decrypted."""
    from idproof.face.models import MODELS

    spec = "|".join(f"{m}={MODELS[m].sha256}" for m in sorted(models))
    return hashlib.sha256(spec.encode()).digest()[:4]


def seal(
    template: Template,
    secret: bytes,
    *,
    handle: str,
    version: int,
    signing_key: Ed25519PrivateKey,
    issued_at: datetime | None = None,
    quantization: Quantization = "int8",
) -> str:
    """Encrypt ``template`` under a key only ``secret`` can derive, bound to ``handle`` and ``version``, and
    sign it with the issuer's key. Returns the compact text form (``IDPS:…``)."""
    if len(secret) < 16:
        raise ValueError("a sealing secret must have at least 128 bits")
    if not 1 <= version < 2**32:
        raise ValueError("version must be a positive 32-bit number")
    when = int(issued_at.timestamp()) if issued_at is not None else int(time.time())
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = _HEADER.pack(
        FORMAT,
        issuer_kid(signing_key.public_key()),
        _handle_bytes(handle),
        version,
        when,
        model_tag(tuple(template.vectors)),
        salt,
        nonce,
    )
    ciphertext = AESGCM(_derive_key(secret, salt, handle)).encrypt(nonce, _pack_vectors(template, quantization), header)
    signed = header + ciphertext
    return PREFIX + base64.b32encode(signed + signing_key.sign(signed)).decode("ascii").rstrip("=")


def parse_sealed(text: str) -> SealedBlob:
    """The public fields of a sealed template; raises SealedFormatError for anything that is not one."""
    fix = "Present the sealed template exactly as it was issued (the text starting with IDPS:, or its QR code)."
    body = text.strip()
    if len(body) > _MAX_CHARS or not body.upper().startswith(PREFIX):
        raise SealedFormatError("This is not an idproof sealed template.", fix=fix)
    body = re.sub(r"\s", "", body[len(PREFIX) :]).upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError) as e:
        raise SealedFormatError("The sealed template is damaged (not base32).", fix=fix) from e
    if len(raw) < _HEADER.size + _TAG_BYTES + _SIG_BYTES or raw[0] != FORMAT:
        raise SealedFormatError("The sealed template is truncated or of an unknown format.", fix=fix)
    fmt, kid, handle, version, issued, models, salt, nonce = _HEADER.unpack_from(raw)
    header = raw[: _HEADER.size]
    return SealedBlob(
        fmt,
        kid.hex(),
        handle.hex(),
        version,
        datetime.fromtimestamp(issued, UTC),
        models.hex(),
        salt,
        nonce,
        header,
        raw[_HEADER.size : -_SIG_BYTES],
        raw[-_SIG_BYTES:],
    )


def verify_sealed(blob: SealedBlob, public_key: Ed25519PublicKey, *, expected_handle: str | None = None) -> None:
    """The issuer's signature over the whole blob, then (optionally) whose it is. Needs no secret."""
    fix = "Present the sealed template exactly as it was issued; an edited or foreign one is never accepted."
    if not secrets.compare_digest(bytes.fromhex(blob.kid), issuer_kid(public_key)):
        raise SealedSignatureInvalid("The sealed template was not issued with this service's sealing key.", fix=fix)
    try:
        public_key.verify(blob.signature, blob.header + blob.ciphertext)
    except InvalidSignature as e:
        raise SealedSignatureInvalid("The sealed template's signature does not verify: it was altered.", fix=fix) from e
    if expected_handle is not None and not secrets.compare_digest(blob.handle.encode(), expected_handle.lower().encode()):
        raise SealedHandleMismatch(
            "The sealed template belongs to another identity.", fix="Present the sealed template issued to you."
        )


def open_sealed(blob: SealedBlob, secret: bytes, *, handle: str | None = None) -> Template:
    """Decrypt the vectors. ``handle`` (default: the blob's own) goes into the key and the associated data,
    so a template can only ever be opened as the identity it was sealed to. Call ``verify_sealed`` first:
    after the signature has verified, a failed decryption can only mean a wrong secret."""
    handle = (handle or blob.handle).lower()
    aad = blob.header
    if handle != blob.handle:  # defence in depth: the AAD names the identity we are opening it as
        aad = blob.header[:9] + _handle_bytes(handle) + blob.header[41:]
    try:
        plain = AESGCM(_derive_key(secret, blob.salt, handle)).decrypt(blob.nonce, blob.ciphertext, aad)
    except InvalidTag as e:
        if handle != blob.handle:
            raise SealedHandleMismatch("The sealed template belongs to another identity.", fix="Present the sealed template issued to you.") from e
        raise SealedSecretWrong(
            "The recovery code does not open this sealed template.",
            fix="Use the recovery code given with this sealed template (a renewal issues a new pair).",
        ) from e
    try:
        return _unpack_vectors(plain)
    finally:
        del plain


def unseal(text: str, secret: bytes, *, public_key: Ed25519PublicKey, expected_handle: str | None = None) -> Template:
    """parse + verify + open in one call (crypto only; revocation is the service's database check)."""
    blob = parse_sealed(text)
    verify_sealed(blob, public_key, expected_handle=expected_handle)
    return open_sealed(blob, secret, handle=expected_handle)


# --- internals ---------------------------------------------------------------------------------------------


def _handle_bytes(handle: str) -> bytes:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", handle):
        raise SealedTemplateError("This is not an identity handle.", fix="Pass the 64-hex-character handle of an accepted proofing.")
    return bytes.fromhex(handle)


def _derive_key(secret: bytes, salt: bytes, handle: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=HKDF_INFO + _handle_bytes(handle))
    return hkdf.derive(secret)


# Plaintext: count, then per vector: name length, name, kind, dimension, [int8: float32 scale], values.
# Kind: 1 int8 (symmetric, one scale per vector), 2 float16; +0x80 when the vector was unit length, so the
# unsealed one is scaled back to unit length (cosine embedders score with a plain dot product).
_INT8, _FLOAT16, _UNIT = 1, 2, 0x80


def _pack_vectors(template: Template, quantization: Quantization) -> bytes:
    if not template.vectors or len(template.vectors) > 255:
        raise ValueError("a template needs between 1 and 255 vectors")
    out = [bytes([len(template.vectors)])]
    for name, v in template.vectors.items():
        v = np.asarray(v, dtype=np.float32).ravel()
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: the vector is not finite")
        kind = _INT8 if quantization == "int8" else _FLOAT16
        if abs(float(np.linalg.norm(v)) - 1.0) < 1e-3:
            kind |= _UNIT
        out += [bytes([len(name)]), name.encode("ascii"), struct.pack(">BH", kind, v.size)]
        if quantization == "int8":
            scale = float(np.max(np.abs(v))) / 127.0 or 1.0
            out += [struct.pack(">f", scale), np.clip(np.rint(v / scale), -127, 127).astype(np.int8).tobytes()]
        elif quantization == "float16":
            out.append(v.astype(">f2").tobytes())
        else:
            raise ValueError(f"unknown quantization {quantization!r}")
    return b"".join(out)


def _unpack_vectors(plain: bytes) -> Template:
    from idproof.face.embed import Template  # not at import time: the migrations import this package

    try:
        vectors: dict[str, np.ndarray] = {}
        pos, count = 1, plain[0]
        for _ in range(count):
            n = plain[pos]
            name = plain[pos + 1 : pos + 1 + n].decode("ascii")
            kind, dim = struct.unpack_from(">BH", plain, pos + 1 + n)
            pos += 4 + n
            if kind & 0x7F == _INT8:
                (scale,) = struct.unpack_from(">f", plain, pos)
                q = np.frombuffer(plain, dtype=np.int8, count=dim, offset=pos + 4)
                v = q.astype(np.float32) * np.float32(scale)
                pos += 4 + dim
            elif kind & 0x7F == _FLOAT16:
                v = np.frombuffer(plain, dtype=">f2", count=dim, offset=pos).astype(np.float32)
                pos += 2 * dim
            else:
                raise ValueError(kind)
            if kind & _UNIT:
                v /= np.linalg.norm(v)
            vectors[name] = v
        if pos != len(plain):
            raise ValueError("trailing bytes")
    except (IndexError, ValueError, struct.error, UnicodeDecodeError) as e:
        # authenticated but unreadable: only a future format (or a bug) gets here
        raise SealedFormatError("The sealed template's contents cannot be read.", fix="Re-enrol to get a new one.") from e
    return Template(vectors)
