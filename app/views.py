"""Admin portal screens (Flask-AppBuilder). Thin: every decision is in a service module."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, IndexView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.views import UserDBModelView
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app import audit, jptime, mynumber, people, policy
from app.audit import AuditUnavailable
from app.models import AuditEvent, HandlerRosterEntry, Person, PersonKind, db
from app.security import current_actor
from app.vault import VaultError


def vault():
    return current_app.extensions["mynumber_vault"]


class HomeView(IndexView):
    index_template = "mynumber/index.html"


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    code = StringField("職員番号・委員番号", validators=[Optional(), Length(max=50)])
    name = StringField("氏名（部分一致）", validators=[Optional(), Length(max=100)])
    kana = StringField("カナ（部分一致）", validators=[Optional(), Length(max=100)])
    birth_date = StringField("生年月日", validators=[Optional(), Length(max=30)])
    number = StringField("個人番号（完全一致）", validators=[Optional(), Length(max=30)])


class RevealForm(FlaskForm):
    purpose = TextAreaField(
        "利用目的",
        validators=[
            DataRequired(message="利用目的を入力してください"),
            Length(max=500, message="利用目的は500文字以内で入力してください"),
        ],
    )


class PeopleView(BaseView):
    """照合: search, person detail with household, reveal one number with a purpose."""

    route_base = "/people"
    class_permission_name = "People"
    method_permission_name = {"search": "search", "show": "show", "reveal": "reveal"}
    default_view = "search"

    @expose("/", methods=["GET"])
    @has_access
    def search(self):
        form = SearchForm(request.args)
        results = None
        if request.args and form.validate():
            try:
                criteria = _criteria(form)
            except (ValueError, mynumber.InvalidMyNumber) as exc:
                flash(str(exc), "warning")
                criteria = None
            if criteria is not None:
                if not any(criteria.describe().values()):
                    flash("検索条件を1つ以上入力してください。", "info")
                else:
                    results = [
                        (p, people.masked_number(db.session, p.id))
                        for p in people.search(db.session, vault(), current_actor(), criteria)
                    ]
        # The number field is never echoed back into the page.
        form.number.data = ""
        return self.render_template("mynumber/people_search.html", form=form, results=results)

    @expose("/<string:pid>", methods=["GET"])
    @has_access
    def show(self, pid: str):
        person = _person_or_404(pid)
        actor = current_actor()
        audit.record(
            db.session,
            actor,
            "people.view",
            object_type="person",
            object_ids=[person.id],
            commit=True,
        )
        return self.render_template(
            "mynumber/person_show.html",
            person=person,
            members=_household(person),
            form=RevealForm(),
            revealed=None,
            can_reveal=_can_reveal(actor, person),
        )

    @expose("/<string:pid>/reveal", methods=["POST"])
    @has_access
    def reveal(self, pid: str):
        person = _person_or_404(pid)
        form = RevealForm()
        actor = current_actor()
        revealed = None
        if form.validate_on_submit():
            try:
                revealed = people.reveal(db.session, vault(), actor, person.id, form.purpose.data)
            except policy.PermissionDenied as exc:
                flash(str(exc), "danger")
            except (LookupError, AuditUnavailable, VaultError) as exc:
                flash(str(exc), "warning")
        else:
            for errors in form.errors.values():
                for error in errors:
                    flash(error, "warning")
        return self.render_template(
            "mynumber/person_show.html",
            person=person,
            members=_household(person),
            form=RevealForm(formdata=None),
            revealed=mynumber.format_grouped(revealed) if revealed else None,
            can_reveal=_can_reveal(actor, person),
        )


def _criteria(form: SearchForm) -> people.SearchCriteria:
    birth = jptime.parse_date(form.birth_date.data) if form.birth_date.data else None
    number = mynumber.normalize(form.number.data) if form.number.data else None
    return people.SearchCriteria(
        code=form.code.data or None,
        name=form.name.data or None,
        kana=form.kana.data or None,
        birth_date=birth,
        number=number,
    )


def _household(person: Person) -> list[tuple[Person, str]]:
    """The employee and their dependents (or the external member alone), numbers masked."""
    if person.kind == PersonKind.EXTERNAL:
        members = [person]
    else:
        head = person.household_head or person
        members = [head, *[d for d in head.dependents if d.status == "active"]]
    return [(m, people.masked_number(db.session, m.id)) for m in members]


def _person_or_404(pid: str) -> Person:
    try:
        key = uuid.UUID(pid)
    except ValueError:
        abort(404)
    person = db.session.get(Person, key)
    if person is None or person.status != "active":
        abort(404)
    return person


def _can_reveal(actor, person: Person) -> bool:
    try:
        people.check_reveal(db.session, actor, person.id)
    except policy.PermissionDenied:
        return False
    return True


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
    show_columns = [
        "seq",
        "ts",
        "actor_name",
        "actor_id",
        "roster_entry_id",
        "roles",
        "action",
        "object_type",
        "object_ids",
        "purpose",
        "ip",
        "user_agent",
        "outcome",
        "details",
        "prev_hash",
        "hash",
    ]
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
        keyring = current_app.extensions["mynumber_keyring"]
        public_key = audit.load_public_key(keyring.audit_public_key_pem())
        result = audit.verify(db.session, public_key, current_app.config["AUDIT_CHECKPOINT_FILE"])
        audit.record(
            db.session,
            current_actor(),
            "audit.verify",
            outcome="success" if result.ok else "failure",
            details={"events": result.events, "first_bad": result.first_bad_seq},
            commit=True,
        )
        return self.render_template(
            "mynumber/audit_verify.html",
            result=result,
            public_key=keyring.audit_public_key_pem().decode("ascii"),
        )


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
            version, count = rotate(db.session, vault(), current_actor())
        except (AuditUnavailable, VaultError) as exc:
            flash(str(exc), "danger")
        else:
            flash(
                f"KEK をバージョン {version} に更新し、{count} 件のデータ鍵を再ラップしました。",
                "success",
            )
        return redirect(url_for("KeysView.index"))


def register(appbuilder) -> None:
    """Add every screen and menu entry (menu names match app.policy)."""
    appbuilder.add_view(
        PeopleView, policy.MENU_PEOPLE, icon="fa-search", category=policy.MENU_CATEGORY_PEOPLE
    )
    appbuilder.add_view(
        AuditLogView, policy.MENU_AUDIT, icon="fa-list", category=policy.MENU_CATEGORY_AUDIT
    )
    appbuilder.add_view(
        AuditVerifyView,
        policy.MENU_AUDIT_VERIFY,
        icon="fa-check",
        category=policy.MENU_CATEGORY_AUDIT,
    )
    appbuilder.add_view(
        RosterView, policy.MENU_ROSTER, icon="fa-id-card", category=policy.MENU_CATEGORY_ADMIN
    )
    appbuilder.add_view(
        KeysView, policy.MENU_KEYS, icon="fa-key", category=policy.MENU_CATEGORY_ADMIN
    )
