"""Refused portal requests as audit evidence.

A signed-in user who opens a screen their role does not allow (403), or posts a form without
its CSRF token (a forged cross-site request, or a script replaying a session), leaves an
``access.denied`` event: probing for other roles' screens is exactly what an auditor looks
for (PPC guideline, 技術的安全管理措置: アクセス制御 and 外部からの不正アクセス等の防止).

Only the route's pattern (``/people/<string:pid>/reveal``) is kept, never the path or the
query string, which could hold anything the user typed — even a number. The refusal stands
whether or not the event can be written: the safe outcome needs no log to be safe.
"""

from __future__ import annotations

import logging

from flask import request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.audit import trail
from app.models import db
from app.web.identity import actor_for
from app.web.listargs import UnknownAction

log = logging.getLogger(__name__)

ACTION = "access.denied"


def reason_of(error: BaseException) -> str | None:
    """``forbidden``, ``csrf``, ``unknown_action`` (a hand-made request probing the screens)
    or ``no_api`` for the refusals worth recording, else None."""
    if isinstance(error, CSRFError):
        return "csrf"
    if isinstance(error, UnknownAction):
        return "unknown_action"
    if isinstance(error, HTTPException) and error.code == 403:
        return "forbidden"
    if isinstance(error, HTTPException) and error.code == 404 and _api_path():
        # The portal has no API: a request for FAB's (say, its password-only token login)
        # is a script looking for a way round the sign-in pages.
        return "no_api"
    return None


def _api_path() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def record_refusal(error: BaseException) -> None:
    """Audit a signed-in user's refused request (anonymous ones are the login page's job,
    except a call to an API the portal does not have)."""
    reason = reason_of(error)
    signed_in = getattr(current_user, "is_authenticated", False)
    if reason is None or (not signed_in and reason != "no_api"):
        return
    try:
        db.session.rollback()
        trail.record(
            db.session,
            actor_for(current_user._get_current_object() if signed_in else None),
            ACTION,
            outcome="denied",
            details={
                "reason": reason,
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else None,
            },
            commit=True,
        )
    except Exception:  # noqa: BLE001 - the request is refused either way
        db.session.rollback()
        log.exception("could not audit a refused request")
