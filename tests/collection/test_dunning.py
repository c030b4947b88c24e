"""Dunning on the business calendar: a non-submitter is reminded exactly once per due run, by
the request's channel; the reminder is recorded and, for 外部委員等, billed once. The job runs
inline and on a real Redis with a real worker, and through `mynumber job dunning`."""

import datetime as dt

from sqlalchemy import func, select, update

from app.cli import mynumber_group
from app.collection import campaigns, dunning, kits
from app.core import jptime
from app.jobs import worker
from app.jobs.collection import dunning_daily, send_delivery
from app.models import (
    BillableEvent,
    BillingCategory,
    Campaign,
    CollectionRequest,
    Reminder,
    Stage,
)
from app.platform.queue import enqueue
from tests.collection import flows
from tests.collection.conftest import (
    NUMBER_HANAKO,
    NUMBER_JIRO,
    NUMBER_TARO,
    TARO_BIRTH,
    mail_text,
    token_from,
)


def _post_kits(app, session, campaign, operator, jobs):
    batch, _ = flows.print_batch(app, campaign, operator, jobs)
    kits.mark_posted(
        session,
        operator,
        batch,
        posted_on=jptime.today_jst(),
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_SEND_METHOD"],
    )
    session.commit()


def _run(session, day, jobs):
    result = dunning.run(session, today=day)
    for delivery_id in result.emails:
        enqueue(send_delivery, delivery_id)
    jobs.drain()
    session.expire_all()
    return result


def test_reminded_once_per_due_run(
    app, session, staff, operators, smtp_server, subject, jobs, needs_pdf
):
    app.config["SMTP_URL"] = smtp_server.url
    operator = operators[0]
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operator, jobs)
    _post_kits(app, session, campaign, operator, jobs)
    assert len(smtp_server.messages) == 1
    deadline = campaign.deadline

    # On the deadline itself nobody is late; the business day after it, both are.
    assert _run(session, deadline, jobs).reminded == 0
    day1 = dunning.add_business_days(deadline, 1)
    first = _run(session, day1, jobs)
    assert (first.reminded, len(first.emails), first.letters) == (2, 1, 1)
    assert len(smtp_server.messages) == 2
    reminder_mail = smtp_server.messages[-1]
    assert "再送" in reminder_mail["Subject"] and "見本 太郎 様" in mail_text(reminder_mail)
    due_on = dunning.add_business_days(day1, app.config["DUNNING_INTERVAL_BUSINESS_DAYS"])
    assert campaigns.format_date(due_on) in mail_text(reminder_mail)
    taro = flows.request_of("E1001")
    assert campaigns.stage(taro) == Stage.REMINDED and taro.reminder_count == 1
    # The letter waits for the next print batch: reminded (decided), not yet 督促済.
    takahashi = flows.request_of("E1002")
    assert campaigns.stage(takahashi) == Stage.SENT

    # The same run again (a retry, a second worker): nobody twice.
    again = _run(session, day1, jobs)
    assert again.reminded == 0 and len(smtp_server.messages) == 2
    assert session.execute(select(func.count()).select_from(Reminder)).scalar_one() == 2
    # Too soon for the next one.
    assert _run(session, dunning.add_business_days(day1, 1), jobs).reminded == 0
    # Not a business day: nothing happens at all.
    sunday = day1 + dt.timedelta(days=(6 - day1.weekday()) % 7 or 7)
    idle = dunning.run(session, today=sunday)
    assert not idle.business_day and idle.reminded == 0 and "営業日ではない" in str(idle)

    # The employee submits; the next due run reminds only the one who has not.
    flows.submit_household_on_web(
        subject,
        token_from(mail_text(reminder_mail)),
        str(taro.person_id),
        str(taro.person.dependents[0].id),
        [NUMBER_TARO, NUMBER_HANAKO, NUMBER_JIRO],
        TARO_BIRTH,
    )
    # On the promised day itself nobody is reminded again; the business day after it, yes.
    assert _run(session, due_on, jobs).reminded == 0
    later = _run(session, dunning.add_business_days(due_on, 1), jobs)
    assert later.reminded == 1 and later.letters == 1 and later.emails == []
    assert len(smtp_server.messages) == 2
    _post_kits(app, session, campaign, operator, jobs)
    takahashi = flows.request_of("E1002")
    assert campaigns.stage(takahashi) == Stage.REMINDED and takahashi.reminder_count == 2
    # 役職員: the 別表 has no 督促 row, so nothing is billed for these reminders.
    assert not session.execute(
        select(BillableEvent).where(BillableEvent.category == BillingCategory.EXTERNAL_REMINDER)
    ).first()
    # The cap: no more than DUNNING_MAX_REMINDERS.
    app.config["DUNNING_MAX_REMINDERS"] = 2
    assert _run(session, dunning.add_business_days(due_on, 31), jobs).reminded == 0


def test_a_reminder_is_never_followed_by_another_before_its_promised_date_has_passed(
    app, session, staff, operators, smtp_server, jobs, monkeypatch
):
    """The first reminder promised 「12月16日までに」 and the second arrived on the morning of
    the 16th. With the clock frozen on each day in turn: nothing until the 16th is over."""
    app.config["SMTP_URL"] = smtp_server.url
    app.config["DUNNING_INTERVAL_BUSINESS_DAYS"] = 5
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    deadline = dt.date(2027, 12, 8)  # 水曜日
    session.execute(update(Campaign).values(deadline=deadline))
    session.execute(update(CollectionRequest).values(deadline=deadline))
    session.commit()

    def run_on(day):
        monkeypatch.setattr(jptime, "today_jst", lambda: day)  # the clock the job reads
        return _run(session, None, jobs)

    assert run_on(dt.date(2027, 12, 9)).emails  # the first reminder (e-mail to 見本 太郎)
    first = mail_text(smtp_server.messages[-1])
    assert "2027年12月16日（木）までに" in first
    sent = len(smtp_server.messages)
    for day in (10, 13, 14, 15, 16):  # every business day up to and including the 16th
        assert run_on(dt.date(2027, 12, day)).reminded == 0, day
    assert len(smtp_server.messages) == sent
    second = run_on(dt.date(2027, 12, 17))
    assert second.emails and second.reminded == 1
    assert "2027年12月24日（金）までに" in mail_text(smtp_server.messages[-1])


def test_external_reminders_are_billed_once_each(app, session, staff, operators, jobs, needs_pdf):
    operator = operators[0]
    campaign, _ = flows.campaign_with_targets(app, staff, kind="external")
    flows.dispatch(campaign, operator, jobs)
    _post_kits(app, session, campaign, operator, jobs)
    day1 = dunning.add_business_days(campaign.deadline, 1)
    assert _run(session, day1, jobs).letters == 1
    _post_kits(app, session, campaign, operator, jobs)
    day2 = dunning.add_business_days(day1, app.config["DUNNING_INTERVAL_BUSINESS_DAYS"] + 1)
    assert _run(session, day2, jobs).letters == 1
    _post_kits(app, session, campaign, operator, jobs)
    keys = sorted(
        session.execute(
            select(BillableEvent.subject_key).where(
                BillableEvent.category == BillingCategory.EXTERNAL_REMINDER
            )
        ).scalars()
    )
    req = flows.request_of("X2001")
    assert keys == [f"reminder:{req.id}:1", f"reminder:{req.id}:2"]
    labels = [e.label for e in campaigns.timeline(session, req)]
    assert labels.count("督促") == 2


def test_the_scheduled_job_runs_inline_on_rq_and_from_the_cli(
    app, session, staff, operators, smtp_server, jobs
):
    app.config["SMTP_URL"] = smtp_server.url
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    # Time passes: the deadline is behind us (yesterday, or the last business day before).
    past = jptime.previous_business_day(jptime.today_jst() - dt.timedelta(days=1))
    session.execute(update(Campaign).values(deadline=past))
    session.execute(update(CollectionRequest).values(deadline=past))
    session.commit()
    names = {item.name: item.cron for item in worker.load_schedule()}
    assert names["dunning"] == "0 0 * * *" and names["mail_retry"] == "*/10 * * * *"

    job = enqueue(dunning_daily)
    jobs.drain()
    if jobs.mode == "rq":
        job.refresh()
        assert job.is_finished, job.latest_result()
        outcome = job.return_value()
    else:
        outcome = job
    jobs.drain()  # the e-mails the run queued
    session.expire_all()
    reminders = session.execute(select(func.count()).select_from(Reminder)).scalar_one()
    if jptime.is_business_day(jptime.today_jst()):
        assert reminders == 1 and "督促 1 件" in outcome
        assert len(smtp_server.messages) == 2
    else:
        assert reminders == 0 and "営業日ではない" in outcome
    # Once per run: the CLI the operator would use runs the same job again, to no effect.
    result = app.test_cli_runner().invoke(mynumber_group, args=["job", "dunning"])
    assert result.exit_code == 0 and "ジョブ dunning を実行しました" in result.output
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Reminder)).scalar_one() == reminders
    bad = app.test_cli_runner().invoke(mynumber_group, args=["job", "nosuchjob"])
    assert bad.exit_code != 0 and "dunning" in bad.output
