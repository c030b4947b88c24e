"""intake: collection requests, status history, sealed submissions and parts, inquiries.

No column holds a plaintext number: submissions are HPKE-sealed to the intake key before they
are stored, and a request keeps only the SHA-256 of its token.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('inquiry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('staff_note', sa.Text(), nullable=True),
    sa.Column('handled_by', sa.String(length=200), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inquiry', schema=None) as batch_op:
        batch_op.create_index('ix_inquiry_status_received', ['status', 'received_at'], unique=False)

    op.create_table('collection_request',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('purpose_text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reopened', sa.Text(), nullable=False),
    sa.Column('decline_reason', sa.String(length=50), nullable=True),
    sa.Column('decline_note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('collection_request', schema=None) as batch_op:
        batch_op.create_index('ix_collection_request_person', ['person_id', 'status'], unique=False)

    op.create_table('collection_request_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_name', sa.String(length=200), nullable=False),
    sa.Column('reason_codes', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['collection_request.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('collection_request_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_request_status_request_id'), ['request_id'], unique=False)

    op.create_table('submission',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('format_version', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('receipt_no', sa.String(length=20), nullable=True),
    sa.Column('manifest_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['collection_request.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('receipt_no'),
    sa.UniqueConstraint('request_id', 'seq', name='uq_submission_request_seq')
    )
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index('ix_submission_status_received', ['status', 'received_at'], unique=False)

    op.create_table('submission_part',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('submission_id', sa.Uuid(), nullable=False),
    sa.Column('subject_ref', sa.String(length=64), nullable=False),
    sa.Column('part', sa.String(length=20), nullable=False),
    sa.Column('doc_type', sa.String(length=30), nullable=False),
    sa.Column('media_type', sa.String(length=50), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_id', 'subject_ref', 'part', 'doc_type', name='uq_submission_part_slot')
    )
    with op.batch_alter_table('submission_part', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_part_submission_id'), ['submission_id'], unique=False)



def downgrade():
    with op.batch_alter_table('submission_part', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_part_submission_id'))

    op.drop_table('submission_part')
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index('ix_submission_status_received')

    op.drop_table('submission')
    with op.batch_alter_table('collection_request_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_request_status_request_id'))

    op.drop_table('collection_request_status')
    with op.batch_alter_table('collection_request', schema=None) as batch_op:
        batch_op.drop_index('ix_collection_request_person')

    op.drop_table('collection_request')
    with op.batch_alter_table('inquiry', schema=None) as batch_op:
        batch_op.drop_index('ix_inquiry_status_received')

    op.drop_table('inquiry')
