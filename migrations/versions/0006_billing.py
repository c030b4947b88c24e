"""billing: unit prices by effective date, billable events counted once, the carrier's fee
table and the postage ledger.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('billable_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('subject_key', sa.String(length=200), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=True),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('category', 'subject_key', name='uq_billable_event_once')
    )
    with op.batch_alter_table('billable_event', schema=None) as batch_op:
        batch_op.create_index('ix_billable_event_month', ['month', 'category'], unique=False)

    op.create_table('postage_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=10), nullable=False),
    sa.Column('carrier', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=100), nullable=False),
    sa.Column('cost_yen', sa.Integer(), nullable=False),
    sa.Column('posted_on', sa.Date(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=True),
    sa.Column('tracking_number', sa.String(length=50), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('postage_entry', schema=None) as batch_op:
        batch_op.create_index('ix_postage_entry_month', ['month', 'direction'], unique=False)

    op.create_table('postage_rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('carrier', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=100), nullable=False),
    sa.Column('price_yen', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('submitted_to_client_on', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('carrier', 'method', 'effective_from', name='uq_postage_rate_version')
    )
    op.create_table('unit_price',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('price_yen', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('category', 'effective_from', name='uq_unit_price_version')
    )


def downgrade():
    op.drop_table('unit_price')
    op.drop_table('postage_rate')
    with op.batch_alter_table('postage_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_postage_entry_month')

    op.drop_table('postage_entry')
    with op.batch_alter_table('billable_event', schema=None) as batch_op:
        batch_op.drop_index('ix_billable_event_month')

    op.drop_table('billable_event')
