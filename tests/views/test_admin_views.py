"""SystemAdmin screens: user and roster changes are audited; roles cannot be edited."""

import json

from sqlalchemy import select

from app.models import AuditEvent, HandlerRosterEntry, VaultUser
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


def test_roster_approval_needs_approver_and_time(client, login, session):
    entry = HandlerRosterEntry(
        name="担当 三郎", department="人事部", title="係員", nationality="日本", status="pending"
    )
    session.add(entry)
    session.commit()
    login("admin", ADMIN_PASSWORD)
    response = post_form(
        client,
        f"/rosterview/edit/{entry.id}",
        {
            "name": "担当 三郎",
            "department": "人事部",
            "title": "係員",
            "nationality": "日本",
            "status": "approved",
            "approved_by": "",
            "approved_at": "",
            "note": "",
        },
        follow_redirects=True,
    )
    session.expire_all()
    assert session.get(HandlerRosterEntry, entry.id).status == "pending"
    assert "承認者と承認日時" in response.get_data(as_text=True)
