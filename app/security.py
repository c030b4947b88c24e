"""Sign-in and access checks for the admin portal, on top of Flask-AppBuilder.

FAB has no second factor and keeps permissions in editable tables; here:
- sign-in is password, then TOTP (pyotp) for Operator and ClientStaff, enrolled on first use;
- repeated failures lock the account for a while; every attempt is audited;
- a session idles out server-side, not only by cookie expiry;
- every permission check goes through ``app.policy`` (roster, TOTP and SystemAdmin rules).
"""

from __future__ import annotations

import datetime as dt
import io
import time

import pyotp
import segno
from flask import current_app, flash, g, redirect, request, session, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.forms import LoginForm_db
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import AuthDBView
from flask_appbuilder.utils.base import get_safe_redirect
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp

from app import audit, policy
from app.audit import Actor
from app.models import VaultUser, db, utcnow
from app.vault import hold_kek

SESSION_MFA = "mnv_mfa_ok"
SESSION_PENDING = "mnv_pending_uid"
SESSION_PENDING_AT = "mnv_pending_at"
SESSION_LAST_SEEN = "mnv_last_seen"
SESSION_SIGNED_IN_AT = "mnv_signed_in_at"  # app.accounts ends sessions older than credentials
PENDING_SECONDS = 300


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


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


def requires_mfa(user: VaultUser) -> bool:
    return bool({r.name for r in user.roles} & policy.MFA_REQUIRED)


def totp_secret(user: VaultUser) -> str | None:
    if not user.totp_secret_enc:
        return None
    vault = current_app.extensions["mynumber_vault"]
    return vault.open_system("totp", f"user:{user.id}", user.totp_secret_enc).decode("ascii")


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
    """Password first, then TOTP where the role requires it."""

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
            flash("ログインをやり直してください。", "warning")
            return redirect(self.appbuilder.get_url_for_login)
        vault = current_app.extensions["mynumber_vault"]
        enrolling = user.totp_enrolled_at is None
        if enrolling and not user.totp_secret_enc:
            hold_kek(db.session)  # sealed under the current KEK: no rotation until committed
            user.totp_secret_enc = vault.seal_system(
                "totp", f"user:{user.id}", pyotp.random_base32().encode("ascii")
            )
            db.session.commit()
        secret = totp_secret(user)
        form = TotpForm()
        if form.validate_on_submit():
            if pyotp.TOTP(secret).verify(form.code.data, valid_window=1):
                if enrolling:
                    user.totp_enrolled_at = utcnow()
                    audit.record(db.session, actor_for(user, mfa=True), "auth.totp_enrolled")
                return _complete_login(user, mfa=True)
            self.appbuilder.sm.register_failure(user, "totp")
            if user.locked_until:
                session.clear()
                flash(self.appbuilder.sm.last_login_message, "danger")
                return redirect(self.appbuilder.get_url_for_login)
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
        user = self._get_authenticated_user()
        if user is not None:
            audit.record(db.session, actor_for(user), "auth.logout", commit=True)
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


def _attempt_actor(username: str | None, user: VaultUser | None) -> Actor:
    """The actor of a sign-in attempt that has not (yet) succeeded."""
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
    session[SESSION_MFA] = mfa
    session[SESSION_LAST_SEEN] = time.time()
    session[SESSION_SIGNED_IN_AT] = time.time()  # app.accounts.end_stale_session
    audit.record(db.session, actor_for(user, mfa=mfa), "auth.login", commit=True)
    next_url = get_safe_redirect(request.args.get("next", ""))
    return redirect(next_url or current_app.appbuilder.get_url_for_index)


class VaultSecurityManager(SecurityManager):
    """FAB's security manager with our user model, sign-in and policy."""

    user_model = VaultUser
    authdbview = VaultAuthDBView
    userstatschartview = None  # login counts per user: nobody's job here, one screen less

    @property
    def userdbmodelview(self):
        """The user screen with the roster link (imported late: views import this module)."""
        from app.views.admin import VaultUserDBModelView

        return VaultUserDBModelView

    last_login_message: str | None = None

    # -- sign-in ------------------------------------------------------------------------
    def auth_user_db(self, username, password):
        """Password check with lockout; every attempt lands in the audit log."""
        self.last_login_message = None
        cfg = current_app.config
        user = self.find_user(username=username) if username else None
        if user is not None:
            locked = _aware(user.locked_until)
            if locked and locked > utcnow():
                self.last_login_message = (
                    "ログイン失敗が続いたため、このアカウントは一時的にロックされています。"
                    "しばらくしてから再度お試しいただくか、システム管理者に連絡してください。"
                )
                audit.record(
                    db.session,
                    _attempt_actor(username, user),
                    "auth.login",
                    outcome="denied",
                    details={"reason": "locked"},
                    commit=True,
                )
                return None
        previous_failures = (user.fail_login_count or 0) if user is not None else 0
        result = super().auth_user_db(username, password)
        if result is not None:
            result.locked_until = None
            if requires_mfa(result):
                # Failures are cleared only once the second factor passes, so that a stolen
                # password cannot be used to guess TOTP codes a few at a time forever.
                result.fail_login_count = previous_failures
            db.session.commit()
            return result
        audit.record(
            db.session,
            _attempt_actor(username, user),
            "auth.login",
            outcome="failure",
            details={"reason": "bad_credentials"},
            commit=True,
        )
        if user is not None and (user.fail_login_count or 0) >= cfg["LOGIN_MAX_FAILURES"]:
            self._lock(user)
        return None

    @property
    def resetpasswordview(self):
        """FAB's reset form for another user's password, which turns a reset of an account
        that can reach personal data into a request for approval (app.accounts)."""
        from app.views.admin import VaultResetPasswordView

        return VaultResetPasswordView

    def reset_password(self, userid, password):
        """FAB's reset, plus: a password set by someone else must be replaced at next login,
        and nobody sets another person's password on an account that can reach personal
        data (that goes through app.accounts, which issues a one-time password)."""
        from app import accounts

        user = db.session.get(VaultUser, int(userid))
        actor = current_actor()
        own = actor.user_id == user.id
        if not own and accounts.is_personal_account(user):
            raise accounts.AccountError(
                "個人番号を扱うアカウントのパスワードは、発注者担当者の承認を経てのみ再設定できます"
            )
        super().reset_password(userid, password)
        user.password_change_required = not own
        db.session.commit()
        audit.record(
            db.session,
            actor,
            "user.password_changed" if own else "user.password_reset",
            object_type="user",
            object_ids=[user.id],
            commit=True,
        )

    def register_failure(self, user: VaultUser, factor: str) -> None:
        """A wrong TOTP code counts like a wrong password."""
        user.fail_login_count = (user.fail_login_count or 0) + 1
        db.session.commit()
        audit.record(
            db.session,
            actor_for(user, mfa=False),
            "auth.login",
            outcome="failure",
            details={"reason": f"bad_{factor}"},
            commit=True,
        )
        if user.fail_login_count >= current_app.config["LOGIN_MAX_FAILURES"]:
            self._lock(user)

    def _lock(self, user: VaultUser) -> None:
        minutes = current_app.config["LOGIN_LOCKOUT_MINUTES"]
        user.locked_until = utcnow() + dt.timedelta(minutes=minutes)
        user.fail_login_count = 0
        db.session.commit()
        self.last_login_message = (
            f"ログインに{current_app.config['LOGIN_MAX_FAILURES']}回失敗したため、"
            f"アカウントを{minutes}分間ロックしました。"
        )
        audit.record(
            db.session,
            actor_for(user, mfa=False),
            "auth.lockout",
            object_type="user",
            object_ids=[user.id],
            details={"minutes": minutes},
            commit=True,
        )

    # -- permissions --------------------------------------------------------------------
    def _has_view_access(self, user, permission_name: str, view_name: str) -> bool:
        return policy.allows(actor_for(user), permission_name, view_name)

    def _get_user_permission_view_menus(self, user, permission_name, view_menus_name):
        if user is None:
            return set()
        granted = policy.permissions(actor_for(user))
        return {v for v in (view_menus_name or []) if (permission_name, v) in granted}

    def is_item_public(self, permission_name, view_name):
        return False


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


def enforce_idle_timeout() -> None:
    """Log out a session idle longer than PERMANENT_SESSION_LIFETIME, server-side."""
    if not session.get("_user_id"):
        return
    limit = current_app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
    last = session.get(SESSION_LAST_SEEN, 0)
    now = time.time()
    if now - last > limit:
        logout_user()
        session.clear()
        flash("一定時間操作がなかったため、ログアウトしました。", "info")
        return
    session[SESSION_LAST_SEEN] = now
