"""E-mail delivery: failures recorded and retried with backoff, a permanent refusal recorded
as a bounce (and switched to post), later bounces by Message-ID, an unconfirmed send never
repeated blindly, the outbox in embedded mode. Real SMTP servers (aiosmtpd) throughout."""

import datetime as dt
import socket

import pytest
from sqlalchemy import select, update

from app.cli import mynumber_group
from app.collection import campaigns, mailings
from app.jobs.collection import mail_retry, send_delivery
from app.models import Delivery, DeliveryStatus, Stage, utcnow
from tests import support
from tests.collection import flows
from tests.collection.conftest import NUMBERS


@pytest.fixture
def refusing_smtp():
    """A real SMTP server that refuses one mailbox permanently (550) and takes the rest."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
            if address.startswith("taro@"):
                return "550 5.1.1 User unknown"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(message_from_bytes(envelope.original_content, policy=policy.default))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", received
    controller.stop()


def _delivery(session):
    """The e-mail delivery (the other household in the file gets a kit by post)."""
    return session.execute(select(Delivery).where(Delivery.channel == "email")).scalar_one()


def test_a_failure_is_retried_later_and_sent_once(
    app, session, staff, operators, smtp_server, jobs
):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:1"  # nothing listens there
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    session.expire_all()
    delivery = _delivery(session)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert "送信できませんでした" in delivery.last_error
    assert delivery.next_attempt_at is not None
    assert mail_retry() == "再送対象 0 件"  # not due yet
    assert send_delivery(delivery.id) == "not_due"

    # The server is back; time passes.
    app.config["SMTP_URL"] = smtp_server.url
    session.execute(update(Delivery).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))
    session.commit()
    outcome = mail_retry()
    jobs.drain()
    assert outcome == "再送対象 1 件"
    session.expire_all()
    delivery = _delivery(session)
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 2
    assert len(smtp_server.messages) == 1
    assert mail_retry() == "再送対象 0 件"
    assert send_delivery(delivery.id) == "sent"
    assert len(smtp_server.messages) == 1
    assert campaigns.stage(flows.request_of("E1001")) == Stage.SENT


def test_giving_up_after_the_last_attempt(app, session, staff, operators, jobs):
    app.config.update(SMTP_URL="smtp://127.0.0.1:1", MAIL_MAX_ATTEMPTS=1)
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    session.expire_all()
    delivery = _delivery(session)
    assert delivery.status == DeliveryStatus.GAVE_UP and delivery.next_attempt_at is None
    assert delivery in mailings.problems(session)


def test_a_refused_mailbox_bounces_and_the_kit_goes_by_post(
    app, session, staff, operators, refusing_smtp, jobs
):
    url, received = refusing_smtp
    app.config["SMTP_URL"] = url
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    session.expire_all()
    delivery = _delivery(session)
    assert delivery.status == DeliveryStatus.BOUNCED and received == []
    req = flows.request_of("E1001")
    assert "メール不達" in [e.label for e in campaigns.timeline(session, req)]
    sent = _sent_like(session, req)
    with pytest.raises(mailings.MailingError, match="再送の対象ではありません"):
        mailings.resend(session, operators[0], sent, "email")
    session.delete(sent)
    session.flush()
    fresh = mailings.resend(session, operators[0], delivery, "post")
    session.commit()
    assert (fresh.channel, fresh.status, fresh.seq) == ("post", DeliveryStatus.PENDING, 2)
    session.refresh(req)
    assert req.channel == "post"
    from app.collection import kits

    assert fresh in kits.pending_letters(session, campaign.id)


def _sent_like(session, req):
    row = Delivery(
        request_id=req.id,
        campaign_id=req.campaign_id,
        kind="request",
        seq=9,
        channel="email",
        status=DeliveryStatus.SENT,
        attempts=1,
    )
    session.add(row)
    session.flush()
    return row


def test_a_bounce_reported_later_is_recorded_by_message_id(
    app, session, staff, operators, smtp_server, jobs
):
    app.config["SMTP_URL"] = smtp_server.url
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    session.expire_all()
    delivery = _delivery(session)
    message_id = smtp_server.messages[0]["Message-ID"]
    assert delivery.message_id == message_id
    result = app.test_cli_runner().invoke(
        mynumber_group, args=["mail", "bounce", message_id.strip("<>"), "--reason", "宛先不明"]
    )
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert _delivery(session).status == DeliveryStatus.BOUNCED
    bad = app.test_cli_runner().invoke(mynumber_group, args=["mail", "bounce", "<nobody@example>"])
    assert bad.exit_code == 1 and "見つかりません" in bad.output
    with pytest.raises(mailings.MailingError, match="12桁"):
        mailings.record_bounce(session, operators[0], delivery_id=delivery.id, reason=NUMBERS[0])


def test_an_unconfirmed_send_is_never_repeated_blindly(
    app, session, staff, operators, smtp_server, jobs
):
    app.config["SMTP_URL"] = smtp_server.url
    campaign, _ = flows.campaign_with_targets(app, staff)
    mailings.dispatch(session, operators[0], campaign)
    delivery = _delivery(session)
    # A worker died between SMTP and its commit.
    delivery.status = DeliveryStatus.SENDING
    session.commit()
    assert send_delivery(delivery.id) == DeliveryStatus.SENDING
    assert mail_retry() == "再送対象 0 件"
    assert smtp_server.messages == []
    # The operator decides to send again: a new delivery, sent once.
    fresh = mailings.resend(session, operators[0], delivery, "email")
    session.commit()
    assert send_delivery(fresh.id) == "sent"
    assert len(smtp_server.messages) == 1
    session.refresh(delivery)
    assert delivery.status == DeliveryStatus.CANCELLED


def test_embedded_mode_writes_the_outbox(app, session, staff, operators, jobs):
    from pathlib import Path

    assert app.config["SMTP_URL"] is None
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    [eml] = list(Path(app.config["OUTBOX_DIR"]).iterdir())
    assert eml.stat().st_mode & 0o777 == 0o600
    data = eml.read_bytes()
    for number in NUMBERS:
        for form in support.number_forms(number):
            assert form not in data


def test_a_submitted_request_gets_no_more_mail(app, session, staff, operators, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    campaign, _ = flows.campaign_with_targets(app, staff)
    mailings.dispatch(session, operators[0], campaign)
    req = flows.request_of("E1001")
    req.status = "declined"
    session.commit()
    assert send_delivery(_delivery(session).id) == DeliveryStatus.CANCELLED
    assert smtp_server.messages == []
