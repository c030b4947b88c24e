"""Collection jobs: sending one e-mail, rendering a print batch, checking and loading an
uploaded target list, the daily dunning run and the mail retry sweep.

Every job takes ids only (``app.platform.queue.enqueue`` refuses anything else) and is
idempotent: the service it calls checks the database first (a delivery already ``sent`` or
``sending`` is never sent again, a rendered batch is not rendered twice, a reminder is unique
per request and run date). Scheduled jobs run in UTC cron: 00:00 UTC is 09:00 JST.
"""

from __future__ import annotations

import logging

from flask import current_app

from app.collection import dunning, kits, mailings, target_uploads
from app.core.actor import Actor
from app.jobs import job, scheduled
from app.models import db
from app.platform import outbox
from app.platform.queue import enqueue

log = logging.getLogger(__name__)


def _keyring():
    return current_app.extensions["mynumber_keyring"]


def _vault():
    return current_app.extensions["mynumber_vault"]


@job
def send_delivery(delivery_id: int) -> str:
    """Send one e-mail delivery (at most once)."""
    outcome = mailings.send(db.session, _keyring(), int(delivery_id))
    log.info("delivery %s: %s", delivery_id, outcome)
    return outcome


@job
def render_print_batch(batch_id: int) -> str:
    """Render a print batch into sealed PDF parts."""
    return kits.render_batch(
        db.session, _vault(), _keyring(), int(batch_id), Actor.system("job:print")
    )


@job
def load_target_upload(upload_id: str) -> str:
    """Check (and load) a target list uploaded in the portal, as the user who uploaded it."""
    return target_uploads.run(db.session, _vault(), _keyring(), str(upload_id))


@scheduled("dunning", "0 0 * * *")
@job
def dunning_daily() -> str:
    """督促: every day at 09:00 JST; acts on business days only."""
    result = dunning.run(db.session)
    # The reminders' e-mails were promised in the run's transaction (outbox): send them now.
    outbox.after_commit(db.session, mailings.outbox_keys(result.emails))
    return str(result)


@scheduled("mail_retry", "*/10 * * * *")
@job
def mail_retry() -> str:
    """Queue e-mails whose retry time has come (and pending ones a lost job left behind)."""
    ids = mailings.due_for_retry(db.session)
    for delivery_id in ids:
        enqueue(send_delivery, delivery_id)
    return f"再送対象 {len(ids)} 件"
