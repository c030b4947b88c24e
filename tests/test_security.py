"""Sign-in: password then TOTP, enrolment on first use, lockout, idle timeout, headers."""

import time

import pyotp
from sqlalchemy import select

from app.models import AuditEvent, VaultUser
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.support import csrf_token, post_form


def _actions(session):
    return [
        (e.action, e.outcome)
        for e in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    ]


def test_client_staff_needs_totp_after_the_password(client, make_user, login, session):
    user, secret = make_user("ClientStaff")
    response = login(user.username)  # password only
    assert response.headers["Location"].endswith("/totp/")
    assert client.get("/people/").status_code in (302, 403)  # not signed in yet
    response = post_form(client, "/totp/", {"code": "000000"})
    assert "確認コードが正しくありません" in response.get_data(as_text=True)
    response = post_form(client, "/totp/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert client.get("/people/").status_code == 200
    assert ("auth.login", "success") in _actions(session)
    assert ("auth.login", "failure") in _actions(session)


def test_first_login_enrols_totp_with_a_qr_code(client, make_user, session, app):
    user, _ = make_user("Operator", totp=False)
    post_form(client, "/login/", {"username": user.username, "password": USER_PASSWORD})
    page = client.get("/totp/").get_data(as_text=True)
    assert "<svg" in page and "認証アプリ" in page
    session.expire_all()
    stored = session.get(VaultUser, user.id)
    assert stored.totp_secret_enc and stored.totp_enrolled_at is None
    from app.security import totp_secret

    secret = totp_secret(stored)
    assert secret.encode() not in stored.totp_secret_enc  # stored encrypted
    response = post_form(client, "/totp/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(VaultUser, user.id).totp_enrolled_at is not None
    assert ("auth.totp_enrolled", "success") in _actions(session)


def test_lockout_after_repeated_failures(client, make_user, session, app):
    user, _ = make_user("Auditor", roster=None, totp=False)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        post_form(client, "/login/", {"username": user.username, "password": "wrong-Passw0rd!"})
    # The right password no longer works while locked.
    response = post_form(client, "/login/", {"username": user.username, "password": USER_PASSWORD})
    assert response.headers["Location"].endswith("/login/")
    page = client.get("/login/").get_data(as_text=True)
    assert "ロック" in page
    actions = _actions(session)
    assert ("auth.lockout", "success") in actions
    assert ("auth.login", "denied") in actions


def test_wrong_totp_codes_also_lock(client, make_user, session, app):
    user, _ = make_user("ClientStaff")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        post_form(client, "/login/", {"username": user.username, "password": USER_PASSWORD})
        post_form(client, "/totp/", {"code": "000000"})
    session.expire_all()
    assert session.get(VaultUser, user.id).locked_until is not None


def test_idle_session_is_logged_out_server_side(client, app, make_user):
    user, _ = make_user("Auditor", roster=None, totp=False)
    post_form(client, "/login/", {"username": user.username, "password": USER_PASSWORD})
    assert client.get("/auditlogview/list/").status_code == 200
    with client.session_transaction() as sess:
        sess["mnv_last_seen"] = (
            time.time() - app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() - 5
        )
    response = client.get("/auditlogview/list/")
    assert response.status_code == 302 and "/login/" in response.headers["Location"]


def test_post_without_csrf_token_is_refused(client):
    response = client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)


def test_security_headers_and_cookie_flags(client):
    response = client.get("/login/")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_password_policy_on_new_users(client, login):
    login("admin", ADMIN_PASSWORD)
    token = csrf_token(client, "/users/add")
    response = client.post(
        "/users/add",
        data={
            "csrf_token": token,
            "first_name": "a",
            "last_name": "b",
            "username": "weak",
            "email": "weak@example.jp",
            "password": "short",
            "conf_password": "short",
            "roles": [],
        },
    )
    assert "12文字以上" in response.get_data(as_text=True)


def test_login_posts_are_rate_limited(instance):
    from app import create_app

    app = create_app({**instance, "RATELIMIT_ENABLED": True, "AUTH_RATE_LIMIT": "3 per minute"})
    client = app.test_client()
    responses = [post_form(client, "/login/", {"username": "x", "password": "y"}) for _ in range(4)]
    assert [r.status_code for r in responses] == [302, 302, 302, 429]
    assert "しばらく待って" in responses[3].get_data(as_text=True)


def test_https_mode_sends_hsts_and_secure_cookies(instance):
    from app import create_app

    app = create_app({**instance, "MYNUMBER_HTTPS": True, "SESSION_COOKIE_SECURE": True})
    response = app.test_client().get("/login/", base_url="https://localhost")
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    assert "Secure" in response.headers["Set-Cookie"]


def test_every_string_fab_shows_has_a_japanese_translation(app):
    """FAB's own ja_JP catalog is partial; ours completes it."""
    import pathlib
    import re

    import flask_appbuilder
    from flask_babel import force_locale, gettext

    root = pathlib.Path(flask_appbuilder.__file__).parent
    used = set()
    pattern = re.compile(r"""(?:lazy_gettext|\b_|gettext)\(\s*(["'])((?:(?!\1).)+)\1""")
    for path in [*root.rglob("*.py"), *root.rglob("*.html")]:
        if "api" in path.parts or "swagger" in path.parts:
            continue
        for match in pattern.finditer(path.read_text(errors="ignore")):
            used.add(match.group(2))
    with app.test_request_context(), force_locale("ja_JP"):
        untranslated = sorted(
            s
            for s in used
            if gettext(s) == s and re.search("[A-Za-z]", s) and s not in {"OK", "%(name)s"}
        )
    assert untranslated == []


def test_a_password_chosen_by_the_admin_must_be_replaced_first(client, login, session, app):
    login("admin", ADMIN_PASSWORD)
    role = app.appbuilder.sm.find_role("Auditor")
    post_form(
        client,
        "/users/add",
        {
            "first_name": "監査",
            "last_name": "一郎",
            "username": "auditor1",
            "email": "a1@example.jp",
            "active": "y",
            "password": USER_PASSWORD,
            "conf_password": USER_PASSWORD,
            "roles": [str(role.id)],
        },
    )
    # Test users share one cheap hash (tests/conftest.py); a real user's is FAB's scrypt.
    from app.models import VaultUser

    stored = session.query(VaultUser).filter_by(username="auditor1").one().password
    assert stored.startswith("scrypt:") and USER_PASSWORD not in stored
    client.get("/logout/")
    login("auditor1", USER_PASSWORD)
    response = client.get("/auditlogview/list/")
    assert response.status_code == 302 and "resetmypassword" in response.headers["Location"]
    new = "An0ther-Passw0rd!"
    post_form(client, "/resetmypassword/form", {"password": new, "conf_password": new})
    assert client.get("/auditlogview/list/").status_code == 200
    actions = _actions(session)
    assert ("user.password_changed", "success") in actions
