"""BBS signatures — core interface (draft-irtf-cfrg-bbs-signatures, revision noted in
``idproof.credential.bbs.__init__``).

Public functions take and return octet strings.  Generation functions raise
:class:`ValueError` on invalid input; verification functions return ``False`` (never raise)
on any malformed or invalid input.

The ``core_*`` / ``proof_*`` helpers operate on already-mapped scalars and explicit
generator lists so the blind (``blind.py``) and pseudonym (``pseudonym.py``) interfaces can
reuse them, exactly as those drafts reuse CoreSign / ProofInit / ProofFinalize / ….

Performance notes: every linear combination of points is one ``multiexp`` call, pairing
equations are single ``pairing_check`` (multi-Miller-loop) calls, and generators, P1 and
decoded public keys are cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from ._hash import i2osp
from ._suite import (
    BP2,
    G1_IDENTITY,
    OCTET_POINT_LENGTH,
    OCTET_SCALAR_LENGTH,
    SHA256,
    Ciphersuite,
    RandomScalars,
    _Api,
    as_bytes,
    as_message_list,
    check_suite,
    draw_scalars,
    get_api,
    octets_to_point_g1,
    octets_to_pubkey,
    octets_to_scalar,
)

__all__ = [
    "create_generators",
    "keygen",
    "messages_to_scalars",
    "proof_gen",
    "proof_verify",
    "sign",
    "sk_to_pk",
    "verify",
]

_ONE = Scalar(1)
_NEG_ONE = -_ONE
SIGNATURE_LENGTH = OCTET_POINT_LENGTH + OCTET_SCALAR_LENGTH  # 80
PROOF_LEN_FLOOR = 3 * OCTET_POINT_LENGTH + 4 * OCTET_SCALAR_LENGTH  # 272


# ---------------------------------------------------------------------------------------------
# Key generation
# ---------------------------------------------------------------------------------------------


def keygen(
    key_material: bytes,
    key_info: bytes = b"",
    key_dst: bytes | None = None,
    suite: Ciphersuite = SHA256,
) -> bytes:
    """KeyGen: derive a secret key (32 octets) from >= 32 octets of key material.

    ``key_dst`` defaults to ``api_id || "KEYGEN_DST_"``.
    """
    suite = check_suite(suite)
    key_material = as_bytes(key_material, "key_material")
    key_info = as_bytes(key_info, "key_info")
    if len(key_material) < 32:
        raise ValueError("key_material must be at least 32 octets")
    if len(key_info) > 65535:
        raise ValueError("key_info must be at most 65535 octets")
    if key_dst is None:
        key_dst = suite.api_id + b"KEYGEN_DST_"
    key_dst = as_bytes(key_dst, "key_dst")
    derive_input = key_material + i2osp(len(key_info), 2) + key_info
    sk = suite.hash_to_scalar(derive_input, key_dst)
    if sk.is_zero():  # negligible, but the draft says INVALID
        raise ValueError("KeyGen produced the zero scalar")
    return sk.to_be_bytes()


def _parse_sk(sk: bytes) -> Scalar:
    sk = as_bytes(sk, "sk")
    s = octets_to_scalar(sk)
    if s is None or s.is_zero():
        raise ValueError("secret key must be 32 octets encoding a scalar in [1, r-1]")
    return s


def _parse_pk_or_raise(pk: bytes) -> G2Point:
    w = octets_to_pubkey(as_bytes(pk, "pk"))
    if w is None:
        raise ValueError("public key must be a 96-octet compressed G2 point in the subgroup, not identity")
    return w


def sk_to_pk(sk: bytes, suite: Ciphersuite = SHA256) -> bytes:
    """SkToPk: W = SK * BP2, compressed (96 octets)."""
    check_suite(suite)
    return (BP2 * _parse_sk(sk)).to_compressed_bytes()


# ---------------------------------------------------------------------------------------------
# Shared building blocks (core operations, utilities)
# ---------------------------------------------------------------------------------------------


def messages_to_scalars(messages: Sequence[bytes], suite: Ciphersuite = SHA256) -> list[bytes]:
    """messages_to_scalars with the core api_id (scalars as 32-octet strings)."""
    api = get_api(check_suite(suite), suite.api_id)
    return [s.to_be_bytes() for s in api.messages_to_scalars(as_message_list(messages))]


def create_generators(count: int, suite: Ciphersuite = SHA256) -> list[bytes]:
    """create_generators with the core api_id (compressed points)."""
    api = get_api(check_suite(suite), suite.api_id)
    return [g.to_compressed_bytes() for g in api.create_generators(count)]


def calculate_domain(api: _Api, pk: bytes, q1: G1Point, h_points: Sequence[G1Point], header: bytes) -> Scalar:
    """calculate_domain.

    dom_octs = serialize((L, Q_1, H_1..H_L)) || api_id;
    domain = hash_to_scalar(PK || dom_octs || I2OSP(len(header), 8) || header).
    """
    parts = [pk, i2osp(len(h_points), 8), q1.to_compressed_bytes()]
    parts.extend(h.to_compressed_bytes() for h in h_points)
    parts.append(api.api_id)
    parts.append(i2osp(len(header), 8))
    parts.append(header)
    return api.hash_to_scalar(b"".join(parts))


def signature_to_octets(a: G1Point, e: Scalar) -> bytes:
    return a.to_compressed_bytes() + e.to_be_bytes()


def octets_to_signature(signature: bytes) -> tuple[G1Point, Scalar] | None:
    """octets_to_signature: A in G1 (not identity), 0 < e < r."""
    if not isinstance(signature, (bytes, bytearray, memoryview)) or len(signature) != SIGNATURE_LENGTH:
        return None
    signature = bytes(signature)
    a = octets_to_point_g1(signature[:OCTET_POINT_LENGTH])
    if a is None:
        return None
    e = octets_to_scalar(signature[OCTET_POINT_LENGTH:])
    if e is None or e.is_zero():
        return None
    return a, e


def _b_terms(api: _Api, q1: G1Point, domain: Scalar) -> tuple[list[G1Point], list[Scalar]]:
    return [api.suite.P1, q1], [_ONE, domain]


def core_sign(
    api: _Api,
    sk: Scalar,
    pk: bytes,
    generators: Sequence[G1Point],
    header: bytes,
    msg_scalars: Sequence[Scalar],
) -> bytes:
    """CoreSign.

    domain = calculate_domain(PK, Q_1, (H_1..H_L), header)
    e = hash_to_scalar(serialize((SK, msg_1, ..., msg_L, domain)))
    B = P1 + Q_1 * domain + H_1 * msg_1 + ... + H_L * msg_L
    A = B * (1 / (SK + e))
    """
    n = len(msg_scalars)
    if len(generators) < n + 1:
        raise ValueError("not enough generators")
    q1, h = generators[0], list(generators[1 : n + 1])
    domain = calculate_domain(api, pk, q1, h, header)
    e_octs = b"".join([sk.to_be_bytes()] + [m.to_be_bytes() for m in msg_scalars] + [domain.to_be_bytes()])
    e = api.hash_to_scalar(e_octs)
    denom = sk + e
    if denom.is_zero():
        raise ValueError("SK + e == 0")
    inv = denom.inverse()
    points, scalars = _b_terms(api, q1, domain)
    points += h
    scalars += list(msg_scalars)
    # A = B / (SK + e) as one multi-exponentiation (B itself is not needed).
    a = G1Point.multiexp_unchecked(points, [s * inv for s in scalars])
    if a == G1_IDENTITY:
        raise ValueError("signature point is the identity")
    return signature_to_octets(a, e)


def core_verify(
    api: _Api,
    pk: bytes,
    signature: bytes,
    generators: Sequence[G1Point],
    header: bytes,
    msg_scalars: Sequence[Scalar],
) -> bool:
    """CoreVerify: e(A, W + BP2 * e) * e(B, -BP2) == 1.

    Evaluated as the equivalent single pairing-product check
    e(A, W) * e(A * e - B, BP2) == 1, which keeps all scalar work in G1.
    """
    sig = octets_to_signature(signature)
    w = octets_to_pubkey(pk)
    if sig is None or w is None:
        return False
    a, e = sig
    n = len(msg_scalars)
    if len(generators) < n + 1:
        return False
    q1, h = generators[0], list(generators[1 : n + 1])
    domain = calculate_domain(api, pk, q1, h, header)
    points = [a, api.suite.P1, q1] + h
    scalars = [e, _NEG_ONE, -domain] + [-m for m in msg_scalars]
    c = G1Point.multiexp_unchecked(points, scalars)  # A * e - B
    return bool(GT.pairing_check([a, c], [w, BP2]))


@dataclass(frozen=True)
class InitRes:
    """Output of ProofInit / ProofVerifyInit."""

    abar: G1Point
    bbar: G1Point
    d: G1Point
    t1: G1Point
    t2: G1Point
    domain: Scalar


@dataclass(frozen=True)
class Proof:
    """Deserialised proof: (Abar, Bbar, D, e^, r1^, r3^, (m^_j1..m^_jU), c)."""

    abar: G1Point
    bbar: G1Point
    d: G1Point
    e_hat: Scalar
    r1_hat: Scalar
    r3_hat: Scalar
    m_hat: list[Scalar]
    challenge: Scalar


def proof_init(
    api: _Api,
    pk: bytes,
    a: G1Point,
    e: Scalar,
    generators: Sequence[G1Point],
    random_scalars: Sequence[Scalar],
    header: bytes,
    msg_scalars: Sequence[Scalar],
    undisclosed_indexes: Sequence[int],
) -> InitRes:
    """ProofInit.

    (r1, r2, e~, r1~, r3~, m~_j1..m~_jU) = random_scalars
    B = P1 + Q_1 * domain + sum H_i * msg_i;  D = B * r2;  Abar = A * (r1 * r2)
    Bbar = D * r1 - Abar * e;  T1 = Abar * e~ + D * r1~;  T2 = D * r3~ + sum H_j * m~_j
    """
    n = len(msg_scalars)
    u = len(undisclosed_indexes)
    if len(random_scalars) != 5 + u:
        raise ValueError("wrong number of random scalars")
    if len(generators) < n + 1:
        raise ValueError("not enough generators")
    r1, r2, e_t, r1_t, r3_t = random_scalars[:5]
    m_t = random_scalars[5:]
    q1, h = generators[0], list(generators[1 : n + 1])
    domain = calculate_domain(api, pk, q1, h, header)
    points, scalars = _b_terms(api, q1, domain)
    points += h
    scalars += list(msg_scalars)
    d = G1Point.multiexp_unchecked(points, [s * r2 for s in scalars])  # D = B * r2
    abar = a * (r1 * r2)
    bbar = G1Point.multiexp_unchecked([d, abar], [r1, -e])
    t1 = G1Point.multiexp_unchecked([abar, d], [e_t, r1_t])
    t2 = G1Point.multiexp_unchecked([d] + [h[j] for j in undisclosed_indexes], [r3_t] + list(m_t))
    return InitRes(abar, bbar, d, t1, t2, domain)


def challenge_prefix(disclosed_indexes: Sequence[int], disclosed_scalars: Sequence[Scalar]) -> bytes:
    """serialize((R, i1, msg_i1, ..., iR, msg_iR)) — the start of c_arr in ProofChallengeCalculate."""
    parts = [i2osp(len(disclosed_indexes), 8)]
    for i, m in zip(disclosed_indexes, disclosed_scalars, strict=True):
        parts.append(i2osp(i, 8))
        parts.append(m.to_be_bytes())
    return b"".join(parts)


def proof_challenge_calculate(
    api: _Api,
    init_res: InitRes,
    disclosed_indexes: Sequence[int],
    disclosed_scalars: Sequence[Scalar],
    ph: bytes,
) -> Scalar:
    """ProofChallengeCalculate.

    c_arr = (R, i1, msg_i1, ..., iR, msg_iR, Abar, Bbar, D, T1, T2, domain)
    c_octs = serialize(c_arr) || I2OSP(length(ph), 8) || ph
    """
    c_octs = b"".join(
        [
            challenge_prefix(disclosed_indexes, disclosed_scalars),
            init_res.abar.to_compressed_bytes(),
            init_res.bbar.to_compressed_bytes(),
            init_res.d.to_compressed_bytes(),
            init_res.t1.to_compressed_bytes(),
            init_res.t2.to_compressed_bytes(),
            init_res.domain.to_be_bytes(),
            i2osp(len(ph), 8),
            ph,
        ]
    )
    return api.hash_to_scalar(c_octs)


def proof_finalize(
    init_res: InitRes,
    challenge: Scalar,
    e: Scalar,
    random_scalars: Sequence[Scalar],
    undisclosed_scalars: Sequence[Scalar],
) -> bytes:
    """ProofFinalize: responses e^, r1^, r3^, m^_j and proof_to_octets."""
    r1, r2, e_t, r1_t, r3_t = random_scalars[:5]
    m_t = random_scalars[5:]
    r3 = r2.inverse()
    e_hat = e_t + e * challenge
    r1_hat = r1_t - r1 * challenge
    r3_hat = r3_t - r3 * challenge
    m_hat = [mt + m * challenge for mt, m in zip(m_t, undisclosed_scalars, strict=True)]
    parts = [
        init_res.abar.to_compressed_bytes(),
        init_res.bbar.to_compressed_bytes(),
        init_res.d.to_compressed_bytes(),
        e_hat.to_be_bytes(),
        r1_hat.to_be_bytes(),
        r3_hat.to_be_bytes(),
    ]
    parts.extend(m.to_be_bytes() for m in m_hat)
    parts.append(challenge.to_be_bytes())
    return b"".join(parts)


def octets_to_proof(proof: bytes) -> Proof | None:
    """octets_to_proof; points must be in G1 and not the identity, scalars < r."""
    if not isinstance(proof, (bytes, bytearray, memoryview)):
        return None
    proof = bytes(proof)
    if len(proof) < PROOF_LEN_FLOOR or (len(proof) - PROOF_LEN_FLOOR) % OCTET_SCALAR_LENGTH:
        return None
    pts = []
    for k in range(3):
        p = octets_to_point_g1(proof[k * OCTET_POINT_LENGTH : (k + 1) * OCTET_POINT_LENGTH])
        if p is None:
            return None
        pts.append(p)
    scalars = []
    for off in range(3 * OCTET_POINT_LENGTH, len(proof), OCTET_SCALAR_LENGTH):
        s = octets_to_scalar(proof[off : off + OCTET_SCALAR_LENGTH])
        if s is None:
            return None
        scalars.append(s)
    return Proof(pts[0], pts[1], pts[2], scalars[0], scalars[1], scalars[2], scalars[3:-1], scalars[-1])


def proof_verify_init(
    api: _Api,
    pk: bytes,
    proof: Proof,
    generators: Sequence[G1Point],
    header: bytes,
    disclosed_scalars: Sequence[Scalar],
    disclosed_indexes: Sequence[int],
) -> InitRes | None:
    """ProofVerifyInit.

    T1 = Bbar * c + Abar * e^ + D * r1^
    Bv = P1 + Q_1 * domain + sum_{i disclosed} H_i * msg_i
    T2 = Bv * c + D * r3^ + sum_{j undisclosed} H_j * m^_j   (one multi-exponentiation)
    """
    u = len(proof.m_hat)
    r = len(disclosed_indexes)
    n = u + r
    if len(disclosed_scalars) != r or len(generators) < n + 1:
        return None
    disclosed_set = set(disclosed_indexes)
    if len(disclosed_set) != r or any(not 0 <= i < n for i in disclosed_indexes):
        return None
    undisclosed = [j for j in range(n) if j not in disclosed_set]
    q1, h = generators[0], list(generators[1 : n + 1])
    domain = calculate_domain(api, pk, q1, h, header)
    c = proof.challenge
    t1 = G1Point.multiexp_unchecked([proof.bbar, proof.abar, proof.d], [c, proof.e_hat, proof.r1_hat])
    points = [api.suite.P1, q1, proof.d]
    scalars = [c, domain * c, proof.r3_hat]
    for i, m in zip(disclosed_indexes, disclosed_scalars, strict=True):
        points.append(h[i])
        scalars.append(m * c)
    for j, m_hat in zip(undisclosed, proof.m_hat, strict=True):
        points.append(h[j])
        scalars.append(m_hat)
    t2 = G1Point.multiexp_unchecked(points, scalars)
    return InitRes(proof.abar, proof.bbar, proof.d, t1, t2, domain)


def pairing_check_proof(w: G2Point, proof: Proof) -> bool:
    """CoreProofVerify final step: e(Abar, W) * e(Bbar, -BP2) == 1."""
    return bool(GT.pairing_check([proof.abar, -proof.bbar], [w, BP2]))


def normalize_indexes(indexes: Sequence[int], bound: int, what: str) -> list[int]:
    """Sorted, de-duplicated indexes in [0, bound); raises ValueError otherwise (generation side)."""
    out = []
    for i in indexes:
        if isinstance(i, bool) or not isinstance(i, int):
            raise ValueError(f"{what} must be integers")
        if not 0 <= i < bound:
            raise ValueError(f"{what} contains {i}, outside [0, {bound})")
        out.append(i)
    if len(set(out)) != len(out):
        raise ValueError(f"{what} contains duplicates")
    return sorted(out)


def core_proof_gen(
    api: _Api,
    pk: bytes,
    signature: bytes,
    generators: Sequence[G1Point],
    header: bytes,
    ph: bytes,
    msg_scalars: Sequence[Scalar],
    disclosed_indexes: Sequence[int],
    rng: RandomScalars | None,
) -> bytes:
    """CoreProofGen (indexes must already be normalised)."""
    sig = octets_to_signature(signature)
    if sig is None:
        raise ValueError("malformed signature")
    a, e = sig
    n = len(msg_scalars)
    disclosed = set(disclosed_indexes)
    undisclosed = [j for j in range(n) if j not in disclosed]
    rs = draw_scalars(rng, 5 + len(undisclosed))
    init_res = proof_init(api, pk, a, e, generators, rs, header, msg_scalars, undisclosed)
    c = proof_challenge_calculate(
        api, init_res, disclosed_indexes, [msg_scalars[i] for i in disclosed_indexes], ph
    )
    return proof_finalize(init_res, c, e, rs, [msg_scalars[j] for j in undisclosed])


def core_proof_verify(
    api: _Api,
    pk: bytes,
    proof: bytes,
    generators: Sequence[G1Point],
    header: bytes,
    ph: bytes,
    disclosed_scalars: Sequence[Scalar],
    disclosed_indexes: Sequence[int],
) -> bool:
    """CoreProofVerify."""
    w = octets_to_pubkey(pk)
    p = octets_to_proof(proof)
    if w is None or p is None:
        return False
    init_res = proof_verify_init(api, pk, p, generators, header, disclosed_scalars, disclosed_indexes)
    if init_res is None:
        return False
    if proof_challenge_calculate(api, init_res, disclosed_indexes, disclosed_scalars, ph) != p.challenge:
        return False
    return pairing_check_proof(w, p)


def sort_disclosed(indexes: object, messages: object) -> tuple[list[int], list[bytes]] | None:
    """Verifier-side: pair indexes with messages, sort by index; None if malformed/duplicated."""
    try:
        idx = list(indexes)  # type: ignore[call-overload]
        msgs = list(messages)  # type: ignore[call-overload]
    except TypeError:
        return None
    if len(idx) != len(msgs):
        return None
    for i in idx:
        if isinstance(i, bool) or not isinstance(i, int) or i < 0 or i >= 1 << 64:
            return None
    for m in msgs:
        if not isinstance(m, (bytes, bytearray, memoryview)):
            return None
    if len(set(idx)) != len(idx):
        return None
    pairs = sorted(zip(idx, (bytes(m) for m in msgs), strict=True))
    return [i for i, _ in pairs], [m for _, m in pairs]


# ---------------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------------


def sign(
    sk: bytes,
    pk: bytes,
    header: bytes,
    messages: Sequence[bytes],
    suite: Ciphersuite = SHA256,
) -> bytes:
    """Sign: an 80-octet signature over ``messages`` bound to ``header``.

    Raises ValueError if ``sk``/``pk`` are malformed or ``pk`` is not ``sk``'s public key.
    """
    suite = check_suite(suite)
    s = _parse_sk(sk)
    pk = as_bytes(pk, "pk")
    w = _parse_pk_or_raise(pk)
    if BP2 * s != w:
        raise ValueError("pk does not match sk")
    header = as_bytes(header, "header")
    msgs = as_message_list(messages)
    api = get_api(suite, suite.api_id)
    return core_sign(api, s, pk, api.create_generators(len(msgs) + 1), header, api.messages_to_scalars(msgs))


def verify(
    pk: bytes,
    signature: bytes,
    header: bytes,
    messages: Sequence[bytes],
    suite: Ciphersuite = SHA256,
) -> bool:
    """Verify. Returns False on any invalid or malformed input."""
    try:
        suite = check_suite(suite)
        pk = as_bytes(pk, "pk")
        header = as_bytes(header, "header")
        msgs = as_message_list(messages)
        api = get_api(suite, suite.api_id)
        return core_verify(
            api, pk, signature, api.create_generators(len(msgs) + 1), header, api.messages_to_scalars(msgs)
        )
    except Exception:  # noqa: BLE001 - verification never raises on malformed input
        return False


def proof_gen(
    pk: bytes,
    signature: bytes,
    header: bytes,
    ph: bytes,
    messages: Sequence[bytes],
    disclosed_indexes: Sequence[int],
    suite: Ciphersuite = SHA256,
    *,
    rng: RandomScalars | None = None,
) -> bytes:
    """ProofGen: selective-disclosure proof revealing ``messages[i]`` for i in
    ``disclosed_indexes`` (sorted ascending internally).

    ``rng(count)`` may supply the random scalars (test vectors only); default is the OS CSPRNG.
    As in the draft, the signature itself is not verified here (use :func:`verify` first if it
    comes from an untrusted source); a proof from an invalid signature simply fails to verify.
    """
    suite = check_suite(suite)
    pk = as_bytes(pk, "pk")
    _parse_pk_or_raise(pk)
    header = as_bytes(header, "header")
    ph = as_bytes(ph, "ph")
    msgs = as_message_list(messages)
    idx = normalize_indexes(disclosed_indexes, len(msgs), "disclosed_indexes")
    api = get_api(suite, suite.api_id)
    return core_proof_gen(
        api,
        pk,
        as_bytes(signature, "signature"),
        api.create_generators(len(msgs) + 1),
        header,
        ph,
        api.messages_to_scalars(msgs),
        idx,
        rng,
    )


def proof_verify(
    pk: bytes,
    proof: bytes,
    header: bytes,
    ph: bytes,
    disclosed_messages: Sequence[bytes],
    disclosed_indexes: Sequence[int],
    suite: Ciphersuite = SHA256,
) -> bool:
    """ProofVerify. Returns False on any invalid or malformed input."""
    try:
        suite = check_suite(suite)
        pk = as_bytes(pk, "pk")
        header = as_bytes(header, "header")
        ph = as_bytes(ph, "ph")
        proof = as_bytes(proof, "proof")
        pairs = sort_disclosed(disclosed_indexes, disclosed_messages)
        if pairs is None:
            return False
        idx, msgs = pairs
        if len(proof) < PROOF_LEN_FLOOR or (len(proof) - PROOF_LEN_FLOOR) % OCTET_SCALAR_LENGTH:
            return False
        u = (len(proof) - PROOF_LEN_FLOOR) // OCTET_SCALAR_LENGTH
        n = len(idx) + u
        api = get_api(suite, suite.api_id)
        return core_proof_verify(
            api, pk, proof, api.create_generators(n + 1), header, ph, api.messages_to_scalars(msgs), idx
        )
    except Exception:  # noqa: BLE001 - verification never raises on malformed input
        return False
