"""Blind BBS signatures (draft-irtf-cfrg-bbs-blind-signatures, revision noted in
``idproof.credential.bbs.__init__``).

The Prover commits to ``committed_messages`` (Pedersen commitment with a Schnorr proof of
opening), the Signer verifies the commitment and signs it together with its own
``messages``; the resulting signature is an ordinary BBS signature over

    messages || (secret_prover_blind, committed_messages...)

with generators ``create_generators(L + 1, api_id) || create_generators(M + 1, "BLIND_" || api_id)``
(Q_1, H_1..H_L, Q_2, J_1..J_M), so verification and proofs reuse the core operations.

Generation functions raise ValueError on invalid input; verification functions return
False on any invalid or malformed input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from py_arkworks_bls12381 import G1Point, Scalar

from . import core
from ._hash import i2osp
from ._suite import (
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
    octets_to_scalar,
)

__all__ = ["blind_sign", "commit", "proof_gen", "proof_verify", "verify"]

_ONE = Scalar(1)
_ZERO = Scalar(0)
COMMIT_LEN_FLOOR = OCTET_POINT_LENGTH + 2 * OCTET_SCALAR_LENGTH  # C, s^, challenge


@dataclass(frozen=True)
class _Ctx:
    """The two generator families of one blind-capable api_id."""

    api: _Api  # signer generators: api_id
    blind_api: _Api  # blind generators: "BLIND_" || api_id

    def generators(self, n: int) -> list[G1Point]:
        return self.api.create_generators(n)

    def blind_generators(self, n: int) -> list[G1Point]:
        return self.blind_api.create_generators(n)


def _ctx(suite: Ciphersuite, api_id: bytes | None = None) -> _Ctx:
    suite = check_suite(suite)
    api_id = suite.blind_api_id if api_id is None else api_id
    return _Ctx(get_api(suite, api_id), get_api(suite, b"BLIND_" + api_id))


# ---------------------------------------------------------------------------------------------
# Commitment (Commit, CoreCommit, helpers)
# ---------------------------------------------------------------------------------------------


def calculate_blind_challenge(
    api: _Api, c: G1Point, cbar: G1Point, blind_generators: Sequence[G1Point]
) -> Scalar:
    """calculate_blind_challenge: hash_to_scalar(serialize((M, Q_2, J_1..J_M, C, Cbar)))."""
    parts = [i2osp(len(blind_generators) - 1, 8)]
    parts.extend(g.to_compressed_bytes() for g in blind_generators)
    parts.append(c.to_compressed_bytes())
    parts.append(cbar.to_compressed_bytes())
    return api.hash_to_scalar(b"".join(parts))


def core_commit(
    api: _Api,
    blind_generators: Sequence[G1Point],
    committed_scalars: Sequence[Scalar],
    rng: RandomScalars | None,
) -> tuple[bytes, Scalar]:
    """CoreCommit: C = Q_2 * secret_prover_blind + sum J_i * msg_i, with a Schnorr proof
    (s^, m^_1..m^_M, challenge) of knowledge of the opening."""
    m = len(committed_scalars)
    if len(blind_generators) != m + 1:
        raise ValueError("wrong number of blind generators")
    rs = draw_scalars(rng, m + 2)
    blind, s_t, m_t = rs[0], rs[1], rs[2:]
    gens = list(blind_generators)
    c = G1Point.multiexp_unchecked(gens, [blind] + list(committed_scalars))
    cbar = G1Point.multiexp_unchecked(gens, [s_t] + m_t)
    ch = calculate_blind_challenge(api, c, cbar, gens)
    s_hat = s_t + blind * ch
    m_hat = [mt + msg * ch for mt, msg in zip(m_t, committed_scalars, strict=True)]
    octs = b"".join(
        [c.to_compressed_bytes(), s_hat.to_be_bytes()] + [x.to_be_bytes() for x in m_hat] + [ch.to_be_bytes()]
    )
    return octs, blind


def commit(
    committed_messages: Sequence[bytes],
    suite: Ciphersuite = SHA256,
    *,
    rng: RandomScalars | None = None,
) -> tuple[bytes, bytes]:
    """Commit (Prover): returns ``(commitment_with_proof, secret_prover_blind)``.

    Keep ``secret_prover_blind`` (32 octets) secret; it is needed to verify the blind
    signature and to create proofs.
    """
    ctx = _ctx(suite)
    msgs = as_message_list(committed_messages, "committed_messages")
    scalars = ctx.api.messages_to_scalars(msgs)
    octs, blind = core_commit(ctx.api, ctx.blind_generators(len(scalars) + 1), scalars, rng)
    return octs, blind.to_be_bytes()


def commitment_length_to_m(commitment_with_proof: bytes) -> int | None:
    """Number M of committed messages implied by the commitment length (0 for ""), or None."""
    n = len(commitment_with_proof)
    if n == 0:
        return 0
    if n < COMMIT_LEN_FLOOR or (n - COMMIT_LEN_FLOOR) % OCTET_SCALAR_LENGTH:
        return None
    return (n - COMMIT_LEN_FLOOR) // OCTET_SCALAR_LENGTH


def deserialize_and_validate_commit(
    api: _Api, commitment_with_proof: bytes, blind_generators: Sequence[G1Point]
) -> G1Point | None:
    """deserialize_and_validate_commit: parse C (in G1, not identity) and the proof scalars
    (each in [1, r-1]), then verify the Schnorr proof:
    Cbar = Q_2 * s^ + sum J_i * m^_i - C * cp;  cp == calculate_blind_challenge(C, Cbar, ...).
    Returns Identity_G1 for an empty commitment, None if invalid."""
    if len(commitment_with_proof) == 0:
        return G1_IDENTITY
    m = commitment_length_to_m(commitment_with_proof)
    if m is None or len(blind_generators) != m + 1:
        return None
    c = octets_to_point_g1(commitment_with_proof[:OCTET_POINT_LENGTH])
    if c is None:
        return None
    scalars = []
    for off in range(OCTET_POINT_LENGTH, len(commitment_with_proof), OCTET_SCALAR_LENGTH):
        s = octets_to_scalar(commitment_with_proof[off : off + OCTET_SCALAR_LENGTH])
        if s is None or s.is_zero():
            return None
        scalars.append(s)
    s_hat, m_hat, cp = scalars[0], scalars[1:-1], scalars[-1]
    gens = list(blind_generators)
    cbar = G1Point.multiexp_unchecked(gens + [c], [s_hat] + m_hat + [-cp])
    if calculate_blind_challenge(api, c, cbar, gens) != cp:
        return None
    return c


# ---------------------------------------------------------------------------------------------
# Blind signing (BlindSign, B_calculate, FinalizeBlindSign)
# ---------------------------------------------------------------------------------------------


def finalize_blind_sign(
    api: _Api,
    sk: Scalar,
    pk: bytes,
    b: G1Point,
    generators: Sequence[G1Point],
    blind_generators: Sequence[G1Point],
    header: bytes,
) -> bytes:
    """FinalizeBlindSign.

    domain = calculate_domain(PK, Q_1, (H_1..H_L, Q_2, J_1..J_M), header)
    B = B + Q_1 * domain;  e = hash_to_scalar(serialize((SK, B)));  A = B * 1/(SK + e)
    """
    q1 = generators[0]
    domain = core.calculate_domain(api, pk, q1, list(generators[1:]) + list(blind_generators), header)
    b = b + q1 * domain
    if b == G1_IDENTITY:
        raise ValueError("B is the identity")
    e = api.hash_to_scalar(sk.to_be_bytes() + b.to_compressed_bytes())
    denom = sk + e
    if denom.is_zero():
        raise ValueError("SK + e == 0")
    return core.signature_to_octets(b * denom.inverse(), e)


def b_calculate(
    api: _Api, generators: Sequence[G1Point], commitment: G1Point, msg_scalars: Sequence[Scalar]
) -> G1Point:
    """B_calculate: B = P1 + H_1 * msg_1 + ... + H_L * msg_L + commitment."""
    points = [api.suite.P1, commitment] + list(generators[1 : len(msg_scalars) + 1])
    return G1Point.multiexp_unchecked(points, [_ONE, _ONE] + list(msg_scalars))


def _signer_inputs(sk: bytes, pk: bytes) -> tuple[Scalar, bytes]:
    s = core._parse_sk(sk)
    pk = as_bytes(pk, "pk")
    w = core._parse_pk_or_raise(pk)
    if core.BP2 * s != w:
        raise ValueError("pk does not match sk")
    return s, pk


def blind_sign(
    sk: bytes,
    pk: bytes,
    commitment_with_proof: bytes | None,
    header: bytes,
    messages: Sequence[bytes],
    suite: Ciphersuite = SHA256,
) -> bytes:
    """BlindSign (Signer): validate the Prover's commitment and sign it with ``messages``.

    ``commitment_with_proof`` may be empty/None (no committed messages).  Raises ValueError
    if the commitment or its proof of correctness is invalid.
    """
    ctx = _ctx(suite)
    s, pk = _signer_inputs(sk, pk)
    cwp = b"" if commitment_with_proof is None else as_bytes(commitment_with_proof, "commitment_with_proof")
    header = as_bytes(header, "header")
    msgs = as_message_list(messages)
    m = commitment_length_to_m(cwp)
    if m is None:
        raise ValueError("malformed commitment_with_proof")
    gens = ctx.generators(len(msgs) + 1)
    bgens = ctx.blind_generators(m + 1)
    commitment = deserialize_and_validate_commit(ctx.api, cwp, bgens)
    if commitment is None:
        raise ValueError("invalid commitment_with_proof (proof of correctness failed)")
    b = b_calculate(ctx.api, gens, commitment, ctx.api.messages_to_scalars(msgs))
    return finalize_blind_sign(ctx.api, s, pk, b, gens, bgens, header)


# ---------------------------------------------------------------------------------------------
# Verification and proofs (Verify, BlindProofGen, BlindProofVerify)
# ---------------------------------------------------------------------------------------------


def _blind_scalar(secret_prover_blind: bytes | None) -> Scalar:
    if secret_prover_blind is None or len(secret_prover_blind) == 0:
        return _ZERO  # no commitment was used
    s = octets_to_scalar(as_bytes(secret_prover_blind, "secret_prover_blind"))
    if s is None:
        raise ValueError("secret_prover_blind must be a 32-octet scalar < r")
    return s


def prepare_parameters(
    ctx: _Ctx,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    secret_prover_blind: bytes | None,
    extra_committed_scalars: Sequence[Scalar] = (),
) -> tuple[list[Scalar], list[G1Point]]:
    """Combined scalars (msgs || secret_prover_blind || committed || extra) and generators
    (Q_1, H_1..H_L, Q_2, J_1..J_{M + len(extra)})."""
    msg_scalars = ctx.api.messages_to_scalars(messages)
    com_scalars = ctx.api.messages_to_scalars(committed_messages) + list(extra_committed_scalars)
    scalars = msg_scalars + [_blind_scalar(secret_prover_blind)] + com_scalars
    gens = ctx.generators(len(messages) + 1) + ctx.blind_generators(len(com_scalars) + 1)
    return scalars, gens


def verify(
    pk: bytes,
    signature: bytes,
    header: bytes,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    secret_prover_blind: bytes | None,
    suite: Ciphersuite = SHA256,
) -> bool:
    """Verify (Prover): check a blind signature over ``messages`` and ``committed_messages``.

    ``secret_prover_blind`` is the value returned by :func:`commit` (None/b"" if no commitment).
    """
    try:
        ctx = _ctx(suite)
        msgs = as_message_list(messages)
        cmsgs = as_message_list(committed_messages, "committed_messages")
        scalars, gens = prepare_parameters(ctx, msgs, cmsgs, secret_prover_blind)
        return core.core_verify(
            ctx.api, as_bytes(pk, "pk"), signature, gens, as_bytes(header, "header"), scalars
        )
    except Exception:  # noqa: BLE001 - verification never raises on malformed input
        return False


def combined_indexes(
    l_count: int, disclosed_indexes: Sequence[int], disclosed_commitment_indexes: Sequence[int]
) -> list[int]:
    """Signer-message indexes stay as is; committed index j maps to L + 1 + j (after the blind)."""
    return list(disclosed_indexes) + [l_count + 1 + j for j in disclosed_commitment_indexes]


def proof_gen(
    pk: bytes,
    signature: bytes,
    header: bytes,
    ph: bytes,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    disclosed_indexes: Sequence[int],
    disclosed_commitment_indexes: Sequence[int],
    secret_prover_blind: bytes | None,
    suite: Ciphersuite = SHA256,
    *,
    rng: RandomScalars | None = None,
) -> bytes:
    """BlindProofGen: a BBS proof over a blind signature; ``secret_prover_blind`` is never disclosed."""
    ctx = _ctx(suite)
    pk = as_bytes(pk, "pk")
    core._parse_pk_or_raise(pk)
    msgs = as_message_list(messages)
    cmsgs = as_message_list(committed_messages, "committed_messages")
    idx = core.normalize_indexes(disclosed_indexes, len(msgs), "disclosed_indexes")
    cidx = core.normalize_indexes(disclosed_commitment_indexes, len(cmsgs), "disclosed_commitment_indexes")
    scalars, gens = prepare_parameters(ctx, msgs, cmsgs, secret_prover_blind)
    return core.core_proof_gen(
        ctx.api,
        pk,
        as_bytes(signature, "signature"),
        gens,
        as_bytes(header, "header"),
        as_bytes(ph, "ph"),
        scalars,
        combined_indexes(len(msgs), idx, cidx),
        rng,
    )


def proof_verify(
    pk: bytes,
    proof: bytes,
    header: bytes,
    ph: bytes,
    L: int,
    disclosed_messages: Sequence[bytes],
    disclosed_committed_messages: Sequence[bytes],
    disclosed_indexes: Sequence[int],
    disclosed_committed_indexes: Sequence[int],
    suite: Ciphersuite = SHA256,
) -> bool:
    """BlindProofVerify. ``L`` is the number of Signer messages. Returns False on any invalid input."""
    try:
        ctx = _ctx(suite)
        if isinstance(L, bool) or not isinstance(L, int) or L < 0:
            return False
        proof = as_bytes(proof, "proof")
        sd = core.sort_disclosed(disclosed_indexes, disclosed_messages)
        sc = core.sort_disclosed(disclosed_committed_indexes, disclosed_committed_messages)
        if sd is None or sc is None:
            return False
        if len(proof) < core.PROOF_LEN_FLOOR or (len(proof) - core.PROOF_LEN_FLOOR) % OCTET_SCALAR_LENGTH:
            return False
        u = (len(proof) - core.PROOF_LEN_FLOOR) // OCTET_SCALAR_LENGTH
        m = len(sd[0]) + len(sc[0]) + u - L - 1  # total scalars = L + 1 (blind) + M
        if m < 0 or any(i >= L for i in sd[0]) or any(j >= m for j in sc[0]):
            return False
        gens = ctx.generators(L + 1) + ctx.blind_generators(m + 1)
        scalars = ctx.api.messages_to_scalars(sd[1] + sc[1])
        return core.core_proof_verify(
            ctx.api,
            as_bytes(pk, "pk"),
            proof,
            gens,
            as_bytes(header, "header"),
            as_bytes(ph, "ph"),
            scalars,
            combined_indexes(L, sd[0], sc[0]),
        )
    except Exception:  # noqa: BLE001 - verification never raises on malformed input
        return False
