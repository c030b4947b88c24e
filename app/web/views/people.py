"""照合 screens: people search, person detail with household, reveal one number."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlencode

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.access import policy
from app.audit import trail
from app.audit.trail import AuditUnavailable
from app.core import jptime, mynumber
from app.models import Person, PersonKind, db
from app.people import registry
from app.vault.envelopes import VaultError
from app.web import context
from app.web.identity import current_actor


class SearchForm(FlaskForm):
    """Posted, so a number typed into any field never reaches a URL: a search without a number
    is then redirected to its GET address (Back and 「検索に戻る」 find the results again); a
    number search is answered on the POST itself."""

    code = StringField("職員番号・委員番号（部分一致）", validators=[Optional(), Length(max=50)])
    name = StringField("氏名（部分一致）", validators=[Optional(), Length(max=100)])
    kana = StringField("カナ（部分一致）", validators=[Optional(), Length(max=100)])
    birth_date = StringField("生年月日", validators=[Optional(), Length(max=30)])
    number = StringField("個人番号（完全一致）", validators=[Optional(), Length(max=30)])


URL_FIELDS = ("code", "name", "kana", "birth_date")
URL_LIMITS = {"code": 50, "name": 100, "kana": 100, "birth_date": 30}
URL_LABELS = {
    "code": "職員番号・委員番号",
    "name": "氏名",
    "kana": "カナ",
    "birth_date": "生年月日",
}


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

    @expose("/", methods=["GET", "POST"])
    @has_access
    def search(self):
        if request.method == "POST":
            return self._search_posted()
        args = {k: request.args.get(k, "").strip() for k in URL_FIELDS}
        args = {k: v for k, v in args.items() if v}
        form = SearchForm(formdata=None, data=args)
        if not args:
            return self._render_search(form, None, {})
        problem = next(
            (
                f"{URL_LABELS[k]}は{URL_LIMITS[k]}文字以内で入力してください。"
                for k, v in args.items()
                if len(v) > URL_LIMITS[k]
            ),
            None,
        )
        if problem:
            flash(problem, "warning")
            return self._render_search(form, None, args)
        return self._render_search(form, self._run(form, _page_arg()), args)

    def _search_posted(self):
        form = SearchForm()
        found = None
        if form.validate_on_submit():
            args = {k: (getattr(form, k).data or "").strip() for k in URL_FIELDS}
            args = {k: v for k, v in args.items() if v}
            if not form.number.data and args and not _text_holds_number(form):
                return redirect(url_for("PeopleView.search", **args), code=303)
            if not form.number.data and not args:
                flash("検索条件を1つ以上入力してください。", "info")
            else:
                found = self._run(form, 1)
        else:
            for name, errors in form.errors.items():
                label = getattr(getattr(form, name, None), "label", None)
                for error in errors:
                    flash(f"{label.text}: {error}" if label else error, "warning")
        # The number field is never echoed back into the page.
        form.number.data = ""
        return self._render_search(form, found, {})

    def _run(self, form: SearchForm, page: int) -> registry.SearchPage | None:
        try:
            criteria = _criteria(form)
        except (ValueError, mynumber.InvalidMyNumber) as exc:
            flash(str(exc), "warning")
            return None
        try:
            found = registry.search_page(
                db.session, context.vault(), current_actor(), criteria, page=page
            )
        except registry.SearchRefused as exc:
            flash(str(exc), "warning")
            for name in registry.TEXT_FIELDS:  # a number is never echoed back
                getattr(form, name).data = ""
            return None
        return found

    def _render_search(self, form: SearchForm, found, args: dict):
        results = None
        if found is not None:
            results = [(p, registry.masked_number(db.session, p.id)) for p in found.people]
        return self.render_template(
            "mynumber/people_search.html",
            form=form,
            found=found,
            results=results,
            args=args,
            back=urlencode({**args, **({"page": found.page} if found and found.page > 1 else {})})
            if args
            else "",
        )

    @expose("/<string:pid>", methods=["GET"])
    @has_access
    def show(self, pid: str):
        person = _person_or_404(pid)
        actor = current_actor()
        trail.record(
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
            back=_back_args(),
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
                revealed = registry.reveal(
                    db.session, context.vault(), actor, person.id, form.purpose.data
                )
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
            back=_back_args(),
        )


def _back_args() -> dict:
    """The search a person page was opened from (``?back=`` holds its query string), so
    「検索に戻る」 shows the same results; only the search's own fields are kept."""
    try:
        parsed = parse_qs(request.args.get("back", ""), max_num_fields=10)
    except ValueError:  # a hand-made address with too many fields: plain search page
        return {}
    keep = {k: v[0] for k, v in parsed.items() if k in (*URL_FIELDS, "page") and v}
    return {k: v for k, v in keep.items() if len(v) <= 100}


def _page_arg() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) < 10**6 else 1


def _text_holds_number(form: SearchForm) -> bool:
    """A number typed into a free-text field: answered on the POST (refused and audited by the
    service), so it never becomes part of a redirect address."""
    return any(mynumber.contains_number(getattr(form, k).data) for k in URL_FIELDS)


def _criteria(form: SearchForm) -> registry.SearchCriteria:
    birth = jptime.parse_date(form.birth_date.data) if form.birth_date.data else None
    number = mynumber.normalize(form.number.data) if form.number.data else None
    return registry.SearchCriteria(
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
    return [(m, registry.masked_number(db.session, m.id)) for m in members]


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
        registry.check_reveal(db.session, actor, person.id)
    except policy.PermissionDenied:
        return False
    return True
