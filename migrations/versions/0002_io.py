"""io: CSV layouts (with the two defaults), name-change history, portal tickets, export manifests.

``export_item`` is audit data like ``audit_event``: triggers refuse UPDATE and DELETE. The two
default layouts are the client's formats from issue 3 (spec 5.4-3); they can be edited in the
portal but not deleted.

Revision ID: 0002
Revises: 0007
Create Date: 2026-11-28
"""
import datetime as dt
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0007'
branch_labels = None
depends_on = None

# Written out here, not imported: a migration must not change when the code does.
DEFAULT_LAYOUTS = [
    {
        "name": "staff",
        "kind": "staff",
        "columns": [
            ["code", "職員番号"],
            ["name", "職員氏名"],
            ["kubun", "本人区分"],
            ["dependent_code", "扶養者コード"],
            ["birth_date", "生年月日"],
            ["number", "マイナンバー"],
        ],
    },
    {
        "name": "external",
        "kind": "external",
        "columns": [
            ["code", "委員番号"],
            ["name", "氏名"],
            ["name_kana", "氏名カナ"],
            ["birth_date", "生年月日"],
            ["address", "住所"],
            ["number", "マイナンバー"],
        ],
    },
]


def upgrade():
    op.create_table('export_item',
    sa.Column('export_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('export_id', 'position')
    )

    layout = op.create_table('export_layout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('columns', sa.Text(), nullable=False),
    sa.Column('date_format', sa.String(length=20), nullable=False),
    sa.Column('encoding', sa.String(length=20), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('name_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('old_name', sa.String(length=200), nullable=False),
    sa.Column('old_kana', sa.String(length=200), nullable=True),
    sa.Column('new_name', sa.String(length=200), nullable=False),
    sa.Column('new_kana', sa.String(length=200), nullable=True),
    sa.Column('changed_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('name_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_name_change_person_id'), ['person_id'], unique=False)

    op.create_table('io_ticket',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('layout_id', sa.Integer(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['layout_id'], ['export_layout.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )

    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        layout,
        [
            {
                "name": item["name"],
                "kind": item["kind"],
                "columns": json.dumps(item["columns"], ensure_ascii=False),
                "date_format": "slash",
                "encoding": "utf-8-sig",
                "builtin": True,
                "created_at": now,
                "updated_at": now,
                "updated_by": "migration 0002",
            }
            for item in DEFAULT_LAYOUTS
        ],
    )
    _append_only("export_item")


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE (the PostgreSQL function comes from revision 0001)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION mnv_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS export_item_append_only ON export_item")
    else:
        op.execute("DROP TRIGGER IF EXISTS export_item_no_update")
        op.execute("DROP TRIGGER IF EXISTS export_item_no_delete")
    op.drop_table('io_ticket')
    with op.batch_alter_table('name_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_name_change_person_id'))

    op.drop_table('name_change')
    op.drop_table('export_layout')
    op.drop_table('export_item')
