"""Fixtures for the hostile-input suite: the public form, collection and import fixtures
reused as they are, plus helpers that every hostile test needs — row counts before and after
(nothing stored half-way), the audit events a refusal leaves, and the checks that a response
is a clear Japanese answer rather than a traceback or a 500."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, db

# The fixtures of the collection and public-form suites, reused as they are (not their
# autouse set-up, which needs a database: the modules that load targets import it).
from tests.collection.conftest import (  # noqa: F401
    form_app,
    operators,
    portal_login,
    staff,
    subject,
)
from tests.public_form.conftest import external, household  # noqa: F401

_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.exc", "Werkzeug")


def count(model) -> int:
    """Rows of a table, read fresh (another request may have written since)."""
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def counts(*models) -> dict[str, int]:
    return {m.__tablename__: count(m) for m in models}


def audit_events(action: str | None = None, outcome: str | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if action:
        query = query.where(AuditEvent.action == action)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    return list(db.session.execute(query).scalars())


def assert_clear_refusal(response, *expected: str, status: int | None = None) -> str:
    """A refusal a person can act on: not a 500, no traceback, Japanese text, and each
    expected phrase present. Returns the page text."""
    html = response.get_data(as_text=True)
    assert response.status_code != 500, html[:2000]
    if status is not None:
        assert response.status_code == status, (response.status_code, html[:2000])
    for marker in _TRACEBACK_MARKERS:
        assert marker not in html, marker
    if response.status_code not in (301, 302, 303):
        assert _JAPANESE.search(html), html[:500]
    for phrase in expected:
        assert phrase in html, (phrase, html[:3000])
    return html


@pytest.fixture
def signed_in(make_user, login):
    """Sign in a user of a role through the real pages (an Auditor or SystemAdmin needs no
    roster entry; every role enters a TOTP code). Returns the user."""

    def do(role: str, **kwargs):
        if role in ("Auditor", "SystemAdmin"):
            kwargs = {"roster": None, **kwargs}
        user, secret = make_user(role, **kwargs)
        login(user.username, totp_secret=secret)
        return user

    return do
