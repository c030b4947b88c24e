"""server-side sign-in state: a session version per user and the last TOTP step used.

- ``ab_user.session_version``: copied into the session cookie at sign-in and compared on every
  request. Logout and lock raise it, which ends every session of that user at once (a saved
  cookie no longer works).
- ``ab_user.totp_last_step``: the TOTP time step (30 s counter) of the last accepted code. A
  code of the same or an earlier step is refused, so an observed code cannot be replayed.

Revision ID: 0012_server_sessions
Revises: 0011_account_changes
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_server_sessions"
down_revision = "0011_account_changes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ab_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("ab_user", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("session_version")
