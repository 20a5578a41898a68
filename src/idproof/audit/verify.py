"""Check a copy of the audit log end to end, trusting nothing in it but the tree-head key.

``verify_log`` reads an export (``MerkleLog.export``: JSON lines of a header, signed tree heads and leaves) or
the same records as objects, plus any tree heads collected elsewhere (a person's, a witness's), and checks:

1. the sequence: leaves 0, 1, 2, ... with none missing, repeated or out of order;
2. every leaf: its payload (where not purged) matches ``payload_sha256``, and its fields hash to ``leaf_hash``;
3. every tree head's Ed25519 signature, with the given public key;
4. forks: two validly signed heads of one size with different roots;
5. every head's root against the tree rebuilt from the leaf hashes (a head beyond the last leaf means leaves
   were cut off the end);
6. consistency between successive heads (RFC 9162 2.1.4.2 on a proof built from the rebuilt tree): a head
   whose root matches the leaves is consistent with an earlier head only if that head is a prefix of it.

Every problem names its position: a leaf's seq or a tree head's size. Where the leaves' own hashes were
rewritten to fit changed content, no leaf can be named (nothing trusted records the old hash): the report
then narrows the change to the leaves between the last matching tree head and the first one that does not.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from idproof.audit.log import AuditEntry
from idproof.audit.merkle import MemoryTree, verify_consistency
from idproof.audit.sth import PublicKeyLike, SignedTreeHead, key_id_of, load_public_key

Record = dict[str, Any] | AuditEntry | SignedTreeHead


@dataclass(frozen=True)
class Problem:
    kind: str  # format | leaf_order | leaf_missing | payload | leaf_content | signature | fork | root | truncated | inconsistent | no_tree_head
    position: int  # a leaf's seq, a tree head's size, or (format) a line number
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class AuditReport:
    leaves: int = 0
    tree_heads: int = 0  # validly signed, distinct
    purged_payloads: int = 0
    verified_size: int | None = None  # the largest signed size whose root the leaves reproduce
    verified_root: bytes | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    suppressed: Counter = field(default_factory=Counter)  # problems beyond the per-kind limit, by kind

    @property
    def ok(self) -> bool:
        return not self.problems

    def positions(self, kind: str | None = None) -> list[int]:
        return [p.position for p in self.problems if kind is None or p.kind == kind]

    def lines(self) -> list[str]:
        out = [p.message for p in self.problems]
        out += [f"... and {n} more {kind} problem(s)" for kind, n in sorted(self.suppressed.items())]
        return out

    def summary(self) -> str:
        head = (f"tree head {self.verified_size} root {self.verified_root.hex()}" if self.verified_root is not None
                else "no tree head verified")
        state = "OK" if self.ok else f"FAILED ({len(self.problems) + sum(self.suppressed.values())} problem(s))"
        return (f"audit log {state}: {self.leaves} leaves ({self.purged_payloads} payloads purged), "
                f"{self.tree_heads} signed tree head(s); {head}")

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "leaves": self.leaves, "tree_heads": self.tree_heads,
                "purged_payloads": self.purged_payloads, "verified_size": self.verified_size,
                "verified_root": self.verified_root.hex() if self.verified_root is not None else None,
                "problems": [{"kind": p.kind, "position": p.position, "message": p.message} for p in self.problems],
                "suppressed": dict(self.suppressed), "notes": self.notes}


def _span(a: int, b: int) -> str:
    return f"leaf {a}" if a == b else f"leaves {a}–{b}"


def read_export(path: str | Path) -> Iterator[Record]:
    """The records of an export file, each a dict; a line that is not JSON comes as ``{"_bad_line": n}``."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            yield rec if isinstance(rec, dict) else {"_bad_line": n}


def read_tree_heads(path: str | Path) -> list[SignedTreeHead]:
    """Signed tree heads from a file: one JSON object, a JSON list, or JSON lines (``{"tree_head": ..}`` or bare)."""
    text = Path(path).read_text(encoding="utf-8").strip()
    try:
        objs = json.loads(text)
        objs = objs if isinstance(objs, list) else [objs]
    except ValueError:
        objs = [json.loads(line) for line in text.splitlines() if line.strip()]
    out = []
    for o in objs:
        if isinstance(o, dict) and "format" in o:
            continue  # an export's header: its heads are still read
        if isinstance(o, dict) and "leaf" in o:
            continue
        out.append(SignedTreeHead.from_json(o.get("tree_head", o)))
    return out


def verify_log(source: str | Path | Iterable[Record], public_key: PublicKeyLike,
               tree_heads: Iterable[SignedTreeHead] = (), *, max_per_kind: int = 20) -> AuditReport:
    """Verify a log copy end to end (see the module docstring). ``source`` is an export file's path or its
    records (dicts as in the file, ``AuditEntry`` and ``SignedTreeHead`` objects); ``tree_heads`` adds heads
    obtained elsewhere. The report lists every problem with its position; ``report.ok`` when there is none."""
    key = load_public_key(public_key)
    key_id = key_id_of(key)
    report = AuditReport()
    kinds: Counter = Counter()

    def problem(kind: str, position: int, message: str) -> None:
        kinds[kind] += 1
        if kinds[kind] > max_per_kind:
            report.suppressed[kind] += 1
        else:
            report.problems.append(Problem(kind, position, message))

    records = read_export(source) if isinstance(source, (str, Path)) else source
    heads: list[SignedTreeHead] = list(tree_heads)
    tree = MemoryTree()
    expected = 0  # the next seq
    gap_at: int | None = None  # the first missing seq: no root can be rebuilt beyond it

    for n, rec in enumerate(records, start=1):
        if isinstance(rec, SignedTreeHead):
            heads.append(rec)
            continue
        if isinstance(rec, dict):
            if "_bad_line" in rec:
                problem("format", rec["_bad_line"], f"line {rec['_bad_line']}: not a JSON record")
                continue
            if "format" in rec:
                continue
            if "tree_head" in rec:
                try:
                    heads.append(SignedTreeHead.from_json(rec["tree_head"]))
                except ValueError as e:
                    problem("format", n, f"record {n}: {e}")
                continue
            if "leaf" not in rec:
                problem("format", n, f"record {n}: neither a leaf nor a tree head")
                continue
            try:
                entry = AuditEntry.from_json(rec["leaf"])
            except ValueError as e:
                seq = rec["leaf"].get("seq") if isinstance(rec["leaf"], dict) else None
                where = f"leaf {seq}" if isinstance(seq, int) else f"record {n}"
                problem("format", seq if isinstance(seq, int) else n, f"{where}: {e}")
                if isinstance(seq, int) and seq >= expected:
                    gap_at = expected if gap_at is None else gap_at
                    expected = seq + 1
                continue
        else:
            entry = rec
        seq = entry.seq
        if seq < expected:
            problem("leaf_order", seq, f"leaf {seq} out of order or repeated (after leaf {expected - 1})")
            continue
        if seq > expected:
            after = f"sequence jumps {expected - 1} → {seq}" if expected else f"sequence starts at {seq}"
            problem("leaf_missing", expected, f"{_span(expected, seq - 1)} missing ({after})")
            if gap_at is None:
                gap_at = expected
        expected = seq + 1
        report.leaves += 1
        if entry.purged:
            report.purged_payloads += 1
        if not entry.payload_ok():
            problem("payload", seq, f"leaf {seq}: payload does not match its hash")
        if entry.computed_leaf_hash() != entry.leaf_hash:
            problem("leaf_content", seq, f"leaf {seq}: content does not match its hash")
        if gap_at is None:
            # the tree is rebuilt from the stored leaf hashes; a leaf whose content no longer matches its hash was
            # named above, and the heads below still tell whether the hashes themselves are what was signed
            tree.append(entry.leaf_hash)

    end = expected  # one past the last seq seen
    complete = tree.size  # leaves 0..complete-1 are all present

    # 3. signatures
    valid: list[SignedTreeHead] = []
    for h in sorted(heads, key=lambda h: h.size):
        if h.verify(key):
            valid.append(h)
        else:
            why = f"signed by key {h.key_id}, not {key_id}" if h.key_id != key_id else "signature does not verify"
            problem("signature", h.size, f"tree head size {h.size}: {why}")

    # 4. forks
    roots_by_size: dict[int, list[bytes]] = defaultdict(list)
    for h in valid:
        if h.root not in roots_by_size[h.size]:
            roots_by_size[h.size].append(h.root)
    for size, roots in sorted(roots_by_size.items()):
        if len(roots) > 1:
            problem("fork", size, f"tree head size {size} signed twice with different roots (fork): "
                                  + " and ".join(r.hex()[:16] + "…" for r in roots))
    distinct = sorted({(h.size, h.root) for h in valid})
    report.tree_heads = len(distinct)
    if not distinct and report.leaves:
        problem("no_tree_head", 0, "no validly signed tree head: nothing anchors these leaves")

    # 5. roots against the leaves
    matches: dict[tuple[int, bytes], bool | None] = {}
    good_sizes: list[int] = []  # ascending
    for size, root in distinct:
        if size > end:
            matches[(size, root)] = None
            last = f"its last leaf is {end - 1}" if end else "it has no leaves"
            problem("truncated", end, f"tree head size {size} covers {_span(end, size - 1)}, which the log does not "
                                      f"have ({last}): {_span(end, size - 1)} missing")
            continue
        if size > complete:
            matches[(size, root)] = None
            report.notes.append(f"tree head size {size} not checked against the leaves: leaf {complete} is missing")
            continue
        ok = tree.root(size) == root
        matches[(size, root)] = ok
        if ok:
            report.verified_size, report.verified_root = size, root
            if not good_sizes or good_sizes[-1] != size:
                good_sizes.append(size)
            continue
        below = max((g for g in good_sizes if g < size), default=0)
        where = (f"leaves 0–{below - 1} match tree head {below}, so the change lies in {_span(below, size - 1)}"
                 if below else f"the change lies in {_span(0, size - 1)}")
        which = f" (root {root.hex()[:16]}…)" if len(roots_by_size[size]) > 1 else ""
        problem("root", size, f"tree head size {size}{which}: root does not match the log's leaves; {where}")

    # 6. consistency between heads of successive sizes: each head the leaves reproduce against every head of
    # the next smaller size (RFC 9162 2.1.4.2 on a proof from the rebuilt tree)
    sizes = sorted(roots_by_size)
    for m, n in pairwise(sizes):
        for new_root in roots_by_size[n]:
            if matches.get((n, new_root)) is not True:
                continue  # a head the leaves do not reproduce cannot anchor a proof (reported above)
            proof = tree.consistency_proof(m, n)
            for old_root in roots_by_size[m]:
                if not verify_consistency(m, n, old_root, new_root, proof):
                    problem("inconsistent", n, f"tree head {n} not consistent with {m}")

    if distinct and report.verified_size is not None and report.verified_size < end and complete == end:
        report.notes.append(f"{_span(report.verified_size, end - 1)} not yet covered by a signed tree head")
    return report
