"""SystemAdmin screens: user and roster changes are audited; roles cannot be edited."""

import json

from sqlalchemy import select

from app.models import AuditEvent, HandlerRosterEntry, RosterChange, VaultUser
from tests.conftest import ADMIN_PASSWORD
from tests.support import post_form


def test_user_with_role_and_roster_link_is_audited(client, login, session, app):
    entry = HandlerRosterEntry(
        name="担当 次郎", department="人事部", title="主任", nationality="日本", status="pending"
    )
    session.add(entry)
    session.commit()
    login("admin", ADMIN_PASSWORD)
    role = app.appbuilder.sm.find_role("ClientStaff")
    response = post_form(
        client,
        "/users/add",
        {
            "first_name": "次郎",
            "last_name": "担当",
            "username": "jiro",
            "email": "jiro@example.jp",
            "active": "y",
            "password": "Str0ng-Passw0rd!",
            "conf_password": "Str0ng-Passw0rd!",
            "roles": [str(role.id)],
            "roster_entry": str(entry.id),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    session.expire_all()
    user = session.execute(select(VaultUser).where(VaultUser.username == "jiro")).scalar_one()
    assert user.roster_entry_id == entry.id
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "user.add")).scalar_one()
    details = json.loads(event.details)
    assert details["roles"] == ["ClientStaff"] and details["roster_entry_id"] == entry.id


def test_roles_cannot_be_edited_from_the_portal(client, login):
    login("admin", ADMIN_PASSWORD)
    assert client.get("/roles/add").status_code in (403, 404)
    assert client.get("/roles/list/").status_code in (403, 404)
    # FAB's permission editors and login statistics are not part of the portal at all.
    for url in (
        "/permissions/list/",
        "/viewmenus/list/",
        "/permissionviews/list/",
        "/userstatschartview/chart/",
    ):
        assert client.get(url).status_code == 404, url


def test_roster_change_flow_on_the_portal(client, login, session, make_user, app):
    login("admin", ADMIN_PASSWORD)
    assert client.get("/rosterview/add").status_code in (403, 404)  # no direct edits
    response = post_form(
        client,
        "/roster-changes/propose",
        {
            "action": "add",
            "entry_id": "0",
            "name": "名簿 一郎",
            "department": "BPO運用部",
            "title": "主任",
            "nationality": "日本",
            "reason": "新任の事務取扱担当者",
        },
    )
    assert response.status_code == 302
    session.expire_all()
    assert (
        session.execute(
            select(HandlerRosterEntry).where(HandlerRosterEntry.name == "名簿 一郎")
        ).first()
        is None
    )  # not before approval
    client.get("/logout/")

    staff, secret = make_user("ClientStaff")
    from tests.support import csrf_token

    client.get("/logout/")
    import pyotp

    from tests.conftest import USER_PASSWORD

    post_form(client, "/login/", {"username": staff.username, "password": USER_PASSWORD})
    post_form(client, "/totp/", {"code": pyotp.TOTP(secret).now()})
    page = client.get("/roster-changes/").get_data(as_text=True)
    assert "名簿 一郎" in page and "承認" in page
    change_id = session.execute(select(RosterChange.id)).scalar_one()
    token = csrf_token(client, "/roster-changes/")
    response = client.post(
        f"/roster-changes/{change_id}/decide",
        data={"csrf_token": token, "decision": "approve", "note": "了承"},
    )
    assert response.status_code == 302
    session.expire_all()
    entry = session.execute(
        select(HandlerRosterEntry).where(HandlerRosterEntry.name == "名簿 一郎")
    ).scalar_one()
    assert entry.is_approved and entry.approved_by == staff.username


def test_a_number_in_a_users_name_is_refused_it_would_be_every_audit_events_actor_name(
    client, make_user, login, session, app
):
    admin, secret = make_user("SystemAdmin", roster=None)
    login(admin.username, totp_secret=secret)
    role = app.appbuilder.sm.find_role("Operator")
    response = post_form(
        client,
        "/users/add",
        {
            "first_name": "1234.5678.9018",
            "last_name": "担当",
            "username": "numbered",
            "email": "numbered@example.jp",
            "active": "y",
            "password": "Str0ng-Passw0rd!",
            "conf_password": "Str0ng-Passw0rd!",
            "roles": [str(role.id)],
        },
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "名に個人番号と思われる12桁の数字が含まれています" in html
    session.expire_all()
    assert (
        session.execute(select(VaultUser).where(VaultUser.username == "numbered")).first() is None
    )
