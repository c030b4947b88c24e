"""The operator's side in the portal: list, audited opening, deficiency, unlock; and the CLI."""

import re

from sqlalchemy import select

from app.access import policy
from app.access.policy import OPERATOR, SYSTEM_ADMIN
from app.cli import mynumber_group
from app.collection import requests
from app.models import AuditEvent, CollectionRequest, RequestStatus
from tests import support
from tests.public_form.conftest import NUMBER_SELF


def _submit_external(subject, external):
    ref = str(external["head"].id)
    subject.login(external["token"])
    subject.consent()
    subject.number(ref, NUMBER_SELF)
    subject.card(ref)
    assert subject.submit().headers["Location"].endswith("/done")
    return ref


def test_operator_lists_opens_and_marks_deficient(
    app, session, client, make_user, portal_login, subject, external
):
    ref = _submit_external(subject, external)
    user, secret = make_user(OPERATOR)
    # Assigned by the client's staff and claimed in the queue: only then listed and opened.
    support.give_case(
        session, external["req"], support.actor(OPERATOR, user_id=user.id, name=user.username)
    )
    portal_login(user.username, secret)
    listing = client.get("/intake/")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "佐藤 一郎" in page and "開封する" in page
    assert NUMBER_SELF not in page and NUMBER_SELF[-4:] + "<" not in page
    match = re.search(r'action="(/intake/[^"]+/open)"', page)
    opened = support.post_form(
        client, match.group(1), {"purpose": "受付内容の確認"}, token_from="/intake/"
    )
    assert opened.status_code == 200
    html = opened.get_data(as_text=True)
    assert f"{NUMBER_SELF[:4]} {NUMBER_SELF[4:8]} {NUMBER_SELF[8:]}" in html
    assert html.count('src="data:image/jpeg;base64,') == 2
    assert opened.headers["Cache-Control"] == "no-store"
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "intake.open")
    ).scalar_one()
    assert event.actor_name == user.username and event.purpose == "受付内容の確認"

    decide = re.search(r'action="(/intake/request/[^"]+/decide)"', html).group(1)
    response = support.post_form(
        client,
        decide,
        {"action": "deficient", f"def-{ref}": "identity_doc_expired", "note": "期限切れ"},
        token_from="/intake/",
    )
    assert response.status_code == 302
    req = session.get(CollectionRequest, external["req"].id)
    session.refresh(req)
    assert req.status == RequestStatus.DEFICIENT
    assert req.reopened_items == [{"ref": ref, "part": "documents"}]
    status = type(subject)(subject.client.application.test_client())
    status.login(external["token"])
    assert "有効期限が切れています" in status.get("/status").get_data(as_text=True)


def test_system_admin_cannot_reach_intake(app, client, login, subject, external):
    from tests.conftest import ADMIN_PASSWORD

    _submit_external(subject, external)
    login("admin", ADMIN_PASSWORD)
    assert client.get("/users/list/").status_code == 200  # signed in for real
    response = client.get("/intake/")
    assert response.status_code in (302, 403)
    assert "佐藤" not in response.get_data(as_text=True)
    actor = support.actor(SYSTEM_ADMIN)
    assert not policy.allows(actor, "can_open", "Intake")


def test_cli_issues_a_working_link(app, session, external, form_app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        mynumber_group,
        args=["request", "create", "--person", str(external["head"].id), "--days", "7"],
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    token = url.rsplit("/r/", 1)[1]
    assert url.startswith(app.config["PUBLIC_FORM_URL"])
    req = requests.lookup(session, token)
    assert req is not None and req.status == RequestStatus.ISSUED
    # The earlier link of the same person was replaced.
    session.refresh(external["req"])
    assert external["req"].status == RequestStatus.CANCELLED
    assert form_app.test_client().get(f"/r/{token}").status_code == 302
    bad = runner.invoke(mynumber_group, args=["request", "create", "--person", "nope"])
    assert bad.exit_code != 0 and "人物IDの形式が正しくありません" in bad.output
