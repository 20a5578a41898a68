"""sealed templates: which (handle, version) was issued, a salted hash of it, and whether it is revoked

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

# The table's ORM model lives in idproof.sealed.store; importing it here puts it on Base.metadata wherever the
# migrations have run, so a schema comparison (tests/test_registry.py) sees the models as the migrations made them.
import idproof.sealed.store  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # No template, vector or blob column: the template exists only inside the person's sealed copy.
    op.create_table(
        "sealed_templates",
        sa.Column("handle", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("blob_hash", sa.String(64), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
        sa.CheckConstraint("version >= 1", name="ck_sealed_templates_version"),
    )


def downgrade() -> None:
    op.drop_table("sealed_templates")
