"""SystemAdmin screens: user and roster changes are audited; roles cannot be edited."""

import json

from sqlalchemy import select

from app.models import AccountChange, AuditEvent, HandlerRosterEntry, RosterChange, VaultUser
from tests.conftest import ADMIN_PASSWORD
from tests.support import post_form


def _add_user_form(username: str, role_id: int, entry_id: int | None, password: str = "") -> dict:
    form = {
        "first_name": "次郎",
        "last_name": "担当",
        "username": username,
        "email": f"{username}@example.jp",
        "active": "y",
        "password": password,
        "conf_password": password,
        "roles": [str(role_id)],
    }
    if entry_id is not None:
        form["roster_entry"] = str(entry_id)
    return form


def test_user_with_role_and_roster_link_is_audited(client, login, session, app, make_user):
    """A personal-data account from the user screen waits for approval: it is made inactive,
    without the role or link; an audited AccountChange holds them."""
    entry = HandlerRosterEntry(
        name="担当 次郎", department="人事部", title="主任", nationality="日本", status="pending"
    )
    session.add(entry)
    session.commit()
    admin, secret = make_user("SystemAdmin", roster=None)
    login(admin.username, totp_secret=secret)
    role = app.appbuilder.sm.find_role("ClientStaff")
    response = post_form(client, "/users/add", _add_user_form("jiro", role.id, entry.id))
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    session.expire_all()
    user = session.execute(select(VaultUser).where(VaultUser.username == "jiro")).scalar_one()
    assert user.roster_entry_id is None and user.roles == [] and not user.active
    assert user.created_by_fk == admin.id
    change = session.execute(select(AccountChange)).scalar_one()
    assert (change.action, change.status, change.role_list) == (
        "create",
        "pending",
        ["ClientStaff"],
    )
    assert change.roster_entry_id == entry.id and change.requested_by_id == admin.id
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "user.add")).scalar_one()
    assert json.loads(event.details)["roles"] == []
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "account.change_requested")
    ).scalar_one()
    page = client.get("/account-changes/").get_data(as_text=True)
    assert "jiro" in page and "承認待ち" in page


def test_an_account_without_personal_data_is_made_directly(client, login, session, app, make_user):
    admin, secret = make_user("SystemAdmin", roster=None)
    login(admin.username, totp_secret=secret)
    role = app.appbuilder.sm.find_role("Auditor")
    response = post_form(client, "/users/add", _add_user_form("kansa", role.id, None, "x"))
    assert "12文字以上" in response.get_data(as_text=True)
    response = post_form(client, "/users/add", _add_user_form("kansa", role.id, None))
    session.expire_all()
    assert session.execute(select(VaultUser).where(VaultUser.username == "kansa")).first() is None
    response = post_form(
        client, "/users/add", _add_user_form("kansa", role.id, None, "Str0ng-Passw0rd!")
    )
    assert response.status_code == 302
    session.expire_all()
    user = session.execute(select(VaultUser).where(VaultUser.username == "kansa")).scalar_one()
    assert [r.name for r in user.roles] == ["Auditor"] and user.active
    assert session.execute(select(AccountChange)).first() is None


def test_editing_roles_grants_nothing_until_approved_but_removes_at_once(
    client, login, session, app, make_user
):
    admin, secret = make_user("SystemAdmin", roster=None)
    operator, _ = make_user("Operator")
    login(admin.username, totp_secret=secret)
    sm = app.appbuilder.sm
    staff_role, auditor_role = sm.find_role("ClientStaff"), sm.find_role("Auditor")
    form = {
        "first_name": operator.first_name,
        "last_name": operator.last_name,
        "username": operator.username,
        "email": operator.email,
        "active": "y",
        "roles": [str(staff_role.id), str(auditor_role.id)],
        "roster_entry": str(operator.roster_entry_id),
    }
    response = post_form(client, f"/users/edit/{operator.id}", form)
    assert response.status_code == 302
    session.expire_all()
    user = session.get(VaultUser, operator.id)
    assert [r.name for r in user.roles] == []  # Operator removed now; nothing granted yet
    change = session.execute(select(AccountChange)).scalar_one()
    assert (change.action, change.role_list) == ("update", ["Auditor", "ClientStaff"])
    assert change.previous_role_list == []  # as it stands while the request waits


def test_resetting_the_password_of_a_personal_data_account_becomes_a_request(
    client, login, session, make_user
):
    admin, secret = make_user("SystemAdmin", roster=None)
    staff, _ = make_user("ClientStaff")
    before = session.get(VaultUser, staff.id).password
    login(admin.username, totp_secret=secret)
    new = "An0ther-Passw0rd!"
    url = f"/resetpassword/form?pk={staff.id}"
    response = post_form(client, url, {"password": new, "conf_password": new})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "パスワードは変更していません" in page
    session.expire_all()
    assert session.get(VaultUser, staff.id).password == before
    change = session.execute(select(AccountChange)).scalar_one()
    assert (change.action, change.user_id) == ("password_reset", staff.id)


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


def test_linking_an_account_to_an_entry_another_account_uses_is_refused(
    client, login, session, make_user
):
    admin, secret = make_user("SystemAdmin", roster=None)
    holder, _ = make_user("ClientStaff")
    auditor, _ = make_user("Auditor", roster=None)
    login(admin.username, totp_secret=secret)
    form = {
        "first_name": auditor.first_name,
        "last_name": auditor.last_name,
        "username": auditor.username,
        "email": auditor.email,
        "active": "y",
        "roles": [str(r.id) for r in auditor.roles],
        "roster_entry": str(holder.roster_entry_id),
    }
    response = post_form(client, f"/users/edit/{auditor.id}", form)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"既に別のアカウント（{holder.username}）に紐付いています" in page
    session.expire_all()
    assert session.get(VaultUser, auditor.id).roster_entry_id is None
    assert session.execute(select(AccountChange)).first() is None
    denied = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "account.change_requested", AuditEvent.outcome == "denied"
        )
    ).scalar_one()
    assert denied.actor_id == admin.id


def test_a_totp_reset_is_requested_by_the_admin_and_approved_by_the_client(
    app, client, login, session, make_user
):
    from tests.hostile.test_insider_accounts import new_client, sign_in

    admin, secret = make_user("SystemAdmin", roster=None)
    operator, _ = make_user("Operator")
    staff, staff_secret = make_user("ClientStaff")
    login(admin.username, totp_secret=secret)
    page = client.get("/account-changes/request").get_data(as_text=True)
    assert operator.username in page and admin.username not in page.split("<select")[1]
    response = post_form(
        client,
        "/account-changes/request",
        {"user_id": str(operator.id), "action": "totp_reset", "reason": "端末紛失"},
    )
    assert response.status_code == 302
    change = session.execute(select(AccountChange)).scalar_one()
    assert (change.action, change.status) == ("totp_reset", "pending")

    approver = new_client(app)
    sign_in(approver, staff.username, "Str0ng-Passw0rd!", staff_secret)
    listing = approver.get("/account-changes/").get_data(as_text=True)
    assert "二要素認証（TOTP）の再登録" in listing and "端末紛失" in listing
    response = post_form(
        approver,
        f"/account-changes/{change.id}/decide",
        {"decision": "approve"},
        token_from="/account-changes/",
    )
    assert response.status_code == 302
    assert "承認しました" in approver.get(response.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    assert session.get(VaultUser, operator.id).totp_enrolled_at is None


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


def _edit_form(user: VaultUser, role_ids: list[int], *, active: bool) -> dict:
    form = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
        "email": user.email,
        "roles": [str(i) for i in role_ids],
        "roster_entry": str(user.roster_entry_id) if user.roster_entry_id else "",
    }
    if active:
        form["active"] = "y"
    return form


def test_switching_accounts_off_and_on_again(client, login, session, app, make_user):
    """Switching off applies at once; switching an account without personal data back on
    too; a personal-data account switched back on stays off until a ClientStaff approves."""
    admin, secret = make_user("SystemAdmin", roster=None)
    auditor, _ = make_user("Auditor", roster=None)
    operator, _ = make_user("Operator")
    login(admin.username, totp_secret=secret)
    for user in (auditor, operator):
        role_ids = [r.id for r in user.roles]
        response = post_form(
            client, f"/users/edit/{user.id}", _edit_form(user, role_ids, active=False)
        )
        assert response.status_code == 302
        session.expire_all()
        assert session.get(VaultUser, user.id).active is False
        response = post_form(
            client, f"/users/edit/{user.id}", _edit_form(user, role_ids, active=True)
        )
        assert response.status_code == 302
    session.expire_all()
    assert session.get(VaultUser, auditor.id).active is True
    assert session.get(VaultUser, operator.id).active is False
    change = session.execute(select(AccountChange)).scalar_one()
    assert (change.user_id, change.action, change.status) == (operator.id, "activate", "pending")
    page = client.get("/account-changes/").get_data(as_text=True)
    assert "アカウントの再有効化" in page


def test_re_activation_and_new_access_in_one_edit_are_refused(
    client, login, session, app, make_user
):
    admin, secret = make_user("SystemAdmin", roster=None)
    operator, _ = make_user("Operator")
    login(admin.username, totp_secret=secret)
    operator_role = app.appbuilder.sm.find_role("Operator")
    staff_role = app.appbuilder.sm.find_role("ClientStaff")
    post_form(
        client, f"/users/edit/{operator.id}", _edit_form(operator, [operator_role.id], active=False)
    )
    response = post_form(
        client,
        f"/users/edit/{operator.id}",
        _edit_form(operator, [operator_role.id, staff_role.id], active=True),
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "同時に申請できません" in page
    session.expire_all()
    user = session.get(VaultUser, operator.id)
    assert user.active is False and [r.name for r in user.roles] == ["Operator"]
    assert session.execute(select(AccountChange)).first() is None
    denied = (
        session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "account.change_requested", AuditEvent.outcome == "denied"
            )
        )
        .scalars()
        .all()
    )
    assert denied
