"""RFC 9162 Merkle trees (idproof.audit.merkle) against the published test vectors, an independent recursive
implementation of the RFC's definitions, and property tests (hypothesis, bounded).

Test vectors: the reference tree of RFC 6962 / Certificate Transparency, as kept in transparency-dev/merkle
(https://github.com/transparency-dev/merkle), file proof/verify_test.go (commit 02194e9afb6c1d95b5381350007963aa70fff472:
``leaves``, ``roots``, ``inclusionProofs``, ``consistencyProofs``, the corruption probes and the edge-case table
of TestVerifyConsistency) and rfc6962/rfc6962_test.go (hasher vectors). Their inclusion vectors number leaves
from 1 (``leaf - 1`` is the index).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idproof.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    mth,
    node_hash,
    range_nodes,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", b"\x50\x51\x52\x53\x54\x55\x56\x57",
          b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"]
ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf numbered from 1, tree size, proof)
INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_TREE = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


# --- an independent implementation of the RFC's recursive definitions (RFC 9162 2.1.1, 2.1.3.1, 2.1.4.1) ---

def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True) if 0 < m < len(d) else []


def data(i: int) -> bytes:
    return i.to_bytes(4, "big")


@lru_cache(maxsize=1)
def big_tree() -> MemoryTree:
    return MemoryTree(leaf_hash(data(i)) for i in range(2048))


# --- vectors -------------------------------------------------------------------------------------------------

def test_rfc6962_hasher_vectors():
    assert EMPTY_ROOT == EMPTY_TREE == root([]) == mth([])
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456") == h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
    # second-preimage resistance: a node is not the leaf of its children's concatenation; order matters
    a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert node_hash(a, b) != leaf_hash(a + b) and node_hash(a, b) != node_hash(b, a)


@pytest.mark.parametrize("n", range(1, 9))
def test_reference_roots(n):
    assert mth(LEAVES[:n]) == ROOTS[n - 1]
    tree = MemoryTree(leaf_hash(x) for x in LEAVES)
    assert tree.root(n) == ROOTS[n - 1]
    cr = CompactRange()
    for x in LEAVES[:n]:
        cr.append(leaf_hash(x))
    assert cr.root() == ROOTS[n - 1]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_reference_inclusion_proofs(leaf, size, proof):
    want = [h(p) for p in proof]
    leaf_hashes = [leaf_hash(x) for x in LEAVES[:size]]
    assert inclusion_proof(leaf - 1, size, leaf_hashes) == want
    assert MemoryTree(leaf_hash(x) for x in LEAVES).inclusion_proof(leaf - 1, size) == want
    lh, r = leaf_hash(LEAVES[leaf - 1]), ROOTS[size - 1]
    assert root_from_inclusion_proof(lh, leaf - 1, size, want) == r
    assert verify_inclusion(lh, leaf - 1, size, want, r)
    # corruptInclusionProof of verify_test.go: every probe must fail
    i = leaf - 1
    probes = [(i - 1, size, r, lh, want), (i + 1, size, r, lh, want), (i ^ 2, size, r, lh, want),
              (i, size * 2, r, lh, want), (i, size // 2, r, lh, want),
              (i, size, r, b"WrongLeaf", want), (i, size, EMPTY_TREE, lh, want), (i, size, SOME_HASH, lh, want),
              (i, size, r, lh, want + [b""]), (i, size, r, lh, want + [r]),
              (i, size, r, lh, [b""] + want), (i, size, r, lh, [r] + want)]
    for k in range(len(want)):
        bad = list(want)
        bad[k] = bytes([bad[k][0] ^ 8]) + bad[k][1:]
        probes.append((i, size, r, lh, bad))
    if want:
        probes.append((i, size, r, lh, want[:-1]))
    if len(want) > 1:
        probes.append((i, size, r, lh, [want[0], SOME_HASH] + want[1:]))
    for idx, sz, rt, lf, pr in probes:
        assert not verify_inclusion(lf, idx, sz, pr, rt), (idx, sz, pr)


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_reference_consistency_proofs(m, n, proof):
    want = [h(p) for p in proof]
    assert consistency_proof(m, n, [leaf_hash(x) for x in LEAVES[:n]]) == want
    r1, r2 = ROOTS[m - 1], ROOTS[n - 1]
    assert verify_consistency(m, n, r1, r2, want)
    if not want:
        return
    # corruptConsistencyProof of verify_test.go
    probes = [(m - 1, n, r1, r2, want), (m + 1, n, r1, r2, want), (m ^ 2, n, r1, r2, want),
              (m, n * 2, r1, r2, want), (m, n // 2, r1, r2, want),
              (m, n, b"WrongRoot", r2, want), (m, n, r1, b"WrongRoot", want), (m, n, r2, r1, want),
              (m, n, r1, r2, []), (m, n, r1, r2, want + [b""]), (m, n, r1, r2, want + [r1]),
              (m, n, r1, r2, want + [r2]), (m, n, r1, r2, [b""] + want), (m, n, r1, r2, [r1] + want),
              (m, n, r1, r2, [r2] + want), (m, n, r1, r2, [want[0]] + want), (m, n, r1, r2, want[:-1])]
    for k in range(len(want)):
        bad = list(want)
        bad[k] = bytes([bad[k][0] ^ 16]) + bad[k][1:]
        probes.append((m, n, r1, r2, bad))
    for a, b, x, y, pr in probes:
        assert not verify_consistency(a, b, x, y, pr), (a, b, pr)


def test_consistency_edge_cases_of_the_reference_suite():
    r1, r2 = hashlib.sha256(b"don't care 1").digest(), hashlib.sha256(b"don't care 2").digest()
    cases = [  # (size1, size2, root1, root2, proof, ok): TestVerifyConsistency's table (roots made 32 bytes)
        (0, 0, r1, r2, [], False), (1, 1, r1, r2, [], False),
        (0, 0, r1, r1, [], True), (0, 1, r1, r2, [], True), (1, 1, r2, r2, [], True),
        (1, 0, r1, r2, [], False), (2, 1, r1, r2, [], False),
        (1, 2, r1, r2, [], False),
        (0, 0, EMPTY_TREE, r2, [], False), (1, 1, EMPTY_TREE, r2, [], False),
        (0, 0, EMPTY_TREE, EMPTY_TREE, [EMPTY_TREE], False), (0, 1, EMPTY_TREE, EMPTY_TREE, [EMPTY_TREE], False),
        (1, 1, EMPTY_TREE, EMPTY_TREE, [EMPTY_TREE], False),
    ]
    for s1, s2, a, b, pr, ok in cases:
        assert verify_consistency(s1, s2, a, b, pr) is ok, (s1, s2)


def test_inclusion_edge_cases_of_the_reference_suite():
    for index, size in [(0, 0), (0, 1), (1, 0), (2, 1)]:
        assert not verify_inclusion(SOME_HASH, index, size, [], b"")
        assert not verify_inclusion(b"", index, size, [], EMPTY_TREE)
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_TREE)
    one = leaf_hash(b"data")  # a one-leaf tree: root == leaf hash, empty proof
    assert verify_inclusion(one, 0, 1, [], one)
    assert not verify_inclusion(b"", 0, 1, [], one) and not verify_inclusion(one, 0, 1, [], b"")


# --- exhaustive agreement with the recursive definitions on small trees -----------------------------------

def test_every_proof_up_to_64_leaves_matches_the_rfc_definitions():
    d = [data(i) for i in range(64)]
    tree = MemoryTree(leaf_hash(x) for x in d)
    for n in range(1, 65):
        r = ref_mth(d[:n])
        assert tree.root(n) == r
        for i in range(n):
            p = tree.inclusion_proof(i, n)
            assert p == ref_path(i, d[:n])
            assert verify_inclusion(leaf_hash(d[i]), i, n, p, r)
        for m in range(n + 1):
            c = tree.consistency_proof(m, n)
            assert c == ref_proof(m, d[:n])
            assert verify_consistency(m, n, ref_mth(d[:m]), r, c)


def test_compact_range_reports_every_perfect_subtree_once():
    d = [data(i) for i in range(200)]
    seen = {}
    cr = CompactRange()
    for i, x in enumerate(d):
        cr.append(leaf_hash(x), lambda level, idx, hh: seen.__setitem__((level, idx), hh))
        assert cr.root() == ref_mth(d[: i + 1])
        assert len(cr.hashes) == (i + 1).bit_count()
        assert [seen.get(n) or leaf_hash(d[n[1]]) for n in CompactRange.node_ids(i + 1)] == cr.hashes
    for (level, idx), hh in seen.items():
        assert hh == ref_mth(d[idx << level:(idx + 1) << level])
    assert len(seen) == sum(200 >> lvl for lvl in range(1, 8))
    with pytest.raises(ValueError):
        CompactRange(3, [EMPTY_ROOT])


@given(st.integers(0, 5000), st.integers(1, 5000))
@settings(max_examples=300, deadline=None)
def test_range_nodes_tile_the_range(begin, length):
    end = begin + length
    nodes = range_nodes(begin, end)
    pos = begin
    for level, idx in nodes:
        assert idx << level == pos  # contiguous, aligned
        pos += 1 << level
    assert pos == end
    assert len(nodes) <= 2 * end.bit_length()


# --- properties on random trees (hypothesis, bounded) ----------------------------------------------------

def _flip(b: bytes, bit: int) -> bytes:
    x = bytearray(b)
    x[(bit // 8) % len(x)] ^= 1 << (bit % 8)
    return bytes(x)


@given(st.data())
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_inclusion_proofs_verify_and_any_bit_flip_fails(data_):
    tree = big_tree()
    n = data_.draw(st.integers(1, tree.size), label="size")
    i = data_.draw(st.integers(0, n - 1), label="index")
    r, lh, p = tree.root(n), tree.leaf(i), tree.inclusion_proof(i, n)
    assert verify_inclusion(lh, i, n, p, r)
    bit = data_.draw(st.integers(0, 255), label="bit")
    assert not verify_inclusion(_flip(lh, bit), i, n, p, r)
    assert not verify_inclusion(lh, i, n, p, _flip(r, bit))
    if p:
        k = data_.draw(st.integers(0, len(p) - 1), label="element")
        assert not verify_inclusion(lh, i, n, p[:k] + [_flip(p[k], bit)] + p[k + 1:], r)
    j = data_.draw(st.integers(0, n - 1), label="other index")
    if j != i:
        assert not verify_inclusion(lh, j, n, p, r)


@given(st.data())
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_consistency_proofs_verify_and_any_bit_flip_fails(data_):
    tree = big_tree()
    n = data_.draw(st.integers(1, tree.size), label="new size")
    m = data_.draw(st.integers(1, n), label="old size")
    r1, r2, p = tree.root(m), tree.root(n), tree.consistency_proof(m, n)
    assert verify_consistency(m, n, r1, r2, p)
    bit = data_.draw(st.integers(0, 255), label="bit")
    assert not verify_consistency(m, n, _flip(r1, bit), r2, p)
    assert not verify_consistency(m, n, r1, _flip(r2, bit), p)
    if p:
        k = data_.draw(st.integers(0, len(p) - 1), label="element")
        assert not verify_consistency(m, n, r1, r2, p[:k] + [_flip(p[k], bit)] + p[k + 1:])
    if m < n:
        # a tree that differs in one leaf before m is not an extension of the old one
        j = data_.draw(st.integers(0, m - 1), label="changed leaf")
        other = MemoryTree(tree.leaf(x) if x != j else _flip(tree.leaf(x), bit) for x in range(n))
        assert not verify_consistency(m, n, r1, other.root(), other.consistency_proof(m, n))


def test_proof_sizes_are_logarithmic():
    tree = big_tree()
    n = tree.size
    assert max(len(tree.inclusion_proof(i)) for i in range(0, n, 7)) == 11  # 2048 leaves: log2 = 11
    assert max(len(tree.consistency_proof(m)) for m in range(1, n)) <= 12
