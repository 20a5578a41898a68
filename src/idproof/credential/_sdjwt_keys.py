"""Private helpers of :mod:`idproof.credential.sdjwt`: keys, algorithms, compact JWS signing and verification.

Signing goes through jwcrypto (``JWA.signing_alg(...).sign`` with a ``JWK``). Verification calls the
``cryptography`` key objects directly: an issuer's keys are imported once and cached (the cache is keyed by a
fingerprint of the key document, so a verifier may pass the same document on every call), and a holder's
``cnf`` key is imported with ``cryptography``'s point validation. The JOSE signature format of ES256 (R || S,
RFC 7518 Section 3.4) is converted to DER with ``cryptography``'s own ``encode_dss_signature``.

Only two algorithms are allowed, each bound to one key type (RFC 8725 Sections 3.1 and 3.2):
ES256 on P-256, and EdDSA on Ed25519.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto.common import JWException
from jwcrypto.jwa import JWA
from jwcrypto.jwk import JWK, JWKSet

from idproof.credential._sdjwt_codec import (
    SdJwtError,
    b64d,
    b64e,
    finite_number,
    json_dumps,
    jwk_thumbprint,
)

ALLOWED_ALGS: frozenset[str] = frozenset({"ES256", "EdDSA"})
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def alg_for_jwk(params: dict[str, Any]) -> str | None:
    """The one JWS algorithm this project uses with a key of this type, or None when the type is not allowed."""
    kty, crv = params.get("kty"), params.get("crv")
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    return None


def minimal_public_jwk(key: JWK) -> dict[str, str]:
    """The RFC 7638 required members of a public key only: no ``kid``, ``use``, ``alg`` or private members, so the
    ``cnf`` claim carries nothing a holder's wallet might have added that could link its credentials."""
    pub = key.export_public(as_dict=True)
    members = ("kty", "crv", "x", "y") if pub.get("kty") == "EC" else ("kty", "crv", "x")
    return {m: pub[m] for m in members}


def _bad_key(reason: str, what: str) -> SdJwtError:
    return SdJwtError(reason, f"{what} is not a P-256 (ES256) or Ed25519 (EdDSA) key.",
                      fix="Use jwcrypto.jwk.JWK.generate(kty='EC', crv='P-256') or (kty='OKP', crv='Ed25519').")


def signing_alg_for(key: Any, *, reason: str, what: str) -> str:
    """Check ``key`` is a jwcrypto private key of an allowed type and return its algorithm."""
    if not isinstance(key, JWK):
        raise SdJwtError(reason, f"{what} must be a jwcrypto.jwk.JWK, not {type(key).__name__}.",
                         fix="Load the key with jwcrypto.jwk.JWK.from_json / from_pem.")
    alg = alg_for_jwk(key)
    if alg is None:
        raise _bad_key(reason, what)
    if not key.has_private:
        raise SdJwtError(reason, f"{what} is a public key; signing needs the private key.",
                         fix="Pass the private JWK (it is only used locally to sign).")
    return alg


def sign_compact(key: JWK, alg: str, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """A JWS Compact Serialization (RFC 7515 Section 7.1) signed by jwcrypto."""
    signing_input = b64e(json_dumps(header).encode("utf-8")) + "." + b64e(json_dumps(payload).encode("utf-8"))
    signature = JWA.signing_alg(alg).sign(key, signing_input.encode("ascii"))
    return signing_input + "." + b64e(signature)


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A public key ready to verify, with the only algorithm it may be used with."""

    alg: str
    key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    kid: str | None = None
    nbf: float | None = None  # validity published in the issuer metadata (seconds since the epoch)
    exp: float | None = None

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        try:
            if self.alg == "ES256":
                # RFC 7518 Section 3.4: R || S, each exactly 32 bytes for P-256
                if len(signature) != 64:
                    return False
                der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                           int.from_bytes(signature[32:], "big"))
                self.key.verify(der, signing_input, _ECDSA_SHA256)  # type: ignore[call-arg]
            else:
                self.key.verify(signature, signing_input)  # type: ignore[call-arg]
        except (InvalidSignature, ValueError):
            return False
        return True


def import_cnf_jwk(jwk: Any) -> tuple[VerifyKey, str]:
    """The holder's key from ``cnf.jwk`` (RFC 7800 Section 3.2) and its RFC 7638 thumbprint.

    The point is validated by ``cryptography`` (on the curve, not the identity). A ``cnf.jwk`` that carries
    private members is refused: an issuer that leaks the holder's private key voids key binding.
    """
    def bad(msg: str) -> SdJwtError:
        return SdJwtError("cnf_malformed", f"cnf.jwk {msg}.",
                          fix="The issuer must put the holder's public P-256 or Ed25519 JWK in cnf.jwk.")

    if not isinstance(jwk, dict):
        raise bad("is not a JSON object")
    if "d" in jwk:
        raise bad("contains private key material ('d')")
    alg = alg_for_jwk(jwk)
    if alg is None:
        raise bad("is not a P-256 or Ed25519 public key")
    try:
        if alg == "ES256":
            x = b64d(jwk.get("x"), reason="cnf_malformed", what="cnf.jwk.x")
            y = b64d(jwk.get("y"), reason="cnf_malformed", what="cnf.jwk.y")
            if len(x) != 32 or len(y) != 32:
                raise bad("has coordinates that are not 32 bytes")
            key: Any = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
        else:
            x = b64d(jwk.get("x"), reason="cnf_malformed", what="cnf.jwk.x")
            if len(x) != 32:
                raise bad("is not a 32-byte Ed25519 key")
            key = ed25519.Ed25519PublicKey.from_public_bytes(x)
    except ValueError:
        raise bad("is not a valid point on its curve") from None
    return VerifyKey(alg=alg, key=key), jwk_thumbprint(jwk)


# --- the issuer's keys ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KeyRing:
    """The usable signature keys of one issuer, by kid. ``issuer`` is set when the document named its issuer
    (JWT VC Issuer Metadata, draft-ietf-oauth-sd-jwt-vc Section 5), and then must equal the credential's ``iss``."""

    issuer: str | None
    keys: dict[str | None, VerifyKey]
    skipped: dict[str, str]  # kid -> why that published key cannot verify (wrong type, use, alg)


def _bad_doc(msg: str) -> SdJwtError:
    return SdJwtError("issuer_keys_invalid", f"The issuer key document {msg}.",
                      fix="Pass a jwcrypto JWK / JWKSet, a JWKS {'keys': [...]}, or the document made by "
                          "sdjwt.issuer_metadata().")


def _number_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    number = finite_number(value)
    if number is None:
        raise _bad_doc(f"has a non-numeric '{name}' on a key")
    return number


def _entry_from_params(params: dict[str, Any], skipped: dict[str, str]) -> VerifyKey | None:
    kid = params.get("kid")
    label = str(kid) if kid is not None else "(no kid)"
    if kid is not None and not isinstance(kid, str):
        raise _bad_doc("has a non-string 'kid'")
    alg = alg_for_jwk(params)
    if alg is None:
        skipped[label] = "its key type is not P-256 or Ed25519"
        return None
    if params.get("use", "sig") != "sig":
        skipped[label] = "its 'use' is not 'sig'"
        return None
    ops = params.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        skipped[label] = "its 'key_ops' do not include 'verify'"
        return None
    published_alg = params.get("alg")
    if published_alg is not None and published_alg != alg:
        skipped[label] = f"its published alg {published_alg!r} is not {alg}"
        return None
    public = {k: params[k] for k in ("kty", "crv", "x", "y") if k in params}
    try:
        pyca = JWK(**public).get_op_key("verify")
    except (JWException, ValueError, TypeError, KeyError):
        raise _bad_doc(f"has a key {label} that jwcrypto cannot import") from None
    return VerifyKey(alg=alg, key=pyca, kid=kid, nbf=_number_or_none(params.get("nbf"), "nbf"),
                     exp=_number_or_none(params.get("exp"), "exp"))


def _ring_from_key_params(issuer: str | None, key_params: list[dict[str, Any]]) -> KeyRing:
    keys: dict[str | None, VerifyKey] = {}
    skipped: dict[str, str] = {}
    for params in key_params:
        if not isinstance(params, dict):
            raise _bad_doc("has a key that is not a JSON object")
        entry = _entry_from_params(params, skipped)
        if entry is None:
            continue
        if entry.kid in keys:
            raise _bad_doc(f"lists kid {entry.kid!r} twice")
        keys[entry.kid] = entry
    if not keys:
        raise _bad_doc("has no P-256 / Ed25519 signature key" + (f" (skipped: {skipped})" if skipped else ""))
    return KeyRing(issuer=issuer, keys=keys, skipped=skipped)


def _check_public_only(params: dict[str, Any]) -> None:
    if any(m in params for m in ("d", "p", "q", "k")):
        raise _bad_doc("contains private key material")


def _ring_from_document(doc: dict[str, Any]) -> KeyRing:
    issuer = None
    if "jwks" in doc or "jwks_uri" in doc or "issuer" in doc:
        issuer = doc.get("issuer")
        if not isinstance(issuer, str) or not issuer:
            raise _bad_doc("has no 'issuer' string")
        if "jwks" not in doc:
            raise _bad_doc("has no 'jwks'" + ("; fetching 'jwks_uri' is the caller's job (this module makes no "
                                              "network calls)" if "jwks_uri" in doc else ""))
        doc = doc["jwks"]
        if not isinstance(doc, dict):
            raise _bad_doc("has a 'jwks' that is not an object")
    if "keys" in doc:
        keys = doc["keys"]
        if not isinstance(keys, list):
            raise _bad_doc("has 'keys' that is not an array")
    elif "kty" in doc:
        keys = [doc]
    else:
        raise _bad_doc("is neither issuer metadata, a JWKS nor a JWK")
    for params in keys:
        if isinstance(params, dict):
            _check_public_only(params)
    return _ring_from_key_params(issuer, keys)


_CACHE: OrderedDict[str, KeyRing] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


def _fingerprint(obj: Any) -> tuple[str, Any]:
    """A cache key for the key document, and a plain-JSON view of it. For jwcrypto objects only the public
    members are used, so private issuer keys passed by mistake never reach the cache or the ring."""
    if isinstance(obj, JWKSet):
        view: Any = {"keys": [k.export_public(as_dict=True) for k in obj["keys"]]}
    elif isinstance(obj, JWK):
        view = obj.export_public(as_dict=True)
    elif isinstance(obj, Mapping):
        view = dict(obj)
    else:
        raise _bad_doc(f"is a {type(obj).__name__}")
    try:
        text = json_dumps_sorted(view)
    except (TypeError, ValueError):
        raise _bad_doc("is not JSON") from None
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), view


def json_dumps_sorted(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


_SAME: dict[int, tuple[Any, Any, KeyRing]] = {}  # id(document) -> (document, snapshot, ring)


def key_ring(issuer_keys: Any) -> KeyRing:
    """Parse (once) and cache the issuer's verification keys.

    Fast path: the very same dict object as last time, still equal to the deep copy taken then (a verifier that
    edits its document in place gets a fresh parse). Otherwise a fingerprint of the document's JSON finds it.
    """
    if type(issuer_keys) is dict:
        hit = _SAME.get(id(issuer_keys))
        if hit is not None and hit[0] is issuer_keys and hit[1] == issuer_keys:
            return hit[2]
        ring = _key_ring(issuer_keys)
        with _CACHE_LOCK:
            if len(_SAME) >= _CACHE_SIZE:
                _SAME.clear()
            _SAME[id(issuer_keys)] = (issuer_keys, copy.deepcopy(issuer_keys), ring)
        return ring
    return _key_ring(issuer_keys)


def _key_ring(issuer_keys: Any) -> KeyRing:
    fp, view = _fingerprint(issuer_keys)
    with _CACHE_LOCK:
        ring = _CACHE.get(fp)
        if ring is not None:
            _CACHE.move_to_end(fp)
            return ring
    if isinstance(issuer_keys, (JWK, JWKSet)):
        ring = _ring_from_key_params(None, view.get("keys", [view]))
    else:
        ring = _ring_from_document(view)
    with _CACHE_LOCK:
        _CACHE[fp] = ring
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return ring
