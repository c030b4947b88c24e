"""Database outages as a clean 503: a restart or failover of PostgreSQL (or a locked SQLite
file) is a temporary condition, not a program error.

Both apps' error handlers ask ``database_down(error)``: if so they roll the session back,
log one line without a traceback and answer 503 with a Japanese page and ``Retry-After``.
Nothing half-stored: every action commits once, so a failed request changed nothing and the
user can simply repeat it. Connections are checked before use (``pool_pre_ping``), so the
first request after a restart gets a fresh connection instead of a dead one.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from app.models import db

RETRY_AFTER_SECONDS = 30
PORTAL_MESSAGE = (
    "データベースに一時的に接続できません。操作は保存されていません。"
    "しばらく待ってから、もう一度お試しください。"
)
AUDIT_MESSAGE = (
    "監査ログに記録できないため、この操作は実行されませんでした（監査ログが他の処理に"
    "ロックされているか、書き込めません）。操作は保存されていません。しばらく待ってから、"
    "もう一度お試しください。"
)
FORM_TITLE = "ただいま混み合っています"
FORM_MESSAGE = (
    "システムに一時的に接続できません。この操作は保存されていません。"
    "しばらく待ってから、もう一度お試しください。入力済みで「保存しました」と表示された内容は"
    "残っています。"
)


def rollback_quietly() -> None:
    """Roll the request's session back; the connection may already be gone."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        pass


def render_outside_context(app, template: str, **values) -> str:
    """Render without Flask's context processors: they load the signed-in user (a database
    query), which is exactly what cannot work now."""
    return app.jinja_env.get_template(template).render(**values)


def database_down(error: BaseException) -> bool:
    """True when the error means the database could not be reached (or dropped us)."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def close_sessions_quietly(app) -> None:
    """Register (after ``db.init_app``) a teardown that closes the request's session even
    when the database went away mid-request: Flask-SQLAlchemy's own ``session.remove()``
    would raise from the teardown (the ROLLBACK cannot reach the server), turning the
    clean 503 into a server error. The dead connection is discarded either way."""
    log = logging.getLogger(__name__)

    @app.teardown_appcontext
    def _close(_error) -> None:
        try:
            db.session.remove()
        except SQLAlchemyError as exc:
            log.warning("session closed after a lost connection: %s", type(exc).__name__)
            try:
                db.session.remove()
            except SQLAlchemyError:
                pass
