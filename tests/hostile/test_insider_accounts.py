"""Insider attack: a SystemAdmin alone makes an account that reads numbers.

The attack as reported: the SystemAdmin created a ClientStaff account linked to a roster entry
another person's account already used, signed in as it (they had chosen its password and saw
the TOTP secret at enrolment), revealed and exported every number, and then used the same
account to approve their own roster proposal. Each step now ends in a Japanese refusal and an
audit event, and the administrator never holds a credential of the account."""

from __future__ import annotations

import io
import json
import re

import pyotp
import pytest
from sqlalchemy import select

from app.access import policy
from app.access.policy import ShellActor
from app.io import exports, imports, layouts
from app.models import (
    AccountChange,
    Person,
    RosterChange,
    VaultUser,
    utcnow,
)
from app.people import registry
from app.web.identity import actor_for
from tests import support
from tests.conftest import FreshContextClient
from tests.hostile.conftest import assert_clear_refusal, audit_events
from tests.io.helpers import STAFF_HEADER, csv_bytes, staff_rows
from tests.support import csrf_token, post_form, written_bytes

ADMIN_CHOSEN = "Admin-Ch0sen-Passw0rd!"


@pytest.fixture
def stored(session, vault):
    rows = staff_rows(2, dependents=1, seed=1313)
    report = imports.import_csv(
        session,
        vault,
        ShellActor(name="cli:hostile"),
        io.BytesIO(csv_bytes(STAFF_HEADER, rows)),
        layouts.get(session, "staff"),
    )
    assert report.committed
    return session.execute(select(Person).order_by(Person.code)).scalars().all()


@pytest.fixture
def free_entry(session):
    return support.add_free_roster_entry(session)


def new_client(app):
    app.test_client_class = FreshContextClient
    return app.test_client()


def sign_in(client, username: str, password: str, totp_secret: str | None = None):
    response = post_form(client, "/login/", {"username": username, "password": password})
    if totp_secret and response.headers.get("Location", "").endswith("/totp/"):
        response = post_form(client, "/totp/", {"code": pyotp.TOTP(totp_secret).now()})
    return response


def add_user_form(username: str, role_id: int, entry_id: int) -> dict:
    return {
        "first_name": "次郎",
        "last_name": "新任",
        "username": username,
        "email": f"{username}@example.jp",
        "active": "y",
        "password": ADMIN_CHOSEN,
        "conf_password": ADMIN_CHOSEN,
        "roles": [str(role_id)],
        "roster_entry": str(entry_id),
    }


def follow(client, response):
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return client.get(response.headers["Location"])


def test_a_system_admin_cannot_link_a_new_account_to_a_roster_entry_another_account_uses(
    app, client, login, session, make_user
):
    admin, admin_secret = make_user("SystemAdmin", roster=None)
    victim, _ = make_user("ClientStaff")
    login(admin.username, totp_secret=admin_secret)
    role = app.appbuilder.sm.find_role("ClientStaff")
    response = post_form(
        client, "/users/add", add_user_form("shadow", role.id, victim.roster_entry_id)
    )
    assert_clear_refusal(
        follow(client, response), f"既に別のアカウント（{victim.username}）に紐付いています"
    )
    session.expire_all()
    assert session.execute(select(VaultUser).where(VaultUser.username == "shadow")).first() is None
    denied = audit_events("account.change_requested", "denied")
    assert denied and denied[-1].actor_id == admin.id
    assert json.loads(denied[-1].details)["roster_entry_id"] == victim.roster_entry_id


def test_a_system_admin_never_reads_a_number_through_an_account_they_create(
    app, client, login, session, vault, make_user, stored, free_entry
):
    admin, admin_secret = make_user("SystemAdmin", roster=None)
    approver, approver_secret = make_user("ClientStaff")
    login(admin.username, totp_secret=admin_secret)
    admin_pages: list[str] = []

    # 1. The admin creates a ClientStaff account on a free entry: it waits, inactive.
    role = app.appbuilder.sm.find_role("ClientStaff")
    response = post_form(client, "/users/add", add_user_form("shadow", role.id, free_entry.id))
    admin_pages.append(follow(client, response).get_data(as_text=True))
    assert "発注者担当者（申請者以外）の承認後" in admin_pages[-1]
    session.expire_all()
    shadow = session.execute(select(VaultUser).where(VaultUser.username == "shadow")).scalar_one()
    assert not shadow.active and shadow.roles == [] and shadow.roster_entry_id is None
    change = session.execute(select(AccountChange)).scalar_one()
    assert change.status == "pending" and change.requested_by_id == admin.id

    # 2. Before approval it cannot sign in (the password the admin typed was never used),
    #    and as an identity it may neither reveal nor export.
    shadow_client = new_client(app)
    assert_clear_refusal(
        follow(shadow_client, sign_in(shadow_client, "shadow", ADMIN_CHOSEN)),
        "ユーザー名またはパスワードが正しくありません",
    )
    assert audit_events("auth.login", "failure")[-1].actor_name == "shadow"
    with pytest.raises(policy.PermissionDenied):
        registry.reveal(session, vault, actor_for(shadow, mfa=True), stored[0].id, "確認")
    assert audit_events("number.reveal", "denied")
    with pytest.raises(policy.PermissionDenied):
        exports.export_csv(
            session,
            vault,
            actor_for(shadow, mfa=True),
            layouts.get(session, "staff"),
            io.BytesIO(),
            "年末調整",
        )
    assert audit_events("numbers.export", "denied")

    # 3. The admin cannot approve it themselves.
    token = csrf_token(client, "/keys/")  # a page with a form the admin may open
    response = client.post(
        f"/account-changes/{change.id}/decide", data={"csrf_token": token, "decision": "approve"}
    )
    assert_clear_refusal(response, "この操作を行う権限がありません", status=403)
    admin_pages.append(client.get("/account-changes/").get_data(as_text=True))
    admin_pages.append(client.get(f"/users/show/{shadow.id}").get_data(as_text=True))

    # 4. A real ClientStaff approves: the one-time password is shown to them, once.
    approver_client = new_client(app)
    sign_in(approver_client, approver.username, "Str0ng-Passw0rd!", approver_secret)
    response = post_form(
        approver_client,
        f"/account-changes/{change.id}/decide",
        {"decision": "approve", "note": "本人確認済み"},
        token_from="/account-changes/",
    )
    page = response.get_data(as_text=True)
    match = re.search(r'class="mnv-one-time-password">([^<]+)<', page)
    assert response.status_code == 200 and match, page[-1500:]
    one_time = match.group(1)
    assert "一度だけ表示" in page

    # 5. The admin never saw it: not on any page they got, not in anything stored or logged.
    admin_pages.append(client.get("/account-changes/").get_data(as_text=True))
    admin_pages.append(client.get(f"/users/show/{shadow.id}").get_data(as_text=True))
    assert all(one_time not in p for p in admin_pages)
    assert not [where for where, data in written_bytes(app) if one_time.encode() in data]
    # ... and the password they chose does not open the account.
    assert "/login/" in sign_in(new_client(app), "shadow", ADMIN_CHOSEN).headers["Location"]

    # 6. The account the admin created never approves the admin's roster proposal.
    response = post_form(
        client,
        "/roster-changes/propose",
        {
            "action": "add",
            "entry_id": "0",
            "name": "偽 太郎",
            "department": "BPO運用部",
            "title": "係員",
            "nationality": "日本",
            "reason": "増員",
        },
    )
    assert response.status_code == 302
    session.expire_all()
    proposal = session.execute(select(RosterChange)).scalar_one()
    shadow = session.get(VaultUser, shadow.id)
    shadow_secret = pyotp.random_base32()  # the new user enrols their own TOTP
    shadow.totp_secret_enc = vault.seal_system("totp", f"user:{shadow.id}", shadow_secret.encode())
    shadow.totp_enrolled_at = utcnow()
    session.commit()
    shadow_client = new_client(app)
    sign_in(shadow_client, "shadow", one_time, shadow_secret)
    new_password = "Sh4dow-Own-Passw0rd!"
    post_form(
        shadow_client,
        "/resetmypassword/form",
        {"password": new_password, "conf_password": new_password},
    )
    response = post_form(
        shadow_client,
        f"/roster-changes/{proposal.id}/decide",
        {"decision": "approve"},
        token_from="/roster-changes/",
    )
    assert_clear_refusal(
        follow(shadow_client, response),
        "申請者が作成したアカウントのため、申請者の申請を承認できません",
    )
    session.expire_all()
    assert session.get(RosterChange, proposal.id).status == "pending"
    denied = audit_events("roster.change_approved", "denied")
    assert denied and denied[-1].actor_id == shadow.id
