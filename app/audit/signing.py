"""The audit log signs itself: nobody has to remember ``mynumber audit checkpoint``.

An unsigned stretch of the chain is one that whoever holds the database can rewrite with
recomputed hashes and no trace, so checkpoints are taken

- by count, right after each commit that appended events, in every process that holds the key
  ring (portal, CLI, worker): once ``AUDIT_CHECKPOINT_EVERY`` events are unsigned;
- by time, from a scheduler: the worker's ``audit-checkpoint`` job every minute, and a thread
  in ``mynumber run`` (embedded mode): once events wait and the last checkpoint is older than
  ``AUDIT_CHECKPOINT_MINUTES``. The public form holds no key ring; its events are signed here.

Checkpointers may run at once in several processes: each decides again under the chain-head
lock and the checkpoint's sequence number is unique, so they never sign the same head twice.
A failed attempt only logs (the action that triggered it has committed); ``audit verify``
fails once the unsigned tail passes its bound, which is how a signer that stopped is noticed.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.audit import checkpoints
from app.audit.checkpoints import DueCheck, SigningPolicy
from app.audit.trail import APPENDED_SEQ
from app.models import db

log = logging.getLogger(__name__)

# The newest signed sequence number each database is known to have (by URL), so that the
# count rule costs nothing per commit; a stale value only causes one attempt that finds the
# checkpoint another process took.
_last_signed: dict[str, int] = {}
SIGNER_INTERVAL_SECONDS = 30.0


def policy(app: Flask) -> SigningPolicy:
    return SigningPolicy.from_config(app.config)


def sign_if_due(app: Flask, engine: Engine, *, by_time: bool) -> DueCheck | None:
    """One attempt in a session of its own; None when it could not be made (logged)."""
    keyring = app.extensions.get("mynumber_keyring")
    if keyring is None or not keyring.exists():
        return None  # the public form, or an instance not initialised yet
    url = engine.url.render_as_string(hide_password=True)
    try:
        with Session(engine) as own:
            found = checkpoints.checkpoint_if_due(
                own, keyring.audit_signing_key(), policy(app), by_time=by_time
            )
    except Exception as exc:  # noqa: BLE001 - retried by the next commit or the scheduler
        log.warning("automatic audit checkpoint failed: %s", type(exc).__name__)
        return None
    _last_signed[url] = found.last_signed_seq
    if found.taken is not None:
        log.info("audit checkpoint taken at event %s", found.taken.seq)
    return found


def install() -> None:
    """Sign by count after each commit, in this process (idempotent): the portal, the CLI and
    the worker call it when they load the key ring."""
    if not event.contains(Session, "after_commit", _count_rule):
        event.listen(Session, "after_commit", _count_rule)


def _count_rule(session: Session) -> None:
    """After a commit that appended events: sign when ``every`` events are unsigned."""
    seq = session.info.pop(APPENDED_SEQ, None)
    if seq is None or not has_app_context():
        return
    app = current_app._get_current_object()
    if "mynumber_keyring" not in app.extensions:
        return
    engine = session.get_bind()
    known = _last_signed.get(engine.url.render_as_string(hide_password=True))
    if known is not None and seq - known < policy(app).every:
        return
    sign_if_due(app, engine, by_time=False)


def sign_now(app: Flask) -> DueCheck | None:
    """The time rule (and the count rule), for the scheduler: in the app's context."""
    with app.app_context():
        try:
            return sign_if_due(app, db.engine, by_time=True)
        finally:
            db.session.remove()


def start_signer(app: Flask, interval: float = SIGNER_INTERVAL_SECONDS) -> threading.Event:
    """Embedded mode (``mynumber run``): a daemon thread that applies the time rule every
    ``interval`` seconds until the returned event is set."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            sign_now(app)

    threading.Thread(target=loop, name="audit-signer", daemon=True).start()
    return stop
