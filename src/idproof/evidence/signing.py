"""Signing and verifying evidence records: compact JWS, EdDSA (Ed25519), via jwcrypto.

Protected header, exactly: ``{"alg": "EdDSA", "kid": <RFC 7638 JWK thumbprint>, "typ": "idproof-evidence+jws"}``;
payload: the record's canonical JSON (``EvidenceRecord.to_json``). The verifier brings the public key(s):
nothing in the token is trusted before the signature checks, and the header is checked before any key is
used (``alg: none`` or an HMAC ``alg`` with the public key as secret never reach a verify call).

Key file: PKCS#8 PEM, unencrypted, written 0600 and never overwritten; the private key never enters the
database. Publish ``public_pem()`` or ``public_jwk()`` (its ``kid`` is the thumbprint verifiers match on).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwcrypto.common import JWException
from jwcrypto.jwk import JWK, JWKSet
from jwcrypto.jws import JWS, InvalidJWSSignature

from idproof.evidence.record import EvidenceError, EvidenceRecord

ALG = "EdDSA"
TYP = "idproof-evidence+jws"
_HEADER_KEYS = {"alg", "kid", "typ"}
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")

PublicKeys = JWK | JWKSet | Mapping[str, Any] | bytes | str | os.PathLike


class EvidenceKey:
    """The service's Ed25519 evidence-signing key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise EvidenceError("bad_key", "the evidence key must be an Ed25519 private key.")
        self._private = private_key
        self._jwk = JWK.from_pyca(private_key)
        self.kid = self._jwk.thumbprint()  # RFC 7638, SHA-256, base64url

    def __repr__(self) -> str:  # a private key: never in a traceback or a log line
        return f"EvidenceKey(kid={self.kid!r})"

    @classmethod
    def generate(cls) -> EvidenceKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike) -> EvidenceKey:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as e:
            raise EvidenceError("bad_key", f"cannot read an evidence key from {path} ({type(e).__name__}).",
                                fix="Point to the PKCS#8 PEM file `idproof evidence keygen` wrote.") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise EvidenceError("bad_key", f"{path} is not an Ed25519 private key.", fix="Make one with `idproof evidence keygen PATH`.")
        return cls(key)

    def save(self, path: str | os.PathLike) -> None:
        """Write the private key as PKCS#8 PEM, mode 0600; an existing file is never overwritten."""
        path = Path(path)
        pem = self._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise EvidenceError("bad_key", f"{path} already exists; not overwriting a key.",
                                fix="Choose a new path, or move the old key away if you really mean to replace it.") from None
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    def public_pem(self) -> bytes:
        return self._private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (``kty``, ``crv``, ``x``) with ``kid`` (its thumbprint), ``alg`` and ``use``."""
        return {**self._jwk.export_public(as_dict=True), "kid": self.kid, "alg": ALG, "use": "sig"}

    def sign(self, record: EvidenceRecord) -> str:
        """The record as a compact JWS (EdDSA, this key's kid, typ idproof-evidence+jws)."""
        token = JWS(record.to_json().encode("utf-8"))
        token.add_signature(self._jwk, alg=ALG, protected=json.dumps({"alg": ALG, "kid": self.kid, "typ": TYP}))
        return token.serialize(compact=True)


def load_public_keys(keys: PublicKeys) -> dict[str, JWK]:
    """Ed25519 public keys by RFC 7638 thumbprint, from a JWK, a JWK set (others in it are skipped), a JWK /
    JWKS dict or JSON text, PEM (public or private: only its public half is used), or a path to any of those."""
    found: list[JWK] = []
    try:
        if isinstance(keys, JWKSet):
            found = list(keys["keys"])
        elif isinstance(keys, JWK):
            found = [keys]
        elif isinstance(keys, Mapping):
            found = _from_json(json.dumps(dict(keys)))
        elif isinstance(keys, (bytes, str)) and _looks_inline(keys):
            text = keys.decode() if isinstance(keys, bytes) else keys
            found = [JWK.from_pem(text.encode())] if text.lstrip().startswith("-----BEGIN") else _from_json(text)
        elif isinstance(keys, (str, os.PathLike)):
            data = Path(keys).read_bytes()
            if not _looks_inline(data):
                raise ValueError("the file holds neither PEM nor JSON")
            return load_public_keys(data)
        else:
            raise TypeError(f"unsupported key type {type(keys).__name__}")
    except (OSError, ValueError, TypeError, KeyError, JWException) as e:
        raise EvidenceError("bad_public_key", f"cannot read the public key ({e}).",
                            fix="Give the service's evidence public key: PEM, a JWK or a JWK set (file or value).") from None
    out = {}
    for k in found:
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519":
            pub = JWK(**k.export_public(as_dict=True))
            out[pub.thumbprint()] = pub
    if not out:
        raise EvidenceError("bad_public_key", "no Ed25519 public key among the keys given.",
                            fix="Give the service's evidence public key (Ed25519), e.g. from `idproof evidence keygen`.")
    return out


def verify_evidence(jws: str | bytes, public_keys: PublicKeys) -> EvidenceRecord:
    """The record inside ``jws`` once its header, signature and payload all check; else ``EvidenceError``
    with ``reason`` one of malformed, alg_not_eddsa, wrong_typ, unknown_kid, bad_signature, invalid_record
    (bad_public_key for the key argument)."""
    keys = load_public_keys(public_keys)
    token, header = _split(jws)
    if "alg" not in header:
        raise _malformed("header has no alg")
    if header["alg"] != ALG:
        raise EvidenceError("alg_not_eddsa", f"header alg is {_short(header['alg'])}, not {ALG!r}.",
                            fix="Evidence is signed with EdDSA only; this token was not made by an idproof service.")
    if header.get("typ") != TYP:
        raise EvidenceError("wrong_typ", f"header typ is {_short(header.get('typ'))}, not {TYP!r}.",
                            fix="This is not an idproof evidence token (another kind of JWS).")
    if set(header) != _HEADER_KEYS or not isinstance(header["kid"], str):
        raise _malformed(f"header parameters must be exactly alg, kid, typ (got {_short(sorted(header))})")
    key = keys.get(header["kid"])
    if key is None:
        raise EvidenceError("unknown_kid", f"no given public key has kid {_short(header['kid'])}.",
                            fix="Verify with the public key the service published for the time the record was issued.")
    jws_obj = JWS()
    jws_obj.allowed_algs = [ALG]
    try:
        jws_obj.deserialize(token)
        jws_obj.verify(key, alg=ALG)
    except InvalidJWSSignature:
        raise EvidenceError("bad_signature", "the signature does not verify: the record was altered or not signed by this key.",
                            fix="Do not rely on this copy; ask the service for its record again.") from None
    except JWException as e:
        raise _malformed(f"not a compact JWS ({e})") from None
    return EvidenceRecord.from_json(jws_obj.payload)


def unverified_parts(jws: str | bytes) -> tuple[dict[str, Any], Any]:
    """The header and payload of a token, NOT VERIFIED (for display only; never trust them)."""
    token, header = _split(jws)
    payload = _b64decode(token.split(".")[1])
    try:
        return header, json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("payload is not JSON") from None


def _split(jws: str | bytes) -> tuple[str, dict[str, Any]]:
    if isinstance(jws, bytes):
        try:
            jws = jws.decode("ascii")
        except UnicodeDecodeError:
            raise _malformed("not ASCII") from None
    if not isinstance(jws, str):
        raise _malformed("not a string")
    token = jws.strip()
    parts = token.split(".")
    if len(parts) != 3 or not all(_B64URL.match(p) for p in parts) or not parts[0] or not parts[1]:
        raise _malformed("not three base64url parts separated by dots")
    try:
        header = json.loads(_b64decode(parts[0]))
    except (ValueError, UnicodeDecodeError):
        raise _malformed("header is not JSON") from None
    if not isinstance(header, dict):
        raise _malformed("header is not a JSON object")
    return token, header


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise _malformed("bad base64url") from None


def _short(value: Any) -> str:
    """A header value for a message: it comes from the token, so it is cut short before it reaches a log."""
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


def _malformed(why: str) -> EvidenceError:
    return EvidenceError("malformed", f"not an evidence token: {why}.",
                         fix="The file must hold the compact JWS the service issued (three dot-separated parts).")


def _looks_inline(v: bytes | str) -> bool:
    s = v.lstrip()
    return s.startswith(b"-----BEGIN" if isinstance(s, bytes) else "-----BEGIN") or s[:1] in (b"{", "{")


def _from_json(text: str) -> list[JWK]:
    obj = json.loads(text)
    if isinstance(obj, dict) and "keys" in obj:
        return list(JWKSet.from_json(text)["keys"])
    return [JWK.from_json(text)]
