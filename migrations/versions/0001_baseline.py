"""baseline: the whole schema of MyNumber Vault, as one revision.

Every table (ours and Flask-AppBuilder's security tables), index, constraint and server
default, the append-only triggers on the audit tables, and the rows an instance starts with
(the two default CSV layouts, the retention rules, the spec's 想定人数). It replaces the
revisions written while the system was built: no instance had been deployed, and git keeps
how the schema came to be. A later change of the schema is a new revision after this one,
named ``NNNN_what_it_does`` so that the file order is the chain.

No column holds a plaintext My Number: numbers are stored under the person's data key (DEK)
with a keyed blind index; web and paper submissions are HPKE-sealed to the intake key; a
collection request keeps only the SHA-256 of its token.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-08
"""

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# The seed rows are written out here, not imported: a migration must not change when the
# code does.

# The client's two CSV formats (spec 5.4-3); they can be edited in the portal, not deleted.
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

# The default retention rules (editable: `mynumber retention set-rule`):
# (kind, anchor, years, follow_household, label).
RETENTION_RULES = [
    (
        "employee",
        "jan10_after",
        7,
        False,
        "扶養控除等申告書の保存期間（退職年の翌年1月10日から7年）",
    ),
    (
        "dependent",
        "jan10_after",
        7,
        True,
        "扶養者（役職員）の保存期間に従う（扶養から外れた場合はその翌年1月10日から7年）",
    ),
    (
        "external",
        "jan31_after",
        0,
        False,
        "支払調書の提出後（委嘱終了年の翌年1月31日。継続の見込みがあれば終了日を入れない）",
    ),
]

# 別添 ＜想定人数＞: (fiscal year, period, category, households, people); None is「-」.
PLANNED_VOLUMES = [
    (2022, "2022年8月～2023年3月", "employee_kit", 200, None),
    (2022, "2022年8月～2023年3月", "employee_smartphone", 200, 310),
    (2022, "2022年8月～2023年3月", "external_kit", 170, 170),
    (2022, "2022年8月～2023年3月", "external_reminder", 30, 30),
    (2022, "2022年8月～2023年3月", "external_smartphone", 60, 60),
    (2022, "2022年8月～2023年3月", "external_postal", 100, 100),
    (2023, "2023年4月～2024年3月", "employee_kit", 450, None),
    (2023, "2023年4月～2024年3月", "employee_smartphone", 450, 700),
    (2023, "2023年4月～2024年3月", "external_kit", 250, 250),
    (2023, "2023年4月～2024年3月", "external_reminder", 50, 50),
    (2023, "2023年4月～2024年3月", "external_smartphone", 90, 90),
    (2023, "2023年4月～2024年3月", "external_postal", 150, 150),
    (2024, "2024年4月～2024年8月", "employee_kit", 270, None),
    (2024, "2024年4月～2024年8月", "employee_smartphone", 270, 420),
    (2024, "2024年4月～2024年8月", "external_kit", 120, 120),
    (2024, "2024年4月～2024年8月", "external_reminder", 20, 20),
    (2024, "2024年4月～2024年8月", "external_smartphone", 40, 40),
    (2024, "2024年4月～2024年8月", "external_postal", 70, 70),
    # ２．マイナンバー保管人数（収集開始時点（2022年7月末時点））
    (2022, "収集開始時点（2022年7月末時点）", "stored_employee", 2100, 3800),
    (2022, "収集開始時点（2022年7月末時点）", "stored_external", 3000, 3000),
]

# Audit data is append-only in the database itself: these triggers refuse UPDATE and DELETE,
# so tampering needs someone who drops them first (and the hash chain still shows it).
APPEND_ONLY_TABLES = ("audit_event", "audit_checkpoint", "export_item")

APPEND_ONLY_PG = """
CREATE OR REPLACE FUNCTION mnv_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade():
    # -- 情報取扱者名簿 (the handler roster): an account may point at its entry
    op.create_table(
        "handler_roster_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("nationality", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    # -- Portal accounts: Flask-AppBuilder's security tables, and on ab_user the roster entry
    # (unique: one entry names one person, so it backs at most one account), the TOTP secret
    # (sealed under the KEK), the lock, the session version and the last TOTP step used
    op.create_table(
        "ab_permission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "ab_view_menu",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "ab_permission_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("permission_id", sa.Integer(), nullable=False),
        sa.Column("view_menu_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["permission_id"], ["ab_permission.id"]),
        sa.ForeignKeyConstraint(["view_menu_id"], ["ab_view_menu.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("permission_id", "view_menu_id"),
    )
    op.create_index("idx_permission_id", "ab_permission_view", ["permission_id"], unique=False)
    op.create_index("idx_view_menu_id", "ab_permission_view", ["view_menu_id"], unique=False)
    op.create_table(
        "ab_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "ab_permission_view_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("permission_view_id", sa.Integer(), nullable=True),
        sa.Column("role_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["permission_view_id"], ["ab_permission_view.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["role_id"], ["ab_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("permission_view_id", "role_id"),
    )
    op.create_index(
        "idx_permission_view_id", "ab_permission_view_role", ["permission_view_id"], unique=False
    )
    op.create_index("idx_role_id", "ab_permission_view_role", ["role_id"], unique=False)
    op.create_table(
        "ab_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=150), nullable=True),
        sa.Column("description", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "ab_group_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("role_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["ab_group.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["role_id"], ["ab_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "role_id"),
    )
    op.create_index("idx_group_id", "ab_group_role", ["group_id"], unique=False)
    op.create_index("idx_group_role_id", "ab_group_role", ["role_id"], unique=False)
    op.create_table(
        "ab_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=64), nullable=False),
        sa.Column("last_name", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("password", sa.String(length=256), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("last_login", sa.DateTime(), nullable=True),
        sa.Column("login_count", sa.Integer(), nullable=True),
        sa.Column("fail_login_count", sa.Integer(), nullable=True),
        sa.Column("created_on", sa.DateTime(), nullable=True),
        sa.Column("changed_on", sa.DateTime(), nullable=True),
        sa.Column("created_by_fk", sa.Integer(), nullable=True),
        sa.Column("changed_by_fk", sa.Integer(), nullable=True),
        sa.Column("roster_entry_id", sa.Integer(), nullable=True),
        sa.Column("totp_secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("totp_enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "password_change_required",
            sa.Boolean(),
            server_default=sa.false(),
            nullable=False,
        ),
        sa.Column("access_set_by_id", sa.Integer(), nullable=True),
        sa.Column("credentials_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("credentials_issued_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["changed_by_fk"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["created_by_fk"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["roster_entry_id"], ["handler_roster_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("roster_entry_id", name="uq_ab_user_roster_entry_id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "ab_user_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("role_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["role_id"], ["ab_role.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "role_id"),
    )
    op.create_table(
        "ab_user_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["ab_group.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "group_id"),
    )
    op.create_index("idx_user_group_id", "ab_user_group", ["group_id"], unique=False)
    op.create_index("idx_user_id", "ab_user_group", ["user_id"], unique=False)
    op.create_table(
        "ab_register_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=64), nullable=False),
        sa.Column("last_name", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("password", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("registration_date", sa.DateTime(), nullable=True),
        sa.Column("registration_hash", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "ab_api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("key_hash", sa.String(length=256), nullable=False),
        sa.Column("lookup_hash", sa.String(length=256), nullable=True),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=True),
        sa.Column("expires_on", sa.DateTime(), nullable=True),
        sa.Column("revoked_on", sa.DateTime(), nullable=True),
        sa.Column("last_used_on", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lookup_hash"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("idx_api_key_lookup_hash", "ab_api_key", ["lookup_hash"], unique=True)
    op.create_index("idx_api_key_prefix", "ab_api_key", ["key_prefix"], unique=False)
    op.create_index("idx_api_key_user_id", "ab_api_key", ["user_id"], unique=False)

    # -- Changes of the roster and of accounts that reach personal data, awaiting approval
    op.create_table(
        "roster_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("nationality", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["handler_roster_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
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

    # -- People, their numbers and data keys. No index on person.name: names are searched by
    # partial match, which no B-tree serves. Indexes where most rows hold NULL are partial:
    # every query compares the column, and the bulk import does not write those rows into them.
    op.create_table(
        "person",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=True),
        sa.Column("household_head_id", sa.Uuid(), nullable=True),
        sa.Column("dependent_seq", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(length=50), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_kana", sa.String(length=200), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("postal_code", sa.String(length=10), nullable=True),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retention_basis", sa.String(length=200), nullable=True),
        sa.Column("delete_after", sa.Date(), nullable=True),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["household_head_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_person_birth_date", "person", ["birth_date"], unique=False)
    op.create_index("ix_person_code", "person", ["kind", "code"], unique=False)
    op.create_index(
        "ix_person_delete_after",
        "person",
        ["delete_after"],
        unique=False,
        postgresql_where=sa.text("delete_after IS NOT NULL"),
        sqlite_where=sa.text("delete_after IS NOT NULL"),
    )
    op.create_index(
        "ix_person_household",
        "person",
        ["household_head_id", "dependent_seq"],
        unique=False,
        postgresql_where=sa.text("household_head_id IS NOT NULL"),
        sqlite_where=sa.text("household_head_id IS NOT NULL"),
    )
    op.create_table(
        "data_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_data_key_person_id", "data_key", ["person_id"], unique=True)
    op.create_table(
        "my_number_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("blind_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_my_number_person", "my_number_record", ["person_id", "status"], unique=False
    )
    op.create_index(
        "uq_my_number_active_blind_index",
        "my_number_record",
        ["blind_index"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "case_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_assignment_person_id", "case_assignment", ["person_id"], unique=False)
    op.create_index("ix_case_assignment_user_id", "case_assignment", ["user_id"], unique=False)
    op.create_table(
        "name_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("old_name", sa.String(length=200), nullable=False),
        sa.Column("old_kana", sa.String(length=200), nullable=True),
        sa.Column("new_name", sa.String(length=200), nullable=False),
        sa.Column("new_kana", sa.String(length=200), nullable=True),
        sa.Column("changed_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_name_change_person_id", "name_change", ["person_id"], unique=False)

    # -- The audit trail: a hash chain, its head and its signed checkpoints
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("roster_entry_id", sa.Integer(), nullable=True),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=True),
        sa.Column("object_ids", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_event_action", "audit_event", ["action"], unique=False)
    op.create_table(
        "audit_checkpoint",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    # -- CSV import and export: layouts, export manifests (audit data), portal tickets
    op.create_table(
        "export_layout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("date_format", sa.String(length=20), nullable=False),
        sa.Column("encoding", sa.String(length=20), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "export_item",
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("export_id", "position"),
    )
    op.create_table(
        "io_ticket",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("layout_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["layout_id"], ["export_layout.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )

    # -- Billing: unit prices by effective date, billable events counted once, postage
    op.create_table(
        "unit_price",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("price_yen", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("category", "effective_from", name="uq_unit_price_version"),
    )
    op.create_table(
        "billable_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("category", "subject_key", name="uq_billable_event_once"),
    )
    op.create_index(
        "ix_billable_event_month", "billable_event", ["month", "category"], unique=False
    )
    op.create_table(
        "postage_rate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("price_yen", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("submitted_to_client_on", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("carrier", "method", "effective_from", name="uq_postage_rate_version"),
    )
    op.create_table(
        "postage_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("cost_yen", sa.Integer(), nullable=False),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("tracking_number", sa.String(length=50), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_postage_entry_month", "postage_entry", ["month", "direction"], unique=False)

    # -- Collection: campaigns and letters, requests, sealed submissions, deliveries, print
    # batches, reminders, paper intake with double keying, verification, kept ID images
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("purpose_text", sa.Text(), nullable=False),
        sa.Column("four_eyes", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "letter_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "kind", name="uq_letter_template_kind"),
    )
    op.create_table(
        "campaign_operator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("assigned_by_id", sa.Integer(), nullable=True),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(length=200), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_campaign_operator_campaign_id", "campaign_operator", ["campaign_id"], unique=False
    )
    op.create_index(
        "ix_campaign_operator_user", "campaign_operator", ["user_id", "campaign_id"], unique=False
    )
    op.create_table(
        "collection_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("purpose_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopened", sa.Text(), nullable=False),
        sa.Column("decline_reason", sa.String(length=50), nullable=True),
        sa.Column("decline_note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("request_code", sa.String(length=20), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminder_count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"], name="fk_collection_request_campaign"
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_code", name="uq_collection_request_code"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(
        "ix_collection_request_campaign",
        "collection_request",
        ["campaign_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_collection_request_person", "collection_request", ["person_id", "status"], unique=False
    )
    op.create_table(
        "collection_request_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("reason_codes", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["collection_request.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_collection_request_status_request_id",
        "collection_request_status",
        ["request_id"],
        unique=False,
    )
    op.create_table(
        "submission",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("receipt_no", sa.String(length=20), nullable=True),
        sa.Column("manifest_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["collection_request.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt_no"),
        sa.UniqueConstraint("request_id", "seq", name="uq_submission_request_seq"),
    )
    op.create_index(
        "ix_submission_status_received", "submission", ["status", "received_at"], unique=False
    )
    op.create_table(
        "submission_part",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("part", sa.String(length=20), nullable=False),
        sa.Column("doc_type", sa.String(length=30), nullable=False),
        sa.Column("media_type", sa.String(length=50), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "submission_id", "subject_ref", "part", "doc_type", name="uq_submission_part_slot"
        ),
    )
    op.create_index(
        "ix_submission_part_submission_id", "submission_part", ["submission_id"], unique=False
    )
    op.create_table(
        "print_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_on", sa.Date(), nullable=True),
        sa.Column("posted_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_print_batch_campaign_id", "print_batch", ["campaign_id"], unique=False)
    op.create_table(
        "print_batch_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("part_no", sa.Integer(), nullable=False),
        sa.Column("first_position", sa.Integer(), nullable=False),
        sa.Column("last_position", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["print_batch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "part_no", name="uq_print_batch_file_part"),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("print_batch_id", sa.Integer(), nullable=True),
        sa.Column("batch_position", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["print_batch_id"], ["print_batch.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["collection_request.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "kind", "seq", name="uq_delivery_once"),
    )
    op.create_index(
        "ix_delivery_campaign", "delivery", ["campaign_id", "channel", "status"], unique=False
    )
    op.create_index("ix_delivery_message_id", "delivery", ["message_id"], unique=False)
    op.create_index(
        "ix_delivery_status_next", "delivery", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["collection_request.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "run_date", name="uq_reminder_run"),
        sa.UniqueConstraint("request_id", "seq", name="uq_reminder_seq"),
    )
    op.create_table(
        "paper_intake",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("tracking_number", sa.String(length=50), nullable=True),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("postage_entry_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_by", sa.String(length=200), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_on", sa.Date(), nullable=True),
        sa.Column("return_postage_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["postage_entry_id"], ["postage_entry.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["collection_request.id"]),
        sa.ForeignKeyConstraint(["return_postage_id"], ["postage_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_id"),
    )
    op.create_index(
        "ix_paper_intake_request", "paper_intake", ["request_id", "status"], unique=False
    )
    op.create_table(
        "paper_part",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("intake_id", sa.Uuid(), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("part", sa.String(length=20), nullable=False),
        sa.Column("doc_type", sa.String(length=30), nullable=False),
        sa.Column("media_type", sa.String(length=50), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("check", sa.LargeBinary(length=32), nullable=True),
        sa.Column("entered_by_id", sa.Integer(), nullable=True),
        sa.Column("entered_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["intake_id"], ["paper_intake.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_paper_part_intake", "paper_part", ["intake_id", "subject_ref", "part"], unique=False
    )
    op.create_table(
        "verification_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("claimed_by_id", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_by_id", sa.Integer(), nullable=True),
        sa.Column("checked_by", sa.String(length=200), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checklist", sa.Text(), nullable=False),
        sa.Column("approver_id", sa.Integer(), nullable=True),
        sa.Column("approver", sa.String(length=200), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("registered", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["collection_request.id"]),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_verification_case_decided",
        "verification_case",
        ["decided_at", "decision"],
        unique=False,
    )
    op.create_index(
        "ix_verification_case_request", "verification_case", ["request_id", "status"], unique=False
    )
    op.create_table(
        "retained_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("doc_type", sa.String(length=30), nullable=False),
        sa.Column("media_type", sa.String(length=50), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["collection_request.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_retained_document_person_id", "retained_document", ["person_id"], unique=False
    )

    # -- Storage lifecycle: retention rules, disposals (the person row stays as the tombstone),
    # backups and return archives
    op.create_table(
        "retention_rule",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("anchor", sa.String(length=30), nullable=False),
        sa.Column("years", sa.Integer(), nullable=False),
        sa.Column("follow_household", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("kind"),
    )
    op.create_table(
        "disposal_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("material_description", sa.Text(), nullable=True),
        sa.Column("quantity", sa.String(length=200), nullable=True),
        sa.Column("planned_count", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_seq", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("decision_seq", sa.Integer(), nullable=True),
        sa.Column("executed_by_id", sa.Integer(), nullable=True),
        sa.Column("executed_by_name", sa.String(length=200), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("person_count", sa.Integer(), nullable=True),
        sa.Column("numbers_deleted", sa.Integer(), nullable=True),
        sa.Column("keys_destroyed", sa.Integer(), nullable=True),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("performed_on", sa.Date(), nullable=True),
        sa.Column("contractor_ref", sa.String(length=200), nullable=True),
        sa.Column("exec_first_seq", sa.Integer(), nullable=True),
        sa.Column("exec_last_seq", sa.Integer(), nullable=True),
        sa.Column("exec_last_hash", sa.String(length=64), nullable=True),
        sa.Column("compacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certificate_no", sa.String(length=40), nullable=True),
        sa.Column("kek_version_at_execution", sa.Integer(), nullable=True),
        sa.Column("keys_closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_closure", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("certificate_no"),
    )
    op.create_table(
        "disposal_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("person_kind", sa.String(length=20), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["disposal_request.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "person_id", name="uq_disposal_item"),
    )
    op.create_index("ix_disposal_item_person_id", "disposal_item", ["person_id"], unique=False)
    op.create_index("ix_disposal_item_request_id", "disposal_item", ["request_id"], unique=False)
    op.create_table(
        "backup_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=400), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=20), nullable=False),
        sa.Column("schema_revision", sa.String(length=40), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "return_archive",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("recipient_public", sa.Text(), nullable=False),
        sa.Column("recipient_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=400), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("person_count", sa.Integer(), nullable=True),
        sa.Column("number_count", sa.Integer(), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )

    # -- Monthly usage report, its deliveries, and the planned volumes it compares against
    op.create_table(
        "monthly_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("notes_updated_by", sa.String(length=200), nullable=True),
        sa.Column("notes_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generated_by", sa.String(length=200), nullable=True),
        sa.Column("snapshot", sa.Text(), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("auto_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("month"),
    )
    op.create_table(
        "monthly_report_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["monthly_report.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_monthly_report_delivery_report_id",
        "monthly_report_delivery",
        ["report_id"],
        unique=False,
    )
    op.create_table(
        "planned_volume",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("period_label", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("households", sa.Integer(), nullable=True),
        sa.Column("people", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fiscal_year", "category", name="uq_planned_volume"),
    )

    # -- Inquiry desk (受付→対応中→回答済→完了) and the 情報管理体制図 versions. ``source``
    # keeps the server default it was added with; every row the code writes sets it.
    op.create_table(
        "inquiry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("staff_note", sa.Text(), nullable=True),
        sa.Column("handled_by", sa.String(length=200), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=20), server_default="subject", nullable=False),
        sa.Column("filed_by_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("assignee_name", sa.String(length=200), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["assignee_id"], ["ab_user.id"], name="fk_inquiry_assignee"),
        sa.ForeignKeyConstraint(["filed_by_id"], ["ab_user.id"], name="fk_inquiry_filed_by"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_inquiry_status_received", "inquiry", ["status", "received_at"], unique=False
    )
    op.create_table(
        "inquiry_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inquiry_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["inquiry_id"], ["inquiry.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inquiry_action_inquiry_id", "inquiry_action", ["inquiry_id"], unique=False)
    op.create_table(
        "handling_chart",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("responsible", sa.String(length=200), nullable=False),
        sa.Column("handlers", sa.Text(), nullable=False),
        sa.Column("contacts", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_by_name", sa.String(length=200), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )

    # -- Outbox: jobs and mails promised by a transaction, dispatched after its commit (ids
    # only: no personal data)
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(
        "ix_outbox_state_next", "outbox_message", ["state", "next_attempt_at"], unique=False
    )

    for table in APPEND_ONLY_TABLES:
        _append_only(table)
    _seed()


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on an audit table (PostgreSQL and SQLite)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_PG)
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


def _seed() -> None:
    now = dt.datetime.now(dt.UTC)
    layout = sa.table(
        "export_layout",
        sa.column("name", sa.String),
        sa.column("kind", sa.String),
        sa.column("columns", sa.Text),
        sa.column("date_format", sa.String),
        sa.column("encoding", sa.String),
        sa.column("builtin", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("updated_by", sa.String),
    )
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
                "updated_by": "migration",
            }
            for item in DEFAULT_LAYOUTS
        ],
    )
    rules = sa.table(
        "retention_rule",
        sa.column("kind", sa.String),
        sa.column("anchor", sa.String),
        sa.column("years", sa.Integer),
        sa.column("follow_household", sa.Boolean),
        sa.column("label", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("updated_by", sa.String),
    )
    op.bulk_insert(
        rules,
        [
            {
                "kind": kind,
                "anchor": anchor,
                "years": years,
                "follow_household": follow,
                "label": label,
                "updated_at": now,
                "updated_by": "migration",
            }
            for kind, anchor, years, follow, label in RETENTION_RULES
        ],
    )
    planned = sa.table(
        "planned_volume",
        sa.column("fiscal_year", sa.Integer),
        sa.column("period_label", sa.String),
        sa.column("category", sa.String),
        sa.column("households", sa.Integer),
        sa.column("people", sa.Integer),
        sa.column("updated_by", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        planned,
        [
            {
                "fiscal_year": year,
                "period_label": period,
                "category": category,
                "households": households,
                "people": people,
                "updated_by": "migration",
                "updated_at": now,
            }
            for year, period, category, households, people in PLANNED_VOLUMES
        ],
    )


def downgrade():
    # Dropping a table drops its indexes and triggers; children go before their parents.
    op.drop_table("outbox_message")
    op.drop_table("handling_chart")
    op.drop_table("inquiry_action")
    op.drop_table("inquiry")
    op.drop_table("planned_volume")
    op.drop_table("monthly_report_delivery")
    op.drop_table("monthly_report")
    op.drop_table("return_archive")
    op.drop_table("backup_record")
    op.drop_table("disposal_item")
    op.drop_table("disposal_request")
    op.drop_table("retention_rule")
    op.drop_table("retained_document")
    op.drop_table("verification_case")
    op.drop_table("paper_part")
    op.drop_table("paper_intake")
    op.drop_table("reminder")
    op.drop_table("delivery")
    op.drop_table("print_batch_file")
    op.drop_table("print_batch")
    op.drop_table("submission_part")
    op.drop_table("submission")
    op.drop_table("collection_request_status")
    op.drop_table("collection_request")
    op.drop_table("campaign_operator")
    op.drop_table("letter_template")
    op.drop_table("campaign")
    op.drop_table("postage_entry")
    op.drop_table("postage_rate")
    op.drop_table("billable_event")
    op.drop_table("unit_price")
    op.drop_table("io_ticket")
    op.drop_table("export_item")
    op.drop_table("export_layout")
    op.drop_table("audit_chain_head")
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_event")
    op.drop_table("name_change")
    op.drop_table("case_assignment")
    op.drop_table("my_number_record")
    op.drop_table("data_key")
    op.drop_table("person")
    op.drop_table("account_change")
    op.drop_table("roster_change")
    op.drop_table("ab_api_key")
    op.drop_table("ab_register_user")
    op.drop_table("ab_user_group")
    op.drop_table("ab_user_role")
    op.drop_table("ab_user")
    op.drop_table("ab_group_role")
    op.drop_table("ab_group")
    op.drop_table("ab_permission_view_role")
    op.drop_table("ab_role")
    op.drop_table("ab_permission_view")
    op.drop_table("ab_view_menu")
    op.drop_table("ab_permission")
    op.drop_table("handler_roster_entry")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mnv_append_only()")
