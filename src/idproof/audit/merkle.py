"""Merkle hash trees as RFC 9162 section 2.1 defines them (the tree of RFC 6962, Certificate Transparency).

Hashes (SHA-256 from hashlib, nothing hand-written)::

    MTH({})        = SHA-256()                                  the empty tree
    leaf_hash(d)   = SHA-256(0x00 || d)                         MTH({d})
    node_hash(l,r) = SHA-256(0x01 || l || r)                    MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))

where k is the largest power of two smaller than n. The 0x00 / 0x01 prefixes keep a leaf from ever being
read as an inner node (second-preimage resistance).

Nodes are named ``(level, index)``: the perfect subtree of 2**level leaves covering
``[index * 2**level, (index + 1) * 2**level)``. Level 0 holds the leaf hashes. Every subtree the RFC's
recursion visits, ``MTH(D[a:b])``, is the right fold of the perfect subtrees that decompose ``[a, b)``
(``range_nodes``), so proofs for a tree of any size are computed from stored perfect-subtree hashes alone:
a log keeps each perfect subtree hash once, when it completes (``CompactRange.append`` hands them out), and
never rehashes leaves to answer a proof.

- ``inclusion_proof`` / ``consistency_proof`` follow the recursive definitions PATH and SUBPROOF (RFC 9162
  2.1.3.1 and 2.1.4.1, identical to RFC 6962 2.1.1 and 2.1.2); they return the proof's hashes in the RFC's
  order (the leaf's sibling first).
- ``verify_inclusion`` / ``verify_consistency`` are the verification algorithms of RFC 9162 2.1.3.2 and
  2.1.4.2, step by step. Edge cases the RFC leaves to the caller follow transparency-dev/merkle: a
  consistency proof between equal sizes, or from size 0, is empty (and equal sizes need equal roots).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # [begin, end) of leaf indexes

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf's entry."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an inner node from its two children."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over the entries themselves (the RFC's definition, for entries given as data)."""
    return root([leaf_hash(e) for e in entries])


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """The Merkle tree hash of a list of leaf hashes, in O(n) hashes and O(log n) memory."""
    cr = CompactRange()
    for h in leaf_hashes:
        cr.append(h)
    return cr.root()


# --- compact range: the frontier of an append-only tree --------------------------------------------------


class CompactRange:
    """The perfect subtrees that make up the tree ``[0, size)``: one hash per set bit of ``size``, the largest
    (leftmost) first. That is all an append needs: ``append`` merges the new leaf into it in O(log n) hashes
    (amortised 2) and reports each perfect subtree it completes, so a log can store them for proofs.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} has {size.bit_count()} hashes, not {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    @staticmethod
    def node_ids(size: int) -> list[NodeId]:
        """The nodes a compact range of this size holds, largest first: ``(l, (size >> l) - 1)`` per set bit l."""
        return [(lvl, (size >> lvl) - 1) for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]

    def append(self, h: bytes, visit: Callable[[int, int, bytes], None] | None = None) -> None:
        """Append one leaf hash. ``visit(level, index, hash)`` is called for every perfect subtree of level >= 1
        that this leaf completes, lowest first."""
        s = self.size
        idx = s
        level = 0
        hashes = self.hashes
        while s & 1:
            h = _sha256(NODE_PREFIX + hashes.pop() + h).digest()
            s >>= 1
            idx >>= 1
            level += 1
            if visit is not None:
                visit(level, idx, h)
        hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        """MTH of the whole range: the right fold of its perfect subtrees."""
        if not self.hashes:
            return EMPTY_ROOT
        return fold(self.hashes)

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.hashes)


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold ``node_hash(h0, node_hash(h1, ... node_hash(h_{k-2}, h_{k-1})))``: the hash of a subtree from
    the perfect subtrees that decompose it, largest first."""
    r = hashes[-1]
    for h in reversed(hashes[:-1]):
        r = node_hash(h, r)
    return r


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The perfect subtrees that decompose ``[begin, end)``, left to right (each as large as its alignment
    allows). For a subtree of the RFC's recursion, folding their hashes gives MTH(D[begin:end])."""
    if not 0 <= begin < end:
        raise ValueError(f"empty or negative range [{begin}, {end})")
    out: list[NodeId] = []
    while begin < end:
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while begin + (1 << level) > end:
            level -= 1
        out.append((level, begin >> level))
        begin += 1 << level
    return out


# --- proofs: which subtrees (PATH / SUBPROOF), then their hashes from a node source ------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes make the inclusion proof of leaf ``index`` in a tree of ``size`` leaves, in
    proof order: PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    out: list[Range] = []
    start, m, n = 0, index, size
    # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k; PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k.
    # The recursion runs top-down but the proof lists the deepest sibling first: collect, then reverse.
    while n > 1:
        k = _largest_power_of_two_below(n)
        if m < k:
            out.append((start + k, start + n))
            n = k
        else:
            out.append((start, start + k))
            start, m, n = start + k, m - k, n - k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes make the consistency proof from ``old_size`` to ``new_size``: PROOF(m, D[n]) =
    SUBPROOF(m, D[n], true) of RFC 9162 2.1.4.1. Empty when m == 0 or m == n."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    out: list[Range] = []
    start, m, n, b = 0, old_size, new_size, True
    while m != n:
        k = _largest_power_of_two_below(n)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            out.append((start + k, start + n))
            n = k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            out.append((start, start + k))
            start, m, n, b = start + k, m - k, n - k, False
    if not b:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        out.append((start, start + n))
    out.reverse()
    return out


class NodeSource(Protocol):
    def get_nodes(self, ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]:
        """The hashes of these perfect subtrees (a missing one raises KeyError)."""
        ...


Source = NodeSource | Sequence[bytes]


def _as_source(source: Source) -> NodeSource:
    if hasattr(source, "get_nodes"):
        return source  # type: ignore[return-value]
    return MemoryTree(source)  # type: ignore[arg-type]


def ranges_hashes(ranges: Sequence[Range], source: Source) -> list[bytes]:
    """MTH of each range, from the perfect-subtree hashes of ``source`` fetched in one call."""
    src = _as_source(source)
    plans = [range_nodes(a, b) for a, b in ranges]
    got = src.get_nodes({nid for plan in plans for nid in plan})
    try:
        return [fold([got[nid] for nid in plan]) for plan in plans]
    except KeyError as e:
        raise KeyError(f"node {e.args[0]} (level, index) is not stored") from None


def inclusion_proof(index: int, size: int, source: Source) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves. ``source`` is a node
    store (``get_nodes``) or simply the list of leaf hashes."""
    return ranges_hashes(inclusion_ranges(index, size), source)


def consistency_proof(old_size: int, new_size: int, source: Source) -> list[bytes]:
    """The consistency proof between the trees of the first ``old_size`` and ``new_size`` leaves."""
    return ranges_hashes(consistency_ranges(old_size, new_size), source)


def root_at(size: int, source: Source) -> bytes:
    """MTH of the first ``size`` leaves of a stored tree, from its perfect subtrees."""
    if size == 0:
        return EMPTY_ROOT
    return ranges_hashes([(0, size)], source)[0]


# --- verification: RFC 9162 2.1.3.2 and 2.1.4.2 ----------------------------------------------------------


def _ok_hash(h: object) -> bool:
    return isinstance(h, (bytes, bytearray)) and len(h) == HASH_SIZE


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """Steps 1-4 of RFC 9162 2.1.3.2: the root the proof leads to, or None where the proof fails on the way."""
    if not (0 <= index < size) or not _ok_hash(leaf) or not all(_ok_hash(p) for p in proof):
        return None  # 1. leaf_index >= tree_size fails
    fn, sn = index, size - 1  # 2.
    r = bytes(leaf)  # 3.
    for p in proof:  # 4.
        if sn == 0:  # a.
            return None
        if fn & 1 or fn == sn:  # b.
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # c.
        sn >>= 1
    if sn != 0:  # 5. (the root comparison is the caller's)
        return None
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` show the leaf hash ``leaf`` at ``index`` in the tree of ``size`` leaves
    whose root is ``root_hash``?"""
    r = root_from_inclusion_proof(leaf, index, size, proof)
    return r is not None and _ok_hash(root_hash) and r == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: does ``proof`` show the tree of ``new_size`` leaves (``new_root``) extends the tree of
    ``old_size`` leaves (``old_root``)?"""
    if not (_ok_hash(old_root) and _ok_hash(new_root)) or not all(_ok_hash(p) for p in proof):
        return False
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof  # the empty tree is a prefix of every tree
    path = list(proof)
    if not path:  # 1.
        return False
    if old_size & (old_size - 1) == 0:  # 2. first is an exact power of 2
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1  # 3.
    while fn & 1:  # 4.
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # 5.
    for c in path[1:]:  # 6.
        if sn == 0:  # a.
            return False
        if fn & 1 or fn == sn:  # b.
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # c.
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0  # 7.


# --- an in-memory tree (verification, tests, benchmarks) --------------------------------------------------


class MemoryTree:
    """An append-only tree in memory that keeps every perfect subtree hash, level by level (one bytearray per
    level), so it answers ``get_nodes`` (and so any proof for any earlier size) without rehashing.
    1M leaves: ~2M hashes, 64 MB."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[bytearray] = [bytearray()]
        self._cr = CompactRange()
        self.extend(leaf_hashes)

    def _store(self, level: int, index: int, h: bytes) -> None:
        if level == len(self.levels):
            self.levels.append(bytearray())
        self.levels[level] += h  # perfect subtrees of a level complete in index order

    def append(self, h: bytes) -> int:
        if len(h) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = self._cr.size
        self.levels[0] += h
        self._cr.append(bytes(h), self._store)
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        return self._cr.size

    def leaf(self, index: int) -> bytes:
        return self.get_nodes([(0, index)])[(0, index)]

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self.size:
            return self._cr.root()
        if not 0 <= size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {size}")
        return root_at(size, self)

    def get_nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        out = {}
        for level, index in ids:
            if not 0 <= level < len(self.levels) or not 0 <= index < len(self.levels[level]) // HASH_SIZE:
                raise KeyError((level, index))  # not complete yet
            out[(level, index)] = bytes(self.levels[level][index * HASH_SIZE:(index + 1) * HASH_SIZE])
        return out

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self.size if new_size is None else new_size, self)
