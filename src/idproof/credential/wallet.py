"""The holder's wallet: an encrypted file with BBS credentials (and SD-JWT VC batches), and presentations.

File: JSON ``{"format", "kdf": {scrypt n, r, p, salt}, "cipher": "AES-256-GCM", "nonce", "ciphertext"}``; the
key is scrypt(passphrase), the header fields are the AEAD's associated data (so nobody can weaken the KDF
parameters unnoticed), a fresh 96-bit nonce is drawn for every save, and the file is written atomically with
mode 0600. Nothing about the holder is readable without the passphrase.

BBS: a credential is used for any number of presentations; each is a fresh zero-knowledge proof, and the
pseudonym is stable per service and unrelated across services. SD-JWT VCs are once-only: each presentation
uses (and deletes) one unused credential of the batch.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from idproof.credential.attributes import ATTRIBUTES, CredentialAttributes
from idproof.credential.bbs import SHA256, pseudonym
from idproof.credential.verify import (
    ALWAYS_DISCLOSED,
    FORMAT,
    CredentialError,
    b64d,
    b64e,
    context_id,
    header,
    issuer_key,
    presentation_header,
)

WALLET_FORMAT = "idproof-wallet/1"
# scrypt cost: N=2^17, r=8, p=1 (OWASP's recommendation; ~128 MiB and a fraction of a second, once per open)
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
_MAX_SCRYPT_N = 2**20  # a file asking for more is refused rather than eating the machine's memory
_PLAINTEXT_VERSION = 1
MAX_PENDING = 8  # issuance requests awaiting a response; older ones are dropped (accept tries each)


def _locked(path: Path) -> CredentialError:
    return CredentialError("wallet_locked", f"Cannot open {path}: wrong passphrase, or the file was modified.",
                           fix="Check the passphrase (IDPROOF_WALLET_PASSPHRASE); if it is right, restore the "
                               "wallet file from a backup.")


@dataclass(frozen=True)
class StoredCredential:
    """A held BBS credential. The secrets needed to present it are kept out of repr."""

    issuer: str
    kid: str
    claims: dict[str, Any]
    expires: date
    format: str = FORMAT
    public_key: bytes = field(default=b"", repr=False)
    signature: bytes = field(default=b"", repr=False)
    nym_secret: bytes = field(default=b"", repr=False)
    secret_prover_blind: bytes = field(default=b"", repr=False)

    def __repr__(self) -> str:
        return f"StoredCredential(issuer={self.issuer!r}, kid={self.kid!r}, expires={self.expires.isoformat()})"

    def to_public_dict(self) -> dict[str, Any]:
        """What `wallet show` prints: claims, issuer, kid, expires; no secret."""
        return {"format": self.format, "issuer": self.issuer, "kid": self.kid, "expires": self.expires.isoformat(),
                "claims": dict(self.claims)}

    def _to_doc(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "kid": self.kid, "claims": self.claims, "public_key": b64e(self.public_key),
                "signature": b64e(self.signature), "nym_secret": b64e(self.nym_secret),
                "secret_prover_blind": b64e(self.secret_prover_blind)}

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> StoredCredential:
        attrs = CredentialAttributes.from_claims(doc["claims"])
        return cls(issuer=doc["issuer"], kid=doc["kid"], claims=attrs.to_claims(), expires=attrs.expires,
                   public_key=b64d(doc["public_key"]), signature=b64d(doc["signature"]),
                   nym_secret=b64d(doc["nym_secret"]), secret_prover_blind=b64d(doc["secret_prover_blind"]))


@dataclass
class _Pending:
    prover_nym: bytes = field(repr=False)
    secret_prover_blind: bytes = field(repr=False)


def _check_show(show: Sequence[str]) -> list[str]:
    if isinstance(show, str):
        raise TypeError("show must be a list of attribute names, e.g. ['age_over_18'], not a single string")
    unknown = [s for s in show if s not in ATTRIBUTES]
    if unknown:
        raise CredentialError("attribute_unknown", f"Unknown attribute(s) {', '.join(map(repr, unknown))}.",
                              fix=f"Choose from {', '.join(ATTRIBUTES)}.")
    return list(dict.fromkeys(show))


class Wallet:
    """Open with :meth:`create` or :meth:`open`; every change is saved to the file at once."""

    def __init__(self, path: Path, key: bytes, kdf: dict[str, Any], state: dict[str, Any]) -> None:
        self._path = path
        self._key = key
        self._kdf = kdf
        self._bbs: list[StoredCredential] = [StoredCredential._from_doc(d) for d in state.get("bbs", [])]
        self._sdjwt: list[dict[str, Any]] = list(state.get("sdjwt", []))
        self._pending: list[_Pending] = []  # issuance requests in flight: memory only
        self._saved_pending: list[_Pending] = [
            _Pending(b64d(p["prover_nym"]), b64d(p["secret_prover_blind"])) for p in state.get("pending", [])]

    def __repr__(self) -> str:
        return f"Wallet({str(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    # --- file -----------------------------------------------------------------------------------------------

    @staticmethod
    def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
        return Scrypt(salt=b64d(kdf["salt"]), length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(
            passphrase.encode("utf-8"))

    @staticmethod
    def _aad(kdf: dict[str, Any]) -> bytes:
        return json.dumps({"format": WALLET_FORMAT, "kdf": kdf, "cipher": "AES-256-GCM"}, sort_keys=True,
                          separators=(",", ":")).encode("utf-8")

    @classmethod
    def create(cls, path: str | os.PathLike[str], passphrase: str) -> Wallet:
        """A new, empty wallet file at ``path`` (mode 0600). Refuses to overwrite an existing file."""
        path = Path(path)
        if not isinstance(passphrase, str) or not passphrase:
            raise ValueError("passphrase must be a non-empty string")
        if path.exists():
            raise CredentialError("wallet_exists", f"{path} already exists; refusing to overwrite a wallet.",
                                  fix="Open it with its passphrase, or choose another path.")
        kdf = {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": b64e(secrets.token_bytes(16))}
        wallet = cls(path, cls._derive(passphrase, kdf), kdf, {})
        wallet._save(exclusive=True)
        return wallet

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str) -> Wallet:
        """Open and decrypt ``path``. Wrong passphrase (or a modified file): CredentialError(wallet_locked)."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CredentialError("wallet_missing", f"There is no wallet at {path}.",
                                  fix="Create one with `idproof wallet init PATH`, or pass --wallet.") from None
        except (OSError, ValueError):
            raise CredentialError("malformed", f"{path} is not an idproof wallet file.",
                                  fix="Point --wallet to the file `idproof wallet init` made.") from None
        try:
            kdf = doc["kdf"]
            ok = (doc["format"] == WALLET_FORMAT and doc["cipher"] == "AES-256-GCM" and kdf["name"] == "scrypt"
                  and all(isinstance(kdf[k], int) and not isinstance(kdf[k], bool) for k in ("n", "r", "p"))
                  and 2 <= kdf["n"] <= _MAX_SCRYPT_N and 1 <= kdf["r"] <= 32 and 1 <= kdf["p"] <= 16
                  and set(kdf) == {"name", "n", "r", "p", "salt"})
            nonce, ciphertext = b64d(doc["nonce"]), b64d(doc["ciphertext"])
            if not ok:
                raise ValueError
            key = cls._derive(passphrase, kdf)
        except (KeyError, TypeError, ValueError, CredentialError):
            raise CredentialError("malformed", f"{path} is not an idproof wallet file (or a newer version).",
                                  fix="Point --wallet to the file `idproof wallet init` made.") from None
        try:
            plain = AESGCM(key).decrypt(nonce, ciphertext, cls._aad(kdf))
        except (InvalidTag, ValueError):
            raise _locked(path) from None
        state = json.loads(plain)
        if state.get("version") != _PLAINTEXT_VERSION:
            raise CredentialError("malformed", f"{path} was written by a newer idproof.", fix="Upgrade idproof.")
        return cls(path, key, kdf, state)

    def _save(self, *, exclusive: bool = False) -> None:
        state = {"version": _PLAINTEXT_VERSION, "bbs": [c._to_doc() for c in self._bbs], "sdjwt": self._sdjwt,
                 "pending": [{"prover_nym": b64e(p.prover_nym), "secret_prover_blind": b64e(p.secret_prover_blind)}
                             for p in self._saved_pending]}
        nonce = secrets.token_bytes(12)
        ciphertext = AESGCM(self._key).encrypt(nonce, json.dumps(state).encode("utf-8"), self._aad(self._kdf))
        doc = {"format": WALLET_FORMAT, "kdf": self._kdf, "cipher": "AES-256-GCM", "nonce": b64e(nonce),
               "ciphertext": b64e(ciphertext)}
        data = (json.dumps(doc, indent=2) + "\n").encode("ascii")
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if exclusive:
            try:
                fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise CredentialError("wallet_exists", f"{self._path} already exists; refusing to overwrite a "
                                                       "wallet.", fix="Open it, or choose another path.") from None
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return
        # atomic replace: a crash leaves the old file or the new one, never half of one (mkstemp makes it 0600)
        fd, tmp = tempfile.mkstemp(prefix=".wallet-", dir=self._path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- BBS issuance ---------------------------------------------------------------------------------------

    def issuance_request(self, *, keep_pending: bool = False) -> dict[str, Any]:
        """A request for the issuer: a commitment to a fresh random ``prover_nym`` with its proof of correctness.
        The nym share stays in memory until :meth:`accept`; ``keep_pending=True`` also saves it (encrypted) in
        the wallet file, for when the response is accepted by another process (the CLI)."""
        prover_nym = pseudonym.random_prover_nym()
        commitment, blind = pseudonym.commit([], prover_nym, SHA256)
        pending = _Pending(prover_nym, blind)
        if keep_pending:
            self._saved_pending = [*self._saved_pending, pending][-MAX_PENDING:]
            self._save()
        else:
            self._pending = [*self._pending, pending][-MAX_PENDING:]
        return {"format": FORMAT, "commitment": b64e(commitment)}

    def accept(self, response: dict, issuer_metadata: dict) -> StoredCredential:
        """Check the issuer's response against its published key and one of this wallet's pending requests,
        complete the nym secret, store the credential and save the file."""
        if not isinstance(response, dict) or response.get("format") != FORMAT:
            raise CredentialError("malformed", f"The credential response is not a {FORMAT} response.",
                                  fix="Pass the issuer's response JSON unchanged.")
        kid = response.get("kid")
        issuer_id, key = issuer_key(issuer_metadata, kid if isinstance(kid, str) else "")
        if response.get("issuer") != issuer_id:
            raise CredentialError("issuer_mismatch", "The response names another issuer than the metadata given.",
                                  fix="Pass the metadata of the issuer that made the response.")
        key.check_valid(datetime.now(UTC))
        try:
            attrs = CredentialAttributes.from_claims(response.get("claims"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise CredentialError("malformed", "The response's claims are not the credential's attributes.",
                                  fix="Pass the issuer's response JSON unchanged.") from None
        signature = b64d(response.get("signature"), "signature")
        entropy = b64d(response.get("signer_nym_entropy"), "signer_nym_entropy")
        hdr, messages = header(issuer_id, key.kid), attrs.messages()
        for pool in (self._pending, self._saved_pending):
            for pending in pool:
                nym_secret = pseudonym.verify_and_finalize(
                    key.pk, signature, hdr, messages, [], pending.prover_nym, entropy, pending.secret_prover_blind,
                    SHA256)
                if nym_secret is None:
                    continue
                pool.remove(pending)
                cred = StoredCredential(issuer=issuer_id, kid=key.kid, claims=attrs.to_claims(),
                                        expires=attrs.expires, public_key=key.pk, signature=signature,
                                        nym_secret=nym_secret, secret_prover_blind=pending.secret_prover_blind)
                self._bbs.append(cred)
                self._save()
                return cred
        if not self._pending and not self._saved_pending:
            raise CredentialError("no_pending_request", "This wallet has no issuance request waiting for a response.",
                                  fix="Make the issuance request with this wallet, then accept its response.")
        raise CredentialError("signature_invalid", "The credential's signature does not verify for this wallet's "
                                                   "request and the issuer's key.",
                              fix="Make a fresh issuance request; the response may be for another request or altered.")

    def credentials(self) -> list[StoredCredential]:
        """The BBS credentials held, oldest first."""
        return list(self._bbs)

    # --- BBS presentation -----------------------------------------------------------------------------------

    def _current(self, now: datetime) -> StoredCredential:
        usable = [c for c in self._bbs if c.expires >= now.date()]
        if not usable:
            raise CredentialError("no_credential", "This wallet holds no unexpired BBS credential.",
                                  fix="Prove your identity again and accept the new credential.")
        return max(usable, key=lambda c: c.expires)  # the freshest

    def present(self, service_id: str, nonce: str, show: Sequence[str]) -> str:
        """A fresh zero-knowledge presentation for ``service_id`` answering its ``nonce``, disclosing ``show``
        (and always ``expires``), with this person's pseudonym at that service. Returns a compact string."""
        if not isinstance(service_id, str) or not service_id or not isinstance(nonce, str) or not nonce:
            raise ValueError("service_id and nonce must be the non-empty strings the verifier asked with")
        names = set(_check_show(show)) | set(ALWAYS_DISCLOSED)
        cred = self._current(datetime.now(UTC))
        indexes = [i for i, n in enumerate(ATTRIBUTES) if n in names]
        messages = CredentialAttributes.from_claims(cred.claims).messages()
        proof, nym = pseudonym.proof_gen(
            cred.public_key, cred.signature, header(cred.issuer, cred.kid), presentation_header(service_id, nonce),
            cred.nym_secret, context_id(service_id), messages, [], indexes, [], cred.secret_prover_blind, SHA256)
        doc = {"format": FORMAT, "issuer": cred.issuer, "kid": cred.kid,
               "disclosed": {ATTRIBUTES[i]: cred.claims[ATTRIBUTES[i]] for i in indexes},
               "disclosed_indexes": indexes, "proof": b64e(proof), "pseudonym": b64e(nym),
               "aud": service_id, "nonce": nonce}
        return b64e(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    # --- SD-JWT VC ------------------------------------------------------------------------------------------

    def add_sdjwt_batch(self, credentials: list[str], holder_keys: list[dict]) -> None:
        """Store once-only SD-JWT VCs, each with the private holder JWK (dict) it is bound to."""
        if isinstance(credentials, str) or len(credentials) != len(holder_keys) or not credentials:
            raise ValueError("credentials and holder_keys must be non-empty lists of the same length, in order")
        for cred, jwk in zip(credentials, holder_keys, strict=True):
            if not isinstance(cred, str) or not cred.endswith("~") or not isinstance(jwk, dict) or "d" not in jwk:
                raise ValueError("each credential must be an issued SD-JWT (ending with '~') with its private JWK")
            self._sdjwt.append({"credential": cred, "holder_key": dict(jwk)})
        self._save()

    def sdjwt_remaining(self) -> int:
        """How many unused SD-JWT VCs are left."""
        return len(self._sdjwt)

    def present_sdjwt(self, service_id: str, nonce: str, show: Sequence[str]) -> str:
        """An SD-JWT+KB presentation from one unused credential of the batch, which is then deleted (saved
        before the presentation is returned, so a credential is never shown twice)."""
        from jwcrypto.jwk import JWK

        from idproof.credential import sdjwt

        names = _check_show(show)
        if not self._sdjwt:
            raise CredentialError("no_unused_credential", "No unused SD-JWT credential is left in this wallet.",
                                  fix="Ask the issuer for a new batch (or present the BBS credential instead).")
        entry = self._sdjwt[0]
        presentation = sdjwt.present(entry["credential"], JWK(**entry["holder_key"]), disclose=names,
                                     aud=service_id, nonce=nonce)
        self._sdjwt.pop(0)
        self._save()
        return presentation
