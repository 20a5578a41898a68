"""evidence records: signed, personal-data-free evidence of each decision (idproof.evidence.store)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No foreign key to proofing_decisions: evidence has its own retention (see idproof.evidence.store).
    op.create_table(
        "evidence_records",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("proofing_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("jws", sa.Text, nullable=False),
    )
    op.create_index("ix_evidence_records_created_at", "evidence_records", ["created_at"])  # retention purge
    op.create_index("ix_evidence_records_proofing_id", "evidence_records", ["proofing_id"])


def downgrade() -> None:
    op.drop_index("ix_evidence_records_proofing_id", "evidence_records")
    op.drop_index("ix_evidence_records_created_at", "evidence_records")
    op.drop_table("evidence_records")
