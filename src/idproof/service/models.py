"""Request and response bodies. Nothing here carries a name, document number, date of birth, image or
identity handle: a person appears only through their numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

E164 = r"^\+[1-9][0-9]{7,14}$"
NUMBER_DOC = "Subscriber number in E.164 form, e.g. +441632960001 (spaces and dashes are tolerated and dropped)."
# The pattern documents the canonical form; the registry enforces it (422 invalid_number), after dropping
# spaces and dashes, so it is not enforced here as well.
NumberStr = Field(min_length=1, max_length=32, description=NUMBER_DOC, json_schema_extra={"pattern": E164})
ProofingId = Field(min_length=1, max_length=64, description="The proofing_id of a decision.")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    status: Literal["ok"]
    version: str


# --- proofing sessions ---------------------------------------------------------------------------------

class SessionOut(BaseModel):
    session_id: str
    expires_at: datetime = Field(description="The session and its uploads are forgotten at this time.")
    has_document: bool
    has_chip: bool
    max_upload_bytes: int
    capture_url: str = Field(
        description="The person's capture page for this session (camera, liveness challenge, selfie frames). Its "
                    "token works for this session only, once; give the link to the person, never the API key.")
    capture: Literal["open", "challenged", "verifying", "done"] = Field(
        description="Where the capture page is: open (not used yet), challenged (a challenge was issued), "
                    "verifying (frames are being checked), done (see `decision`).")
    decision: DecisionOut | None = Field(
        default=None, description="The decision made from the capture page's frames, once `capture` is done.")


class ReasonOut(BaseModel):
    reason: str = Field(description="Machine-readable, e.g. selfie:low_quality:blur, document:bad_image.")
    code: str
    subject: Literal["document", "chip", "selfie", "match", "liveness", "capture"]
    qualifier: str
    text: str = Field(description="What to tell the person.")


class SealedTemplateOut(BaseModel):
    """A sealed template and the recovery code that opens it, issued once."""

    sealed: str = Field(
        description="The person's face template, encrypted under the recovery code and signed by this server "
                    "(`IDPS:` + base32, about 1,100 characters: it fits a QR code in alphanumeric mode).")
    recovery_code: str = Field(description="8 groups of 4 letters and digits; it alone opens `sealed`.")
    version: int = Field(description="The template's version for this person: a renewal issues the next one and "
                                     "revokes every earlier one.")


class DecisionOut(BaseModel):
    proofing_id: str = Field(description="Bind numbers with this id while it is fresh.")
    outcome: Literal["accept", "reject", "retry"]
    reasons: list[ReasonOut]
    score: float | None
    threshold: float | None
    target_fmr: float | None = Field(description="False-match rate the threshold is calibrated to.")
    scorer: str
    calibration_version: str
    checks_performed: list[str]
    document: dict[str, Any] = Field(description="What was checked on the document; no personal data.")
    decided_at: str
    person_token: str | None = Field(
        default=None,
        description="Accept only, shown once: give it to the person; `Authorization: Bearer <person_token>` "
                    "lets them list and dispute the numbers registered to them (GET /v1/me/numbers) while the "
                    "proofing is fresh (the registry's proofing max age, 15 minutes by default).",
    )
    evidence: str | None = Field(
        default=None,
        description="When the server signs evidence: the decision's signed evidence record (compact JWS, EdDSA; "
                    "decision, reasons, scores, threshold and FMR, versions, salted hashes of the inputs, times; no "
                    "personal data). Check it offline with `idproof evidence verify` against "
                    "/.well-known/idproof-evidence-keys.",
    )
    sealed_template: SealedTemplateOut | None = Field(
        default=None,
        description="Accept only, when the selfie was sent with `?sealed_template=true` and the server has a sealing "
                    "key; shown once: give both parts to the person and keep neither (e.g. `sealed` as a QR code "
                    "and the `recovery_code` printed or written down, kept apart). With them and a live selfie the "
                    "person re-authenticates later without the document (POST /v1/reauth: SIM swap, \"my "
                    "numbers\"). The server keeps only a salted hash of `sealed` and whether it is revoked: it "
                    "cannot read the template, nor search with it. A newer sealed template (a new accepted "
                    "proofing with the flag) revokes this one.",
    )
    credential_offer: CredentialOfferOut | None = Field(
        default=None,
        description="Accept only, when the server issues credentials and the document named its holder: an "
                    "OpenID4VCI credential offer for the person's wallet (give it to the person, e.g. as "
                    "`openid-credential-offer://?credential_offer=<this JSON, URL-encoded>`). Its pre-authorized "
                    "code works once, for 10 minutes; the attributes it stands for are held in memory only.",
    )


# --- person-held credentials (OpenID4VCI-style issuance) ------------------------------------------------

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


class PreAuthorizedCodeGrant(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    pre_authorized_code: str = Field(
        alias="pre-authorized_code",
        description="One-time code for POST /v1/credential/token; valid 10 minutes from the decision.")


class OfferGrants(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    pre_authorized_code: PreAuthorizedCodeGrant = Field(alias=PRE_AUTHORIZED_GRANT)


class CredentialOfferOut(BaseModel):
    """An OpenID4VCI credential offer (by value)."""

    credential_issuer: str = Field(description="Fetch {credential_issuer}/.well-known/openid-credential-issuer.")
    credential_configuration_ids: list[str] = Field(description="idproof_bbs and/or idproof_sd_jwt.")
    grants: OfferGrants


class TokenIn(BaseModel):
    """OAuth 2.0 token request, pre-authorized code grant (form-encoded, or the same fields as JSON)."""

    model_config = ConfigDict(extra="ignore")  # RFC 6749: unknown parameters are ignored
    grant_type: str = Field(min_length=1, max_length=200, description=f"`{PRE_AUTHORIZED_GRANT}`.")
    pre_authorized_code: str | None = Field(default=None, alias="pre-authorized_code", min_length=1, max_length=200,
                                            description="The code from the credential offer (once).")
    code: str | None = Field(default=None, min_length=1, max_length=200,
                             description="Accepted in place of `pre-authorized_code`.")
    tx_code: str | None = Field(default=None, max_length=200, description="Not used by this issuer (ignored).")


class TokenOut(BaseModel):
    access_token: str = Field(description="`Authorization: Bearer <access_token>` on POST /v1/credential.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds; at most what is left of the offer's 10 minutes.")
    c_nonce: str = Field(description="For the `nonce` of `jwt` key proofs (also from POST /v1/credential/nonce).")
    c_nonce_expires_in: int


class NonceOut(BaseModel):
    c_nonce: str = Field(description="A fresh nonce for `jwt` key proofs; once, for 5 minutes.")
    c_nonce_expires_in: int


class BbsProofIn(_In):
    proof_type: Literal["idproof_bbs_commitment"] = "idproof_bbs_commitment"
    format: Literal["idproof-bbs-nym/1"] = "idproof-bbs-nym/1"
    commitment: str = Field(min_length=1, max_length=4096,
                            description="Wallet.issuance_request()['commitment']: the commitment to the holder's "
                                        "nym share, with its proof of correctness (base64url).")


class HolderProofsIn(_In):
    jwk: list[dict[str, str]] | None = Field(
        default=None, min_length=1, max_length=20,
        description="Holder public keys (P-256 or Ed25519 JWKs), one fresh key per SD-JWT VC of the batch.")
    jwt: list[str] | None = Field(
        default=None, min_length=1, max_length=20,
        description="OpenID4VCI key proofs (typ openid4vci-proof+jwt, header jwk, aud the issuer, iat, nonce a "
                    "c_nonce), one per SD-JWT VC of the batch.")


class CredentialRequestIn(_In):
    credential_configuration_id: str = Field(min_length=1, max_length=100,
                                             description="idproof_bbs (with `proof`) or idproof_sd_jwt (with `proofs`).")
    proof: BbsProofIn | None = Field(default=None, description="idproof_bbs: the wallet's issuance request.")
    proofs: HolderProofsIn | None = Field(default=None, description="idproof_sd_jwt: `jwk` or `jwt`, up to 20.")


class IssuedCredentialOut(BaseModel):
    credential: str | dict[str, Any] = Field(
        description="idproof_bbs: the credential response for Wallet.accept (JSON object); idproof_sd_jwt: one "
                    "SD-JWT VC (string, ending with '~').")


class CredentialOut(BaseModel):
    credentials: list[IssuedCredentialOut]


class ClaimDescriptionOut(BaseModel):
    path: list[str]
    display: list[dict[str, str]]


class CredentialMetadataOut(BaseModel):
    claims: list[ClaimDescriptionOut]
    display: list[dict[str, str]]


class CredentialConfigurationOut(BaseModel):
    format: str
    vct: str | None = None
    scope: str
    cryptographic_binding_methods_supported: list[str]
    credential_signing_alg_values_supported: list[str]
    proof_types_supported: dict[str, dict[str, Any]]
    credential_metadata: CredentialMetadataOut


class BatchIssuanceOut(BaseModel):
    batch_size: int


class CredentialIssuerMetadataOut(BaseModel):
    """OpenID4VCI Credential Issuer Metadata (plus `token_endpoint` and `issuer_keys`, for convenience)."""

    credential_issuer: str
    credential_endpoint: str
    nonce_endpoint: str
    token_endpoint: str
    issuer_keys: str = Field(description="The document verifiers fetch once to verify presentations offline.")
    batch_credential_issuance: BatchIssuanceOut
    display: list[dict[str, str]]
    credential_configurations_supported: dict[str, CredentialConfigurationOut]


class AuthorizationServerMetadataOut(BaseModel):
    """RFC 8414 metadata of the (built-in) authorization server: the pre-authorized code flow only."""

    model_config = ConfigDict(populate_by_name=True)
    issuer: str
    token_endpoint: str
    grant_types_supported: list[str]
    response_types_supported: list[str]
    pre_authorized_grant_anonymous_access_supported: bool = Field(
        alias="pre-authorized_grant_anonymous_access_supported")


class BbsIssuerKeysOut(BaseModel):
    issuer: str
    keys: list[dict[str, Any]] = Field(description="Public JWKs (alg BBS-SHA256-PSEUDONYM) with nbf/exp.")


class JwksOut(BaseModel):
    keys: list[dict[str, Any]]


class SdJwtIssuerKeysOut(BaseModel):
    """JWT VC Issuer Metadata (draft-ietf-oauth-sd-jwt-vc)."""

    issuer: str
    jwks: JwksOut


class IssuerKeysOut(BaseModel):
    issuer: str
    bbs: BbsIssuerKeysOut | None = Field(description="For idproof.credential.verify.verify (BBS presentations).")
    sd_jwt: SdJwtIssuerKeysOut | None = Field(description="For idproof.credential.sdjwt.verify (SD-JWT VC).")


SessionOut.model_rebuild()
DecisionOut.model_rebuild()


# --- re-authentication with a sealed template ---------------------------------------------------------

class ReauthReasonOut(BaseModel):
    reason: str = Field(
        description="Machine-readable: match:match, match:below_threshold, selfie:... (as in a proofing), or a "
                    "refusal of the sealed template: sealed_malformed, sealed_signature_invalid, "
                    "sealed_handle_mismatch (with `number`: the number is not registered to this person), "
                    "sealed_unknown, sealed_revoked, sealed_model_mismatch, sealed_secret_wrong, "
                    "recovery_code_invalid.")
    text: str = Field(description="What to tell the person.")


class ReauthOut(BaseModel):
    outcome: Literal["accept", "reject", "retry"] = Field(
        description="accept: the person in the selfie is the one the sealed template was issued to; retry: "
                    "a new selfie or a retyped recovery code may succeed; reject: it will not.")
    reasons: list[ReauthReasonOut]
    score: float | None = Field(description="The 1:1 score of the selfie against the unsealed template (null when "
                                            "the template was refused before any face was compared).")
    threshold: float
    target_fmr: float | None = Field(description="False-match rate the threshold is calibrated to.")
    person_token: str | None = Field(
        default=None,
        description="Accept only, shown once: a person token for the re-authenticated person (GET /v1/me/numbers, "
                    "disputes, DELETE /v1/me/sealed-template), valid as long as one from a proofing.")
    evidence: str | None = Field(
        default=None,
        description="When the server signs evidence: the re-authentication's signed evidence record (as for a "
                    "proofing decision; the selfie's salted hash only, nothing of the sealed template or code).")


# --- registry ------------------------------------------------------------------------------------------

class BindIn(_In):
    number: str = NumberStr
    proofing_id: str = ProofingId


class TransferIn(_In):
    current_proofing_id: str = Field(min_length=1, max_length=64, description="A fresh accepted proofing of the current holder.")
    new_proofing_id: str = Field(min_length=1, max_length=64, description="A fresh accepted proofing of the new holder.")


class DisputeIn(_In):
    reason: str = Field(default="", max_length=500, description="Why the person disputes the number (free text).")


class BindingOut(BaseModel):
    number: str
    operator_id: str
    status: Literal["active", "suspended"]
    bound_at: datetime


class MyNumbersOut(BaseModel):
    numbers: list[BindingOut]


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    number: str
    details: dict[str, Any]


class EventsOut(BaseModel):
    events: list[EventOut]
    next_after: int = Field(description="Pass as `after` to get the events that follow.")


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    action: str
    actor: str
    number: str | None
    subject_ref: str | None = Field(
        description="A per-deployment reference to the person (a hash of the identity handle): equal for "
                    "entries about the same person, usable nowhere else.")
    details: dict[str, Any]


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int = Field(description="Pass as `after` to get the entries that follow.")
