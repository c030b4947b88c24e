"""担当事務取扱担当者: which Operators a ClientStaff user assigned to a campaign

Revision ID: 0013_campaign_operators
Revises: 0012_server_sessions
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_campaign_operators"
down_revision = "0012_server_sessions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "campaign_operator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("assigned_by_id", sa.Integer(), nullable=True),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(length=200), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaign_operator", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_operator_campaign_id", ["campaign_id"], unique=False)
        batch_op.create_index("ix_campaign_operator_user", ["user_id", "campaign_id"], unique=False)


def downgrade():
    with op.batch_alter_table("campaign_operator", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_operator_user")
        batch_op.drop_index("ix_campaign_operator_campaign_id")
    op.drop_table("campaign_operator")
