"""Insider attacks on sign-in state: a cookie kept past a lock or a logout, a TOTP code used
twice, FAB's password-only REST login, and administrator or auditor accounts behind a password
alone. Each ends in a clear Japanese refusal and an audit event."""

from __future__ import annotations

import json
import time

import pyotp

from app.models import VaultUser
from tests.conftest import USER_PASSWORD
from tests.hostile.conftest import assert_clear_refusal, audit_events
from tests.support import csrf_token, post_form


def details(event) -> dict:
    return json.loads(event.details)


def _pending_sign_in(client, username: str) -> tuple[str, str]:
    """The password step, as an attacker holding the password does it: the session cookie
    of the half-finished sign-in and the TOTP form's CSRF token, both kept for later."""
    response = post_form(client, "/login/", {"username": username, "password": USER_PASSWORD})
    assert response.headers["Location"].endswith("/totp/")
    token = csrf_token(client, "/totp/")
    return client.get_cookie("session").value, token


def _follow(client, response):
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"])


# -- row 2: the TOTP step honours the lock ---------------------------------------------------
def test_a_pending_sign_in_saved_before_a_lock_cannot_be_finished_with_the_right_code(
    app, client, make_user, session
):
    user, secret = make_user("Operator")
    saved_cookie, saved_token = _pending_sign_in(client, user.username)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/totp/", data={"code": "000000", "csrf_token": saved_token})
    session.expire_all()
    assert session.get(VaultUser, user.id).locked_until is not None

    client.set_cookie("session", saved_cookie)  # the cookie from before the lock
    code = pyotp.TOTP(secret).now()
    response = client.post("/totp/", data={"code": code, "csrf_token": saved_token})

    assert response.headers["Location"].endswith("/login/")
    assert_clear_refusal(_follow(client, response), "ロックされています")
    assert client.get("/people/").status_code == 302  # not signed in
    assert not audit_events("auth.login", "success")
    denied = audit_events("auth.login", "denied")
    assert denied and details(denied[-1]) == {"reason": "locked", "step": "totp"}
    assert denied[-1].actor_name == user.username


# -- row 6: a TOTP code is accepted once ----------------------------------------------------
def test_a_totp_code_cannot_be_used_a_second_time(client, make_user, login, session):
    user, secret = make_user("ClientStaff")
    login(user.username, totp_secret=secret)  # an onlooker notes the code the user types
    client.get("/logout/")
    session.expire_all()
    seen = pyotp.TOTP(secret).generate_otp(session.get(VaultUser, user.id).totp_last_step)

    # The onlooker, who also has the password, replays the code within its 90 s window.
    post_form(client, "/login/", {"username": user.username, "password": USER_PASSWORD})
    response = post_form(client, "/totp/", {"code": seen})

    assert_clear_refusal(response, "この確認コードは既に使用されています")
    assert client.get("/people/").status_code == 302  # not signed in
    assert len(audit_events("auth.login", "success")) == 1  # the user's own sign-in only
    failure = audit_events("auth.login", "failure")[-1]
    assert failure.actor_name == user.username
    assert details(failure) == {"reason": "totp_replayed"}


# -- row 7: logout ends the session, and sessions have an absolute lifetime ------------------
def test_a_cookie_saved_before_logout_no_longer_opens_anything(client, make_user, login):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/people/").status_code == 200
    saved = client.get_cookie("session").value
    client.get("/logout/")

    client.set_cookie("session", saved)
    response = client.get("/people/")

    assert response.headers["Location"].endswith("/login/")
    assert_clear_refusal(_follow(client, response), "セッションは終了しました")
    ended = audit_events("auth.session_ended")
    assert [(e.actor_name, e.outcome, details(e)) for e in ended] == [
        (user.username, "denied", {"reason": "revoked"})
    ]


def test_a_session_in_constant_use_still_ends_after_its_absolute_lifetime(
    app, client, make_user, login
):
    from app.web.identity import SESSION_STARTED

    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    hours = app.config["SESSION_ABSOLUTE_LIFETIME"].total_seconds() / 3600
    assert hours == 10
    with client.session_transaction() as sess:  # signed in 10 hours ago, active ever since
        sess[SESSION_STARTED] = time.time() - hours * 3600 - 5
    response = client.get("/people/")

    assert response.headers["Location"].endswith("/login/")
    assert_clear_refusal(_follow(client, response), "ログインから10時間が経過したため")
    ended = audit_events("auth.session_ended")
    assert [details(e) for e in ended] == [{"reason": "absolute_timeout"}]


# -- row 9: FAB's REST login is not there ---------------------------------------------------
def test_fab_rest_login_does_not_hand_out_a_token_for_a_password_alone(client, make_user):
    user, _ = make_user("Operator")
    response = client.post(
        "/api/v1/security/login",
        json={"username": user.username, "password": USER_PASSWORD, "provider": "db"},
    )
    html = assert_clear_refusal(response, "お探しのページは見つかりません", status=404)
    assert "access_token" not in html
    assert client.post("/api/v1/security/refresh").status_code == 404
    assert not audit_events("auth.login", "success")
    probes = audit_events("access.denied")
    assert [(e.outcome, details(e)["reason"], details(e)["method"]) for e in probes] == [
        ("denied", "no_api", "POST"),
        ("denied", "no_api", "POST"),
    ]


# -- row 12: SystemAdmin and Auditor need the second factor too -----------------------------
def _password_alone_opens_nothing(client, username: str, page: str) -> None:
    response = post_form(client, "/login/", {"username": username, "password": USER_PASSWORD})
    assert response.headers["Location"].endswith("/totp/")
    response = client.get(page)
    assert response.status_code == 302 and "/login/" in response.headers["Location"]
    # The pending sign-in cannot be finished with a wrong code either.
    response = post_form(client, "/totp/", {"code": "000000"})
    assert_clear_refusal(response, "確認コードが正しくありません")
    assert client.get(page).status_code == 302
    assert not audit_events("auth.login", "success")
    failure = audit_events("auth.login", "failure")[-1]
    assert failure.actor_name == username and details(failure) == {"reason": "bad_totp"}


def test_a_system_admin_cannot_sign_in_with_a_password_alone(client, make_user):
    user, _ = make_user("SystemAdmin", roster=None)
    _password_alone_opens_nothing(client, user.username, "/users/list/")


def test_an_auditor_cannot_sign_in_with_a_password_alone(client, make_user):
    user, _ = make_user("Auditor", roster=None)
    _password_alone_opens_nothing(client, user.username, "/auditlogview/list/")
