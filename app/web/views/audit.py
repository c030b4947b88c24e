"""Audit screens for Auditors: the log (read-only) and the chain verification.

The log is FAB's ModelView for its permissions and routes, but its list and show pages are
ours: filters as plain inputs read as JST dates (FAB's date picker widget is not used), a role
filter, Japanese labels (``app.audit.labels``) and a pager with the count; the filtered log
downloads as CSV (``app.audit.browse``, audited).
"""

from __future__ import annotations

from flask import abort, current_app, request
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface

from app.audit import browse, labels, trail, verifier
from app.audit.checkpoints import SigningPolicy
from app.core import jptime
from app.models import AuditEvent, db
from app.web import context, downloads
from app.web.identity import current_actor

CSV_MIME = {"utf-8-sig": "text/csv; charset=utf-8", "cp932": "text/csv; charset=shift_jis"}


class AuditLogView(ModelView):
    """Read-only audit log for Auditors."""

    datamodel = SQLAInterface(AuditEvent)
    class_permission_name = "AuditLog"
    # Downloading the filtered log needs what reading it needs (and is audited itself).
    method_permission_name = {"list": "list", "show": "show", "download": "list"}
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
    page_size = browse.PAGE_SIZE

    def _render_list(self, log_filter, errors, status=200, page=None):
        return (
            self.render_template(
                "mynumber/audit_log.html",
                f=log_filter,
                errors=errors,
                page=page,
                labels=labels,
                encodings=browse.ENCODINGS,
                label=self.label_columns,
            ),
            status,
        )

    @expose("/list/")
    @has_access
    def list(self):
        """The filtered log, newest first, a page at a time; a bad filter is named in
        Japanese (400) and nothing is listed, so no one reads a period they did not ask for."""
        log_filter, errors = browse.parse_filter(request.args)
        if errors:
            return self._render_list(log_filter, errors, status=400)
        return self._render_list(log_filter, [], page=browse.page(db.session, log_filter))

    @expose("/download")
    @has_access
    def download(self):
        """The filtered log as CSV (BOM / CP932), written to the audit log before it leaves."""
        log_filter, errors = browse.parse_filter(request.args)
        encoding = request.args.get("encoding") or "utf-8-sig"
        if not errors:
            try:
                data, name = browse.export_csv(db.session, current_actor(), log_filter, encoding)
            except browse.ExportRefused as exc:
                db.session.rollback()
                errors = [str(exc)]
            else:
                return downloads.attachment(data, name, CSV_MIME[encoding])
        return self._render_list(log_filter, errors, status=400)

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):
        """One event: every field labelled, its details as labelled pairs (not JSON)."""
        wellformed = pk.isascii() and pk.isdigit() and len(pk) <= 10 and int(pk) < 2**31
        event = db.session.get(AuditEvent, int(pk)) if wellformed else None
        if event is None:
            abort(404)
        return self.render_template(
            "mynumber/audit_event.html", event=event, labels=labels, label=self.label_columns
        )


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
            status=verifier.status(result),
            policy=SigningPolicy.from_config(current_app.config),
            public_key=keyring.audit_public_key_pem().decode("ascii"),
        )
