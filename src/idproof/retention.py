"""Retention: how long evidence records, audit-log payloads and (optionally) proofing decisions are kept.

``run_retention(db, RetentionPolicy(...))`` (and ``idproof retention run``) purges, each by its own cutoff
(``now`` minus the policy's days, UTC):

- **evidence records** issued before the cutoff (``idproof.evidence.store.purge_older_than``);
- **audit-log payloads** of leaves appended before the cutoff (``MerkleLog.purge_payloads``): the payload
  becomes NULL, the leaf keeps ``payload_sha256`` and so its hash, the tree, every signed tree head and every
  proof stay valid, and ``idproof audit verify`` stays green (it counts the purged payloads);
- **proofing decisions** decided before the cutoff, only when ``proofing_days`` is set (off by default), and
  only those that no binding rests on (``bindings.proofing_id``) and no unexpired person token points to;
  the expired person tokens of the purged proofings go with them. Bindings are live data and are never
  touched; nor are the append-only ``audit_log`` rows or any Merkle leaf, node or tree head.

Every step is idempotent: a second run with the same (or a slightly later) ``now`` purges nothing more. Each
step is its own transaction; a failure in one leaves the earlier steps done and is raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from sqlalchemy import delete, exists, select
from sqlalchemy.engine import Engine

__all__ = ["RetentionPolicy", "RetentionReport", "app", "run_retention"]


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep each kind of data; None keeps it forever (that purge is off)."""

    evidence_days: int | None = 365
    audit_payload_days: int | None = 90
    proofing_days: int | None = None

    def __post_init__(self) -> None:
        for name in ("evidence_days", "audit_payload_days", "proofing_days"):
            days = getattr(self, name)
            if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 1):
                raise ValueError(f"{name} must be a whole number of days >= 1, or None to keep forever (got {days!r})")


@dataclass(frozen=True)
class RetentionReport:
    now: datetime
    evidence_cutoff: datetime | None
    evidence_purged: int
    audit_payload_cutoff: datetime | None
    audit_payloads_purged: int
    proofing_cutoff: datetime | None
    proofings_purged: int
    person_tokens_purged: int
    notes: list[str] = field(default_factory=list)

    @property
    def purged(self) -> int:
        return self.evidence_purged + self.audit_payloads_purged + self.proofings_purged + self.person_tokens_purged

    def to_json(self) -> dict[str, Any]:
        def t(x: datetime | None) -> str | None:
            return x.isoformat().replace("+00:00", "Z") if x is not None else None

        return {
            "now": t(self.now),
            "evidence": {"cutoff": t(self.evidence_cutoff), "purged": self.evidence_purged},
            "audit_payloads": {"cutoff": t(self.audit_payload_cutoff), "purged": self.audit_payloads_purged},
            "proofings": {"cutoff": t(self.proofing_cutoff), "purged": self.proofings_purged,
                          "person_tokens_purged": self.person_tokens_purged},
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        def what(n: int, cutoff: datetime | None, noun: str, when: str) -> str:
            if cutoff is None:
                return f"{noun}: kept (no retention period set)"
            return f"{noun}: purged {n} ({when} before {cutoff.isoformat().replace('+00:00', 'Z')})"

        out = [
            what(self.evidence_purged, self.evidence_cutoff, "evidence records", "issued"),
            what(self.audit_payloads_purged, self.audit_payload_cutoff, "audit-log payloads", "appended")
            + (" - leaf hashes kept, the log still verifies" if self.audit_payload_cutoff is not None else ""),
            what(self.proofings_purged, self.proofing_cutoff, "proofing decisions", "decided")
            + (f", {self.person_tokens_purged} expired person token(s)" if self.proofing_cutoff is not None else ""),
        ]
        return out + [f"note: {n}" for n in self.notes]


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def run_retention(engine_or_url: Engine | str, policy: RetentionPolicy | None = None,
                  now: datetime | None = None) -> RetentionReport:
    """Apply ``policy`` (default ``RetentionPolicy()``: evidence 365 days, audit payloads 90 days, proofings
    kept) to the database, as of ``now`` (aware; default the current time). ``engine_or_url``: an Engine (left
    open) or a URL (migrated first, like every other entry point, and disposed after)."""
    from idproof.audit.log import MerkleLog
    from idproof.evidence.store import purge_older_than
    from idproof.storage.store import make_engine, migrate

    policy = policy or RetentionPolicy()
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    now = now.astimezone(UTC)
    owns = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        if owns:
            migrate(engine)
        ev_cut = _cutoff(now, policy.evidence_days)
        au_cut = _cutoff(now, policy.audit_payload_days)
        pr_cut = _cutoff(now, policy.proofing_days)
        evidence = purge_older_than(engine, ev_cut) if ev_cut is not None else 0
        payloads = MerkleLog(engine).purge_payloads(au_cut) if au_cut is not None else 0
        proofings, tokens = _purge_proofings(engine, pr_cut, now) if pr_cut is not None else (0, 0)
    finally:
        if owns:
            engine.dispose()
    notes = []
    if pr_cut is not None:
        notes.append("proofing decisions that a binding rests on, or that an unexpired person token points to, "
                     "are kept whatever their age")
    return RetentionReport(now, ev_cut, evidence, au_cut, payloads, pr_cut, proofings, tokens, notes)


def _purge_proofings(engine: Engine, cutoff: datetime, now: datetime) -> tuple[int, int]:
    """Delete proofing decisions decided before ``cutoff`` that no binding references and no unexpired person
    token points to, with their (expired) person tokens; returns (proofings, tokens) deleted."""
    from idproof.storage.models import NumberBinding, PersonToken, ProofingDecision

    old = (
        select(ProofingDecision.id)
        .where(ProofingDecision.decided_at < cutoff)
        .where(~exists().where(NumberBinding.proofing_id == ProofingDecision.id))
        .where(~exists().where(PersonToken.proofing_id == ProofingDecision.id, PersonToken.expires_at >= now))
    )
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # one writer from the start: nothing binds one of them meanwhile
        ids = list(conn.execute(old).scalars())
        tokens = proofings = 0
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            tokens += conn.execute(delete(PersonToken).where(PersonToken.proofing_id.in_(chunk))).rowcount or 0
            proofings += conn.execute(delete(ProofingDecision).where(ProofingDecision.id.in_(chunk))).rowcount or 0
    return proofings, tokens


# --- `idproof retention` ------------------------------------------------------------------------------------

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Retention: purge old evidence records and audit-log payloads (leaf hashes stay).")


@app.callback()
def _group() -> None:
    """Retention: purge old evidence records and audit-log payloads (leaf hashes stay)."""


def _days(n: int, what: str) -> int | None:
    if n < 0:
        typer.secho(f"error: --{what}-days must be 0 (keep forever) or more", fg="red", err=True)
        raise typer.Exit(2)
    return n or None


@app.command("run")
def retention_cli(
    db: Annotated[str | None, typer.Option("--db", envvar="IDPROOF_DB", help="Database URL (default: IDPROOF_DB, "
                                                                              "else the SQLite file in your user data directory).")] = None,
    evidence_days: Annotated[int, typer.Option("--evidence-days", help="Keep evidence records this many days (0: forever).")] = 365,
    audit_payload_days: Annotated[int, typer.Option("--audit-payload-days", help="Keep audit-log payloads this many "
                                                    "days (0: forever); the leaves and their hashes are always kept.")] = 90,
    proofing_days: Annotated[int, typer.Option("--proofing-days", help="Keep proofing decisions this many days "
                                               "(0, the default: forever); one a binding rests on is always kept.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Enforce the retention policy once (idempotent: run it from cron; a second run purges nothing more)."""
    from idproof.storage.store import default_url

    policy = RetentionPolicy(_days(evidence_days, "evidence"), _days(audit_payload_days, "audit-payload"),
                             _days(proofing_days, "proofing"))
    report = run_retention(db or default_url(), policy)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            typer.echo(line)
