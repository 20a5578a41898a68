"""A small repository over the database; migrations run on open so a fresh file just works."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from platformdirs import user_data_dir
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from idproof.decision import Decision
from idproof.storage.models import ProofingDecision

MIGRATIONS = Path(__file__).parent / "migrations"


def default_url() -> str:
    """$IDPROOF_DB, else an SQLite file in the user's data directory."""
    if url := os.environ.get("IDPROOF_DB"):
        return url
    path = Path(user_data_dir("idproof")) / "idproof.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def engine_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs use psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **engine_kw) -> Engine:
    engine = create_engine(engine_url(url), future=True, **engine_kw)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self.engine = make_engine(self.url)
        migrate(self.engine)
        from idproof.audit.log import MerkleLog  # here, not at the top: audit.log imports this package

        self.audit_log = MerkleLog(self.engine)

    def record_decision(self, d: Decision) -> str:
        record_id = str(uuid.uuid4())
        row = ProofingDecision(
            id=record_id,
            decided_at=datetime.fromisoformat(d.decided_at),
            outcome=d.outcome.value,
            reasons=list(d.reasons),
            score=d.score,
            threshold=d.threshold,
            target_fmr=d.match.target_fmr if d.match else None,
            scorer=d.scorer,
            calibration_version=d.calibration_version,
            model_versions=d.model_versions,
            timings_ms=d.timings_ms,
            code_version=d.code_version,
            subject_handle=d.subject_handle,
        )
        with Session(self.engine) as s, s.begin():
            s.add(row)
            s.flush()
            # the decision's leaf in the tamper-evident audit log, in the same transaction (outcome only)
            self.audit_log.append(s.connection(), "proofing.decision", d.subject_handle,
                                          {"proofing_id": record_id, "outcome": d.outcome.value, "reasons": list(d.reasons)})
        return record_id

    def get_decision(self, record_id: str) -> ProofingDecision | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(ProofingDecision, record_id)

    def count_decisions(self) -> int:
        with Session(self.engine) as s:
            return s.scalar(select(func.count()).select_from(ProofingDecision)) or 0
