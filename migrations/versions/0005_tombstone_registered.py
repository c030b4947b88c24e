"""tombstone registration date: a disposed person keeps when their number was registered.

``person.number_registered_at`` is copied from the number's first record at disposal, so a
month's storage counts recomputed after a disposal stay what they were. Tombstones made
before it get their creation date, the best date left (what the counts used until now).

Revision ID: 0005_tombstone_registered
Revises: 0004_report_versions
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_tombstone_registered"
down_revision = "0004_report_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.add_column(sa.Column("number_registered_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE person SET number_registered_at = created_at WHERE disposed_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_column("number_registered_at")
