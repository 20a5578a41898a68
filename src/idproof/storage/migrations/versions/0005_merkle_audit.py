"""merkle audit log: audit_leaves, audit_nodes, audit_tree_heads (idproof.audit.log), append-only in the database

Revision ID: 0005
Revises: 0004

The tables are ``idproof.audit.log``'s (on ``Base.metadata``; tests/test_registry.py compares them with this
migration). As for ``audit_log`` (0002), the database itself refuses to rewrite history: no DELETE or TRUNCATE
on any of the three tables, no UPDATE of nodes or tree heads, and on a leaf only the retention purge
(``payload`` set to NULL, every other column unchanged: the leaf keeps ``payload_hash`` and so its hash).
Someone who owns the database can still drop the triggers: that is what the signed tree heads and
``idproof audit verify`` catch.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid itself
_TS = sa.DateTime(timezone=True)

_LEAF_UNCHANGED = (
    "NEW.seq = OLD.seq AND NEW.leaf_hash = OLD.leaf_hash AND NEW.created_at = OLD.created_at "
    "AND NEW.event = OLD.event AND NEW.handle IS NOT DISTINCT FROM OLD.handle "
    "AND NEW.payload_hash IS NOT DISTINCT FROM OLD.payload_hash"
)


def upgrade() -> None:
    op.create_table(
        "audit_leaves",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("handle", sa.String(64)),
        sa.Column("payload", sa.JSON(none_as_null=True)),  # purgeable (retention); never in the leaf itself
        sa.Column("payload_hash", sa.LargeBinary(32)),
    )
    op.create_index("ix_audit_leaves_handle", "audit_leaves", ["handle"])  # a person's entries
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_tree_heads",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION idproof_merkle_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        op.execute(
            "CREATE FUNCTION idproof_audit_leaves_purge_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF NEW.payload IS NULL AND {_LEAF_UNCHANGED} THEN RETURN NEW; END IF; "
            "RAISE EXCEPTION 'audit_leaves is append-only (retention may only purge a payload)'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_leaves_purge_only BEFORE UPDATE ON audit_leaves "
            "FOR EACH ROW EXECUTE FUNCTION idproof_audit_leaves_purge_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves "
            "FOR EACH ROW EXECUTE FUNCTION idproof_merkle_append_only()"
        )
        for table in ("audit_nodes", "audit_tree_heads"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION idproof_merkle_append_only()"
            )
        for table in ("audit_leaves", "audit_nodes", "audit_tree_heads"):
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION idproof_merkle_append_only()"
            )
    else:
        unchanged = _LEAF_UNCHANGED.replace("IS NOT DISTINCT FROM", "IS")
        op.execute(
            "CREATE TRIGGER audit_leaves_purge_only BEFORE UPDATE ON audit_leaves "
            f"WHEN NOT (NEW.payload IS NULL AND {unchanged}) "
            "BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only (retention may only purge a payload)'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves "
            "BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only'); END"
        )
        for table in ("audit_nodes", "audit_tree_heads"):
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    op.drop_table("audit_tree_heads")  # drops its triggers with it
    op.drop_table("audit_nodes")
    op.drop_index("ix_audit_leaves_handle", "audit_leaves")
    op.drop_table("audit_leaves")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION idproof_audit_leaves_purge_only()")
        op.execute("DROP FUNCTION idproof_merkle_append_only()")
