"""outbox: jobs and mails promised by a transaction, dispatched after its commit.

Ids only (a job's import path and JSON ids): no personal data, no number.

Revision ID: 0009_outbox
Revises: 0009_desk
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_outbox'
down_revision = '0009_desk'  # after main's issue 7 chain; the lead re-chains at merge
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('args', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_index('ix_outbox_state_next', 'outbox_message', ['state', 'next_attempt_at'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_state_next', table_name='outbox_message')
    op.drop_table('outbox_message')
