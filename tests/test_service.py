"""The HTTP service end to end: real specimen documents, real faces, a real SQLite file, the real Verifier.

The person-facing flow of issue 5: prove → bind two numbers via two operators → "my numbers" shows both
→ dispute one → it is suspended and its operator sees an event → transfer the other to a second proven
person. Plus the refusals (401/403/404/409/413/415/422, all problem+json) and the privacy promises
(no image bytes on disk, no handles in any response, uploads never spooled to a temporary file).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from conftest import FACES, jpeg_bytes, read_rgb
from fastapi.testclient import TestClient
from PIL import Image

from idproof.document.chip_issue import TestPKI, issue_chip
from idproof.document.specimen import SpecimenFields, make_specimen
from idproof.registry.handles import RegistryKey
from idproof.service import Settings, create_app
from idproof.service.problems import PROBLEM_BASE
from idproof.service.sessions import SessionStore

KEY = RegistryKey(b"idproof-service-tests-registry-key!!")
FR = FACES / "face_recognition"
N1, N2, N3 = "+441632960001", "+441632960002", "+441632960003"

_verifier = None


def shared_verifier(key, policy):
    """One Verifier for the whole module (models load once), with the tests' registry key."""
    global _verifier
    if _verifier is None:
        from idproof.api import Verifier

        _verifier = Verifier(registry_key=KEY, document_policy=policy)
    return _verifier


# --- inputs: two specimen passports, two selfies, one chip ------------------------------------------------


def png(rgb, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def people():
    a = make_specimen(read_rgb(FR / "obama/obama.jpg"), kind="TD3", seed=1)
    b = make_specimen(
        read_rgb(FR / "biden/biden.jpg"),
        SpecimenFields(document_number="D23145890", primary_identifier="BIDEN", secondary_identifier="JOSEPH", sex="M"),
        kind="TD3", seed=2,
    )
    return {
        "a": {"doc": png(a.image), "doc_big": png(a.image, compress_level=0), "selfie": (FR / "obama/obama2.jpg").read_bytes(), "spec": a},
        "b": {"doc": png(b.image), "selfie": (FR / "biden/biden2.jpg").read_bytes(), "spec": b},
    }


@pytest.fixture(scope="module")
def pki():
    return TestPKI.generate()


@pytest.fixture(scope="module")
def csca_file(tmp_path_factory, pki) -> Path:
    p = tmp_path_factory.mktemp("csca") / "csca.pem"
    p.write_bytes(pki.csca_pem())
    return p


# --- the service -------------------------------------------------------------------------------------------


class Service:
    def __init__(self, client: TestClient, data_dir: Path):
        self.client, self.data_dir = client, data_dir
        self.registry = client.app.state.idproof.registry
        self.ids: dict[str, str] = {}

    def operator(self, name: str, role: str = "operator") -> dict[str, str]:
        principal, key = self.registry.add_operator(name, role)
        self.ids[name] = principal.operator_id
        return {"Authorization": f"Bearer {key}"}

    def open_session(self, h) -> str:
        r = self.client.post("/v1/proofings", headers=h)
        assert r.status_code == 201, r.text
        return r.json()["session_id"]

    def prove(self, h, doc: bytes, selfie: bytes, *, doc_type="image/png") -> dict:
        sid = self.open_session(h)
        r = self.client.put(f"/v1/proofings/{sid}/document", content=doc, headers=h | {"Content-Type": doc_type})
        assert r.status_code == 200, r.text
        assert r.json()["has_document"] is True
        r = self.client.put(f"/v1/proofings/{sid}/selfie", files={"file": ("selfie.jpg", selfie, "image/jpeg")}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()


def make_service(tmp_path: Path, **overrides) -> tuple[TestClient, Path]:
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings(registry_key=KEY, db_url=f"sqlite:///{data / 'registry.sqlite3'}",
                        verifier_factory=shared_verifier, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False), data


@pytest.fixture
def svc(tmp_path, csca_file, monkeypatch):
    # Every temporary file anyone makes lands here, so the scan below would see it.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    client, data = make_service(tmp_path, cap=2, csca=(csca_file,))
    with client:
        yield Service(client, data)


def assert_problem(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["type"] == PROBLEM_BASE + body["code"]
    assert body["title"] and body["detail"] and body["fix"]
    if code is not None:
        assert body["code"] == code, body
    return body


# --- the person-facing flow ---------------------------------------------------------------------------------


def test_person_flow_end_to_end(svc, people):
    c = svc.client
    op1, op2 = svc.operator("tel-one"), svc.operator("tel-two")
    auditor = svc.operator("regulator", "auditor")

    # A proves identity with operator 1 and gets a number
    d = svc.prove(op1, people["a"]["doc"], people["a"]["selfie"])
    assert d["outcome"] == "accept", d
    assert d["reasons"][0]["reason"] == "match:match" and d["reasons"][0]["text"]
    assert d["score"] >= d["threshold"] and d["target_fmr"] in (1e-2, 1e-3, 1e-4)
    assert d["document"]["source"] == "document_image" and d["document"]["meets_min_age"] is True
    assert d["person_token"] and d["proofing_id"]
    assert "subject_handle" not in d and "handle" not in str(d)
    r = c.post("/v1/numbers", json={"number": N1, "proofing_id": d["proofing_id"]}, headers=op1)
    assert r.status_code == 201, r.text
    assert r.json()["number"] == N1 and r.json()["status"] == "active"

    # ... and again with operator 2 (JPEG this time), for a second number
    d2 = svc.prove(op2, jpeg_bytes(people["a"]["spec"].image), people["a"]["selfie"], doc_type="image/jpeg")
    assert d2["outcome"] == "accept", d2
    r = c.post("/v1/numbers", json={"number": N2, "proofing_id": d2["proofing_id"]}, headers=op2)
    assert r.status_code == 201, r.text

    # cap (2 in this service) across operators
    assert_problem(c.post("/v1/numbers", json={"number": N3, "proofing_id": d2["proofing_id"]}, headers=op2),
                   409, "identity_cap_reached")
    # a number is bound once
    assert_problem(c.post("/v1/numbers", json={"number": N1, "proofing_id": d2["proofing_id"]}, headers=op2), 409)

    # operators see their own numbers only
    assert c.get(f"/v1/numbers/{N1}", headers=op1).json()["operator_id"] == svc.ids["tel-one"]
    assert_problem(c.get(f"/v1/numbers/{N1}", headers=op2), 403, "not_your_number")
    assert_problem(c.get(f"/v1/numbers/{N3}", headers=op1), 404, "number_not_found")

    # "my numbers": A's token lists both, across operators
    token_a = {"Authorization": f"Bearer {d['person_token']}"}
    mine = c.get("/v1/me/numbers", headers=token_a)
    assert mine.status_code == 200, mine.text
    assert sorted(n["number"] for n in mine.json()["numbers"]) == [N1, N2]
    assert all(set(n) == {"number", "operator_id", "status", "bound_at"} for n in mine.json()["numbers"])

    # A disputes N1: suspended, operator 1 is told
    r = c.post(f"/v1/me/numbers/{N1}/dispute", json={"reason": "I never asked for this line"}, headers=token_a)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"
    assert {n["number"]: n["status"] for n in c.get("/v1/me/numbers", headers=token_a).json()["numbers"]} == {
        N1: "suspended", N2: "active"}
    ev = c.get("/v1/events", headers=op1)
    assert ev.status_code == 200, ev.text
    events = ev.json()["events"]
    assert any(e["number"] == N1 and "dispute" in e["kind"] for e in events), events
    assert c.get("/v1/events", params={"after": ev.json()["next_after"]}, headers=op1).json()["events"] == []
    assert all(e["number"] != N1 for e in c.get("/v1/events", headers=op2).json()["events"])  # op2 is not told
    assert c.get(f"/v1/numbers/{N1}", headers=op1).json()["status"] == "suspended"

    # B proves identity with operator 2; N2 moves from A to B (both freshly proven)
    db = svc.prove(op2, people["b"]["doc"], people["b"]["selfie"])
    assert db["outcome"] == "accept", db
    r = c.post(f"/v1/numbers/{N2}/transfer", json={"current_proofing_id": d2["proofing_id"], "new_proofing_id": db["proofing_id"]},
               headers=op2)
    assert r.status_code == 200, r.text
    assert r.json()["number"] == N2 and r.json()["status"] == "active"
    token_b = {"Authorization": f"Bearer {db['person_token']}"}
    assert [n["number"] for n in c.get("/v1/me/numbers", headers=token_b).json()["numbers"]] == [N2]
    assert [n["number"] for n in c.get("/v1/me/numbers", headers=token_a).json()["numbers"]] == [N1]

    # A's token cannot see or dispute B's number
    assert_problem(c.post(f"/v1/me/numbers/{N2}/dispute", json={}, headers=token_a), 404, "number_not_found")
    assert c.get(f"/v1/numbers/{N2}", headers=op2).json()["status"] == "active"

    # unbind on contract end
    assert c.delete(f"/v1/numbers/{N2}", headers=op2).status_code == 204
    assert_problem(c.get(f"/v1/numbers/{N2}", headers=op2), 404, "number_not_found")
    assert c.get("/v1/me/numbers", headers=token_b).json()["numbers"] == []

    # the auditor reads the trail (and nothing else); no handles leave the registry
    trail = c.get("/v1/audit", params={"limit": 1000}, headers=auditor)
    assert trail.status_code == 200, trail.text
    entries = trail.json()["entries"]
    actions = " ".join(e["action"] for e in entries)
    for action in ("bind", "dispute", "transfer", "unbind", "lookup"):
        assert action in actions, actions
    assert "handle" not in trail.text
    refs = {e["subject_ref"] for e in entries if e["number"] == N1 and e["subject_ref"]}
    assert len(refs) == 1
    transfer = next(e for e in entries if e["action"] == "transfer")
    assert transfer["details"]["from_subject_ref"] in refs  # the transfer came from A, who holds N1
    assert c.get("/v1/audit", params={"after": trail.json()["next_after"]}, headers=auditor).json()["entries"] == []

    # nothing image-like anywhere on disk: the database files, the temporary directory
    assert_no_image_bytes([svc.data_dir, Path(tempfile.gettempdir())],
                          [people["a"]["doc"], people["a"]["selfie"], people["b"]["doc"], people["b"]["selfie"]])


def test_chip_proofing_without_a_page_photo(svc, people, pki):
    spec = people["a"]["spec"]
    chip = issue_chip(spec.mrz_lines, spec.portrait_jpeg, pki=pki)
    op = svc.operator("tel-chip")
    sid = svc.open_session(op)
    r = svc.client.put(f"/v1/proofings/{sid}/chip", headers=op, files={
        "sod": ("EF_SOD.bin", chip.sod, "application/octet-stream"),
        "dg1": ("EF_DG1.bin", chip.dg1, "application/octet-stream"),
        "dg2": ("EF_DG2.bin", chip.dg2, "application/octet-stream"),
    })
    assert r.status_code == 200, r.text
    assert r.json()["has_chip"] and not r.json()["has_document"]
    r = svc.client.put(f"/v1/proofings/{sid}/selfie", content=people["a"]["selfie"], headers=op | {"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["outcome"] == "accept", d
    assert d["document"]["source"] == "chip" and d["document"]["passive_authentication"] is True
    assert "chip_passive_authentication" in d["checks_performed"]


def test_chip_files_missing_and_untrusted_chip(svc, people):
    spec = people["a"]["spec"]
    rogue = issue_chip(spec.mrz_lines, spec.portrait_jpeg, pki=TestPKI.generate())  # not signed under our CSCA
    op = svc.operator("tel-chip2")
    sid = svc.open_session(op)
    assert_problem(svc.client.put(f"/v1/proofings/{sid}/chip", headers=op, files={"sod": ("sod", rogue.sod)}),
                   422, "chip_files_missing")
    r = svc.client.put(f"/v1/proofings/{sid}/chip", headers=op,
                       files={"sod": ("sod", rogue.sod), "dg1": ("dg1", rogue.dg1), "dg2": ("dg2", rogue.dg2)})
    assert r.status_code == 200, r.text
    d = svc.client.put(f"/v1/proofings/{sid}/selfie", content=people["a"]["selfie"], headers=op | {"Content-Type": "image/jpeg"}).json()
    assert d["outcome"] == "reject" and "chip:csca_untrusted" in [x["reason"] for x in d["reasons"]], d
    assert d["person_token"] is None


def test_chip_upload_refused_without_a_trust_store(tmp_path, people):
    client, _ = make_service(tmp_path)
    with client:
        op = Service(client, tmp_path).operator("tel")
        sid = client.post("/v1/proofings", headers=op).json()["session_id"]
        assert_problem(client.put(f"/v1/proofings/{sid}/chip", headers=op, files={"sod": ("s", b"0")}), 409, "chip_not_configured")


# --- the selfie step: decisions that are not accept ------------------------------------------------------------


def test_corrupt_document_gives_retry_with_bad_image(svc, people):
    op = svc.operator("tel")
    d = svc.prove(op, b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 100, people["a"]["selfie"])
    assert d["outcome"] == "retry"
    assert "document:bad_image" in [x["reason"] for x in d["reasons"]]
    assert all(x["text"] for x in d["reasons"]) and d["person_token"] is None
    # a retry's proofing cannot bind
    assert_problem(svc.client.post("/v1/numbers", json={"number": N1, "proofing_id": d["proofing_id"]}, headers=op),
                   409, "proofing_not_accepted")


def test_impostor_is_rejected_and_gets_no_token(svc, people):
    op = svc.operator("tel")
    d = svc.prove(op, people["a"]["doc"], people["b"]["selfie"])
    assert d["outcome"] == "reject" and d["reasons"][0]["reason"] == "match:below_threshold"
    assert d["person_token"] is None


def test_session_is_closed_after_the_decision(svc, people):
    op = svc.operator("tel")
    sid = svc.open_session(op)
    h = op | {"Content-Type": "image/jpeg"}
    assert_problem(svc.client.put(f"/v1/proofings/{sid}/selfie", content=people["a"]["selfie"], headers=h), 409, "document_missing")
    svc.client.put(f"/v1/proofings/{sid}/document", content=b"not an image", headers=h)
    assert svc.client.put(f"/v1/proofings/{sid}/selfie", content=people["a"]["selfie"], headers=h).status_code == 200
    assert_problem(svc.client.put(f"/v1/proofings/{sid}/selfie", content=people["a"]["selfie"], headers=h), 404, "session_not_found")
    assert_problem(svc.client.get(f"/v1/proofings/{sid}", headers=op), 404, "session_not_found")


def test_sessions_belong_to_their_operator_and_can_be_abandoned(svc, people):
    op1, op2 = svc.operator("one"), svc.operator("two")
    sid = svc.open_session(op1)
    h2 = op2 | {"Content-Type": "image/png"}
    assert_problem(svc.client.put(f"/v1/proofings/{sid}/document", content=people["a"]["doc"], headers=h2), 404, "session_not_found")
    assert svc.client.get(f"/v1/proofings/{sid}", headers=op1).json()["has_document"] is False
    assert svc.client.delete(f"/v1/proofings/{sid}", headers=op1).status_code == 204
    assert_problem(svc.client.delete(f"/v1/proofings/{sid}", headers=op1), 404)


# --- uploads: limits, media types, never on disk --------------------------------------------------------------


@pytest.fixture
def small(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    client, data = make_service(tmp_path, max_upload_bytes=1_500_000)
    with client:
        s = Service(client, data)
        s.op = s.operator("tel")
        s.tmp = tmp
        yield s


def _jpeg_of_size(n: int) -> bytes:
    head = jpeg_bytes(read_rgb(FR / "obama/obama.jpg"))
    return head + b"\xff\xd8\xff\xe0" + b"A" * (n - len(head) - 4)


@pytest.mark.parametrize("mode", ["raw", "chunked", "multipart", "lying_length"])
def test_oversized_upload_is_413_and_nothing_is_kept(small, mode):
    c, op = small.client, small.op
    sid = small.open_session(op)
    big = _jpeg_of_size(1_500_001)
    url = f"/v1/proofings/{sid}/document"
    if mode == "raw":
        r = c.put(url, content=big, headers=op | {"Content-Type": "image/jpeg"})
    elif mode == "chunked":  # no Content-Length at all: the count stops it
        r = c.put(url, content=(big[i:i + 65536] for i in range(0, len(big), 65536)),
                  headers=op | {"Content-Type": "image/jpeg"})
        assert "content-length" not in r.request.headers
    elif mode == "multipart":
        r = c.put(url, files={"file": ("doc.jpg", big, "image/jpeg")}, headers=op)
    else:  # a Content-Length that claims less than is sent
        r = c.put(url, content=(big[i:i + 65536] for i in range(0, len(big), 65536)),
                  headers=op | {"Content-Type": "image/jpeg", "Content-Length": "1000"})
    body = assert_problem(r, 413, "upload_too_large")
    assert "1,500,000" in body["detail"]
    state = c.get(f"/v1/proofings/{sid}", headers=op).json()
    assert state["has_document"] is False
    assert c.app.state.idproof.sessions.buffered_bytes == 0
    assert_no_image_bytes([small.data_dir, small.tmp], [big])


def test_declared_oversize_is_refused_before_reading(small):
    sid = small.open_session(small.op)

    def body():
        yield b"\xff\xd8\xff" + b"A" * 100

    r = small.client.put(f"/v1/proofings/{sid}/document", content=body(),
                         headers=small.op | {"Content-Type": "image/jpeg", "Content-Length": "99999999"})
    assert_problem(r, 413, "upload_too_large")


def test_multipart_over_one_megabyte_never_touches_disk(svc, people, monkeypatch):
    """Starlette's UploadFile spools parts over 1 MB to a temporary file; uploads here never do."""
    made = []
    real = tempfile.SpooledTemporaryFile

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **kw):
            made.append("spooled")
            super().__init__(*a, **kw)

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", Recording)
    import starlette.formparsers

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", Recording)
    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        fn = getattr(tempfile, name)
        monkeypatch.setattr(tempfile, name, lambda *a, _fn=fn, _n=name, **kw: (made.append(_n), _fn(*a, **kw))[1])

    doc = people["a"]["doc_big"]
    assert len(doc) > 2 * 2**20
    op = svc.operator("tel")
    sid = svc.open_session(op)
    r = svc.client.put(f"/v1/proofings/{sid}/document", files={"file": ("doc.png", doc, "image/png")}, headers=op)
    assert r.status_code == 200, r.text
    d = svc.client.put(f"/v1/proofings/{sid}/selfie", files={"file": ("s.jpg", people["a"]["selfie"], "image/jpeg")}, headers=op).json()
    assert d["outcome"] == "accept", d
    assert made == []
    assert_no_image_bytes([svc.data_dir, Path(tempfile.gettempdir())], [doc, people["a"]["selfie"]])


def test_media_types_and_malformed_multipart(small):
    c, op = small.client, small.op
    sid = small.open_session(op)
    url = f"/v1/proofings/{sid}/document"
    assert_problem(c.put(url, content=b"x", headers=op | {"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    assert_problem(c.put(url, content=b"x", headers=op), 415, "unsupported_media_type")
    assert_problem(c.put(url, content=b"", headers=op | {"Content-Type": "image/jpeg"}), 422, "empty_upload")
    assert_problem(c.put(url, files={"image": ("a.jpg", b"abc")}, headers=op), 422, "missing_file")
    assert_problem(c.put(url, content=b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
                         headers=op | {"Content-Type": "multipart/form-data; boundary=xyz"}), 422, "malformed_multipart")
    assert_problem(c.put(url, content=b"abc", headers=op | {"Content-Type": "multipart/form-data"}), 422, "malformed_multipart")
    assert c.get(f"/v1/proofings/{sid}", headers=op).json()["has_document"] is False


def test_session_limit_gives_503_with_retry_after(tmp_path):
    client, _ = make_service(tmp_path, max_sessions=1)
    with client:
        op = Service(client, tmp_path).operator("tel")
        assert client.post("/v1/proofings", headers=op).status_code == 201
        r = client.post("/v1/proofings", headers=op)
        assert_problem(r, 503, "service_busy")
        assert r.headers["retry-after"] == "60"


def test_session_store_expiry_and_budget():
    now = [0.0]
    store = SessionStore(max_sessions=2, ttl_s=60, max_bytes=10, clock=lambda: now[0])
    a = store.create("op")
    assert store.create("op") is not None and store.create("op") is None  # full
    assert store.put(a.id, "op", document=b"12345") is not None
    assert store.put(a.id, "other", document=b"1") is None  # not theirs
    from idproof.service.sessions import BudgetSpent

    with pytest.raises(BudgetSpent):
        store.put(a.id, "op", chip={"SOD": b"123456"})
    assert store.put(a.id, "op", document=b"1234567890") is not None  # replacing stays within budget
    now[0] = 61.0
    assert len(store) == 0 and store.get(a.id, "op") is None and store.buffered_bytes == 0
    assert store.create("op") is not None


# --- auth and validation ----------------------------------------------------------------------------------------


def test_missing_or_wrong_key_is_401(small):
    c = small.client
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        r = c.post("/v1/proofings", headers=headers)
        assert_problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        assert_problem(c.get(f"/v1/numbers/{N1}", headers=headers), 401)
        assert_problem(c.get("/v1/audit", headers=headers), 401)
        assert_problem(c.get("/v1/me/numbers", headers=headers), 401)
    # an operator key is not a person token
    assert_problem(c.get("/v1/me/numbers", headers=small.op), 401, "invalid_person_token")


def test_auditor_key_is_refused_everywhere_but_the_audit_trail(small):
    c = small.client
    aud = small.operator("regulator", "auditor")
    for method, url, kw in (
        ("POST", "/v1/proofings", {}),
        ("POST", "/v1/numbers", {"json": {"number": N1, "proofing_id": "x"}}),
        ("GET", f"/v1/numbers/{N1}", {}),
        ("DELETE", f"/v1/numbers/{N1}", {}),
        ("POST", f"/v1/numbers/{N1}/transfer", {"json": {"current_proofing_id": "a", "new_proofing_id": "b"}}),
        ("GET", "/v1/events", {}),
    ):
        assert_problem(c.request(method, url, headers=aud, **kw), 403, "forbidden")
    assert c.get("/v1/audit", headers=aud).status_code == 200
    assert_problem(c.get("/v1/audit", headers=small.op), 403, "forbidden")


def test_malformed_json_and_wrong_types_are_422(small):
    c, op = small.client, small.op
    body = assert_problem(c.post("/v1/numbers", content=b'{"number": "+4416', headers=op | {"Content-Type": "application/json"}),
                          422, "invalid_request")
    assert body["errors"]
    body = assert_problem(c.post("/v1/numbers", json={"number": 441632960001, "proofing_id": ["x"]}, headers=op), 422, "invalid_request")
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "number"), ("body", "proofing_id")}
    assert "441632960001" not in str(body)  # inputs are never echoed
    assert_problem(c.post("/v1/numbers", json={"number": N1}, headers=op), 422, "invalid_request")
    assert_problem(c.post("/v1/numbers", json={"number": N1, "proofing_id": "p", "extra": 1}, headers=op), 422)
    assert_problem(c.get("/v1/events", params={"after": "soon"}, headers=op), 422, "invalid_request")
    assert_problem(c.get("/v1/events", params={"limit": 0}, headers=op), 422, "invalid_request")
    assert_problem(c.post("/v1/numbers", json={"number": "call me", "proofing_id": "p"}, headers=op), 422, "invalid_number")
    assert_problem(c.post("/v1/numbers", json={"number": N1, "proofing_id": "no-such-proofing"}, headers=op), 404, "proofing_not_found")


def test_unknown_routes_and_methods_are_problems(small):
    assert_problem(small.client.get("/v1/identities"), 404, "not_found")
    assert_problem(small.client.patch("/v1/numbers", headers=small.op), 405, "method_not_allowed")


def test_openapi_has_no_identity_listing_or_face_search(small):
    spec = small.client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert "/healthz" in paths and "/v1/me/numbers" in paths
    for p in paths:
        assert "identit" not in p and "handle" not in p and "search" not in p and "face" not in p
    # only the selfie step takes a face, and it is 1:1 against the session's own document
    image_ops = [(p, m) for p, item in spec["paths"].items() for m, op in item.items()
                 if "image/jpeg" in op.get("requestBody", {}).get("content", {})]
    assert sorted(image_ops) == [("/v1/proofings/{session_id}/document", "put"), ("/v1/proofings/{session_id}/selfie", "put")]
    # every error response is documented as problem+json
    for item in spec["paths"].values():
        for op in item.values():
            for status, resp in op["responses"].items():
                if status[0] in "45":
                    assert list(resp["content"]) == ["application/problem+json"], (status, resp)
    assert small.client.get("/healthz").json()["status"] == "ok"


# --- the CLI -------------------------------------------------------------------------------------------------------


def test_cli_operators_add_prints_a_working_key(tmp_path):
    from typer.testing import CliRunner

    from idproof.cli import app

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    r = CliRunner().invoke(app, ["operators", "add", "tel-cli", "--db", url])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    from idproof.registry.rules import Registry

    p = Registry(url).authenticate(key)
    assert p is not None and p.name == "tel-cli" and p.role == "operator"
    assert CliRunner().invoke(app, ["operators", "add", "x", "--role", "boss", "--db", url]).exit_code == 2
    r = CliRunner().invoke(app, ["serve", "--help"])
    assert r.exit_code == 0 and "--registry-key" in r.output


# --- helpers ---------------------------------------------------------------------------------------------------------

_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb", b"JFIF\x00", b"Exif\x00\x00")


def assert_no_image_bytes(dirs: list[Path], uploads: list[bytes]) -> None:
    """No file under ``dirs`` holds an image signature or any 64-byte slice of the uploaded files."""
    probes = [u[i:i + 64] for u in uploads for i in (len(u) // 4, len(u) // 2, 3 * len(u) // 4)]
    for d in dirs:
        for f in d.rglob("*"):
            if not f.is_file():
                continue
            blob = f.read_bytes()
            for m in _MAGIC:
                assert m not in blob, f"{f.name} holds {m!r}"
            for p in probes:
                assert p not in blob, f"{f.name} holds uploaded image bytes"


# --- signed evidence ---------------------------------------------------------------------------------------------


def test_decisions_carry_signed_evidence_checkable_offline(tmp_path, people):
    """With an evidence key, every decision (accept and reject alike) comes with a signed record that verifies
    against the published key, hashes the uploads it was made from, and is kept for the person and the operator."""
    from idproof.evidence import EvidenceKey, verify_evidence
    from idproof.evidence import store as evidence_store

    key = EvidenceKey.generate()
    client, data = make_service(tmp_path, evidence_key=key)
    with client:
        svc = Service(client, data)
        op = svc.operator("tel-evidence")
        a = people["a"]
        d = svc.prove(op, a["doc"], a["selfie"])
        bad = svc.prove(op, a["doc"], people["b"]["selfie"])
        published = client.get("/.well-known/idproof-evidence-keys").json()
    assert d["outcome"] == "accept" and bad["outcome"] == "reject"
    for decision in (d, bad):
        record = verify_evidence(decision["evidence"], published)
        assert record.outcome == decision["outcome"] and record.proofing_id == decision["proofing_id"]
        assert record.threshold == decision["threshold"] and record.target_fmr == decision["target_fmr"]
        assert record.matches_input("document", a["doc"])
        (stored,) = evidence_store.for_proofing(svc.client.app.state.idproof.registry.engine, decision["proofing_id"])
        assert stored.jws == decision["evidence"]
    assert verify_evidence(d["evidence"], published).matches_input("selfie", a["selfie"])
    # without a key: no evidence, and the key document says why
    (tmp_path / "plain").mkdir()
    plain, _ = make_service(tmp_path / "plain")
    with plain:
        assert_problem(plain.get("/.well-known/idproof-evidence-keys"), 404, "evidence_not_configured")
