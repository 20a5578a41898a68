"""A relying party (a service) asking for a BBS presentation, OpenID4VP-style, and checking the answer offline.

    meta = httpx.get(ISSUER + "/.well-known/idproof-issuer-keys").json()["bbs"]   # once, then cached
    request = make_request("https://shop.example", ["age_over_18"])                # per visit: a fresh nonce
    # ... send `request` to the person's wallet; it answers with Wallet.present(...) (or a vp_token) ...
    result = check_response(request, vp_token, meta)                                # offline: no call to the issuer
    account = result.pseudonym                                                     # stable for this person here

The request is an OpenID4VP authorization request reduced to what a BBS presentation needs: ``client_id`` (the
service id the presentation and the pseudonym are bound to), a fresh ``nonce``, ``response_type`` ``vp_token``
and a DCQL query naming the claims. The answer is the presentation string, or an OpenID4VP ``vp_token`` object
``{credential query id: [presentation]}``.

DCQL says what may be disclosed: a presentation that discloses a claim the request did not name (other than
``expires``, which every presentation discloses so that it can be refused when expired) is refused, and so is
one that leaves out a requested claim. Verification never contacts the issuer, so the issuer cannot learn
where, when or by whom its credentials are used.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from idproof.credential.attributes import ATTRIBUTES
from idproof.credential.verify import (
    ALWAYS_DISCLOSED,
    FORMAT,
    CredentialError,
    VerifiedCredential,
    verify,
)

__all__ = ["QUERY_ID", "check_response", "make_request"]

QUERY_ID = "idproof"  # the DCQL credential query id (the key of the vp_token object)


def make_request(service_id: str, claims: Sequence[str], *, nonce: str | None = None) -> dict[str, Any]:
    """A presentation request for ``claims`` (attribute names, e.g. ``["age_over_18"]``) with a fresh nonce.
    Keep it (server side) until the answer arrives; use it once."""
    if not isinstance(service_id, str) or not service_id:
        raise ValueError("service_id must be this service's non-empty identifier (e.g. its https origin)")
    if isinstance(claims, str):
        raise TypeError("claims must be a list of attribute names, e.g. ['age_over_18']")
    names = list(dict.fromkeys(claims))
    unknown = [c for c in names if c not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"unknown claims {unknown}; known: {', '.join(ATTRIBUTES)}")
    return {
        "response_type": "vp_token",
        "client_id": service_id,
        "nonce": nonce if nonce is not None else secrets.token_urlsafe(24),
        "dcql_query": {"credentials": [{"id": QUERY_ID, "format": FORMAT,
                                        "claims": [{"path": [c]} for c in names]}]},
    }


def requested_claims(request: dict[str, Any]) -> list[str]:
    """The claim names of the request's DCQL query (the BBS credential query)."""
    try:
        (query,) = [q for q in request["dcql_query"]["credentials"] if q.get("format") == FORMAT]
        paths = [c["path"] for c in query.get("claims", [])]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError("request must be one made by make_request (one idproof-bbs-nym/1 DCQL query)") from None
    if not all(isinstance(p, list) and len(p) == 1 and p[0] in ATTRIBUTES for p in paths):
        raise ValueError("the DCQL claims must be top-level attribute paths, e.g. {'path': ['age_over_18']}")
    return [p[0] for p in paths]


def _presentation(response: Any) -> str:
    if isinstance(response, str):
        return response
    if isinstance(response, dict):  # OpenID4VP vp_token: {query id: [presentation, ...]}
        if "vp_token" in response and len(response) <= 2:  # the whole response body {"vp_token": ..., "state"?}
            return _presentation(response["vp_token"])
        value = response.get(QUERY_ID)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            return value[0]
        if isinstance(value, str):
            return value
    raise CredentialError("malformed", "The response is neither a presentation nor a vp_token with one "
                                       f"presentation for the query {QUERY_ID!r}.",
                          fix=f'Answer with the presentation string, or {{"{QUERY_ID}": [presentation]}}.')


def check_response(request: dict[str, Any], response: Any, issuer_metadata: dict[str, Any], *,
                   now: datetime | None = None) -> VerifiedCredential:
    """Verify the wallet's answer to ``request`` against the issuer's published BBS metadata (fetched once).

    Raises :class:`CredentialError`: whatever :func:`idproof.credential.verify.verify` refuses, plus
    ``claims_not_requested`` (it discloses more than asked) and ``claims_missing`` (it leaves out a requested
    claim). The request's nonce must not be reused: drop the request after this call, whatever its outcome."""
    wanted = requested_claims(request)
    result = verify(_presentation(response), issuer_metadata, service_id=request["client_id"],
                    nonce=request["nonce"], now=now)
    allowed = set(wanted) | set(ALWAYS_DISCLOSED)
    extra = sorted(set(result.disclosed) - allowed)
    if extra:
        raise CredentialError("claims_not_requested", f"The presentation discloses claims this service did not ask "
                                                      f"for ({', '.join(extra)}); it is refused, not stored.",
                              fix="Present only the claims of the request's dcql_query.")
    missing = [c for c in wanted if c not in result.disclosed]
    if missing:
        raise CredentialError("claims_missing", f"The presentation does not disclose {', '.join(missing)}.",
                              fix="Present every claim the request's dcql_query names.")
    return result
