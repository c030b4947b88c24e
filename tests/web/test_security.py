"""Sign-in: password then TOTP, enrolment on first use, lockout, idle timeout, headers."""

import json
import time

import pyotp
from sqlalchemy import select

from app.models import AuditEvent, VaultUser
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.support import csrf_token, post_form, unused_totp_code


def _enrol_totp(client, session, username: str) -> None:
    """The first sign-in's second step: read the secret the QR code shows, enter a code."""
    from app.web.identity import totp_secret

    assert "<svg" in client.get("/totp/").get_data(as_text=True)
    session.expire_all()
    user = session.query(VaultUser).filter_by(username=username).one()
    response = post_form(client, "/totp/", {"code": pyotp.TOTP(totp_secret(user)).now()})
    assert response.status_code == 302 and not response.headers["Location"].endswith("/login/")


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
    from app.web.identity import totp_secret

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


def test_assets_never_send_the_session_back(client, make_user, login):
    """A stylesheet or favicon answered after a sign-in must not restore the session its
    request began with (the user signed out again, the next form failing its CSRF check)."""
    user, secret = make_user("Auditor", roster=None)
    login(user.username, totp_secret=secret)
    page = client.get("/auditlogview/list/")
    assert page.status_code == 200 and "Set-Cookie" in page.headers  # refreshed each request
    for asset in ("/static/mynumber/portal.css", "/favicon.ico"):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert "Set-Cookie" not in response.headers, asset


def test_idle_session_is_logged_out_server_side(client, app, make_user, login, session):
    user, secret = make_user("Auditor", roster=None)
    login(user.username, totp_secret=secret)
    assert client.get("/auditlogview/list/").status_code == 200
    with client.session_transaction() as sess:
        sess["mnv_last_seen"] = (
            time.time() - app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() - 5
        )
    response = client.get("/auditlogview/list/")
    assert response.status_code == 302 and "/login/" in response.headers["Location"]
    assert "一定時間操作がなかった" in client.get("/login/").get_data(as_text=True)
    assert ("auth.session_ended", "success") in _actions(session)


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
    from app.web.factory import create_app

    app = create_app({**instance, "RATELIMIT_ENABLED": True, "AUTH_RATE_LIMIT": "3 per minute"})
    client = app.test_client()
    responses = [post_form(client, "/login/", {"username": "x", "password": "y"}) for _ in range(4)]
    assert [r.status_code for r in responses] == [302, 302, 302, 429]
    assert "しばらく待って" in responses[3].get_data(as_text=True)


def test_https_mode_sends_hsts_and_secure_cookies(instance):
    from app.web.factory import create_app

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
    _enrol_totp(client, session, "auditor1")  # every role, at first sign-in
    response = client.get("/auditlogview/list/")
    assert response.status_code == 302 and "resetmypassword" in response.headers["Location"]
    # The password the administrator chose is refused as the new one: they would know it.
    same = {"password": USER_PASSWORD, "conf_password": USER_PASSWORD}
    refused = post_form(client, "/resetmypassword/form", same, follow_redirects=True)
    assert "現在のパスワード（管理者が設定したもの" in refused.get_data(as_text=True)
    assert client.get("/auditlogview/list/").status_code == 302  # still to be replaced
    new = "An0ther-Passw0rd!"
    post_form(client, "/resetmypassword/form", {"password": new, "conf_password": new})
    assert client.get("/auditlogview/list/").status_code == 200
    actions = _actions(session)
    assert ("user.password_changed", "success") in actions


# -- every role signs in with TOTP; a code is spent once --------------------------------------
def test_the_admin_made_by_init_enrols_totp_at_first_sign_in(client, session, app):
    from app.models import db

    admin = session.execute(db.select(VaultUser).filter_by(username="admin")).scalar_one()
    admin.totp_secret_enc = None  # as `mynumber init` leaves it
    admin.totp_enrolled_at = None
    session.commit()
    response = post_form(client, "/login/", {"username": "admin", "password": ADMIN_PASSWORD})
    assert response.headers["Location"].endswith("/totp/")
    page = client.get("/totp/").get_data(as_text=True)
    assert "<svg" in page and "すべてのアカウントで二要素認証が必須です" in page
    assert client.get("/users/list/").status_code == 302
    session.expire_all()
    from app.web.identity import totp_secret

    secret = totp_secret(session.get(VaultUser, admin.id))
    response = post_form(client, "/totp/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert client.get("/users/list/").status_code == 200
    assert ("auth.totp_enrolled", "success") in _actions(session)


def test_policy_requires_the_second_factor_of_every_role():
    from app.access import policy
    from tests.support import actor

    assert policy.MFA_REQUIRED == frozenset(policy.ROLES)
    for role in policy.ROLES:
        assert policy.permissions(actor(role, roster=True))
        assert policy.permissions(actor(role, roster=True, mfa=False)) == set()


def test_each_time_step_is_accepted_once_and_never_an_earlier_one(app, make_user, session):
    from app.web.identity import verify_totp_once

    user, secret = make_user("Operator")
    totp = pyotp.TOTP(secret)
    at = time.time()
    now = totp.timecode(at)
    codes = {step: totp.generate_otp(step) for step in (now - 1, now, now + 1)}
    assert verify_totp_once(user, secret, codes[now], at) == "ok"
    session.commit()
    assert session.get(VaultUser, user.id).totp_last_step == now
    assert verify_totp_once(user, secret, codes[now], at) == "replayed"
    assert verify_totp_once(user, secret, codes[now - 1], at) == "replayed"  # an earlier step
    assert verify_totp_once(user, secret, codes[now + 1], at) == "ok"  # the next one works
    session.commit()
    assert session.get(VaultUser, user.id).totp_last_step == now + 1
    # A minute later, the code of two steps back is outside the ±1 window: simply wrong.
    assert verify_totp_once(user, secret, codes[now], at + 60) in ("wrong", "replayed")
    later = totp.generate_otp(now + 3)
    assert verify_totp_once(user, secret, later, at + 90) == "ok"


def test_a_wrong_code_is_wrong_not_replayed(app, make_user):
    from app.web.identity import verify_totp_once

    user, secret = make_user("Operator")
    totp = pyotp.TOTP(secret)
    at = time.time()
    now = totp.timecode(at)
    valid = {totp.generate_otp(step) for step in (now - 1, now, now + 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    assert verify_totp_once(user, secret, wrong, at) == "wrong"


# -- sessions end on the server ---------------------------------------------------------------
def _ended(client, session, reason: str, message: str) -> None:
    """The next request is sent to the login page, which says why; the end is audited."""
    response = client.get("/people/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/")
    assert message in client.get("/login/").get_data(as_text=True)
    session.expire_all()
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "auth.session_ended")
    ).scalar_one()
    assert json.loads(event.details) == {"reason": reason}


def test_a_role_change_made_elsewhere_ends_the_session(client, make_user, login, session, app):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/people/").status_code == 200
    user.roles = [app.appbuilder.sm.find_role("ClientStaff")]
    session.commit()
    _ended(client, session, "access_changed", "権限・情報取扱者名簿の登録・パスワード")


def test_a_roster_withdrawal_ends_the_session(client, make_user, login, session):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/people/").status_code == 200
    user.roster_entry.status = "revoked"
    session.commit()
    _ended(client, session, "access_changed", "情報取扱者名簿")


def test_a_password_reset_by_the_admin_ends_the_session(client, make_user, login, session, app):
    # An Auditor without a roster link: a personal-data account's password is reset only on
    # approval (app.access.accounts).
    user, secret = make_user("Auditor", roster=None)
    login(user.username, totp_secret=secret)
    assert client.get("/audit-verify/").status_code == 200
    app.appbuilder.sm.reset_password(user.id, "An0ther-Passw0rd!")
    _ended(client, session, "access_changed", "パスワード")


def test_a_deactivated_account_is_signed_out(client, make_user, login, session):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/people/").status_code == 200
    user.active = False
    session.commit()
    _ended(client, session, "inactive", "無効")


def test_a_lock_ends_the_sessions_the_user_already_has(client, make_user, login, session, app):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/people/").status_code == 200
    other = app.test_client()  # someone else guessing the password elsewhere
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        post_form(other, "/login/", {"username": user.username, "password": "wrong-Passw0rd!"})
    _ended(client, session, "revoked", "ロックされた")


def test_logout_ends_every_session_of_the_user(client, make_user, login, session, app):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    elsewhere = app.test_client()  # the same user on a second machine
    post_form(elsewhere, "/login/", {"username": user.username, "password": USER_PASSWORD})
    code = unused_totp_code(app, user.username, secret)
    post_form(elsewhere, "/totp/", {"code": code})
    assert elsewhere.get("/people/").status_code == 200
    elsewhere.get("/logout/")
    _ended(client, session, "revoked", "ログアウトまたはロック")


def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(
    client, make_user, login, session, app
):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    elsewhere = app.test_client()
    post_form(elsewhere, "/login/", {"username": user.username, "password": USER_PASSWORD})
    post_form(elsewhere, "/totp/", {"code": unused_totp_code(app, user.username, secret)})
    assert elsewhere.get("/people/").status_code == 200
    new = "An0ther-Passw0rd!"
    post_form(client, "/resetmypassword/form", {"password": new, "conf_password": new})
    assert client.get("/people/").status_code == 200
    _ended(elsewhere, session, "access_changed", "パスワード")


def test_a_session_from_before_the_version_check_is_ended(client, make_user, login, session):
    """A cookie made before this check existed (no version in it) is not trusted."""
    from app.web.identity import SESSION_VERSION

    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    with client.session_transaction() as sess:
        del sess[SESSION_VERSION]
    _ended(client, session, "revoked", "セッションは終了しました")


def test_the_absolute_lifetime_is_a_setting(instance, monkeypatch):
    from app import settings

    monkeypatch.setenv("MYNUMBER_SESSION_ABSOLUTE_HOURS", "8")
    assert settings.load({})["SESSION_ABSOLUTE_LIFETIME"].total_seconds() == 8 * 3600


# -- only the routes the portal uses exist ----------------------------------------------------
# FAB's own views the portal keeps (the sign-in, TOTP and user screens are our subclasses).
PORTAL_FAB_RULES = {
    "/back",  # FAB's list pages link to it
    "/resetmypassword/form",  # a user changes their own
    "/static/<path:filename>",
    "/static/appbuilder/<path:filename>",
}


def test_the_portal_registers_no_fab_route_it_does_not_use(app):
    """Every URL rule belongs to one of our views or is a FAB route kept on purpose: FAB's REST
    API (a JWT for a password alone), menu API, language switch, role, group and profile
    editors are absent, and a FAB upgrade that adds a route fails here."""
    ours = {
        type(view).__name__
        for view in app.appbuilder.baseviews
        if type(view).__module__.startswith("app.")
    }
    assert {"VaultAuthDBView", "VaultUserDBModelView", "HomeView"} <= ours
    fab = {r.rule for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] not in ours}
    assert fab == PORTAL_FAB_RULES
    assert set(app.blueprints) - ours == {
        "appbuilder",
        "UtilView",
        "ResetMyPasswordView",
    }
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert not [r for r in rules if r.startswith(("/api", "/swagger", "/lang", "/roles"))]
    assert not [r for r in rules if r.startswith(("/groups", "/userinfoeditview"))]


def test_the_fab_rest_login_and_menu_api_answer_404(client):
    for url in ("/api/v1/security/login", "/api/v1/security/refresh", "/api/v1/menu/"):
        response = client.post(url, json={"username": "admin", "password": ADMIN_PASSWORD})
        assert response.status_code == 404, url
        assert "お探しのページは見つかりません" in response.get_data(as_text=True)
    assert client.get("/roles/list/").status_code == 404
    assert client.get("/groups/list/").status_code == 404


def test_the_public_form_registers_only_its_own_routes(app, instance):
    """The form has one blueprint; nothing of FAB or any sign-in ever reaches it."""
    import public_form

    form_app = public_form.create_app(instance)
    assert set(form_app.blueprints) == {"form"}
    rules = {(r.rule, r.endpoint.split(".")[0]) for r in form_app.url_map.iter_rules()}
    assert {bp for _, bp in rules} <= {"form", "static"}
    assert not [r for r, _ in rules if r.startswith("/api") or "login" in r or "totp" in r]
