"""The subjects' app: a minimal Flask app that holds no key able to decrypt anything.

Its configuration carries the intake *public* key only (read from ``INTAKE_PUBLIC_KEY_FILE``);
it never reads the key ring. Every part of a submission is sealed to that key the moment it
arrives, so this server cannot read back what it stored, not even a second later.

Hardening: CSRF on every form, Talisman CSP with no third-party origin, rate limits per IP and
per token, ``Cache-Control: no-store`` everywhere, a short session bound to the token, uploads
kept in memory (never spooled to a temporary file), Japanese error pages without traces.
"""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import timedelta

from flask import Flask, Request, render_template, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from app import settings
from app.audit.trail import AuditUnavailable
from app.collection import memo
from app.collection.uploads import limit_text
from app.core import logsafe
from app.models import db
from app.operations.desk import DESK_HOURS
from app.platform import unavailable
from app.platform.dbroles import form_person_guard
from app.vault.sealing import IntakePublicKey
from app.web import csp, netguard
from public_form.views import SUBJECT_ENDPOINTS, bp

log = logging.getLogger(__name__)

# Only what the form needs: never the key ring path, the vault or any private key.
FORM_SETTINGS = (
    "MYNUMBER_HOME",
    "SQLALCHEMY_DATABASE_URI",
    "SQLALCHEMY_TRACK_MODIFICATIONS",
    "CLIENT_NAME",
    "OPERATOR_NAME",
    "MYNUMBER_HTTPS",
    "LOG_FILE",
    "INTAKE_PUBLIC_KEY_FILE",
    "INTAKE_MAX_FAILURES",
    "INTAKE_SESSION_MINUTES",
    "INTAKE_MAX_FILE_BYTES",
    "INTAKE_MAX_REQUEST_BYTES",
    "INTAKE_MAX_SUBMISSION_BYTES",
    "INTAKE_MAX_IMAGE_PIXELS",
    "INTAKE_RATE_LIMIT_IP",
    "INTAKE_RATE_LIMIT_TOKEN_LOOKUP",
    "INTAKE_RATE_LIMIT_TOKEN",
    "RATELIMIT_ENABLED",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_KEY_PREFIX",
    "DESK_PHONE",
    "DESK_EMAIL",
    "WTF_CSRF_TIME_LIMIT",
    "TRUSTED_PROXIES",  # the client address behind nginx (app.web.netguard)
)


class InMemoryRequest(Request):
    """Uploads stay in memory: werkzeug would spool files over 500 KB to a temporary file,
    and an ID document must not touch the disk unsealed. MAX_CONTENT_LENGTH bounds memory."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):  # noqa: E501
        return io.BytesIO()


def create_app(overrides: dict | None = None) -> Flask:
    settings.private_umask()  # its log file and anything else it writes: 0600
    cfg = settings.load(overrides, component="form")
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    for key in FORM_SETTINGS:
        app.config[key] = cfg[key]
    app.config["SECRET_KEY"] = cfg["FORM_SECRET_KEY"]  # never the portal's session key
    https = cfg["MYNUMBER_HTTPS"]
    app.config.update(
        MAX_CONTENT_LENGTH=cfg["INTAKE_MAX_REQUEST_BYTES"],
        # Text fields stay at werkzeug's 500 KB (its multipart decoder buffers up to that much
        # of a file part too, so a smaller value refuses ordinary uploads).
        SESSION_COOKIE_NAME="mnv_form",
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: the first visit comes from a mail app or a QR scanner (cross-site),
        # and the cookie set there must survive the redirect. POSTs carry a CSRF token anyway.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=cfg["INTAKE_SESSION_MINUTES"]),
        SESSION_REFRESH_EACH_REQUEST=False,  # the session lives N minutes from sign-in, no more
        WTF_CSRF_ENABLED=True,
        RATELIMIT_HEADERS_ENABLED=False,
    )
    logsafe.install(cfg["LOG_FILE"])
    app.extensions["intake_public_key"] = IntakePublicKey.from_file(cfg["INTAKE_PUBLIC_KEY_FILE"])

    db.init_app(app)
    unavailable.close_sessions_quietly(app)  # after init_app (runs first)
    # Least privilege: never load the person columns the form's role may not read.
    form_person_guard()
    memo.install()  # a form request reads its request and parts once per transaction
    CSRFProtect(app)
    Talisman(
        app,
        content_security_policy=csp.STRICT,
        force_https=https,
        strict_transport_security=https,
        frame_options="DENY",
        session_cookie_secure=https,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        referrer_policy="no-referrer",
    )

    @app.after_request
    def no_store(response):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        return response

    @app.context_processor
    def desk():
        return {
            "desk_hours": DESK_HOURS,
            "desk_phone": app.config["DESK_PHONE"],
            "desk_email": app.config["DESK_EMAIL"],
            "client": app.config["CLIENT_NAME"],
            "operator": app.config["OPERATOR_NAME"],
        }

    app.register_blueprint(bp)
    _rate_limits(app)
    _error_pages(app)
    netguard.install_proxy(app)
    return app


def _token_key() -> str:
    """Rate-limit key once inside: the request the session is bound to (else the IP)."""
    rid = session.get("rid")
    return f"rid:{rid}" if rid else f"ip:{get_remote_address()}"


def _link_key() -> str:
    """Rate-limit key for a link: a hash of the token in the path (never the token)."""
    token = (request.view_args or {}).get("token", "")
    return "tok:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def _rate_limits(app: Flask) -> None:
    """One limiter per app: per IP everywhere, tighter for token look-ups (guessing) and the
    birth-date check, per token for everything behind the two factors, and the contact form."""
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        default_limits=[app.config["INTAKE_RATE_LIMIT_IP"]],
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
    )
    app.extensions["form_limiter"] = limiter
    lookup = app.config["INTAKE_RATE_LIMIT_TOKEN_LOOKUP"]
    per_token = app.config["INTAKE_RATE_LIMIT_TOKEN"]
    rules: dict[str, list] = {
        "form.enter": [
            limiter.limit(lookup, key_func=get_remote_address, override_defaults=False),
            limiter.limit("20 per minute", key_func=_link_key, override_defaults=False),
        ],
        "form.verify": [
            limiter.limit(
                lookup, key_func=get_remote_address, methods=["POST"], override_defaults=False
            ),
            limiter.limit(per_token, key_func=_token_key, override_defaults=False),
        ],
        "form.contact": [
            limiter.limit(
                "10 per hour",
                key_func=get_remote_address,
                methods=["POST"],
                override_defaults=False,
            )
        ],
    }
    for endpoint in SUBJECT_ENDPOINTS:
        rules.setdefault(endpoint, []).append(
            limiter.limit(per_token, key_func=_token_key, override_defaults=False)
        )
    for endpoint, decorators in rules.items():
        view = app.view_functions[endpoint]
        for decorate in decorators:
            view = decorate(view)
        app.view_functions[endpoint] = view
    limiter.exempt(app.view_functions["static"])


def _error_pages(app: Flask) -> None:
    """Japanese pages for every error; never a stack trace, never the submitted data."""
    pages = {
        400: ("リクエストが正しくありません", "画面を読み込み直してから、もう一度お試しください。"),
        403: ("アクセスできません", "このページを表示する権限がありません。"),
        404: (
            "ページが見つかりません",
            "お手元の案内文の QR コード、またはメールのリンクからもう一度アクセスしてください。",
        ),
        405: ("この方法ではアクセスできません", "画面の案内に沿って操作してください。"),
        413: (
            "ファイルが大きすぎます",
            "一度に送信できる容量を超えました。写真を小さくするか、1枚ずつ選び直してください。"
            "（1ファイル {file_mb} まで、1回の送信で {request_mb} まで）",
        ),
        429: (
            "アクセスが集中しています",
            "短時間に多くの操作がありました。しばらく待ってから、もう一度お試しください。",
        ),
        500: (
            "システムエラーが発生しました",
            "入力中の内容は保存されていない場合があります。時間をおいてもう一度お試しください。",
        ),
    }

    def render(code: int):
        title, message = pages.get(code, pages[500])
        message = message.format(
            file_mb=limit_text(app.config["INTAKE_MAX_FILE_BYTES"]),
            request_mb=limit_text(app.config["INTAKE_MAX_REQUEST_BYTES"]),
        )
        return render_template("public/message.html", title=title, message=message), code

    def handler(error):
        code = error.code if isinstance(error, HTTPException) else 500
        audit_down = isinstance(error, AuditUnavailable)  # nothing done without its event
        if audit_down or (code == 500 and unavailable.database_down(error)):  # a clean 503
            unavailable.rollback_quietly()
            log.warning("database unavailable on %s: %s", request.path, type(error).__name__)
            page = render_template(
                "public/message.html",
                title=unavailable.FORM_TITLE,
                message=unavailable.FORM_MESSAGE,
            )
            return page, 503, {"Retry-After": str(unavailable.RETRY_AFTER_SECONDS)}
        if code == 500:
            # Path only (never the body or the query); the log filter masks 12-digit runs.
            log.error("unhandled error on %s", request.path, exc_info=error)
            db.session.rollback()
        return render(code if code in pages else 500)

    @app.errorhandler(CSRFError)
    def csrf_error(_error):
        return render_template(
            "public/message.html",
            title="画面の有効期限が切れました",
            message="しばらく操作がなかったため、画面が無効になりました。"
            "お手数ですが、もう一度リンクから開いてください。",
        ), 400

    for code in pages:
        app.register_error_handler(code, handler)
    app.register_error_handler(Exception, handler)
