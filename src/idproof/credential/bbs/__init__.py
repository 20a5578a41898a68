"""BBS signatures over BLS12-381 (IRTF CFRG drafts) on top of ``py_arkworks_bls12381``.

Modules
-------
``core``
    draft-irtf-cfrg-bbs-signatures — KeyGen, SkToPk, Sign, Verify, ProofGen, ProofVerify.
    Follows revision -07 (the revision the pseudonym draft below references): signatures
    ``A || e`` with ``e = hash_to_scalar(SK || msg_1..msg_L || domain)``, proofs
    ``(Abar, Bbar, D, e^, r1^, r3^, m^_j..., c)``.  The published test vectors are unchanged
    in later revisions.
``blind``
    draft-irtf-cfrg-bbs-blind-signatures -01 (the revision that added these test vectors;
    the computation is the same in -00 and -02): Commit, BlindSign (B_calculate +
    FinalizeBlindSign with ``e = hash_to_scalar(SK || B)``), Verify, BlindProofGen,
    BlindProofVerify.  api_id = ciphersuite_id || "BLIND_H2G_HM2S_"; the committed messages'
    generators (Q_2, J_1..J_M) come from create_generators(·, "BLIND_" || api_id).
``pseudonym``
    draft-irtf-cfrg-bbs-per-verifier-linkability -00/-01 (one ``prover_nym`` per signature;
    later revisions generalise to nym-secret vectors and bind their length into the header,
    so their signatures and proofs differ from these):
    NymCommit, BlindSignWithNym (signer adds ``signer_nym_entropy``), VerifyFinalize
    (``nym_secret = prover_nym + signer_nym_entropy``), ProofGenWithNym / ProofVerifyWithNym
    with ``Pseudonym = hash_to_curve_g1(context_id, api_id) * nym_secret``.
    api_id = ciphersuite_id || "H2G_HM2S_PSEUDONYM_".

Ciphersuites: :data:`SHA256` (BLS12-381-SHA-256) and :data:`SHAKE256` (BLS12-381-SHAKE-256).

Conventions: keys, signatures, proofs, scalars (``secret_prover_blind``, ``prover_nym``,
``nym_secret``, ``signer_nym_entropy``) and pseudonyms are octet strings (scalars: 32-octet
big-endian).  Generation functions raise :class:`ValueError` on invalid input; verification
functions return ``False`` (``pseudonym.verify_and_finalize``: ``None``) on any invalid or
malformed input and never raise.  Randomness comes from the OS CSPRNG; the keyword-only
``rng`` hook (``rng(count) -> list[int]``) exists to reproduce the drafts' mocked-RNG test
vectors only.
"""

from ._suite import SHA256, SHAKE256, Ciphersuite

__all__ = ["SHA256", "SHAKE256", "Ciphersuite", "blind", "core", "pseudonym"]

from . import blind, core, pseudonym
