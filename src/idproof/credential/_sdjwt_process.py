"""Private helpers of :mod:`idproof.credential.sdjwt`: parsing Disclosures and replacing digests by claims.

This is RFC 9901 Section 7.1 step 3 to step 5, shared by the verifier (Section 7.3) and the holder (Section 7.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idproof.credential._sdjwt_codec import SdJwtError, b64d, json_loads, sha256_b64

MAX_DEPTH = 64  # nesting of objects / arrays in the payload, counting through Disclosures


@dataclass(frozen=True, slots=True)
class Disclosure:
    text: str  # the base64url string as received: its digest is what the issuer signed (RFC 9901 Section 4.2.3)
    digest: str
    name: str | None  # None: an array element (Section 4.2.2)
    value: Any


def parse_disclosure(text: str) -> Disclosure:
    """Decode one Disclosure and check its shape (RFC 9901 Sections 4.2.1 and 4.2.2)."""
    raw = b64d(text, reason="disclosure_malformed", what="A Disclosure")
    arr = json_loads(raw, reason="disclosure_malformed", what="A Disclosure")
    if not isinstance(arr, list) or len(arr) not in (2, 3):
        raise SdJwtError("disclosure_malformed",
                         "A Disclosure is not a JSON array of 3 elements (salt, claim name, value) or 2 elements "
                         "(salt, array element) (RFC 9901 Sections 4.2.1 and 4.2.2).",
                         fix="Present the Disclosures exactly as the issuer made them.")
    if not isinstance(arr[0], str):
        raise SdJwtError("disclosure_malformed", "A Disclosure's salt is not a string (RFC 9901 Section 4.2.1).",
                         fix="Present the Disclosures exactly as the issuer made them.")
    if len(arr) == 3 and not isinstance(arr[1], str):
        raise SdJwtError("disclosure_malformed", "A Disclosure's claim name is not a string (RFC 9901 Section 4.2.1).",
                         fix="Present the Disclosures exactly as the issuer made them.")
    return Disclosure(text=text, digest=sha256_b64(text), name=arr[1] if len(arr) == 3 else None, value=arr[-1])


def index_disclosures(texts: list[str]) -> dict[str, Disclosure]:
    """digest -> Disclosure. The same Disclosure twice is refused (RFC 9901 Section 4: a Holder MUST NOT send a
    Disclosure more than once; it would also be a digest encountered twice, Section 7.1 step 4)."""
    by_digest: dict[str, Disclosure] = {}
    for text in texts:
        disclosure = parse_disclosure(text)
        if disclosure.digest in by_digest:
            raise SdJwtError("duplicate_disclosure", "The same Disclosure is presented more than once.",
                             fix="Send each Disclosure once (RFC 9901 Section 4).")
        by_digest[disclosure.digest] = disclosure
    return by_digest


def _payload_error(message: str) -> SdJwtError:
    return SdJwtError("payload_malformed", message, fix="The issuer must produce an RFC 9901 Section 4 payload.")


class Processor:
    """Replaces the embedded digests of one Issuer-signed JWT payload by the claims of the given Disclosures.

    RFC 9901 Section 7.1: (*) find ``_sd`` arrays and ``{"...": digest}`` array elements, (**) insert the
    disclosed claims and process their values recursively, drop undisclosed array elements and every ``_sd``,
    drop ``_sd_alg``; reject a digest seen twice (step 4) and a Disclosure not referenced (step 5).
    """

    def __init__(self, by_digest: dict[str, Disclosure]) -> None:
        self.by_digest = by_digest
        self.seen: set[str] = set()
        self.disclosed_top: set[str] = set()  # claim names inserted from Disclosures at the top level

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        out = self._object(payload, 0, top=True)
        unreferenced = len(set(self.by_digest) - self.seen)
        if unreferenced:
            # RFC 9901 Section 7.1 step 5. A verifier that silently drops such a Disclosure lets anyone who can
            # append to the presentation smuggle forged "claims" to code that reads the raw Disclosures.
            raise SdJwtError("unreferenced_disclosure",
                             f"{unreferenced} Disclosure(s) match no digest in the issuer-signed JWT, directly or "
                             "through another presented Disclosure (RFC 9901 Section 7.1 step 5).",
                             fix="Present only Disclosures issued with this credential, with the Disclosures that "
                                 "contain their digests.")
        return out

    def _see(self, digest: str) -> Disclosure | None:
        if digest in self.seen:
            raise SdJwtError("duplicate_digest",
                             "A digest appears more than once in the issuer-signed JWT or its Disclosures "
                             "(RFC 9901 Section 4.1 and Section 7.1 step 4).",
                             fix="The issuer must use a fresh salt and a unique digest for every claim and decoy.")
        self.seen.add(digest)
        return self.by_digest.get(digest)  # not found: a decoy or an undisclosed claim, ignored (step 3.3.1)

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, dict):
            return self._object(value, depth + 1)
        if isinstance(value, list):
            return self._array(value, depth + 1)
        return value

    def _object(self, node: dict[str, Any], depth: int, *, top: bool = False) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _payload_error(f"The payload nests deeper than {MAX_DEPTH} levels.")
        if "..." in node:
            raise _payload_error('A "..." member appears outside an array element placeholder '
                                 "(RFC 9901 Sections 4.1 and 4.2.4.2).")
        if not top and "_sd_alg" in node:
            raise _payload_error("_sd_alg appears in a nested object; it is only allowed at the top level "
                                 "(RFC 9901 Section 4.1.1).")
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name == "_sd" or (top and name == "_sd_alg"):
                continue  # removed from the processed payload (Section 7.1 steps 3.5 and 3.6)
            out[name] = self._value(value, depth)
        if "_sd" not in node:
            return out
        digests = node["_sd"]
        if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
            raise SdJwtError("sd_malformed", "An _sd member is not an array of digest strings "
                                             "(RFC 9901 Section 4.2.4.1).",
                             fix="The issuer must list the digests as base64url strings in an _sd array.")
        for digest in digests:
            disclosure = self._see(digest)
            if disclosure is None:
                continue
            if disclosure.name is None:  # Section 7.1 step 3.3.2.1
                raise SdJwtError("disclosure_malformed",
                                 "A digest in an _sd array refers to a 2-element (array element) Disclosure; object "
                                 "properties need 3 elements (RFC 9901 Section 7.1 step 3.3.2.1).",
                                 fix="Present the Disclosures exactly as the issuer made them.")
            if disclosure.name in ("_sd", "..."):  # step 3.3.2.2
                raise SdJwtError("claim_name_reserved",
                                 f"A Disclosure uses the reserved claim name {disclosure.name!r} "
                                 "(RFC 9901 Section 4.2.1 and Section 7.1 step 3.3.2.2).",
                                 fix="The issuer must not disclose claims named _sd or '...'.")
            if disclosure.name in out:  # step 3.3.2.3
                raise SdJwtError("claim_name_collision",
                                 f"A Disclosure's claim name {disclosure.name!r} already exists at its level "
                                 "(RFC 9901 Section 7.1 step 3.3.2.3).",
                                 fix="A disclosed claim must not overwrite a plaintext or another disclosed claim.")
            out[disclosure.name] = self._value(disclosure.value, depth)
            if top:
                self.disclosed_top.add(disclosure.name)
        return out

    def _array(self, node: list[Any], depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise _payload_error(f"The payload nests deeper than {MAX_DEPTH} levels.")
        out: list[Any] = []
        for element in node:
            if isinstance(element, dict) and "..." in element:
                digest = element["..."]
                if len(element) != 1 or not isinstance(digest, str):
                    raise _payload_error('An array element placeholder must be {"...": "<digest>"} with no other '
                                         "member (RFC 9901 Section 4.2.4.2).")
                disclosure = self._see(digest)
                if disclosure is None:
                    continue  # undisclosed element or decoy: removed (Section 7.1 step 3.4)
                if disclosure.name is not None:  # step 3.3.3.1
                    raise SdJwtError("disclosure_malformed",
                                     "An array element digest refers to a 3-element (object property) Disclosure; "
                                     "array elements need 2 elements (RFC 9901 Section 7.1 step 3.3.3.1).",
                                     fix="Present the Disclosures exactly as the issuer made them.")
                out.append(self._value(disclosure.value, depth))
            else:
                out.append(self._value(element, depth))
        return out


# --- the holder's view: which Disclosures carry which claim ---------------------------------------------------

@dataclass(slots=True)
class Node:
    """A claim in the holder's credential: the Disclosure that reveals it (None when it is plaintext) and, for
    objects and arrays, the claims inside."""

    disclosure: str | None
    children: dict[str, Node] | list[Node] | None


def holder_tree(value: Any, by_digest: dict[str, Disclosure], disclosure: str | None = None) -> Node:
    """Build the tree of an already validated payload (run :class:`Processor` first)."""
    if isinstance(value, dict):
        children: dict[str, Node] = {}
        for name, sub in value.items():
            if name not in ("_sd", "_sd_alg"):
                children[name] = holder_tree(sub, by_digest)
        for digest in value.get("_sd", ()):
            found = by_digest.get(digest)
            if found is not None:
                children[found.name] = holder_tree(found.value, by_digest, found.text)  # type: ignore[index]
        return Node(disclosure, children)
    if isinstance(value, list):
        items: list[Node] = []
        for element in value:
            if isinstance(element, dict) and "..." in element:
                found = by_digest.get(element["..."])
                if found is not None:
                    items.append(holder_tree(found.value, by_digest, found.text))
            else:
                items.append(holder_tree(element, by_digest))
        return Node(disclosure, items)
    return Node(disclosure, None)


def all_disclosures(node: Node) -> list[str]:
    """The Disclosures that reveal this claim and everything inside it."""
    out = [node.disclosure] if node.disclosure is not None else []
    children = node.children
    if isinstance(children, dict):
        for child in children.values():
            out += all_disclosures(child)
    elif isinstance(children, list):
        for child in children:
            out += all_disclosures(child)
    return out
