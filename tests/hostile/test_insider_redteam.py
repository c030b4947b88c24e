"""Insider attacks found by an independent review after the first insider review was fixed.

Each test plays one insider (SystemAdmin, ClientStaff, Operator) through the portal as they
would, and states what must hold. A failing test is an open hole: the attack worked."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from sqlalchemy import select

from app.access import accounts, assignments, policy
from app.core import mynumber
from app.lifecycle import disposal
from app.models import AccountChange, AuditEvent, DisposalRequest, VaultUser
from app.web.identity import actor_for
from tests import support
from tests.conftest import FreshContextClient
from tests.hostile.conftest import assert_clear_refusal, audit_events
from tests.support import add_employee_with_number, leaks, post_form

NUMBER = mynumber.make_valid("36925814703")


def new_client(app):
    app.test_client_class = FreshContextClient
    return app.test_client()


def edit_form(user: VaultUser, roles: list, *, active: bool = True, **changes) -> dict:
    """FAB's user edit form as a browser posts it (an unchecked box is simply absent)."""
    form = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
        "email": user.email,
        "roles": [str(r.id) for r in roles],
        "roster_entry": str(user.roster_entry_id) if user.roster_entry_id else "",
        **changes,
    }
    if active:
        form["active"] = "y"
    return form


def follow(client, response):
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return client.get(response.headers["Location"])


# -- SystemAdmin: the FAB user screen ------------------------------------------------------------
def test_reactivating_a_personal_data_account_needs_approval(
    app, client, login, session, make_user
):
    """An Operator is switched off (left, suspended, under investigation). The SystemAdmin alone
    switches the account back on: its holder reads numbers again with no ClientStaff approval.
    Re-activation grants access to personal data like a new role does, so it must wait for an
    ``AccountChange`` the client approves."""
    admin, admin_secret = make_user("SystemAdmin", roster=None)
    operator, _ = make_user("Operator")
    login(admin.username, totp_secret=admin_secret)
    roles = list(operator.roles)

    response = post_form(
        client, f"/users/edit/{operator.id}", edit_form(operator, roles, active=False)
    )
    assert response.status_code == 302
    session.expire_all()
    assert session.get(VaultUser, operator.id).active is False  # taking access away: at once

    response = post_form(client, f"/users/edit/{operator.id}", edit_form(operator, roles))
    follow(client, response)
    session.expire_all()
    assert session.get(VaultUser, operator.id).active is False, (
        "the SystemAdmin re-activated a personal-data account without any approval"
    )
    pending = session.execute(
        select(AccountChange).where(
            AccountChange.user_id == operator.id, AccountChange.status == "pending"
        )
    ).scalar()
    assert pending is not None


def test_the_system_admin_role_is_never_added_to_a_personal_data_account(
    app, client, login, session, make_user
):
    """``accounts._check_roles`` says the SystemAdmin role and a personal-data role never share
    an account. Adding SystemAdmin to an existing ClientStaff account on the user screen (no
    personal role is *gained*, so no check runs) gives one person both the administrator's
    powers and, once SystemAdmin is removed again, the ClientStaff access back without review."""
    admin, admin_secret = make_user("SystemAdmin", roster=None)
    staff, _ = make_user("ClientStaff")
    login(admin.username, totp_secret=admin_secret)
    sa_role = app.appbuilder.sm.find_role("SystemAdmin")

    response = post_form(
        client, f"/users/edit/{staff.id}", edit_form(staff, [*staff.roles, sa_role])
    )
    page = follow(client, response) if response.status_code == 302 else response
    session.expire_all()
    names = {r.name for r in session.get(VaultUser, staff.id).roles}
    assert not ({"SystemAdmin", "ClientStaff"} <= names), (
        "the user screen put SystemAdmin and ClientStaff on one account"
    )
    assert_clear_refusal(page, "同じアカウントに付与できません")
    assert audit_events("account.change_requested", "denied")


# -- stored text: a number typed where none belongs ----------------------------------------------
def test_a_number_in_an_account_change_reason_is_refused_and_never_stored(
    app, client, login, session, make_user
):
    """The reason of a password/TOTP reset request is free text stored in ``account_change`` and
    shown to every ClientStaff and Auditor; every other free-text field refuses a number."""
    admin, admin_secret = make_user("SystemAdmin", roster=None)
    operator, _ = make_user("Operator")
    login(admin.username, totp_secret=admin_secret)
    response = post_form(
        client,
        "/account-changes/request",
        {
            "user_id": str(operator.id),
            "action": "password_reset",
            "reason": f"本人の個人番号 {NUMBER} で本人確認済み",
        },
    )
    page = follow(client, response) if response.status_code == 302 else response
    assert not leaks(app, [NUMBER]), "a typed number was stored in clear text"
    assert_clear_refusal(page, "理由に")
    assert session.execute(select(AccountChange)).first() is None


def test_a_number_in_an_account_decision_note_is_refused_and_never_stored(
    app, client, login, session, make_user
):
    """The approver's comment on an account change (``decision_note``) is stored as typed."""
    admin, _ = make_user("SystemAdmin", roster=None)
    operator, _ = make_user("Operator")
    approver, approver_secret = make_user("ClientStaff")
    change = accounts.propose(
        session, actor_for(admin, mfa=True), operator, "totp_reset", "端末の紛失"
    )
    login(approver.username, totp_secret=approver_secret)
    response = post_form(
        client,
        f"/account-changes/{change.id}/decide",
        {"decision": "reject", "note": f"番号 {NUMBER} を確認"},
        token_from="/account-changes/",
    )
    page = follow(client, response) if response.status_code == 302 else response
    assert not leaks(app, [NUMBER]), "a typed number was stored in clear text"
    assert_clear_refusal(page, "コメントに")
    session.expire_all()
    assert session.get(AccountChange, change.id).status == "pending"


# -- ClientStaff: the approver holds the new account's first password ----------------------------
@pytest.fixture
def free_entry(session):
    return support.add_free_roster_entry(session)


def _approver_takes_over_a_new_account(app, client, login, session, make_user, role, entry):
    """The SystemAdmin requests a new personal-data account; a ClientStaff user approves it,
    is shown the one-time password, and signs in with it before its real holder does (enrolling
    a TOTP secret of their own). Returns (approver, approver_secret, account, account_secret)."""
    admin, _ = make_user("SystemAdmin", roster=None)
    approver, approver_secret = make_user("ClientStaff")
    account = VaultUser(
        username="shinnin",
        first_name="次郎",
        last_name="新任",
        email="shinnin@example.jp",
        active=False,
        password=accounts.unusable_password_hash(),
    )
    session.add(account)
    session.commit()
    change = accounts.propose(
        session,
        actor_for(admin, mfa=True),
        account,
        "create",
        "新任者のアカウント",
        roles=[role],
        roster_entry_id=entry.id,
    )
    login(approver.username, totp_secret=approver_secret)
    response = post_form(
        client,
        f"/account-changes/{change.id}/decide",
        {"decision": "approve"},
        token_from="/account-changes/",
    )
    match = re.search(r'class="mnv-one-time-password">([^<]+)<', response.get_data(as_text=True))
    assert response.status_code == 200 and match
    one_time = match.group(1)

    # The approver, not the new user, signs in first and enrols their own authenticator.
    hijack = new_client(app)
    response = post_form(hijack, "/login/", {"username": "shinnin", "password": one_time})
    assert response.headers["Location"].endswith("/totp/")
    page = hijack.get("/totp/").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    response = post_form(hijack, "/totp/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    own = "Appr0ver-Kept-Passw0rd!"
    response = post_form(hijack, "/resetmypassword/form", {"password": own, "conf_password": own})
    session.expire_all()
    account = session.get(VaultUser, account.id)
    assert account.active and not account.password_change_required
    return approver, approver_secret, account, secret


def test_an_account_whose_first_password_the_approver_saw_never_approves_that_approvers_disposal(
    app, client, login, session, vault, make_user, free_entry
):
    """A disposal needs a ClientStaff user other than the requester. The approver of an
    account's creation held its first password and may hold the account still: approving their
    own disposal request through it is the one person acting as two."""
    approver, _, account, account_secret = _approver_takes_over_a_new_account(
        app, client, login, session, make_user, "ClientStaff", free_entry
    )
    person = add_employee_with_number(session, vault, NUMBER)
    req = disposal.request_disposal(
        session,
        actor_for(approver, mfa=True),
        scope="people",
        reason="退職者の保存期間満了",
        person_ids=[person.id],
    )
    with pytest.raises((disposal.DisposalError, policy.PermissionDenied)) as refused:
        disposal.decide(
            session,
            vault,
            actor_for(account, mfa=True),
            req.id,
            True,
            # the next step's code: not the one spent at sign-in (a replay is another refusal)
            totp_code=pyotp.TOTP(account_secret).generate_otp(
                pyotp.TOTP(account_secret).timecode(time.time()) + 1
            ),
        )
    assert "承認" in str(refused.value)
    session.expire_all()
    assert session.get(DisposalRequest, req.id).status == "pending"
    assert audit_events("disposal.approved", "denied")


def test_a_client_staff_user_never_assigns_an_operator_account_whose_first_password_they_saw(
    app, client, login, session, vault, make_user, free_entry
):
    """ "Assigned" must mean that a second party decided (app.access.assignments). A ClientStaff user who
    approved an Operator account, and so held its first password, would assign themselves a
    campaign's cases and open the subjects' submissions and ID images: one person, two roles."""
    from app.collection import campaigns
    from app.models import CampaignKind
    from tests.collection.conftest import future_business_day

    approver, _, account, _ = _approver_takes_over_a_new_account(
        app, client, login, session, make_user, "Operator", free_entry
    )
    staff = actor_for(approver, mfa=True)
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="2026年度 収集",
        kind=CampaignKind.EMPLOYEE,
        deadline=future_business_day(),
        purpose_text="給与所得の源泉徴収票作成事務",
    )
    session.commit()
    with pytest.raises((assignments.AssignmentError, policy.PermissionDenied)):
        assignments.assign(session, staff, campaign, account.id)
    session.rollback()
    assert not assignments.is_assigned(session, account.id, campaign.id)


# -- the disposal step-up code ------------------------------------------------------------------
def _pending_disposal(session, vault, make_user):
    requester, _ = make_user("ClientStaff")
    person = add_employee_with_number(session, vault, NUMBER)
    return disposal.request_disposal(
        session,
        actor_for(requester, mfa=True),
        scope="people",
        reason="退職者の保存期間満了",
        person_ids=[person.id],
    )


def test_the_code_spent_at_sign_in_does_not_pass_the_disposal_step_up(
    app, client, login, session, vault, make_user
):
    """The step-up asks for "a fresh TOTP code for this one action". The sign-in refuses a code
    whose time step was already spent (``verify_totp_once``); the step-up accepts the very code
    typed at sign-in (seen over a shoulder, kept in a proxy log, or replayed by whoever sits at
    the unlocked browser), so it proves nothing the session did not already."""
    req = _pending_disposal(session, vault, make_user)
    approver, secret = make_user("ClientStaff")
    login(approver.username, totp_secret=secret)
    session.expire_all()
    spent_step = session.get(VaultUser, approver.id).totp_last_step
    assert spent_step is not None
    spent_code = pyotp.TOTP(secret).generate_otp(spent_step)
    with pytest.raises(policy.PermissionDenied):
        disposal.decide(
            session, vault, actor_for(approver, mfa=True), req.id, True, totp_code=spent_code
        )
    session.expire_all()
    assert session.get(DisposalRequest, req.id).status == "pending"


def test_wrong_step_up_codes_lock_the_account_like_wrong_sign_in_codes(
    app, session, vault, make_user
):
    """Wrong sign-in codes lock the account after LOGIN_MAX_FAILURES; wrong step-up codes are
    only audited, so whoever holds a signed-in ClientStaff session may try codes until one of
    the three valid ones matches and approve a disposal or a return archive."""
    req = _pending_disposal(session, vault, make_user)
    approver, secret = make_user("ClientStaff")
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(time.time())
    valid = {totp.generate_otp(s) for s in range(now_step - 2, now_step + 3)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        with pytest.raises(policy.PermissionDenied):
            disposal.decide(
                session, vault, actor_for(approver, mfa=True), req.id, True, totp_code=wrong
            )
    session.expire_all()
    user = session.get(VaultUser, approver.id)
    assert user.locked_until is not None, "unlimited guesses at the step-up code"
    with pytest.raises(policy.PermissionDenied):
        disposal.decide(
            session, vault, actor_for(user, mfa=True), req.id, True, totp_code=totp.now()
        )


# -- Operator: the import as a number oracle -----------------------------------------------------
def _import_report(session, vault, actor, rows):
    import io

    from app.io import imports, layouts
    from tests.io.helpers import STAFF_HEADER, csv_bytes

    report = imports.import_csv(
        session,
        vault,
        actor,
        io.BytesIO(csv_bytes(STAFF_HEADER, rows)),
        layouts.get(session, "staff"),
    )
    session.rollback()
    return report.committed, sorted((p.line, p.reason) for p in report.problems)


def test_an_operator_import_never_tells_whether_a_number_is_stored(app, session, vault, make_user):
    """An Operator holding no case may not learn a stored number (rule 3). The people search
    shows them anyone's last four digits, leaving about 10^7 valid candidates; an import lists,
    line by line, the candidates that are 「既に別の人物に登録されています」, and a million-row
    import is the tool's ordinary size. So an Operator does not import at all: the service
    refuses before it reads a row, with one answer whatever the file holds, audited; the client's
    staff (who may reveal numbers anyway) import."""
    from app.core.mynumber import make_valid

    victim = add_employee_with_number(session, vault, NUMBER, code="E0001")
    assert victim is not None
    operator, _ = make_user("Operator")
    actor = actor_for(operator, mfa=True)
    fresh = [make_valid(f"{v:011d}") for v in range(10**10, 10**10 + 4)]

    def rows(numbers):
        return [
            [f"X{i:05d}", "試験 太郎", "本人", f"X{i:05d}-00", "1980/04/01", n]
            for i, n in enumerate(numbers)
        ]

    answers = []
    for numbers in (rows([*fresh[:3], NUMBER]), rows(fresh)):
        with pytest.raises(policy.PermissionDenied) as refused:
            _import_report(session, vault, actor, numbers)
        answers.append(str(refused.value))
    assert answers[0] == answers[1] and "権限" in answers[0]
    denied = (
        session.execute(
            select(AuditEvent).where(
                AuditEvent.actor_id == operator.id, AuditEvent.outcome == "denied"
            )
        )
        .scalars()
        .all()
    )
    assert len(denied) == 2
    staff, _ = make_user("ClientStaff")
    committed, problems = _import_report(session, vault, actor_for(staff, mfa=True), rows(fresh))
    assert problems == []


def test_a_system_admin_never_widens_their_own_role(app, client, login, session, make_user):
    """ "Widen their own role" is what a malicious insider must never do (docs/security.md,
    Actors). The user screen refuses a personal-data role on one's own account, but a
    SystemAdmin still adds the Auditor role to themselves and so audits their own actions."""
    admin, admin_secret = make_user("SystemAdmin", roster=None)
    login(admin.username, totp_secret=admin_secret)
    auditor_role = app.appbuilder.sm.find_role("Auditor")
    response = post_form(
        client, f"/users/edit/{admin.id}", edit_form(admin, [*admin.roles, auditor_role])
    )
    page = follow(client, response) if response.status_code == 302 else response
    session.expire_all()
    assert "Auditor" not in {r.name for r in session.get(VaultUser, admin.id).roles}, (
        "a SystemAdmin gave themselves the Auditor role"
    )
    assert_clear_refusal(page)
