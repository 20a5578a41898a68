"""Credential offers, access tokens and c_nonces: process memory only, bounded in count and lifetime.

An accepted proofing (whose document gave the holder's name, state and birth date) registers one offer: the
person's :class:`~idproof.credential.attributes.CredentialAttributes`, under a fresh random pre-authorized code.
The code is exchanged once for an access token (``POST /v1/credential/token``); the access token fetches each
offered credential configuration once (``POST /v1/credential``). The attributes are forgotten as soon as every
configuration was issued, and in any case 10 minutes after the decision (the code, the token and the
attributes share that one deadline). Nothing here is written to disk, to the database or to a log, and nothing
is kept about what was issued: once the attributes are gone, the service cannot tell whose credential a
later presentation comes from (it never sees presentations anyway).

Codes and tokens are stored as SHA-256 digests, so even a memory dump of the store does not give usable
bearer secrets. The issuer's SD-JWT signing key is :class:`SdJwtIssuerKey` (a P-256 JWK with its published
validity window, in a 0600 JSON file); the BBS key is :class:`idproof.credential.issuer.IssuerKey`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from idproof.service.models import PRE_AUTHORIZED_GRANT

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from idproof.credential.attributes import CredentialAttributes

log = logging.getLogger("idproof.service")

__all__ = [
    "BBS_CONFIGURATION", "CONFIGURATIONS", "MAX_BATCH", "OFFER_TTL", "PRE_AUTHORIZED_GRANT", "SDJWT_CONFIGURATION",
    "VCT", "Begin", "CredentialIssuer", "IssuerUnavailable", "OfferStore", "ProofRejected", "SdJwtIssuerKey",
    "load_bbs_key", "load_sdjwt_key",
]

BBS_CONFIGURATION = "idproof_bbs"
SDJWT_CONFIGURATION = "idproof_sd_jwt"
CONFIGURATIONS = (BBS_CONFIGURATION, SDJWT_CONFIGURATION)
OFFER_TTL = timedelta(minutes=10)  # from the decision: the code, its access token and the attributes
NONCE_TTL = timedelta(minutes=5)
MAX_BATCH = 20  # SD-JWT VCs per request


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@dataclass
class _Offer:
    attributes: CredentialAttributes = field(repr=False)
    configurations: tuple[str, ...]
    deadline: float  # monotonic: everything about this offer is forgotten then
    remaining: set[str] = field(default_factory=set)  # configurations the access token may still fetch
    in_flight: set[str] = field(default_factory=set)  # being issued right now (a second request is refused)
    token_digest: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Begin:
    """What :meth:`OfferStore.begin` found: ``attributes`` when ``status`` is ``"ok"``."""

    status: Literal["ok", "invalid_token", "not_offered", "already_issued"]
    attributes: CredentialAttributes | None = field(default=None, repr=False)


class OfferStore:
    """Thread-safe; every operation first forgets what has expired. ``clock`` is monotonic seconds."""

    def __init__(self, *, ttl_s: float = OFFER_TTL.total_seconds(), nonce_ttl_s: float = NONCE_TTL.total_seconds(),
                 max_offers: int = 4096, max_nonces: int = 65536, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.nonce_ttl_s, self.max_offers, self.max_nonces = ttl_s, nonce_ttl_s, max_offers, max_nonces
        self.clock = clock
        self._lock = threading.Lock()
        self._by_code: dict[bytes, _Offer] = {}
        self._by_token: dict[bytes, _Offer] = {}
        self._nonces: OrderedDict[bytes, float] = OrderedDict()  # digest -> deadline, oldest first

    def __repr__(self) -> str:
        return f"OfferStore(offers={len(self)})"

    def _sweep(self) -> None:
        now = self.clock()
        for table in (self._by_code, self._by_token):
            for k in [k for k, o in table.items() if o.deadline <= now]:
                del table[k]
        while self._nonces and next(iter(self._nonces.values())) <= now:
            self._nonces.popitem(last=False)

    def __len__(self) -> int:
        """Offers whose attributes are still held (not yet redeemed, or redeemed and not fully issued)."""
        with self._lock:
            self._sweep()
            return len(self._by_code) + len(self._by_token)

    # --- offers and tokens ----------------------------------------------------------------------------------

    def offer(self, attributes: CredentialAttributes, configurations: tuple[str, ...]) -> str | None:
        """A fresh one-time pre-authorized code for these attributes, or None when the store is full."""
        if not configurations:
            return None
        with self._lock:
            self._sweep()
            if len(self._by_code) + len(self._by_token) >= self.max_offers:
                return None
            code = secrets.token_urlsafe(32)
            self._by_code[_digest(code)] = _Offer(attributes, tuple(configurations), self.clock() + self.ttl_s)
            return code

    def redeem(self, code: str) -> tuple[str, int] | None:
        """Exchange a pre-authorized code (once) for ``(access_token, expires_in)``; None if unknown, used or
        expired. The token lives until the offer's deadline, not longer."""
        with self._lock:
            self._sweep()
            o = self._by_code.pop(_digest(code), None)
            if o is None:
                return None
            token = secrets.token_urlsafe(32)
            o.token_digest = _digest(token)
            o.remaining = set(o.configurations)
            self._by_token[o.token_digest] = o
            return token, max(1, math.floor(o.deadline - self.clock()))

    def begin(self, token: str, configuration: str) -> Begin:
        """Reserve ``configuration`` for issuance under ``token``: a second request for the same configuration
        (concurrent or later) is refused. Follow with :meth:`end`."""
        with self._lock:
            self._sweep()
            o = self._by_token.get(_digest(token))
            if o is None:
                return Begin("invalid_token")
            if configuration not in o.configurations:
                return Begin("not_offered")
            if configuration not in o.remaining:
                return Begin("already_issued")
            o.remaining.discard(configuration)
            o.in_flight.add(configuration)
            return Begin("ok", o.attributes)

    def end(self, token: str, configuration: str, *, issued: bool) -> None:
        """After :meth:`begin`: ``issued`` uses up the configuration; otherwise it may be asked for again. The
        attributes are dropped once every configuration has been issued."""
        with self._lock:
            key = _digest(token)
            o = self._by_token.get(key)
            if o is None:
                return
            o.in_flight.discard(configuration)
            if not issued:
                o.remaining.add(configuration)
            elif not o.remaining and not o.in_flight:
                del self._by_token[key]

    def token_valid(self, token: str) -> bool:
        with self._lock:
            self._sweep()
            return _digest(token) in self._by_token

    # --- c_nonces (unbound to any offer or token: a nonce says nothing about who asked for it) -----------------

    def new_nonce(self) -> tuple[str, int]:
        """A fresh c_nonce and its lifetime in seconds. When the store is full the oldest nonce is forgotten."""
        with self._lock:
            self._sweep()
            nonce = secrets.token_urlsafe(24)
            self._nonces[_digest(nonce)] = self.clock() + self.nonce_ttl_s
            while len(self._nonces) > self.max_nonces:
                self._nonces.popitem(last=False)
            return nonce, int(self.nonce_ttl_s)

    def nonce_valid(self, nonce: str) -> bool:
        with self._lock:
            self._sweep()
            return _digest(nonce) in self._nonces

    def use_nonces(self, nonces: set[str]) -> bool:
        """Spend these c_nonces (all or none): False if any is unknown, used or expired."""
        with self._lock:
            self._sweep()
            keys = {_digest(n) for n in nonces}
            if not all(k in self._nonces for k in keys):
                return False
            for k in keys:
                del self._nonces[k]
            return True


# --- the SD-JWT issuer key ----------------------------------------------------------------------------------------

_SDJWT_KEY_FORMAT = "idproof-sdjwt-issuer-key/1"


@dataclass(frozen=True)
class SdJwtIssuerKey:
    """A P-256 (ES256) SD-JWT VC signing key with its kid and published validity window (UTC)."""

    jwk: JWK = field(repr=False)
    kid: str
    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        from idproof.credential._sdjwt_keys import alg_for_jwk

        if not self.kid or self.jwk.get("kid") != self.kid:
            raise ValueError("the JWK must carry the key's kid")
        if alg_for_jwk(self.jwk) is None or not self.jwk.has_private:
            raise ValueError("an SD-JWT issuer key is a private P-256 or Ed25519 JWK")
        if self.not_before.tzinfo is None or self.not_after.tzinfo is None or self.not_after <= self.not_before:
            raise ValueError("not_before < not_after, both timezone-aware")

    @classmethod
    def generate(cls, *, kid: str | None = None, valid_for: timedelta = timedelta(days=365)) -> SdJwtIssuerKey:
        from jwcrypto.jwk import JWK

        from idproof.credential._sdjwt_codec import jwk_thumbprint
        from idproof.credential._sdjwt_keys import minimal_public_jwk

        key = JWK.generate(kty="EC", crv="P-256")
        kid = kid or "es256-" + jwk_thumbprint(minimal_public_jwk(key))[:16]
        key = JWK(**{**key.export_private(as_dict=True), "kid": kid})
        not_before = datetime.now(UTC).replace(microsecond=0)
        return cls(key, kid, not_before, not_before + valid_for)

    def save(self, path: str | os.PathLike[str]) -> None:
        """JSON, mode 0600, never overwrites. The private key is in clear: protect it like a TLS key."""
        doc = {"format": _SDJWT_KEY_FORMAT, "kid": self.kid, "not_before": self.not_before.isoformat(),
               "not_after": self.not_after.isoformat(), "jwk": self.jwk.export_private(as_dict=True)}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # FileExistsError: refuse to overwrite
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SdJwtIssuerKey:
        from jwcrypto.jwk import JWK

        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            if doc.get("format") != _SDJWT_KEY_FORMAT:
                raise ValueError("format")
            return cls(JWK(**doc["jwk"]), doc["kid"], datetime.fromisoformat(doc["not_before"]),
                       datetime.fromisoformat(doc["not_after"]))
        except FileNotFoundError:
            raise
        except Exception as e:  # noqa: BLE001 - any defect of the file is one error, without its content
            raise ValueError(f"{path} is not an idproof SD-JWT issuer key file ({type(e).__name__})") from None

    def metadata(self, issuer_id: str) -> dict[str, Any]:
        """The JWT VC Issuer Metadata document (public key, kid, alg, use, nbf, exp)."""
        from idproof.credential import sdjwt

        return sdjwt.issuer_metadata([self.jwk], issuer_id, validity={self.kid: (self.not_before, self.not_after)})


# --- the issuer: keys, offer store, signing ----------------------------------------------------------------------

VCT = "urn:idproof:vct:identity:1"  # the SD-JWT VC type
PROOF_JWT_TYP = "openid4vci-proof+jwt"
PROOF_MAX_AGE_S = 300  # how old a key proof's iat may be (and 60 s of clock skew into the future)


class IssuerUnavailable(Exception):
    """The issuer cannot sign now (its key is outside its validity window): the server's problem, not the request's."""


class ProofRejected(Exception):
    """A holder binding (BBS commitment, holder JWK, key proof JWT) was refused; ``reason`` is stable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def load_bbs_key(spec: Any):
    """A BBS issuer key from a path (``IssuerKey.save`` format) or an :class:`IssuerKey` (None: no BBS)."""
    from idproof.credential.issuer import IssuerKey

    if spec is None or isinstance(spec, IssuerKey):
        return spec
    return IssuerKey.load(str(spec).removeprefix("file:"))


def load_sdjwt_key(spec: Any) -> SdJwtIssuerKey | None:
    """An SD-JWT issuer key from a path (``SdJwtIssuerKey.save`` format) or an :class:`SdJwtIssuerKey`."""
    if spec is None or isinstance(spec, SdJwtIssuerKey):
        return spec
    return SdJwtIssuerKey.load(str(spec).removeprefix("file:"))


class CredentialIssuer:
    """One per app: the issuer id, its keys, the offer store and the signing. Stateless about what it issued:
    it keeps offers until they are used up or expire, and nothing at all afterwards."""

    def __init__(self, issuer_id: str, *, bbs_key=None, sdjwt_key: SdJwtIssuerKey | None = None,
                 lifetime: timedelta = timedelta(days=30), offers: OfferStore | None = None) -> None:
        if not isinstance(issuer_id, str) or not issuer_id.startswith(("https://", "http://")):
            raise ValueError("credential_issuer must be the service's URL, e.g. https://idproof.example")
        if bbs_key is None and sdjwt_key is None:
            raise ValueError("a credential issuer needs a BBS key, an SD-JWT key, or both")
        self.issuer_id = issuer_id.rstrip("/")
        self.bbs_key, self.sdjwt_key, self.lifetime = bbs_key, sdjwt_key, lifetime
        self.offers = offers or OfferStore()
        self.configurations = tuple(c for c, k in ((BBS_CONFIGURATION, bbs_key), (SDJWT_CONFIGURATION, sdjwt_key))
                                    if k is not None)

    def __repr__(self) -> str:
        return f"CredentialIssuer({self.issuer_id!r}, configurations={self.configurations})"

    def url(self, path: str) -> str:
        return self.issuer_id + path

    # --- offers ---------------------------------------------------------------------------------------------

    def offer_code(self, decision: Any) -> str | None:
        """A pre-authorized code for an accepted decision whose document named its holder; None otherwise
        (rejected, retry, face-only, or the store is full)."""
        from idproof.credential.attributes import CredentialAttributes

        holder = getattr(decision, "holder", None)
        if not decision.accepted or holder is None:
            return None
        try:
            attributes = CredentialAttributes.from_holder(holder, lifetime=self.lifetime)
        except (TypeError, ValueError):  # e.g. an over-long name: no credential, and nothing of it in the log
            log.warning("no credential offer: the holder data cannot be encoded")
            return None
        code = self.offers.offer(attributes, self.configurations)
        if code is None:
            log.warning("no credential offer: the offer store is full")
        return code

    # --- signing --------------------------------------------------------------------------------------------

    def issue_bbs(self, attributes: CredentialAttributes, commitment: str) -> dict[str, Any]:
        from idproof.credential.issuer import BbsIssuer
        from idproof.credential.verify import FORMAT, CredentialError

        try:
            return BbsIssuer(self.bbs_key, self.issuer_id).issue({"format": FORMAT, "commitment": commitment},
                                                                  attributes)
        except CredentialError as e:
            if e.reason == "key_not_valid":
                raise IssuerUnavailable(e.message) from None
            raise ProofRejected("invalid_proof", "The commitment is not a valid idproof-bbs-nym/1 commitment "
                                                 "with its proof of correctness.") from None
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, ArithmeticError):
            raise ProofRejected("invalid_proof", "The commitment cannot be read.") from None

    def _check_sdjwt_key(self, now: datetime) -> None:
        k = self.sdjwt_key
        if not (k.not_before <= now and now + self.lifetime <= k.not_after):
            raise IssuerUnavailable(f"SD-JWT issuer key {k.kid!r} does not cover a credential issued now.")

    def issue_sdjwt(self, attributes: CredentialAttributes, holder_jwks: list[dict[str, Any]]) -> list[str]:
        """One once-only SD-JWT VC per holder public JWK (each must be a distinct P-256 / Ed25519 key)."""
        from jwcrypto.jwk import JWK

        from idproof.credential import sdjwt
        from idproof.credential._sdjwt_keys import import_cnf_jwk

        now = datetime.now(UTC)
        self._check_sdjwt_key(now)
        keys = []
        for i, jwk in enumerate(holder_jwks):
            try:
                import_cnf_jwk(jwk)  # a public P-256 / Ed25519 point on its curve, no private members
                keys.append(JWK(**{m: jwk[m] for m in ("kty", "crv", "x", "y") if m in jwk}))
            except Exception:  # noqa: BLE001 - whatever is wrong with it, it is the wallet's key that is refused
                raise ProofRejected("invalid_proof", f"Holder key {i} is not a public P-256 or Ed25519 JWK.") from None
        try:
            return sdjwt.issue_batch(self.sdjwt_key.jwk, iss=self.issuer_id, kid=self.sdjwt_key.kid, vct=VCT,
                                     claims=attributes.to_claims(), holder_keys=keys, lifetime=self.lifetime, now=now)
        except ValueError:
            raise ProofRejected("invalid_proof", "The holder keys must be distinct: one fresh key per "
                                                 "credential.") from None

    def key_proof_jwks(self, proofs: list[str]) -> tuple[list[dict[str, Any]], set[str]]:
        """Check OpenID4VCI ``jwt`` key proofs (typ openid4vci-proof+jwt, the holder's public key in the header
        ``jwk``, aud this issuer, a recent iat, a c_nonce of this issuer, signed by that key). Returns the holder
        JWKs and the c_nonces they used (still to be spent)."""
        from idproof.credential._sdjwt_codec import b64d, json_loads
        from idproof.credential._sdjwt_keys import ALLOWED_ALGS, import_cnf_jwk

        jwks: list[dict[str, Any]] = []
        nonces: set[str] = set()
        now = time.time()
        for i, proof in enumerate(proofs):
            try:
                h64, p64, s64 = proof.split(".")
                header = json_loads(b64d(h64, reason="x", what="header"), reason="x", what="header")
                payload = json_loads(b64d(p64, reason="x", what="payload"), reason="x", what="payload")
                signature = b64d(s64, reason="x", what="signature")
                ok = isinstance(header, dict) and isinstance(payload, dict)
            except Exception:  # noqa: BLE001
                ok = False
            if not ok:
                raise ProofRejected("invalid_proof", f"Key proof {i} is not a compact JWS with JSON header and payload.")
            if header.get("typ") != PROOF_JWT_TYP or header.get("alg") not in ALLOWED_ALGS:
                raise ProofRejected("invalid_proof", f"Key proof {i} needs typ {PROOF_JWT_TYP!r} and alg ES256 or EdDSA.")
            if any(h in header for h in ("kid", "x5c", "trust_chain")) or not isinstance(header.get("jwk"), dict):
                raise ProofRejected("invalid_proof", f"Key proof {i} must carry its public key as the header jwk.")
            try:
                key, _ = import_cnf_jwk(header["jwk"])
            except Exception:  # noqa: BLE001
                raise ProofRejected("invalid_proof", f"Key proof {i}: the header jwk is not a public P-256 or "
                                                     "Ed25519 key.") from None
            if key.alg != header["alg"] or not key.verify(f"{h64}.{p64}".encode("ascii"), signature):
                raise ProofRejected("invalid_proof", f"Key proof {i}: the signature does not verify with its jwk.")
            aud, iat, nonce = payload.get("aud"), payload.get("iat"), payload.get("nonce")
            if aud != self.issuer_id and not (isinstance(aud, list) and self.issuer_id in aud):
                raise ProofRejected("invalid_proof", f"Key proof {i} is not addressed to this issuer (aud).")
            if (not isinstance(iat, (int, float)) or isinstance(iat, bool) or not math.isfinite(iat)
                    or not now - PROOF_MAX_AGE_S <= iat <= now + 60):
                raise ProofRejected("invalid_proof", f"Key proof {i} has no recent iat.")
            if not isinstance(nonce, str) or not nonce:
                raise ProofRejected("invalid_nonce", f"Key proof {i} carries no c_nonce.")
            nonces.add(nonce)
            jwks.append(header["jwk"])
        return jwks, nonces

    # --- published documents ------------------------------------------------------------------------------------

    def keys_document(self) -> dict[str, Any]:
        from idproof.credential.issuer import issuer_metadata

        return {"issuer": self.issuer_id,
                "bbs": issuer_metadata([self.bbs_key], self.issuer_id) if self.bbs_key is not None else None,
                "sd_jwt": self.sdjwt_key.metadata(self.issuer_id) if self.sdjwt_key is not None else None}
