"""target uploads: a target list uploaded in the portal waits, sealed, for the job that
checks and loads it (the page shows the job's progress), then holds its sealed findings.

Revision ID: 0006_target_uploads
Revises: 0005_tombstone_registered
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_target_uploads"
down_revision = "0005_tombstone_registered"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "target_upload",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_target_upload_campaign_id", "target_upload", ["campaign_id"])


def downgrade() -> None:
    op.drop_index("ix_target_upload_campaign_id", table_name="target_upload")
    op.drop_table("target_upload")
