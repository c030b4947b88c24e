"""The admin portal: ``create_app()`` adds FAB, Talisman and the error pages to the base app
(``app.web.base``: settings, database, audit signing, the vault)."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, render_template, request
from flask_migrate import Migrate
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from app.audit.trail import AuditUnavailable
from app.core import actor, jptime
from app.models import db
from app.platform import unavailable
from app.web import csp, identity, listargs, netguard, refusals
from app.web.base import create_base_app
from app.web.identity import enforce_password_change, enforce_session
from app.web.security import VaultAppBuilder
from app.web.views import HomeView, register
from app.web.views.home import render_error_page

MIGRATIONS = str(Path(__file__).resolve().parents[2] / "migrations")

log = logging.getLogger(__name__)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the admin portal. ``overrides`` replace settings (tests, CLI)."""
    app = create_base_app(overrides)
    Migrate(app, db, directory=MIGRATIONS)
    # Every decryption of a canary raises a security alert, naming the signed-in user.
    actor.provide(identity.request_actor)

    app.session_interface = identity.AssetsKeepSessionInterface()
    CSRFProtect(app)
    https = app.config["MYNUMBER_HTTPS"]
    Talisman(
        app,
        content_security_policy=csp.PORTAL,
        content_security_policy_nonce_in=["script-src"],
        force_https=https,
        strict_transport_security=https,
        strict_transport_security_max_age=31536000,
        frame_options="DENY",
        session_cookie_secure=https,
        session_cookie_http_only=True,
        session_cookie_samesite="Strict",
        referrer_policy="no-referrer",
    )

    with app.app_context():
        appbuilder = VaultAppBuilder(indexview=HomeView, base_template="mynumber/base.html")
        appbuilder.init_app(app, db.session)
        register(appbuilder)

    # First of all on every request: the client's address behind a trusted proxy and the
    # network allow-list.
    netguard.install(app)
    app.before_request(enforce_session)  # logout, lock, changed access, idle, absolute
    app.before_request(enforce_password_change)
    app.before_request(listargs.check_list_args)  # bad sort or paging argument: 400, not 500
    app.before_request(listargs.check_action_name)  # unknown FAB action: 400, not 500
    app.after_request(_no_store)
    app.jinja_env.filters["jst"] = jptime.format_jst
    _error_pages(app)
    return app


def _no_store(response):
    """Portal pages carry personal data: never cache them anywhere."""
    if not request.path.startswith("/static"):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


# Refusals and missing pages are portal pages (menu, sign-out); a server error stays plain.
PORTAL_ERROR_CODES = frozenset({400, 403, 404, 405, 413, 429})


def _error_pages(app: Flask) -> None:
    """Japanese error pages; a stack trace never reaches the browser."""
    messages = {
        400: "リクエストが正しくありません。画面を読み込み直してから、もう一度お試しください。",
        403: "この操作を行う権限がありません。",
        404: "お探しのページは見つかりません。",
        405: "この方法ではアクセスできません。",
        413: "ファイルが大きすぎます。",
        429: "短時間にアクセスが集中しました。しばらく待ってからお試しください。",
        500: "システムエラーが発生しました。時間をおいてもう一度お試しください。",
    }

    def handler(error):
        code = error.code if isinstance(error, HTTPException) else 500
        if isinstance(error, AuditUnavailable):  # no audit event, no action: a clean 503
            unavailable.rollback_quietly()
            log.warning("audit unavailable on %s: action refused", request.path)
            page = unavailable.render_outside_context(
                app, "mynumber/error.html", code=503, message=unavailable.AUDIT_MESSAGE
            )
            return page, 503, {"Retry-After": str(unavailable.RETRY_AFTER_SECONDS)}
        if code == 500 and unavailable.database_down(error):  # no database: a clean 503 too
            unavailable.rollback_quietly()
            log.warning("database unavailable on %s: %s", request.path, type(error).__name__)
            page = unavailable.render_outside_context(
                app, "mynumber/error.html", code=503, message=unavailable.PORTAL_MESSAGE
            )
            return page, 503, {"Retry-After": str(unavailable.RETRY_AFTER_SECONDS)}
        refusals.record_refusal(error)  # a 403 or a missing CSRF token: audit evidence
        if code == 500:
            # The masking filter scrubs any 12-digit run from the traceback text.
            log.error("unhandled error on %s", request.path, exc_info=error)
        message = getattr(error, "japanese", None) or messages.get(code, messages[500])
        if code in PORTAL_ERROR_CODES:
            try:
                return render_error_page(code, message), code
            except Exception:  # noqa: BLE001 - the plain page below is the fallback
                log.warning("error page %s rendered plain on %s", code, request.path)
        return render_template("mynumber/error.html", code=code, message=message), code

    for code in messages:
        app.register_error_handler(code, handler)
    app.register_error_handler(Exception, handler)
