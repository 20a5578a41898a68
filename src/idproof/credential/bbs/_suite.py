"""BBS ciphersuites (draft-irtf-cfrg-bbs-signatures, "Ciphersuites") and per-API helpers.

A :class:`Ciphersuite` fixes the hash (SHA-256 via expand_message_xmd, or SHAKE-256 via
expand_message_xof) and the hash-to-curve suite for G1.  An :class:`_Api` binds a
ciphersuite to one ``api_id`` (core, blind, pseudonym interfaces use different ones) and
provides hash_to_scalar, messages_to_scalars and cached create_generators.

All curve/field arithmetic is done by ``py_arkworks_bls12381``.  For the SHAKE-256 suite
the library has no XOF hash-to-curve, so ``hash_to_curve_g1`` is composed from library
pieces exactly as RFC 9380 §3 specifies: ``hash_to_field`` (expand_message_xof, then
OS2IP(64 bytes) mod p — RFC 9380 §5.2), the library's ``map_from_fp`` (simplified SWU +
isogeny + cofactor clearing), and a point addition.  Cofactor clearing is a group
homomorphism, so clear(Q0) + clear(Q1) == clear(Q0 + Q1) as RFC 9380 requires.  The same
composition for the SHA-256 suite reproduces the library's ``hash_to_curve`` and the RFC
9380 test vectors (checked in the tests).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from py_arkworks_bls12381 import G1Point, G2Point, Scalar

from ._hash import expand_message_xmd, expand_message_xof, i2osp, os2ip

__all__ = ["P_FIELD", "SHA256", "SHAKE256", "Ciphersuite", "R", "RandomScalars"]

#: Order r of G1, G2, GT (the scalar field) — BLS12-381.
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
#: Characteristic p of the base field — only used to reduce hash_to_field output (RFC 9380 §5.2).
P_FIELD = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
    16,
)

OCTET_SCALAR_LENGTH = 32
OCTET_POINT_LENGTH = 48  # compressed G1
OCTET_PK_LENGTH = 96  # compressed G2
EXPAND_LEN = 48  # ceil((ceil(log2(r)) + k) / 8), k = 128
_HTF_L = 64  # RFC 9380 L for BLS12-381 G1
#: Upper bound on create_generators counts.  Verifiers derive the message count from the proof
#: length, so without a bound a crafted (huge) proof would make them hash thousands of points.
MAX_GENERATORS = 4096

#: A source of random scalars: ``rng(count)`` returns ``count`` integers in [0, r).
RandomScalars = Callable[[int], Sequence[int]]


@dataclass(frozen=True)
class Ciphersuite:
    """One BBS ciphersuite (draft-irtf-cfrg-bbs-signatures, "Ciphersuites")."""

    name: str
    ciphersuite_id: bytes
    xof: bool  # True: SHAKE-256 / expand_message_xof; False: SHA-256 / expand_message_xmd
    _p1: list[G1Point] = field(default_factory=list, repr=False, compare=False, hash=False)

    # -- hashing ---------------------------------------------------------------------------
    def expand_message(self, msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
        """The ciphersuite's expand_message (RFC 9380 §5.3)."""
        if self.xof:
            return expand_message_xof(msg, dst, len_in_bytes)
        return expand_message_xmd(msg, dst, len_in_bytes)

    def hash_to_curve_g1(self, msg: bytes, dst: bytes) -> G1Point:
        """RFC 9380 hash_to_curve (random oracle, SSWU) to G1 with an arbitrary DST."""
        if not self.xof:
            return G1Point.hash_to_curve(msg, dst)
        uniform = self.expand_message(msg, dst, 2 * _HTF_L)
        q0, q1 = (
            G1Point.map_from_fp_be(i2osp(os2ip(uniform[i * _HTF_L : (i + 1) * _HTF_L]) % P_FIELD, 48))
            for i in range(2)
        )
        return q0 + q1

    def hash_to_scalar(self, msg: bytes, dst: bytes) -> Scalar:
        """hash_to_scalar: OS2IP(expand_message(msg, dst, 48)) mod r."""
        return Scalar.from_be_bytes_mod_order(self.expand_message(msg, dst, EXPAND_LEN))

    # -- identifiers -------------------------------------------------------------------------
    @property
    def api_id(self) -> bytes:
        """api_id of the core BBS interface: ciphersuite_id || "H2G_HM2S_"."""
        return self.ciphersuite_id + b"H2G_HM2S_"

    @property
    def blind_api_id(self) -> bytes:
        """api_id of the blind-signature interface: ciphersuite_id || "BLIND_H2G_HM2S_"."""
        return self.ciphersuite_id + b"BLIND_H2G_HM2S_"

    @property
    def pseudonym_api_id(self) -> bytes:
        """api_id of the pseudonym interface: ciphersuite_id || "H2G_HM2S_PSEUDONYM_"."""
        return self.ciphersuite_id + b"H2G_HM2S_PSEUDONYM_"

    @property
    def P1(self) -> G1Point:
        """The fixed G1 base point P1 (draft "Ciphersuites"): create_generators(1) seeded with
        api_id || "BP_MESSAGE_GENERATOR_SEED" (computed once; reproduces the draft's constant)."""
        if not self._p1:
            api_id = self.api_id
            p1 = _create_generators(self, 1, api_id, api_id + b"BP_MESSAGE_GENERATOR_SEED")[0]
            if not self._p1:  # benign race: the value is deterministic
                self._p1.append(p1)
        return self._p1[0]

    def __repr__(self) -> str:  # keep generator caches out of reprs
        return f"Ciphersuite({self.name!r})"


def _create_generators(suite: Ciphersuite, count: int, api_id: bytes, seed: bytes) -> list[G1Point]:
    """create_generators (uncached)."""
    seed_dst = api_id + b"SIG_GENERATOR_SEED_"
    generator_dst = api_id + b"SIG_GENERATOR_DST_"
    v = suite.expand_message(seed, seed_dst, EXPAND_LEN)
    out = []
    for i in range(1, count + 1):
        v = suite.expand_message(v + i2osp(i, 8), seed_dst, EXPAND_LEN)
        out.append(suite.hash_to_curve_g1(v, generator_dst))
    return out


#: BLS12-381-SHA-256.
SHA256 = Ciphersuite("BLS12-381-SHA-256", b"BBS_BLS12381G1_XMD:SHA-256_SSWU_RO_", xof=False)
#: BLS12-381-SHAKE-256.
SHAKE256 = Ciphersuite("BLS12-381-SHAKE-256", b"BBS_BLS12381G1_XOF:SHAKE-256_SSWU_RO_", xof=True)


class _Api:
    """A ciphersuite bound to one api_id, with a prefix-stable generator cache."""

    def __init__(self, suite: Ciphersuite, api_id: bytes) -> None:
        self.suite = suite
        self.api_id = api_id
        self.h2s_dst = api_id + b"H2S_"
        self.map_dst = api_id + b"MAP_MSG_TO_SCALAR_AS_HASH_"
        self._seed_dst = api_id + b"SIG_GENERATOR_SEED_"
        self._gen_dst = api_id + b"SIG_GENERATOR_DST_"
        self._gens: list[G1Point] = []
        self._v = suite.expand_message(api_id + b"MESSAGE_GENERATOR_SEED", self._seed_dst, EXPAND_LEN)
        self._lock = threading.Lock()

    def hash_to_scalar(self, msg: bytes) -> Scalar:
        """hash_to_scalar with the api's default DST (api_id || "H2S_")."""
        return self.suite.hash_to_scalar(msg, self.h2s_dst)

    def messages_to_scalars(self, messages: Sequence[bytes]) -> list[Scalar]:
        """messages_to_scalars via map_to_scalar_as_hash."""
        dst = self.map_dst
        h = self.suite.hash_to_scalar
        return [h(bytes(m), dst) for m in messages]

    def create_generators(self, count: int) -> list[G1Point]:
        """create_generators; generators are a prefix-stable sequence, so cached."""
        if count > MAX_GENERATORS:
            raise ValueError(f"at most {MAX_GENERATORS} generators (messages) are supported")
        if count > len(self._gens):
            with self._lock:
                suite = self.suite
                while len(self._gens) < count:
                    i = len(self._gens) + 1
                    self._v = suite.expand_message(self._v + i2osp(i, 8), self._seed_dst, EXPAND_LEN)
                    self._gens.append(suite.hash_to_curve_g1(self._v, self._gen_dst))
        return self._gens[:count]


_API_CACHE: dict[tuple[str, bytes], _Api] = {}
_API_LOCK = threading.Lock()


def get_api(suite: Ciphersuite, api_id: bytes) -> _Api:
    """Shared :class:`_Api` instance (keeps the generator cache across calls)."""
    key = (suite.name, api_id)
    api = _API_CACHE.get(key)
    if api is None:
        with _API_LOCK:
            api = _API_CACHE.setdefault(key, _Api(suite, api_id))
    return api


def check_suite(suite: object) -> Ciphersuite:
    if not isinstance(suite, Ciphersuite):
        raise ValueError(f"unsupported ciphersuite: {suite!r}")
    return suite


# -- (de)serialisation helpers ---------------------------------------

BP2 = G2Point()  # the G2 base point
NEG_BP2 = -BP2
G1_IDENTITY = G1Point.identity()
G2_IDENTITY = G2Point.identity()


def scalar_to_octets(s: Scalar) -> bytes:
    return s.to_be_bytes()


def octets_to_scalar(octets: bytes) -> Scalar | None:
    """Parse a 32-byte big-endian scalar; None unless 0 <= s < r."""
    if len(octets) != OCTET_SCALAR_LENGTH:
        return None
    v = os2ip(octets)
    if v >= R:
        return None
    return Scalar(v)


def octets_to_point_g1(octets: bytes, *, allow_identity: bool = False) -> G1Point | None:
    """Compressed G1 point, checked to be in the prime-order subgroup."""
    if len(octets) != OCTET_POINT_LENGTH:
        return None
    try:
        p = G1Point.from_compressed_bytes_unchecked(bytes(octets))
    except (ValueError, TypeError):
        return None
    if not p.is_in_subgroup():
        return None
    if not allow_identity and p == G1_IDENTITY:
        return None
    return p


@lru_cache(maxsize=256)
def octets_to_pubkey(pk: bytes) -> G2Point | None:
    """octets_to_pubkey: G2 point in subgroup, not the identity (cached)."""
    if len(pk) != OCTET_PK_LENGTH:
        return None
    try:
        w = G2Point.from_compressed_bytes_unchecked(pk)
    except (ValueError, TypeError):
        return None
    if not w.is_in_subgroup() or w == G2_IDENTITY:
        return None
    return w


def system_random_scalars(count: int) -> list[int]:
    """calculate_random_scalars using the OS CSPRNG."""
    return [os2ip(secrets.token_bytes(EXPAND_LEN)) % R for _ in range(count)]


def seeded_random_scalars(seed: bytes, dst: bytes, count: int, suite: Ciphersuite) -> list[int]:
    """Mocked random scalars (draft appendix): deterministic scalars for test vectors ONLY."""
    v = suite.expand_message(seed, dst, EXPAND_LEN * count)
    return [os2ip(v[i * EXPAND_LEN : (i + 1) * EXPAND_LEN]) % R for i in range(count)]


def draw_scalars(rng: RandomScalars | None, count: int) -> list[Scalar]:
    """Draw ``count`` random scalars from ``rng`` (default: the OS CSPRNG)."""
    values = list((rng or system_random_scalars)(count))
    if len(values) != count:
        raise ValueError(f"rng returned {len(values)} scalars, expected {count}")
    out = []
    for v in values:
        v = int(v)
        if not 0 <= v < R:
            raise ValueError("rng returned a value outside [0, r)")
        out.append(Scalar(v))
    return out


def as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ValueError(f"{what} must be bytes, got {type(value).__name__}")


def as_message_list(messages: object, what: str = "messages") -> list[bytes]:
    if messages is None:
        return []
    if isinstance(messages, (bytes, bytearray, str)):
        raise ValueError(f"{what} must be a list of bytes")
    return [as_bytes(m, what.removesuffix("s")) for m in messages]  # type: ignore[union-attr]
