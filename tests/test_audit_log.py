"""The audit log (idproof.audit) on SQLite and PostgreSQL (``db_url``): appends in the caller's transaction,
signed tree heads and proofs from stored nodes, a person's entries, payload purge, and tamper detection by
``verify_log`` and ``idproof audit verify`` with the position named."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from typer.testing import CliRunner

from idproof.audit import (
    AuditEntry,
    AuditIntegrityError,
    MerkleLog,
    SignedTreeHead,
    TreeHeadSigner,
    audit_leaves,
    audit_nodes,
    verify_log,
)
from idproof.audit.audit_cli import app as audit_app
from idproof.audit.log import canonical_json, leaf_data
from idproof.audit.merkle import (
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from idproof.audit.sth import load_public_key
from idproof.storage.store import make_engine


def handle(i: int) -> str:
    return f"{i:064x}"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer() -> TreeHeadSigner:
    return TreeHeadSigner.generate()


@pytest.fixture
def log(db_url, signer, clock):
    engine = make_engine(db_url)
    mlog = MerkleLog(engine, signer, clock=clock)
    mlog.create_tables()
    yield mlog
    engine.dispose()


def fill(log: MerkleLog, n: int, *, start: int = 0, batch: int = 25) -> None:
    """n leaves, handles cycling over 5 people, a payload on every other leaf."""
    for k in range(start, start + n, batch):
        evs = [("registry.bind" if i % 3 else "proofing.decision", handle(i % 5) if i % 7 else None,
                {"operator": "op-1", "i": i} if i % 2 == 0 else None) for i in range(k, min(start + n, k + batch))]
        with log.engine.begin() as conn:
            log.append_many(conn, evs)


def export(log: MerkleLog, tmp_path: Path, name: str = "export.jsonl") -> Path:
    path = tmp_path / name
    log.export(path)
    return path


def rewrite_export(path: Path, fn) -> None:
    """Apply ``fn`` to each record of an export (return None to drop it)."""
    out = []
    for line in path.read_text().splitlines():
        rec = fn(json.loads(line))
        if rec is not None:
            out.append(json.dumps(rec))
    path.write_text("\n".join(out) + "\n")


def cli_verify(export_path: Path, signer: TreeHeadSigner, tmp_path: Path, *extra: str):
    pub = tmp_path / "sth-key.pub"
    pub.write_bytes(signer.public_pem())
    return CliRunner().invoke(audit_app, ["verify", str(export_path), "--public-key", str(pub), *extra])


# --- appending -------------------------------------------------------------------------------------------

def test_append_commits_or_rolls_back_with_the_callers_transaction(log):
    things = Table("things", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(20)))
    things.create(log.engine)
    with log.engine.begin() as conn:
        conn.execute(insert(things).values(id=1, name="kept"))
        assert log.append(conn, "registry.bind", handle(1), {"number_ref": "r1"}) == 0
        assert log.append(conn, "registry.lookup", handle(1)) == 1
    with pytest.raises(RuntimeError), log.engine.begin() as conn:
        conn.execute(insert(things).values(id=2, name="gone"))
        assert log.append(conn, "registry.bind", handle(2)) == 2
        assert log.append_many(conn, [("registry.lookup", handle(2))] * 5) == [3, 4, 5, 6, 7]
        raise RuntimeError("the registry change failed")
    with log.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(things)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(audit_leaves)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(audit_nodes)).scalar() == 1  # node (1, 0) only
    assert log.size() == 2
    with log.engine.begin() as conn:  # the rolled-back seqs are reused: no hole
        assert log.append(conn, "registry.unbind", handle(1)) == 2
    head = log.sign_tree_head()
    assert head.size == 3 and head.root == MemoryTree(e.leaf_hash for e in log.entries()).root()


def test_stored_tree_matches_an_independent_rebuild(log):
    import random

    rnd = random.Random(7)
    pos = 0
    while pos < 300:  # appends in uneven batches, across transactions
        n = rnd.randint(1, 40)
        fill(log, n, start=pos, batch=n)
        pos += n
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(pos))
    assert all(e.computed_leaf_hash() == e.leaf_hash for e in entries)
    mem = MemoryTree(e.leaf_hash for e in entries)
    for size in [0, 1, 2, 3, 64, 127, 128, 129, 255, 299, 300]:
        assert log.root(size) == mem.root(size)
    with log.engine.connect() as conn:  # every perfect subtree stored once, equal to the rebuild's
        rows = conn.execute(select(audit_nodes.c.level, audit_nodes.c.idx, audit_nodes.c.hash)).all()
    assert len(rows) == sum(pos >> lvl for lvl in range(1, 10))
    assert all(bytes(hh) == mem.get_nodes([(lvl, idx)])[(lvl, idx)] for lvl, idx, hh in rows)
    for seq, size in [(0, 300), (150, 300), (299, 300), (37, 200), (199, 200)]:
        assert list(log.inclusion_proof(seq, size).path) == mem.inclusion_proof(seq, size)
    for m, n in [(1, 300), (150, 300), (299, 300), (64, 128), (100, 101), (300, 300)]:
        assert list(log.consistency_proof(m, n).path) == mem.consistency_proof(m, n)


def test_leaf_format_is_the_canonical_json_and_commits_to_the_payload(log, clock):
    with log.engine.begin() as conn:
        log.append(conn, "template.unseal", handle(9), {"b": [1, 2.5, "é"], "a": {"z": None, "y": True}})
        log.append(conn, "registry.lookup", None, None)
    e0, e1 = log.entries()
    want = canonical_json({"v": 1, "seq": 0, "time": "2026-01-01T12:00:00.123456Z", "event": "template.unseal",
                           "handle": handle(9), "payload_sha256": e0.payload_hash.hex()})
    assert e0.leaf_data() == want == leaf_data(0, clock.now, "template.unseal", handle(9), e0.payload_hash)
    assert e0.leaf_hash == leaf_hash(want)
    assert e0.payload_hash == __import__("hashlib").sha256(b'{"a":{"y":true,"z":null},"b":[1,2.5,"\xc3\xa9"]}').digest()
    assert e0.time == clock.now and e0.payload == {"a": {"y": True, "z": None}, "b": [1, 2.5, "é"]}
    assert e1.leaf_data() == b'{"event":"registry.lookup","handle":null,"payload_sha256":null,"seq":1,' \
                             b'"time":"2026-01-01T12:00:00.123456Z","v":1}'
    assert e1.leaf_hash == e1.computed_leaf_hash()


@pytest.mark.parametrize(("event", "hnd", "payload"), [
    ("registry.bind", "Jane Doe", None),  # a name is not a handle
    ("registry.bind", handle(0xABCDEF).upper(), None),  # handles are lowercase hex
    ("registry.bind", handle(1)[:-1], None),
    ("Registry Bind", handle(1), None),
    ("registry.bind", handle(1), {"x": float("nan")}),
    ("registry.bind", handle(1), ["not", "an", "object"]),
])
def test_leaves_refuse_what_is_not_an_event_a_handle_or_plain_json(log, event, hnd, payload):
    with pytest.raises((ValueError, TypeError)), log.engine.begin() as conn:
        log.append(conn, event, hnd, payload)
    assert log.size() == 0


def test_concurrent_appends_get_distinct_seqs_and_one_tree(log):
    errors = []

    def worker(w: int) -> None:
        try:
            for i in range(15):
                with log.engine.begin() as conn:
                    log.append(conn, "registry.lookup", handle(w), {"i": i})
        except SQLAlchemyError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(60))
    assert log.sign_tree_head().root == MemoryTree(e.computed_leaf_hash() for e in entries).root()


# --- tree heads and proofs --------------------------------------------------------------------------------

def test_signed_tree_heads_inclusion_and_consistency(log, signer, clock):
    fill(log, 10)
    h10 = log.sign_tree_head()
    assert log.sign_tree_head() == h10  # nothing new: the same head
    fill(log, 90, start=10)
    clock.advance(minutes=1)
    h100 = log.sign_tree_head()
    assert (h10.size, h100.size) == (10, 100)
    assert h10.verify(signer.public_key) and h100.verify(signer.public_pem())
    assert not h100.verify(TreeHeadSigner.generate().public_key)
    assert log.tree_heads() == [h10, h100] and log.latest_tree_head() == h100 and log.tree_head(10) == h10
    c = log.consistency_proof(10)
    assert c.new_size == 100 and c.verify(h10.root, h100.root)
    assert verify_consistency(10, 100, h10.root, h100.root, list(c.path))
    for seq in (0, 9, 57, 99):
        p = log.inclusion_proof(seq)
        assert p.tree_size == 100 and p.verify(h100.root)
        assert p.leaf_hash == log.entry(seq).leaf_hash
    assert log.inclusion_proof(3, 10).verify(h10.root)
    with pytest.raises(ValueError):
        log.inclusion_proof(100)


def test_no_tree_head_is_signed_over_a_changed_log(log):
    fill(log, 40)
    log.sign_tree_head()
    with log.engine.begin() as conn:  # the subtree of leaves 0-31 rewritten
        conn.execute(text("UPDATE audit_nodes SET hash = :h WHERE level = 5 AND idx = 0"), {"h": b"\x01" * 32})
        log.append(conn, "registry.lookup", handle(1))
    with pytest.raises(AuditIntegrityError, match="not consistent with signed tree head 40"):
        log.sign_tree_head()
    with log.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_leaves WHERE seq >= 38"))
    with pytest.raises(AuditIntegrityError, match="leaves were removed"):
        log.sign_tree_head()


def test_entries_for_handle_are_that_persons_only_with_valid_proofs(log):
    fill(log, 120)
    head = log.sign_tree_head()
    mine = log.entries_for_handle(handle(3))
    assert mine and all(e.handle == handle(3) for e, _ in mine)
    want = [e.seq for e in log.entries() if e.handle == handle(3)]
    assert [e.seq for e, _ in mine] == want
    for e, proof in mine:
        assert proof.tree_size == head.size and proof.seq == e.seq
        assert proof.leaf_hash == e.computed_leaf_hash()
        assert verify_inclusion(e.computed_leaf_hash(), e.seq, head.size, list(proof.path), head.root)
    fill(log, 30, start=120)  # leaves after the head are not served against it
    assert [e.seq for e, _ in log.entries_for_handle(handle(3))] == want
    assert log.entries_for_handle(handle(99)) == []
    with pytest.raises(ValueError):
        log.entries_for_handle("someone@example.org")


def test_payload_purge_keeps_verification_green(log, signer, clock, tmp_path):
    fill(log, 30)
    clock.advance(days=400)
    fill(log, 30, start=30)
    head = log.sign_tree_head()
    purged = log.purge_payloads(before=clock.now - timedelta(days=365))
    assert purged == 15  # the even leaves of the first 30
    assert log.purge_payloads(before=clock.now - timedelta(days=365)) == 0
    old, new = log.entry(4), log.entry(34)
    assert old.payload is None and old.payload_hash is not None and old.purged
    assert new.payload == {"operator": "op-1", "i": 34}
    assert old.computed_leaf_hash() == old.leaf_hash
    assert log.inclusion_proof(4).verify(head.root)
    report = verify_log(export(log, tmp_path), signer.public_key)
    assert report.ok, report.lines()
    assert report.purged_payloads == 15 and report.leaves == 60 and report.verified_size == 60
    assert cli_verify(tmp_path / "export.jsonl", signer, tmp_path).exit_code == 0


# --- end-to-end verification and tampering ------------------------------------------------------------------

@pytest.fixture
def signed_log(log, clock):
    """100 leaves with signed tree heads at 64 and 100."""
    fill(log, 64)
    log.sign_tree_head()
    fill(log, 36, start=64)
    clock.advance(minutes=5)
    log.sign_tree_head()
    return log


def test_an_untouched_log_verifies(signed_log, signer, tmp_path):
    path = export(signed_log, tmp_path)
    report = verify_log(path, signer.public_key)
    assert report.ok, report.lines()
    assert (report.leaves, report.tree_heads, report.verified_size) == (100, 2, 100)
    assert report.verified_root == signed_log.latest_tree_head().root
    res = cli_verify(path, signer, tmp_path)
    assert res.exit_code == 0, res.output
    assert "audit log OK: 100 leaves" in res.output
    res = cli_verify(path, signer, tmp_path, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"] is True


def test_one_leaf_changed_is_named(signed_log, signer, tmp_path):
    with signed_log.engine.begin() as conn:
        conn.execute(text("UPDATE audit_leaves SET handle = :h WHERE seq = 57"), {"h": handle(4)})
    path = export(signed_log, tmp_path)
    report = verify_log(path, signer.public_key)
    assert not report.ok
    assert [(p.kind, p.position) for p in report.problems] == [("leaf_content", 57)]
    assert report.problems[0].message == "leaf 57: content does not match its hash"
    res = cli_verify(path, signer, tmp_path)
    assert res.exit_code == 1
    assert "leaf 57: content does not match its hash" in res.output


def test_a_changed_payload_is_named(signed_log, signer, tmp_path):
    path = export(signed_log, tmp_path)

    def edit(rec):
        if rec.get("leaf", {}).get("seq") == 42:
            rec["leaf"]["payload"]["operator"] = "op-2"
        return rec

    rewrite_export(path, edit)
    report = verify_log(path, signer.public_key)
    assert [(p.kind, p.position, p.message) for p in report.problems] == [
        ("payload", 42, "leaf 42: payload does not match its hash")]


def test_a_leaf_rewritten_with_a_fitting_hash_is_narrowed_by_the_tree_heads(signed_log, signer, tmp_path):
    path = export(signed_log, tmp_path)

    def forge(rec):
        if rec.get("leaf", {}).get("seq") == 70:
            e = AuditEntry.from_json(rec["leaf"])
            e = AuditEntry(e.seq, e.time, "registry.unbind", e.handle, e.payload, e.payload_hash, b"")
            rec["leaf"] = {**e.to_json(), "leaf_hash": e.computed_leaf_hash().hex()}
        return rec

    rewrite_export(path, forge)
    report = verify_log(path, signer.public_key)
    assert [(p.kind, p.position) for p in report.problems] == [("root", 100)]
    assert "leaves 0–63 match tree head 64, so the change lies in leaves 64–99" in report.problems[0].message
    assert report.verified_size == 64


def test_one_leaf_dropped_is_named(signed_log, signer, tmp_path):
    with signed_log.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_leaves WHERE seq = 57"))
    path = export(signed_log, tmp_path)
    report = verify_log(path, signer.public_key)
    assert [(p.kind, p.position) for p in report.problems] == [("leaf_missing", 57)]
    assert report.problems[0].message == "leaf 57 missing (sequence jumps 56 → 58)"
    res = cli_verify(path, signer, tmp_path)
    assert res.exit_code == 1 and "leaf 57 missing (sequence jumps 56 → 58)" in res.output


def test_leaves_cut_off_the_end_are_named(signed_log, signer, tmp_path):
    with signed_log.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_leaves WHERE seq >= 98"))
    report = verify_log(export(signed_log, tmp_path), signer.public_key)
    assert [(p.kind, p.position) for p in report.problems] == [("truncated", 98)]
    assert report.problems[0].message == ("tree head size 100 covers leaves 98–99, which the log does not have "
                                          "(its last leaf is 97): leaves 98–99 missing")


def test_a_forked_tree_head_is_named(signed_log, signer, tmp_path):
    # the log's key signs a second, different root for size 64 (shown to someone else): they keep it
    real = signed_log.tree_head(64)
    forked = signer.sign(64, bytes(31) + b"\x01", real.timestamp)
    kept = tmp_path / "kept-head.json"
    kept.write_text(json.dumps(forked.to_json()))
    path = export(signed_log, tmp_path)
    report = verify_log(path, signer.public_key, [SignedTreeHead.from_json(json.loads(kept.read_text()))])
    kinds = [(p.kind, p.position) for p in report.problems]
    assert ("fork", 64) in kinds
    fork = next(p for p in report.problems if p.kind == "fork")
    assert fork.message.startswith("tree head size 64 signed twice with different roots (fork)")
    assert ("root", 64) in kinds  # and the forked root is the one the leaves do not reproduce
    res = cli_verify(path, signer, tmp_path, "--tree-head", str(kept))
    assert res.exit_code == 1 and "tree head size 64 signed twice with different roots (fork)" in res.output
    # a forked head inside the export itself is found the same way
    with path.open("a") as f:
        f.write(json.dumps({"tree_head": forked.to_json()}) + "\n")
    assert ("fork", 64) in [(p.kind, p.position) for p in verify_log(path, signer.public_key).problems]


def test_a_rewritten_history_is_inconsistent_with_an_earlier_head(db_url, signer, clock, tmp_path, signed_log):
    # someone kept the head of size 50 of the original log; the operator then rewrote leaf 10 and re-signed
    kept = signer.sign(50, signed_log.root(50), clock.now)
    with signed_log.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_tree_heads"))
        conn.execute(text("DELETE FROM audit_nodes"))
        conn.execute(text("DELETE FROM audit_leaves"))
    fill(signed_log, 10)
    with signed_log.engine.begin() as conn:
        signed_log.append(conn, "registry.bind", handle(1), {"rewritten": True})
    fill(signed_log, 89, start=11)
    signed_log.sign_tree_head()
    path = export(signed_log, tmp_path)
    report = verify_log(path, signer.public_key, [kept])
    kinds = [(p.kind, p.position) for p in report.problems]
    assert ("inconsistent", 100) in kinds and ("root", 50) in kinds
    assert "tree head 100 not consistent with 50" in report.lines()
    kept_file = tmp_path / "kept.jsonl"
    kept_file.write_text(json.dumps({"tree_head": kept.to_json()}) + "\n")
    res = cli_verify(path, signer, tmp_path, "--tree-head", str(kept_file))
    assert res.exit_code == 1 and "tree head 100 not consistent with 50" in res.output


def test_a_tree_head_with_a_bad_signature_is_named(signed_log, signer, tmp_path):
    path = export(signed_log, tmp_path)

    def bump(rec):
        if "tree_head" in rec and rec["tree_head"]["size"] == 64:
            rec["tree_head"]["timestamp"] = "2030-01-01T00:00:00.000000Z"
        return rec

    rewrite_export(path, bump)
    report = verify_log(path, signer.public_key)
    assert [(p.kind, p.position, p.message) for p in report.problems] == [
        ("signature", 64, "tree head size 64: signature does not verify")]
    other = TreeHeadSigner.generate()
    report = verify_log(path, other.public_key)
    assert {p.kind for p in report.problems} == {"signature", "no_tree_head"}
    assert f"signed by key {signer.key_id}, not {other.key_id}" in report.problems[-2].message


def test_cli_export_signs_and_verifies(log, db_url, tmp_path):
    fill(log, 20)
    key = tmp_path / "sth.pem"
    res = CliRunner().invoke(audit_app, ["keygen", "--out", str(key)])
    assert res.exit_code == 0, res.output
    assert (key.stat().st_mode & 0o777) == 0o600
    out = tmp_path / "cli-export.jsonl"
    res = CliRunner().invoke(audit_app, ["export", "--db", db_url, "--out", str(out), "--sign-key", str(key)])
    assert res.exit_code == 0, res.output
    assert "20 leaves, 1 signed tree head" in res.output
    res = CliRunner().invoke(audit_app, ["verify", str(out), "--public-key", f"{key}.pub"])
    assert res.exit_code == 0, res.output
    assert load_public_key(Path(f"{key}.pub")) is not None


# --- signed tree heads (no database) ---------------------------------------------------------------------------

def test_signed_tree_head_json_round_trip_and_tamper(tmp_path):
    s = TreeHeadSigner.generate()
    head = s.sign(1000, bytes(range(32)), datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC))
    assert head.message() == (b"idproof-audit/v1\n1000\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                              b"2026-03-04T05:06:07.890123Z\n")
    again = SignedTreeHead.from_json(json.loads(json.dumps(head.to_json())))
    assert again == head and again.verify(s.public_key)
    from dataclasses import replace

    assert not replace(head, size=1001).verify(s.public_key)
    assert not replace(head, root=bytes(32)).verify(s.public_key)
    assert not replace(head, timestamp=head.timestamp + timedelta(microseconds=1)).verify(s.public_key)
    assert not replace(head, signature=bytes(64)).verify(s.public_key)
    for bad in ({}, {**head.to_json(), "root": "00"}, {**head.to_json(), "size": -1}, {**head.to_json(), "signature": "!"}):
        with pytest.raises(ValueError):
            SignedTreeHead.from_json(bad)


def test_tree_head_key_files(tmp_path):
    key = tmp_path / "keys" / "sth.pem"
    s = TreeHeadSigner.load_or_generate(key)
    assert (key.stat().st_mode & 0o777) == 0o600 and Path(f"{key}.pub").is_file()
    assert TreeHeadSigner.load_or_generate(key).key_id == s.key_id == TreeHeadSigner.load(key).key_id
    with pytest.raises(FileExistsError):
        s.save(key)  # never overwrites a key
    head = s.sign(0, __import__("hashlib").sha256(b"").digest())
    for pub in (Path(f"{key}.pub"), str(Path(f"{key}.pub")), s.public_pem(), s.public_pem().decode(), s.public_key):
        assert head.verify(pub)


def test_verify_log_takes_records_as_objects(signed_log, signer):
    records = [*signed_log.tree_heads(), *signed_log.entries()]
    assert verify_log(records, signer.public_key).ok
    entries = list(signed_log.entries())
    swapped = [*signed_log.tree_heads(), *entries[:10], entries[11], entries[10], *entries[12:]]
    report = verify_log(swapped, signer.public_key)
    assert [(p.kind, p.position) for p in report.problems][:2] == [("leaf_missing", 10), ("leaf_order", 10)]


def test_event_names_with_every_allowed_character(log):
    with log.engine.begin() as conn:
        log.append(conn, "a0_b.c:d-e", handle(0xABC), {"k": "\"quoted\" \\ \u2028"})
    (e,) = log.entries()
    assert e.computed_leaf_hash() == e.leaf_hash and e.payload_ok()


def test_cli_export_refuses_a_database_without_the_audit_tables(tmp_path):
    res = CliRunner().invoke(audit_app, ["export", "--db", f"sqlite:///{tmp_path / 'empty.sqlite3'}",
                                         "--out", str(tmp_path / "x.jsonl")])
    assert res.exit_code == 2 and "run the migrations first" in res.output
