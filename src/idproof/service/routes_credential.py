"""Person-held credentials over HTTP: OpenID4VCI-style issuance with the pre-authorized code flow.

An accepted proofing whose document named its holder answers with a ``credential_offer`` (see
``credential_offers``: the person's attributes wait in memory, under a one-time code, for at most 10 minutes).
The person's wallet then:

1. ``GET /.well-known/openid-credential-issuer`` -- what this issuer offers (``idproof_bbs``: a BBS credential
   with one pseudonym per service; ``idproof_sd_jwt``: a batch of once-only SD-JWT VCs) and where;
2. ``POST /v1/credential/token`` -- ``grant_type=urn:ietf:params:oauth:grant-type:pre-authorized_code`` and the
   code (form-encoded as OAuth has it, or JSON): an access token and a ``c_nonce``; the code works once;
3. ``POST /v1/credential`` with ``Authorization: Bearer <access_token>``: ``{"credential_configuration_id":
   "idproof_bbs", "proof": {"commitment": ...}}`` (``Wallet.issuance_request()``), and/or
   ``{"credential_configuration_id": "idproof_sd_jwt", "proofs": {"jwk": [...]}}`` (or ``"jwt"``: OpenID4VCI key
   proofs over a ``c_nonce``), up to 20 holder keys. Each configuration is issued once per access token; after
   the last one the attributes are dropped.

Verifiers (relying parties) fetch ``GET /.well-known/idproof-issuer-keys`` once and verify presentations
offline (``idproof.credential.verify``, ``idproof.credential.relying_party``): there is deliberately no
endpoint here that receives a presentation, so the issuer never learns where a credential is used. Nothing
about issuance is written to the database or logged; the issuer keeps no record of what it signed.

Errors are problem+json; the ``code`` of OAuth / OpenID4VCI errors is the protocol's error code
(``invalid_grant``, ``unsupported_grant_type``, ``invalid_token``, ``invalid_proof``, ``invalid_nonce``,
``unknown_credential_configuration``, ``invalid_credential_request``, ``credential_request_denied``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from idproof.service.credential_offers import (
    BBS_CONFIGURATION,
    MAX_BATCH,
    PRE_AUTHORIZED_GRANT,
    SDJWT_CONFIGURATION,
    VCT,
    CredentialIssuer,
    IssuerUnavailable,
    ProofRejected,
)
from idproof.service.deps import State
from idproof.service.models import (
    AuthorizationServerMetadataOut,
    CredentialIssuerMetadataOut,
    CredentialOfferOut,
    CredentialOut,
    CredentialRequestIn,
    IssuedCredentialOut,
    IssuerKeysOut,
    NonceOut,
    OfferGrants,
    PreAuthorizedCodeGrant,
    SdJwtIssuerKeysOut,
    TokenIn,
    TokenOut,
)
from idproof.service.problems import ProblemError, problem_responses

if TYPE_CHECKING:
    from idproof.decision import Decision
    from idproof.service.deps import ServiceState

__all__ = ["credential", "credential_offer", "well_known"]

log = logging.getLogger("idproof.service")

well_known = APIRouter(prefix="/.well-known", tags=["credential"])
credential = APIRouter(prefix="/v1/credential", tags=["credential"])

MAX_TOKEN_REQUEST_BYTES = 8 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PUBLISHED = {"Cache-Control": "public, max-age=3600"}
_EN = "en"
_CLAIM_NAMES = {
    "verified": "Identity verified", "age_over_18": "Over 18", "age_over_21": "Over 21", "given_name": "Given name",
    "family_name": "Family name", "issuing_state": "Issuing state", "expires": "Valid until",
}


def _not_configured() -> ProblemError:
    return ProblemError(404, "issuer_not_configured", "This server does not issue credentials.",
                        fix="The operator must configure issuer keys (Settings.credential_issuer with "
                            "bbs_issuer_key and/or sdjwt_issuer_key).")


def get_issuer(state: State) -> CredentialIssuer:
    if state.credentials is None:
        raise _not_configured()
    return state.credentials


Issuer = Annotated[CredentialIssuer, Depends(get_issuer)]

_access_token = HTTPBearer(auto_error=False, scheme_name="accessToken",
                           description="The access_token from POST /v1/credential/token.")


def _invalid_token(detail: str) -> ProblemError:
    return ProblemError(401, "invalid_token", detail,
                        fix="Exchange the credential offer's pre-authorized code at POST /v1/credential/token "
                            "(codes and tokens last 10 minutes from the decision), or prove identity again.",
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def access_token(iss: Issuer, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_access_token)]) -> str:
    if creds is None or not creds.credentials:
        raise _invalid_token("No access token: send `Authorization: Bearer <access_token>`.")
    if not iss.offers.token_valid(creds.credentials):
        raise _invalid_token("The access token is not valid: unknown, used up or expired.")
    return creds.credentials


AccessToken = Annotated[str, Depends(access_token)]


# --- at accept --------------------------------------------------------------------------------------------------


def credential_offer(state: ServiceState, decision: Decision) -> CredentialOfferOut | None:
    """The credential offer for an accepted decision (None: not accepted, no holder data, issuance off)."""
    iss = state.credentials
    if iss is None or not decision.accepted:
        return None
    code = iss.offer_code(decision)
    if code is None:
        return None
    return CredentialOfferOut(credential_issuer=iss.issuer_id, credential_configuration_ids=list(iss.configurations),
                              grants=OfferGrants(pre_authorized_code=PreAuthorizedCodeGrant(pre_authorized_code=code)))


# --- published metadata -------------------------------------------------------------------------------------------

_GET = problem_responses(404, 500)


def _claims(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"path": [n], "display": [{"name": _CLAIM_NAMES.get(n, n), "locale": _EN}]} for n in names]


@well_known.get("/openid-credential-issuer", response_model=CredentialIssuerMetadataOut,
                response_model_exclude_none=True, responses=_GET, summary="OpenID4VCI credential issuer metadata")
def issuer_metadata(iss: Issuer, response: Response) -> CredentialIssuerMetadataOut:
    from idproof.credential.attributes import ATTRIBUTES
    from idproof.credential.verify import FORMAT, JWK_ALG

    response.headers.update(_PUBLISHED)
    display = {"display": [{"name": "idproof identity", "locale": _EN}], "claims": _claims(ATTRIBUTES)}
    configs: dict[str, Any] = {}
    if iss.bbs_key is not None:
        configs[BBS_CONFIGURATION] = {
            "format": FORMAT, "scope": BBS_CONFIGURATION,
            "cryptographic_binding_methods_supported": ["bbs_nym_commitment"],
            "credential_signing_alg_values_supported": [JWK_ALG],
            "proof_types_supported": {"idproof_bbs_commitment": {}},
            "credential_metadata": display,
        }
    if iss.sdjwt_key is not None:
        configs[SDJWT_CONFIGURATION] = {
            "format": "dc+sd-jwt", "vct": VCT, "scope": SDJWT_CONFIGURATION,
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["ES256" if iss.sdjwt_key.jwk.get("kty") == "EC" else "EdDSA"],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256", "EdDSA"]},
                                      "jwk": {}},
            "credential_metadata": display,
        }
    return CredentialIssuerMetadataOut(
        credential_issuer=iss.issuer_id, credential_endpoint=iss.url("/v1/credential"),
        nonce_endpoint=iss.url("/v1/credential/nonce"), token_endpoint=iss.url("/v1/credential/token"),
        issuer_keys=iss.url("/.well-known/idproof-issuer-keys"), batch_credential_issuance={"batch_size": MAX_BATCH},
        display=[{"name": "idproof", "locale": _EN}], credential_configurations_supported=configs,
    )


@well_known.get("/oauth-authorization-server", response_model=AuthorizationServerMetadataOut, responses=_GET,
                summary="OAuth authorization server metadata (pre-authorized code flow only)")
def authorization_server_metadata(iss: Issuer, response: Response) -> AuthorizationServerMetadataOut:
    response.headers.update(_PUBLISHED)
    return AuthorizationServerMetadataOut(
        issuer=iss.issuer_id, token_endpoint=iss.url("/v1/credential/token"), grant_types_supported=[PRE_AUTHORIZED_GRANT],
        response_types_supported=[], pre_authorized_grant_anonymous_access_supported=True)


@well_known.get("/idproof-issuer-keys", response_model=IssuerKeysOut, responses=_GET,
                summary="The issuer's public keys with their validity: fetch once, verify offline")
def issuer_keys(iss: Issuer, response: Response) -> IssuerKeysOut:
    """`bbs` is the document `idproof.credential.verify.verify` and `Wallet.accept` take; `sd_jwt` is the JWT VC
    Issuer Metadata `idproof.credential.sdjwt.verify` takes. Verifiers need nothing else from this server."""
    response.headers.update(_PUBLISHED)
    return IssuerKeysOut.model_validate(iss.keys_document())


@well_known.get("/jwt-vc-issuer", response_model=SdJwtIssuerKeysOut, responses=_GET,
                summary="JWT VC Issuer Metadata (SD-JWT VC keys)")
def jwt_vc_issuer(iss: Issuer, response: Response) -> SdJwtIssuerKeysOut:
    if iss.sdjwt_key is None:
        raise ProblemError(404, "not_found", "This issuer does not issue SD-JWT VCs.",
                           fix="Use the idproof_bbs configuration (see /.well-known/openid-credential-issuer).")
    response.headers.update(_PUBLISHED)
    return SdJwtIssuerKeysOut.model_validate(iss.sdjwt_key.metadata(iss.issuer_id))


# --- token and nonce --------------------------------------------------------------------------------------------

_TOKEN_FIELDS: dict[str, Any] = {"type": "object", "required": ["grant_type"], "properties": {
    "grant_type": {"type": "string", "minLength": 1, "maxLength": 200, "example": PRE_AUTHORIZED_GRANT},
    "pre-authorized_code": {"type": "string", "minLength": 1, "maxLength": 200},
    "code": {"type": "string", "minLength": 1, "maxLength": 200},
    "tx_code": {"type": "string", "maxLength": 200},
}}
TOKEN_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": _TOKEN_FIELDS}, "application/json": {"schema": _TOKEN_FIELDS},
}}}
_TOKEN_TYPES = ("application/x-www-form-urlencoded", "application/json")


def _invalid_request(detail: str) -> ProblemError:
    return ProblemError(422, "invalid_request", detail,
                        fix="Send grant_type and pre-authorized_code, form-encoded (or as a JSON object).")


async def _token_request(request: Request) -> TokenIn:
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype not in _TOKEN_TYPES:
        raise ProblemError(415, "unsupported_media_type", f"Content-Type {ctype or '(none)'!r} is not accepted here.",
                           fix="Send application/x-www-form-urlencoded (or application/json).")
    too_large = ProblemError(413, "request_too_large", f"The token request is larger than {MAX_TOKEN_REQUEST_BYTES} bytes.",
                             fix="Send only grant_type and pre-authorized_code.")
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > MAX_TOKEN_REQUEST_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            raise too_large
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_request("The token request is not UTF-8.") from None
    if ctype == _TOKEN_TYPES[0]:
        params = parse_qs(text, keep_blank_values=True)
        repeated = sorted(k for k, v in params.items() if len(v) > 1)
        if repeated:  # RFC 6749 section 3.2: no parameter more than once
            raise _invalid_request(f"Parameters given more than once: {', '.join(repeated)[:200]}.")
        data: Any = {k: v[0] for k, v in params.items()}
    else:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise _invalid_request("The token request is not valid JSON.") from None
        if not isinstance(data, dict):
            raise _invalid_request("The token request must be a JSON object.")
    try:
        return TokenIn.model_validate(data)
    except ValidationError as e:
        raise RequestValidationError([{"loc": ("body", *e_["loc"]), "msg": e_["msg"], "type": e_["type"]}
                                      for e_ in e.errors(include_input=False)]) from None


@credential.post("/token", response_model=TokenOut, openapi_extra=TOKEN_BODY,
                 responses=problem_responses(400, 404, 413, 415, 422, 500),
                 summary="Exchange a credential offer's pre-authorized code for an access token (once)")
async def token(request: Request, response: Response, iss: Issuer) -> TokenOut:
    """OAuth 2.0 token endpoint, pre-authorized code grant (OpenID4VCI): no client authentication, no tx_code.
    A code works once; a second use, an unknown or an expired code answer `invalid_grant`."""
    body = await _token_request(request)
    if body.grant_type != PRE_AUTHORIZED_GRANT:
        raise ProblemError(400, "unsupported_grant_type", "This server supports only the pre-authorized code grant.",
                           fix=f"Send grant_type={PRE_AUTHORIZED_GRANT}.")
    code = body.pre_authorized_code or body.code
    if code is None:
        raise _invalid_request("The token request has no pre-authorized_code.")
    redeemed = iss.offers.redeem(code)
    if redeemed is None:
        raise ProblemError(400, "invalid_grant", "The pre-authorized code is not valid: unknown, used already, or "
                                                 "expired (codes last 10 minutes from the decision).",
                           fix="Use the code of a fresh credential offer; a code works once. Prove identity again "
                               "for a new offer.")
    access, expires_in = redeemed
    nonce, nonce_expires_in = iss.offers.new_nonce()
    response.headers.update(_NO_STORE)
    return TokenOut(access_token=access, token_type="Bearer", expires_in=expires_in, c_nonce=nonce,
                    c_nonce_expires_in=nonce_expires_in)


@credential.post("/nonce", response_model=NonceOut, responses=problem_responses(404, 500),
                 summary="A fresh c_nonce for key proofs")
def nonce(iss: Issuer, response: Response) -> NonceOut:
    value, expires_in = iss.offers.new_nonce()
    response.headers.update(_NO_STORE)
    return NonceOut(c_nonce=value, c_nonce_expires_in=expires_in)


# --- the credential endpoint ----------------------------------------------------------------------------------------


def _bad_request(code: str, detail: str, fix: str) -> ProblemError:
    return ProblemError(400, code, detail, fix=fix)


@credential.post("", response_model=CredentialOut, responses=problem_responses(400, 401, 404, 422, 500),
                 summary="Issue a credential of an offered configuration (each once per access token)")
def issue_credential(body: CredentialRequestIn, token: AccessToken, iss: Issuer, response: Response) -> CredentialOut:
    """`idproof_bbs` with `proof.commitment` (from `Wallet.issuance_request()`): one BBS credential response,
    for `Wallet.accept`. `idproof_sd_jwt` with `proofs.jwk` (holder public keys) or `proofs.jwt` (OpenID4VCI key
    proofs over a c_nonce), up to 20: one SD-JWT VC per key. Each configuration is issued once per access
    token; a refused proof can be sent again while the token lasts."""
    cid = body.credential_configuration_id
    if cid not in iss.configurations:
        raise _bad_request("unknown_credential_configuration", "This issuer has no such credential configuration.",
                           f"Use one of: {', '.join(iss.configurations)}.")
    if cid == BBS_CONFIGURATION and (body.proof is None or body.proofs is not None):
        raise _bad_request("invalid_credential_request", "idproof_bbs needs `proof` (the BBS commitment), not `proofs`.",
                           'Send {"credential_configuration_id": "idproof_bbs", "proof": {"commitment": ...}}.')
    if cid == SDJWT_CONFIGURATION and (body.proofs is None or body.proof is not None
                                       or (body.proofs.jwk is None) == (body.proofs.jwt is None)):
        raise _bad_request("invalid_credential_request", "idproof_sd_jwt needs `proofs` with either `jwk` or `jwt`.",
                           'Send {"credential_configuration_id": "idproof_sd_jwt", "proofs": {"jwk": [...]}}.')
    started = iss.offers.begin(token, cid)
    if started.status == "invalid_token":  # expired between the check and now
        raise _invalid_token("The access token is not valid: unknown, used up or expired.")
    if started.status == "not_offered":
        raise _bad_request("unknown_credential_configuration", "This configuration was not offered to this token.",
                           "Ask only for the credential_configuration_ids of the offer.")
    if started.status == "already_issued":
        raise _bad_request("credential_request_denied", "This access token has fetched this credential already "
                                                        "(or is fetching it right now).",
                           "Each offer yields one credential of each configuration; prove identity again for more.")
    issued = False
    attributes = started.attributes
    try:
        if cid == BBS_CONFIGURATION:
            out = [IssuedCredentialOut(credential=iss.issue_bbs(attributes, body.proof.commitment))]
        else:
            holder_jwks: list[dict[str, Any]]
            if body.proofs.jwt is not None:
                holder_jwks, nonces = iss.key_proof_jwks(body.proofs.jwt)
                if not iss.offers.use_nonces(nonces):
                    raise ProofRejected("invalid_nonce", "A key proof's nonce is not a current c_nonce of this "
                                                         "issuer (unknown, used or expired).")
            else:
                holder_jwks = list(body.proofs.jwk)
            out = [IssuedCredentialOut(credential=c) for c in iss.issue_sdjwt(attributes, holder_jwks)]
        issued = True
    except ProofRejected as e:
        fix = ("Get a fresh c_nonce (POST /v1/credential/nonce) and sign new key proofs with it."
               if e.reason == "invalid_nonce" else "Send the wallet's request unchanged, with fresh holder keys.")
        raise _bad_request(e.reason, e.message, fix) from None
    except IssuerUnavailable as e:
        log.error("credential issuance refused: %s", e)  # the key's kid and window only; no personal data
        raise ProblemError(500, "issuer_key_not_valid", "The issuer cannot sign credentials right now.",
                           fix="The operator must rotate the issuer key (see the README).") from None
    finally:
        del attributes
        iss.offers.end(token, cid, issued=issued)
    response.headers.update(_NO_STORE)
    return CredentialOut(credentials=out)
