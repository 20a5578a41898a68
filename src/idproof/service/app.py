"""The idproof HTTP service: proofing sessions, the subscriber registry, the audit trail.

    from idproof.service import Settings, create_app
    app = create_app(Settings(registry_key="file:/etc/idproof/registry.key", db_url="sqlite:///idproof.db"))

Images are read from the request stream into memory, verified, and dropped (see ``uploads``); the
database holds decisions (outcome, scores), identity handles and bindings, never images or personal data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from idproof import __version__
from idproof.imageio import DEFAULT_MAX_BYTES
from idproof.service.models import Health
from idproof.service.problems import PROBLEM_MEDIA_TYPE, ProblemError, install_handlers, problem_responses

if TYPE_CHECKING:
    from idproof.api import Verifier
    from idproof.document.chip import TrustStore
    from idproof.document.reading import DocumentPolicy
    from idproof.registry.handles import RegistryKey

__all__ = ["Settings", "create_app", "load_trust"]


@dataclass(frozen=True)
class Settings:
    registry_key: str | RegistryKey  # "file:PATH" | "env:VAR" | "kms:module:function", or a RegistryKey
    db_url: str | None = None  # None: $IDPROOF_DB or the embedded SQLite file (idproof.storage.store.default_url)
    csca: tuple[str | Path, ...] = ()  # CSCA certificates / folders / ICAO master lists (.ml); none: no chip uploads
    max_upload_bytes: int = DEFAULT_MAX_BYTES  # per upload (one image, or the chip files together)
    max_sessions: int = 64  # open proofing sessions, all operators together
    session_ttl: timedelta = timedelta(minutes=10)
    max_buffered_bytes: int = 1 << 30  # uploads held in memory by all open sessions together
    cap: int = 5  # numbers per identity, across operators
    proofing_max_age: timedelta = timedelta(minutes=15)  # how fresh a proofing must be to bind / transfer
    min_age: int = 18
    verifier_factory: Callable[[RegistryKey, DocumentPolicy], Verifier] | None = None  # default: Verifier(...)
    registry_clock: Callable[[], datetime] | None = None  # for tests
    # Person-held credentials (OpenID4VCI-style; see routes_credential). Off unless a key is given.
    credential_issuer: str | None = None  # this service's public URL, e.g. "https://idproof.example": the issuer id
    bbs_issuer_key: str | Path | Any = None  # "file:PATH" / PATH of IssuerKey.save, or an IssuerKey
    sdjwt_issuer_key: str | Path | Any = None  # "file:PATH" / PATH of SdJwtIssuerKey.save, or an SdJwtIssuerKey
    credential_lifetime: timedelta = timedelta(days=30)
    # Signed evidence: with an Ed25519 key (idproof evidence keygen), every decision gets a signed record.
    evidence_key: str | Path | Any = None  # PATH of EvidenceKey.save, or an EvidenceKey
    audit_key: str | Path | Any = None  # PATH/"file:PATH" of idproof audit keygen, or a TreeHeadSigner (signs tree heads)
    # Sealed templates the person keeps (idproof.sealed): off unless a sealing key is given.
    sealing_key: str | Path | Any = None  # PATH / "file:PATH" of generate_sealing_key, or an Ed25519PrivateKey
    sealing_verify_keys: tuple[str | Path | Any, ...] = ()  # earlier sealing keys (public PEM / private PEM / key
    #                                                         objects) after a rotation: their templates still open


def load_trust(paths: tuple[str | Path, ...]) -> TrustStore:
    """CSCA certificates (PEM/DER files, folders) and ICAO master lists (``.ml``) as one trust store."""
    from idproof.document.chip import TrustStore

    trust = TrustStore()
    for p in map(Path, paths):
        trust = trust + (TrustStore.from_master_list(p.read_bytes()) if p.suffix.lower() == ".ml"
                         else TrustStore.from_paths([p]))
    return trust


def _default_verifier(key: RegistryKey, policy: DocumentPolicy) -> Verifier:
    from idproof.api import Verifier

    return Verifier(registry_key=key, document_policy=policy)


def _audit_signer(spec: Any):
    """The Merkle audit log's tree-head signer (None: leaves are appended, tree heads are not signed)."""
    if spec is None:
        return None
    from idproof.audit import TreeHeadSigner

    return spec if isinstance(spec, TreeHeadSigner) else TreeHeadSigner.load(str(spec).removeprefix("file:"))


def _evidence_key(spec: Any):
    """The service's evidence signing key (None: decisions are not signed)."""
    if spec is None:
        return None
    from idproof.evidence import EvidenceKey

    if isinstance(spec, EvidenceKey):
        return spec
    return EvidenceKey.load(str(spec).removeprefix("file:"))


def _sealing_keys(settings: Settings) -> tuple[Any, tuple[Any, ...]]:
    """The sealing key and the earlier keys' public halves (None, (): sealed templates are off)."""
    if settings.sealing_key is None:
        if settings.sealing_verify_keys:
            raise ValueError("sealing_verify_keys need a sealing_key (the current key); give both or neither")
        return None, ()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from idproof.sealed import SealedTemplateError, load_sealing_key

    spec = settings.sealing_key
    key = spec if isinstance(spec, Ed25519PrivateKey) else load_sealing_key(str(spec).removeprefix("file:"))

    def public(k: Any) -> Ed25519PublicKey:
        if isinstance(k, Ed25519PublicKey):
            return k
        if isinstance(k, Ed25519PrivateKey):
            return k.public_key()
        from cryptography.hazmat.primitives import serialization

        path = Path(str(k).removeprefix("file:"))
        fix = "Give the earlier sealing key's PEM file (public or private Ed25519 key)."
        try:
            pem = path.read_bytes()
            loaded: Any = (serialization.load_pem_public_key(pem) if b"PUBLIC KEY" in pem
                           else serialization.load_pem_private_key(pem, password=None))
        except (OSError, ValueError, TypeError) as e:
            raise SealedTemplateError(f"The sealing verify key {path.name!r} cannot be read ({type(e).__name__}).",
                                      fix=fix) from e
        if isinstance(loaded, Ed25519PrivateKey):
            loaded = loaded.public_key()
        if not isinstance(loaded, Ed25519PublicKey):
            raise SealedTemplateError(f"The sealing verify key {path.name!r} is not an Ed25519 key.", fix=fix)
        return loaded

    return key, tuple(public(k) for k in settings.sealing_verify_keys)


def _credential_issuer(settings: Settings):
    """The credential issuer from the settings' keys (None when no issuer key is configured)."""
    if settings.bbs_issuer_key is None and settings.sdjwt_issuer_key is None:
        return None
    from idproof.service.credential_offers import (
        CredentialIssuer,
        load_bbs_key,
        load_sdjwt_key,
    )

    if not settings.credential_issuer:
        raise ValueError("issuer keys need Settings.credential_issuer: the service's public URL (the issuer id "
                         "signed into every credential)")
    return CredentialIssuer(settings.credential_issuer, bbs_key=load_bbs_key(settings.bbs_issuer_key),
                            sdjwt_key=load_sdjwt_key(settings.sdjwt_issuer_key), lifetime=settings.credential_lifetime)


def _problem_only_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx response in the schema is problem+json (FastAPI documents its own 422 as JSON)."""
    ref = {"$ref": "#/components/schemas/Problem"}
    for item in schema.get("paths", {}).values():
        for op in item.values():
            for status, resp in op.get("responses", {}).items():
                if status[0] in "45":
                    resp["content"] = {PROBLEM_MEDIA_TYPE: {"schema": ref}}
                    if status == "422":
                        resp["description"] = "Invalid request"
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def create_app(settings: Settings) -> FastAPI:
    from idproof.document.reading import DocumentPolicy
    from idproof.registry.handles import RegistryKey
    from idproof.registry.rules import Registry
    from idproof.service import (
        routes_audit,
        routes_capture,
        routes_credential,
        routes_proofings,
        routes_registry,
        routes_sealed,
    )
    from idproof.service.deps import ServiceState
    from idproof.service.sessions import SessionStore
    from idproof.storage.store import default_url

    key = settings.registry_key if isinstance(settings.registry_key, RegistryKey) else RegistryKey.load(settings.registry_key)
    kw = {"clock": settings.registry_clock} if settings.registry_clock is not None else {}
    sealing_key, sealing_verify_keys = _sealing_keys(settings)  # before the database: a bad key file fails fast
    registry = Registry(settings.db_url or default_url(), cap=settings.cap,
                        proofing_max_age=settings.proofing_max_age, audit_signer=_audit_signer(settings.audit_key), **kw)
    state = ServiceState(
        registry=registry,
        sessions=SessionStore(max_sessions=settings.max_sessions, ttl_s=settings.session_ttl.total_seconds(),
                              max_bytes=settings.max_buffered_bytes),
        key=key,
        trust=load_trust(settings.csca) if settings.csca else None,
        policy=DocumentPolicy(min_age=settings.min_age),
        verifier_factory=settings.verifier_factory or _default_verifier,
        max_upload_bytes=settings.max_upload_bytes,
        credentials=_credential_issuer(settings),
        evidence_key=_evidence_key(settings.evidence_key),
        sealing_key=sealing_key,
        sealing_verify_keys=sealing_verify_keys,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # load the models before the first selfie arrives (off the event loop)
        await asyncio.get_running_loop().run_in_executor(state.executor, state.verifier)
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="idproof",
        version=__version__,
        summary="Privacy-first identity proofing (1:1) and a subscriber registry of numbers bound to proven identities.",
        description=(
            "Every error is `application/problem+json` (RFC 9457) with a stable `code` and a `fix`. "
            "Uploaded images stay in memory and are dropped after the decision. No endpoint lists "
            "identities, and none takes a face to search with."
        ),
        lifespan=lifespan,
    )
    app.state.idproof = state
    install_handlers(app)

    @app.get("/healthz", response_model=Health, tags=["service"], summary="Liveness")
    def healthz() -> Health:
        return Health(status="ok", version=__version__)

    @app.get("/.well-known/idproof-evidence-keys", tags=["service"], summary="Public keys of signed evidence",
             responses=problem_responses(404))
    def evidence_keys() -> dict[str, Any]:
        """The JWK set that `evidence` records are signed with (check them offline: `idproof evidence verify`)."""
        if state.evidence_key is None:
            raise ProblemError(404, "evidence_not_configured", "This server does not sign evidence records.",
                               fix="Start the server with --evidence-key (make one with `idproof evidence keygen`).")
        return {"keys": [state.evidence_key.public_jwk()]}

    app.include_router(routes_proofings.router)
    app.include_router(routes_capture.page)  # the person's capture page (GET /capture?s=TOKEN)
    app.include_router(routes_capture.api)
    for r in (routes_registry.numbers, routes_registry.events, routes_registry.me, routes_registry.audit):
        app.include_router(r)
    for r in (routes_audit.me, routes_audit.audit, routes_audit.well_known):
        app.include_router(r)
    app.include_router(routes_sealed.reauth)
    app.include_router(routes_sealed.me)
    app.include_router(routes_credential.well_known)
    app.include_router(routes_credential.credential)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problem_only_errors(get_openapi(
                title=app.title, version=app.version, summary=app.summary, description=app.description,
                routes=app.routes,
            ))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
