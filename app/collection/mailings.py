"""Deliveries: every message to a subject (the request, a reminder, a deficiency notice) by
its channel, e-mail or post, sent once.

A ``Delivery`` row is the idempotency key: ``(request, kind, seq)`` is unique, and sending
claims the row (``pending``/``failed`` → ``sending``) in its own committed transaction
before SMTP is touched. A retried or duplicated job therefore finds ``sending`` or ``sent``
and does nothing; a crash between SMTP and the commit leaves ``sending`` for an operator to
decide (送信中（結果未確認）), never a silent second mail.

Failures: a permanent SMTP refusal (5xx, recipient refused) is recorded as ``bounced``; a
temporary one as ``failed`` with the next attempt time (backoff), retried by the scheduled
``mail_retry`` job until ``MAIL_MAX_ATTEMPTS``. Bounces reported later by the mail system
are recorded by Message-ID (``mynumber mail bounce``, or the portal).

The e-mail carries the subject's name, the link and the deadline, never anything else
personal; ``app.platform.mail`` refuses any text that holds a valid number.

Postal deliveries wait for the next print batch (``app.collection.kits``); posting the batch marks them
sent. Both channels end in ``on_sent``: history, the request's sending state, billing.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import uuid
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.collection import campaigns, history, links, readiness, receipts, receive, terms
from app.core import jptime
from app.core.actor import Actor
from app.models import (
    BillingCategory,
    Campaign,
    Channel,
    CollectionRequest,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    LetterKind,
    Person,
    PersonKind,
    Reminder,
    RequestStatus,
    Submission,
    utcnow,
)
from app.operations import billing
from app.platform import mail, outbox
from app.settings import missing_identity

VIEW = "Mailings"  # FAB permission view name (app.access.policy)
RETRY_MINUTES = (5, 30, 120, 480, 1440)
STALE_PENDING_MINUTES = 10
JOB_ACTOR = Actor.system("job:mail")
SEND_DELIVERY = "app.jobs.collection.send_delivery"  # the job, by name (app.platform.queue)


class MailingError(ValueError):
    """A Japanese message for the operator."""


@dataclass(frozen=True)
class DispatchResult:
    emails: list[int]
    posts: int
    skipped: int


def new_delivery(
    session: Session, req: CollectionRequest, kind: str, channel: str | None = None
) -> Delivery:
    """The next delivery of a kind for a request (seq = previous + 1)."""
    seq = session.execute(
        select(func.coalesce(func.max(Delivery.seq), 0)).where(
            Delivery.request_id == req.id, Delivery.kind == kind
        )
    ).scalar_one()
    delivery = Delivery(
        request_id=req.id,
        campaign_id=req.campaign_id,
        kind=kind,
        seq=int(seq) + 1,
        channel=channel or req.channel or Channel.EMAIL,
        status=DeliveryStatus.PENDING,
        attempts=0,
    )
    session.add(delivery)
    session.flush()
    if delivery.channel == Channel.EMAIL:
        promise_email(session, delivery)
    return delivery


def promise_email(session: Session, delivery: Delivery) -> str:
    """The e-mail goes into the outbox in the same transaction as its delivery, so it
    survives Redis being down; the caller dispatches the returned key after commit."""
    return outbox.add(session, SEND_DELIVERY, delivery.id).key


def make_receipt_delivery(session: Session, submission_id: uuid.UUID) -> Delivery | None:
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
    promise_email(session, delivery)
    return delivery


def outbox_keys(delivery_ids: list[int]) -> list[str]:
    """The outbox keys of e-mail deliveries (for ``outbox.after_commit``)."""
    return [outbox.key_for(SEND_DELIVERY, d) for d in delivery_ids]


def still_needed(req: CollectionRequest, delivery: Delivery) -> bool:
    """A request that was submitted (or replaced) needs no kit and no reminder any more."""
    if delivery.kind == DeliveryKind.DEFICIENCY:
        return req.status == RequestStatus.DEFICIENT
    if delivery.kind == DeliveryKind.RECEIPT:  # always wanted once received
        return True
    return req.status == RequestStatus.ISSUED


# -- dispatching a campaign ---------------------------------------------------------------
def prepare(session: Session, campaign: Campaign) -> list[Delivery]:
    """A request delivery for every campaign request that has none yet (idempotent)."""
    have = select(Delivery.request_id).where(Delivery.kind == DeliveryKind.REQUEST)
    reqs = session.execute(
        select(CollectionRequest).where(
            CollectionRequest.campaign_id == campaign.id,
            CollectionRequest.status == RequestStatus.ISSUED,
            CollectionRequest.id.not_in(have),
        )
    ).scalars()
    return [new_delivery(session, req, DeliveryKind.REQUEST) for req in reqs]


def dispatch(session: Session, actor: Actor, campaign: Campaign) -> DispatchResult:
    """Send the campaign's requests: e-mails are queued as jobs, kits wait for a print batch.
    Audited and committed; the caller enqueues ``result.emails`` (ids only)."""
    policy.require(actor, "can_send", campaigns.VIEW)
    if campaign.status != "open":
        raise MailingError("終了したキャンペーンは送付できません")
    refused = readiness.refusal(
        session, actor, current_app.config, "campaign.dispatch", "campaign", [campaign.id]
    )
    if refused:
        raise MailingError(refused)
    created = prepare(session, campaign)
    emails = list(
        session.execute(
            select(Delivery.id).where(
                Delivery.campaign_id == campaign.id,
                Delivery.kind == DeliveryKind.REQUEST,
                Delivery.channel == Channel.EMAIL,
                Delivery.status == DeliveryStatus.PENDING,
            )
        ).scalars()
    )
    posts = sum(1 for d in created if d.channel == Channel.POST)
    trail.record(
        session,
        actor,
        "campaign.dispatch",
        object_type="campaign",
        object_ids=[campaign.id],
        details={"new": len(created), "emails_queued": len(emails), "kits_pending": posts},
    )
    session.commit()
    return DispatchResult(emails, posts, 0)


# -- the e-mail ----------------------------------------------------------------------------
def deficiency_text(session: Session, req: CollectionRequest) -> str:
    """What to fix, per person, from the last deficiency (names and reasons only)."""
    view = receive.subject_status(session, req)
    return (
        "\n".join(f"・{whose}: {what}" for whose, what in view.fixes) or "・内容をご確認ください。"
    )


def letter_values(
    session: Session, keyring, config, delivery: Delivery, req: CollectionRequest
) -> dict[str, str]:
    """The placeholder values for a delivery (the link included)."""
    person = session.get(Person, req.person_id)
    values = campaigns.common_values(config)
    values["氏名"] = person.name
    values["依頼コード"] = req.request_code or ""
    values["リンク"] = links.url_for(keyring, config["PUBLIC_FORM_URL"], req)
    if delivery.kind == DeliveryKind.REMINDER:
        reminder = session.execute(
            select(Reminder).where(Reminder.delivery_id == delivery.id)
        ).scalar_one_or_none()
        values["期限"] = campaigns.format_date(reminder.due_on if reminder else req.deadline)
    elif delivery.kind == DeliveryKind.DEFICIENCY:
        # The new deadline the deficiency set (app.collection.decisions.mark_deficient).
        values["期限"] = campaigns.format_date(req.deadline or jptime.to_jst(req.expires_at).date())
        values["不備内容"] = deficiency_text(session, req)
    else:
        values["期限"] = campaigns.format_date(req.deadline)
    return values


_EMAIL_LETTER = {
    DeliveryKind.REQUEST: LetterKind.REQUEST_EMAIL,
    DeliveryKind.REMINDER: LetterKind.REMINDER_EMAIL,
    DeliveryKind.DEFICIENCY: LetterKind.DEFICIENCY_EMAIL,
}


def build_mail(session: Session, keyring, config, delivery: Delivery) -> mail.Mail:
    req = session.get(CollectionRequest, delivery.request_id)
    person = session.get(Person, req.person_id)
    if not person.email:
        raise MailingError("メールアドレスが登録されていません")
    missing = missing_identity(config)
    if missing:  # never a mail with an empty sender or desk: the operator resends once set
        raise MailingError("次の設定がないため送信できません: " + "、".join(missing))
    if delivery.kind == DeliveryKind.RECEIPT:  # 受付のお知らせ (no link)
        return mail.Mail([person.email], *receipts.letter(session, config, delivery, req))
    subject, body = campaigns.letter(session, req.campaign_id, _EMAIL_LETTER[delivery.kind])
    values = letter_values(session, keyring, config, delivery, req)
    return mail.Mail([person.email], campaigns.fill(subject, values), campaigns.fill(body, values))


def _permanent(exc: mail.MailError) -> bool:
    cause = exc.__cause__
    if isinstance(cause, smtplib.SMTPRecipientsRefused):
        return True
    if isinstance(cause, smtplib.SMTPResponseException):
        return cause.smtp_code >= 500
    return False


def send(session: Session, keyring, delivery_id: int, actor: Actor = JOB_ACTOR) -> str:
    """Send one e-mail delivery, at most once. Returns what happened (for logs and tests)."""
    config = current_app.config
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return "missing"
    if delivery.channel != Channel.EMAIL:
        return "not_email"
    if delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        return delivery.status  # sent, sending, bounced…: never twice
    now = utcnow()
    if (
        delivery.status == DeliveryStatus.FAILED
        and (jptime.aware(delivery.next_attempt_at) or now) > now
    ):
        return "not_due"
    req = session.get(CollectionRequest, delivery.request_id)
    if not still_needed(req, delivery):
        delivery.status = DeliveryStatus.CANCELLED
        session.commit()
        return DeliveryStatus.CANCELLED
    try:
        message = build_mail(session, keyring, config, delivery)
    except (MailingError, links.LinkUnavailable) as exc:
        delivery.status = DeliveryStatus.GAVE_UP
        delivery.last_error = str(exc)[:300]
        session.commit()
        return DeliveryStatus.GAVE_UP
    claimed = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery.id,
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.FAILED)),
        )
        .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1)
    ).rowcount
    session.commit()
    if claimed != 1:
        return "claimed_elsewhere"
    session.refresh(delivery)
    try:
        message_id = mail.send_from_app(message)
    except mail.MailHeaderRefused as exc:  # refused before anything left the host
        delivery.status = DeliveryStatus.GAVE_UP
        delivery.last_error = str(exc)[:300]
        trail.record(
            session,
            actor,
            "mail.refused",
            object_type="delivery",
            object_ids=[delivery.id],
            outcome="denied",
            details={"reason": str(exc)},
        )
        session.commit()
        return DeliveryStatus.GAVE_UP
    except mail.MailContainsNumber as exc:
        delivery.status = DeliveryStatus.GAVE_UP
        delivery.last_error = str(exc)[:300]
        session.commit()
        return DeliveryStatus.GAVE_UP
    except mail.MailError as exc:
        delivery.last_error = str(exc)[:300]
        if _permanent(exc):
            delivery.status = DeliveryStatus.BOUNCED
            history.record_event(session, req, "bounced", actor, note=str(exc)[:200])
        elif delivery.attempts >= int(config.get("MAIL_MAX_ATTEMPTS", 5)):
            delivery.status = DeliveryStatus.GAVE_UP
            delivery.next_attempt_at = None
        else:
            delivery.status = DeliveryStatus.FAILED
            wait = RETRY_MINUTES[min(delivery.attempts - 1, len(RETRY_MINUTES) - 1)]
            delivery.next_attempt_at = utcnow() + dt.timedelta(minutes=wait)
        session.commit()
        return delivery.status
    delivery.message_id = message_id
    on_sent(session, actor, delivery, req, utcnow())
    session.commit()
    return DeliveryStatus.SENT


def on_sent(
    session: Session,
    actor: Actor,
    delivery: Delivery,
    req: CollectionRequest,
    when: dt.datetime,
) -> None:
    """What sending means, whatever the channel: the history the client sees, the request's
    sending state, and the billable event (counted once by its key)."""
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = when
    delivery.next_attempt_at = None
    person = session.get(Person, req.person_id)
    channel = Channel.LABELS.get(delivery.channel, delivery.channel)
    external = person.kind == PersonKind.EXTERNAL
    if delivery.kind == DeliveryKind.REQUEST:
        if req.sent_at is None:
            req.sent_at = when
        what = "メール" if delivery.channel == Channel.EMAIL else "収集キット（郵送）"
        history.record_event(session, req, "sent", actor, note=what)
        billing.record_event(
            session,
            BillingCategory.EXTERNAL_KIT if external else BillingCategory.EMPLOYEE_KIT,
            f"kit:{req.id}",
            when,
            req.id,
        )
    elif delivery.kind == DeliveryKind.REMINDER:
        # The reminder's own number counts, not the delivery's: a resent letter is the same
        # 督促, billed once.
        reminder = session.execute(
            select(Reminder).where(Reminder.delivery_id == delivery.id)
        ).scalar_one_or_none()
        n = reminder.seq if reminder else delivery.seq
        req.reminder_count = max(req.reminder_count or 0, n)  # 督促済 once it went out
        history.record_event(session, req, "reminded", actor, note=f"第{n}回・{channel}")
        if external:  # 別表: 督促の連絡 is billed per person for external members only
            billing.record_event(
                session, BillingCategory.EXTERNAL_REMINDER, f"reminder:{req.id}:{n}", when, req.id
            )
    elif delivery.kind == DeliveryKind.RECEIPT:  # 受付のお知らせ
        history.record_event(session, req, "receipt_notice", actor, note=channel)
    else:
        history.record_event(session, req, "deficiency_notice", actor, note=channel)


# -- retries, bounces, resending -----------------------------------------------------------
def due_for_retry(session: Session, now: dt.datetime | None = None) -> list[int]:
    """E-mail deliveries to (re)try now: failed ones whose time has come, and pending ones a
    lost job left behind."""
    now = now or utcnow()
    stale = now - dt.timedelta(minutes=STALE_PENDING_MINUTES)
    return list(
        session.execute(
            select(Delivery.id)
            .where(
                Delivery.channel == Channel.EMAIL,
                ((Delivery.status == DeliveryStatus.FAILED) & (Delivery.next_attempt_at <= now))
                | ((Delivery.status == DeliveryStatus.PENDING) & (Delivery.created_at <= stale)),
            )
            .order_by(Delivery.id)
            .limit(5000)
        ).scalars()
    )


def record_bounce(
    session: Session,
    actor: Actor,
    *,
    delivery_id: int | None = None,
    message_id: str | None = None,
    reason: str = "",
) -> Delivery:
    """A bounce the mail system reported after SMTP accepted the message. Audited."""
    policy.require(actor, "can_bounce", VIEW)
    if delivery_id is not None:
        delivery = session.get(Delivery, delivery_id)
    elif message_id:
        wanted = message_id.strip()
        if not wanted.startswith("<"):
            wanted = f"<{wanted}>"
        delivery = session.execute(
            select(Delivery).where(Delivery.message_id == wanted)
        ).scalar_one_or_none()
    else:
        delivery = None
    if delivery is None:
        raise MailingError("該当する送信記録が見つかりません")
    if delivery.channel != Channel.EMAIL:
        raise MailingError("郵送の送付には不達を記録できません")
    try:
        reason = terms.free_text(reason, "不達の理由", 200) or "不達の通知あり"
    except terms.IntakeError as exc:
        raise MailingError(str(exc)) from None
    trail.record(
        session,
        actor,
        "mailing.bounce",
        object_type="delivery",
        object_ids=[delivery.id, delivery.request_id],
        details={"reason": reason},
    )
    delivery.status = DeliveryStatus.BOUNCED
    delivery.last_error = reason[:300]
    req = session.get(CollectionRequest, delivery.request_id)
    history.record_event(session, req, "bounced", actor, note=reason)
    session.flush()
    return delivery


def resend(session: Session, actor: Actor, delivery: Delivery, channel: str) -> Delivery:
    """Send a failed, bounced or unconfirmed message again, by e-mail or as a letter (which
    also switches the request's channel). A new delivery: the old one stays as history."""
    policy.require(actor, "can_retry", VIEW)
    if delivery.kind == DeliveryKind.RECEIPT:  # its seq is the submission's round
        raise MailingError("受付のお知らせは再送できません（提出者は提出状況の画面で確認できます）")
    if channel not in Channel.ALL:
        raise MailingError("送付方法が不正です")
    if delivery.status not in (
        DeliveryStatus.BOUNCED,
        DeliveryStatus.GAVE_UP,
        DeliveryStatus.SENDING,
        DeliveryStatus.FAILED,
    ):
        raise MailingError("この送付は再送の対象ではありません")
    req = session.get(CollectionRequest, delivery.request_id)
    if not still_needed(req, delivery):
        raise MailingError("この依頼は既に提出済み等のため、再送は不要です")
    person = session.get(Person, req.person_id)
    if (
        channel == Channel.EMAIL
        and person.kind == PersonKind.EXTERNAL
        and delivery.kind == DeliveryKind.REQUEST
    ):  # spec 5.2-3: the e-mail instead of the kit is for 役職員 and their dependents only
        raise MailingError("外部委員等には収集キットを郵送します（メールでの案内はできません）")
    if channel == Channel.EMAIL and not person.email:
        raise MailingError("メールアドレスが登録されていません")
    if channel == Channel.POST and not (person.postal_code and person.address_enc):
        raise MailingError("住所が登録されていないため郵送できません")
    refused = readiness.refusal(
        session, actor, current_app.config, "mailing.resend", "delivery", [delivery.id, req.id]
    )
    if refused:
        raise MailingError(refused)
    trail.record(
        session,
        actor,
        "mailing.resend",
        object_type="delivery",
        object_ids=[delivery.id, req.id],
        details={"channel": channel, "previous_status": delivery.status},
    )
    if delivery.status in (DeliveryStatus.FAILED, DeliveryStatus.SENDING):
        delivery.status = DeliveryStatus.CANCELLED
    req.channel = channel
    fresh = new_delivery(session, req, delivery.kind, channel)
    reminder = session.execute(
        select(Reminder).where(Reminder.delivery_id == delivery.id)
    ).scalar_one_or_none()
    if reminder is not None:
        reminder.delivery_id = fresh.id
    session.flush()
    return fresh


def problems(session: Session, limit: int = 500) -> list[Delivery]:
    """Deliveries an operator has to look at."""
    return list(
        session.execute(
            select(Delivery)
            .where(
                Delivery.status.in_(
                    (
                        DeliveryStatus.FAILED,
                        DeliveryStatus.BOUNCED,
                        DeliveryStatus.GAVE_UP,
                        DeliveryStatus.SENDING,
                    )
                )
            )
            .order_by(Delivery.created_at.desc())
            .limit(limit)
        ).scalars()
    )
