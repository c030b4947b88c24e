"""account changes: a roster entry belongs to one account; personal-data accounts by approval.

- ``ab_user.roster_entry_id`` becomes unique (NULLs allowed): one entry of the 情報取扱者名簿
  names one person, so it may back at most one account. An instance where two accounts share
  an entry is refused with the names to fix first: the migration does not pick one for you.
- ``ab_user.access_set_by_id`` and ``ab_user.credentials_issued_at``: who requested the last
  approved change of the account's access, and when the system last issued its credentials.
- ``account_change``: requested changes of accounts that can reach personal data.

Revision ID: 0011_account_changes
Revises: 0010_lean_indexes
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_account_changes"
down_revision = "0010_lean_indexes"
branch_labels = None
depends_on = None

UNIQUE_NAME = "uq_ab_user_roster_entry_id"


def _refuse_shared_entries() -> None:
    rows = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT roster_entry_id, username FROM ab_user WHERE roster_entry_id IN ("
                " SELECT roster_entry_id FROM ab_user WHERE roster_entry_id IS NOT NULL"
                " GROUP BY roster_entry_id HAVING COUNT(*) > 1)"
                " ORDER BY roster_entry_id, username"
            )
        )
        .all()
    )
    if rows:
        shared: dict[int, list[str]] = {}
        for entry_id, username in rows:
            shared.setdefault(entry_id, []).append(username)
        listing = "; ".join(f"名簿ID {e}: {', '.join(names)}" for e, names in shared.items())
        raise RuntimeError(
            "同じ情報取扱者名簿の登録に複数のアカウントが紐付いているため、移行できません。"
            f"本人のアカウント以外の紐付けを外してから再実行してください（{listing}）"
        )


def upgrade():
    _refuse_shared_entries()
    op.create_table(
        "account_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=True),
        sa.Column("roster_entry_id", sa.Integer(), nullable=True),
        sa.Column("previous_roles", sa.String(length=200), nullable=True),
        sa.Column("previous_roster_entry_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ab_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_set_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("credentials_issued_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(UNIQUE_NAME, ["roster_entry_id"])


def downgrade():
    with op.batch_alter_table("ab_user", schema=None) as batch_op:
        batch_op.drop_constraint(UNIQUE_NAME, type_="unique")
        batch_op.drop_column("credentials_issued_at")
        batch_op.drop_column("access_set_by_id")
    op.drop_table("account_change")
