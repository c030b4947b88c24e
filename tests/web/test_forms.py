"""How a screen reads a posted form (app.web.forms): the CSRF token is required, a checkbox is
on only for the value the page sends, a service sees only the fields a page sent, and the
per-subject checkboxes are grouped by subject."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_wtf import FlaskForm
from werkzeug.exceptions import BadRequest
from wtforms import StringField

from app.web import forms


@pytest.fixture
def flask_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test only", WTF_CSRF_ENABLED=True)
    return app


class _PersonForm(FlaskForm):
    class Meta:
        csrf = False

    code = StringField()
    name = StringField()
    address = StringField()
    agreed = forms.Checkbox()
    decision = forms.decision_field()


def test_a_post_without_its_csrf_token_is_refused(flask_app):
    with flask_app.test_request_context(method="POST", data={"name": "見本"}):
        with pytest.raises(BadRequest):
            forms.posted(FlaskForm)


def test_a_checkbox_is_on_only_for_the_value_the_page_sends(flask_app):
    for sent, expected in (({"agreed": "1"}, True), ({"agreed": "0"}, False), ({}, False)):
        with flask_app.test_request_context(method="POST", data=sent):
            assert _PersonForm().agreed.data is expected, sent
    with flask_app.test_request_context(method="POST", data={"agreed": "yes"}):
        assert _PersonForm().agreed.data is False


def test_only_the_fields_the_page_sent_reach_the_service(flask_app):
    with flask_app.test_request_context(method="POST", data={"code": "E1", "address": ""}):
        form = _PersonForm()
        # An emptied field is sent (as ""); a field the page does not show is not.
        assert forms.sent(form, ("code", "name", "address")) == {"code": "E1", "address": ""}


def test_the_decision_must_be_one_of_the_two_buttons(flask_app):
    for decision, valid in (("approve", True), ("reject", True), ("delete", False), (None, False)):
        data = {"decision": decision} if decision else {}
        with flask_app.test_request_context(method="POST", data=data):
            assert _PersonForm().validate() is valid, decision


def test_ticked_boxes_are_grouped_by_what_they_belong_to(flask_app):
    data = {"def-self": ["number_doc", "identity_doc"], "def-1": "photo", "note": "x"}
    with flask_app.test_request_context(method="POST", data=data):
        assert sorted(forms.ticked("def-")) == [
            ("1", "photo"),
            ("self", "identity_doc"),
            ("self", "number_doc"),
        ]
