"""inquiry desk (source, status 受付→対応中→回答済→完了, assignee, response, history) and the
情報管理体制図 versions

Revision ID: 0009_desk
Revises: 0009_monthly_report
Create Date: 2026-11-28 10:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0009_desk"
down_revision = "0009_monthly_report"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inquiry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=20), nullable=False, server_default="subject")
        )
        batch_op.add_column(sa.Column("filed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("assignee_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("response", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key("fk_inquiry_filed_by", "ab_user", ["filed_by_id"], ["id"])
        batch_op.create_foreign_key("fk_inquiry_assignee", "ab_user", ["assignee_id"], ["id"])
    # The old statuses: open → 受付; answered and closed keep their names.
    op.execute("UPDATE inquiry SET status = 'received' WHERE status = 'open'")
    op.create_table(
        "inquiry_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inquiry_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiry.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inquiry_action", schema=None) as batch_op:
        batch_op.create_index("ix_inquiry_action_inquiry_id", ["inquiry_id"], unique=False)
    op.create_table(
        "handling_chart",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("responsible", sa.String(length=200), nullable=False),
        sa.Column("handlers", sa.Text(), nullable=False),
        sa.Column("contacts", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_by_name", sa.String(length=200), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("handling_chart")
    with op.batch_alter_table("inquiry_action", schema=None) as batch_op:
        batch_op.drop_index("ix_inquiry_action_inquiry_id")
    op.drop_table("inquiry_action")
    op.execute("UPDATE inquiry SET status = 'open' WHERE status IN ('received', 'in_progress')")
    with op.batch_alter_table("inquiry", schema=None) as batch_op:
        batch_op.drop_constraint("fk_inquiry_assignee", type_="foreignkey")
        batch_op.drop_constraint("fk_inquiry_filed_by", type_="foreignkey")
        for column in (
            "updated_at",
            "closed_at",
            "first_response_at",
            "response",
            "assignee_name",
            "assignee_id",
            "filed_by_id",
            "source",
        ):
            batch_op.drop_column(column)
