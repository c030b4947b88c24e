"""A request's history: every status change and every event (sent, reminded, paper received…)
is a row saying who did it, when and why, which the client can read at any time.

Issuing, submitting, declining, the operator's decisions, mailings and paper intake all write
these rows, so they are written in one place.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from app.core.actor import Actor
from app.models import CollectionRequest, CollectionRequestStatus, RequestStatus, utcnow


def record_event(
    session: Session,
    req: CollectionRequest,
    event: str,
    actor: Actor,
    note: str | None = None,
    reasons: list[dict] | None = None,
) -> None:
    """A history row that does not change the status: sent, reminded, deficiency notice,
    paper received, documents returned (``RequestStatus.EVENT_LABELS``)."""
    if event not in RequestStatus.EVENT_LABELS:
        raise ValueError(f"unknown history event {event}")
    session.add(
        CollectionRequestStatus(
            request_id=req.id,
            status=event,
            at=utcnow(),
            actor_name=actor.name,
            reason_codes=json.dumps(reasons or [], ensure_ascii=False),
            note=note,
        )
    )


def change_status(
    session: Session,
    req: CollectionRequest,
    status: str,
    actor: Actor,
    reasons: list[dict] | None = None,
    note: str | None = None,
) -> None:
    """Move the request to ``status`` and record the move. The caller checked that the move
    is allowed and audited it."""
    req.status = status
    req.status_changed_at = utcnow()
    session.add(
        CollectionRequestStatus(
            request_id=req.id,
            status=status,
            at=req.status_changed_at,
            actor_name=actor.name,
            reason_codes=json.dumps(reasons or [], ensure_ascii=False),
            note=note,
        )
    )
