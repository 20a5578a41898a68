"""A realistic workload to run the breach drill after: real faces, real specimen passports, the real service.

People come from the shared face set (``faces/identities.csv``: every identity with at least two photos).
Each person gets generated holder data (name, birth date, document number, issuing state: what the attacker
is assumed to know) and a SPECIMEN passport page rendered around one photo (``make_specimen``); another photo
of the same person is the selfie (genuine: usually accept), and a photo of someone else is an impostor's
selfie (reject). Everything then goes through the HTTP service as an operator would drive it:

    proofings (PUT document, PUT selfie; evidence signed and stored) → binds (POST /v1/numbers, and
    Registry.bind_many batches) → "my numbers" (person token) → lookups → disputes → operator events →
    transfers between freshly proven people → unbinds → audit reads → sealed templates (issued on accept
    when the service has a sealing key, else through idproof.sealed.SealedTemplates) → re-authentication

Face work is the expensive part (about 0.3 s per specimen and 0.3 s per proofing on a 2-core machine), so
``CachingVerifier`` runs the real Verifier once per (document, selfie) pair and replays the decision, with a
fresh ``decided_at``, when the same workload runs on a second database.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idproof.breach.drill import Known, Victim

if TYPE_CHECKING:
    from idproof.api import Verifier
    from idproof.decision import Decision
    from idproof.document.specimen import SpecimenFields
    from idproof.registry.handles import RegistryKey

__all__ = ["CachingVerifier", "Person", "WorkloadStats", "known_data", "make_people", "plan_people", "run_workload"]

_SYLLABLES = ("ka", "lo", "mi", "ren", "tas", "vor", "bel", "dun", "fir", "gal", "hos", "jun", "lek", "mar", "nov",
              "pel", "qua", "ros", "sil", "tor", "ulm", "vis", "wen", "yar", "zel", "bri", "cot", "dro", "esk", "fen")
_STATES = ("UTO", "FRA", "NLD", "GBR", "ITA", "ESP", "SWE", "AUT")
_DOC_LETTERS = "GHJKLMNPRTUVWXY"  # no A-F (hex look-alikes) and no O/I/B/S/Z (OCR repair ambiguity)


@dataclass(frozen=True)
class PersonPlan:
    id: str
    identity: str
    portrait: Path  # the photo printed on the document; the attacker is assumed to have it
    selfie: Path  # another photo of the same person
    surname: str
    given_names: str
    birth_date: date
    document_number: str
    issuing_state: str
    sex: str

    def fields(self) -> SpecimenFields:
        from idproof.document.specimen import SpecimenFields

        return SpecimenFields(document_number=self.document_number, primary_identifier=self.surname,
                              secondary_identifier=self.given_names, date_of_birth=self.birth_date, sex=self.sex,
                              issuing_state=self.issuing_state, nationality=self.issuing_state)


@dataclass(frozen=True)
class Person:
    plan: PersonPlan
    document: Path  # the rendered specimen page (JPEG)
    mrz_lines: tuple[str, ...] = field(repr=False)

    @property
    def id(self) -> str:
        return self.plan.id


def _name(rng: random.Random, syllables: int, min_len: int) -> str:
    while True:
        s = "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).upper()
        if len(s) >= min_len:
            return s


def plan_people(faces_dir: Path, n: int, *, seed: int = 8) -> list[PersonPlan]:
    """``n`` people with at least two photos each, selfie-like subsets first, and generated holder data."""
    groups: dict[str, list[str]] = {}
    with open(faces_dir / "identities.csv", newline="") as f:
        for row in csv.DictReader(f):
            groups.setdefault(f"{row['subset']}/{row['identity']}", []).append(row["file"])
    order = {"deepface": 0, "face_recognition": 1, "faceapi_bbt": 2, "lfw": 3}
    candidates = sorted((k for k, files in groups.items() if len(files) >= 2),
                        key=lambda k: (order.get(k.split("/")[0], 9), k))
    rng = random.Random(seed)
    today = date.today()
    plans: list[PersonPlan] = []
    used_names: set[str] = set()
    used_docs: set[str] = set()
    for identity in candidates[:n]:
        files = sorted(groups[identity])
        surname = _name(rng, rng.choice((3, 4)), 7)
        given = _name(rng, rng.choice((2, 3)), 5)
        while surname in used_names:
            surname = _name(rng, 4, 7)
        used_names.add(surname)
        doc = rng.choice(_DOC_LETTERS) + "".join(rng.choice("0123456789") for _ in range(8))
        while doc in used_docs:
            doc = rng.choice(_DOC_LETTERS) + "".join(rng.choice("0123456789") for _ in range(8))
        used_docs.add(doc)
        year = rng.randint(1950, today.year - 20)
        birth = date(year, rng.randint(1, 12), rng.randint(1, 28))
        plans.append(PersonPlan(f"p{len(plans) + 1:03d}", identity, faces_dir / files[0], faces_dir / files[1], surname,
                                given, birth, doc, rng.choice(_STATES), rng.choice("MF")))
    return plans


def make_people(plans: Sequence[PersonPlan], out_dir: Path, *, quality: int = 92) -> list[Person]:
    """Render each plan's specimen passport (JPEG) into ``out_dir``; a photo with no usable face is skipped."""
    import numpy as np
    from PIL import Image

    from idproof.document.specimen import SpecimenError, make_specimen

    out_dir.mkdir(parents=True, exist_ok=True)
    people = []
    for n, plan in enumerate(plans):
        path = out_dir / f"{plan.id}-td3.jpg"
        try:
            rgb = np.asarray(Image.open(plan.portrait).convert("RGB"))
            spec = make_specimen(rgb, plan.fields(), kind="TD3", seed=n)
        except SpecimenError:
            continue
        buf = io.BytesIO()
        Image.fromarray(spec.image).save(buf, "JPEG", quality=quality)
        path.write_bytes(buf.getvalue())
        people.append(Person(plan, path, tuple(spec.mrz_lines)))
    return people


def known_data(people: Sequence[Person], *, exact_files_every: int = 10) -> Known:
    """The attacker's knowledge of every person: name, birth date, document, the photo on the document, and
    for every ``exact_files_every``-th person the exact selfie file they uploaded (as a leaked phone might hold)."""
    victims = []
    for n, p in enumerate(people):
        pl = p.plan
        files = (pl.selfie,) if exact_files_every and n % exact_files_every == 0 else ()
        victims.append(Victim(pl.id, pl.surname, pl.given_names, pl.birth_date, pl.document_number, pl.issuing_state,
                              "P", faces=(pl.portrait,), files=files))
    return Known(tuple(victims))


class CachingVerifier:
    """The real Verifier, once per (document, selfie) pair; a repeat gets the same decision with a fresh
    ``decided_at`` (a binding needs a proofing younger than 15 minutes). Everything else is the Verifier's."""

    def __init__(self, verifier: Verifier) -> None:
        self._verifier = verifier
        self._cache: dict[tuple[str, str], Decision] = {}
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._verifier, name)

    @property
    def real(self) -> Verifier:
        return self._verifier

    @staticmethod
    def key(document: Any, selfie: Any) -> tuple[str, str]:
        def digest(x: Any) -> str:
            data = x if isinstance(x, bytes) else Path(x).read_bytes()
            return hashlib.sha256(data).hexdigest()

        return digest(document), digest(selfie)

    def verify(self, document_image: Any, selfie_image: Any, *, chip: Any = None) -> Decision:
        if chip is not None or document_image is None:
            return self._verifier.verify(document_image, selfie_image, chip=chip)
        k = self.key(document_image, selfie_image)
        d = self._cache.get(k)
        if d is None:
            self.misses += 1
            d = self._cache[k] = self._verifier.verify(document_image, selfie_image)
            return d
        self.hits += 1
        return dataclasses.replace(d, decided_at=datetime.now(UTC).isoformat(timespec="seconds"))

    def cached(self, document: Any, selfie: Any) -> Decision | None:
        return self._cache.get(self.key(document, selfie))


@dataclass
class WorkloadStats:
    proofings: int = 0
    accepted: int = 0
    rejected: int = 0
    retried: int = 0
    impostor_proofings: int = 0
    binds: int = 0
    batch_binds: int = 0
    my_numbers_reads: int = 0
    lookups: int = 0
    disputes: int = 0
    event_reads: int = 0
    transfers: int = 0
    unbinds: int = 0
    audit_reads: int = 0
    sealed_issued: int = 0
    reauths: int = 0
    person_audit_reads: int = 0
    evidence_records: int = 0
    seconds: float = 0.0
    verifier_hits: int = 0
    verifier_misses: int = 0

    def line(self) -> str:
        return ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in dataclasses.asdict(self).items())


def _number(n: int) -> str:
    return f"+4477009{n:05d}"  # E.164, UK mobile drama-style range: no real subscriber


def run_workload(
    db_url: str,
    people: Sequence[Person],
    *,
    registry_key: RegistryKey,
    verifier_factory: Callable[[RegistryKey, Any], Any],
    evidence_key: Any = None,
    impostors: int = 40,
    sealing_key: Any = None,
    seed: int = 8,
    check: Callable[[bool, str], None] | None = None,
    while_running: Callable[[], None] | None = None,
) -> WorkloadStats:
    """Drive the HTTP service on ``db_url`` through a full day of work for ``people`` (see the module docstring).
    ``verifier_factory`` is the service's (e.g. returning one shared ``CachingVerifier``); ``check(ok, what)``
    is called for every response that must succeed (default: raise AssertionError). ``while_running`` is
    called at the end with the service still up (e.g. to copy the SQLite file with its live -wal/-shm)."""
    from fastapi.testclient import TestClient

    from idproof.service import Settings, create_app

    def ensure(ok: bool, what: str) -> None:
        if check is not None:
            check(ok, what)
        elif not ok:
            raise AssertionError(what)

    rng = random.Random(seed)
    stats = WorkloadStats()
    t_start = time.perf_counter()
    extra: dict[str, Any] = {}
    http_sealing = "sealing_key" in {f.name for f in dataclasses.fields(Settings)}
    if sealing_key is None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        sealing_key = Ed25519PrivateKey.generate()
    if http_sealing:
        extra["sealing_key"] = sealing_key
    settings = Settings(registry_key=registry_key, db_url=db_url, verifier_factory=verifier_factory,
                        evidence_key=evidence_key, **extra)
    app = create_app(settings)
    routes = set(app.openapi().get("paths", {}))  # what this build of the service offers
    with TestClient(app, raise_server_exceptions=False) as c:
        state = c.app.state.idproof
        registry = state.registry
        verifier = state.verifier()
        hits0, misses0 = getattr(verifier, "hits", 0), getattr(verifier, "misses", 0)
        ops = []
        for name in ("Tel One", "Tel Two", "Tel Three"):
            principal, key = registry.add_operator(name)
            ops.append((principal, {"Authorization": f"Bearer {key}"}))
        _, auditor_key = registry.add_operator("Regulator", "auditor")
        auditor = {"Authorization": f"Bearer {auditor_key}"}

        def prove(h: dict, doc: Path, selfie: Path, *, sealed: bool = False) -> dict:
            r = c.post("/v1/proofings", headers=h)
            ensure(r.status_code == 201, f"open session: {r.status_code} {r.text[:300]}")
            sid = r.json()["session_id"]
            r = c.put(f"/v1/proofings/{sid}/document", content=doc.read_bytes(), headers=h | {"Content-Type": "image/jpeg"})
            ensure(r.status_code == 200, f"document upload: {r.status_code} {r.text[:300]}")
            q = "?sealed_template=true" if sealed else ""
            r = c.put(f"/v1/proofings/{sid}/selfie{q}", files={"file": ("selfie.jpg", selfie.read_bytes(), "image/jpeg")}, headers=h)
            ensure(r.status_code == 200, f"selfie: {r.status_code} {r.text[:300]}")
            d = r.json()
            stats.proofings += 1
            stats.accepted += d["outcome"] == "accept"
            stats.rejected += d["outcome"] == "reject"
            stats.retried += d["outcome"] == "retry"
            stats.evidence_records += bool(d.get("evidence"))
            return d

        # 1. proofings: everyone with their own document and a second photo of themselves
        accepted: list[dict[str, Any]] = []
        for n, p in enumerate(people):
            op_i = n % len(ops)
            d = prove(ops[op_i][1], p.document, p.plan.selfie, sealed=http_sealing and n % 15 == 0)
            if d["outcome"] == "accept":
                accepted.append({"person": p, "op": op_i, "pid": d["proofing_id"], "token": d["person_token"],
                                 "numbers": [], "sealed": d.get("sealed_template")})
                stats.sealed_issued += bool(d.get("sealed_template"))
        # ... and impostors: someone else's selfie against a person's document (reject expected)
        for k in range(min(impostors, max(0, len(people) - 1))):
            victim = people[(k * 7) % len(people)]
            other = people[(k * 7 + 1 + k % 5) % len(people)]
            if other.plan.identity == victim.plan.identity:
                continue
            prove(ops[k % len(ops)][1], victim.document, other.plan.selfie)
            stats.impostor_proofings += 1

        # 2. binds: one number each over HTTP; every third person a second number in an operator's batch
        seq = 0
        batches: dict[int, list[tuple[str, str, dict]]] = {}
        for a in accepted:
            seq += 1
            number = _number(seq)
            r = c.post("/v1/numbers", json={"number": number, "proofing_id": a["pid"]}, headers=ops[a["op"]][1])
            ensure(r.status_code == 201, f"bind: {r.status_code} {r.text[:300]}")
            a["numbers"].append(number)
            stats.binds += 1
            if seq % 3 == 0:
                seq += 1
                batches.setdefault(a["op"], []).append((_number(seq), a["pid"], a))
        for op_i, batch in batches.items():
            results = registry.bind_many([(num, pid) for num, pid, _ in batch], ops[op_i][0])
            for (num, _, a), res in zip(batch, results, strict=True):
                ensure(not isinstance(res, Exception), f"bind_many: {res!r}")
                a["numbers"].append(num)
                stats.batch_binds += 1

        # 3. "my numbers", lookups, disputes, operator events
        for a in accepted:
            r = c.get("/v1/me/numbers", headers={"Authorization": f"Bearer {a['token']}"})
            ensure(r.status_code == 200, f"my numbers: {r.status_code} {r.text[:300]}")
            stats.my_numbers_reads += 1
        for a in accepted[::4]:
            r = c.get(f"/v1/numbers/{a['numbers'][0]}", headers=ops[a["op"]][1])
            ensure(r.status_code == 200, f"lookup: {r.status_code} {r.text[:300]}")
            stats.lookups += 1
        reasons = ("I never asked for this line", "Not my SIM card", "Someone registered this in my name",
                   "unknown number on my account", "")
        disputed: set[str] = set()
        for a in accepted[2::5]:
            number = a["numbers"][-1]
            r = c.post(f"/v1/me/numbers/{number}/dispute", json={"reason": rng.choice(reasons)},
                       headers={"Authorization": f"Bearer {a['token']}"})
            ensure(r.status_code == 200, f"dispute: {r.status_code} {r.text[:300]}")
            disputed.add(number)
            stats.disputes += 1
        for _, h in ops:
            after = 0
            while True:
                r = c.get("/v1/events", params={"after": after, "limit": 50}, headers=h)
                ensure(r.status_code == 200, f"events: {r.status_code} {r.text[:300]}")
                stats.event_reads += 1
                body = r.json()
                if not body["events"]:
                    break
                after = body["next_after"]

        # 4. transfers: a holder's undisputed number to another freshly proven person of the same operator
        by_op: dict[int, list[dict]] = {}
        for a in accepted:
            by_op.setdefault(a["op"], []).append(a)
        for group in by_op.values():
            for x, y in list(zip(group[::2], group[1::2], strict=False))[:4]:
                number = next((n for n in x["numbers"] if n not in disputed), None)
                if number is None or len(y["numbers"]) >= 5 or x["person"].plan.identity == y["person"].plan.identity:
                    continue
                r = c.post(f"/v1/numbers/{number}/transfer", json={"current_proofing_id": x["pid"], "new_proofing_id": y["pid"]},
                           headers=ops[x["op"]][1])
                if r.status_code == 409 and "same" in r.text.lower():
                    continue  # two documents of one person: not a transfer
                ensure(r.status_code == 200, f"transfer: {r.status_code} {r.text[:300]}")
                x["numbers"].remove(number)
                y["numbers"].append(number)
                stats.transfers += 1

        # 5. contracts ending
        for a in accepted[1::9]:
            if a["numbers"]:
                number = a["numbers"].pop(0)
                r = c.delete(f"/v1/numbers/{number}", headers=ops[a["op"]][1])
                ensure(r.status_code == 204, f"unbind: {r.status_code} {r.text[:300]}")
                stats.unbinds += 1

        # 6. the person's own audit view and the regulator's audit trail, where the service has them
        if "/v1/me/audit" in routes:
            for a in accepted[::6]:
                r = c.get("/v1/me/audit", headers={"Authorization": f"Bearer {a['token']}"})
                ensure(r.status_code < 500, f"my audit: {r.status_code} {r.text[:300]}")
                stats.person_audit_reads += r.status_code == 200
        after = 0
        while True:
            r = c.get("/v1/audit", params={"after": after, "limit": 500}, headers=auditor)
            ensure(r.status_code == 200, f"audit: {r.status_code} {r.text[:300]}")
            stats.audit_reads += 1
            body = r.json()
            if not body["entries"]:
                break
            after = body["next_after"]

        # 7. sealed templates: issued over HTTP above where the service can; otherwise enrolled directly
        real = getattr(verifier, "real", verifier)
        sealed_people = [a for a in accepted if a["sealed"]]
        if not sealed_people:
            from idproof.imageio import load_image
            from idproof.sealed import SealedTemplates

            st = SealedTemplates(registry.engine, sealing_key, real)
            for a in accepted[::15][:6]:
                p = a["person"]
                cached = verifier.cached(p.document, p.plan.selfie) if hasattr(verifier, "cached") else None
                handle = cached.subject_handle if cached is not None else None
                if handle is None:
                    continue
                template = getattr(cached, "selfie_template", None) or real.engine.analyze(load_image(p.plan.selfie), "selfie")
                sealed, code = st.enroll(handle, template)
                a["sealed"] = {"sealed": sealed, "recovery_code": code}
                stats.sealed_issued += 1
            sealed_people = [a for a in accepted if a["sealed"]]
            for a in sealed_people[:2]:
                res = st.reauthenticate(a["sealed"]["sealed"], a["sealed"]["recovery_code"], a["person"].plan.selfie)
                stats.reauths += 1
                ensure(res.outcome.value in ("accept", "reject", "retry"), f"reauth: {res!r}")
        elif "/v1/reauth" in routes:
            for a in sealed_people[:2]:
                s = a["sealed"]
                r = c.post("/v1/reauth", headers=ops[a["op"]][1], files={
                    "sealed": (None, s["sealed"]), "recovery_code": (None, s["recovery_code"]),
                    "selfie": ("selfie.jpg", a["person"].plan.selfie.read_bytes(), "image/jpeg")})
                ensure(r.status_code == 200, f"reauth: {r.status_code} {r.text[:300]}")
                stats.reauths += 1
            if "/v1/me/sealed-template" in routes and len(sealed_people) > 2:
                a = sealed_people[-1]  # one person revokes theirs (lost phone)
                r = c.delete("/v1/me/sealed-template", headers={"Authorization": f"Bearer {a['token']}"})
                ensure(r.status_code == 204, f"revoke sealed template: {r.status_code} {r.text[:300]}")
        if while_running is not None:
            while_running()
        if hasattr(verifier, "hits"):
            stats.verifier_hits, stats.verifier_misses = verifier.hits - hits0, verifier.misses - misses0
    registry.close()
    stats.seconds = time.perf_counter() - t_start
    return stats
