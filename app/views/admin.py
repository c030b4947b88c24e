"""SystemAdmin screens: roster, users (with the roster link), key operations."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.views import UserDBModelView
from flask_wtf import FlaskForm

from app import audit, jptime
from app.audit import AuditUnavailable
from app.models import HandlerRosterEntry, db
from app.security import current_actor
from app.vault import VaultError


class RosterView(ModelView):
    """情報取扱者名簿. SystemAdmin records entries and the client's approval; Auditors read."""

    datamodel = SQLAInterface(HandlerRosterEntry)
    class_permission_name = "Roster"
    method_permission_name = {"list": "list", "show": "show", "add": "add", "edit": "edit"}
    base_permissions = ["can_list", "can_show", "can_add", "can_edit"]
    list_title = "情報取扱者名簿"
    add_title = "情報取扱者の登録"
    edit_title = "情報取扱者の編集"
    show_title = "情報取扱者"
    list_columns = [
        "name",
        "department",
        "title",
        "nationality",
        "status",
        "approved_by",
        "approved_at",
    ]
    add_columns = ["name", "department", "title", "nationality", "note"]
    edit_columns = [
        "name",
        "department",
        "title",
        "nationality",
        "status",
        "approved_by",
        "approved_at",
        "note",
    ]
    show_columns = list_columns + ["note", "created_at"]
    label_columns = {
        "name": "氏名",
        "department": "所属部署",
        "title": "役職",
        "nationality": "国籍",
        "status": "状態",
        "approved_by": "承認者（発注者）",
        "approved_at": "承認日時",
        "note": "備考",
        "created_at": "登録日時",
    }
    formatters_columns = {
        "approved_at": jptime.format_jst,
        "created_at": jptime.format_jst,
        "status": lambda v: {"pending": "承認待ち", "approved": "承認済み", "revoked": "取消"}.get(
            v, v
        ),
    }
    description_columns = {
        "status": "pending（承認待ち）/ approved（承認済み）/ revoked（取消）",
        "approved_by": "名簿を承認した発注者側の担当者名",
    }

    def post_add(self, item: HandlerRosterEntry) -> None:
        _audit_roster(item, "roster.add")

    def post_update(self, item: HandlerRosterEntry) -> None:
        _audit_roster(item, "roster.edit")

    def pre_update(self, item: HandlerRosterEntry) -> None:
        if item.status not in {"pending", "approved", "revoked"}:
            raise ValueError("状態は pending / approved / revoked のいずれかです")
        if item.status == "approved" and (not item.approved_by or not item.approved_at):
            raise ValueError("承認済みにするには承認者と承認日時を入力してください")


def _audit_roster(item: HandlerRosterEntry, action: str) -> None:
    audit.record(
        db.session,
        current_actor(),
        action,
        object_type="roster",
        object_ids=[item.id],
        details={"status": item.status},
        commit=True,
    )


class VaultUserDBModelView(UserDBModelView):
    """FAB's user screen plus the roster link; role changes are audited."""

    class_permission_name = "UserDBModelView"

    add_columns = UserDBModelView.add_columns + ["roster_entry"]
    edit_columns = UserDBModelView.edit_columns + ["roster_entry"]
    show_fieldsets = [
        (
            "ユーザー",
            {
                "fields": [
                    "first_name",
                    "last_name",
                    "username",
                    "active",
                    "email",
                    "roles",
                    "roster_entry",
                    "login_count",
                    "last_login",
                    "locked_until",
                    "totp_enrolled_at",
                ]
            },
        ),
    ]
    label_columns = {
        **UserDBModelView.label_columns,
        "roster_entry": "情報取扱者名簿",
        "locked_until": "ロック解除予定",
        "totp_enrolled_at": "TOTP登録日時",
    }

    def post_add(self, item) -> None:
        _audit_user(item, "user.add")

    def post_update(self, item) -> None:
        _audit_user(item, "user.edit")

    def post_delete(self, item) -> None:
        _audit_user(item, "user.delete")


def _audit_user(item, action: str) -> None:
    audit.record(
        db.session,
        current_actor(),
        action,
        object_type="user",
        object_ids=[item.id],
        details={
            "roles": sorted(r.name for r in item.roles),
            "roster_entry_id": item.roster_entry_id,
            "active": item.active,
        },
        commit=True,
    )


class KeysView(BaseView):
    """Key operations for the SystemAdmin: KEK versions and rotation (no key material shown)."""

    route_base = "/keys"
    class_permission_name = "Keys"
    method_permission_name = {"index": "rotate", "rotate": "rotate"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        keyring = current_app.extensions["mynumber_keyring"]
        return self.render_template(
            "mynumber/keys.html",
            versions=keyring.kek_versions(),
            current=keyring.current_kek_version(),
            form=FlaskForm(),
        )

    @expose("/rotate", methods=["POST"])
    @has_access
    def rotate(self):
        from app.keyops import rotate

        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            version, count = rotate(
                db.session, current_app.extensions["mynumber_vault"], current_actor()
            )
        except (AuditUnavailable, VaultError) as exc:
            flash(str(exc), "danger")
        else:
            flash(
                f"KEK をバージョン {version} に更新し、{count} 件のデータ鍵を再ラップしました。",
                "success",
            )
        return redirect(url_for("KeysView.index"))
