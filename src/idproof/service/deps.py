"""What the handlers share: the service state (registry, sessions, the one Verifier) and auth."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from idproof.registry.rules import Principal
from idproof.service.problems import ProblemError
from idproof.service.sessions import SessionStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from idproof.api import Verifier
    from idproof.decision import Decision
    from idproof.document.chip import TrustStore
    from idproof.document.reading import DocumentPolicy
    from idproof.registry.handles import RegistryKey
    from idproof.registry.rules import Registry
    from idproof.sealed import SealedTemplates
    from idproof.service.credential_offers import CredentialIssuer

__all__ = ["Auditor", "Operator", "PersonHandle", "ServiceState", "State"]


class ServiceState:
    """One per app. Verification runs on a dedicated one-thread executor: the face engine is used
    from one thread at a time, and a queue of selfies never starves the registry handlers."""

    def __init__(self, *, registry: Registry, sessions: SessionStore, key: RegistryKey, trust: TrustStore | None,
                 policy: DocumentPolicy, verifier_factory: Callable[[RegistryKey, DocumentPolicy], Verifier],
                 max_upload_bytes: int, credentials: CredentialIssuer | None = None, evidence_key: Any = None,
                 sealing_key: Ed25519PrivateKey | None = None, sealing_verify_keys: Sequence[Ed25519PublicKey] = ()) -> None:
        self.registry, self.sessions, self.key, self.trust, self.policy = registry, sessions, key, trust, policy
        self.max_upload_bytes = max_upload_bytes
        self.credentials = credentials  # the credential issuer (keys, in-memory offers); None: no issuance
        self.evidence_key = evidence_key  # idproof.evidence.EvidenceKey; None: decisions are not signed
        # sealed templates (idproof.sealed): off without a sealing key; built on first use, on the registry's
        # database and the service's one Verifier (its face engine, PAD, scorer and calibrated threshold)
        self.sealing_key = sealing_key
        self.sealing_verify_keys = tuple(sealing_verify_keys)
        self._sealed: SealedTemplates | None = None
        self._factory = verifier_factory
        self._verifier: Verifier | None = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:  # (re)made on demand: a lifespan may end and start again
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idproof-verify")
            return self._executor

    def verifier(self) -> Verifier:
        with self._lock:
            if self._verifier is None:
                v = self._factory(self.key, self.policy)
                if v.registry_key is None:
                    raise ValueError("the service's Verifier needs the registry key (Verifier(registry_key=...))")
                self._verifier = v
            return self._verifier

    @property
    def sealed(self) -> SealedTemplates | None:
        """The sealed-template service; None when the server has no sealing key. The first call builds it
        with the Verifier (loading its models if the lifespan has not): call it off the event loop."""
        if self.sealing_key is None:
            return None
        if self._sealed is None:
            verifier = self.verifier()  # takes self._lock itself
            with self._lock:
                if self._sealed is None:
                    from idproof.sealed import SealedTemplates

                    self._sealed = SealedTemplates(self.registry.engine, self.sealing_key, verifier,
                                                   verify_keys=self.sealing_verify_keys)
        return self._sealed

    async def run_verifier(self, fn: Callable[[], object]):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def verify(self, document: bytes | None, selfie: bytes, chip: dict[str, bytes] | None) -> Decision:
        chip_input = None
        if chip is not None:
            from idproof.document.reading import ChipInput

            chip_input = ChipInput(chip["SOD"], {k: v for k, v in chip.items() if k.startswith("DG")}, self.trust)
        return await self.run_verifier(lambda: self.verifier().verify(document, selfie, chip=chip_input))

    async def verify_capture(self, document: bytes | None, chip: dict[str, bytes] | None, submission, issuer) -> Decision:
        """A capture page's submission (``idproof.liveness.binding.Submission``): challenge, binding, liveness, match."""
        chip_input = None
        if chip is not None:
            from idproof.document.reading import ChipInput

            chip_input = ChipInput(chip["SOD"], {k: v for k, v in chip.items() if k.startswith("DG")}, self.trust)
        return await self.run_verifier(lambda: self.verifier().verify_capture(document, submission, issuer, chip=chip_input))

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def get_state(request: Request) -> ServiceState:
    return request.app.state.idproof


State = Annotated[ServiceState, Depends(get_state)]

_api_key = HTTPBearer(auto_error=False, scheme_name="apiKey",
                      description="An operator or auditor API key (`idproof operators add NAME`).")
_person_token = HTTPBearer(auto_error=False, scheme_name="personToken",
                           description="The person_token of the person's own accepted proofing.")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _principal(state: ServiceState, creds: HTTPAuthorizationCredentials | None) -> Principal:
    if creds is None or not creds.credentials:
        raise ProblemError(401, "unauthorized", "No API key: this endpoint needs `Authorization: Bearer <key>`.",
                           headers=_CHALLENGE)
    principal = state.registry.authenticate(creds.credentials)
    if principal is None:
        raise ProblemError(401, "unauthorized", "The API key is not valid.",
                           fix="Use the key printed by `idproof operators add` (it is shown once).", headers=_CHALLENGE)
    return principal


def operator(state: State, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key)]) -> Principal:
    p = _principal(state, creds)
    if p.role != "operator":
        raise ProblemError(403, "forbidden", "This key has the auditor role, which may only read the audit trail.",
                           fix="Auditor keys work on GET /v1/audit only; use an operator key here.")
    return p


def auditor(state: State, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key)]) -> Principal:
    p = _principal(state, creds)
    if p.role != "auditor":
        raise ProblemError(403, "forbidden", "Only auditor keys may read the audit trail.",
                           fix="Ask for an auditor key (`idproof operators add NAME --role auditor`).")
    return p


def person_handle(state: State, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_person_token)]) -> str:
    if creds is None or not creds.credentials:
        raise ProblemError(401, "unauthorized", "No person token: send `Authorization: Bearer <person_token>`.",
                           fix="Pass proofing again; an accepted proofing returns a person_token.", headers=_CHALLENGE)
    handle = state.registry.person_handle(creds.credentials)
    if handle is None:
        raise ProblemError(401, "invalid_person_token", "The person token is not valid or has expired.",
                           fix="Pass proofing again; an accepted proofing returns a new person_token.",
                           headers=_CHALLENGE)
    return handle


Operator = Annotated[Principal, Depends(operator)]
Auditor = Annotated[Principal, Depends(auditor)]
PersonHandle = Annotated[str, Depends(person_handle)]
