"""Accounts that can reach personal data: one account per roster entry, changes only with the
approval of a ClientStaff user independent of the requester, credentials issued to the
approver and never to the administrator."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from app.access import accounts, policy, roster
from app.access.policy import ShellActor
from app.core import mynumber
from app.models import AccountChange, AuditEvent, HandlerRosterEntry, VaultUser, utcnow
from app.web.identity import actor_for
from tests import support


@pytest.fixture
def entry(session):
    """A free, approved roster entry."""
    return support.add_free_roster_entry(session, "新任 花子")


@pytest.fixture
def admin(make_user):
    user, _ = make_user("SystemAdmin", roster=None)
    return user


def act(user: VaultUser, mfa: bool = True):
    return actor_for(user, mfa=mfa)


def blank_account(app, session, username: str, created_by: VaultUser | None = None) -> VaultUser:
    """An account as the user screen leaves it: inactive, no role, no link, no password."""
    sm = app.appbuilder.sm
    user = sm.add_user(
        username=username,
        first_name="新任",
        last_name="花子",
        email=f"{username}@example.jp",
        role=[],
        hashed_password=accounts.unusable_password_hash(),
    )
    user = session.get(VaultUser, user.id)
    user.active = False
    user.created_by_fk = created_by.id if created_by else None
    session.commit()
    return user


def _events(session, action: str, outcome: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    return list(session.execute(query).scalars())


def test_a_roster_entry_backs_at_most_one_account_in_the_database(session, make_user):
    first, _ = make_user("Operator")
    second, _ = make_user("ClientStaff")
    second.roster_entry_id = first.roster_entry_id
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_linking_an_entry_another_account_uses_is_refused_and_audited(
    app, session, make_user, admin
):
    holder, _ = make_user("Operator")
    newcomer = blank_account(app, session, "newcomer", created_by=admin)
    with pytest.raises(accounts.AccountError) as info:
        accounts.propose(
            session,
            act(admin),
            newcomer,
            "create",
            "増員",
            roles=["ClientStaff"],
            roster_entry_id=holder.roster_entry_id,
        )
    assert f"既に別のアカウント（{holder.username}）に紐付いています" in str(info.value)
    denied = _events(session, "account.change_requested", "denied")
    assert denied and "既に別のアカウント" in json.loads(denied[-1].details)["reason"]
    assert session.execute(select(AccountChange)).first() is None


def test_a_second_request_for_the_same_entry_is_refused(app, session, admin, entry):
    one = blank_account(app, session, "one", created_by=admin)
    two = blank_account(app, session, "two", created_by=admin)
    accounts.propose(session, act(admin), one, "create", "増員", ["Operator"], entry.id)
    with pytest.raises(accounts.AccountError, match="承認待ちの申請"):
        accounts.propose(session, act(admin), two, "create", "増員", ["Operator"], entry.id)


def test_creation_applies_only_on_approval_and_the_password_goes_to_the_approver(
    app, session, make_user, admin, entry
):
    staff, _ = make_user("ClientStaff")
    user = blank_account(app, session, "hanako", created_by=admin)
    change = accounts.propose(
        session, act(admin), user, "create", "新任", ["ClientStaff"], entry.id
    )
    session.refresh(user)
    assert not user.active and user.roles == [] and user.roster_entry_id is None
    decision = accounts.decide(session, act(staff), change.id, True, "了承")
    session.refresh(user)
    assert user.active and [r.name for r in user.roles] == ["ClientStaff"]
    assert user.roster_entry_id == entry.id and user.access_set_by_id == admin.id
    assert user.password_change_required and user.totp_secret_enc is None
    assert check_password_hash(user.password, decision.one_time_password)
    assert user.credentials_issued_at is not None
    approved = _events(session, "account.change_approved")
    assert approved and json.loads(approved[-1].details)["credentials_issued"] is True
    assert decision.one_time_password not in approved[-1].details


def test_a_rejected_request_changes_nothing(app, session, make_user, admin, entry):
    staff, _ = make_user("ClientStaff")
    user = blank_account(app, session, "rejected", created_by=admin)
    change = accounts.propose(session, act(admin), user, "create", "新任", ["Operator"], entry.id)
    decision = accounts.decide(session, act(staff), change.id, False, "不要")
    session.refresh(user)
    assert decision.one_time_password is None and not user.active and user.roles == []
    assert _events(session, "account.change_rejected")


def test_granting_access_to_an_existing_account_takes_it_from_whoever_held_it(
    app, session, make_user, admin, entry
):
    """An account whose password the administrator set (no personal role, so they could)
    gets a new password and no TOTP when the approval makes it a personal-data account."""
    staff, _ = make_user("ClientStaff")
    plain, _ = make_user("Auditor", roster=None)
    known = plain.password
    change = accounts.propose(session, act(admin), plain, "update", "異動", ["Operator"], entry.id)
    decision = accounts.decide(session, act(staff), change.id, True)
    session.refresh(plain)
    assert decision.one_time_password and plain.password != known
    assert plain.totp_secret_enc is None and plain.totp_enrolled_at is None


def test_a_password_reset_keeps_totp_and_a_totp_reset_keeps_the_password(session, make_user, admin):
    staff, _ = make_user("ClientStaff")
    operator, _ = make_user("Operator")
    password, secret = operator.password, operator.totp_secret_enc
    change = accounts.propose(session, act(admin), operator, "password_reset", "失念")
    decision = accounts.decide(session, act(staff), change.id, True)
    session.refresh(operator)
    assert decision.one_time_password and operator.password != password
    assert operator.totp_secret_enc == secret
    change = accounts.propose(session, act(admin), operator, "totp_reset", "端末紛失")
    decision = accounts.decide(session, act(staff), change.id, True)
    session.refresh(operator)
    assert decision.one_time_password is None and operator.totp_secret_enc is None


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("admin", "権限"),  # a SystemAdmin holds no approval
        ("subject", "自分のアカウント"),
        ("created", "申請者が作成した"),
        ("set_up", "申請者の申請で設定された"),
        ("no_totp", "二要素"),
        ("auditor", "権限"),
    ],
)
def test_who_may_not_approve_an_account_request(app, session, make_user, admin, who, message):
    target, _ = make_user("Operator")
    others = {
        "admin": admin,
        "subject": target,
        "no_totp": make_user("ClientStaff")[0],
        "auditor": make_user("Auditor", roster=None)[0],
    }
    if who in ("created", "set_up"):
        approver, _ = make_user("ClientStaff")
        if who == "created":
            approver.created_by_fk = admin.id
        else:
            approver.access_set_by_id = admin.id
        session.commit()
        others[who] = approver
    change = accounts.propose(session, act(admin), target, "password_reset", "失念")
    if who == "subject":
        target.roles.append(app.appbuilder.sm.find_role("ClientStaff"))
        session.commit()
    with pytest.raises((accounts.AccountError, policy.PermissionDenied)) as info:
        accounts.decide(session, act(others[who], mfa=who != "no_totp"), change.id, True)
    assert message in str(info.value)
    session.expire_all()
    assert session.get(AccountChange, change.id).status == "pending"


def test_an_account_the_admin_set_up_never_approves_the_admins_requests(
    app, session, make_user, admin, entry
):
    """The chain: the admin creates X, a real ClientStaff approves it; X then refuses to be
    the second person for the admin, for accounts and for the roster alike. A real ClientStaff
    whose password the admin had reset is out as well."""
    real, _ = make_user("ClientStaff")
    other, _ = make_user("ClientStaff")
    x = blank_account(app, session, "x-account", created_by=admin)
    change = accounts.propose(session, act(admin), x, "create", "新任", ["ClientStaff"], entry.id)
    accounts.decide(session, act(real), change.id, True)
    session.refresh(x)

    proposal = roster.propose(
        session,
        act(admin),
        "add",
        "増員",
        roster.EntryFields("偽 太郎", "BPO運用部", "係員", "日本"),
    )
    with pytest.raises(roster.RosterError, match="申請者が作成した"):
        roster.decide(session, act(x), proposal.id, True)
    assert _events(session, "roster.change_approved", "denied")
    reset = accounts.propose(session, act(admin), other, "password_reset", "失念")
    with pytest.raises(accounts.AccountError, match="申請者が作成した"):
        accounts.decide(session, act(x), reset.id, True)

    accounts.decide(session, act(real), reset.id, True)
    session.refresh(other)
    with pytest.raises(roster.RosterError, match="申請者の申請で設定された"):
        roster.decide(session, act(other), proposal.id, True)
    roster.decide(session, act(real), proposal.id, True)  # an independent ClientStaff may


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (["SystemAdmin", "ClientStaff"], "同じアカウントに付与できません"),
        (["Root"], "不明なロール"),
    ],
)
def test_impossible_role_sets_are_refused(app, session, admin, entry, roles, message):
    user = blank_account(app, session, "roles", created_by=admin)
    with pytest.raises(accounts.AccountError, match=message):
        accounts.propose(session, act(admin), user, "create", "新任", roles, entry.id)


def test_one_pending_request_per_account_and_a_reason_is_required(session, make_user, admin):
    operator, _ = make_user("Operator")
    with pytest.raises(accounts.AccountError, match="理由"):
        accounts.propose(session, act(admin), operator, "password_reset", " ")
    accounts.propose(session, act(admin), operator, "password_reset", "失念")
    with pytest.raises(accounts.AccountError, match="承認待ちの申請"):
        accounts.propose(session, act(admin), operator, "totp_reset", "端末紛失")


def test_the_paper_approved_first_account_comes_only_from_the_shell(session, admin, entry):
    kwargs = dict(
        username="first-staff",
        first_name="最初",
        last_name="担当",
        email="first@example.jp",
        role="ClientStaff",
        roster_entry_id=entry.id,
        approved_by="発注者 人事部長 山田",
    )
    with pytest.raises(accounts.AccountError, match="サーバーのコマンド"):
        accounts.add_preapproved(session, act(admin), **kwargs)
    user, password = accounts.add_preapproved(session, ShellActor(name="cli:root"), **kwargs)
    assert user.active and user.password_change_required
    assert check_password_hash(user.password, password)
    event = _events(session, "account.preapproved_add")[-1]
    assert json.loads(event.details)["approved_by"] == "発注者 人事部長 山田"
    with pytest.raises(accounts.AccountError, match="既に別のアカウント"):
        accounts.add_preapproved(
            session, ShellActor(name="cli:root"), **{**kwargs, "username": "second"}
        )


def test_a_session_older_than_the_credentials_ends(client, login, session, make_user, admin):
    staff, _ = make_user("ClientStaff")
    operator, secret = make_user("Operator")
    login(operator.username, totp_secret=secret)
    assert client.get("/people/").status_code == 200
    change = accounts.propose(session, act(admin), operator, "totp_reset", "端末紛失")
    accounts.decide(session, act(staff), change.id, True)
    response = client.get("/people/")
    assert response.status_code == 302 and "/login/" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "ログアウトしました" in page


def test_an_account_the_admin_created_does_not_approve_the_admins_handling_chart(
    app, session, make_user, admin
):
    from app.operations import governance

    x, _ = make_user("ClientStaff")
    x.created_by_fk = admin.id
    session.commit()
    text = governance.ChartText(responsible="運用 一郎", handlers="名簿 花子", contacts="窓口")
    chart = governance.propose_chart(session, act(admin), text)
    with pytest.raises(governance.GovernanceError, match="申請者が作成した"):
        governance.decide_chart(session, act(x), chart.id, True)
    assert _events(session, "handling_chart.approved", "denied")


def test_reactivation_applies_only_on_approval_and_issues_no_credentials(session, make_user, admin):
    """Switching a personal-data account back on is an approved change; it keeps the
    credentials it had (nobody but its holder knows them) and who last set its access."""
    staff, _ = make_user("ClientStaff")
    operator, _ = make_user("Operator")
    with pytest.raises(accounts.AccountError, match="既に有効です"):
        accounts.propose(session, act(admin), operator, "activate", "復職")
    operator.active = False
    operator.access_set_by_id = None
    session.commit()
    password, secret, issued = (
        operator.password,
        operator.totp_secret_enc,
        operator.credentials_issued_at,
    )
    change = accounts.propose(session, act(admin), operator, "activate", "休職からの復職")
    session.refresh(operator)
    assert not operator.active
    decision = accounts.decide(session, act(staff), change.id, True)
    session.refresh(operator)
    assert operator.active and decision.one_time_password is None
    assert (operator.password, operator.totp_secret_enc) == (password, secret)
    assert operator.credentials_issued_at == issued and operator.access_set_by_id is None
    approved = _events(session, "account.change_approved")
    assert json.loads(approved[-1].details)["credentials_issued"] is False


def test_the_approver_shown_a_one_time_password_is_recorded_and_never_the_requesters_second(
    app, session, make_user, admin, entry
):
    """Whoever is shown an account's first password may sign in first and keep the account:
    that account never approves for them. The shell prints the first accounts' passwords to
    nobody on the portal."""
    staff, _ = make_user("ClientStaff")
    user = blank_account(app, session, "hanako", created_by=admin)
    change = accounts.propose(
        session, act(admin), user, "create", "新任", ["ClientStaff"], entry.id
    )
    accounts.decide(session, act(staff), change.id, True)
    session.refresh(user)
    assert user.credentials_issued_to_id == staff.id
    assert "初期パスワードは申請者に表示された" in accounts.approver_conflict(
        session, act(user), staff.id
    )
    other, _ = make_user("ClientStaff")
    assert accounts.approver_conflict(session, act(other), staff.id) is None

    first_entry = HandlerRosterEntry(
        name="初代 担当",
        department="人事部",
        title="課長",
        nationality="日本",
        status="approved",
        approved_by="発注者 人事部長",
        approved_at=utcnow(),
    )
    session.add(first_entry)
    session.commit()
    first, _ = accounts.add_preapproved(
        session,
        ShellActor(name="cli:root"),
        username="shodai",
        first_name="担当",
        last_name="初代",
        email="shodai@example.jp",
        role="ClientStaff",
        roster_entry_id=first_entry.id,
        approved_by="発注者 人事部長（書面）",
    )
    assert first.credentials_issued_to_id is None


NUMBER = mynumber.make_valid("12345678901")
NUMBER_TEXT = f"番号 {NUMBER} で確認"


def test_a_number_in_a_request_reason_or_a_decision_note_is_refused_and_audited(
    session, make_user, admin
):
    staff, _ = make_user("ClientStaff")
    operator, _ = make_user("Operator")
    with pytest.raises(accounts.AccountError, match="申請の理由に"):
        accounts.propose(session, act(admin), operator, "password_reset", NUMBER_TEXT)
    assert session.execute(select(AccountChange)).first() is None
    assert _events(session, "account.change_requested", "denied")
    change = accounts.propose(session, act(admin), operator, "password_reset", "失念")
    with pytest.raises(accounts.AccountError, match="コメントに"):
        accounts.decide(session, act(staff), change.id, False, NUMBER_TEXT)
    session.expire_all()
    stored = session.get(AccountChange, change.id)
    assert stored.status == "pending" and stored.decision_note is None
    denied = _events(session, "account.change_rejected", "denied")
    assert denied and NUMBER not in denied[-1].details
