"""proofing decisions

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proofing_decisions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("target_fmr", sa.Float),
        sa.Column("scorer", sa.String(128), nullable=False),
        sa.Column("calibration_version", sa.String(64), nullable=False),
        sa.Column("model_versions", sa.JSON, nullable=False),
        sa.Column("timings_ms", sa.JSON, nullable=False),
        sa.Column("code_version", sa.String(32), nullable=False),
    )
    op.create_index("ix_proofing_decisions_decided_at", "proofing_decisions", ["decided_at"])


def downgrade() -> None:
    op.drop_index("ix_proofing_decisions_decided_at", "proofing_decisions")
    op.drop_table("proofing_decisions")
