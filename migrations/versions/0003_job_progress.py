"""job progress: a long job (a print batch) reports how far it has got on its outbox row.

``outbox_message`` gains ``progress_done``, ``progress_total`` and ``progress_at``, written by
the job as it goes (inline or in an RQ worker) and read by the portal's progress bar.

Revision ID: 0003_job_progress
Revises: 0002_disposal_names
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_job_progress"
down_revision = "0002_disposal_names"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("progress_done", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("progress_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("progress_at")
        batch.drop_column("progress_total")
        batch.drop_column("progress_done")
