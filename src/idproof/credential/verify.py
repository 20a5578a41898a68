"""Verify a person-held BBS presentation, offline, against the issuer's published metadata.

Protocol ``idproof-bbs-nym/1`` (BBS per-verifier linkability, BLS12-381-SHA-256, see
:mod:`idproof.credential.bbs`):

- signed messages: the 7 attributes of :mod:`idproof.credential.attributes`; the one committed (hidden from
  the issuer) message is the holder's ``prover_nym``, which the issuer completes into the nym secret;
- header: ``b"idproof-bbs-nym/1|" + issuer_id + "|" + kid``, so a proof verifies only for that issuer and key;
- presentation header (ph): canonical JSON ``{"aud": service_id, "nonce": nonce}``, recomputed by the verifier
  from *its own* service id and nonce, so a proof replayed to another service or with another nonce fails;
- pseudonym: ``hash_to_curve_g1(service_id) * nym_secret``: the same for one person at one service, unrelated
  across services;
- ``expires`` is always disclosed, so that every verifier can refuse an expired credential (the holder cannot
  hide it); all other attributes are disclosed only when the holder chooses.

The presentation is ``base64url(JSON)`` with exactly: format, issuer, kid, disclosed, disclosed_indexes, proof,
pseudonym, aud, nonce.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from idproof.credential.attributes import ATTRIBUTES, claim_value, encode_message
from idproof.credential.bbs import SHA256, pseudonym
from idproof.errors import IdproofError

FORMAT = "idproof-bbs-nym/1"
JWK_ALG = "BBS-SHA256-PSEUDONYM"  # not registered with IANA: BBS per-verifier linkability, BLS12-381-SHA-256 suite
JWK_CRV = "BLS12381G2"  # the public key is a G2 point (96 octets compressed), as in draft-ietf-cose-bls-key-representations
PUBLIC_KEY_OCTETS = 96
MAX_PRESENTATION_CHARS = 16 * 1024  # a real one is ~1.5 KB; anything much larger is refused before parsing
_PRESENTATION_FIELDS = frozenset({"format", "issuer", "kid", "disclosed", "disclosed_indexes", "proof", "pseudonym",
                                  "aud", "nonce"})
ALWAYS_DISCLOSED = ("expires",)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class CredentialError(IdproofError):
    """A credential, presentation or wallet operation was refused.

    ``reason`` is stable and machine-readable (``proof_invalid``, ``nonce_mismatch``, ``audience_mismatch``,
    ``expired``, ``unknown_kid``, ``key_not_valid``, ``malformed``, ``wallet_locked``, ``commitment_invalid``,
    ``no_unused_credential``, ``attribute_unknown``, ...); ``message`` says what is wrong and ``fix`` what to
    change. The text never holds claim values, proofs or keys: it may end up in logs.
    """

    code = "credential_rejected"

    def __init__(self, reason: str, message: str, *, fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.reason = reason
        self.args = (f"{reason}: {message} {fix}".strip(),)


@dataclass(frozen=True)
class VerifiedCredential:
    disclosed: dict[str, Any]  # only what the holder disclosed (always includes expires), values typed
    pseudonym: str  # hex; the same for one person at one service_id, unrelated across services
    issuer: str
    kid: str
    expires: date

    def to_dict(self) -> dict[str, Any]:
        return {"disclosed": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.disclosed.items()},
                "pseudonym": self.pseudonym, "issuer": self.issuer, "kid": self.kid,
                "expires": self.expires.isoformat()}


# --- shared protocol pieces (issuer, wallet and verifier build the same bytes) ---------------------------------

def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: Any, what: str = "value") -> bytes:
    """Strict base64url (no padding, no other alphabet); CredentialError(malformed) otherwise."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise _malformed(f"{what} is not base64url text")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not base64url text") from None


def header(issuer_id: str, kid: str) -> bytes:
    return f"{FORMAT}|{issuer_id}|{kid}".encode()


def presentation_header(service_id: str, nonce: str) -> bytes:
    return json.dumps({"aud": service_id, "nonce": nonce}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def context_id(service_id: str) -> bytes:
    return service_id.encode("utf-8")


def _malformed(message: str) -> CredentialError:
    return CredentialError("malformed", message, fix="Send the presentation exactly as the wallet produced it.")


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now


@dataclass(frozen=True)
class PublicKey:
    kid: str
    pk: bytes
    not_before: datetime
    not_after: datetime

    def check_valid(self, now: datetime) -> None:
        if not (self.not_before <= now < self.not_after):
            raise CredentialError(
                "key_not_valid", f"Issuer key {self.kid!r} is valid from {self.not_before.isoformat()} to "
                                 f"{self.not_after.isoformat()}, not at {now.isoformat()}.",
                fix="Use a credential signed with a key the issuer currently publishes, or refresh its metadata.")


def _metadata_error(message: str) -> CredentialError:
    return CredentialError("metadata_invalid", message,
                           fix="Pass the issuer metadata document as published: "
                               '{"issuer": ..., "keys": [public JWKs]}.')


def issuer_key(issuer_metadata: dict, kid: str) -> tuple[str, PublicKey]:
    """(issuer_id, key) for ``kid`` from a published metadata document; unknown_kid if it is not there."""
    if not isinstance(issuer_metadata, dict):
        raise _metadata_error("The issuer metadata is not a JSON object.")
    issuer_id, keys = issuer_metadata.get("issuer"), issuer_metadata.get("keys")
    if not isinstance(issuer_id, str) or not issuer_id or not isinstance(keys, list):
        raise _metadata_error("The issuer metadata lacks an issuer string or a keys list.")
    for jwk in keys:
        if isinstance(jwk, dict) and jwk.get("kid") == kid and jwk.get("alg") == JWK_ALG:
            return issuer_id, _parse_jwk(jwk)
    raise CredentialError("unknown_kid", f"The issuer {issuer_id!r} publishes no {JWK_ALG} key {kid!r}.",
                          fix="Refresh the issuer metadata; credentials from keys it no longer publishes are refused.")


def _parse_jwk(jwk: dict) -> PublicKey:
    kid = jwk.get("kid")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != JWK_CRV or "d" in jwk:
        raise _metadata_error(f"Key {kid!r} is not a public OKP {JWK_CRV} JWK.")
    try:
        pk = b64d(jwk.get("x"), "x")
    except CredentialError:
        pk = b""
    nbf, exp = jwk.get("nbf"), jwk.get("exp")
    if len(pk) != PUBLIC_KEY_OCTETS or not all(isinstance(v, int) and not isinstance(v, bool) for v in (nbf, exp)):
        raise _metadata_error(f"Key {kid!r} needs x (96 octets, base64url) and integer nbf and exp.")
    try:
        return PublicKey(kid, pk, datetime.fromtimestamp(nbf, UTC), datetime.fromtimestamp(exp, UTC))
    except (OverflowError, OSError, ValueError):
        raise _metadata_error(f"Key {kid!r} has an out-of-range nbf or exp.") from None


def _decode_presentation(presentation: Any) -> dict[str, Any]:
    """Parse and type-check the envelope (not the proof). CredentialError(malformed) on anything off."""
    if not isinstance(presentation, str) or not presentation:
        raise _malformed("The presentation is not a non-empty string.")
    if len(presentation) > MAX_PRESENTATION_CHARS:
        raise _malformed(f"The presentation is longer than {MAX_PRESENTATION_CHARS} characters.")
    raw = b64d(presentation.strip(), "The presentation")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _malformed("The presentation is not base64url-encoded JSON.") from None
    if not isinstance(doc, dict) or set(doc) != _PRESENTATION_FIELDS:
        raise _malformed(f"The presentation must have exactly the fields {', '.join(sorted(_PRESENTATION_FIELDS))}.")
    if doc["format"] != FORMAT:
        raise _malformed(f"The presentation format is not {FORMAT}.")
    for name in ("issuer", "kid", "proof", "pseudonym", "aud", "nonce"):
        if not isinstance(doc[name], str) or not doc[name]:
            raise _malformed(f"The presentation field {name!r} is not a non-empty string.")
    disclosed, indexes = doc["disclosed"], doc["disclosed_indexes"]
    if not isinstance(disclosed, dict) or not isinstance(indexes, list):
        raise _malformed("disclosed must be an object and disclosed_indexes a list.")
    unknown = [n for n in disclosed if n not in ATTRIBUTES]
    if unknown:
        raise _malformed("The presentation discloses attributes this credential does not have.")
    if indexes != sorted(ATTRIBUTES.index(n) for n in disclosed):
        raise _malformed("disclosed_indexes do not match the disclosed attribute names.")
    if any(name not in disclosed for name in ALWAYS_DISCLOSED):
        raise _malformed("The presentation does not disclose expires, which is always disclosed.")
    typed: dict[str, Any] = {}
    for name in ATTRIBUTES:  # keep ATTRIBUTES order
        if name in disclosed:
            try:
                typed[name] = claim_value(name, disclosed[name])
            except (TypeError, ValueError):
                raise _malformed(f"The disclosed attribute {name!r} has the wrong type.") from None
    doc["typed"] = typed
    return doc


def verify(presentation: str, issuer_metadata: dict, *, service_id: str, nonce: str,
           now: datetime | None = None) -> VerifiedCredential:
    """Verify a BBS presentation for this verifier (``service_id``) and the ``nonce`` it handed out.

    Offline: needs only the issuer's published metadata. Checks, in order: envelope; issuer; kid (unknown_kid)
    and the key's validity window at ``now`` (key_not_valid); the declared aud and nonce against this verifier's
    (audience_mismatch, nonce_mismatch); the zero-knowledge proof over the disclosed attributes, bound to the
    issuer+kid header, to a presentation header rebuilt from *this verifier's* service_id and nonce, and to the
    pseudonym for context ``service_id`` (proof_invalid); then ``expires`` against ``now`` (expired; a credential
    is valid through its ``expires`` day, UTC). Returns only the disclosed attributes.

    Raises :class:`CredentialError` and nothing else for anything the presentation contains; ValueError only for
    the caller's own arguments (empty service_id / nonce, naive ``now``).
    """
    if not isinstance(service_id, str) or not service_id or not isinstance(nonce, str) or not nonce:
        raise ValueError("service_id and nonce must be the non-empty strings this verifier uses")
    now = _utc(now)
    doc = _decode_presentation(presentation)
    issuer_id, key = issuer_key(issuer_metadata, doc["kid"])
    if doc["issuer"] != issuer_id:
        raise CredentialError("issuer_mismatch", "The presentation names another issuer than the metadata given.",
                              fix="Verify it against the metadata of the issuer it names, if you trust that issuer.")
    key.check_valid(now)
    if doc["aud"] != service_id:
        raise CredentialError("audience_mismatch", "The presentation was made for another service.",
                              fix="Ask the holder for a fresh presentation made for this service.")
    if doc["nonce"] != nonce:
        raise CredentialError("nonce_mismatch", "The presentation answers another nonce (replayed or stale).",
                              fix="Ask the holder for a fresh presentation with the nonce you just issued.")
    typed: dict[str, Any] = doc["typed"]
    proof, nym = b64d(doc["proof"], "proof"), b64d(doc["pseudonym"], "pseudonym")
    ok = pseudonym.proof_verify(
        key.pk, proof, header(issuer_id, key.kid), presentation_header(service_id, nonce), nym,
        context_id(service_id), len(ATTRIBUTES), [encode_message(n, v) for n, v in typed.items()], [],
        doc["disclosed_indexes"], [], SHA256)
    if not ok:
        raise CredentialError("proof_invalid", "The proof does not verify for these attributes, this issuer key, "
                                               "this service and this nonce.",
                              fix="Refuse it; the holder's wallet must make a fresh presentation.")
    expires: date = typed["expires"]
    if now.astimezone(UTC).date() > expires:
        raise CredentialError("expired", f"The credential expired on {expires.isoformat()}.",
                              fix="The holder must prove their identity again to get a fresh credential.")
    return VerifiedCredential(disclosed=typed, pseudonym=nym.hex(), issuer=issuer_id, kid=key.kid, expires=expires)
