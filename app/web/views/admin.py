"""SystemAdmin screens: roster, users (with the roster link), key operations."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.fields import QuerySelectField, QuerySelectMultipleField
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, Select2ManyWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.sqla.models import Role
from flask_appbuilder.security.views import (
    ResetMyPasswordView,
    ResetPasswordView,
    UserDBModelView,
)
from flask_appbuilder.validators import PasswordComplexityValidator
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.security import check_password_hash
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from app.access import accounts, policy, roster
from app.audit import trail
from app.audit.trail import AuditUnavailable
from app.core import fields, jptime, mynumber
from app.lifecycle import keyops
from app.models import AccountChange, HandlerRosterEntry, RosterChange, VaultUser, db
from app.vault.envelopes import VaultError
from app.web import context, forms
from app.web.identity import current_actor


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
        "note": lambda v: v or "",
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
    """Approve or reject, by the pressed button (``name="decision"``), with a comment."""

    decision = forms.decision_field()
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
        form = forms.posted(DecideForm)
        decision = form.decision.data
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


ACCOUNT_REQUEST = "mnv_account_request"  # on g: the access a user form asked for
ACCOUNT_BEFORE = "mnv_account_before"  # on g: the stored roles and link before an edit
PENDING_MESSAGE = (
    "個人番号を扱うロール・情報取扱者名簿の紐付けは、発注者担当者（申請者以外）の承認後に"
    "反映されます（アカウントの変更申請）。"
)


def _one_line(label: str):
    """A form validator: no line break or control character (the value may become a mail
    header, where a line break would add headers of the sender's choosing)."""

    def check(_form, field) -> None:
        problem = fields.header_problem(label, field.data)
        if problem:
            raise ValidationError(problem)

    return check


def _roster_entry_field() -> QuerySelectField:
    """The roster link as a select whose empty choice reads （なし）, not FAB's ``__None``."""
    return QuerySelectField(
        "情報取扱者名簿",
        query_func=lambda: (
            db.session.execute(select(HandlerRosterEntry).order_by(HandlerRosterEntry.id))
            .scalars()
            .all()
        ),
        get_pk_func=lambda entry: entry.id,
        allow_blank=True,
        blank_text="（なし）",
        validators=[Optional()],
        widget=Select2Widget(),
    )


def _roles_field() -> QuerySelectMultipleField:
    """The roles as a multiple select reading their Japanese names (「システム管理者」, not
    FAB's ``SystemAdmin``); FAB's own ``Public`` (the signed-out visitor) is never offered."""
    return QuerySelectMultipleField(
        "ロール",
        query_func=lambda: (
            db.session.execute(select(Role).where(Role.name != "Public").order_by(Role.id))
            .scalars()
            .all()
        ),
        get_pk_func=lambda role: role.id,
        get_label=lambda role: policy.ROLE_LABELS.get(role.name, role.name),
        description=(
            "個人番号を扱うロール（事務取扱担当者（受注者）・発注者担当者）の付与は、"
            "発注者担当者の承認後に反映されます。"
        ),
        validators=[DataRequired(message="ロールを1つ以上選んでください")],
        widget=Select2ManyWidget(),
    )


def _role_names(roles) -> str:
    """The roles of an account in Japanese, for the list and show screens."""
    return "、".join(policy.ROLE_LABELS.get(r.name, r.name) for r in (roles or []))


class VaultUserDBModelView(UserDBModelView):
    """FAB's user screen plus the roster link; role changes are audited.

    Access to personal data is never granted here: a new account with an Operator or
    ClientStaff role or a roster link is created inactive without them, and an edit that adds
    such a role or moves the link leaves them as they were, and switching such an account back
    on leaves it off; each becomes an ``AccountChange`` for a ClientStaff user to approve
    (app.access.accounts). Taking access away (removing a role, switching off) applies at once. Nobody
    adds a role to their own account here, and the SystemAdmin role never joins personal-data
    access on one account (``accounts.check_screen_edit``). The administrator sets no password for such an account:
    the approval issues one, shown only to the approver."""

    class_permission_name = "UserDBModelView"

    # 名字（姓） before 名前（名）, as Japanese names read; no FAB groups (unused here).
    list_columns = ["last_name", "first_name", "username", "email", "active", "roles"]
    add_columns = [
        "last_name",
        "first_name",
        "username",
        "active",
        "email",
        "roles",
        "password",
        "conf_password",
        "roster_entry",
    ]
    edit_columns = [
        "last_name",
        "first_name",
        "username",
        "active",
        "email",
        "roles",
        "roster_entry",
    ]
    search_columns = ["last_name", "first_name", "username", "email", "active"]
    description_columns = {
        "last_name": "利用者の名字（姓）です。画面と監査ログに表示されます。",
        "first_name": "利用者の名前（名）です。",
        "username": "ログインに使う名前です（半角英数字を推奨）。",
        "active": "無効にしたアカウントはログインできません。退職・異動のときは削除せず無効にします。",
        "email": "お知らせの送り先です。",
        "roles": "個人番号を扱うロール（事務取扱担当者（受注者）・発注者担当者）の付与は、"
        "発注者担当者の承認後に反映されます。",
        "roster_entry": "事務取扱担当者・発注者担当者は、承認済みの情報取扱者名簿の登録と結び付けます。",
    }
    # Shown in JST: our columns hold aware UTC; FAB writes its own (last_login) as a naive
    # time in the server's zone, which ``astimezone()`` reads as such.
    formatters_columns = {
        "active": lambda v: "有効" if v else "無効",
        "roles": _role_names,
        "roster_entry": lambda e: str(e) if e else "（なし）",
        "last_login": lambda v: jptime.format_jst(v.astimezone()) if v else "",
        "locked_until": lambda v: jptime.format_jst(v) if v else "",
        "totp_enrolled_at": lambda v: jptime.format_jst(v) if v else "未登録",
    }
    add_form_extra_fields = {
        "roles": _roles_field(),
        "roster_entry": _roster_entry_field(),
        "password": PasswordField(
            "パスワード",
            description=(
                "個人番号を扱うロール（事務取扱担当者・発注者担当者）または名簿の紐付けがある"
                "アカウントでは入力不要です（承認時に初期パスワードが発行され、承認者に表示されます）"
            ),
            validators=[Optional(), PasswordComplexityValidator()],
            widget=BS3PasswordFieldWidget(),
        ),
        "conf_password": PasswordField(
            "パスワード（確認）",
            validators=[EqualTo("password", message="パスワードが一致しません")],
            widget=BS3PasswordFieldWidget(),
        ),
    }
    show_fieldsets = [
        (
            "ユーザー",
            {
                "fields": [
                    "last_name",
                    "first_name",
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
    edit_form_extra_fields = {"roles": _roles_field(), "roster_entry": _roster_entry_field()}
    user_show_fieldsets = [
        ("ユーザー情報", {"fields": ["username", "active", "roles", "login_count"]}),
        ("個人情報", {"fields": ["last_name", "first_name", "email"], "expanded": True}),
    ]
    validators_columns = {
        **UserDBModelView.validators_columns,
        # FAB's own check reads the groups field, which this screen does not show.
        "roles": [DataRequired(message="ロールを1つ以上選んでください")],
        # The address receives notices; the names are the user's display name.
        "email": [_one_line("メールアドレス")],
        "first_name": [_one_line("名")],
        "last_name": [_one_line("姓")],
    }
    label_columns = {
        **UserDBModelView.label_columns,
        "last_name": "名字（姓）",
        "first_name": "名前（名）",
        "active": "有効",
        "roles": "ロール",
        "email": "メールアドレス",
        "last_login": "最後のログイン",
        "login_count": "ログイン回数",
        "roster_entry": "情報取扱者名簿",
        "locked_until": "ロック解除予定",
        "totp_enrolled_at": "TOTP登録日時",
    }

    def pre_add(self, item) -> None:
        _refuse_numbers_in_user(item)
        roles = sorted(r.name for r in item.roles)
        entry_id = item.roster_entry.id if item.roster_entry else None
        if not accounts.is_personal(roles, entry_id):
            if not item.password:
                raise accounts.AccountError("パスワードを入力してください")
            super().pre_add(item)
            return
        with db.session.no_autoflush:  # the new user is not in the session yet
            accounts.precheck(db.session, current_actor(), roles, entry_id, user_id=None)
        setattr(g, ACCOUNT_REQUEST, ("create", roles, entry_id))
        _set_roles(item, [r for r in item.roles if r.name not in accounts.PERSONAL_ROLES])
        item.roster_entry = None
        item.active = False  # nobody signs in until the approval issues a password
        item.password = accounts.unusable_password_hash()

    def post_add(self, item) -> None:
        item.password_change_required = True  # the administrator chose it: the user replaces it
        db.session.commit()
        _audit_user(item, "user.add")
        requested = g.pop(ACCOUNT_REQUEST, None)
        if requested is not None:
            accounts.propose(
                db.session,
                current_actor(),
                item,
                "create",
                "ユーザー画面からのアカウント作成",
                roles=requested[1],
                roster_entry_id=requested[2],
            )
            flash(
                "アカウントを無効の状態で作成しました。" + PENDING_MESSAGE + "入力された"
                "パスワードは使われず、初期パスワードは承認時に承認者へ一度だけ表示されます。",
                "warning",
            )

    def process_form(self, form, is_created: bool) -> None:
        """Before FAB copies the form onto the user: note the stored roles, link and state
        (once copied, a lazy load flushes them, and the database no longer tells)."""
        super().process_form(form, is_created)
        if is_created:
            return
        user = db.session.get(VaultUser, int(request.view_args["pk"]))
        setattr(
            g, ACCOUNT_BEFORE, ({r.name for r in user.roles}, user.roster_entry_id, user.active)
        )

    def pre_update(self, item) -> None:
        _refuse_numbers_in_user(item)
        super().pre_update(item)
        old_roles, old_entry, was_active = g.pop(ACCOUNT_BEFORE)
        actor = current_actor()
        with db.session.no_autoflush:
            roles = sorted(r.name for r in item.roles)
            entry_id = item.roster_entry.id if item.roster_entry else None
            accounts.check_screen_edit(
                db.session,
                actor,
                item.id,
                (old_roles, old_entry, was_active),
                (set(roles), entry_id, bool(item.active)),
            )
            gained = (set(roles) & accounts.PERSONAL_ROLES) - old_roles
            moved = entry_id is not None and entry_id != old_entry
            reactivated = (
                item.active
                and not was_active
                and accounts.is_personal(old_roles | set(roles), old_entry or entry_id)
            )
            if not gained and not moved and not reactivated:
                return
            accounts.precheck(db.session, actor, roles, entry_id, user_id=item.id)
            if reactivated:
                # Switching off applies at once; switching back on waits for the approval.
                item.active = False
                setattr(g, ACCOUNT_REQUEST, ("activate", roles, entry_id))
                return
            # Removals apply now; what grants access waits for the approval.
            _set_roles(item, [r for r in item.roles if r.name in old_roles])
            item.roster_entry = db.session.get(HandlerRosterEntry, old_entry) if old_entry else None
        setattr(g, ACCOUNT_REQUEST, ("update", roles, entry_id))

    def post_update(self, item) -> None:
        _audit_user(item, "user.edit")
        requested = g.pop(ACCOUNT_REQUEST, None)
        if requested is None:
            return
        action, roles, entry_id = requested
        if action == "activate":
            accounts.propose(
                db.session, current_actor(), item, "activate", "ユーザー画面からの再有効化"
            )
            flash(
                "個人番号を扱うアカウントのため、無効のままです。再有効化を申請しました。"
                "発注者担当者（申請者以外）の承認後に有効になります。",
                "warning",
            )
            return
        accounts.propose(
            db.session,
            current_actor(),
            item,
            "update",
            "ユーザー画面からのロール・名簿の紐付けの変更",
            roles=roles,
            roster_entry_id=entry_id,
        )
        flash(PENDING_MESSAGE + "承認までは従来のロール・紐付けのままです。", "warning")

    def post_delete(self, item) -> None:
        _audit_user(item, "user.delete")


def _set_roles(item, roles: list) -> None:
    """Replace the form's roles; only the user's side of the link is written (FAB's Role has
    a backref whose pending changes, left alone, would delete rows that were never made)."""
    touched = {*item.roles, *roles}
    item.roles = roles
    for role in touched:
        if role in db.session:
            db.session.expire(role, ["user"])


def _audit_user(item, action: str) -> None:
    trail.record(
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


class VaultResetMyPasswordView(ResetMyPasswordView):
    """FAB's own-password form, refusing the password the user already has: after an
    administrator chose it (or it was issued), keeping it would leave it known to them."""

    class_permission_name = "ResetMyPasswordView"
    route_base = "/resetmypassword"
    form_title = "パスワードの変更"
    message = "パスワードを変更しました。"

    def form_post(self, form):
        if password_unchanged(g.user, form.password.data):
            flash(
                "パスワード: 現在のパスワード（管理者が設定したもの、または発行されたもの）は"
                "使えません。別の新しいパスワードを入力してください。",
                "warning",
            )
            return redirect(url_for("ResetMyPasswordView.this_form_get"))
        return super().form_post(form)


def password_unchanged(user, password: str) -> bool:
    """Is ``password`` the one the account has now?"""
    return bool(user.password and password and check_password_hash(user.password, password))


class VaultResetPasswordView(ResetPasswordView):
    """FAB's "reset password" for another user: on an account that can reach personal data it
    becomes a request for approval, and the new password goes to the approver, not to us."""

    class_permission_name = "ResetPasswordView"
    route_base = "/resetpassword"

    def form_post(self, form):
        user = db.session.get(VaultUser, request.args.get("pk", type=int) or 0)
        if user is None:
            abort(404)
        if user.id == g.user.id or not accounts.is_personal_account(user):
            return super().form_post(form)
        try:
            accounts.propose(
                db.session,
                current_actor(),
                user,
                "password_reset",
                "ユーザー画面からのパスワード再設定",
            )
        except (accounts.AccountError, policy.PermissionDenied) as exc:
            flash(str(exc), "danger")
        else:
            flash(
                "個人番号を扱うアカウントのため、パスワードは変更していません。再設定を申請しました。"
                "発注者担当者（申請者以外）が承認すると、新しい初期パスワードが承認者に一度だけ"
                "表示されます。",
                "warning",
            )
        return None


class AccountRequestForm(FlaskForm):
    user_id = SelectField("アカウント", coerce=int, choices=[], validate_choice=False)
    action = SelectField(
        "申請の種類",
        choices=[
            ("password_reset", "パスワード再設定"),
            ("totp_reset", "二要素認証（TOTP）の再登録"),
        ],
    )
    reason = TextAreaField(
        "理由", validators=[DataRequired(message="申請の理由を入力してください"), Length(max=1000)]
    )


class AccountChangeView(BaseView):
    """Requests about accounts that can reach personal data, decided by ClientStaff users."""

    route_base = "/account-changes"
    class_permission_name = "AccountChange"
    method_permission_name = {"index": "list", "request_reset": "propose", "decide": "approve"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        changes = (
            db.session.execute(
                select(AccountChange).order_by(AccountChange.requested_at.desc()).limit(500)
            )
            .scalars()
            .all()
        )
        ids = {c.roster_entry_id for c in changes} | {c.previous_roster_entry_id for c in changes}
        entries = {
            e.id: e
            for e in db.session.execute(
                select(HandlerRosterEntry).where(HandlerRosterEntry.id.in_(ids - {None}))
            ).scalars()
        }
        actor = current_actor()
        return self.render_template(
            "mynumber/account_changes.html",
            changes=changes,
            entries=entries,
            role_labels=policy.ROLE_LABELS,
            decide_form=DecideForm(),
            can_propose=policy.allows(actor, "can_propose", accounts.VIEW),
            can_approve=policy.allows(actor, "can_approve", accounts.VIEW),
            me=actor.user_id,
        )

    @expose("/request", methods=["GET", "POST"])
    @has_access
    def request_reset(self):
        form = AccountRequestForm()
        users = db.session.execute(select(VaultUser).order_by(VaultUser.username)).scalars().all()
        form.user_id.choices = [
            (u.id, f"{u.username}（{u.first_name} {u.last_name}）")
            for u in users
            if accounts.is_personal_account(u)
        ]
        if form.validate_on_submit():
            user = db.session.get(VaultUser, form.user_id.data)
            if user is None or not accounts.is_personal_account(user):
                flash("個人番号を扱うアカウントを選択してください", "warning")
            else:
                try:
                    accounts.propose(
                        db.session, current_actor(), user, form.action.data, form.reason.data
                    )
                except (accounts.AccountError, policy.PermissionDenied) as exc:
                    flash(str(exc), "warning")
                else:
                    flash(
                        "申請しました。発注者担当者（申請者以外）の承認後に反映されます。",
                        "success",
                    )
                    return redirect(url_for("AccountChangeView.index"))
        return self.render_template("mynumber/account_request.html", form=form)

    @expose("/<int:change_id>/decide", methods=["POST"])
    @has_access
    def decide(self, change_id: int):
        form = forms.posted(DecideForm)
        decision = form.decision.data
        try:
            result = accounts.decide(
                db.session, current_actor(), change_id, decision == "approve", form.note.data
            )
        except (accounts.AccountError, policy.PermissionDenied) as exc:
            flash(str(exc), "warning")
            return redirect(url_for("AccountChangeView.index"))
        if result.one_time_password is None:
            flash("承認しました。" if decision == "approve" else "却下しました。", "success")
            return redirect(url_for("AccountChangeView.index"))
        # Shown in this response only (never in a flash, which lives in the session cookie).
        return self.render_template(
            "mynumber/account_issued.html",
            change=result.change,
            password=result.one_time_password,
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
        return self.render_template(
            "mynumber/keys.html",
            versions=keyops.usage(
                db.session, context.vault(), current_app.config.get("BACKUP_DIR")
            ),
            form=FlaskForm(),
        )

    @expose("/rotate", methods=["POST"])
    @has_access
    def rotate(self):
        forms.posted(FlaskForm)
        if not forms.confirmed():
            return self.render_template(
                "mynumber/confirm.html",
                **forms.confirmation(
                    "KEK を更新しますか",
                    [
                        "新しい KEK を作り、全データ鍵とシステムの秘密をその KEK で包み直します。",
                        "件数によっては時間がかかります。更新の後、旧 KEK を廃棄するまでに新しい"
                        "バックアップを取ってください（旧 KEK を廃棄すると、それに依存する"
                        "バックアップは復元できなくなります）。",
                    ],
                    "KEK を更新する",
                    url_for("KeysView.index"),
                ),
            )
        try:
            version, count = keyops.rotate(db.session, context.vault(), current_actor())
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
