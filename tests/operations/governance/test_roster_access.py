"""情報取扱者名簿 and access: an account unlinked from the roster (or whose entry is revoked)
loses its Operator/ClientStaff access at its very next request, and a roster change takes
effect only when a ClientStaff user other than the proposer approves it."""

import pytest
from sqlalchemy import select

from app.access import policy, roster
from app.models import HandlerRosterEntry, VaultUser
from tests.support import actor, post_form

FIELDS = roster.EntryFields("名簿 次郎", "BPO運用部", "主任", "日本")


def signed_in(app, login_as, role: str, make_user):
    """A browser of its own, signed in as a new user of ``role``."""
    from tests.conftest import FreshContextClient

    user, secret = make_user(role)
    app.test_client_class = FreshContextClient  # each request its own context, as a server
    browser = app.test_client()
    login_as(browser, user.username, secret)
    return user, browser


@pytest.fixture
def login_as():
    import pyotp

    from tests.conftest import USER_PASSWORD

    def do(browser, username, secret):
        response = post_form(browser, "/login/", {"username": username, "password": USER_PASSWORD})
        if response.headers.get("Location", "").endswith("/totp/"):
            response = post_form(browser, "/totp/", {"code": pyotp.TOTP(secret).now()})
        assert response.status_code == 302

    return do


def allowed(browser, url: str) -> bool:
    return browser.get(url).status_code == 200


def test_revoked_entry_loses_access_at_the_next_request(app, session, make_user, login_as):
    staff, browser = signed_in(app, login_as, "ClientStaff", make_user)
    assert allowed(browser, "/my-inquiries/") and allowed(browser, "/register/")
    change = roster.propose(
        session, actor("SystemAdmin", user_id=1), "revoke", "退職", entry_id=staff.roster_entry_id
    )
    # Proposed only: nothing changes yet.
    assert allowed(browser, "/my-inquiries/")
    approver, _ = make_user("ClientStaff")
    roster.decide(session, actor("ClientStaff", user_id=approver.id), change.id, True)
    # The same signed-in session, next request: refused.
    assert not allowed(browser, "/my-inquiries/")
    assert not allowed(browser, "/register/")


def test_unlinked_account_loses_access_at_the_next_request(app, session, make_user, login_as):
    operator, browser = signed_in(app, login_as, "Operator", make_user)
    assert allowed(browser, "/inquiryview/list/")
    user = session.get(VaultUser, operator.id)
    user.roster_entry_id = None  # the SystemAdmin removed the link on the user screen
    session.commit()
    assert not allowed(browser, "/inquiryview/list/")
    from app.web.identity import actor_for

    session.refresh(user)
    with pytest.raises(policy.PermissionDenied, match="名簿"):
        policy.require(actor_for(user, mfa=True), "can_list", "Inquiries")


def test_a_change_takes_effect_only_after_approval_by_another_client_user(
    app, session, make_user, login_as
):
    admin, admin_browser = signed_in(app, login_as, "SystemAdmin", make_user)
    response = post_form(
        admin_browser,
        "/roster-changes/propose",
        {
            "action": "add",
            "entry_id": 0,
            "name": FIELDS.name,
            "department": FIELDS.department,
            "title": FIELDS.title,
            "nationality": FIELDS.nationality,
            "reason": "増員",
        },
    )
    assert response.status_code == 302
    names = lambda: set(session.execute(select(HandlerRosterEntry.name)).scalars())  # noqa: E731
    session.expire_all()
    assert FIELDS.name not in names()  # proposed, not applied
    # The SystemAdmin cannot approve what it proposed (nor anything: it is the operator's side).
    change_id = session.execute(
        select(roster.RosterChange.id).where(roster.RosterChange.name == FIELDS.name)
    ).scalar_one()
    refused = post_form(
        admin_browser,
        f"/roster-changes/{change_id}/decide",
        {"decision": "approve"},
        token_from="/roster-changes/propose",
    )
    assert refused.status_code in (302, 403)
    session.expire_all()
    assert FIELDS.name not in names()
    # A ClientStaff account that is the proposer is refused too (separation of duties).
    with pytest.raises(roster.RosterError, match="自分が申請"):
        roster.decide(session, actor("ClientStaff", user_id=admin.id), change_id, True)
    # Another ClientStaff approves through the screen: now it is on the roster.
    _, client_browser = signed_in(app, login_as, "ClientStaff", make_user)
    response = post_form(
        client_browser,
        f"/roster-changes/{change_id}/decide",
        {"decision": "approve"},
        token_from="/roster-changes/",
    )
    assert response.status_code == 302
    session.expire_all()
    entry = session.execute(
        select(HandlerRosterEntry).where(HandlerRosterEntry.name == FIELDS.name)
    ).scalar_one()
    assert entry.is_approved
    csv_text = client_browser.get("/roster-export/roster.csv").get_data().decode("utf-8-sig")
    assert FIELDS.name in csv_text
