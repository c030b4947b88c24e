"""disposal key closure: a data disposal ends by rotating the KEK, retiring every older one
and destroying the key-ring backups that hold them, so that no restore of an older backup
brings the disposed people back. The request records the KEK version current when it was
executed (to know whether the rotation has happened, when the ending is resumed after a
crash) and, once done, what was closed, for the 削除証明書.

Data disposals executed before this revision get ``keys_closed_at`` NULL: the next
``mynumber init`` / ``run`` closes them (their old backups still held the disposed people).

Revision ID: 0014_disposal_key_closure
Revises: 0013_campaign_operators
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_disposal_key_closure"
down_revision = "0013_campaign_operators"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("disposal_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kek_version_at_execution", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("keys_closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("key_closure", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("disposal_request", schema=None) as batch_op:
        batch_op.drop_column("key_closure")
        batch_op.drop_column("keys_closed_at")
        batch_op.drop_column("kek_version_at_execution")
