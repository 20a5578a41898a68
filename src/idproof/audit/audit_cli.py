"""``idproof audit``: export the audit log, verify a copy end to end, make the tree-head key, measure.

``verify`` trusts nothing in the copy but the public key it is given: exit 0 when every check passes, exit 1
with one line per problem, each naming its position (a leaf's seq or a tree head's size).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="The tamper-evident audit log: export it, verify a copy end to end.")


def _fail(text: str) -> None:
    typer.secho(f"error: {text}", fg="red", err=True)
    raise typer.Exit(2)


@app.command()
def verify(
    export: Annotated[Path, typer.Argument(help="The export (JSON lines) from `idproof audit export`.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The log's Ed25519 tree-head key (PEM).")],
    tree_head: Annotated[list[Path] | None, typer.Option(
        "--tree-head", help="More signed tree heads kept elsewhere (JSON or JSON lines; repeatable): a fork or a "
                            "rewritten history shows against them.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a copy of the audit log end to end: sequence, every leaf's hash, tree-head signatures, roots,
    forks and consistency. Exit 1 naming each problem's position."""
    from idproof.audit.sth import load_public_key
    from idproof.audit.verify import read_tree_heads, verify_log

    try:
        key = load_public_key(public_key)
        extra = [h for p in (tree_head or []) for h in read_tree_heads(p)]
    except (OSError, ValueError, TypeError) as exc:
        _fail(f"{exc}")
    if not export.is_file():
        _fail(f"no export at {export}")
    report = verify_log(export, key, extra)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for line in report.lines():
            typer.secho(line, fg="red", err=True)
        for note in report.notes:
            typer.echo(f"note: {note}")
        typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Write the export (JSON lines) here.")],
    db: Annotated[str | None, typer.Option("--db", envvar="IDPROOF_DB", help="Database URL (default: IDPROOF_DB, "
                                              "else the SQLite file in your user data directory).")] = None,
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", help="Sign a tree head over the current log first, with this Ed25519 key (PEM).")] = None,
) -> None:
    """Write the log's leaves and signed tree heads as JSON lines, for `idproof audit verify`."""
    from sqlalchemy import inspect

    from idproof.audit.log import MerkleLog
    from idproof.audit.sth import TreeHeadSigner
    from idproof.storage.store import default_url, make_engine

    try:
        signer = TreeHeadSigner.load(sign_key) if sign_key else None
    except (OSError, ValueError, TypeError) as exc:
        _fail(f"cannot load the tree-head key {sign_key}: {exc}")
    engine = make_engine(db or default_url())
    try:
        missing = {"audit_leaves", "audit_nodes", "audit_tree_heads"} - set(inspect(engine).get_table_names())
        if missing:
            _fail(f"no audit log in this database (missing {', '.join(sorted(missing))}): run the migrations first")
        log = MerkleLog(engine, signer)
        if signer is not None:
            head = log.sign_tree_head()
            typer.echo(f"signed tree head {head.size} root {head.root.hex()}")
        summary = log.export(out)
    finally:
        engine.dispose()
    typer.echo(f"wrote {out}: {summary.leaves} leaves, {summary.tree_heads} signed tree head(s)")


@app.command()
def keygen(out: Annotated[Path, typer.Option("--out", help="Private key file (PEM); the public key goes to <out>.pub.")]
           ) -> None:
    """Make the Ed25519 tree-head key (never overwrites one)."""
    from idproof.audit.sth import TreeHeadSigner

    if out.exists():
        _fail(f"{out} exists; not overwriting a key")
    signer = TreeHeadSigner.generate()
    signer.save(out)
    typer.echo(f"wrote {out} (keep it secret) and {out}.pub (give it to verifiers); key id {signer.key_id}")


def bench_figures(n: int = 100_000, batch: int = 1000, proof_leaves: int = 1_000_000, db: str | None = None) -> dict:
    """Append rate on a fresh SQLite file (or ``db``, whose audit tables must be empty), in transactions of
    ``batch`` leaves; then proof sizes at ``proof_leaves`` leaves, computed and measured on an in-memory tree."""
    from idproof.audit.log import MerkleLog, proof_size_bytes
    from idproof.audit.merkle import (
        MemoryTree,
        leaf_hash,
        verify_consistency,
        verify_inclusion,
    )
    from idproof.audit.sth import TreeHeadSigner, tree_head_message
    from idproof.storage.store import make_engine

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(db or f"sqlite:///{Path(tmp) / 'audit.sqlite3'}")
        log = MerkleLog(engine, TreeHeadSigner.generate())
        log.create_tables()
        handles = [f"{i:064x}" for i in range(1000)]
        t0 = time.perf_counter()
        for k in range(0, n, batch):
            evs = [("registry.lookup", handles[i % 1000], {"operator": "op-1", "i": i}) for i in range(k, min(n, k + batch))]
            with engine.begin() as conn:
                log.append_many(conn, evs)
        dt = time.perf_counter() - t0
        out["append"] = {"leaves": n, "batch": batch, "seconds": round(dt, 3), "leaves_per_s": round(n / dt),
                         "dialect": engine.dialect.name}
        t0 = time.perf_counter()
        single = 2000
        for i in range(single):
            with engine.begin() as conn:
                log.append(conn, "registry.lookup", handles[i % 1000], {"i": i})
        dt1 = time.perf_counter() - t0
        out["append_single"] = {"leaves": single, "leaves_per_s": round(single / dt1), "one_transaction_each": True}
        head = log.sign_tree_head()
        t0 = time.perf_counter()
        p = log.inclusion_proof(n // 3)
        c = log.consistency_proof(n // 3)
        out["db_proofs_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        assert p.verify(head.root) and c.verify(log.root(n // 3), head.root)
        engine.dispose()

    t0 = time.perf_counter()
    tree = MemoryTree(leaf_hash(i.to_bytes(8, "big")) for i in range(proof_leaves))
    build = time.perf_counter() - t0
    size = tree.size
    root = tree.root()
    incl = [len(tree.inclusion_proof(i)) for i in (0, size // 2, size - 1, 123_457 % size)]
    cons = [(m, len(tree.consistency_proof(m))) for m in (1, 3, size // 2, size - 1, 999, 2 ** 19 + 1) if 0 < m < size]
    assert verify_inclusion(tree.leaf(size - 1), size - 1, size, tree.inclusion_proof(size - 1), root)
    assert all(verify_consistency(m, size, tree.root(m), root, tree.consistency_proof(m)) for m, _ in cons)
    out["proofs"] = {"leaves": size, "memory_tree_build_s": round(build, 2),
                     "computed": proof_size_bytes(size),
                     "log2": round(math.log2(size), 3),
                     "measured_inclusion_hashes": incl, "measured_inclusion_bytes": [32 * k for k in incl],
                     "measured_consistency_hashes": {str(m): k for m, k in cons},
                     "sth_bytes": {"signed_message": len(tree_head_message(size, root, datetime.now(UTC))),
                                   "signature": 64}}
    return out


@app.command()
def bench(
    n: Annotated[int, typer.Option(help="Leaves to append.")] = 100_000,
    batch: Annotated[int, typer.Option(help="Leaves per transaction.")] = 1000,
    proof_leaves: Annotated[int, typer.Option(help="Tree size for the proof sizes.")] = 1_000_000,
    db: Annotated[str | None, typer.Option(help="An empty database instead of a temporary SQLite file.")] = None,
) -> None:
    """Audit append rate (goal >= 10,000 leaves/s) and proof sizes at 1M leaves, as JSON."""
    typer.echo(json.dumps(bench_figures(n, batch, proof_leaves, db), indent=2))
