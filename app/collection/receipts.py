"""受付のお知らせ: the e-mail a subject gets after a web submission, promised through the
outbox in the submission's own transaction.

The public form only writes an outbox row holding the submission id (it cannot read the
key ring, and its database role needs no access to deliveries). The ``send_receipt`` job,
in the worker, turns it into a ``Delivery`` (unique per request and submission round), and
the delivery goes out like every other mail: claimed before SMTP, retried with backoff,
marked failed and listed on 送付・印刷 when it cannot be sent. The mail holds the name and
the receipt number, never anything else personal.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.collection import campaigns
from app.models import (
    Channel,
    CollectionRequest,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Person,
    Submission,
)
from app.platform import outbox

SUBJECT = "【{発注者}】マイナンバー（個人番号）のご提出を受け付けました"
BODY = (
    "{氏名} 様\n\n"
    "マイナンバー（個人番号）のご提出を受け付けました。\n"
    "受付番号: {受付番号}\n\n"
    "内容を確認し、不備があった場合はあらためてご連絡します。\n"
    "このメールに個人番号を書いて返信しないでください。\n"
    "お心当たりのない場合は、お問い合わせ窓口までご連絡ください。\n\n"
    "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）"
)


def promise(session: Session, submission: Submission) -> None:
    """In the submission's transaction: the receipt mail, as ids only (no commit). Called
    once per submission, in the transaction that receives it (``intake.receive``)."""
    from app.jobs.outbox import send_receipt

    outbox.add(session, send_receipt, submission.id, key=outbox_key(submission.id), once=True)


def outbox_key(submission_id: uuid.UUID) -> str:
    return f"receipt:{submission_id}"


def make_delivery(session: Session, submission_id: uuid.UUID) -> Delivery | None:
    """The receipt delivery of a submission (created once; None when there is no address
    or the submission is gone). Flushes; the caller commits and dispatches."""
    submission = session.get(Submission, submission_id)
    if submission is None or submission.receipt_no is None:
        return None
    req = session.get(CollectionRequest, submission.request_id)
    person = session.get(Person, req.person_id) if req else None
    if person is None or not person.email:
        return None
    existing = session.execute(
        select(Delivery).where(
            Delivery.request_id == req.id,
            Delivery.kind == DeliveryKind.RECEIPT,
            Delivery.seq == submission.seq,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    from app.collection import mailings

    delivery = Delivery(
        request_id=req.id,
        campaign_id=req.campaign_id,
        kind=DeliveryKind.RECEIPT,
        seq=submission.seq,
        channel=Channel.EMAIL,
        status=DeliveryStatus.PENDING,
        attempts=0,
    )
    try:
        with session.begin_nested():
            session.add(delivery)
            session.flush()
    except IntegrityError:  # a parallel job made it first
        return session.execute(
            select(Delivery).where(
                Delivery.request_id == req.id,
                Delivery.kind == DeliveryKind.RECEIPT,
                Delivery.seq == submission.seq,
            )
        ).scalar_one()
    mailings.promise_email(session, delivery)
    return delivery


def letter(session: Session, config, delivery: Delivery, req: CollectionRequest) -> tuple[str, str]:
    """Subject and body of the receipt mail, placeholders filled."""
    person = session.get(Person, req.person_id)
    submission = session.execute(
        select(Submission).where(Submission.request_id == req.id, Submission.seq == delivery.seq)
    ).scalar_one_or_none()
    values = campaigns.common_values(config)
    values["氏名"] = person.name
    values["受付番号"] = (submission.receipt_no if submission else None) or "（照会中）"
    return campaigns.fill(SUBJECT, values), campaigns.fill(BODY, values)
