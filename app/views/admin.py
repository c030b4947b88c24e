"""SystemAdmin screens: roster, users (with the roster link), key operations."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.views import UserDBModelView
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app import audit, jptime, mynumber, policy, roster
from app.audit import AuditUnavailable
from app.models import HandlerRosterEntry, RosterChange, db
from app.security import current_actor
from app.vault import VaultError


class RosterView(ModelView):
    """情報取扱者名簿, read-only: every change goes through RosterChangeView."""

    datamodel = SQLAInterface(HandlerRosterEntry)
    class_permission_name = "Roster"
    method_permission_name = {"list": "list", "show": "show"}
    base_permissions = ["can_list", "can_show"]
    list_title = "情報取扱者名簿"
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


class ProposeForm(FlaskForm):
    action = SelectField(
        "変更の種類", choices=[("add", "追加"), ("update", "変更"), ("revoke", "削除（取消）")]
    )
    entry_id = SelectField(
        "対象（変更・削除のとき）", coerce=int, choices=[], validate_choice=False
    )
    name = StringField("氏名", validators=[Optional(), Length(max=100)])
    department = StringField("所属部署", validators=[Optional(), Length(max=100)])
    title = StringField("役職", validators=[Optional(), Length(max=100)])
    nationality = StringField("国籍", validators=[Optional(), Length(max=100)])
    reason = TextAreaField(
        "理由", validators=[DataRequired(message="変更の理由を入力してください"), Length(max=1000)]
    )


class DecideForm(FlaskForm):
    """The decision itself comes from the pressed button (name="decision")."""

    note = StringField("コメント", validators=[Optional(), Length(max=500)])


class RosterChangeView(BaseView):
    """Proposals by the SystemAdmin; approval or rejection by a ClientStaff user (spec 7.5-4)."""

    route_base = "/roster-changes"
    class_permission_name = "RosterChange"
    method_permission_name = {"index": "list", "propose": "propose", "decide": "approve"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        changes = (
            db.session.execute(select(RosterChange).order_by(RosterChange.requested_at.desc()))
            .scalars()
            .all()
        )
        actor = current_actor()
        return self.render_template(
            "mynumber/roster_changes.html",
            changes=changes,
            decide_form=DecideForm(),
            can_propose=policy.allows(actor, "can_propose", "RosterChange"),
            can_approve=policy.allows(actor, "can_approve", "RosterChange"),
            me=actor.user_id,
        )

    @expose("/propose", methods=["GET", "POST"])
    @has_access
    def propose(self):
        form = ProposeForm()
        entries = (
            db.session.execute(
                select(HandlerRosterEntry)
                .where(HandlerRosterEntry.status != "revoked")
                .order_by(HandlerRosterEntry.name)
            )
            .scalars()
            .all()
        )
        form.entry_id.choices = [(0, "（追加のときは選択不要）")] + [
            (e.id, f"{e.name}（{e.department}）") for e in entries
        ]
        if form.validate_on_submit():
            fields = None
            if form.action.data in ("add", "update"):
                fields = roster.EntryFields(
                    form.name.data or "",
                    form.department.data or "",
                    form.title.data or "",
                    form.nationality.data or "",
                )
            try:
                roster.propose(
                    db.session,
                    current_actor(),
                    form.action.data,
                    form.reason.data,
                    fields,
                    form.entry_id.data or None,
                )
            except roster.RosterError as exc:
                flash(str(exc), "warning")
            else:
                flash("変更を申請しました。発注者担当者の承認後に名簿へ反映されます。", "success")
                return redirect(url_for("RosterChangeView.index"))
        return self.render_template("mynumber/roster_propose.html", form=form)

    @expose("/<int:change_id>/decide", methods=["POST"])
    @has_access
    def decide(self, change_id: int):
        form = DecideForm()
        decision = request.form.get("decision")
        if not form.validate_on_submit() or decision not in ("approve", "reject"):
            abort(400)
        try:
            roster.decide(
                db.session, current_actor(), change_id, decision == "approve", form.note.data
            )
        except roster.RosterError as exc:
            flash(str(exc), "warning")
        else:
            flash(
                "承認しました。名簿に反映されました。"
                if decision == "approve"
                else "却下しました。",
                "success",
            )
        return redirect(url_for("RosterChangeView.index"))


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

    def pre_add(self, item) -> None:
        _refuse_numbers_in_user(item)
        super().pre_add(item)

    def pre_update(self, item) -> None:
        _refuse_numbers_in_user(item)
        super().pre_update(item)

    def post_add(self, item) -> None:
        item.password_change_required = True  # the administrator chose it: the user replaces it
        db.session.commit()
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
        from app.keyops import usage

        return self.render_template(
            "mynumber/keys.html",
            versions=usage(
                db.session,
                current_app.extensions["mynumber_vault"],
                current_app.config.get("BACKUP_DIR"),
            ),
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


def _refuse_numbers_in_user(item) -> None:
    """A user's names and e-mail are shown everywhere and copied into every audit event
    (``actor_name``): a number typed into one would stay in the log for as long as the log."""
    mynumber.refuse_numbers(
        {
            "名": item.first_name,
            "姓": item.last_name,
            "ユーザー名": item.username,
            "メールアドレス": item.email,
        }
    )
