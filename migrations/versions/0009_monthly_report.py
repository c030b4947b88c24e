"""monthly usage report: one row per month (due date, notes, generated PDF and its digest),
its e-mail deliveries, and the planned volumes (想定人数, spec 別添) seeded with the spec's
figures.

Revision ID: 0009_monthly_report
Revises: 0005
Create Date: 2026-11-28
"""
import datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_monthly_report'
down_revision = '0005'
branch_labels = None
depends_on = None

# 別添 ＜想定人数＞: (fiscal year, period, category, households, people); None is「-」.
PLANNED = [
    (2022, '2022年8月～2023年3月', 'employee_kit', 200, None),
    (2022, '2022年8月～2023年3月', 'employee_smartphone', 200, 310),
    (2022, '2022年8月～2023年3月', 'external_kit', 170, 170),
    (2022, '2022年8月～2023年3月', 'external_reminder', 30, 30),
    (2022, '2022年8月～2023年3月', 'external_smartphone', 60, 60),
    (2022, '2022年8月～2023年3月', 'external_postal', 100, 100),
    (2023, '2023年4月～2024年3月', 'employee_kit', 450, None),
    (2023, '2023年4月～2024年3月', 'employee_smartphone', 450, 700),
    (2023, '2023年4月～2024年3月', 'external_kit', 250, 250),
    (2023, '2023年4月～2024年3月', 'external_reminder', 50, 50),
    (2023, '2023年4月～2024年3月', 'external_smartphone', 90, 90),
    (2023, '2023年4月～2024年3月', 'external_postal', 150, 150),
    (2024, '2024年4月～2024年8月', 'employee_kit', 270, None),
    (2024, '2024年4月～2024年8月', 'employee_smartphone', 270, 420),
    (2024, '2024年4月～2024年8月', 'external_kit', 120, 120),
    (2024, '2024年4月～2024年8月', 'external_reminder', 20, 20),
    (2024, '2024年4月～2024年8月', 'external_smartphone', 40, 40),
    (2024, '2024年4月～2024年8月', 'external_postal', 70, 70),
    # ２．マイナンバー保管人数（収集開始時点（2022年7月末時点））
    (2022, '収集開始時点（2022年7月末時点）', 'stored_employee', 2100, 3800),
    (2022, '収集開始時点（2022年7月末時点）', 'stored_external', 3000, 3000),
]


def upgrade():
    op.create_table('monthly_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('notes_updated_by', sa.String(length=200), nullable=True),
    sa.Column('notes_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('generated_by', sa.String(length=200), nullable=True),
    sa.Column('snapshot', sa.Text(), nullable=True),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=True),
    sa.Column('auto_claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('month')
    )
    op.create_table('monthly_report_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['monthly_report.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('monthly_report_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monthly_report_delivery_report_id'), ['report_id'], unique=False)

    planned = op.create_table('planned_volume',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('period_label', sa.String(length=100), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('households', sa.Integer(), nullable=True),
    sa.Column('people', sa.Integer(), nullable=True),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fiscal_year', 'category', name='uq_planned_volume')
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    op.bulk_insert(planned, [
        {'fiscal_year': y, 'period_label': p, 'category': c, 'households': h, 'people': n,
         'updated_by': 'migration', 'updated_at': now}
        for y, p, c, h, n in PLANNED
    ])


def downgrade():
    op.drop_table('planned_volume')
    with op.batch_alter_table('monthly_report_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monthly_report_delivery_report_id'))
    op.drop_table('monthly_report_delivery')
    op.drop_table('monthly_report')
