"""Outbox jobs: the scheduled dispatcher (every minute), the receipt mail and the desk's
answer mail.

``dispatch_outbox`` hands every due ``outbox_message`` to RQ (or runs it, in embedded mode):
whatever an action promised while Redis was down goes out once Redis is back.
``send_receipt`` turns a submission id into its 受付のお知らせ delivery (ids only).
"""

from __future__ import annotations

import uuid

from flask import current_app

from app.collection import mailings
from app.jobs import job, scheduled
from app.models import db
from app.operations import desk
from app.platform import outbox


@scheduled("outbox", "* * * * *")
@job
def dispatch_outbox() -> str:
    """Hand over every pending outbox row whose time has come."""
    return str(outbox.dispatch(db.session))


@job
def send_receipt(submission_id: str) -> str:
    """Create the receipt delivery of a submission, then send it through the outbox."""
    delivery = mailings.make_receipt_delivery(db.session, uuid.UUID(str(submission_id)))
    if delivery is None:
        db.session.commit()
        return "no_address"
    db.session.commit()
    outbox.after_commit(db.session, mailings.outbox_keys([delivery.id]))
    return f"delivery {delivery.id}"


@job
def send_inquiry_answer(inquiry_id: int, answered: int) -> str:
    """Mail the desk's answer to the subject who asked (once per answer)."""
    return desk.send_answer(db.session, current_app.config, int(inquiry_id), int(answered))
