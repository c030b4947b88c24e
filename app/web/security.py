"""Flask-AppBuilder's security manager and app builder, as the portal needs them.

Kept apart from ``app.web.identity`` (who is signed in, how they sign in, whether the session
still holds), which every screen imports for ``current_actor``: the security manager in turn
names screens (the user list, the password reset), so it lives above both.

- only the FAB views the portal uses are registered (no REST API, no role or group editors);
- the password check locks the account after repeated failures and audits every attempt;
- every permission check goes through ``app.access.policy`` (roster, TOTP and SystemAdmin rules).
"""

from __future__ import annotations

from flask import current_app, has_request_context, session
from flask_appbuilder import AppBuilder
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.views import UtilView
from flask_babel import lazy_gettext

from app.access import accounts, lockout, policy
from app.access.lockout import LOCKED_MESSAGE
from app.audit import trail
from app.core import jptime
from app.models import VaultUser, db, utcnow
from app.web import identity
from app.web.identity import VaultAuthDBView
from app.web.views.admin import (
    VaultResetMyPasswordView,
    VaultResetPasswordView,
    VaultUserDBModelView,
)


class VaultSecurityManager(SecurityManager):
    """FAB's security manager with our user model, sign-in and policy."""

    user_model = VaultUser
    authdbview = VaultAuthDBView
    userstatschartview = None  # login counts per user: nobody's job here, one screen less

    userdbmodelview = VaultUserDBModelView  # FAB's user screen plus the roster link
    # FAB's reset form for another user's password, which turns a reset of an account that can
    # reach personal data into a request for approval (app.access.accounts).
    resetpasswordview = VaultResetPasswordView

    last_login_message: str | None = None

    # -- what FAB registers -------------------------------------------------------------
    def register_views(self) -> None:
        """Register only the security screens the portal uses.

        FAB's own ``register_views`` always adds ``SecurityApi`` (``/api/v1/security/login``
        hands out a JWT for a password alone: no TOTP, no lock check, no audit), whatever
        ``FAB_ADD_SECURITY_API`` says (that setting only covers the CRUD APIs), plus role,
        group and profile editors that no role here may use. Not calling it keeps all of
        that unregistered (404); tests/web/test_security.py lists every URL rule allowed.
        """
        self.user_view = self.userdbmodelview
        self.auth_view = self.authdbview()
        self.appbuilder.add_view_no_menu(self.resetpasswordview())
        # Our subclass, under FAB's endpoint name (the password-change gate names it).
        self.appbuilder.add_view_no_menu(VaultResetMyPasswordView(), endpoint="ResetMyPasswordView")
        self.appbuilder.add_view_no_menu(self.auth_view)
        if self.is_auth_limited:
            self.limiter.limit(self.auth_rate_limit, methods=["POST"])(self.auth_view.blueprint)
        self.user_view = self.appbuilder.add_view(
            self.user_view,
            "List Users",
            icon="fa-user",
            label=lazy_gettext("List Users"),
            category="Security",
            category_icon="fa-cogs",
            category_label=lazy_gettext("Security"),
        )

    # -- sign-in ------------------------------------------------------------------------
    def auth_user_db(self, username, password):
        """Password check with lockout; every attempt lands in the audit log."""
        self.last_login_message = None
        cfg = current_app.config
        user = self.find_user(username=username) if username else None
        if user is not None:
            locked = jptime.aware(user.locked_until)
            if locked and locked > utcnow():
                self.last_login_message = LOCKED_MESSAGE
                trail.record(
                    db.session,
                    identity.attempt_actor(username, user),
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
            if identity.requires_mfa(result):
                # Failures are cleared only once the second factor passes, so that a stolen
                # password cannot be used to guess TOTP codes a few at a time forever.
                result.fail_login_count = previous_failures
            db.session.commit()
            return result
        trail.record(
            db.session,
            identity.attempt_actor(username, user),
            "auth.login",
            outcome="failure",
            details={"reason": "bad_credentials"},
            commit=True,
        )
        if user is not None and (user.fail_login_count or 0) >= cfg["LOGIN_MAX_FAILURES"]:
            self._lock(user)
        return None

    def reset_password(self, userid, password):
        """FAB's reset, plus: a password set by someone else must be replaced at next login,
        and nobody sets another person's password on an account that can reach personal
        data (that goes through app.access.accounts, which issues a one-time password)."""
        user = db.session.get(VaultUser, int(userid))
        actor = identity.current_actor()
        own = actor.user_id == user.id
        if not own and accounts.is_personal_account(user):
            raise accounts.AccountError(
                "個人番号を扱うアカウントのパスワードは、発注者担当者の承認を経てのみ再設定できます"
            )
        super().reset_password(userid, password)
        user.password_change_required = not own
        db.session.commit()
        if own and has_request_context() and session.get("_user_id") == str(user.id):
            # The new password ends the user's other sessions (their grant no longer
            # matches); this one, where the password was just typed, carries on.
            session[identity.SESSION_GRANT] = identity.access_grant(user)
        trail.record(
            db.session,
            actor,
            "user.password_changed" if own else "user.password_reset",
            object_type="user",
            object_ids=[user.id],
            commit=True,
        )

    def register_failure(self, user: VaultUser, reason: str) -> None:
        """A wrong (or replayed) TOTP code counts like a wrong password (``app.access.lockout``)."""
        if lockout.register_failure(db.session, user, identity.actor_for(user, mfa=False), reason):
            self.last_login_message = lockout.lock_message()

    def _lock(self, user: VaultUser) -> None:
        lockout.lock(db.session, user, identity.actor_for(user, mfa=False))
        self.last_login_message = lockout.lock_message()

    # -- permissions --------------------------------------------------------------------
    def _has_view_access(self, user, permission_name: str, view_name: str) -> bool:
        return policy.allows(identity.actor_for(user), permission_name, view_name)

    def _get_user_permission_view_menus(self, user, permission_name, view_menus_name):
        if user is None:
            return set()
        granted = policy.permissions(identity.actor_for(user))
        return {v for v in (view_menus_name or []) if (permission_name, v) in granted}

    def is_item_public(self, permission_name, view_name):
        return False


class VaultAppBuilder(AppBuilder):
    """FAB's AppBuilder without the views the portal does not use.

    FAB always registers a JSON menu API (``/api/v1/menu/``) and a language switcher
    (``/lang/<locale>``) besides the index and its security views; neither serves this portal
    (server-rendered menus, Japanese only). Each registered route is attack surface, so only
    the index, FAB's "back" helper (its list pages link to it) and our security views are.
    """

    def _add_admin_views(self) -> None:
        self._indexview = self.add_view_no_menu(self.indexview)
        self.add_view_no_menu(UtilView)
        self.sm.register_views()
