"""How a portal screen reads a posted form: one declared WTForms class per form.

A form class names every field the screen reads, with its default when the browser sends
nothing, and checks the CSRF token with the fields; the screens do not parse ``request.form``
by hand. The one exception is a field named after the data shown (one checklist or group of
deficiency codes per subject of a submission), which no class can declare: ``ticked`` reads
those. Only the posted values are read from these classes: the pages render their own inputs
(and ``form.hidden_tag()`` of a plain ``FlaskForm`` for the token).

The services check what was typed and answer in Japanese, naming the field; a form class
here therefore declares plain text fields, so that a refusal reads the same as before.
"""

from __future__ import annotations

from typing import TypeVar

from flask import abort, flash, request
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import AnyOf

F = TypeVar("F", bound=FlaskForm)


def posted(form_class: type[F]) -> F:
    """The posted form, or 400 when it fails (a missing or stale CSRF token: a forged or
    replayed request, or a page kept open past the token's lifetime)."""
    form = form_class()
    if not form.validate_on_submit():
        abort(400)
    return form


def flash_errors(form: FlaskForm) -> None:
    """Every problem a form found, as a warning above the page."""
    for errors in form.errors.values():
        for error in errors:
            flash(str(error), "warning")


def sent(form: FlaskForm, names: tuple[str, ...]) -> dict[str, str]:
    """The fields among ``names`` that the request carried, as typed.

    A service that changes only what a form sends (editing a person: the page shows some
    fields, a dependent's page others) must tell a field left out from a field emptied."""
    return {name: form[name].data for name in names if form[name].raw_data}


def ticked(prefix: str) -> list[tuple[str, str]]:
    """Checkboxes grouped by what they belong to, named ``<prefix><key>`` (one group of
    deficiency codes per subject of a submission, ``def-<ref>``): ``(key, value)`` for each box
    ticked. The keys come from the data shown, so no declared form can name these fields."""
    return [
        (name[len(prefix) :], value)
        for name in request.form
        if name.startswith(prefix)
        for value in request.form.getlist(name)
    ]


class Checkbox(BooleanField):
    """A checkbox the page sends as ``value="1"``: absent, or any other value, is unchecked."""

    def process_formdata(self, valuelist) -> None:
        self.data = bool(valuelist) and valuelist[0] == "1"


def decision_field() -> StringField:
    """The pressed button of an approve / reject pair (``name="decision"``): anything else
    fails the form (400)."""
    return StringField(validators=[AnyOf(("approve", "reject"))])


# -- a confirm step that works without JavaScript --------------------------------------------
CONFIRMED = "confirmed"
# Never carried into a confirm page: the token is issued afresh, and a number is never echoed.
_NOT_CARRIED = frozenset({"csrf_token", CONFIRMED, "number"})


def confirmed() -> bool:
    """Did this POST come from the confirm page (the second press)?"""
    return request.form.get(CONFIRMED) == "1"


def confirmation(
    title: str, lines: list[str], button: str, cancel_url: str, danger: bool = True
) -> dict:
    """What ``mynumber/confirm.html`` needs to ask once more before an action with
    consequences: the same POST again, with every field the user sent and ``confirmed=1``.
    A view returns ``render_template("mynumber/confirm.html", **confirmation(...))`` unless
    ``confirmed()``."""
    carried = [
        (name, value)
        for name in request.form
        if name not in _NOT_CARRIED
        for value in request.form.getlist(name)
    ]
    return {
        "title": title,
        "lines": lines,
        "button": button,
        "cancel_url": cancel_url,
        "action": request.full_path.rstrip("?"),
        "carried": carried,
        "danger": danger,
        "form": FlaskForm(),
    }
