"""Dunning (spec 5.2-5): reminders to those who have not submitted by the deadline.

The scheduled job runs every day and acts only on business days (行政機関の休日 excluded). A
request is due for a reminder when it was sent, is still not submitted, its deadline has
passed, it has had fewer than ``DUNNING_MAX_REMINDERS`` reminders, and the last one is at
least ``DUNNING_INTERVAL_BUSINESS_DAYS`` business days old **and the date it promised has
passed**: a reminder that says 「12月16日までに」 is never followed by another on the 16th. Each due request gets exactly one
reminder per run: the ``Reminder`` row is unique per (request, run date), so running the job
twice on a day, or retrying it, reminds nobody twice.

The reminder goes by the request's channel: an e-mail (a job), or a reminder letter that waits
for the next print batch. It asks for a new date (``due_on``: the next run's date) and keeps
the link usable past it. Sending it records the history and, for 外部委員等, the billable
督促の連絡 (``app.collection.mailings.on_sent``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import trail
from app.collection import mailings, readiness
from app.core import jptime
from app.core.actor import Actor
from app.models import (
    Campaign,
    Channel,
    CollectionRequest,
    DeliveryKind,
    Reminder,
    RequestStatus,
)

JOB_ACTOR = Actor.system("job:dunning")


def add_business_days(day: dt.date, count: int) -> dt.date:
    """The business day ``count`` business days after ``day``."""
    while count > 0:
        day += dt.timedelta(days=1)
        if jptime.is_business_day(day):
            count -= 1
    return day


def business_days_between(start: dt.date, end: dt.date) -> int:
    """Business days after ``start`` up to and including ``end``."""
    count, day = 0, start
    while day < end:
        day += dt.timedelta(days=1)
        if jptime.is_business_day(day):
            count += 1
    return count


def promised_date(run_date: dt.date, interval: int) -> dt.date:
    """The date a reminder sent on ``run_date`` asks for: ``interval`` business days on.
    The next run that may remind again is the first business day after it (``due``)."""
    return add_business_days(run_date, interval)


@dataclass
class RunResult:
    run_date: dt.date
    business_day: bool
    reminded: int = 0
    emails: list[int] = field(default_factory=list)
    letters: int = 0
    refused: str | None = None  # not ready (app.collection.readiness): nobody was reminded

    def __str__(self) -> str:
        if not self.business_day:
            return f"{self.run_date:%Y-%m-%d} は営業日ではないため督促しません"
        if self.refused:
            return f"{self.run_date:%Y-%m-%d}: 督促しませんでした。{self.refused}"
        return (
            f"{self.run_date:%Y-%m-%d}: 督促 {self.reminded} 件"
            f"（メール {len(self.emails)} 件、郵送 {self.letters} 件は次の印刷バッチ）"
        )


def due(session: Session, today: dt.date) -> list[tuple[CollectionRequest, int]]:
    """Requests to remind today, each with the number its reminder gets."""
    config = current_app.config
    interval = int(config.get("DUNNING_INTERVAL_BUSINESS_DAYS", 5))
    maximum = int(config.get("DUNNING_MAX_REMINDERS", 3))
    candidates = session.execute(
        select(CollectionRequest)
        .join(Campaign, Campaign.id == CollectionRequest.campaign_id)
        .where(
            Campaign.status == "open",
            CollectionRequest.status == RequestStatus.ISSUED,
            CollectionRequest.sent_at.is_not(None),
            CollectionRequest.deadline < today,
            CollectionRequest.channel.in_(Channel.ALL),
        )
        .order_by(CollectionRequest.deadline, CollectionRequest.request_code)
    ).scalars()
    out = []
    for req in candidates:
        count, last, promised = session.execute(
            select(func.count(), func.max(Reminder.run_date), func.max(Reminder.due_on)).where(
                Reminder.request_id == req.id
            )
        ).one()
        if count >= maximum:
            continue
        if last is None:
            out.append((req, count + 1))
        # The last reminder asked for ``due_on`` (「12月16日までに」): the next one comes
        # only once that day is over, never on it, however short the interval is set.
        elif business_days_between(last, today) >= interval and today > promised:
            out.append((req, count + 1))
    return out


def run(session: Session, today: dt.date | None = None, actor: Actor = JOB_ACTOR) -> RunResult:
    """One dunning run for ``today`` (JST). Commits; the caller enqueues ``result.emails``."""
    today = today or jptime.today_jst()
    result = RunResult(today, jptime.is_business_day(today))
    if not result.business_day:
        return result
    todo = due(session, today)
    if todo:
        # Reminders carry the link too: none while it would not reach the form (audited);
        # the next run, or `mynumber job dunning` once fixed, reminds them.
        result.refused = readiness.refusal(
            session, actor, current_app.config, "dunning.run", "dunning", []
        )
        if result.refused:
            return result
    interval = int(current_app.config.get("DUNNING_INTERVAL_BUSINESS_DAYS", 5))
    due_on = promised_date(today, interval)
    keep_until = dt.datetime.combine(
        due_on + dt.timedelta(days=14), dt.time(23, 59), tzinfo=jptime.JST
    )
    for req, seq in todo:
        try:
            with session.begin_nested():
                reminder = Reminder(
                    request_id=req.id,
                    seq=seq,
                    run_date=today,
                    due_on=due_on,
                    channel=req.channel,
                    created_by=actor.name,
                )
                session.add(reminder)
                session.flush()
        except IntegrityError:  # this run (or a parallel one) already reminded it
            continue
        delivery = mailings.new_delivery(session, req, DeliveryKind.REMINDER)
        reminder.delivery_id = delivery.id
        if jptime.aware(req.expires_at) < keep_until:
            req.expires_at = keep_until
        result.reminded += 1
        if delivery.channel == Channel.EMAIL:
            result.emails.append(delivery.id)
        else:
            result.letters += 1
    trail.record(
        session,
        actor,
        "dunning.run",
        details={
            "run_date": today.isoformat(),
            "reminded": result.reminded,
            "emails": len(result.emails),
            "letters": result.letters,
        },
    )
    session.commit()
    return result
