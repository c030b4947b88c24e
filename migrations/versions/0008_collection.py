"""collection: campaigns and letter texts, deliveries with retry state, print batches,
reminders, paper intake with double keying, verification cases, retained ID images; and the
campaign link, channel, deadline, request code and sending state on collection_request.

No column holds a plaintext number or a link token: keyed numbers are HPKE-sealed like web
submissions, rendered print files are sealed under a KEK-derived key, kept images are
encrypted under the person's DEK.

Revision ID: 0008
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=True),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('purpose_text', sa.Text(), nullable=False),
    sa.Column('four_eyes', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('letter_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'kind', name='uq_letter_template_kind')
    )
    op.create_table('print_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rendered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('posted_on', sa.Date(), nullable=True),
    sa.Column('posted_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('print_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_print_batch_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('print_batch_id', sa.Integer(), nullable=True),
    sa.Column('batch_position', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.ForeignKeyConstraint(['print_batch_id'], ['print_batch.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['collection_request.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'kind', 'seq', name='uq_delivery_once')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_campaign', ['campaign_id', 'channel', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_delivery_status_next', ['status', 'next_attempt_at'], unique=False)

    op.create_table('paper_intake',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('submission_id', sa.Uuid(), nullable=False),
    sa.Column('tracking_number', sa.String(length=50), nullable=True),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('postage_entry_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_by', sa.String(length=200), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('returned_on', sa.Date(), nullable=True),
    sa.Column('return_postage_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['postage_entry_id'], ['postage_entry.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['collection_request.id'], ),
    sa.ForeignKeyConstraint(['return_postage_id'], ['postage_entry.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_id')
    )
    with op.batch_alter_table('paper_intake', schema=None) as batch_op:
        batch_op.create_index('ix_paper_intake_request', ['request_id', 'status'], unique=False)

    op.create_table('print_batch_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('part_no', sa.Integer(), nullable=False),
    sa.Column('first_position', sa.Integer(), nullable=False),
    sa.Column('last_position', sa.Integer(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['print_batch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('batch_id', 'part_no', name='uq_print_batch_file_part')
    )
    op.create_table('retained_document',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('doc_type', sa.String(length=30), nullable=False),
    sa.Column('media_type', sa.String(length=50), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['collection_request.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('retained_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retained_document_person_id'), ['person_id'], unique=False)

    op.create_table('paper_part',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('intake_id', sa.Uuid(), nullable=False),
    sa.Column('subject_ref', sa.String(length=64), nullable=False),
    sa.Column('part', sa.String(length=20), nullable=False),
    sa.Column('doc_type', sa.String(length=30), nullable=False),
    sa.Column('media_type', sa.String(length=50), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('check', sa.LargeBinary(length=32), nullable=True),
    sa.Column('entered_by_id', sa.Integer(), nullable=True),
    sa.Column('entered_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['intake_id'], ['paper_intake.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('paper_part', schema=None) as batch_op:
        batch_op.create_index('ix_paper_part_intake', ['intake_id', 'subject_ref', 'part'], unique=False)

    op.create_table('reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('run_date', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['collection_request.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'run_date', name='uq_reminder_run'),
    sa.UniqueConstraint('request_id', 'seq', name='uq_reminder_seq')
    )
    op.create_table('verification_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('submission_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('claimed_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_by', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_by_id', sa.Integer(), nullable=True),
    sa.Column('checked_by', sa.String(length=200), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checklist', sa.Text(), nullable=False),
    sa.Column('approver_id', sa.Integer(), nullable=True),
    sa.Column('approver', sa.String(length=200), nullable=True),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reasons', sa.Text(), nullable=False),
    sa.Column('registered', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['collection_request.id'], ),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('verification_case', schema=None) as batch_op:
        batch_op.create_index('ix_verification_case_decided', ['decided_at', 'decision'], unique=False)
        batch_op.create_index('ix_verification_case_request', ['request_id', 'status'], unique=False)

    with op.batch_alter_table('collection_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('deadline', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('request_code', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reminder_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_collection_request_campaign', ['campaign_id', 'status'], unique=False)
        batch_op.create_unique_constraint('uq_collection_request_code', ['request_code'])
        batch_op.create_foreign_key('fk_collection_request_campaign', 'campaign', ['campaign_id'], ['id'])



def downgrade():
    with op.batch_alter_table('collection_request', schema=None) as batch_op:
        batch_op.drop_constraint('fk_collection_request_campaign', type_='foreignkey')
        batch_op.drop_constraint('uq_collection_request_code', type_='unique')
        batch_op.drop_index('ix_collection_request_campaign')
        batch_op.drop_column('reminder_count')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('request_code')
        batch_op.drop_column('deadline')
        batch_op.drop_column('channel')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('verification_case', schema=None) as batch_op:
        batch_op.drop_index('ix_verification_case_request')
        batch_op.drop_index('ix_verification_case_decided')

    op.drop_table('verification_case')
    op.drop_table('reminder')
    with op.batch_alter_table('paper_part', schema=None) as batch_op:
        batch_op.drop_index('ix_paper_part_intake')

    op.drop_table('paper_part')
    with op.batch_alter_table('retained_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retained_document_person_id'))

    op.drop_table('retained_document')
    op.drop_table('print_batch_file')
    with op.batch_alter_table('paper_intake', schema=None) as batch_op:
        batch_op.drop_index('ix_paper_intake_request')

    op.drop_table('paper_intake')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_status_next')
        batch_op.drop_index(batch_op.f('ix_delivery_message_id'))
        batch_op.drop_index('ix_delivery_campaign')

    op.drop_table('delivery')
    with op.batch_alter_table('print_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_print_batch_campaign_id'))

    op.drop_table('print_batch')
    op.drop_table('letter_template')
    op.drop_table('campaign')
