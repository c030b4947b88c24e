"""Least privilege, proved on PostgreSQL: after ``mynumber db roles`` the public form runs a
whole submission, a birth-date failure, a decline and an inquiry connected as its own role,
and that role is refused every table and column it has no business reading."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.cli import mynumber_group
from app.models import AuditEvent, CollectionRequest, Inquiry, RequestStatus, Submission
from tests.public_form.conftest import BIRTH, Subject
from tests.public_form.test_flow import _submit_household

pytestmark = pytest.mark.only_backend("postgres")

PREFIX = "mnvtest"
PASSWORDS = {
    "owner": "Owner-Test-Passw0rd",
    "portal": "Portal-Test-Passw0rd",
    "form": "Form-Test-Passw0rd",
    "auditor": "Auditor-Test-Passw0rd",
}


def roles_cli(app):
    args = ["db", "roles", "--prefix", PREFIX]
    for kind, password in PASSWORDS.items():
        args += [f"--{kind}-password", password]
    return app.test_cli_runner().invoke(mynumber_group, args=args)


def url_as(instance, kind: str) -> str:
    url = make_url(instance["SQLALCHEMY_DATABASE_URI"])
    return url.set(username=f"{PREFIX}_{kind}", password=PASSWORDS[kind]).render_as_string(
        hide_password=False
    )


@pytest.fixture
def roles(backend, app, instance):
    # Roles are global to the server: another run granting them at the same moment makes
    # PostgreSQL answer "tuple concurrently updated"; the command is idempotent, so run again.
    for _attempt in range(5):
        result = roles_cli(app)
        if "concurrently updated" not in result.output:
            break
        time.sleep(0.5)
    assert result.exit_code == 0, result.output
    return instance


@pytest.fixture
def form_as_role(roles):
    import public_form

    return public_form.create_app({**roles, "SQLALCHEMY_DATABASE_URI": url_as(roles, "form")})


def test_a_whole_submission_as_the_form_role(roles, form_as_role, session, household):
    subject = Subject(form_as_role.test_client())
    done = _submit_household(subject, household)
    assert "受付番号" in done
    session.rollback()
    req = session.get(CollectionRequest, household["req"].id)
    assert req.status == RequestStatus.SUBMITTED
    assert session.execute(select(Submission)).scalar_one().status == "received"
    actions = [e.action for e in session.execute(select(AuditEvent)).scalars()]
    assert "intake.auth" in actions and "intake.submit" in actions


def test_failures_declines_and_inquiries_as_the_form_role(
    roles, form_as_role, session, household, external
):
    subject = Subject(form_as_role.test_client())
    subject.enter(household["token"])
    assert subject.verify(BIRTH.replace(year=BIRTH.year + 1)).status_code in (200, 422)
    session.rollback()
    assert session.get(CollectionRequest, household["req"].id).failed_attempts == 1
    subject.login(household["token"])
    response = subject.post("/decline", {"reason": "not_available", "note": "紛失"})
    assert response.headers["Location"].endswith("/status")
    response = subject.post(
        "/contact",
        {
            "name": "山田 太郎",
            "contact": "taro@example.jp",
            "category": "documents",
            "body": "質問",
        },
    )
    assert "お問い合わせを受け付けました" in response.get_data(as_text=True)
    session.rollback()
    assert session.get(CollectionRequest, household["req"].id).status == RequestStatus.DECLINED
    assert session.execute(select(Inquiry)).scalar_one().body == "質問"


def _refused(url: str, sql: str) -> bool:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        try:
            conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            return True
        return False


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM my_number_record",
        "SELECT blind_index FROM my_number_record",
        "SELECT * FROM data_key",
        "SELECT * FROM person",
        "SELECT address_enc FROM person",
        "SELECT email FROM person",
        "SELECT * FROM audit_event",
        "SELECT sealed FROM submission_part",
        "SELECT body FROM inquiry",
        "UPDATE audit_event SET outcome = 'x'",
        "DELETE FROM audit_event",
        "DELETE FROM collection_request",
        "UPDATE collection_request SET token_hash = token_hash",
        "CREATE TABLE stolen (x int)",
    ],
)
def test_the_form_role_is_refused(roles, household, sql):
    assert _refused(url_as(roles, "form"), sql)


def test_the_form_role_reads_only_what_it_needs(roles, household):
    with psycopg.connect(url_as(roles, "form").replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT name, birth_date FROM person").fetchall()
        assert conn.execute("SELECT id, status FROM collection_request").fetchall()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO audit_event (seq) VALUES (999999)",
        "UPDATE audit_event SET outcome = 'x'",
        "SELECT * FROM my_number_record",
        "SELECT * FROM data_key",
        "SELECT * FROM person",
        "SELECT * FROM submission_part",
        "CREATE TABLE stolen (x int)",
    ],
)
def test_the_auditor_role_is_refused(roles, household, sql):
    assert _refused(url_as(roles, "auditor"), sql)


def test_the_auditor_reads_the_audit_log(roles, household):
    with psycopg.connect(url_as(roles, "auditor").replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM audit_event").fetchone()[0] >= 0
        conn.execute("SELECT * FROM handler_roster_entry")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_event SET outcome = 'x'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
        "UPDATE audit_checkpoint SET hash = 'x'",
        "CREATE TABLE stolen (x int)",
        "ALTER TABLE person ADD COLUMN x int",
        "DROP TABLE inquiry",
    ],
)
def test_the_portal_role_cannot_rewrite_the_audit_log_or_the_schema(roles, household, sql):
    assert _refused(url_as(roles, "portal"), sql)


def test_the_portal_role_works_and_the_command_is_idempotent(roles, app, household):
    with psycopg.connect(url_as(roles, "portal").replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM my_number_record").fetchone() is not None
        conn.execute("UPDATE person SET updated_at = updated_at")
    again = roles_cli(app)
    assert again.exit_code == 0, again.output
    assert "更新しました" in again.output and "パスワード（" not in again.output


@pytest.mark.only_backend("sqlite")
def test_sqlite_gets_a_japanese_message(backend, app):
    result = app.test_cli_runner().invoke(mynumber_group, args=["db", "roles"])
    assert result.exit_code == 1
    assert "PostgreSQL にのみ適用されます" in result.output
