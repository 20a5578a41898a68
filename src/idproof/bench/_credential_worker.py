"""Worker process of ``idproof bench credential``: one implementation, pinned to one CPU, timing on command.

    python -m idproof.bench._credential_worker IMPL CPU

IMPL is one of :data:`IMPLS`. The worker pins itself to CPU (``os.sched_setaffinity``) before it imports the
implementation, does its setup (keys, holder keys, a first credential; untimed), then answers JSON commands, one
per line on stdin, with one ``@@result {json}`` line on stdout each:

- ``{"op": "setup"}``: ``{"sizes": {...}, "info": {...}}`` (sizes of real outputs, in bytes);
- ``{"op": "phase", "phase": "issue" | "present" | "verify" | ..., "seconds": S}``: repeat the phase's operation
  until S seconds have passed (and at least :data:`MIN_OPS` times): ``{"ops", "wall_s", "cpu_s", "latencies"}``
  (``latencies``: seconds per operation; ``cpu_s``: this process's CPU time over the phase);
- ``{"op": "quit"}``.

An error answers ``{"error": "traceback"}``. The parent interleaves the implementations phase by phase (only one
worker works at a time), so they share the machine's state; see :mod:`idproof.bench.credential`.

The peer (the ``sd-jwt`` PyPI package) is imported only in its own worker: idproof's runtime never imports it.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

IMPLS = ("bbs_library", "bbs_product", "sdjwt", "sdjwt_peer")
MIN_OPS = 3
POOL = 256  # outputs of one phase kept as inputs of the next (cycled): every verify sees a real, distinct one
HOLDER_KEYS = 64  # fresh holder key pairs made at setup (untimed), cycled over the issued credentials

ISS = "https://issuer.idproof.example"
SERVICE = "https://rp.example"  # the verifier: BBS context_id (pseudonym scope) and SD-JWT KB-JWT aud
VCT = "https://idproof.example/credentials/identity"
KID = "bench-1"
# 6 claims, the same for every implementation; the one disclosed is DISCLOSED
CLAIMS: dict[str, Any] = {"given_name": "Ada", "family_name": "Lovelace", "birthdate": "1815-12-10",
                          "age_over_18": True, "nationality": "GB", "document_number": "X1234567"}
DISCLOSED = "age_over_18"


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _bbs_message(name: str, value: Any) -> bytes:
    """``name=value`` (booleans ``true``/``false``), as idproof.credential.attributes encodes its attributes."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"{name}={text}".encode()


class _Impl:
    """One implementation: ``ops`` maps a phase name to a callable doing one operation and returning how many
    items it produced (1, or a batch's size)."""

    ops: dict[str, Callable[[], int]]

    def __init__(self) -> None:
        self.n = 0  # a counter, for distinct nonces

    def nonce(self) -> str:
        self.n += 1
        return f"nonce-{self.n:08d}"

    @staticmethod
    def keep(pool: list, item: Any) -> None:
        pool.append(item)
        if len(pool) > POOL:
            del pool[: len(pool) - POOL]

    def sizes(self) -> dict[str, int]:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {}


class BbsLibrary(_Impl):
    """``idproof.credential.bbs.pseudonym`` directly: BLS12-381-SHA-256, 6 signed messages, the holder's nym
    committed blindly, 1 message disclosed plus the pseudonym for ``context_id`` = the service id."""

    def __init__(self) -> None:
        super().__init__()
        import secrets

        from idproof.credential.bbs import SHA256, core, pseudonym

        self.pseudonym, self.suite = pseudonym, SHA256
        self.sk = core.keygen(secrets.token_bytes(32), b"idproof-bench", suite=SHA256)
        self.pk = core.sk_to_pk(self.sk, SHA256)
        self.header = f"idproof-bench|{ISS}|{KID}".encode()
        self.messages = [_bbs_message(k, v) for k, v in CLAIMS.items()]
        self.index = list(CLAIMS).index(DISCLOSED)
        self.context_id = SERVICE.encode()
        # holders' issuance requests (untimed): commitments to fresh prover_nyms, with their secrets
        self.requests = []
        for _ in range(16):
            nym = pseudonym.random_prover_nym()
            cwp, blind = pseudonym.commit([], nym, SHA256)
            self.requests.append((cwp, nym, blind))
        cwp, nym, blind = self.requests[0]
        self.signature, entropy = pseudonym.blind_sign(self.sk, self.pk, cwp, self.header, self.messages, suite=SHA256)
        self.nym_secret = pseudonym.verify_and_finalize(self.pk, self.signature, self.header, self.messages, [], nym,
                                                        entropy, blind, SHA256)
        if self.nym_secret is None:
            raise RuntimeError("BBS setup: the blind signature does not verify")
        self.blind = blind
        self.issued: list[bytes] = []
        self.presented: list[tuple[bytes, bytes, bytes]] = []
        self.ops = {"issue": self.issue, "present": self.present, "verify": self.verify}
        self.present()

    def issue(self) -> int:
        cwp = self.requests[self.n % len(self.requests)][0]
        self.n += 1
        sig, _ = self.pseudonym.blind_sign(self.sk, self.pk, cwp, self.header, self.messages, suite=self.suite)
        self.keep(self.issued, sig)
        return 1

    def present(self) -> int:
        ph = json.dumps({"aud": SERVICE, "nonce": self.nonce()}, sort_keys=True, separators=(",", ":")).encode()
        proof, nym = self.pseudonym.proof_gen(self.pk, self.signature, self.header, ph, self.nym_secret,
                                              self.context_id, self.messages, [], [self.index], [], self.blind,
                                              self.suite)
        self.keep(self.presented, (proof, nym, ph))
        return 1

    def verify(self) -> int:
        proof, nym, ph = self.presented[self.n % len(self.presented)]
        self.n += 1
        ok = self.pseudonym.proof_verify(self.pk, proof, self.header, ph, nym, self.context_id, len(self.messages),
                                         [self.messages[self.index]], [], [self.index], [], self.suite)
        if not ok:
            raise RuntimeError("BBS proof_verify refused a valid proof")
        return 1

    def sizes(self) -> dict[str, int]:
        proof, nym, _ = self.presented[-1]
        return {"proof_bytes": len(proof), "pseudonym_bytes": len(nym), "signature_bytes": len(self.signature),
                "commitment_bytes": len(self.requests[0][0]), "public_key_bytes": len(self.pk),
                "disclosed_message_bytes": len(self.messages[self.index])}

    def info(self) -> dict[str, Any]:
        return {"attributes": len(self.messages), "disclosed": 1, "ciphersuite": "BLS12-381-SHA-256"}


class BbsProduct(_Impl):
    """The product path: ``BbsIssuer.issue`` (request JSON in, response JSON out), ``Wallet.present`` (a
    base64url JSON presentation string) and ``verify.verify`` (parse, checks, proof) on the credential's 7
    attributes; the holder shows ``age_over_18`` and ``expires`` is always disclosed."""

    def __init__(self) -> None:
        super().__init__()
        from idproof.credential import verify as verify_mod
        from idproof.credential.attributes import CredentialAttributes
        from idproof.credential.issuer import BbsIssuer, IssuerKey, issuer_metadata
        from idproof.credential.wallet import Wallet

        self.verify_mod = verify_mod
        key = IssuerKey.generate(kid=KID)
        self.issuer = BbsIssuer(key, ISS)
        self.metadata = issuer_metadata([key], ISS)
        self.attributes = CredentialAttributes(
            verified=True, age_over_18=True, age_over_21=True, given_name="Ada", family_name="Lovelace",
            issuing_state="GBR", expires=date.today() + timedelta(days=30))
        self.tmp = tempfile.TemporaryDirectory(prefix="idproof-bench-credential-")
        self.wallet = Wallet.create(os.path.join(self.tmp.name, "wallet.json"), "bench passphrase")  # scrypt: setup
        first = self.wallet.issuance_request()
        self.response = self.issuer.issue(first, self.attributes)
        self.wallet.accept(self.response, self.metadata)
        # more holders' requests for the issue phase (the issuer is stateless: none of them is accepted)
        self.requests = [first] + [self.wallet.issuance_request() for _ in range(15)]
        self.presented: list[tuple[str, str]] = []
        self.ops = {"issue": self.issue, "present": self.present, "verify": self.verify}
        self.present()

    def issue(self) -> int:
        self.issuer.issue(self.requests[self.n % len(self.requests)], self.attributes)
        self.n += 1
        return 1

    def present(self) -> int:
        nonce = self.nonce()
        self.keep(self.presented, (self.wallet.present(SERVICE, nonce, [DISCLOSED]), nonce))
        return 1

    def verify(self) -> int:
        pres, nonce = self.presented[self.n % len(self.presented)]
        self.n += 1
        result = self.verify_mod.verify(pres, self.metadata, service_id=SERVICE, nonce=nonce)
        if result.disclosed.get(DISCLOSED) is not True:
            raise RuntimeError("verify.verify lost the disclosed attribute")
        return 1

    def sizes(self) -> dict[str, int]:
        pres = self.presented[-1][0]
        out = {"presentation_bytes": len(pres.encode()),
                "issuance_request_bytes": len(json.dumps(self.requests[0], separators=(",", ":")).encode()),
                "issuance_response_bytes": len(json.dumps(self.response, separators=(",", ":")).encode())}
        try:  # base64url(JSON) with the proof in base64url, as verify.py documents it
            doc = json.loads(_b64d(pres))
            out["proof_bytes"] = len(_b64d(doc["proof"]))
        except (ValueError, KeyError, TypeError):
            pass  # another encoding: the presentation's size is still right
        return out

    def info(self) -> dict[str, Any]:
        from idproof.credential.attributes import ATTRIBUTES

        return {"attributes": len(ATTRIBUTES), "disclosed": sorted({DISCLOSED, "expires"}),
                "ciphersuite": "BLS12-381-SHA-256"}


class SdJwt(_Impl):
    """``idproof.credential.sdjwt``: ES256 issuer and holder keys, 6 claims all selectively disclosable (with
    decoys), one disclosed, KB-JWT; verified against the issuer metadata (the issuer key imported once, cached)."""

    BATCH = 10

    def __init__(self) -> None:
        super().__init__()
        from jwcrypto.jwk import JWK

        from idproof.credential import sdjwt

        self.sdjwt = sdjwt
        self.issuer_key = JWK.generate(kty="EC", crv="P-256", kid=KID)
        self.metadata = sdjwt.issuer_metadata([self.issuer_key], ISS)
        self.holders = [JWK.generate(kty="EC", crv="P-256") for _ in range(HOLDER_KEYS)]
        self.publics = [JWK(**h.export_public(as_dict=True)) for h in self.holders]
        self.lifetime = timedelta(days=30)
        self.issued: list[tuple[str, int]] = []
        self.presented: list[tuple[str, str]] = []
        self.ops = {"issue": self.issue, "issue_batch": self.issue_batch, "present": self.present,
                    "verify": self.verify}
        self.issue()
        self.present()
        self.verify()

    def _issue(self, idx: list[int]) -> list[str]:
        return self.sdjwt.issue_batch(self.issuer_key, iss=ISS, kid=KID, vct=VCT, claims=CLAIMS,
                                      holder_keys=[self.publics[i] for i in idx], lifetime=self.lifetime)

    def issue(self) -> int:
        i = self.n % HOLDER_KEYS
        self.n += 1
        self.keep(self.issued, (self._issue([i])[0], i))
        return 1

    def issue_batch(self) -> int:
        idx = [(self.n + k) % HOLDER_KEYS for k in range(self.BATCH)]
        self.n += self.BATCH
        self._issue(idx)
        return self.BATCH

    def present(self) -> int:
        cred, i = self.issued[self.n % len(self.issued)]
        nonce = self.nonce()
        pres = self.sdjwt.present(cred, self.holders[i], disclose=[DISCLOSED], aud=SERVICE, nonce=nonce)
        self.keep(self.presented, (pres, nonce))
        return 1

    def verify(self) -> int:
        pres, nonce = self.presented[self.n % len(self.presented)]
        self.n += 1
        # every check as shipped; only the KB-JWT age window is widened (default 5 min), as a presentation may be
        # verified a few phases after it was made when --seconds is large
        result = self.sdjwt.verify(pres, self.metadata, aud=SERVICE, nonce=nonce, max_kb_age=timedelta(days=1))
        if result.claims != {DISCLOSED: True} or not result.key_bound:
            raise RuntimeError("sdjwt.verify returned other claims than the one disclosed")
        return 1

    def sizes(self) -> dict[str, int]:
        pres = self.presented[-1][0]
        return {"credential_bytes": len(self.issued[-1][0].encode()), "presentation_bytes": len(pres.encode()),
                "kb_jwt_bytes": len(pres.rsplit("~", 1)[1].encode())}

    def info(self) -> dict[str, Any]:
        return {"claims": len(CLAIMS), "disclosed": 1, "alg": "ES256", "key_binding": True,
                "issue_batch_size": self.BATCH}


class SdJwtPeer(_Impl):
    """The ``sd-jwt`` PyPI package (the IETF reference implementation): SDJWTIssuer / SDJWTHolder /
    SDJWTVerifier, ES256, the same 6 claims each wrapped in SDObj (selectively disclosable), decoys on,
    ``iss``/``vct``/``iat``/``nbf``/``exp`` plaintext, ``typ`` dc+sd-jwt and ``kid`` in the header, KB-JWT."""

    def __init__(self) -> None:
        super().__init__()
        from importlib.metadata import version

        from jwcrypto.jwk import JWK
        from sd_jwt.common import SDObj
        from sd_jwt.holder import SDJWTHolder
        from sd_jwt.issuer import SDJWTIssuer
        from sd_jwt.verifier import SDJWTVerifier

        self.Issuer, self.Holder, self.Verifier = SDJWTIssuer, SDJWTHolder, SDJWTVerifier
        self.version = version("sd-jwt")
        self.issuer_key = JWK.generate(kty="EC", crv="P-256", kid=KID)
        self.issuer_public = JWK(**self.issuer_key.export_public(as_dict=True))  # imported once, as ours caches it
        self.holders = [JWK.generate(kty="EC", crv="P-256") for _ in range(HOLDER_KEYS)]
        now = int(time.time())
        iat = now - now % 3600
        self.claims = {"iss": ISS, "vct": VCT, "iat": iat, "nbf": iat, "exp": iat + 30 * 86400,
                       **{SDObj(k): v for k, v in CLAIMS.items()}}
        self.issued: list[tuple[str, int]] = []
        self.presented: list[tuple[str, str]] = []
        self.ops = {"issue": self.issue, "present": self.present, "verify": self.verify}
        self.issue()
        self.present()
        self.verify()

    def _key(self, iss: str | None, header: dict) -> Any:
        return self.issuer_public

    def issue(self) -> int:
        i = self.n % HOLDER_KEYS
        self.n += 1
        sd = self.Issuer(self.claims, self.issuer_key, holder_key=self.holders[i], sign_alg="ES256",
                         add_decoy_claims=True, extra_header_parameters={"typ": "dc+sd-jwt", "kid": KID})
        self.keep(self.issued, (sd.sd_jwt_issuance, i))
        return 1

    def present(self) -> int:
        cred, i = self.issued[self.n % len(self.issued)]
        nonce = self.nonce()
        holder = self.Holder(cred)
        holder.create_presentation({DISCLOSED: True}, nonce, SERVICE, self.holders[i], "ES256")
        self.keep(self.presented, (holder.sd_jwt_presentation, nonce))
        return 1

    def verify(self) -> int:
        pres, nonce = self.presented[self.n % len(self.presented)]
        self.n += 1
        payload = self.Verifier(pres, self._key, SERVICE, nonce).get_verified_payload()
        if payload.get(DISCLOSED) is not True or any(k in payload for k in CLAIMS if k != DISCLOSED):
            raise RuntimeError("sd-jwt's verifier returned other claims than the one disclosed")
        return 1

    def sizes(self) -> dict[str, int]:
        pres = self.presented[-1][0]
        return {"credential_bytes": len(self.issued[-1][0].encode()), "presentation_bytes": len(pres.encode()),
                "kb_jwt_bytes": len(pres.rsplit("~", 1)[1].encode())}

    def info(self) -> dict[str, Any]:
        return {"package": "sd-jwt", "version": self.version, "claims": len(CLAIMS), "disclosed": 1, "alg": "ES256",
                "key_binding": True}


CLASSES: dict[str, type[_Impl]] = {"bbs_library": BbsLibrary, "bbs_product": BbsProduct, "sdjwt": SdJwt,
                                   "sdjwt_peer": SdJwtPeer}


def timed(op: Callable[[], int], seconds: float) -> dict[str, Any]:
    """Repeat ``op`` for ``seconds`` (at least MIN_OPS times); latencies are per item (a batch's time / its size)."""
    gc.collect()
    lat: list[float] = []
    items = 0
    clock = time.perf_counter
    cpu0, t0 = time.process_time(), clock()
    deadline = t0 + seconds
    while True:
        a = clock()
        k = op()
        b = clock()
        items += k
        lat.extend([(b - a) / k] * k)
        if b >= deadline and len(lat) >= MIN_OPS:
            break
    wall, cpu = clock() - t0, time.process_time() - cpu0
    return {"ops": items, "wall_s": wall, "cpu_s": cpu, "latencies": lat}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in CLASSES:
        print(__doc__, file=sys.stderr)
        return 2
    name, cpu = argv[0], int(argv[1])
    if cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    out = sys.stdout
    sys.stdout = sys.stderr  # only protocol lines on the pipe

    def answer(obj: dict) -> None:
        out.write("@@result " + json.dumps(obj) + "\n")
        out.flush()

    impl: _Impl | None = None
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            if cmd["op"] == "quit":
                break
            if cmd["op"] == "setup":
                t = time.perf_counter()
                impl = CLASSES[name]()
                answer({"sizes": impl.sizes(), "info": impl.info(), "setup_s": time.perf_counter() - t,
                        "cpu": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None})
            elif cmd["op"] == "phase":
                assert impl is not None, "setup first"
                answer(timed(impl.ops[cmd["phase"]], float(cmd["seconds"])))
            else:
                answer({"error": f"unknown op {cmd['op']!r}"})
        except Exception:  # noqa: BLE001 - reported to the parent, which decides
            answer({"error": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
