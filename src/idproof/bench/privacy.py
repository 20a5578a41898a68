"""``idproof bench privacy``: what the privacy machinery costs.

* sealed templates: seal / unseal per second (crypto only: HKDF, AES-256-GCM, Ed25519), on a real face
  template, beside the peer a naive design would use: AES-GCM of the raw float32 vector alone (no key
  derivation, no handle binding, no issuer signature). Sealed-string length in characters.
* signed evidence: sign / verify per second of a real decision's record (Ed25519 JWS).
* the Merkle audit log: appends per second in batches and one per transaction, beside the peer the registry
  had before it: the plain append-only ``audit_log`` row insert, in the same database; proof sizes at 1M leaves.

Figures are medians over repeats on this machine; compare figures of one run only.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GOAL_APPEND_PER_S = 10_000


def _rate(fn: Callable[[], Any], seconds: float, repeats: int) -> float:
    """Median calls per second of ``fn`` over ``repeats`` runs of about ``seconds`` each."""
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds and n >= 3:
                break
        rates.append(n / dt)
    return statistics.median(rates)


def _face_template(face: Path):
    from idproof.face.compare import DEFAULT_PROFILE
    from idproof.face.engine import FaceEngine
    from idproof.imageio import load_image

    sample = FaceEngine(DEFAULT_PROFILE).analyze(load_image(face), "selfie")
    if sample.template is None:
        raise ValueError(f"no usable face in {face}")
    return sample.template


def sealed_figures(face: Path, seconds: float, repeats: int) -> dict[str, Any]:
    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from idproof.sealed.template import new_recovery_code, parse_recovery_code, seal, unseal

    template = _face_template(face)
    key = Ed25519PrivateKey.generate()
    secret = parse_recovery_code(new_recovery_code())
    handle = secrets.token_hex(32)
    sealed = seal(template, secret, handle=handle, version=1, signing_key=key)
    pub = key.public_key()
    out: dict[str, Any] = {
        "sealed_chars": len(sealed),
        "seal_per_s": round(_rate(lambda: seal(template, secret, handle=handle, version=1, signing_key=key), seconds, repeats)),
        "unseal_per_s": round(_rate(lambda: unseal(sealed, secret, public_key=pub, expected_handle=handle), seconds, repeats)),
    }
    # peer: the raw float32 vectors under one AES-GCM key (what "encrypted templates" often means)
    raw = b"".join(np.asarray(v, dtype=np.float32).tobytes() for v in template.vectors.values())
    aes, nonce = AESGCM(AESGCM.generate_key(bit_length=256)), os.urandom(12)
    blob = aes.encrypt(nonce, raw, None)
    out["peer_raw_aesgcm"] = {
        "bytes": len(blob),
        "seal_per_s": round(_rate(lambda: aes.encrypt(os.urandom(12), raw, None), seconds, repeats)),
        "unseal_per_s": round(_rate(lambda: aes.decrypt(nonce, blob, None), seconds, repeats)),
    }
    out["seal_vs_peer"] = round(out["seal_per_s"] / out["peer_raw_aesgcm"]["seal_per_s"], 3)
    out["unseal_vs_peer"] = round(out["unseal_per_s"] / out["peer_raw_aesgcm"]["unseal_per_s"], 3)
    return out


def evidence_figures(face: Path, seconds: float, repeats: int) -> dict[str, Any]:
    from idproof.api import Verifier
    from idproof.evidence import EvidenceKey, from_decision, verify_evidence

    selfie = face.read_bytes()
    decision = Verifier(face_only=True).verify(selfie, selfie)
    key = EvidenceKey.generate()
    record = from_decision(decision, inputs={"selfie": selfie})
    token = key.sign(record)
    jwk = key.public_jwk()
    return {
        "jws_bytes": len(token),
        "sign_per_s": round(_rate(lambda: key.sign(record), seconds, repeats)),
        "verify_per_s": round(_rate(lambda: verify_evidence(token, jwk), seconds, repeats)),
    }


def audit_figures(leaves: int, batch: int, proof_leaves: int) -> dict[str, Any]:
    """The Merkle log's append rate and proof sizes (idproof.audit), and the plain audit-row peer."""
    from sqlalchemy import insert

    from idproof.audit.audit_cli import bench_figures
    from idproof.storage.models import AuditRecord
    from idproof.storage.store import make_engine, migrate

    out = bench_figures(leaves, batch, proof_leaves)
    # peer: the registry's plain append-only audit_log row (no hashing, no tree), same batches, same SQLite setup
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'peer.sqlite3'}")
        migrate(engine)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        for k in range(0, leaves, batch):
            rows = [{"at": now, "action": "lookup", "actor": "op-1", "number": None, "handle": f"{i % 1000:064x}",
                     "details": {"operator": "op-1", "i": i}} for i in range(k, min(leaves, k + batch))]
            with engine.begin() as conn:
                conn.execute(insert(AuditRecord), rows)
        dt = time.perf_counter() - t0
        engine.dispose()
    out["peer_plain_audit_row"] = {"leaves": leaves, "batch": batch, "rows_per_s": round(leaves / dt)}
    out["append_vs_peer"] = round(out["append"]["leaves_per_s"] / out["peer_plain_audit_row"]["rows_per_s"], 3)
    return out


def run(*, face: Path, json_out: bool = False, seconds: float = 1.0, repeats: int = 3, leaves: int = 100_000,
        batch: int = 1000, proof_leaves: int = 1_000_000, console=None) -> dict[str, Any]:
    if seconds <= 0 or repeats < 1 or leaves < batch or batch < 1 or proof_leaves < 2:
        raise ValueError("--seconds must be > 0, --repeats >= 1, --leaves >= --batch >= 1, --proof-leaves >= 2")
    started = time.time()
    result: dict[str, Any] = {
        "bench": "privacy",
        "data": {"face": str(face)},
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg())},
        "sealed_template": sealed_figures(face, seconds, repeats),
        "evidence": evidence_figures(face, seconds, repeats),
        "audit": audit_figures(leaves, batch, proof_leaves),
    }
    append = result["audit"]["append"]["leaves_per_s"]
    result["goals"] = {"audit_append_per_s_goal": GOAL_APPEND_PER_S, "audit_append_per_s": append,
                       "audit_append_met": append >= GOAL_APPEND_PER_S}
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    result["seconds"] = round(time.time() - started, 1)
    result["notes"] = [
        "Sealed template: seal = HKDF-SHA256 + AES-256-GCM + Ed25519 signature over a quantised (int8) face template "
        "bound to its handle; unseal = signature check + key derivation + decryption (no database, no face model). "
        "Peer: AES-GCM of the raw float32 vectors under one server key, which binds nothing and lets the server read every template.",
        "Audit append: Merkle leaves in transactions of `batch` leaves on a fresh SQLite file (WAL); also one leaf per "
        "transaction. Peer: the same rows as plain append-only audit_log inserts, no hashing and no tree.",
        "Proof sizes are at `proof_leaves` leaves: computed (ceil(log2 n) hashes of 32 bytes) and measured on an in-memory tree.",
        "2-core shared machine: compare figures of one run; repeat before trusting a difference of a few per cent.",
    ]
    if not json_out:
        print_human(result, console)
    return result


def print_human(r: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    s, e, a = r["sealed_template"], r["evidence"], r["audit"]
    t = Table(title="idproof bench privacy")
    t.add_column("figure")
    t.add_column("idproof", justify="right")
    t.add_column("peer", justify="right")
    t.add_column("idproof / peer", justify="right")
    p = s["peer_raw_aesgcm"]
    t.add_row("sealed template: seal/s", f"{s['seal_per_s']:,}", f"{p['seal_per_s']:,} (raw AES-GCM)", f"{s['seal_vs_peer']:.3f}x")
    t.add_row("sealed template: unseal/s", f"{s['unseal_per_s']:,}", f"{p['unseal_per_s']:,}", f"{s['unseal_vs_peer']:.3f}x")
    t.add_row("sealed template: size", f"{s['sealed_chars']:,} chars", f"{p['bytes']:,} bytes", "")
    t.add_row("evidence: sign/s, verify/s", f"{e['sign_per_s']:,} / {e['verify_per_s']:,}", "", "")
    t.add_row("evidence: JWS size", f"{e['jws_bytes']:,} bytes", "", "")
    t.add_row(f"audit append/s (batches of {a['append']['batch']})", f"{a['append']['leaves_per_s']:,}",
              f"{a['peer_plain_audit_row']['rows_per_s']:,} (plain row)", f"{a['append_vs_peer']:.3f}x")
    t.add_row("audit append/s (one per transaction)", f"{a['append_single']['leaves_per_s']:,}", "", "")
    pr = a["proofs"]
    t.add_row(f"inclusion proof at {pr['leaves']:,} leaves", f"{max(pr['measured_inclusion_bytes']):,} bytes", "", "")
    t.add_row(f"consistency proof at {pr['leaves']:,} leaves", f"{32 * max(pr['measured_consistency_hashes'].values()):,} bytes", "", "")
    console.print(t)
    g = r["goals"]
    console.print(f"goal: audit append >= {g['audit_append_per_s_goal']:,}/s: {'met' if g['audit_append_met'] else 'NOT met'} ({g['audit_append_per_s']:,}/s)")
    for n in r["notes"]:
        console.print(f"- {n}")


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(face=Path("../shared/data/faces/face_recognition/obama/obama.jpg"), json_out=True), indent=2))
