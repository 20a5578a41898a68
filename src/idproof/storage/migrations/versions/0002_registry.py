"""registry: operators, identities, bindings, person tokens, audit log, operator events

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("proofing_decisions") as b:
        b.add_column(sa.Column("subject_handle", sa.String(64)))
        b.add_column(sa.Column("operator_id", sa.String(36)))

    op.create_table(
        "operators",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("role IN ('operator', 'auditor')", name="ck_operators_role"),
    )
    op.create_table("identities", sa.Column("handle", sa.String(64), primary_key=True))
    op.create_table(
        "bindings",
        sa.Column("number", sa.String(16), primary_key=True),
        sa.Column("handle", sa.String(64), sa.ForeignKey("identities.handle"), nullable=False),
        sa.Column("operator_id", sa.String(36), sa.ForeignKey("operators.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bound_at", _TS, nullable=False),
        sa.Column("proofing_id", sa.String(36), sa.ForeignKey("proofing_decisions.id"), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="ck_bindings_status"),
    )
    op.create_index("ix_bindings_handle", "bindings", ["handle"])
    op.create_index("ix_bindings_operator_id", "bindings", ["operator_id"])
    op.create_table(
        "person_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("proofing_id", sa.String(36), sa.ForeignKey("proofing_decisions.id"), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("ix_person_tokens_expires_at", "person_tokens", ["expires_at"])
    op.create_table(
        "audit_log",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(36), nullable=False),
        sa.Column("number", sa.String(16)),
        sa.Column("handle", sa.String(64)),
        sa.Column("details", sa.JSON, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "operator_events",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("operator_id", sa.String(36), sa.ForeignKey("operators.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_operator_events_operator_id_id", "operator_events", ["operator_id", "id"])

    # The audit log is append-only in the database itself, not just by convention in the code.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION idproof_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION idproof_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION idproof_audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    op.drop_table("operator_events")  # drops its index and (SQLite) triggers with it
    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION idproof_audit_log_append_only()")
    op.drop_table("person_tokens")
    op.drop_table("bindings")
    op.drop_table("identities")
    op.drop_table("operators")
    with op.batch_alter_table("proofing_decisions") as b:
        b.drop_column("operator_id")
        b.drop_column("subject_handle")
