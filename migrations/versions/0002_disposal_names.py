"""disposal names: who was disposed and who acted, as the client's records name them.

The deletion certificate listed internal ids and account names (``cli:root``). A disposal
item now keeps the person's 職員番号 / 委員番号 (扶養者コード for a dependent) and name as they
were at execution, sealed under the KEK before the person row is scrubbed; a disposal request keeps the
display names (roster name, department and title) of its requester, approver and executor.
Never a number. Rows written before this revision keep NULL, which the certificate shows
as not recorded.

Revision ID: 0002_disposal_names
Revises: 0001_baseline
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_disposal_names"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("disposal_item") as batch:
        batch.add_column(sa.Column("identity_sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("disposal_request") as batch:
        batch.add_column(sa.Column("requested_by_display", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("decided_by_display", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("executed_by_display", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("disposal_request") as batch:
        batch.drop_column("executed_by_display")
        batch.drop_column("decided_by_display")
        batch.drop_column("requested_by_display")
    with op.batch_alter_table("disposal_item") as batch:
        batch.drop_column("identity_sealed")
