"""Who is signed in to the admin portal, how they sign in, and whether their session holds.

FAB has no second factor; here:
- sign-in is password, then TOTP (pyotp) for every account, enrolled on first use; a code is
  accepted once (the last time step used is stored per user);
- repeated failures, at either step, lock the account for a while; every attempt is audited;
- sign-in state is checked on the server on every request: a per-user session version (raised
  by logout and lock) and a fingerprint of what grants access (roles, roster entry, password,
  active flag) end every session of the user at once when either changes; a session also ends
  after an idle period and after an absolute lifetime.

Every screen imports ``current_actor`` from here; the security manager, which names screens,
lives in ``app.web.security`` so that nothing here imports a view.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import time

import pyotp
import segno
from flask import (
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_appbuilder import expose
from flask_appbuilder.security.forms import LoginForm_db
from flask_appbuilder.security.views import AuthDBView
from flask_appbuilder.utils.base import get_safe_redirect
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp

from app.access import lockout, totp
from app.access.lockout import LOCKED_MESSAGE, is_locked
from app.audit import trail
from app.core.actor import Actor
from app.models import TOTP_SECRET, VaultUser, db, utcnow
from app.vault.envelopes import hold_kek
from app.web import context

SESSION_MFA = "mnv_mfa_ok"
SESSION_PENDING = "mnv_pending_uid"
SESSION_PENDING_AT = "mnv_pending_at"
SESSION_PENDING_GRANT = "mnv_pending_grant"
SESSION_LAST_SEEN = "mnv_last_seen"
SESSION_STARTED = "mnv_started_at"
SESSION_VERSION = "mnv_session_version"
SESSION_GRANT = "mnv_grant"
PENDING_SECONDS = 300

TOTP_REPLAYED_MESSAGE = (
    "この確認コードは既に使用されています。"
    "認証アプリに次の確認コードが表示されてから入力してください。"
)


def request_context() -> tuple[str | None, str | None]:
    """Client IP and user agent of the current request, if any."""
    try:
        return request.remote_addr, request.headers.get("User-Agent")
    except RuntimeError:
        return None, None


def actor_for(user: VaultUser | None, mfa: bool | None = None) -> Actor:
    """The audit/policy identity of a portal user, with the request's IP and agent."""
    ip, agent = request_context()
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(name="anonymous", ip=ip, user_agent=agent)
    if mfa is None:
        mfa = bool(session.get(SESSION_MFA))
    roster = user.roster_entry
    return Actor(
        name=user.username,
        user_id=user.id,
        roles=tuple(sorted(r.name for r in user.roles)),
        roster_entry_id=user.roster_entry_id,
        ip=ip,
        user_agent=agent,
        mfa=mfa,
        roster_approved=bool(roster and roster.is_approved),
    )


def current_actor() -> Actor:
    return actor_for(getattr(g, "user", None))


def request_actor() -> Actor | None:
    """The actor of the request being served, if any: installed as the provider of
    ``app.core.actor.current_actor`` so that code below the web layer (the vault's decrypt
    hook) can name the user without importing the web layer."""
    return current_actor() if has_request_context() else None


def requires_mfa(user: VaultUser) -> bool:
    """Every account signs in with a second factor: a password alone opens nothing.

    Kept as a function (not inlined) so that the sign-in flow says why it asks for a code."""
    return True


def access_grant(user: VaultUser) -> str:
    """A keyed digest of everything that grants this user access.

    Stored in the session at sign-in and compared on every request, so that a role change, a
    roster withdrawal, a new password, a reset second factor or a deactivation made anywhere
    (another screen, the CLI, another module) ends the user's sessions without that code having
    to know about sessions. Keyed with the session key: the cookie is signed, not encrypted,
    and must not carry a plain digest of the password hash.
    """
    roster = user.roster_entry
    parts = (
        str(user.id),
        ",".join(sorted(r.name for r in user.roles)),
        str(user.roster_entry_id or ""),
        roster.status if roster is not None else "",
        "approved" if roster is not None and roster.is_approved else "",
        user.password or "",
        "active" if user.active else "inactive",
        "totp" if user.totp_enrolled_at is not None else "no-totp",
        # Credentials issued on an approval (app.access.accounts): a session from before them ends.
        user.credentials_issued_at.isoformat() if user.credentials_issued_at else "",
    )
    key = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()


def bump_session_version(user: VaultUser) -> None:
    """End every session (and every pending sign-in) of the user, on every device (the
    shared rule is ``app.access.lockout.bump_session_version``). The caller commits."""
    lockout.bump_session_version(db.session, user)


def verify_totp_once(user: VaultUser, secret: str, code: str, at: float | None = None) -> str:
    """Check a TOTP code and spend its time step: ``"ok"``, ``"wrong"`` or ``"replayed"``.

    The rule lives in ``app.access.totp.spend_code``, which the step-up of disposal approvals and
    return archives applies too: one code, one use, wherever it is typed. The caller commits.
    """
    return totp.spend_code(db.session, user, secret, code, at)


def totp_secret(user: VaultUser) -> str | None:
    if not user.totp_secret_enc:
        return None
    return (
        context.vault()
        .open_system(TOTP_SECRET.purpose, TOTP_SECRET.aad(id=user.id), user.totp_secret_enc)
        .decode("ascii")
    )


class TotpForm(FlaskForm):
    code = StringField(
        "確認コード（6桁）",
        validators=[
            DataRequired(message="確認コードを入力してください"),
            Length(min=6, max=6, message="確認コードは6桁です"),
            Regexp(r"^[0-9]{6}$", message="確認コードは6桁の数字です"),
        ],
    )


class VaultAuthDBView(AuthDBView):
    """Password first, then TOTP (every account)."""

    invalid_login_message = "ユーザー名またはパスワードが正しくありません。"
    title = "ログイン"

    @expose("/login/", methods=["GET", "POST"])
    def login(self):
        if g.user is not None and g.user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_index)
        form = LoginForm_db()
        if form.validate_on_submit():
            sm = self.appbuilder.sm
            user = sm.auth_user_db(form.username.data, form.password.data)
            if not user:
                flash(sm.last_login_message or self.invalid_login_message, "warning")
                return redirect(self.appbuilder.get_url_for_login)
            session.clear()
            if requires_mfa(user):
                session[SESSION_PENDING] = user.id
                session[SESSION_PENDING_AT] = time.time()
                # Bound to the account as it is now: a lock, logout or password change before
                # the code is entered voids this half-finished sign-in.
                session[SESSION_PENDING_GRANT] = [user.session_version, access_grant(user)]
                return redirect(url_for(self.__class__.__name__ + ".totp"))
            return _complete_login(user, mfa=False)
        return self.render_template(
            self.login_template, title=self.title, form=form, appbuilder=self.appbuilder
        )

    @expose("/totp/", methods=["GET", "POST"])
    def totp(self):
        """Second factor: enrol on first use (QR shown once), then verify every login."""
        user = _pending_user()
        if user is None:
            session.clear()
            flash("ログインをやり直してください。", "warning")
            return redirect(self.appbuilder.get_url_for_login)
        if is_locked(user):
            # A pending cookie saved before the lock must not finish the sign-in.
            session.clear()
            trail.record(
                db.session,
                actor_for(user, mfa=False),
                "auth.login",
                outcome="denied",
                details={"reason": "locked", "step": "totp"},
                commit=True,
            )
            flash(LOCKED_MESSAGE, "danger")
            return redirect(self.appbuilder.get_url_for_login)
        if session.get(SESSION_PENDING_GRANT) != [user.session_version, access_grant(user)]:
            session.clear()
            flash("アカウントの状態が変わったため、ログインをやり直してください。", "warning")
            return redirect(self.appbuilder.get_url_for_login)
        vault = context.vault()
        enrolling = user.totp_enrolled_at is None
        if enrolling and not user.totp_secret_enc:
            hold_kek(db.session)  # sealed under the current KEK: no rotation until committed
            user.totp_secret_enc = vault.seal_system(
                TOTP_SECRET.purpose,
                TOTP_SECRET.aad(id=user.id),
                pyotp.random_base32().encode("ascii"),
            )
            db.session.commit()
        secret = totp_secret(user)
        form = TotpForm()
        if form.validate_on_submit():
            outcome = verify_totp_once(user, secret, form.code.data)
            if outcome == "ok":
                if enrolling:
                    user.totp_enrolled_at = utcnow()
                    trail.record(db.session, actor_for(user, mfa=True), "auth.totp_enrolled")
                return _complete_login(user, mfa=True)
            db.session.commit()
            self.appbuilder.sm.register_failure(
                user, "totp_replayed" if outcome == "replayed" else "bad_totp"
            )
            if is_locked(user):
                session.clear()
                flash(self.appbuilder.sm.last_login_message, "danger")
                return redirect(self.appbuilder.get_url_for_login)
            if outcome == "replayed":
                flash(TOTP_REPLAYED_MESSAGE, "warning")
            else:
                flash("確認コードが正しくありません。", "warning")
        qr_svg = None
        uri = None
        if enrolling:
            uri = pyotp.TOTP(secret).provisioning_uri(
                name=user.username, issuer_name=current_app.config["MFA_ISSUER"]
            )
            buffer = io.BytesIO()
            segno.make(uri, error="m").save(buffer, kind="svg", scale=5, xmldecl=False, svgns=True)
            qr_svg = buffer.getvalue().decode("utf-8")
        return self.render_template(
            "mynumber/totp.html",
            form=form,
            enrolling=enrolling,
            qr_svg=qr_svg,
            secret=secret if enrolling else None,
            appbuilder=self.appbuilder,
        )

    @expose("/logout/")
    def logout(self):
        """Sign out everywhere: the version bump voids every cookie of this user, saved or not."""
        user = self._get_authenticated_user()
        if user is not None:
            bump_session_version(user)
            trail.record(db.session, actor_for(user), "auth.logout", commit=True)
        logout_user()
        session.clear()
        return redirect(self.appbuilder.get_url_for_login)


def _pending_user() -> VaultUser | None:
    uid = session.get(SESSION_PENDING)
    started = session.get(SESSION_PENDING_AT, 0)
    if not uid or time.time() - started > PENDING_SECONDS:
        return None
    user = db.session.get(VaultUser, uid)
    if user is None or not user.active:
        return None
    return user


def attempt_actor(username: str | None, user: VaultUser | None) -> Actor:
    """The actor of a sign-in attempt that has not (yet) succeeded (the password check in
    ``app.web.security`` records its attempts as this too)."""
    ip, agent = request_context()
    return Actor(
        name=str(username or "")[:200],
        user_id=user.id if user else None,
        ip=ip,
        user_agent=agent,
    )


def _complete_login(user: VaultUser, mfa: bool):
    user.fail_login_count = 0
    db.session.commit()
    session.clear()
    login_user(user, remember=False)
    session.permanent = True
    now = time.time()
    session[SESSION_MFA] = mfa
    session[SESSION_LAST_SEEN] = now
    session[SESSION_STARTED] = now
    session[SESSION_VERSION] = user.session_version
    session[SESSION_GRANT] = access_grant(user)
    trail.record(db.session, actor_for(user, mfa=mfa), "auth.login", commit=True)
    next_url = get_safe_redirect(request.args.get("next", ""))
    return redirect(next_url or current_app.appbuilder.get_url_for_index)


PASSWORD_CHANGE_ENDPOINTS = {
    "ResetMyPasswordView.this_form_get",
    "ResetMyPasswordView.this_form_post",
    "VaultAuthDBView.logout",
    "static",
    "appbuilder.static",
}


def enforce_password_change():
    """Until a user replaces a password someone else chose, only that form is reachable."""
    user = getattr(g, "user", None)
    if not user or not getattr(user, "is_authenticated", False):
        return None
    if not getattr(user, "password_change_required", False):
        return None
    if request.endpoint in PASSWORD_CHANGE_ENDPOINTS:
        return None
    flash(
        "初回ログインのため（または管理者がパスワードを再設定したため）、"
        "パスワードを変更してください。",
        "warning",
    )
    return redirect(url_for("ResetMyPasswordView.this_form_get"))


SESSION_END_MESSAGES = {
    "inactive": "このアカウントは無効になっているため、ログアウトしました。",
    "revoked": (
        "このアカウントはログアウトまたはロックされたため、このセッションは終了しました。"
        "再度ログインしてください。"
    ),
    "access_changed": (
        "アカウントの権限・情報取扱者名簿の登録・パスワードのいずれかが変更されたため、"
        "ログアウトしました。再度ログインしてください。"
    ),
    "absolute_timeout": "ログインから{hours}時間が経過したため、ログアウトしました。"
    "再度ログインしてください。",
    "idle": "一定時間操作がなかったため、ログアウトしました。",
}
# A cookie that no longer matches the account is a refusal; a timeout is routine.
_REFUSED_REASONS = frozenset({"inactive", "revoked", "access_changed"})


def session_end_reason(user: VaultUser | None, now: float) -> str | None:
    """Why the signed-in session must end now, or None while it stays valid."""
    if user is None:
        return "inactive"
    if session.get(SESSION_VERSION) != user.session_version:
        return "revoked"
    if not hmac.compare_digest(str(session.get(SESSION_GRANT, "")), access_grant(user)):
        return "access_changed"
    absolute = current_app.config["SESSION_ABSOLUTE_LIFETIME"].total_seconds()
    if now - float(session.get(SESSION_STARTED, 0)) > absolute:
        return "absolute_timeout"
    idle = current_app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
    if now - float(session.get(SESSION_LAST_SEEN, 0)) > idle:
        return "idle"
    return None


def enforce_session():
    """Check the signed-in state against the server on every request; end it when stale.

    The cookie alone proves nothing after logout, lock, a change of role, roster entry,
    password or active flag, an idle period or the absolute lifetime: each ends the session
    here, audited as ``auth.session_ended`` with the reason, and the browser is sent to the
    login page with a Japanese message saying why.
    """
    uid = session.get("_user_id")
    if not uid:
        return None
    user = current_user._get_current_object() if current_user.is_authenticated else None
    now = time.time()
    reason = session_end_reason(user, now)
    if reason is None:
        session[SESSION_LAST_SEEN] = now
        return None
    subject = user if user is not None else db.session.get(VaultUser, _int_or_none(uid))
    trail.record(
        db.session,
        actor_for(subject, mfa=bool(session.get(SESSION_MFA)))
        if subject is not None
        else attempt_actor(None, None),
        "auth.session_ended",
        outcome="denied" if reason in _REFUSED_REASONS else "success",
        object_type="user",
        object_ids=[subject.id] if subject is not None else [],
        details={"reason": reason},
        commit=True,
    )
    logout_user()
    session.clear()
    hours = current_app.config["SESSION_ABSOLUTE_LIFETIME"].total_seconds() / 3600
    flash(SESSION_END_MESSAGES[reason].format(hours=f"{hours:g}"), "info")
    return redirect(current_app.appbuilder.get_url_for_login)


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class AssetsKeepSessionInterface(SecureCookieSessionInterface):
    """The signed session cookie, never re-sent with a static file or the favicon.

    With a refreshed, permanent session every response carries the session as it was when its
    request began. A stylesheet or favicon asked for just before sign-in (or a sign-out) and
    answered just after would put the old session back: the user is signed out again, or the
    next form fails its CSRF check. Assets never change the session, so they never send it.
    """

    def should_set_cookie(self, app, session) -> bool:
        if has_request_context() and (
            request.path.startswith("/static/") or request.path == "/favicon.ico"
        ):
            return False
        return super().should_set_cookie(app, session)
