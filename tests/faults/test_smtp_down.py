"""SMTP down: a mail is retried with backoff while the server is unreachable, sent exactly
once when it is back, and after MAIL_MAX_ATTEMPTS marked 送信失敗（要対応） with a Japanese
reason on the portal's 送付・印刷 screen. The unreachable server is a closed port; the
reachable one is the real aiosmtpd fixture."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from app.access.policy import OPERATOR
from app.jobs.collection import mail_retry
from app.jobs.outbox import dispatch_outbox
from app.models import Delivery, DeliveryKind, DeliveryStatus, db, utcnow
from tests.faults.conftest import NUMBER_A, free_port, submit_alone
from tests.public_form.conftest import Subject


def _submitted(app, form_app, external_subject) -> Delivery:
    """A web submission whose receipt mail the worker tried once (SMTP already down)."""
    subject = Subject(form_app.test_client())
    subject.token = external_subject["token"]
    submit_alone(subject, external_subject["person"], NUMBER_A)
    dispatch_outbox()  # the worker's sweep: creates the delivery and tries to send it
    return db.session.execute(
        select(Delivery).where(Delivery.kind == DeliveryKind.RECEIPT)
    ).scalar_one()


def _time_passes(delivery_id: int) -> None:
    """Move the next attempt into the past (as if the backoff had elapsed)."""
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    )
    db.session.commit()


def test_mail_is_retried_with_backoff_and_sent_once_when_smtp_is_back(
    app, session, form_app, external_subject, smtp_server
):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    delivery = _submitted(app, form_app, external_subject)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert "メールを送信できませんでした" in delivery.last_error
    first_wait = delivery.next_attempt_at
    assert first_wait is not None and first_wait.replace(tzinfo=dt.UTC) > utcnow()
    assert mail_retry() == "再送対象 0 件"  # not due yet: nothing is hammered

    _time_passes(delivery.id)
    mail_retry()
    session.refresh(delivery)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2
    # The wait grows (5 minutes, then 30).
    gap = delivery.next_attempt_at.replace(tzinfo=dt.UTC) - utcnow()
    assert gap > dt.timedelta(minutes=20)

    app.config["SMTP_URL"] = smtp_server.url  # the server is back
    _time_passes(delivery.id)
    mail_retry()
    session.refresh(delivery)
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 3
    assert len(smtp_server.messages) == 1
    for _ in range(2):  # later sweeps (and the outbox) never send it again
        _time_passes(delivery.id)
        mail_retry()
        dispatch_outbox()
    assert len(smtp_server.messages) == 1


def test_mail_that_keeps_failing_is_marked_failed_and_shown_with_a_japanese_reason(
    app, session, form_app, external_subject, client, make_user, login
):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    delivery = _submitted(app, form_app, external_subject)
    for _ in range(5):
        session.refresh(delivery)
        if delivery.status != DeliveryStatus.FAILED:
            break
        _time_passes(delivery.id)
        mail_retry()
    session.refresh(delivery)
    assert delivery.status == DeliveryStatus.GAVE_UP and delivery.attempts == 3
    assert delivery.next_attempt_at is None

    user, secret = make_user(OPERATOR)
    login(user.username, totp_secret=secret)
    page = client.get("/mailings/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "送信失敗（要対応）" in html and "受付のお知らせ" in html
    assert "メールを送信できませんでした" in html and "Traceback" not in html
    assert "佐藤 一郎" in html
