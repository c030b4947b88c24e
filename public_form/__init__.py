"""The subjects' app: a minimal Flask app that holds no key able to decrypt anything.

For now it serves the Japanese landing page; the sealed submission flow lives here too.
"""

from __future__ import annotations

from flask import Flask, render_template
from flask_talisman import Talisman

import config
from app import logsafe

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

DESK_HOURS = "平日（月〜金）10:00〜17:00（土日祝日・12月29日〜1月3日を除く）"


def create_app(overrides: dict | None = None) -> Flask:
    cfg = config.load(overrides)
    app = Flask(__name__)
    # Only what the form needs: never the key ring path or the vault.
    for key in (
        "SECRET_KEY",
        "MYNUMBER_HOME",
        "SQLALCHEMY_DATABASE_URI",
        "CLIENT_NAME",
        "OPERATOR_NAME",
        "MYNUMBER_HTTPS",
        "LOG_FILE",
        "MAX_CONTENT_LENGTH",
    ):
        app.config[key] = cfg[key]
    logsafe.install(cfg["LOG_FILE"])
    https = cfg["MYNUMBER_HTTPS"]
    Talisman(
        app,
        content_security_policy=CSP,
        force_https=https,
        strict_transport_security=https,
        frame_options="DENY",
        session_cookie_secure=https,
        referrer_policy="no-referrer",
    )

    @app.after_request
    def no_store(response):
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def landing():
        return render_template(
            "public/landing.html",
            desk_hours=DESK_HOURS,
            client=cfg["CLIENT_NAME"],
            operator=cfg["OPERATOR_NAME"],
        )

    @app.errorhandler(404)
    def not_found(_error):
        return render_template(
            "public/message.html",
            title="ページが見つかりません",
            message="お手元の案内文の QR コード、またはメールのリンクから"
            "もう一度アクセスしてください。",
        ), 404

    return app
