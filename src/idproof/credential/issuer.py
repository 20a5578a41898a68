"""The BBS credential issuer: a key pair with a published validity window, and a stateless signer.

The issuer signs the 7 attributes plus a value the holder committed to and the issuer never sees (the
holder's share of the nym secret), adds its own entropy to that secret, and forgets everything: no signature,
commitment or nym entropy is kept, so the issuer cannot later recognise a presentation or a pseudonym.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from idproof.credential.attributes import CredentialAttributes
from idproof.credential.bbs import SHA256, core, pseudonym
from idproof.credential.verify import (
    FORMAT,
    JWK_ALG,
    JWK_CRV,
    CredentialError,
    b64d,
    b64e,
    header,
)

_KEY_FORMAT = "idproof-bbs-issuer-key/1"


@dataclass(frozen=True)
class IssuerKey:
    """A BBS (BLS12-381-SHA-256) issuer key pair with key id and validity window (UTC)."""

    kid: str
    not_before: datetime
    not_after: datetime
    _sk: bytes = field(repr=False)
    _pk: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.kid or "|" in self.kid:
            raise ValueError("kid must be a non-empty string without '|' (it is part of the signed header)")
        if self.not_before.tzinfo is None or self.not_after.tzinfo is None:
            raise ValueError("not_before and not_after must be timezone-aware")
        if self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before")

    @classmethod
    def generate(cls, *, kid: str | None = None, valid_for: timedelta = timedelta(days=365)) -> IssuerKey:
        sk = core.keygen(secrets.token_bytes(32), b"idproof-issuer", suite=SHA256)
        pk = core.sk_to_pk(sk, SHA256)
        not_before = datetime.now(UTC).replace(microsecond=0)
        if kid is None:  # derived from the public key: unique without coordination, says nothing else
            kid = "bbs-" + b64e(hashlib.sha256(pk).digest()[:12])
        return cls(kid, not_before, not_before + valid_for, sk, pk)

    @property
    def public_key(self) -> bytes:
        return self._pk

    @property
    def secret_key(self) -> bytes:
        return self._sk

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key pair as JSON, mode 0600; never overwrites (a lost old key would orphan credentials).
        The secret key is stored in clear: protect the file as you would a TLS private key."""
        doc = {"format": _KEY_FORMAT, "kid": self.kid, "not_before": self.not_before.isoformat(),
               "not_after": self.not_after.isoformat(), "sk": b64e(self._sk), "pk": b64e(self._pk)}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CredentialError("key_exists", f"{path} already exists; refusing to overwrite an issuer key.",
                                  fix="Choose another path, or move the old key away yourself.") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IssuerKey:
        bad = CredentialError("malformed", f"{path} is not an idproof BBS issuer key file.",
                              fix="Point to a file written by IssuerKey.save.")
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CredentialError("key_missing", f"{path} does not exist.",
                                  fix="Create a key with IssuerKey.generate().save(path).") from None
        except (OSError, ValueError):
            raise bad from None
        if not isinstance(doc, dict) or doc.get("format") != _KEY_FORMAT:
            raise bad
        try:
            sk, pk = b64d(doc["sk"], "sk"), b64d(doc["pk"], "pk")
            key = cls(doc["kid"], datetime.fromisoformat(doc["not_before"]),
                      datetime.fromisoformat(doc["not_after"]), sk, pk)
            derived = core.sk_to_pk(sk, SHA256)
        except (KeyError, TypeError, ValueError, CredentialError):
            raise bad from None
        if derived != pk:
            raise CredentialError("malformed", f"{path}: the public key does not belong to the secret key.",
                                  fix="Restore the key file from a backup.")
        return key

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK. ``alg`` ``BBS-SHA256-PSEUDONYM`` (not IANA-registered) names this protocol:
        BBS with per-verifier pseudonyms, BLS12-381-SHA-256 ciphersuite; ``crv`` ``BLS12381G2`` and ``x`` (the
        96-octet compressed G2 point) follow draft-ietf-cose-bls-key-representations. ``nbf``/``exp`` are the
        key's validity: verifiers refuse proofs under a key outside it."""
        return {"kty": "OKP", "crv": JWK_CRV, "x": b64e(self._pk), "kid": self.kid, "alg": JWK_ALG, "use": "sig",
                "nbf": int(self.not_before.timestamp()), "exp": int(self.not_after.timestamp())}


def issuer_metadata(keys: list[IssuerKey], issuer_id: str) -> dict[str, Any]:
    """The document to publish, from which wallets and verifiers take the keys: ``{"issuer", "keys"}``.
    List the current key and every older key whose credentials may still be unexpired."""
    if not isinstance(issuer_id, str) or not issuer_id:
        raise ValueError("issuer_id must be a non-empty string")
    kids = [k.kid for k in keys]
    if not keys or len(set(kids)) != len(kids):
        raise ValueError("keys must be a non-empty list of IssuerKeys with distinct kids")
    return {"issuer": issuer_id, "keys": [k.public_jwk() for k in keys]}


class BbsIssuer:
    """Signs credential requests. Holds the key and the issuer id, nothing per credential (stateless by design:
    it cannot link a later presentation or pseudonym to an issuance)."""

    def __init__(self, key: IssuerKey, issuer_id: str) -> None:
        if not isinstance(issuer_id, str) or not issuer_id:
            raise ValueError("issuer_id must be a non-empty string (e.g. https://idproof.example)")
        self.key = key
        self.issuer_id = issuer_id

    def issue(self, request: dict, attributes: CredentialAttributes, *, now: datetime | None = None) -> dict[str, Any]:
        """Blind-sign ``attributes`` plus the holder's committed nym share from ``request`` (made by
        ``Wallet.issuance_request``). Returns the credential response for ``Wallet.accept``."""
        now = now if now is not None else datetime.now(UTC)
        if not (self.key.not_before <= now < self.key.not_after):
            raise CredentialError("key_not_valid", f"Issuer key {self.key.kid!r} is not valid now.",
                                  fix="Rotate to a key valid now and publish it in the issuer metadata.")
        expires_at = datetime(attributes.expires.year, attributes.expires.month, attributes.expires.day,
                              tzinfo=UTC) + timedelta(days=1)
        if expires_at > self.key.not_after:
            raise CredentialError("key_not_valid", f"The credential would outlive issuer key {self.key.kid!r}; "
                                                   "verifiers would refuse it before it expires.",
                                  fix="Rotate to a key valid past the credential's expiry, or shorten its lifetime.")
        if not isinstance(request, dict) or request.get("format") != FORMAT:
            raise CredentialError("malformed", f"The issuance request is not a {FORMAT} request.",
                                  fix="Send the request exactly as Wallet.issuance_request() made it.")
        commitment = b64d(request.get("commitment"), "commitment")
        try:
            signature, entropy = pseudonym.blind_sign(
                self.key.secret_key, self.key.public_key, commitment, header(self.issuer_id, self.key.kid),
                attributes.messages(), suite=SHA256)
        except ValueError:
            raise CredentialError("commitment_invalid", "The commitment's proof of correctness does not verify.",
                                  fix="Have the wallet make a fresh issuance request.") from None
        return {"format": FORMAT, "issuer": self.issuer_id, "kid": self.key.kid, "signature": b64e(signature),
                "signer_nym_entropy": b64e(entropy), "claims": attributes.to_claims()}
