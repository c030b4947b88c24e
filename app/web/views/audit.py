"""Audit screens for Auditors: the log (read-only) and the chain verification."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface

from app.audit import trail, verifier
from app.audit.checkpoints import SigningPolicy
from app.core import jptime
from app.models import AuditEvent, db
from app.web import context
from app.web.identity import current_actor


class AuditLogView(ModelView):
    """Read-only audit log for Auditors."""

    datamodel = SQLAInterface(AuditEvent)
    class_permission_name = "AuditLog"
    method_permission_name = {"list": "list", "show": "show"}
    base_permissions = ["can_list", "can_show"]
    base_order = ("seq", "desc")
    list_title = "監査ログ"
    show_title = "監査イベント"
    list_columns = ["seq", "ts", "actor_name", "roles", "action", "object_type", "outcome"]
    show_columns = list(trail.EVENT_COLUMNS)
    search_columns = ["action", "actor_name", "outcome", "ts", "object_type"]
    label_columns = {
        "seq": "番号",
        "ts": "日時",
        "actor_name": "実行者",
        "actor_id": "ユーザーID",
        "roster_entry_id": "名簿ID",
        "roles": "ロール",
        "action": "操作",
        "object_type": "対象種別",
        "object_ids": "対象ID",
        "purpose": "利用目的",
        "ip": "IPアドレス",
        "user_agent": "ブラウザ",
        "outcome": "結果",
        "details": "詳細",
        "prev_hash": "直前ハッシュ",
        "hash": "ハッシュ",
    }
    formatters_columns = {"ts": lambda v: jptime.format_jst(v, with_seconds=True)}
    page_size = 50


class AuditVerifyView(BaseView):
    """Run the chain verification from the portal (the same code as `mynumber audit verify`)."""

    route_base = "/audit-verify"
    class_permission_name = "AuditLog"
    method_permission_name = {"verify": "verify"}
    default_view = "verify"

    @expose("/", methods=["GET"])
    @has_access
    def verify(self):
        keyring = context.keyring()
        public_key = verifier.load_public_key(keyring.audit_public_key_pem())
        result = verifier.verify(
            db.session,
            public_key,
            current_app.config["AUDIT_CHECKPOINT_FILE"],
            SigningPolicy.from_config(current_app.config),
        )
        trail.record(
            db.session,
            current_actor(),
            "audit.verify",
            outcome="success" if result.ok else "failure",
            details={
                "events": result.events,
                "first_bad": result.first_bad_seq,
                "kind": result.kind,
                "checkpoints": result.checkpoints,
                "last_signed": result.last_signed_seq,
                "unsigned": result.unsigned,
            },
            commit=True,
        )
        return self.render_template(
            "mynumber/audit_verify.html",
            result=result,
            policy=SigningPolicy.from_config(current_app.config),
            public_key=keyring.audit_public_key_pem().decode("ascii"),
        )
