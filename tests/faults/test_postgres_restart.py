"""PostgreSQL restarted under load: requests made while it is down get a clean Japanese 503
(no traceback, nothing half-stored); once it is back, requests succeed again without any
restart of the application, and nothing committed before is lost.

The cluster is a private one (initdb in a temporary folder, a free port): the shared server
is never restarted."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from sqlalchemy import select

from app.audit import verifier
from app.collection import requests
from app.core.actor import Actor
from app.models import PersonKind, Submission, db
from app.people import registry
from tests import support
from tests.conftest import ADMIN_PASSWORD, ADMIN_TOTP_SECRET, FreshContextClient, enrol_admin_totp
from tests.faults.conftest import NUMBER_A, NUMBER_B, submit_alone
from tests.public_form.conftest import BIRTH, PURPOSE, Subject


@pytest.fixture
def pg_apps(private_postgres, tmp_path):
    """The portal and the form on a fresh instance in the private cluster."""
    import public_form
    from app.cli.instance import initialise
    from app.web.factory import create_app

    with psycopg.connect(private_postgres.server_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE mnv")
    overrides = {
        "MYNUMBER_HOME": str(tmp_path / "instance"),
        "SQLALCHEMY_DATABASE_URI": private_postgres.url("mnv"),
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "REDIS_URL": None,
        "SMTP_URL": None,
    }
    portal = create_app(overrides)
    initialise(portal, ADMIN_PASSWORD)
    enrol_admin_totp(portal)
    form = public_form.create_app(overrides)
    ctx = portal.app_context()
    ctx.push()
    yield portal, form
    db.session.remove()
    db.engine.dispose()
    ctx.pop()
    with form.app_context():
        db.engine.dispose()


def _subject(portal, form, name: str) -> Subject:
    vault = portal.extensions["mynumber_vault"]
    person = registry.add_person(
        db.session,
        vault,
        kind=PersonKind.EXTERNAL,
        name=name,
        code=f"X{uuid.uuid4().hex[:5]}",
        birth_date=BIRTH,
    )
    _req, token = requests.create_request(
        db.session, Actor.system("test"), person, purpose_text=PURPOSE
    )
    db.session.commit()
    subject = Subject(form.test_client())
    subject.token = token
    subject.person = person
    return subject


def test_requests_fail_cleanly_while_postgres_restarts_and_recover_with_nothing_lost(
    pg_apps, private_postgres
):
    portal, form = pg_apps
    first = _subject(portal, form, "佐藤 一郎")
    second = _subject(portal, form, "鈴木 二郎")
    first_receipt = submit_alone(first, first.person, NUMBER_A)
    # The second subject has entered everything but not yet pressed 提出.
    ref = str(second.person.id)
    second.login(second.token)
    second.consent()
    assert second.number(ref, NUMBER_B).status_code == 302
    assert second.card(ref).status_code == 302

    # An administrator signed in to the portal (the session names a user to load).
    portal.test_client_class = FreshContextClient  # each request its own context, as served
    admin = portal.test_client()
    support.post_form(admin, "/login/", {"username": "admin", "password": ADMIN_PASSWORD})
    code = support.unused_totp_code(portal, "admin", ADMIN_TOTP_SECRET)
    signed_in = support.post_form(admin, "/totp/", {"code": code})
    assert signed_in.status_code == 302 and not signed_in.headers["Location"].endswith("/login/")
    db.session.remove()  # the test itself holds no connection across the restart
    # Load: a visitor opening links over and over while the server restarts.
    statuses: list[tuple[int, str]] = []
    stop = threading.Event()
    visitor = form.test_client()

    def load() -> None:
        while not stop.is_set():
            response = visitor.get(f"/r/{first.token}")
            statuses.append((response.status_code, response.get_data(as_text=True)))
            time.sleep(0.02)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(0.3)
        private_postgres.stop("fast")
        # While it is down: the subject's submit is refused cleanly, the portal too.
        down = second.submit()
        assert down.status_code == 503
        page = down.get_data(as_text=True)
        assert "しばらく待ってから" in page and "Traceback" not in page
        assert down.headers["Retry-After"]
        portal_page = admin.get("/")
        assert portal_page.status_code == 503
        assert "データベースに一時的に接続できません" in portal_page.get_data(as_text=True)
        time.sleep(0.5)
        private_postgres.start()
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(30)

    codes = [code for code, _ in statuses]
    assert 503 in codes, codes  # the outage was seen …
    assert set(codes) <= {200, 302, 503}, codes  # … and answered cleanly, never a 500
    for code, body in statuses:
        assert "Traceback" not in body
        if code == 503:
            assert "しばらく待ってから" in body
    assert codes[-1] in (200, 302)  # recovered without restarting the application

    assert admin.get("/").status_code in (200, 302)  # the portal is back too

    # The refused submit stored nothing; repeating it now succeeds.
    response = second.submit()
    assert response.headers["Location"].endswith("/done"), response.get_data(as_text=True)
    second_receipt = second.get("/done").get_data(as_text=True)
    receipts = set(db.session.execute(select(Submission.receipt_no)).scalars())
    assert len(receipts) == 2
    assert all(any(r in page for r in receipts) for page in (first_receipt, second_receipt))
    # Nothing lost or torn in the audit chain.
    assert verifier.verify(db.session).ok
