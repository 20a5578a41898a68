"""The `idproof` command and the decision store, on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from conftest import FACES
from idproof.cli import app
from idproof.storage import Store

OBAMA = FACES / "face_recognition/obama/obama.jpg"
OBAMA2 = FACES / "face_recognition/obama/obama2.jpg"
BIDEN = FACES / "face_recognition/biden/biden.jpg"
runner = CliRunner()


def test_verify_json_records_decision_without_biometrics(tmp_path, obama_passport):
    db = tmp_path / "idproof.sqlite3"
    url = f"sqlite:///{db}"
    r = runner.invoke(app, ["verify", "--document", str(obama_passport), "--selfie", str(OBAMA2), "--json", "--db", url])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["outcome"] == "accept" and out["reasons"] == ["match:match"]
    assert out["match"]["target_fmr"] > 0 and out["record_id"]

    r = runner.invoke(app, ["verify", "--document", str(obama_passport), "--selfie", str(BIDEN), "--db", url])
    assert r.exit_code == 1
    assert "REJECT" in r.output and "below_threshold" in r.output

    store = Store(url)
    assert store.count_decisions() == 2
    row = store.get_decision(out["record_id"])
    assert row.outcome == "accept" and row.threshold == out["match"]["threshold"]

    # Nothing image-like, template-like or file-name-like is in the database file.
    raw = db.read_bytes()
    for magic in (b"\xff\xd8\xff", b"\x89PNG"):
        assert magic not in raw
    with sqlite3.connect(db) as conn:
        cols = {c[1] for c in conn.execute("PRAGMA table_info(proofing_decisions)")}
        dumped = "\n".join(conn.iterdump())
    assert not cols & {"image", "template", "embedding", "name", "document_number"}
    assert "obama" not in dumped.lower()
    # ...nor the document's personal data (the specimen holder's name, number, date of birth)
    for text in ("ERIKSSON", "L898902C3", "740812", "P<UTO"):
        assert text not in dumped


def test_verify_unreadable_input_exits_nonzero_with_fix(tmp_path):
    bad = tmp_path / "selfie.jpg"
    bad.write_bytes(b"")
    r = runner.invoke(app, ["verify", "--document", str(OBAMA), "--face-only", "--selfie", str(bad), "--no-store"])
    assert r.exit_code == 1
    assert "RETRY" in r.output and "selfie:bad_image" in r.output and "empty" in r.output.lower()


def test_store_migrations_are_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    Store(url)
    assert Store(url).count_decisions() == 0
    with sqlite3.connect(tmp_path / "x.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_models_verify_lists_every_pinned_file():
    r = runner.invoke(app, ["models", "verify"])
    assert r.exit_code == 0, r.output
    for name in ("retinaface_mobilenet", "arcface_fp", "dlib_resnet", "dlib_shape5", "mediapipe_face_landmarker"):
        assert name in r.output
