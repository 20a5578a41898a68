"""Retention (idproof.retention) on SQLite and PostgreSQL (``db_url``): old evidence records and old audit
payloads are purged, recent ones kept; leaf hashes stay and the audit log still verifies; a second run
purges nothing; proofing decisions go only when asked and only those nothing rests on; the CLI."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from idproof.audit import TreeHeadSigner, audit_leaves, verify_log
from idproof.decision import Decision
from idproof.evidence import EvidenceKey, from_decision
from idproof.evidence import store as evidence_store
from idproof.reasons import Outcome
from idproof.registry import Registry
from idproof.retention import RetentionPolicy, run_retention
from idproof.retention import app as retention_app
from idproof.storage.models import PersonToken, ProofingDecision
from idproof.storage.store import make_engine

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def number(i: int) -> str:
    return f"+44770090{i:04d}"


def prove(reg: Registry, handle: str | None, at: datetime, outcome: Outcome = Outcome.ACCEPT) -> str:
    d = Decision(outcome, (), None, scorer="test", calibration_version="test", model_versions={}, timings_ms={},
                 decided_at=at.isoformat(), subject_handle=handle)
    return reg.record_proofing(d).id


@pytest.fixture
def signer() -> TreeHeadSigner:
    return TreeHeadSigner.generate()


@pytest.fixture
def setup(db_url, signer):
    """Registry activity and evidence records at T0 (old), T0 + 300 days and T0 + 400 days (recent)."""
    clock = Clock()
    key = EvidenceKey.generate()
    with Registry(db_url, clock=clock, audit_signer=signer) as reg:
        op, _ = reg.add_operator("Acme")
        evidence = {}
        for i, days in enumerate((0, 300, 400)):
            clock.now = T0 + timedelta(days=days)
            h = secrets.token_hex(32)
            pid = prove(reg, h, clock.now)
            reg.bind(number(i), pid, op)
            reg.lookup(number(i), op)
            d = Decision(Outcome.ACCEPT, (), None, "test", "test", {}, {}, decided_at=clock.now.isoformat(), subject_handle=h)
            record = from_decision(d, inputs={"document": b"doc", "selfie": b"selfie %d" % i}, proofing_id=pid,
                                   issued_at=clock.now)
            evidence[days] = evidence_store.save(reg.engine, key.sign(record), record)
        head = reg.audit_tree_head()
        yield reg, evidence, head


def payloads(reg: Registry) -> dict[int, dict | None]:
    return {e.seq: e.payload for e in reg.audit_log.entries()}


def test_old_evidence_and_payloads_go_recent_stay_and_the_log_still_verifies(setup, signer, tmp_path):
    reg, evidence, head = setup
    now = T0 + timedelta(days=410)
    before = list(reg.audit_log.entries())
    assert len(before) == 9 and all(e.payload is not None for e in before)

    report = run_retention(reg.engine, RetentionPolicy(evidence_days=365, audit_payload_days=90), now=now)
    # evidence: the record issued 410 days ago goes, those 110 and 10 days old stay
    assert report.evidence_purged == 1 and report.evidence_cutoff == now - timedelta(days=365)
    assert evidence_store.get(reg.engine, evidence[0]) is None
    assert evidence_store.get(reg.engine, evidence[300]) is not None and evidence_store.get(reg.engine, evidence[400]) is not None
    # audit payloads: the 6 leaves of T0 and T0 + 300 days lose their payload (and with it the number); the
    # 3 of T0 + 400 days keep theirs; every leaf keeps its hash and its payload_sha256
    assert report.audit_payloads_purged == 6 and report.proofings_purged == 0
    after = list(reg.audit_log.entries())
    assert [e.payload is None for e in after] == [True] * 6 + [False] * 3
    assert [(e.leaf_hash, e.payload_hash) for e in after] == [(e.leaf_hash, e.payload_hash) for e in before]
    assert all(e.purged and e.computed_leaf_hash() == e.leaf_hash for e in after[:6])
    assert after[7].payload == before[7].payload and number(2) in json.dumps(after[7].payload)
    with reg.engine.connect() as c:
        stored = " ".join(str(v) for row in c.execute(select(audit_leaves)) for v in row)
    assert number(0) not in stored and number(1) not in stored and number(2) in stored
    # the log, signed before the purge and after, verifies end to end; proofs still hold
    assert reg.audit_log.inclusion_proof(1, head.size).verify(head.root)
    new_head = reg.audit_tree_head()
    assert new_head == head  # purging changed no hash: the same tree, the same head
    path = tmp_path / "export.jsonl"
    reg.audit_log.export(path)
    report_v = verify_log(path, signer.public_key)
    assert report_v.ok, report_v.lines()
    assert (report_v.leaves, report_v.purged_payloads, report_v.verified_size) == (9, 6, 9)

    # idempotent: the same run again (and a minute later) purges nothing
    for later in (now, now + timedelta(minutes=1)):
        again = run_retention(reg.engine, RetentionPolicy(evidence_days=365, audit_payload_days=90), now=later)
        assert (again.evidence_purged, again.audit_payloads_purged, again.purged) == (0, 0, 0)
    assert verify_log(path, signer.public_key).ok


def test_nothing_is_purged_where_the_policy_keeps_it_and_proofings_only_when_nothing_rests_on_them(setup, db_url):
    reg, _, _ = setup
    now = T0 + timedelta(days=1000)
    kept = run_retention(reg.engine, RetentionPolicy(evidence_days=None, audit_payload_days=None), now=now)
    assert kept.purged == 0 and kept.evidence_cutoff is None and kept.audit_payload_cutoff is None
    assert all(e.payload is not None for e in reg.audit_log.entries())

    # proofing decisions: a bound one stays however old; an unused one goes with its expired person token;
    # one with a still valid token stays
    stale = prove(reg, secrets.token_hex(32), T0)
    rejected = prove(reg, None, T0, Outcome.REJECT)
    reg._clock = lambda: T0
    reg.issue_person_token(stale)
    reg._clock = lambda: now
    fresh = prove(reg, secrets.token_hex(32), now - timedelta(days=2))
    with reg.engine.begin() as c:  # a person token that is still valid though its proofing is old
        c.execute(PersonToken.__table__.insert().values(token_sha256="f" * 64, handle="a" * 64, proofing_id=fresh,
                                                        expires_at=now + timedelta(minutes=5)))
    with reg.engine.connect() as c:
        count = c.execute(select(func.count()).select_from(ProofingDecision)).scalar()
    report = run_retention(reg.engine, RetentionPolicy(evidence_days=None, audit_payload_days=None, proofing_days=1), now=now)
    assert (report.proofings_purged, report.person_tokens_purged) == (2, 1) and report.notes
    assert reg.get_proofing(stale) is None and reg.get_proofing(rejected) is None
    assert reg.get_proofing(fresh) is not None
    with reg.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(ProofingDecision)).scalar() == count - 2
        bound = c.execute(text("SELECT count(*) FROM proofing_decisions p JOIN bindings b ON b.proofing_id = p.id")).scalar()
    assert bound == 3  # the three bound numbers' proofings, 1000 days old, stay
    again = run_retention(reg.engine, RetentionPolicy(evidence_days=None, audit_payload_days=None, proofing_days=1), now=now)
    assert again.purged == 0


def test_policy_refuses_nonsense():
    for bad in (0, -1, 1.5, True, "30"):
        with pytest.raises(ValueError):
            RetentionPolicy(evidence_days=bad)
    with pytest.raises(ValueError):
        run_retention("sqlite://", now=datetime(2026, 1, 1))  # a naive now


def test_cli_run_is_idempotent_and_reports_json(db_url, signer, tmp_path):
    clock = Clock()
    clock.now = long_ago = datetime(2020, 1, 1, tzinfo=UTC)  # the CLI runs as of the real time
    with Registry(db_url, clock=clock, audit_signer=signer) as reg:
        op, _ = reg.add_operator("Acme")
        reg.bind(number(1), prove(reg, secrets.token_hex(32), long_ago), op)
    first = CliRunner().invoke(retention_app, ["run", "--db", db_url, "--json"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["audit_payloads"]["purged"] == 2 and out["evidence"]["purged"] == 0 and out["proofings"]["cutoff"] is None
    second = CliRunner().invoke(retention_app, ["run", "--db", db_url, "--audit-payload-days", "90", "--evidence-days", "0"])
    assert second.exit_code == 0, second.output
    assert "audit-log payloads: purged 0" in second.output and "evidence records: kept" in second.output
    bad = CliRunner().invoke(retention_app, ["run", "--db", db_url, "--evidence-days", "-3"])
    assert bad.exit_code == 2
    engine = make_engine(db_url)
    try:
        with engine.connect() as c:
            assert c.execute(select(func.count()).select_from(audit_leaves).where(audit_leaves.c.payload.is_(None))).scalar() == 2
    finally:
        engine.dispose()
