"""credentials issued to: who was last shown an account's one-time password.

- ``ab_user.credentials_issued_to_id``: the approver who was shown the account's one-time
  password when the system last issued it (NULL when the server's shell printed it, and for
  every account issued before this revision: nobody is known to have seen those).

Revision ID: 0015_credentials_issued_to
Revises: 0014_disposal_key_closure
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_credentials_issued_to"
down_revision = "0014_disposal_key_closure"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ab_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credentials_issued_to_id", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("ab_user", schema=None) as batch_op:
        batch_op.drop_column("credentials_issued_to_id")
