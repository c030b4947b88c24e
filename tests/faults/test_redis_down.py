"""Redis down while subjects submit: the submission is accepted and stored, the mail it
promises waits in the outbox (ids only), and once Redis is back it goes out exactly once,
even with two dispatchers racing. A Redis of the test's own is stopped, never the shared one."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

from sqlalchemy import select

from app.models import (
    CollectionRequest,
    Delivery,
    DeliveryKind,
    OutboxMessage,
    RequestStatus,
    Submission,
    db,
    utcnow,
)
from app.platform import outbox
from app.platform.queue import queue
from tests import support
from tests.cli_runner import run_cli
from tests.faults.conftest import NUMBER_A, submit_alone
from tests.public_form.conftest import Subject


def _use_redis(app, form_app, url: str) -> None:
    name = f"mnv-fault-{uuid.uuid4().hex[:10]}"
    for each in (app, form_app):
        each.config["REDIS_URL"] = url
        each.config["JOB_QUEUE"] = name


def _drain(app) -> None:

    q = queue()
    support.drain_queue(q)


def test_submission_is_stored_while_redis_is_down_and_its_mail_goes_out_once_after(
    app, session, form_app, external_subject, private_redis, smtp_server
):
    app.config["SMTP_URL"] = smtp_server.url
    _use_redis(app, form_app, private_redis.url)  # nothing listens there yet
    subject = Subject(form_app.test_client())
    subject.token = external_subject["token"]

    done = submit_alone(subject, external_subject["person"], NUMBER_A)

    # The subject sees the receipt; the submission is stored, sealed, 受付済.
    assert "受付番号" in done
    assert not any(b"Traceback" in body for body in subject.bodies)
    submission = session.execute(select(Submission)).scalar_one()
    assert submission.status == "received" and submission.receipt_no in done
    req = session.get(CollectionRequest, external_subject["req"].id)
    assert req.status == RequestStatus.SUBMITTED
    # The promised mail waits in the outbox: ids only, and why it waits, in Japanese.
    row = session.execute(select(OutboxMessage)).scalar_one()
    assert row.state == "pending" and row.key == f"receipt:{submission.id}"
    assert json.loads(row.args) == [str(submission.id)]
    assert "Redis" in row.last_error and "接続できません" in row.last_error
    assert smtp_server.messages == []
    assert support.leaks(app, [NUMBER_A]) == []

    # Redis comes back; the scheduled sweep (the worker's job) hands it over.
    private_redis.start()
    later = utcnow() + dt.timedelta(hours=1)  # past the backoff
    report = outbox.dispatch(session, now=later)
    assert report.dispatched == 1 and not report.errors
    _drain(app)  # the receipt job creates the delivery and queues its sending
    _drain(app)

    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert "受け付けました" in message["Subject"]
    assert submission.receipt_no in message.get_content()
    delivery = session.execute(
        select(Delivery).where(Delivery.kind == DeliveryKind.RECEIPT)
    ).scalar_one()
    session.refresh(delivery)
    assert delivery.status == "sent" and delivery.seq == submission.seq

    # Every later sweep, two at once, sends nothing more.
    for _ in range(2):
        assert outbox.dispatch(session, now=later).dispatched == 0
    _drain(app)
    assert len(smtp_server.messages) == 1
    states = set(session.execute(select(OutboxMessage.state)).scalars())
    assert states == {"dispatched"}
    assert support.leaks(app, [NUMBER_A]) == []


def test_two_dispatchers_hand_over_each_row_once(app, session, private_redis):
    private_redis.start()
    app.config["REDIS_URL"] = private_redis.url
    app.config["JOB_QUEUE"] = f"mnv-fault-{uuid.uuid4().hex[:10]}"
    from app.jobs.outbox import send_receipt

    ids = [str(uuid.uuid4()) for _ in range(30)]
    for value in ids:
        outbox.add(session, send_receipt, value)
    session.commit()

    reports = []
    start = threading.Barrier(2)

    def run() -> None:
        with app.app_context():
            start.wait()
            reports.append(outbox.dispatch(db.session))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sum(r.dispatched for r in reports) == len(ids)
    assert queue().count == len(ids)  # one RQ job per row, none twice
    session.expire_all()
    assert set(session.execute(select(OutboxMessage.state)).scalars()) == {"dispatched"}
    queue().delete(delete_jobs=True)


def test_a_dispatcher_that_died_mid_claim_is_taken_over_later(app, session, private_redis):
    """A claim older than STALE_CLAIM_MINUTES goes back to pending and is handed over."""
    private_redis.start()
    app.config["REDIS_URL"] = private_redis.url
    app.config["JOB_QUEUE"] = f"mnv-fault-{uuid.uuid4().hex[:10]}"
    from app.jobs.outbox import send_receipt

    row = outbox.add(session, send_receipt, str(uuid.uuid4()))
    row.state = "dispatching"
    row.claimed_at = utcnow() - dt.timedelta(minutes=outbox.STALE_CLAIM_MINUTES + 1)
    session.commit()
    report = outbox.dispatch(session)
    assert report.reclaimed == 1 and report.dispatched == 1
    assert queue().count == 1
    queue().delete(delete_jobs=True)


def test_embedded_form_leaves_the_mail_to_the_worker(
    app, session, form_app, external_subject, smtp_server
):
    """Without Redis the public form never runs a job (it has no key ring): the worker's
    scheduled sweep sends the receipt."""
    app.config["SMTP_URL"] = smtp_server.url
    subject = Subject(form_app.test_client())
    subject.token = external_subject["token"]
    submit_alone(subject, external_subject["person"], NUMBER_A)
    assert session.execute(select(OutboxMessage.state)).scalar_one() == "pending"
    assert smtp_server.messages == []

    from app.jobs.outbox import dispatch_outbox

    dispatch_outbox()
    assert len(smtp_server.messages) == 1
    dispatch_outbox()
    assert len(smtp_server.messages) == 1


def test_outbox_commands_report_and_dispatch(app, session, instance, private_redis):
    """`mynumber outbox status|dispatch`: what waits and why, then hand it over."""
    import os

    from app.jobs.outbox import send_receipt

    outbox.add(session, send_receipt, str(uuid.uuid4()))
    session.commit()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": private_redis.url,  # not started: the port is closed
        "MYNUMBER_JOB_QUEUE": f"mnv-fault-{uuid.uuid4().hex[:10]}",
    }

    def run(*args):
        return run_cli(["outbox", *args], env, 120)

    down = run("dispatch")
    assert down.returncode == 0 and "保留 1 件" in down.stdout
    assert "ジョブキュー（Redis）に接続できません" in down.stderr
    assert "未送出 1" in run("status").stdout
    private_redis.start()
    session.execute(OutboxMessage.__table__.update().values(next_attempt_at=None))
    session.commit()
    assert "送出 1 件" in run("dispatch").stdout
    assert "送出済 1" in run("status").stdout
