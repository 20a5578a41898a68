"""Nothing biometric at rest: full proofings (service and CLI: accept, reject, retry, with signed evidence)
with the data directory, the temporary directory and every log line captured, then scanned for image bytes
(raw, base64, hex), the face templates' float vectors and the document's MRZ, name, number and birth date."""

from __future__ import annotations

import base64
import logging
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FACES, read_rgb
from test_service import Service, make_service, people  # noqa: F401 - the `people` fixture is used below
from typer.testing import CliRunner

from idproof.document.specimen import SpecimenFields, compose_mrz

FR = FACES / "face_recognition"
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"RIFF", b"II*\x00", b"MM\x00*", b"\x00\x00\x00\x0cjP  ")
_MAGIC_TEXT = ("/9j/", "iVBORw0KGgo", "ffd8ffe0", "ffd8ffe1", "89504e470d0a1a0a")


def _b64(run: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(run + "=" * (-len(run) % 4))
    except ValueError:
        return b""


def _vectors(*images: Path) -> list[np.ndarray]:
    from idproof.face.compare import DEFAULT_PROFILE
    from idproof.face.engine import FaceEngine

    engine = FaceEngine(DEFAULT_PROFILE)
    out = []
    for p in images:
        s = engine.analyze(read_rgb(p), "selfie")
        assert s.template is not None, p
        out += [np.asarray(v) for v in s.template.vectors.values()]
    return out


def _personal(spec_fields: list[SpecimenFields]) -> list[str]:
    needles: list[str] = []
    for f in spec_fields:
        mrz = compose_mrz(f, "TD3")
        needles += [*mrz, f.document_number, f.primary_identifier, *f.secondary_identifier.split()]
        needles += [chunk for line in mrz for chunk in line.split("<") if len(chunk) >= 6]
        d = f.date_of_birth
        needles += [d.isoformat(), d.strftime("%d.%m.%Y")]
    return needles


@pytest.fixture
def captured(tmp_path, monkeypatch, caplog):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # every temporary file anyone makes lands here
    log_file = tmp_path / "service.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)  # every logger, SQL statements with their parameters included
    try:
        yield {"tmp": tmp, "log": log_file, "caplog": caplog}
    finally:
        root.removeHandler(handler)
        handler.close()


def test_full_proofings_leave_no_image_template_or_mrz_anywhere(tmp_path, captured, people):  # noqa: F811
    from idproof.cli import app
    from idproof.evidence import EvidenceKey

    a, b = people["a"], people["b"]
    client, data = make_service(tmp_path, evidence_key=EvidenceKey.generate())
    with client:
        svc = Service(client, data)
        op = svc.operator("tel-scan")
        outcomes = [svc.prove(op, a["doc"], a["selfie"])["outcome"], svc.prove(op, a["doc"], b["selfie"])["outcome"],
                    svc.prove(op, b["doc"], a["doc"][: len(a["doc"]) // 2])["outcome"]]  # a truncated "selfie"
    assert outcomes == ["accept", "reject", "retry"]

    # the CLI path: decision recorded in its database, signed evidence written beside it
    doc = tmp_path / "doc.png"
    doc.write_bytes(a["doc"])
    key = data / "evidence.key"
    runner = CliRunner()
    assert runner.invoke(app, ["evidence", "keygen", str(key)]).exit_code == 0
    r = runner.invoke(app, ["verify", "--document", str(doc), "--selfie", str(FR / "obama/obama2.jpg"),
                            "--db", f"sqlite:///{data / 'cli.sqlite3'}", "--evidence-out", str(data / "d.jws"),
                            "--evidence-key", str(key)])
    assert r.exit_code == 0, r.output
    doc.unlink()  # the input itself is the caller's; everything else under tmp_path is idproof's

    # what is there to find
    uploads = [a["doc"], a["selfie"], b["doc"], b["selfie"]]
    vectors = _vectors(FR / "obama/obama2.jpg", FR / "biden/biden2.jpg", FR / "obama/obama.jpg")
    personal = _personal([a["spec"].fields, b["spec"].fields])
    blobs = {str(f.relative_to(tmp_path)): f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()}
    logged = "\n".join(f"{rec.name} {rec.getMessage()} {rec.args!r} {rec.exc_text or ''}" for rec in captured["caplog"].records)
    blobs["<log records>"] = logged.encode()
    assert any(name.endswith(".sqlite3") for name in blobs) and len(logged) > 1000  # the scan does see the stores and logs

    assert _scan(blobs, uploads, vectors, personal) == []
    # positive controls: the scan finds each kind of leak it looks for, raw or encoded
    planted = {"jpeg": uploads[1][len(uploads[1]) // 2 - 8:len(uploads[1]) // 2 + 300], "vector": vectors[0].astype(np.float32).tobytes(),
               "mrz": base64.urlsafe_b64encode(("x" * 7 + personal[0] + "y" * 40).encode())}
    for kind, leak in planted.items():
        assert _scan({f"planted-{kind}": b"\x00" * 99 + leak}, uploads, vectors, personal), kind


def _scan(blobs: dict[str, bytes], uploads, vectors, personal) -> list[str]:
    problems: list[str] = []
    for name, blob in blobs.items():
        if name.endswith(".key") or name.endswith(".key.pub"):
            continue
        text = blob.decode("latin-1")
        # base64 runs (signed evidence, tokens) are scanned decoded, not as text, where a name could turn up by chance
        runs = re.findall(r"[A-Za-z0-9_\-]{40,}", text)
        decoded = " ".join(_b64(r).decode("latin-1") for r in runs)
        lowered = re.sub(r"[A-Za-z0-9_\-]{40,}", "#", text)
        lowered = re.sub(r"[0-9a-f-]{32,}", "#", (lowered + " " + decoded).lower())  # random hex could hold a date by chance
        problems += [f"{name}: image signature {m!r}" for m in _MAGIC if m in blob]
        problems += [f"{name}: encoded image signature {m!r}" for m in _MAGIC_TEXT if m in text]
        for u in uploads:
            for i in (len(u) // 5, len(u) // 2, 4 * len(u) // 5):
                chunk = u[i:i + 48]
                if chunk in blob or base64.b64encode(chunk)[:40].decode() in text or chunk.hex() in text:
                    problems.append(f"{name}: uploaded image bytes")
        for v in vectors:
            for dtype in (np.float32, np.float64, np.float16):
                if v[:6].astype(dtype).tobytes() in blob:
                    problems.append(f"{name}: a face template ({dtype.__name__})")
            if f"{float(v[0]):.5f}, {float(v[1]):.5f}"[:12] in text:
                problems.append(f"{name}: a face template as text")
        problems += [f"{name}: personal data {n!r}" for n in personal if n.lower() in lowered]
    return problems
