"""report versions: a sent monthly report never changes; corrections are new versions.

``monthly_report`` gains the current version number and the 請求書 PDF;
``monthly_report_version`` keeps every issued version (period with its cut-off, figures, PDF,
invoice, reason for a correction).

Revision ID: 0004_report_versions
Revises: 0003_job_progress
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_report_versions"
down_revision = "0003_job_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monthly_report") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("invoice_pdf", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("invoice_sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "monthly_report_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("invoice_pdf", sa.LargeBinary(), nullable=True),
        sa.Column("invoice_sha256", sa.String(length=64), nullable=True),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["monthly_report.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "version", name="uq_report_version"),
    )
    op.create_index(
        "ix_monthly_report_version_report_id",
        "monthly_report_version",
        ["report_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_monthly_report_version_report_id", table_name="monthly_report_version")
    op.drop_table("monthly_report_version")
    with op.batch_alter_table("monthly_report") as batch:
        batch.drop_column("invoice_sha256")
        batch.drop_column("invoice_pdf")
        batch.drop_column("version")
