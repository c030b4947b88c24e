"""照合 screens: people search, person detail with household, reveal one number."""

from __future__ import annotations

import uuid

from flask import abort, flash
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
    """Posted, never sent as a query string: a number must not end up in a URL."""

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

    @expose("/", methods=["GET", "POST"])
    @has_access
    def search(self):
        form = SearchForm()
        results = None
        if form.validate_on_submit():
            try:
                criteria = _criteria(form)
            except (ValueError, mynumber.InvalidMyNumber) as exc:
                flash(str(exc), "warning")
                criteria = None
            if criteria is not None:
                if not criteria.fields():
                    flash("検索条件を1つ以上入力してください。", "info")
                else:
                    try:
                        found = registry.search(
                            db.session, context.vault(), current_actor(), criteria
                        )
                    except registry.SearchRefused as exc:
                        flash(str(exc), "warning")
                        for name in registry.TEXT_FIELDS:  # a number is never echoed back
                            getattr(form, name).data = ""
                    else:
                        results = [(p, registry.masked_number(db.session, p.id)) for p in found]
        # The number field is never echoed back into the page.
        form.number.data = ""
        return self.render_template("mynumber/people_search.html", form=form, results=results)

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
        )


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
