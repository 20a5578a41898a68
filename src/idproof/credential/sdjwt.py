"""SD-JWT VC: batches of once-only, selectively disclosable, key-bound credentials.

Formats: RFC 9901 (Selective Disclosure for JWTs, "SD-JWT"; section numbers below are the RFC's, which match
draft-ietf-oauth-selective-disclosure-jwt-22) and draft-ietf-oauth-sd-jwt-vc (SD-JWT VC: ``typ`` ``dc+sd-jwt``,
``vct``, the JWT VC Issuer Metadata document).

Three roles, three functions::

    creds = sdjwt.issue_batch(issuer_key, iss=..., kid=..., vct=..., claims={...},
                              holder_keys=[k1.public, k2.public, ...], lifetime=timedelta(days=30))
    pres = sdjwt.present(creds[0], k1, disclose=["age_over_18"], aud="https://rp.example", nonce=n)
    result = sdjwt.verify(pres, sdjwt.issuer_metadata([issuer_key], iss), aud="https://rp.example", nonce=n)

Privacy design (RFC 9901 Section 10.1, batch issuance): every credential of a batch has its own holder key, its
own 128-bit salts and decoy digests, sorted digest arrays, and ``iat``/``nbf``/``exp`` floored to a common grid
(one hour by default), so that two verifiers who each see one credential of the batch share no value that links
them, except the claims the holder chose to disclose and what the issuer has in common for every holder (iss,
vct, kid). Each credential is meant to be presented once: a verifier that wants to enforce that can store
``VerifiedPresentation.credential_hash`` until the credential expires.

Every user claim is selectively disclosable, recursively: the members of an object and the elements of an array
are disclosures of their own (RFC 9901 Section 4.2.6), so a holder can reveal ``address.locality`` without the
rest of ``address``.

Crypto: JWS/JWK via jwcrypto (signing) and ``cryptography`` (verifying with cached keys), SHA-256 via hashlib,
randomness via :mod:`secrets`. Allowed algorithms: ES256 (P-256) and EdDSA (Ed25519), nothing else.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jwcrypto.jwk import JWK, JWKSet

from idproof.credential._sdjwt_codec import (
    SdJwtError,
    b64d,
    b64e,
    finite_number,
    json_dumps,
    json_loads,
    jwk_thumbprint,
    new_decoy_digest,
    new_salt,
    sha256_b64,
)
from idproof.credential._sdjwt_keys import (
    ALLOWED_ALGS,
    VerifyKey,
    alg_for_jwk,
    import_cnf_jwk,
    key_ring,
    minimal_public_jwk,
    sign_compact,
    signing_alg_for,
)
from idproof.credential._sdjwt_process import (
    Node,
    Processor,
    all_disclosures,
    holder_tree,
    index_disclosures,
)

__all__ = [
    "DEFAULT_ALWAYS_VISIBLE",
    "SdJwtError",
    "VerifiedPresentation",
    "issue_batch",
    "issuer_metadata",
    "present",
    "verify",
]

TYP = "dc+sd-jwt"
LEGACY_TYP = "vc+sd-jwt"  # draft-ietf-oauth-sd-jwt-vc Section 3.2.1: accept both for a transition period
KB_TYP = "kb+jwt"  # RFC 9901 Section 4.3
SD_ALG = "sha-256"

DEFAULT_ALWAYS_VISIBLE: tuple[str, ...] = ("iss", "vct", "iat", "exp", "nbf", "cnf")
# draft-ietf-oauth-sd-jwt-vc Section 3.2.2.2: these MUST NOT be selectively disclosed. A verifier refuses them in
# Disclosures at the top level even when the issuer left the plaintext claim out.
NEVER_DISCLOSED = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status", "_sd_alg"})
_GENERATED = ("iss", "vct", "iat", "nbf", "exp", "cnf")  # set by issue_batch, not by the caller's claims
_RESERVED_NAMES = frozenset({"_sd", "...", "_sd_alg"})  # RFC 9901 Section 4.1 item 7, at every level
_DECOY_BUCKET = 4  # digests per _sd array / array are padded to a multiple of this, with at least one decoy

MAX_PRESENTATION_CHARS = 512 * 1024
MAX_DISCLOSURES = 1024


@dataclass(frozen=True, slots=True)
class VerifiedPresentation:
    """What a verifier may use after :func:`verify` returned.

    ``claims`` holds exactly the user claims the holder disclosed (plus any the issuer made always visible),
    without the SD-JWT VC structure claims (iss, vct, iat, nbf, exp, cnf), which have fields of their own.
    """

    claims: dict[str, Any]
    iss: str
    vct: str
    exp: datetime
    iat: datetime | None
    nbf: datetime | None
    kid: str | None
    key_bound: bool  # a KB-JWT was present and verified
    holder_thumbprint: str | None  # RFC 7638 SHA-256 thumbprint of cnf.jwk (None when there is no cnf)
    credential_hash: str  # base64url SHA-256 of the issuer-signed JWT: the same for every use of one credential


# --- time --------------------------------------------------------------------------------------------------------

def _timestamp(now: datetime | None) -> float:
    if now is None:
        return time.time()
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime (e.g. datetime.now(timezone.utc)) or None")
    return now.timestamp()


def _dt(ts: float) -> datetime:
    try:
        return datetime.fromtimestamp(ts, tz=UTC)
    except (OverflowError, OSError, ValueError):  # beyond year 1..9999: a NumericDate may be any JSON number
        return (datetime.max if ts > 0 else datetime.min).replace(tzinfo=UTC)


def _seconds(delta: timedelta, name: str, *, positive: bool = True) -> float:
    if not isinstance(delta, timedelta):
        raise TypeError(f"{name} must be a datetime.timedelta")
    s = delta.total_seconds()
    if s < 0 or (positive and s == 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'zero or positive'}, got {delta}")
    return s


# --- issuance ------------------------------------------------------------------------------------------------------

def _check_claim_names(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for name, sub in value.items():
            if not isinstance(name, str):
                raise TypeError(f"claim names must be strings; {where} has {name!r}")
            if name in _RESERVED_NAMES:
                raise ValueError(f"{where}.{name}: the names _sd, '...' and _sd_alg are reserved by RFC 9901 "
                                 "Section 4.1; rename the claim")
            _check_claim_names(sub, f"{where}.{name}")
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _check_claim_names(sub, f"{where}[{i}]")


def _decoys(n_real: int) -> int:
    """Pad to the next multiple of the bucket, with at least one decoy (RFC 9901 Sections 4.2.5 and 10.4): a
    verifier learns the number of hidden claims only to within the bucket."""
    if n_real == 0:
        return 0
    return math.ceil((n_real + 1) / _DECOY_BUCKET) * _DECOY_BUCKET - n_real


class _Concealer:
    """Turns one credential's claims into SD-JWT form with fresh salts and decoys (RFC 9901 Section 4.2)."""

    def __init__(self) -> None:
        self.disclosures: list[str] = []

    def disclose(self, content: list[Any]) -> str:
        text = b64e(json_dumps(content).encode("utf-8"))
        self.disclosures.append(text)
        return sha256_b64(text)

    def value(self, value: Any) -> Any:
        if isinstance(value, dict) and value:
            return self.object(value, visible=frozenset())
        if isinstance(value, list) and value:
            return self.array(value)
        return value

    def object(self, obj: Mapping[str, Any], *, visible: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        digests: list[str] = []
        for name, value in obj.items():
            if name in visible:
                out[name] = value
            else:
                digests.append(self.disclose([new_salt(), name, self.value(value)]))
        digests += [new_decoy_digest() for _ in range(_decoys(len(digests)))]
        if digests:
            # RFC 9901 Section 4.2.4.1: hide the original order; sorted digests of random salts are a random order
            out["_sd"] = sorted(digests)
        return out

    def array(self, arr: Sequence[Any]) -> list[Any]:
        items: list[Any] = [{"...": self.disclose([new_salt(), self.value(v)])} for v in arr]
        for _ in range(_decoys(len(items))):
            # decoys go at random places; the real elements keep their order (RFC 9901 Section 4.2.4.2)
            items.insert(secrets.randbelow(len(items) + 1), {"...": new_decoy_digest()})
        return items


def issue_batch(issuer_key: JWK, *, iss: str, kid: str, vct: str, claims: Mapping[str, Any],
                holder_keys: Sequence[JWK], lifetime: timedelta, now: datetime | None = None,
                always_visible: tuple[str, ...] = DEFAULT_ALWAYS_VISIBLE,
                time_granularity: timedelta = timedelta(hours=1)) -> list[str]:
    """Issue one once-only SD-JWT VC per holder public key, all with the same claims.

    Every user claim is selectively disclosable (recursively into objects and arrays) unless its name is in
    ``always_visible``; ``iss``, ``vct``, ``nbf``, ``exp`` and ``cnf`` are always plaintext
    (draft-ietf-oauth-sd-jwt-vc Section 3.2.2.2), ``iat`` too unless left out of ``always_visible``.
    ``iat`` and ``nbf`` are ``now`` floored to ``time_granularity``; ``exp`` is ``now + lifetime`` floored the
    same way, so it is never later than asked and every credential of a batch (and of every batch issued in the
    same period) carries the same times (RFC 9901 Section 10.1).

    Returns the SD-JWTs as issued (``<issuer-signed JWT>~<Disclosure>~...~``), in the order of ``holder_keys``.
    """
    alg = signing_alg_for(issuer_key, reason="issuer_key_invalid", what="issuer_key")
    for name, val in (("iss", iss), ("kid", kid), ("vct", vct)):
        if not isinstance(val, str) or not val:
            raise ValueError(f"{name} must be a non-empty string")
    own_kid = issuer_key.get("kid")
    if own_kid is not None and own_kid != kid:
        raise ValueError(f"kid {kid!r} differs from the issuer key's own kid {own_kid!r}; publish and sign with one")
    if not isinstance(claims, Mapping):
        raise TypeError("claims must be a mapping of claim names to JSON values")
    _check_claim_names(dict(claims), "claims")
    clash = sorted(set(claims) & set(_GENERATED))
    if clash:
        raise ValueError(f"claims {clash} are set by issue_batch itself (iss, vct, iat, nbf, exp, cnf); remove them")
    try:
        json_dumps(dict(claims))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"claims must be JSON values (str, int, float, bool, None, list, dict): {exc}") from None
    visible = frozenset(always_visible)
    hidden_required = sorted({"iss", "vct", "exp", "nbf", "cnf"} - visible)
    if hidden_required:
        raise ValueError(f"{hidden_required} must stay in always_visible: draft-ietf-oauth-sd-jwt-vc Section "
                         "3.2.2.2 forbids disclosing them selectively")
    visible |= {"status", "vct#integrity"}
    if isinstance(holder_keys, JWK) or not holder_keys:
        raise ValueError("holder_keys must be a non-empty list of holder public keys, one per credential")
    holders: list[dict[str, str]] = []
    thumbprints: set[str] = set()
    for i, hk in enumerate(holder_keys):
        if not isinstance(hk, JWK) or alg_for_jwk(hk) is None:
            raise SdJwtError("holder_key_invalid", f"holder_keys[{i}] is not a P-256 or Ed25519 jwcrypto JWK.",
                             fix="Have each wallet send a fresh P-256 (ES256) or Ed25519 (EdDSA) public key.")
        cnf_jwk = minimal_public_jwk(hk)
        tp = jwk_thumbprint(cnf_jwk)
        if tp in thumbprints:
            raise ValueError(f"holder_keys[{i}] repeats an earlier key: one fresh key per credential, or the batch "
                             "is linkable through cnf (RFC 9901 Section 10.1)")
        thumbprints.add(tp)
        holders.append(cnf_jwk)
    life = _seconds(lifetime, "lifetime")
    grid = _seconds(time_granularity, "time_granularity")
    if life < grid:
        raise ValueError(f"lifetime {lifetime} is shorter than time_granularity {time_granularity}; the floored "
                         "exp could be in the past")
    now_ts = _timestamp(now)
    iat = int(math.floor(now_ts / grid) * grid)
    exp = int(math.floor((now_ts + life) / grid) * grid)

    header = {"alg": alg, "typ": TYP, "kid": kid}
    user_visible = {k: v for k, v in claims.items() if k in visible}
    user_hidden = {k: v for k, v in claims.items() if k not in visible}
    out: list[str] = []
    for cnf_jwk in holders:
        concealer = _Concealer()
        top_hidden = dict(user_hidden)
        payload: dict[str, Any] = {"iss": iss, "vct": vct}
        if "iat" in visible:
            payload["iat"] = iat
        else:
            top_hidden = {"iat": iat, **top_hidden}
        payload.update({"nbf": iat, "exp": exp, "cnf": {"jwk": cnf_jwk}})
        payload.update(user_visible)
        payload.update(concealer.object(top_hidden, visible=frozenset()))
        payload["_sd_alg"] = SD_ALG
        jwt = sign_compact(issuer_key, alg, header, payload)
        out.append(jwt + "~" + "".join(d + "~" for d in sorted(concealer.disclosures)))
    return out


def issuer_metadata(keys: Sequence[JWK], iss: str, *, not_before: datetime | None = None,
                    not_after: datetime | None = None,
                    validity: Mapping[str, tuple[datetime, datetime]] | None = None,
                    now: datetime | None = None) -> dict[str, Any]:
    """The JWT VC Issuer Metadata document (draft-ietf-oauth-sd-jwt-vc Section 5) to publish at
    ``/.well-known/jwt-vc-issuer``: ``{"issuer": iss, "jwks": {"keys": [...]}}``, each key public only, with
    ``kid``, ``alg``, ``use`` and its validity window ``nbf`` / ``exp`` (RFC 9901 Section 9.8: verifiers must not
    use expired keys). :func:`verify` accepts this document as ``issuer_keys``.

    Validity defaults to ``not_before`` = today 00:00 UTC and ``not_after`` = one year later; ``validity`` maps
    a kid to its own (not_before, not_after). A key's ``not_after`` should be no earlier than the ``exp`` of the
    last credential it signs.
    """
    if not isinstance(iss, str) or not iss:
        raise ValueError("iss must be a non-empty string")
    if isinstance(keys, JWK) or not keys:
        raise ValueError("keys must be a non-empty list of issuer JWKs")
    now_ts = _timestamp(now)
    default_nbf = not_before if not_before is not None else _dt(math.floor(now_ts / 86400) * 86400)
    default_exp = not_after if not_after is not None else default_nbf + timedelta(days=365)
    published: list[dict[str, Any]] = []
    kids: set[str] = set()
    for i, key in enumerate(keys):
        if not isinstance(key, JWK) or alg_for_jwk(key) is None:
            raise SdJwtError("issuer_key_invalid", f"keys[{i}] is not a P-256 or Ed25519 jwcrypto JWK.",
                             fix="Publish only ES256 (P-256) or EdDSA (Ed25519) keys.")
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"keys[{i}] has no kid; set one (JWK.generate(..., kid='...')) and sign with it")
        if kid in kids:
            raise ValueError(f"kid {kid!r} appears twice")
        kids.add(kid)
        nbf, exp = (validity or {}).get(kid, (default_nbf, default_exp))
        nbf_ts, exp_ts = _timestamp(nbf), _timestamp(exp)
        if exp_ts <= nbf_ts:
            raise ValueError(f"key {kid!r}: not_after must be later than not_before")
        published.append({**minimal_public_jwk(key), "kid": kid, "alg": alg_for_jwk(key), "use": "sig",
                          "nbf": int(nbf_ts), "exp": int(exp_ts)})
    return {"issuer": iss, "jwks": {"keys": published}}


# --- parsing -------------------------------------------------------------------------------------------------------

def _split(sd_jwt: str, *, what: str, reason: str) -> tuple[str, list[str], str]:
    """RFC 9901 Section 4: ``<JWT>~<D1>~...~<Dn>~`` plus, for an SD-JWT+KB, the KB-JWT after the last ``~``."""
    if not isinstance(sd_jwt, str):
        raise SdJwtError(reason, f"The {what} is a {type(sd_jwt).__name__}, not a string.",
                         fix="Pass the compact serialization as text.")
    if len(sd_jwt) > MAX_PRESENTATION_CHARS:
        raise SdJwtError("too_large", f"The {what} is longer than {MAX_PRESENTATION_CHARS} characters.",
                         fix="Disclose fewer claims.")
    parts = sd_jwt.split("~")
    if len(parts) < 2:
        raise SdJwtError(reason, f"The {what} has no '~': an SD-JWT is <issuer-signed JWT>~<Disclosures>~ "
                                 "[<KB-JWT>] (RFC 9901 Section 4).",
                         fix="Send the whole SD-JWT, not only its issuer-signed JWT.")
    disclosures = parts[1:-1]
    if len(disclosures) > MAX_DISCLOSURES:
        raise SdJwtError("too_large", f"The {what} has more than {MAX_DISCLOSURES} Disclosures.",
                         fix="Disclose fewer claims.")
    if any(d == "" for d in disclosures):
        raise SdJwtError("disclosure_malformed", f"The {what} has an empty Disclosure ('~~').",
                         fix="Separate the parts with a single '~' (RFC 9901 Section 4).")
    return parts[0], disclosures, parts[-1]


def _parse_jws(token: str, *, reason: str, what: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    segments = token.split(".")
    if len(segments) != 3:
        raise SdJwtError(reason, f"The {what} is not a JWS Compact Serialization (header.payload.signature).",
                         fix="Send it exactly as it was signed (RFC 7515 Section 7.1).")
    header = json_loads(b64d(segments[0], reason=reason, what=f"The {what} header"), reason=reason,
                        what=f"The {what} header")
    payload = json_loads(b64d(segments[1], reason=reason, what=f"The {what} payload"), reason=reason,
                         what=f"The {what} payload")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise SdJwtError(reason, f"The {what} header or payload is not a JSON object.",
                         fix="Send it exactly as it was signed.")
    signature = b64d(segments[2], reason=reason, what=f"The {what} signature")
    return header, payload, (segments[0] + "." + segments[1]).encode("ascii"), signature


def _check_alg(header: dict[str, Any], what: str) -> str:
    """RFC 9901 Section 7.1 step 2.1 / Section 7.3 step 5.2, RFC 8725 Section 3.1: an allow-list, never none."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        raise SdJwtError("alg_not_allowed", f"The {what} uses alg {alg!r}; only {sorted(ALLOWED_ALGS)} are "
                                            "accepted (never 'none').",
                         fix="Sign with an ES256 (P-256) or EdDSA (Ed25519) key.")
    if "crit" in header:
        raise SdJwtError("header_malformed", f"The {what} header lists 'crit' extensions this verifier does not "
                                             "understand (RFC 7515 Section 4.1.11).",
                         fix="Do not use critical header extensions.")
    return alg


def _numeric_date(payload: dict[str, Any], name: str, *, what: str, reason: str = "claim_malformed") -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    number = finite_number(value)
    if number is None:
        raise SdJwtError(reason, f"The {what} claim {name!r} is not a NumericDate (RFC 7519 Section 2).",
                         fix="Use seconds since 1970-01-01T00:00:00Z as a JSON number.")
    return number


# --- presentation (holder) -------------------------------------------------------------------------------------

def _parse_path(item: Any) -> tuple[str | int, ...]:
    if isinstance(item, str):
        if not item:
            raise ValueError("an empty claim path cannot be disclosed")
        return tuple(item.split("."))
    if isinstance(item, tuple) and item and all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in item):
        return item
    raise ValueError(f"claim paths are 'name', 'name.sub', 'list.0' or tuples of str/int segments, not {item!r}")


def _select(tree: Node, path: tuple[str | int, ...]) -> list[str]:
    """The Disclosures that reveal the claim at ``path``: those of every enclosing claim (RFC 9901 Section 4.2.6:
    a nested Disclosure needs the ones that contain its digest) and those of everything inside it."""
    out: list[str] = []
    node = tree
    walked: list[str] = []
    for segment in path:
        children = node.children
        child: Node | None = None
        if isinstance(children, dict):
            child = children.get(str(segment))
        elif isinstance(children, list):
            index = segment if isinstance(segment, int) else (
                int(segment) if segment.isascii() and segment.isdigit() else None)
            if index is not None and 0 <= index < len(children):
                child = children[index]
        if child is None:
            where = ".".join(walked) or "the top level"
            available = (sorted(children) if isinstance(children, dict)
                         else f"indexes 0..{len(children) - 1}" if isinstance(children, list) else "nothing")
            raise SdJwtError("claim_not_found",
                             f"The credential has no claim {'.'.join(map(str, path))!r} "
                             f"(no {str(segment)!r} under {where}; available: {available}).",
                             fix="Ask only for claims this credential carries.")
        walked.append(str(segment))
        if child.disclosure is not None:
            out.append(child.disclosure)
        node = child
    out += [d for d in all_disclosures(node) if d not in out]
    return out


def present(credential: str, holder_key: JWK, *, disclose: Iterable[str | tuple[str | int, ...]], aud: str,
            nonce: str, now: datetime | None = None) -> str:
    """Make an SD-JWT+KB (RFC 9901 Section 7.2) revealing only the claims named in ``disclose``.

    ``disclose`` holds claim paths: ``"age_over_18"`` reveals a whole claim, ``"address.locality"`` one member
    of an object (and the ``address`` container, without its other members), ``"nationalities.0"`` one array
    element; a tuple spells a path whose names contain dots. The KB-JWT (``typ`` ``kb+jwt``) carries ``iat``,
    ``aud``, ``nonce`` and ``sd_hash`` and is signed by ``holder_key``, which must be the key in ``cnf``.

    The credential is checked as RFC 9901 Section 7.1 asks of a holder, except for the issuer's signature
    (which needs the issuer's keys: on receipt, call :func:`verify` on the credential with
    ``require_key_binding=False``; ``aud`` and ``nonce`` are then not used).
    """
    if isinstance(disclose, (str, bytes)):
        raise TypeError("disclose must be an iterable of claim paths, e.g. ['age_over_18'], not a single string")
    paths = [_parse_path(item) for item in disclose]
    for name, val in (("aud", aud), ("nonce", nonce)):
        if not isinstance(val, str) or not val:
            raise ValueError(f"{name} must be the non-empty string the verifier asked for")
    alg = signing_alg_for(holder_key, reason="holder_key_invalid", what="holder_key")
    jwt, disclosures, kb = _split(credential, what="credential", reason="credential_malformed")
    if kb != "":
        # RFC 9901 Section 7.2: the issuer hands out an SD-JWT, never an SD-JWT+KB
        raise SdJwtError("credential_malformed", "The credential already ends with a KB-JWT: it is a presentation, "
                                                 "not an issued SD-JWT.",
                         fix="Present the SD-JWT as issued (it ends with '~').")
    header, payload, _, _ = _parse_jws(jwt, reason="credential_malformed", what="issuer-signed JWT")
    _check_alg(header, "issuer-signed JWT")
    if payload.get("_sd_alg", SD_ALG) != SD_ALG:
        raise SdJwtError("sd_alg_unsupported", f"The credential's _sd_alg {payload.get('_sd_alg')!r} is not sha-256.",
                         fix="Ask the issuer for a sha-256 credential.")
    by_digest = index_disclosures(disclosures)
    Processor(by_digest).run(payload)  # structure, duplicates, unreferenced Disclosures
    cnf = payload.get("cnf")
    if not isinstance(cnf, dict) or "jwk" not in cnf:
        raise SdJwtError("cnf_missing", "The credential has no cnf.jwk, so it cannot be key-bound.",
                         fix="Ask the issuer for a credential bound to your key.")
    _, cnf_thumbprint = import_cnf_jwk(cnf["jwk"])
    if jwk_thumbprint(minimal_public_jwk(holder_key)) != cnf_thumbprint:
        raise SdJwtError("holder_key_mismatch", "holder_key is not the key this credential is bound to (cnf.jwk).",
                         fix="Sign with the private key whose public key was sent to the issuer for this credential.")
    tree = holder_tree(payload, by_digest)
    chosen: set[str] = set()
    for path in paths:
        chosen.update(_select(tree, path))
    # keep the issued order (sorted by Disclosure text: random, reveals nothing)
    sd_jwt = jwt + "~" + "".join(d + "~" for d in disclosures if d in chosen)
    kb_payload = {"iat": int(_timestamp(now)), "aud": aud, "nonce": nonce, "sd_hash": sha256_b64(sd_jwt)}
    return sd_jwt + sign_compact(holder_key, alg, {"alg": alg, "typ": KB_TYP}, kb_payload)


# --- verification ------------------------------------------------------------------------------------------------

def _select_issuer_key(ring_keys: dict[str | None, VerifyKey], header: dict[str, Any]) -> VerifyKey:
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise SdJwtError("header_malformed", "The issuer-signed JWT's kid is not a string (RFC 7515 Section 4.1.4).",
                         fix="The issuer must name its key with a string kid.")
    if kid is None:
        if len(ring_keys) == 1:
            return next(iter(ring_keys.values()))
        raise SdJwtError("unknown_kid", f"The issuer-signed JWT has no kid and the issuer publishes {len(ring_keys)} "
                                        "keys.",
                         fix="The issuer must put the kid of its signing key in the JWT header.")
    key = ring_keys.get(kid)
    if key is None and None in ring_keys and len(ring_keys) == 1:
        key = ring_keys[None]  # a single key given without a kid: trust it for any kid
    if key is None:
        raise SdJwtError("unknown_kid", f"The issuer-signed JWT names kid {kid!r}, which is not among the issuer's "
                                        "published signature keys.",
                         fix="Refresh the issuer metadata, or reject credentials from unknown keys.")
    return key


def verify(presentation: str, issuer_keys: JWKSet | JWK | Mapping[str, Any], *, aud: str, nonce: str,
           now: datetime | None = None, max_kb_age: timedelta = timedelta(minutes=5),
           leeway: timedelta = timedelta(seconds=30), require_key_binding: bool = True,
           expected_vct: str | None = None) -> VerifiedPresentation:
    """Verify an SD-JWT VC presentation (RFC 9901 Section 7.3, draft-ietf-oauth-sd-jwt-vc Section 3.4).

    ``issuer_keys``: the issuer's public key(s) as a jwcrypto JWK or JWKSet, a JWKS dict, or the document from
    :func:`issuer_metadata` (then its ``issuer`` must equal ``iss`` and each key's ``nbf``/``exp`` is enforced).
    Keys are imported once and cached. ``require_key_binding`` is the verifier's policy and does not depend on
    what was presented (RFC 9901 Section 9.5); a KB-JWT that is present is always checked.

    Raises :class:`SdJwtError` whose ``reason`` names the failed check.
    """
    now_ts = _timestamp(now)
    skew = _seconds(leeway, "leeway", positive=False)
    kb_age = _seconds(max_kb_age, "max_kb_age")
    ring = key_ring(issuer_keys)

    jwt, disclosures, kb = _split(presentation, what="presentation", reason="presentation_malformed")
    if (require_key_binding or kb != "") and not (isinstance(aud, str) and aud and isinstance(nonce, str) and nonce):
        raise ValueError("aud and nonce must be the non-empty strings this verifier expects")
    # Section 7.3 steps 1-2: the policy decides, not the presence of a KB-JWT
    if require_key_binding and kb == "":
        raise SdJwtError("kb_missing", "Key binding is required but the presentation has no KB-JWT (it ends with '~').",
                         fix="The holder must append a KB-JWT signed with the credential's cnf key "
                             "(RFC 9901 Section 4.3).")

    # Section 7.1 step 2: the issuer-signed JWT
    header, payload, signing_input, signature = _parse_jws(jwt, reason="jwt_malformed", what="issuer-signed JWT")
    alg = _check_alg(header, "issuer-signed JWT")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") not in (TYP, LEGACY_TYP):
        # draft-ietf-oauth-sd-jwt-vc Section 3.2.1, RFC 9901 Section 9.11 (explicit typing against confusion)
        raise SdJwtError("typ_invalid", f"The issuer-signed JWT has typ {typ!r}, not {TYP!r}.",
                         fix=f"The issuer must set typ {TYP!r} (legacy {LEGACY_TYP!r} is still accepted).")
    key = _select_issuer_key(ring.keys, header)
    if key.alg != alg:
        raise SdJwtError("alg_key_mismatch", f"The issuer-signed JWT says alg {alg!r} but key {key.kid!r} is an "
                                             f"{key.alg} key.",
                         fix="Sign with the algorithm that belongs to the key (RFC 8725 Section 3.1).")
    if not key.verify(signing_input, signature):
        raise SdJwtError("signature_invalid", "The issuer's signature on the issuer-signed JWT does not verify.",
                         fix="The credential was altered or was not signed by this issuer key; do not accept it.")
    # step 2.3: the issuer and its key
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        raise SdJwtError("claim_missing", "The issuer-signed JWT has no iss.",
                         fix="The issuer must set iss (draft-ietf-oauth-sd-jwt-vc Section 3.2.2.2).")
    if ring.issuer is not None and iss != ring.issuer:
        raise SdJwtError("issuer_mismatch", f"The credential's iss {iss!r} is not the issuer {ring.issuer!r} of the "
                                            "key document (draft-ietf-oauth-sd-jwt-vc Section 5.3).",
                         fix="Verify with the metadata of the issuer named in iss.")
    if key.nbf is not None and now_ts < key.nbf - skew:
        raise SdJwtError("key_not_yet_valid", f"Issuer key {key.kid!r} is not valid before {_dt(key.nbf).isoformat()}.",
                         fix="Check the clocks; the issuer must not sign with a key before its published nbf.")
    if key.exp is not None and now_ts >= key.exp + skew:
        raise SdJwtError("key_expired", f"Issuer key {key.kid!r} expired at {_dt(key.exp).isoformat()} "
                                        "(RFC 9901 Section 9.8).",
                         fix="Get a credential signed with a current key of the issuer.")
    # step 2.4: the hash algorithm
    sd_alg = payload.get("_sd_alg", SD_ALG)
    if sd_alg != SD_ALG:
        raise SdJwtError("sd_alg_unsupported", f"_sd_alg {sd_alg!r} is not accepted; only {SD_ALG!r} is "
                                               "(RFC 9901 Sections 4.1.1 and 9.4).",
                         fix="The issuer must hash Disclosures with sha-256.")
    # steps 3-5: Disclosures
    processor = Processor(index_disclosures(disclosures))
    processed = processor.run(payload)
    reserved = sorted(processor.disclosed_top & NEVER_DISCLOSED)
    if reserved:
        raise SdJwtError("reserved_claim_disclosed", f"Claims {reserved} arrive in Disclosures; they must be plaintext "
                                                     "(draft-ietf-oauth-sd-jwt-vc Section 3.2.2.2, RFC 9901 Section "
                                                     "9.7).",
                         fix="The issuer must not make validity claims selectively disclosable.")
    # step 6: validity, on the processed payload
    vct = processed.get("vct")
    if not isinstance(vct, str) or not vct:
        raise SdJwtError("claim_missing", "The credential has no vct.",
                         fix="The issuer must set vct (draft-ietf-oauth-sd-jwt-vc Section 3.2.2.1).")
    if expected_vct is not None and vct != expected_vct:
        raise SdJwtError("vct_mismatch", f"The credential's vct {vct!r} is not the expected {expected_vct!r}.",
                         fix="Ask the holder for a credential of the expected type.")
    exp = _numeric_date(processed, "exp", what="credential")
    if exp is None:
        raise SdJwtError("claim_missing", "The credential has no exp; this verifier requires one (RFC 9901 Section 9.7).",
                         fix="The issuer must set exp.")
    if now_ts >= exp + skew:
        raise SdJwtError("expired", f"The credential expired at {_dt(exp).isoformat()}.",
                         fix="Ask the holder for a fresh credential.")
    nbf = _numeric_date(processed, "nbf", what="credential")
    if nbf is not None and now_ts < nbf - skew:
        raise SdJwtError("not_yet_valid", f"The credential is not valid before {_dt(nbf).isoformat()}.",
                         fix="Check the clocks, or present it later.")
    iat = _numeric_date(processed, "iat", what="credential")
    if iat is not None and iat > now_ts + skew:
        raise SdJwtError("iat_in_future", f"The credential claims to be issued in the future ({_dt(iat).isoformat()}).",
                         fix="Check the issuer's and the verifier's clocks.")

    holder_key: VerifyKey | None = None
    thumbprint: str | None = None
    cnf = processed.get("cnf")
    if cnf is not None or kb != "" or require_key_binding:
        if not isinstance(cnf, dict) or "jwk" not in cnf:
            raise SdJwtError("cnf_missing", "The credential has no cnf.jwk, so key binding cannot be checked.",
                             fix="The issuer must bind the credential to the holder's key (cnf.jwk, RFC 7800).")
        holder_key, thumbprint = import_cnf_jwk(cnf["jwk"])

    # Section 7.3 step 5: the KB-JWT
    if kb != "":
        assert holder_key is not None
        kb_header, kb_payload, kb_input, kb_signature = _parse_jws(kb, reason="kb_malformed", what="KB-JWT")
        kb_alg = _check_alg(kb_header, "KB-JWT")
        if kb_alg != holder_key.alg:
            raise SdJwtError("alg_key_mismatch", f"The KB-JWT says alg {kb_alg!r} but cnf.jwk is an {holder_key.alg} "
                                                 "key.",
                             fix="Sign the KB-JWT with the algorithm of the cnf key.")
        if not holder_key.verify(kb_input, kb_signature):
            raise SdJwtError("kb_signature_invalid", "The KB-JWT is not signed by the key in the credential's cnf.",
                             fix="The holder must sign with the private key bound to this credential.")
        if kb_header.get("typ") != KB_TYP:
            raise SdJwtError("kb_typ_invalid", f"The KB-JWT has typ {kb_header.get('typ')!r}, not {KB_TYP!r} "
                                               "(RFC 9901 Section 4.3).",
                             fix=f"Set typ {KB_TYP!r} in the KB-JWT header.")
        kb_iat = _numeric_date(kb_payload, "iat", what="KB-JWT", reason="kb_malformed")
        if kb_iat is None:
            raise SdJwtError("kb_malformed", "The KB-JWT has no iat (RFC 9901 Section 4.3).",
                             fix="Put the signing time in iat.")
        if kb_iat > now_ts + skew:
            raise SdJwtError("kb_iat_in_future", "The KB-JWT's iat is in the future.",
                             fix="Check the holder's clock.")
        if kb_iat < now_ts - kb_age - skew:
            raise SdJwtError("kb_stale", f"The KB-JWT was signed {int(now_ts - kb_iat)} s ago, more than the "
                                         f"{int(kb_age)} s allowed (RFC 9901 Section 7.3 step 5.5).",
                             fix="Make a fresh presentation for this request.")
        kb_exp = _numeric_date(kb_payload, "exp", what="KB-JWT", reason="kb_malformed")
        if kb_exp is not None and now_ts >= kb_exp + skew:
            raise SdJwtError("kb_stale", "The KB-JWT has expired.", fix="Make a fresh presentation for this request.")
        if kb_payload.get("nonce") != nonce:
            raise SdJwtError("nonce_mismatch", "The KB-JWT's nonce is not the one this verifier issued for this "
                                               "transaction (replay?).",
                             fix="Make a presentation with the nonce of the current request.")
        if kb_payload.get("aud") != aud:
            raise SdJwtError("aud_mismatch", "The KB-JWT was made for another audience (aud must be this verifier's "
                                             "identifier, as a single string).",
                             fix="Make the presentation for this verifier.")
        if kb_payload.get("sd_hash") != sha256_b64(presentation[: len(presentation) - len(kb)]):
            raise SdJwtError("sd_hash_mismatch", "The KB-JWT's sd_hash does not cover this issuer-signed JWT and "
                                                 "these Disclosures (RFC 9901 Section 4.3.1): Disclosures were "
                                                 "added, removed or reordered after signing.",
                             fix="Send the presentation exactly as the holder signed it.")

    claims = {k: v for k, v in processed.items() if k not in _GENERATED}
    return VerifiedPresentation(
        claims=claims, iss=iss, vct=vct, exp=_dt(exp), iat=_dt(iat) if iat is not None else None,
        nbf=_dt(nbf) if nbf is not None else None, kid=key.kid, key_bound=kb != "",
        holder_thumbprint=thumbprint, credential_hash=sha256_b64(jwt))
