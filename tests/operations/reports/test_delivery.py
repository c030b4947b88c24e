"""The daily run: last month's report goes out once, on the first business day after the month
ends; a failure is recorded and retried the next day; a second run sends nothing; only a
person re-sends. The real job runs inline and on a real RQ worker."""

from __future__ import annotations

import datetime as dt
import socket

from sqlalchemy import select

from app.access.policy import OPERATOR
from app.core import jptime
from app.models import AuditEvent, BillingCategory, MonthlyReport, ReportDelivery
from app.operations import billing
from app.operations.reports import delivery
from tests import support
from tests.conftest import pdf_text
from tests.operations.reports.conftest import CLIENT
from tests.operations.reports.conftest import OPERATOR as OPERATOR_NAME

OCTOBER_EVENT = dt.datetime(2026, 10, 15, 3, 0, tzinfo=dt.UTC)  # 12:00 JST


def _settings(app) -> dict:
    return {
        "recipients": app.config["REPORT_RECIPIENTS"],
        "client": CLIENT,
        "operator": OPERATOR_NAME,
    }


def _october(session):
    billing.record_event(session, BillingCategory.EXTERNAL_KIT, "kit:x1", OCTOBER_EVENT)
    billing.record_event(session, BillingCategory.EXTERNAL_KIT, "kit:x2", OCTOBER_EVENT)
    session.commit()


def _reports(messages):
    return [m for m in messages if "利用実績報告書" in str(m["Subject"])]


def test_the_daily_run_sends_once(app, session, report_mail, needs_pdf):
    _october(session)
    # Sunday 11/1: not yet.
    assert delivery.run_scheduled(session, today=dt.date(2026, 11, 1), **_settings(app)) == []
    assert _reports(report_mail.messages) == []
    # Monday 11/2, the first business day: generated and sent.
    done = delivery.run_scheduled(session, today=dt.date(2026, 11, 2), **_settings(app))
    assert done == ["2026-10: 送信済"]
    [message] = _reports(report_mail.messages)
    [attachment] = list(message.iter_attachments())
    assert "2026年10月分" in pdf_text(attachment.get_content())
    # Again that day, and the following days: nothing more.
    for day in (2, 3, 9):
        assert delivery.run_scheduled(session, today=dt.date(2026, 11, day), **_settings(app)) == []
    assert len(_reports(report_mail.messages)) == 1
    row = session.execute(
        select(MonthlyReport).where(MonthlyReport.month == "2026-10")
    ).scalar_one()
    assert row.due_on == dt.date(2026, 11, 10)
    assert [d.trigger for d in row.deliveries] == ["scheduled"]
    assert row.deliveries[0].pdf_sha256 == row.pdf_sha256
    # A person may re-send by hand: a second, manual delivery of the same file.
    operator = support.actor(OPERATOR, name="op1")
    again = delivery.send(
        session,
        operator,
        "2026-10",
        recipients=app.config["REPORT_RECIPIENTS"],
        client=CLIENT,
        operator=OPERATOR_NAME,
    )
    assert again.trigger == "manual" and again.status == "sent"
    assert len(_reports(report_mail.messages)) == 2
    assert _reports(report_mail.messages)[1].get_payload()[1].get_content() == row.pdf


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_failure_is_recorded_and_retried_the_next_day(app, session, report_mail, needs_pdf):
    _october(session)
    working = app.config["SMTP_URL"]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{_closed_port()}"
    done = delivery.run_scheduled(session, today=dt.date(2026, 11, 2), **_settings(app))
    assert done == ["2026-10: 送信失敗"]
    failed = session.execute(select(ReportDelivery)).scalar_one()
    assert failed.status == "failed" and "送信できません" in failed.error
    assert "keiri@client.example.jp" in failed.recipients
    app.config["SMTP_URL"] = working
    assert delivery.run_scheduled(session, today=dt.date(2026, 11, 4), **_settings(app)) == [
        "2026-10: 送信済"
    ]
    assert delivery.run_scheduled(session, today=dt.date(2026, 11, 5), **_settings(app)) == []
    assert len(_reports(report_mail.messages)) == 1
    outcomes = [
        o
        for (o,) in session.execute(
            select(AuditEvent.outcome).where(AuditEvent.action == "report.send")
        )
    ]
    assert outcomes == ["failure", "success"]


def test_a_month_another_run_holds_is_left_alone(app, session, report_mail, needs_pdf):
    _october(session)
    row = delivery.ensure(session, "2026-10")
    row.auto_claimed_at = dt.datetime.now(dt.UTC)
    session.commit()
    done = delivery.run_scheduled(session, today=dt.date(2026, 11, 2), **_settings(app))
    assert done == ["2026-10: 別の実行が送信中"]
    assert _reports(report_mail.messages) == []


def test_the_scheduled_job_itself_is_idempotent(app, session, report_mail, needs_pdf):
    """``monthly_report`` as the worker runs it (today's date): last month once."""
    from app.jobs import worker
    from app.jobs.reports import monthly_report

    assert worker.find("monthly_report").func is monthly_report
    assert worker.find("monthly_report").cron == "0 8 * * *"  # 17:00 JST
    due = delivery.months_due(jptime.today_jst())  # last month, once its month has ended
    first = monthly_report()
    second = monthly_report()
    assert first.count("送信済") == len(due) and second == "送信対象なし"
    assert len(_reports(report_mail.messages)) == len(due)


def test_the_job_on_a_real_rq_worker(app, session, rq_app, report_mail, needs_pdf):

    from app.jobs.reports import monthly_report
    from app.platform.queue import enqueue, queue

    enqueue(monthly_report)
    enqueue(monthly_report)
    q = queue()
    support.drain_queue(q)
    session.expire_all()
    due = delivery.months_due(jptime.today_jst())
    assert len(_reports(report_mail.messages)) == len(due)
    assert session.execute(select(ReportDelivery.status)).scalars().all() == ["sent"] * len(due)


def test_without_recipients_the_run_says_so_and_sends_nothing(app, session, report_mail):
    app.config["REPORT_RECIPIENTS"] = []
    done = delivery.run_scheduled(session, today=dt.date(2026, 11, 2), **_settings(app))
    assert done == ["2026-10: 送信先（MYNUMBER_REPORT_RECIPIENTS）が未設定のため送信しません"]
    assert report_mail.messages == []


def test_without_recipients_nothing_is_sent_and_the_reason_is_clear(app, session, needs_pdf):
    app.config["REPORT_RECIPIENTS"] = []
    delivery.generate(
        session, support.actor(OPERATOR), "2026-10", client=CLIENT, operator=OPERATOR_NAME
    )
    try:
        delivery.send(
            session,
            support.actor(OPERATOR),
            "2026-10",
            recipients=[],
            client=CLIENT,
            operator=OPERATOR_NAME,
        )
    except delivery.monthly.ReportError as exc:
        assert "MYNUMBER_REPORT_RECIPIENTS" in str(exc)
    else:
        raise AssertionError("sent without recipients")
