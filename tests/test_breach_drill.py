"""The breach drill (issue 8): a full copy of the database, without the keys, gives an attacker nothing usable.

- After a realistic workload through the real HTTP service (≥ 200 proofings of real faces from the shared set
  against specimen passports, evidence signed and stored, binds over HTTP and in batches, "my numbers",
  lookups, disputes, operator events, transfers, unbinds, audit reads, sealed templates) the drill finds zero
  usable items, on SQLite (the file, and a copy taken while the service runs, WAL included) and on
  PostgreSQL (read live, and from pg_dump's plain SQL in COPY and INSERT form), knowing every person's name,
  birth date, document and the photo on their document.
- Positive controls: each planted leak (a JPEG, a deleted JPEG still in the file, a float32 / float16 /
  JSON face vector, an MRZ line, a name, a birth date, a document number, a handle under a guessable key,
  a personal-data column) makes the drill exit 1 and name the place. Without them, finding nothing proves nothing.
- What is seen but not usable stays exit 0: sealed templates (ciphertext under a person-held secret) and the
  evidence input hashes an exact uploaded file can confirm (counted as usable with --strict).

The faces are expensive: specimens are rendered once per session and each (document, selfie) pair is verified
once by the real Verifier (``CachingVerifier``); the second database replays the same decisions.
"""

from __future__ import annotations

import base64
import dataclasses
import glob
import hashlib
import hmac
import io
import json
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import FACES
from PIL import Image
from typer.testing import CliRunner

from idproof.breach import Known, load_snapshot, run_drill, summarize
from idproof.breach.cli import app as drill_app
from idproof.breach.cli import render
from idproof.breach.workload import (
    CachingVerifier,
    known_data,
    make_people,
    plan_people,
    run_workload,
)
from idproof.evidence import EvidenceKey
from idproof.registry.handles import DocumentIdentity, RegistryKey

# a random key per session: nothing the drill could guess (its guesses include every key in this repository)
KEY = RegistryKey(secrets.token_bytes(32))
N_PEOPLE = 180  # + impostors: ≥ 200 proofings
IMPOSTORS = 40


def pg_dump_bin() -> str | None:
    found = shutil.which("pg_dump")
    if found:
        return found
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return cands[-1] if cands else None


# --- session inputs: people, their specimen passports, the one Verifier --------------------------------------


@pytest.fixture(scope="session")
def breach_plans():
    return plan_people(FACES, N_PEOPLE)


@pytest.fixture(scope="session")
def breach_people(breach_plans, tmp_path_factory):
    t = time.perf_counter()
    people = make_people(breach_plans, tmp_path_factory.mktemp("breach-docs"))
    print(f"\nbreach workload: {len(people)} specimen passports rendered in {time.perf_counter() - t:.1f} s")
    assert len(people) >= 170
    return people


@pytest.fixture(scope="session")
def breach_verifier() -> CachingVerifier:
    from idproof.api import Verifier

    return CachingVerifier(Verifier(registry_key=KEY))


@pytest.fixture(scope="session")
def breach_known(breach_people, tmp_path_factory) -> tuple[Known, Path]:
    known = known_data(breach_people)
    path = tmp_path_factory.mktemp("breach-known") / "known.json"
    path.write_text(json.dumps(known.to_dict()))
    return known, path


def cli(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(drill_app, [*args, "--json"])
    assert result.exit_code in (0, 1), (result.exit_code, result.output[-2000:], result.exception)
    return result.exit_code, json.loads(result.stdout)


def explain(report: dict) -> str:
    lines = [f"{report['usable']} usable item(s) in {report['source']}"]
    for c in report["checks"]:
        for f in c["findings"]:
            if f["usable"]:
                lines.append(f"  {c['check']}: {f['where']}: {f['what']}")
    return "\n".join(lines[:40])


# --- the drill after the realistic workload, on both databases -------------------------------------------------


@pytest.mark.slow
def test_breach_drill_finds_nothing_after_realistic_workload(db_url, breach_people, breach_verifier, breach_known, tmp_path):
    known, known_path = breach_known
    stolen = tmp_path / "stolen"
    stolen.mkdir()

    def steal_while_running() -> None:  # SQLite: the file as a thief copies it off a running server, WAL and all
        if db_url.startswith("sqlite"):
            db = Path(db_url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                if Path(str(db) + suffix).exists():
                    shutil.copyfile(str(db) + suffix, stolen / f"live.sqlite3{suffix}")

    stats = run_workload(db_url, breach_people, registry_key=KEY, verifier_factory=lambda key, policy: breach_verifier,
                         evidence_key=EvidenceKey.generate(), impostors=IMPOSTORS, while_running=steal_while_running)
    print(f"\nworkload on {db_url.split(':')[0]}: {stats.line()}")
    assert stats.proofings >= 200 and stats.impostor_proofings >= 30
    assert stats.accepted >= 80 and stats.rejected >= 20, stats.line()
    assert stats.evidence_records == stats.proofings
    assert stats.binds >= 80 and stats.batch_binds >= 20 and stats.transfers >= 5 and stats.disputes >= 10
    assert stats.my_numbers_reads == stats.accepted and stats.lookups and stats.unbinds and stats.event_reads and stats.audit_reads
    assert stats.sealed_issued >= 3

    sources: list[list[str]] = [["--db", db_url]]
    if db_url.startswith("sqlite"):
        assert (stolen / "live.sqlite3").exists()
        sources.append(["--db", str(stolen / "live.sqlite3")])
    else:
        dump_bin = pg_dump_bin()
        if dump_bin is None:
            pytest.fail("pg_dump is not installed beside the PostgreSQL server (Debian: postgresql-client)")
        for form, extra in (("copy", []), ("inserts", ["--inserts"])):
            dump = tmp_path / f"dump-{form}.sql"
            subprocess.run([dump_bin, "--format=plain", "--no-owner", *extra, "--file", str(dump), db_url], check=True, timeout=120)
            sources.append(["--pg-dump", str(dump)])
    # the API on the database itself, with the human report in the log
    t = time.perf_counter()
    first = run_drill(load_snapshot(db=db_url), known, verifier=breach_verifier.real)
    out = io.StringIO()
    render(first, file=out)
    print(f"drill --db {db_url.split(':')[0]}: {time.perf_counter() - t:.1f} s\n{out.getvalue()}")
    assert first.usable == 0, summarize(first)
    # the CLI on every copy the thief could hold: exit 0
    for src in sources:
        t = time.perf_counter()
        code, report = cli(*src, "--known", str(known_path))
        print(f"drill {' '.join(src)}: exit {code}, {report['usable']} usable, {time.perf_counter() - t:.1f} s; {report['scope']}")
        assert report["usable"] == 0, explain(report)
        assert code == 0
        checks = {c["check"]: c for c in report["checks"]}
        # the drill really read the workload: every evidence record, every victim, the phone numbers
        records = int(re.match(r"(\d+) signed evidence record", checks["evidence"]["tried"]).group(1))
        assert records >= stats.proofings + stats.reauths, checks["evidence"]["tried"]
        assert f"{len(known.victims)} victims" in checks["personal_data"]["tried"]
        assert f"{len(known.victims)} documents" in checks["handles"]["tried"]
        assert any("distinct phone number(s)" in n and "bindings.number" in n for n in checks["phone_numbers"]["notes"])
        # the victims whose exact selfie file the attacker holds: confirmable through evidence, by design, not usable
        confirmed = [f for f in checks["evidence"]["findings"] if "exact file" in f["what"]]
        assert confirmed and not any(f["usable"] for f in confirmed)
        assert report["rows"] > 1000


# --- positive controls ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def control_people(breach_plans, tmp_path_factory):
    return make_people(breach_plans[:12], tmp_path_factory.mktemp("control-docs"))


@pytest.fixture(scope="module")
def control_db(control_people, breach_verifier, tmp_path_factory) -> Path:
    """A small realistic database (12 people through the real service) to plant leaks in."""
    path = tmp_path_factory.mktemp("control-db") / "idproof.sqlite3"
    run_workload(f"sqlite:///{path}", control_people, registry_key=KEY, verifier_factory=lambda key, policy: breach_verifier,
                 evidence_key=EvidenceKey.generate(), impostors=2)
    return path


@pytest.fixture(scope="module")
def victim_template(control_people, breach_verifier):
    """The attacker's victim (the first person) and their face template from the photo on their document."""
    p = control_people[0]
    sample = breach_verifier.real.engine.analyze(np.asarray(Image.open(p.plan.portrait).convert("RGB")), "selfie")
    assert sample.template is not None
    return p, sample.template.vectors["arcface_fp"].astype(np.float32)


def jpeg_of(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _insert_event(conn: sqlite3.Connection, details: dict) -> None:
    op = conn.execute("SELECT id FROM operators WHERE role = 'operator' LIMIT 1").fetchone()[0]
    conn.execute("INSERT INTO operator_events (at, operator_id, kind, number, details) VALUES (?, ?, 'dispute', ?, ?)",
                 (datetime.now(UTC).isoformat(), op, "+447700900999", json.dumps(details)))


def _fmt_dmy(d: date) -> str:
    return f"{d.day:02d}.{d.month:02d}.{d.year}"


def _plant(name: str, conn: sqlite3.Connection, person, vector: np.ndarray) -> None:
    pl = person.plan
    if name == "jpeg_blob":
        conn.execute("CREATE TABLE uploads (id INTEGER PRIMARY KEY, data BLOB)")
        conn.execute("INSERT INTO uploads (data) VALUES (?)", (jpeg_of(pl.portrait),))
    elif name == "jpeg_base64_in_json":
        _insert_event(conn, {"attachment": base64.b64encode(jpeg_of(pl.selfie)).decode()})
    elif name == "png_hex_text":
        buf = io.BytesIO()
        Image.open(pl.portrait).convert("RGB").resize((96, 96)).save(buf, "PNG")
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES (?)", (buf.getvalue().hex(),))
    elif name == "deleted_jpeg":
        conn.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, data BLOB)")
        conn.execute("INSERT INTO scratch (data) VALUES (?)", (jpeg_of(pl.portrait),))
        conn.commit()
        conn.execute("DELETE FROM scratch")
    elif name == "float32_vector":
        conn.execute("CREATE TABLE face_cache (k TEXT PRIMARY KEY, v BLOB)")
        conn.execute("INSERT INTO face_cache VALUES (?, ?)", ("last", vector.astype("<f4").tobytes()))
    elif name == "float16_base64_text":
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES (?)", (base64.b64encode(vector.astype("<f2").tobytes()).decode(),))
    elif name == "json_vector":
        conn.execute("INSERT INTO audit_log (at, action, actor, details) VALUES (?, 'bind', 'x', ?)",
                     (datetime.now(UTC).isoformat(), json.dumps({"emb": [round(float(x), 6) for x in vector]})))
    elif name == "mrz_line":
        _insert_event(conn, {"reason": f"my passport says {person.mrz_lines[1]}"})
    elif name == "mrz_name_line":
        _insert_event(conn, {"reason": person.mrz_lines[0]})
    elif name == "known_name":
        _insert_event(conn, {"reason": f"This line is registered to {pl.given_names.title()} {pl.surname.title()}"})
    elif name == "birth_date":
        _insert_event(conn, {"reason": f"born {_fmt_dmy(pl.birth_date)}"})
    elif name == "document_number":
        _insert_event(conn, {"reason": f"passport {pl.document_number.lower()}"})
    elif name == "handle_weak_key":
        ident = DocumentIdentity(pl.issuing_state, "P", pl.document_number)
        conn.execute("INSERT INTO identities (handle) VALUES (?)", (hmac.new(b"changeme", ident.canonical(), hashlib.sha256).hexdigest(),))
    elif name == "handle_public_test_key":
        ident = DocumentIdentity(pl.issuing_state, "P", pl.document_number)
        conn.execute("INSERT INTO identities (handle) VALUES (?)", (RegistryKey(b"idproof-service-tests-registry-key!!").handle(ident),))
    elif name == "handle_plain_sha256":
        conn.execute("INSERT INTO identities (handle) VALUES (?)", (hashlib.sha256(f"{pl.issuing_state}P{pl.document_number}".encode()).hexdigest(),))
    elif name == "name_column":
        conn.execute("ALTER TABLE operators ADD COLUMN contact_name TEXT")
        conn.execute("UPDATE operators SET contact_name = 'Jane Roe'")
    elif name == "birthdate_column":
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, joined TEXT)")
        conn.executemany("INSERT INTO customers (joined) VALUES (?)", [(f"1961-03-0{k}",) for k in range(1, 6)])
    else:  # pragma: no cover
        raise AssertionError(name)


# (leak, check that must report it usable, text its place must contain)
CONTROLS = [
    ("jpeg_blob", "images", "uploads.data"),
    ("jpeg_blob", "faces", "uploads.data"),
    ("jpeg_base64_in_json", "images", "operator_events.details"),
    ("png_hex_text", "images", "notes.body"),
    ("deleted_jpeg", "images", "@0x"),
    ("float32_vector", "vectors", "face_cache.v"),
    ("float32_vector", "faces", "face_cache.v"),
    ("float16_base64_text", "vectors", "notes.body"),
    ("json_vector", "vectors", "audit_log.details"),
    ("mrz_line", "mrz", "operator_events.details"),
    ("mrz_name_line", "mrz", "operator_events.details"),
    ("known_name", "personal_data", "operator_events.details"),
    ("birth_date", "personal_data", "operator_events.details"),
    ("document_number", "personal_data", "operator_events.details"),
    ("handle_weak_key", "handles", "identities.handle"),
    ("handle_public_test_key", "handles", "identities.handle"),
    ("handle_plain_sha256", "handles", "identities.handle"),
    ("name_column", "schema", "operators.contact_name"),
    ("birthdate_column", "schema", "customers.joined"),
]


@pytest.mark.parametrize(("leak", "check", "place"), CONTROLS, ids=[f"{a}-{b}" for a, b, _ in CONTROLS])
def test_positive_control_is_found_and_named(leak, check, place, control_db, control_people, victim_template, breach_verifier, tmp_path):
    person, vector = victim_template
    db = tmp_path / "idproof.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        if Path(str(control_db) + suffix).exists():
            shutil.copyfile(str(control_db) + suffix, str(db) + suffix)
    conn = sqlite3.connect(db)
    try:
        _plant(leak, conn, person, vector)
        conn.commit()
        # read while the writer is still connected: its WAL is part of what a thief copies
        known = known_data(control_people)
        report = run_drill(load_snapshot(db=f"sqlite:///{db}"), known, verifier=breach_verifier.real)
    finally:
        conn.close()
    assert report.exit_code == 1, summarize(report)
    found = [f for f in report.check(check).findings if f.usable]
    assert any(place in f.where for f in found), (check, place, [f"{f.where}: {f.what}" for f in report.usable_findings()][:20])
    if check in ("faces", "personal_data", "handles"):
        assert any(f"victim {person.id}" in f.what for f in found), [f.what for f in found]
    # known values are never printed: a finding names the victim and masks the value
    text = json.dumps(report.to_dict())
    assert person.plan.surname not in text and person.plan.document_number not in text


def test_control_database_alone_is_clean(control_db, control_people, breach_verifier):
    report = run_drill(load_snapshot(db=str(control_db)), known_data(control_people), verifier=breach_verifier.real)
    assert report.exit_code == 0, summarize(report)


def test_seen_but_not_usable(control_db, control_people, breach_verifier, tmp_path):
    """A sealed template is ciphertext under the person's 144-bit secret; an evidence input hash confirms only
    the exact uploaded file. Both are reported, neither is usable (--strict counts the second)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from idproof.sealed import SealedTemplates

    db = tmp_path / "idproof.sqlite3"
    shutil.copyfile(control_db, db)
    p = control_people[0]
    cached = breach_verifier.cached(p.document, p.plan.selfie)
    assert cached is not None and cached.subject_handle
    sample = breach_verifier.real.engine.analyze(np.asarray(Image.open(p.plan.selfie).convert("RGB")), "selfie")
    sealed, _code = SealedTemplates(f"sqlite:///{db}", Ed25519PrivateKey.generate(), breach_verifier.real).enroll(cached.subject_handle, sample)
    with sqlite3.connect(db) as conn:
        _insert_event(conn, {"note": sealed})  # someone pasted the person's sealed template into a ticket
    # the attacker also holds the exact selfie file this person uploaded
    known = Known(tuple(v if v.id != p.id else dataclasses.replace(v, files=(p.plan.selfie,))
                        for v in known_data(control_people).victims))
    report = run_drill(load_snapshot(db=str(db)), known, verifier=breach_verifier.real)
    assert report.exit_code == 0, summarize(report)
    sealed_f = report.check("sealed").findings
    assert sealed_f and all(not f.usable for f in sealed_f) and "AES-256-GCM" in sealed_f[0].what
    assert "operator_events.details" in sealed_f[0].where
    confirm = [f for f in report.check("evidence").findings if "exact file" in f.what]
    assert confirm and not any(f.usable for f in confirm)
    strict = run_drill(load_snapshot(db=str(db)), known, verifier=breach_verifier.real, strict=True)
    assert strict.exit_code == 1 and strict.check("evidence").usable >= 1


# --- both databases, the dump parser, the CLI -------------------------------------------------------------------------


def test_planted_binary_leaks_found_on_both_databases(db_url, tmp_path, victim_template):
    """bytea / BLOB columns read live and through pg_dump (COPY and INSERT form): a JPEG and a float32 vector."""
    from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, Text, insert

    from idproof.registry.rules import Registry

    person, vector = victim_template
    reg = Registry(db_url)  # the real schema, migrated
    md = MetaData()
    leak = Table("leak", md, Column("id", Integer, primary_key=True), Column("photo", LargeBinary), Column("note", Text))
    md.create_all(reg.engine)
    with reg.engine.begin() as conn:
        conn.execute(insert(leak).values(id=1, photo=jpeg_of(person.plan.portrait), note="it's a 'quoted'\ttab\\slash"))
        conn.execute(insert(leak).values(id=2, photo=vector.astype("<f4").tobytes(), note=None))
    reg.close()
    sources = [["--db", db_url]]
    if db_url.startswith("postgresql"):
        dump_bin = pg_dump_bin()
        assert dump_bin, "pg_dump is not installed"
        for form, extra in (("copy", []), ("inserts", ["--inserts"])):
            dump = tmp_path / f"{form}.sql"
            subprocess.run([dump_bin, "--format=plain", *extra, "--file", str(dump), db_url], check=True, timeout=60)
            sources.append(["--pg-dump", str(dump)])
    for src in sources:
        code, report = cli(*src)
        assert code == 1, report
        checks = {c["check"]: c for c in report["checks"]}
        images = [f["where"] for f in checks["images"]["findings"] if f["usable"]]
        vectors = [f["where"] for f in checks["vectors"]["findings"] if f["usable"]]
        assert any(w.startswith("leak.photo [id=1") for w in images), (src, images)
        assert any(w.startswith("leak.photo [id=2") for w in vectors), (src, vectors)
        if src[0] == "--pg-dump":
            snap = load_snapshot(pg_dump=src[1])
            assert snap.tables["leak"].rows[0][2] == "it's a 'quoted'\ttab\\slash"  # escapes undone in both forms


def test_cli_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(drill_app, []).exit_code == 2
    assert runner.invoke(drill_app, ["--db", "x.sqlite3", "--pg-dump", "y.sql"]).exit_code == 2
    r = runner.invoke(drill_app, ["--db", str(tmp_path / "missing.sqlite3")])
    assert r.exit_code == 2 and "fix:" in r.output
    (tmp_path / "not.sqlite3").write_bytes(b"hello")
    assert runner.invoke(drill_app, ["--db", str(tmp_path / "not.sqlite3")]).exit_code == 2
    (tmp_path / "custom.dump").write_bytes(b"PGDMP\x01\x0e")
    r = runner.invoke(drill_app, ["--pg-dump", str(tmp_path / "custom.dump")])
    assert r.exit_code == 2 and "pg_restore" in r.output
    db = tmp_path / "ok.sqlite3"
    sqlite3.connect(db).close()
    (tmp_path / "bad.json").write_text("[]")
    assert runner.invoke(drill_app, ["--db", str(db), "--known", str(tmp_path / "bad.json")]).exit_code == 2
    (tmp_path / "bad.toml").write_text("= = =")
    assert runner.invoke(drill_app, ["--db", str(db), "--config", str(tmp_path / "bad.toml")]).exit_code == 2


def test_config_values_are_tried_as_keys(tmp_path):
    """A config that carries the registry key inline (instead of file:/env:/kms:) gives every handle away."""
    from idproof.registry.rules import Registry

    secret = secrets.token_bytes(32)
    key = RegistryKey(secret)
    db = tmp_path / "r.sqlite3"
    Registry(f"sqlite:///{db}").close()
    handle = key.handle(DocumentIdentity("UTO", "P", "L898902C3"))
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO identities (handle) VALUES (?)", (handle,))
    known = tmp_path / "known.json"
    known.write_text(json.dumps({"victims": [{"id": "v1", "document_number": "L898902C3", "issuing_state": "UTO"}]}))
    safe = tmp_path / "safe.toml"
    safe.write_text('registry_key = "file:/etc/idproof/registry.key"\ndb_url = "sqlite:///r.sqlite3"\n')
    leaky = tmp_path / "leaky.json"
    leaky.write_text(json.dumps({"registry_key": base64.b64encode(secret).decode(), "cap": 5}))
    code, report = cli("--db", str(db), "--known", str(known), "--config", str(safe))
    assert code == 0, explain(report)
    code, report = cli("--db", str(db), "--known", str(known), "--config", str(leaky))
    assert code == 1
    found = [f for c in report["checks"] if c["check"] == "handles" for f in c["findings"] if f["usable"]]
    assert found and "identities.handle" in found[0]["where"] and "config registry_key (base64-decoded)" in found[0]["what"]


def test_human_report(control_db, tmp_path):
    out = io.StringIO()
    render(run_drill(load_snapshot(db=str(control_db))), file=out)
    text = out.getvalue()
    assert "PASS: nothing usable found." in text and "Phone numbers (by design, not identity data)" in text
    assert "bindings.number" in text and "identity handle (HMAC-SHA256 under the registry key)" in text
