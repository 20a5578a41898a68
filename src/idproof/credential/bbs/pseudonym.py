"""BBS per-verifier linkability — pseudonyms with a blindly issued nym secret
(draft-irtf-cfrg-bbs-per-verifier-linkability, revision noted in
``idproof.credential.bbs.__init__``).

Flow (names follow the draft):

1. Holder (Prover): ``commit(committed_messages, prover_nym)`` → ``(commitment_with_proof,
   secret_prover_blind)``; ``prover_nym`` is the holder's secret share of the nym secret.
2. Issuer (Signer): ``blind_sign(SK, PK, commitment_with_proof, header, messages)`` →
   ``(blind_signature, signer_nym_entropy)``; the signer adds its own entropy to the nym
   secret so that neither party alone controls it.
3. Holder: ``verify_and_finalize(...)`` → ``nym_secret = prover_nym + signer_nym_entropy``
   (None if the signature does not verify).
4. Holder: ``proof_gen(..., nym_secret, context_id, ...)`` → ``(proof, pseudonym)`` with
   ``pseudonym = hash_to_curve_g1(context_id) * nym_secret`` — stable per ``context_id``
   (verifier/service), unlinkable across contexts.
5. Verifier: ``proof_verify(PK, proof, header, ph, pseudonym, context_id, L, ...)``.

The signature is a blind BBS signature whose last committed message is the nym secret;
the proof is a BBS proof (never disclosing the nym secret) extended with a Schnorr proof
that the pseudonym uses the same nym secret.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from py_arkworks_bls12381 import G1Point, Scalar

from . import blind, core
from ._hash import i2osp
from ._suite import (
    G1_IDENTITY,
    OCTET_SCALAR_LENGTH,
    SHA256,
    Ciphersuite,
    RandomScalars,
    _Api,
    as_bytes,
    as_message_list,
    draw_scalars,
    octets_to_point_g1,
    octets_to_scalar,
    system_random_scalars,
)

__all__ = [
    "blind_sign",
    "calculate_pseudonym",
    "commit",
    "proof_gen",
    "proof_verify",
    "random_prover_nym",
    "verify_and_finalize",
]

_ONE = Scalar(1)
_BP1 = G1Point()  # the draft: a pseudonym is neither Identity_G1 nor BP1


def _ctx(suite: Ciphersuite) -> blind._Ctx:
    return blind._ctx(suite, suite.pseudonym_api_id)


def _scalar_arg(value: bytes, what: str, *, nonzero: bool = False) -> Scalar:
    s = octets_to_scalar(as_bytes(value, what))
    if s is None or (nonzero and s.is_zero()):
        raise ValueError(f"{what} must be a 32-octet big-endian scalar in [{1 if nonzero else 0}, r-1]")
    return s


def random_prover_nym() -> bytes:
    """A fresh random ``prover_nym`` (the holder's secret share of the nym secret)."""
    while True:
        v = system_random_scalars(1)[0]
        if v:
            return v.to_bytes(OCTET_SCALAR_LENGTH, "big")


# ---------------------------------------------------------------------------------------------
# Context point OP = hash_to_curve_g1(context_id, api_id): cached, verifiers reuse contexts
# ---------------------------------------------------------------------------------------------

_OP_CACHE: OrderedDict[tuple[str, bytes], G1Point] = OrderedDict()
_OP_LOCK = threading.Lock()
_OP_CACHE_MAX = 1024


def _context_point(api: _Api, context_id: bytes) -> G1Point:
    """OP = hash_to_curve_g1(context_id) with DST = api_id (as the draft's reference code)."""
    key = (api.suite.name, context_id)
    with _OP_LOCK:
        op = _OP_CACHE.get(key)
        if op is not None:
            _OP_CACHE.move_to_end(key)
            return op
    op = api.suite.hash_to_curve_g1(context_id, api.api_id)
    with _OP_LOCK:
        _OP_CACHE[key] = op
        if len(_OP_CACHE) > _OP_CACHE_MAX:
            _OP_CACHE.popitem(last=False)
    return op


def calculate_pseudonym(context_id: bytes, nym_secret: bytes, suite: Ciphersuite = SHA256) -> bytes:
    """Pseudonym = hash_to_curve_g1(context_id) * nym_secret (48 octets)."""
    ctx = _ctx(suite)
    s = _scalar_arg(nym_secret, "nym_secret", nonzero=True)
    p = _context_point(ctx.api, as_bytes(context_id, "context_id")) * s
    if p == G1_IDENTITY or p == _BP1:
        raise ValueError("pseudonym is the identity")
    return p.to_compressed_bytes()


# ---------------------------------------------------------------------------------------------
# Issuance
# ---------------------------------------------------------------------------------------------


def commit(
    committed_messages: Sequence[bytes],
    prover_nym: bytes,
    suite: Ciphersuite = SHA256,
    *,
    rng: RandomScalars | None = None,
) -> tuple[bytes, bytes]:
    """NymCommit (Prover): commit to ``committed_messages`` and, as the last committed
    value, ``prover_nym``.  Returns ``(commitment_with_proof, secret_prover_blind)``."""
    ctx = _ctx(suite)
    msgs = as_message_list(committed_messages, "committed_messages")
    nym = _scalar_arg(prover_nym, "prover_nym", nonzero=True)
    scalars = ctx.api.messages_to_scalars(msgs) + [nym]
    octs, blind_s = blind.core_commit(ctx.api, ctx.blind_generators(len(scalars) + 1), scalars, rng)
    return octs, blind_s.to_be_bytes()


def blind_sign(
    sk: bytes,
    pk: bytes,
    commitment_with_proof: bytes,
    header: bytes,
    messages: Sequence[bytes],
    signer_nym_entropy: bytes | None = None,
    suite: Ciphersuite = SHA256,
    *,
    rng: RandomScalars | None = None,
) -> tuple[bytes, bytes]:
    """BlindSignWithNym (Signer): returns ``(blind_signature, signer_nym_entropy)``.

    B = P1 + sum H_i * msg_i + commit + J_nym * signer_nym_entropy, then FinalizeBlindSign.
    ``signer_nym_entropy`` is drawn at random unless given (test vectors).  Raises ValueError
    on an invalid commitment (including one with no nym, i.e. empty).
    """
    ctx = _ctx(suite)
    s, pk = blind._signer_inputs(sk, pk)
    cwp = as_bytes(commitment_with_proof, "commitment_with_proof")
    header = as_bytes(header, "header")
    msgs = as_message_list(messages)
    m = blind.commitment_length_to_m(cwp)
    if m is None or m < 1:
        raise ValueError("commitment_with_proof must commit to at least the prover_nym")
    if signer_nym_entropy is None:
        entropy = draw_scalars(rng, 1)[0]
        if entropy.is_zero():
            raise ValueError("rng returned a zero signer_nym_entropy")
    else:
        entropy = _scalar_arg(signer_nym_entropy, "signer_nym_entropy", nonzero=True)
    gens = ctx.generators(len(msgs) + 1)
    bgens = ctx.blind_generators(m + 1)
    commitment = blind.deserialize_and_validate_commit(ctx.api, cwp, bgens)
    if commitment is None:
        raise ValueError("invalid commitment_with_proof (proof of correctness failed)")
    msg_scalars = ctx.api.messages_to_scalars(msgs)
    points = [ctx.api.suite.P1, commitment, bgens[-1]] + gens[1:]
    b = G1Point.multiexp_unchecked(points, [_ONE, _ONE, entropy] + msg_scalars)
    sig = blind.finalize_blind_sign(ctx.api, s, pk, b, gens, bgens, header)
    return sig, entropy.to_be_bytes()


def verify_and_finalize(
    pk: bytes,
    signature: bytes,
    header: bytes,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    prover_nym: bytes,
    signer_nym_entropy: bytes,
    secret_prover_blind: bytes,
    suite: Ciphersuite = SHA256,
) -> bytes | None:
    """VerifyFinalizeWithNym (Prover): ``nym_secret = prover_nym + signer_nym_entropy``;
    verify the blind signature over (messages, secret_prover_blind, committed_messages,
    nym_secret).  Returns ``nym_secret`` (32 octets) if valid, else None (never raises)."""
    try:
        ctx = _ctx(suite)
        nym = octets_to_scalar(as_bytes(prover_nym, "prover_nym"))
        ent = octets_to_scalar(as_bytes(signer_nym_entropy, "signer_nym_entropy"))
        if nym is None or ent is None:
            return None
        nym_secret = nym + ent
        if nym_secret.is_zero():
            return None
        msgs = as_message_list(messages)
        cmsgs = as_message_list(committed_messages, "committed_messages")
        scalars, gens = blind.prepare_parameters(ctx, msgs, cmsgs, secret_prover_blind, [nym_secret])
        ok = core.core_verify(
            ctx.api, as_bytes(pk, "pk"), signature, gens, as_bytes(header, "header"), scalars
        )
        return nym_secret.to_be_bytes() if ok else None
    except Exception:  # noqa: BLE001 - verification never raises on malformed input
        return None


# ---------------------------------------------------------------------------------------------
# Presentation
# ---------------------------------------------------------------------------------------------


def _nym_challenge(
    api: _Api,
    init_res: core.InitRes,
    pseudonym: G1Point,
    op: G1Point,
    u: G1Point,
    disclosed_indexes: Sequence[int],
    disclosed_scalars: Sequence[Scalar],
    ph: bytes,
) -> Scalar:
    """ProofWithNymChallengeCalculate:
    c_arr = (R, i1, msg_i1, ..., iR, msg_iR, Abar, Bbar, D, T1, T2, Pseudonym, OP, Ut, domain);
    c = hash_to_scalar(serialize(c_arr) || I2OSP(length(ph), 8) || ph)."""
    c_octs = b"".join(
        [
            core.challenge_prefix(disclosed_indexes, disclosed_scalars),
            init_res.abar.to_compressed_bytes(),
            init_res.bbar.to_compressed_bytes(),
            init_res.d.to_compressed_bytes(),
            init_res.t1.to_compressed_bytes(),
            init_res.t2.to_compressed_bytes(),
            pseudonym.to_compressed_bytes(),
            op.to_compressed_bytes(),
            u.to_compressed_bytes(),
            init_res.domain.to_be_bytes(),
            i2osp(len(ph), 8),
            ph,
        ]
    )
    return api.hash_to_scalar(c_octs)


def proof_gen(
    pk: bytes,
    signature: bytes,
    header: bytes,
    ph: bytes,
    nym_secret: bytes,
    context_id: bytes,
    messages: Sequence[bytes],
    committed_messages: Sequence[bytes],
    disclosed_indexes: Sequence[int],
    disclosed_commitment_indexes: Sequence[int],
    secret_prover_blind: bytes,
    suite: Ciphersuite = SHA256,
    *,
    rng: RandomScalars | None = None,
) -> tuple[bytes, bytes]:
    """ProofGenWithNym (Prover): returns ``(proof, pseudonym)``.

    The nym secret (last message) and ``secret_prover_blind`` are never disclosed;
    ``disclosed_commitment_indexes`` index ``committed_messages``.
    """
    ctx = _ctx(suite)
    api = ctx.api
    pk = as_bytes(pk, "pk")
    core._parse_pk_or_raise(pk)
    header = as_bytes(header, "header")
    ph = as_bytes(ph, "ph")
    context_id = as_bytes(context_id, "context_id")
    nym = _scalar_arg(nym_secret, "nym_secret", nonzero=True)
    msgs = as_message_list(messages)
    cmsgs = as_message_list(committed_messages, "committed_messages")
    idx = core.normalize_indexes(disclosed_indexes, len(msgs), "disclosed_indexes")
    cidx = core.normalize_indexes(disclosed_commitment_indexes, len(cmsgs), "disclosed_commitment_indexes")
    sig = core.octets_to_signature(as_bytes(signature, "signature"))
    if sig is None:
        raise ValueError("malformed signature")
    a, e = sig
    scalars, gens = blind.prepare_parameters(ctx, msgs, cmsgs, secret_prover_blind, [nym])
    disclosed = blind.combined_indexes(len(msgs), idx, cidx)
    dset = set(disclosed)
    undisclosed = [j for j in range(len(scalars)) if j not in dset]  # ends with the nym secret
    rs = draw_scalars(rng, 5 + len(undisclosed))
    init_res = core.proof_init(api, pk, a, e, gens, rs, header, scalars, undisclosed)
    # NymProofInit(context_id, nym_secret, m~_nym)
    op = _context_point(api, context_id)
    pseudonym = op * nym
    ut = op * rs[-1]
    if pseudonym == G1_IDENTITY or pseudonym == _BP1 or ut == G1_IDENTITY:
        raise ValueError("pseudonym computation produced the identity or the base point")
    c = _nym_challenge(api, init_res, pseudonym, op, ut, disclosed, [scalars[i] for i in disclosed], ph)
    proof = core.proof_finalize(init_res, c, e, rs, [scalars[j] for j in undisclosed])
    return proof, pseudonym.to_compressed_bytes()


def proof_verify(
    pk: bytes,
    proof: bytes,
    header: bytes,
    ph: bytes,
    pseudonym: bytes,
    context_id: bytes,
    L: int,
    disclosed_messages: Sequence[bytes],
    disclosed_committed_messages: Sequence[bytes],
    disclosed_indexes: Sequence[int],
    disclosed_committed_indexes: Sequence[int],
    suite: Ciphersuite = SHA256,
) -> bool:
    """ProofVerifyWithNym (Verifier): checks the BBS proof and that ``pseudonym`` is
    hash_to_curve_g1(context_id) raised to the signed (hidden) nym secret.
    ``L`` is the number of Signer messages.  Returns False on any invalid input."""
    try:
        ctx = _ctx(suite)
        api = ctx.api
        if isinstance(L, bool) or not isinstance(L, int) or L < 0:
            return False
        proof = as_bytes(proof, "proof")
        pk = as_bytes(pk, "pk")
        nym_point = octets_to_point_g1(as_bytes(pseudonym, "pseudonym"))
        w = core.octets_to_pubkey(pk)
        p = core.octets_to_proof(proof)
        sd = core.sort_disclosed(disclosed_indexes, disclosed_messages)
        sc = core.sort_disclosed(disclosed_committed_indexes, disclosed_committed_messages)
        if nym_point is None or nym_point == _BP1 or w is None or p is None or sd is None or sc is None:
            return False
        n = len(sd[0]) + len(sc[0]) + len(p.m_hat)  # L + 1 (blind) + M + 1 (nym)
        m = n - L - 2  # committed messages other than the nym secret
        if not p.m_hat or m < 0 or any(i >= L for i in sd[0]) or any(j >= m for j in sc[0]):
            return False
        gens = ctx.generators(L + 1) + ctx.blind_generators(m + 2)
        scalars = api.messages_to_scalars(sd[1] + sc[1])
        idx = blind.combined_indexes(L, sd[0], sc[0])
        init_res = core.proof_verify_init(api, pk, p, gens, as_bytes(header, "header"), scalars, idx)
        if init_res is None:
            return False
        # NymProofVerifyInit: Uv = OP * m^_nym - Pseudonym * cp (nym secret is the last undisclosed)
        op = _context_point(api, as_bytes(context_id, "context_id"))
        uv = G1Point.multiexp_unchecked([op, nym_point], [p.m_hat[-1], -p.challenge])
        if uv == G1_IDENTITY:
            return False
        if _nym_challenge(api, init_res, nym_point, op, uv, idx, scalars, as_bytes(ph, "ph")) != p.challenge:
            return False
        return core.pairing_check_proof(w, p)
    except Exception:  # noqa: BLE001 - verification never raises on malformed input
        return False
