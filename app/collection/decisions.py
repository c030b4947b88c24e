"""The operator's decisions on a request: moving it along (確認中, 完了, 無効, 不受理) and
recording a deficiency, which reopens on the form exactly the parts that were wrong.

    set_status(session, actor, req, RequestStatus.VERIFYING)
    mark_deficient(session, actor, req, [(ref, "number_doc_unreadable"), ...], note)
    set_status(session, actor, req, RequestStatus.COMPLETED)   # after registering the numbers

Both are audited in the caller's transaction; neither commits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.access import assignments, policy
from app.audit import trail
from app.collection.history import change_status
from app.collection.subjects import in_request
from app.collection.terms import DEFICIENCY_CODES, INTAKE_VIEW, IntakeError, free_text
from app.core import jptime
from app.core.actor import Actor
from app.models import CollectionRequest, RequestStatus, utcnow

DEFICIENCY_GRACE_DAYS = 14

# Allowed operator transitions (submission and decline are the subject's own).
TRANSITIONS = {
    RequestStatus.VERIFYING: {RequestStatus.SUBMITTED},
    RequestStatus.COMPLETED: {RequestStatus.SUBMITTED, RequestStatus.VERIFYING},
    RequestStatus.CANCELLED: {
        RequestStatus.ISSUED,
        RequestStatus.SUBMITTED,
        RequestStatus.VERIFYING,
        RequestStatus.DEFICIENT,
    },
    # The operator refuses a submission in verification (the reason is recorded).
    RequestStatus.REFUSED: {RequestStatus.SUBMITTED, RequestStatus.VERIFYING},
}


def resubmission_deadline(today: dt.date) -> dt.date:
    """The new date a deficiency notice asks for: ``DEFICIENCY_GRACE_DAYS`` days on, moved to
    a business day (the request's own deadline becomes this unless it is later)."""
    return jptime.next_business_day(today + dt.timedelta(days=DEFICIENCY_GRACE_DAYS))


def set_status(
    session: Session, actor: Actor, req: CollectionRequest, status: str, note: str | None = None
) -> None:
    """Move a request along (確認中, 完了, 無効). Audited, in the caller's transaction."""
    policy.require(actor, "can_decide", INTAKE_VIEW)
    allowed_from = TRANSITIONS.get(status)
    if allowed_from is None or req.status not in allowed_from:
        raise IntakeError(
            f"「{req.status_label}」から「{RequestStatus.LABELS.get(status, status)}」には変更できません"
        )
    note = free_text(note, "メモ", 500)
    trail.record(
        session,
        actor,
        "intake.status",
        object_type="collection_request",
        object_ids=[req.id],
        details={"from": req.status, "to": status},
    )
    change_status(session, req, status, actor, note=note)
    session.flush()


def mark_deficient(
    session: Session,
    actor: Actor,
    req: CollectionRequest,
    items: Iterable[tuple[str, str]],
    note: str | None = None,
) -> list[dict]:
    """Record a deficiency with reason codes per person; the form reopens just those parts
    (number and/or documents of those people), the request gets a new deadline (the date the
    notice gives) and the link stays open past it. Only the
    Operator holding the request's case records one (``app.access.assignments``); a refusal is
    audited."""
    policy.require(actor, "can_decide", INTAKE_VIEW)
    if not assignments.holds_case(session, actor, req.id):
        assignments.refuse(
            session,
            actor,
            "intake.deficient",
            "collection_request",
            [req.id],
            "この依頼は、あなたが確認キューで担当している案件ではないため不備を登録できません",
        )
    if req.status not in (RequestStatus.SUBMITTED, RequestStatus.VERIFYING):
        raise IntakeError("受付済・確認中の依頼にだけ不備を登録できます")
    known = {s.ref for s in in_request(session, req, None)}
    reasons: list[dict] = []
    reopened: list[dict] = []
    for ref, code in items:
        if ref not in known:
            raise IntakeError("不備の対象者が依頼に含まれていません")
        if code not in DEFICIENCY_CODES:
            raise IntakeError(f"不備の理由コードが不明です: {code}")
        reasons.append({"ref": ref, "code": code})
        for part in DEFICIENCY_CODES[code][1]:
            if {"ref": ref, "part": part} not in reopened:
                reopened.append({"ref": ref, "part": part})
    if not reasons:
        raise IntakeError("不備の理由を1つ以上選んでください")
    note = free_text(note, "メモ", 500)
    trail.record(
        session,
        actor,
        "intake.deficient",
        object_type="collection_request",
        object_ids=[req.id],
        details={"reasons": reasons},
    )
    req.reopened = json.dumps(reopened)
    resubmit_by = resubmission_deadline(jptime.today_jst())
    if req.deadline is None or req.deadline < resubmit_by:
        req.deadline = resubmit_by  # the date the deficiency notice gives (「{期限}までに」)
    # The link outlives the date it names by the same margin a reminder gives.
    grace = max(
        utcnow() + dt.timedelta(days=DEFICIENCY_GRACE_DAYS),
        dt.datetime.combine(
            req.deadline + dt.timedelta(days=DEFICIENCY_GRACE_DAYS),
            dt.time(23, 59),
            tzinfo=jptime.JST,
        ),
    )
    if jptime.aware(req.expires_at) < grace:
        req.expires_at = grace
    change_status(session, req, RequestStatus.DEFICIENT, actor, reasons=reasons, note=note)
    session.flush()
    return reopened
