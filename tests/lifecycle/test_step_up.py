"""The fresh TOTP code asked again for a disposal approval or a return archive (the step-up):
the same rules as the code at sign-in — a time step is spent once, and wrong codes count
towards the same account lock, which ends every session of the user."""

import json
import time

import pyotp
import pytest
from sqlalchemy import select

from app.access import lockout, policy
from app.lifecycle import disposal, returns
from app.models import AuditEvent, DisposalRequest, VaultUser
from app.vault import sealed
from tests.lifecycle.helpers import population, user_actor
from tests.support import post_form, unused_totp_code


def _pending(session, vault, make_user, n: int = 1) -> list[DisposalRequest]:
    crowd = population(session, vault, n=n)
    operator, _ = make_user("Operator")
    return [
        disposal.request_disposal(
            session,
            user_actor(operator, "Operator"),
            scope="people",
            reason="保存期間満了",
            person_ids=[someone.id],
        )
        for someone in crowd
    ]


def _events(session, action: str, outcome: str | None = None) -> list[AuditEvent]:
    session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    return list(session.execute(query).scalars())


def _wrong_code(secret: str) -> str:
    """Six digits that no step near now produces for this secret."""
    totp = pyotp.TOTP(secret)
    now = totp.timecode(time.time())
    valid = {totp.generate_otp(step) for step in range(now - 2, now + 3)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)


def test_a_step_up_code_approves_one_action_only(app, session, vault, make_user):
    first, second = _pending(session, vault, make_user, n=2)
    staff, secret = make_user("ClientStaff")
    who = user_actor(staff, "ClientStaff")
    code = unused_totp_code(app, staff.username, secret)
    disposal.decide(session, vault, who, first.id, True, code)
    with pytest.raises(policy.PermissionDenied, match="既に使用されています"):
        disposal.decide(session, vault, who, second.id, True, code)
    session.expire_all()
    assert session.get(DisposalRequest, first.id).status == "approved"
    assert session.get(DisposalRequest, second.id).status == "pending"
    replayed = _events(session, "auth.step_up", "failure")
    assert [json.loads(e.details)["reason"] for e in replayed] == ["step_up_totp_replayed"]
    assert session.get(VaultUser, staff.id).fail_login_count == 1


def test_the_return_archive_refuses_the_code_spent_at_sign_in(
    app, login, session, vault, make_user
):
    population(session, vault, n=1)
    _, recipient = sealed.generate_recipient()  # (private, public) key texts
    staff, secret = make_user("ClientStaff")
    login(staff.username, totp_secret=secret)
    session.expire_all()
    spent = pyotp.TOTP(secret).generate_otp(session.get(VaultUser, staff.id).totp_last_step)
    who = user_actor(staff, "ClientStaff")
    with pytest.raises(policy.PermissionDenied, match="既に使用されています"):
        returns.request_archive(session, vault, who, "返却", recipient, spent)
    assert _events(session, "return.export", "denied")
    row = returns.request_archive(
        session, vault, who, "返却", recipient, unused_totp_code(app, staff.username, secret)
    )
    assert row.status == "pending"


def test_wrong_step_up_codes_lock_the_account_and_end_its_sessions(
    app, client, login, session, vault, make_user
):
    (req,) = _pending(session, vault, make_user)
    staff, secret = make_user("ClientStaff")
    login(staff.username, totp_secret=secret)
    session.expire_all()
    version = session.get(VaultUser, staff.id).session_version
    wrong = _wrong_code(secret)
    limit = app.config["LOGIN_MAX_FAILURES"]
    for attempt in range(1, limit + 1):
        response = post_form(
            client,
            f"/disposal/{req.id}/decide",
            {"decision": "approve", "code": wrong},
            token_from=f"/disposal/{req.id}",
        )
        assert response.status_code == 302
        if attempt < limit:
            page = client.get(response.headers["Location"]).get_data(as_text=True)
            assert "確認コード（TOTP）が正しくありません" in page
    session.expire_all()
    user = session.get(VaultUser, staff.id)
    assert lockout.is_locked(user)
    assert user.session_version > version  # every session of the user ends with the lock
    failures = _events(session, "auth.step_up", "failure")
    assert len(failures) == limit and {json.loads(e.details)["reason"] for e in failures} == {
        "step_up_bad_totp"
    }
    assert [json.loads(e.details)["minutes"] for e in _events(session, "auth.lockout")] == [
        app.config["LOGIN_LOCKOUT_MINUTES"]
    ]
    # The browser that guessed is signed out, with a Japanese reason.
    ended = client.get(response.headers["Location"])
    assert ended.status_code == 302 and "/login/" in ended.headers["Location"]
    assert "ロックされた" in client.get(ended.headers["Location"]).get_data(as_text=True)
    # A correct code no longer helps: the lock is checked first.
    with pytest.raises(policy.PermissionDenied, match="ロックされています"):
        disposal.decide(
            session,
            vault,
            user_actor(user, "ClientStaff"),
            req.id,
            True,
            unused_totp_code(app, staff.username, secret),
        )
    session.expire_all()
    assert session.get(DisposalRequest, req.id).status == "pending"
    assert len(_events(session, "disposal.approved", "denied")) == limit + 1
