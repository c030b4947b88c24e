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

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collection import campaigns
from app.models import (
    CollectionRequest,
    Delivery,
    Person,
    Submission,
)

SUBJECT = "【{発注者}】マイナンバー（個人番号）のご提出を受け付けました"
BODY = (
    "{氏名} 様\n\n"
    "マイナンバー（個人番号）のご提出を受け付けました。\n"
    "受付番号: {受付番号}\n\n"
    "内容を確認し、不備があった場合はあらためてご連絡します。\n"
    "{取扱い}\n\n"
    "このメールに個人番号を書いて返信しないでください。\n"
    "お心当たりのない場合は、お問い合わせ窓口までご連絡ください。\n\n"
    "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）"
)


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
