"""Billing: unit prices by effective date, billable events counted once, postage at cost.

The collection work calls ``record_event`` as things happen; the monthly report calls
``monthly_lines``, ``postage_totals`` and ``postage_breakdown`` for a billing **period**
(``period``): a calendar month in JST, except that March closes at 17:00 on its due date
(the report is made that day) and what happens after the cut-off opens April's period, on
a line of its own. Prices and the fee table change only through ``add_price`` /
``add_rate``, postage only through ``record_postage``: each validates and is audited.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass

from flask import current_app, has_app_context
from sqlalchemy import and_, func, not_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import trail
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.models import (
    BillableEvent,
    BillingCategory,
    Channel,
    CollectionRequest,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    MonthlyReport,
    PostageEntry,
    PostageRate,
    ReportDelivery,
    UnitPrice,
)

# March's report is made on its due date and covers that day up to the desk's closing time.
CUTOFF = dt.time(17, 0)
# 督促の連絡 (／人), as agreed with the client: once per person and campaign, or per reminder.
REMINDER_UNITS = {"person": "人（キャンペーンごと）", "reminder": "回"}
# An external member guided by e-mail (before the channel rule kept them on the kit): billed as
# what happened, at the 案内 price agreed for external members, on a line of its own.
EMAILED_LABEL = "外部委員等 案内: メールでの案内（収集キット郵送の単価）"


class BillingError(ValueError):
    """Bad billing input; the message names the field, in Japanese."""


@dataclass(frozen=True)
class BillLine:
    """One line of the bill: a category at one price version, so 件数 × 単価 = 金額 checks.
    ``carried`` marks events after the previous period's cut-off (the calendar month before);
    ``reminders`` is the number of 督促 sent behind a per-person reminder line."""

    category: str
    label: str
    unit: str
    count: int
    unit_price: int | None
    amount: int | None
    price_from: str | None = None
    carried: bool = False
    reminders: int | None = None
    emailed: bool = False


def month_of(moment: dt.datetime | dt.date) -> str:
    """``YYYY-MM`` of a time (in JST) or a date."""
    if isinstance(moment, dt.datetime):
        moment = jptime.to_jst(moment).date()
    return f"{moment.year:04d}-{moment.month:02d}"


def _month_start(year: int, month: int) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=jptime.JST)


def _shift(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + by
    return index // 12, index % 12 + 1


def period_end(year: int, month: int) -> dt.datetime:
    """Where a month's period stops (JST): 17:00 on March's due date, else the next month's
    first midnight."""
    if month == 3:
        return dt.datetime.combine(usage_report_due(year, 3), CUTOFF, tzinfo=jptime.JST)
    return _month_start(*_shift(year, month, 1))


def period(year: int, month: int) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(start, calendar start, end) of a month's period, in JST: it starts where the previous
    month's stopped, so nothing falls between two reports; events between ``start`` and the
    calendar start are the previous month's late part, billed on lines of their own."""
    return period_end(*_shift(year, month, -1)), _month_start(year, month), period_end(year, month)


def record_event(
    session: Session,
    category: str,
    subject_key: str,
    occurred_at: dt.datetime | None = None,
    request_id: uuid.UUID | None = None,
    people: int = 1,
) -> bool:
    """Count one billable event; returns False if it was already counted (idempotent)."""
    if category not in BillingCategory.ALL:
        raise BillingError(f"請求区分が不正です: {category}")
    exists = session.execute(
        select(BillableEvent.id).where(
            BillableEvent.category == category, BillableEvent.subject_key == subject_key
        )
    ).first()
    if exists:
        return False
    occurred_at = occurred_at or dt.datetime.now(dt.UTC)
    try:
        with session.begin_nested():
            session.add(
                BillableEvent(
                    category=category,
                    subject_key=subject_key,
                    month=month_of(occurred_at),
                    occurred_at=occurred_at,
                    request_id=request_id,
                    people=people,
                )
            )
    except IntegrityError:  # counted concurrently by another worker
        return False
    return True


# -- reported months ----------------------------------------------------------------------------
def sent_months(session: Session) -> list[str]:
    """Months whose report reached the client: their figures never change silently."""
    return list(
        session.execute(
            select(MonthlyReport.month)
            .join(ReportDelivery, ReportDelivery.report_id == MonthlyReport.id)
            .where(ReportDelivery.status == "sent")
            .distinct()
            .order_by(MonthlyReport.month)
        ).scalars()
    )


def months_reaching(session: Session, day: dt.date) -> list[str]:
    """Sent months whose period ends after ``day`` starts: a price or rate from ``day`` on
    would change what was sent."""
    moment = dt.datetime.combine(day, dt.time(0), tzinfo=jptime.JST)
    return [m for m in sent_months(session) if period_end(int(m[:4]), int(m[5:])) > moment]


# -- unit prices --------------------------------------------------------------------------------
def validate_price(category: str, price_yen: int | None, effective_from: dt.date | None) -> None:
    if category not in BillingCategory.ALL:
        raise BillingError("区分を選択してください")
    if price_yen is None or price_yen < 0:
        raise BillingError("単価（円）は0以上の整数で入力してください")
    if effective_from is None:
        raise BillingError("適用開始日を入力してください")


def _reported_refusal(field: str, months: list[str]) -> str:
    names = "、".join(f"{m[:4]}年{int(m[5:])}月分" for m in months)
    return (
        f"{field}: {names}の報告書は送付済みです。その期間に遡って適用するには訂正理由を"
        "入力してください（送付済みの報告書は変わらず、訂正版を作成して送付します）"
    )


def check_price(session: Session, item: UnitPrice, correction_reason: str | None) -> list[str]:
    """Validate a new price version; returns the sent months it reaches. One dated inside a
    month already reported needs a correction reason: the sent report stays as it is, and the
    month is listed as needing a corrected version (第2版)."""
    validate_price(item.category, item.price_yen, item.effective_from)
    for label, text in (("備考", item.note), ("訂正理由", correction_reason)):
        if mynumber.contains_number(text):
            raise BillingError(mynumber.number_refusal(label))
    reason = (correction_reason or "").strip()
    affected = months_reaching(session, item.effective_from)
    if affected and not reason:
        raise BillingError(_reported_refusal("適用開始日", affected))
    if affected:
        item.note = f"{item.note or ''}（遡及適用・訂正理由: {reason}）"
    return affected


def audit_price(session: Session, actor: Actor, item: UnitPrice, affected: list[str]) -> None:
    trail.record(
        session,
        actor,
        "billing.price_set",
        object_type="unit_price",
        object_ids=[item.id],
        details={
            "category": item.category,
            "price_yen": item.price_yen,
            "effective_from": item.effective_from.isoformat(),
            "reported_months": affected,
        },
    )


def add_price(
    session: Session,
    actor: Actor,
    *,
    category: str,
    price_yen: int | None,
    effective_from: dt.date | None,
    note: str | None = None,
    correction_reason: str | None = None,
) -> UnitPrice:
    """A new price version (never an edit), validated (``check_price``) and audited."""
    item = UnitPrice(
        category=category,
        price_yen=price_yen,
        effective_from=effective_from,
        note=note,
        created_by=actor.name,
    )
    affected = check_price(session, item, correction_reason)
    session.add(item)
    session.flush()
    audit_price(session, actor, item, affected)
    return item


def price_on(session: Session, category: str, day: dt.date) -> int | None:
    """The unit price in force on ``day`` (the newest version that started by then)."""
    version = price_version(session, category, day)
    return version[1] if version else None


def price_version(session: Session, category: str, day: dt.date) -> tuple[dt.date, int] | None:
    """(effective_from, yen) of the version in force on ``day``."""
    row = session.execute(
        select(UnitPrice.effective_from, UnitPrice.price_yen)
        .where(UnitPrice.category == category, UnitPrice.effective_from <= day)
        .order_by(UnitPrice.effective_from.desc(), UnitPrice.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


# -- the bill -----------------------------------------------------------------------------------
def _events(session: Session, category: str, start: dt.datetime, end: dt.datetime) -> list:
    return [
        jptime.to_jst(t)
        for t in session.execute(
            select(BillableEvent.occurred_at).where(
                BillableEvent.category == category,
                BillableEvent.occurred_at >= start,
                BillableEvent.occurred_at < end,
            )
        ).scalars()
    ]


def _external_guidance(
    session: Session, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, bool]]:
    """(when, e-mailed) of each external member's 案内 in the period: e-mailed when the
    request went out by e-mail and no kit was posted for it by the period's end (a bounce
    re-sent by post was a kit)."""

    def sent_by(channel: str, before: dt.datetime | None = None):
        sent = select(Delivery.id).where(
            Delivery.request_id == BillableEvent.request_id,
            Delivery.kind == DeliveryKind.REQUEST,
            Delivery.channel == channel,
            Delivery.sent_at.is_not(None),
        )
        if before is not None:
            sent = sent.where(Delivery.status == DeliveryStatus.SENT, Delivery.sent_at < before)
        return sent.exists()

    rows = session.execute(
        select(
            BillableEvent.occurred_at,
            and_(sent_by(Channel.EMAIL), not_(sent_by(Channel.POST, end))),
        ).where(
            BillableEvent.category == BillingCategory.EXTERNAL_KIT,
            BillableEvent.occurred_at >= start,
            BillableEvent.occurred_at < end,
        )
    ).all()
    return [(jptime.to_jst(at), bool(mailed)) for at, mailed in rows]


def _reminder_units(
    session: Session, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """Per person and campaign: (first reminder, reminders in the period) of each person whose
    first reminder of that campaign falls in the period."""
    rows = session.execute(
        select(
            BillableEvent.occurred_at,
            BillableEvent.subject_key,
            CollectionRequest.campaign_id,
            CollectionRequest.person_id,
        )
        .outerjoin(CollectionRequest, CollectionRequest.id == BillableEvent.request_id)
        .where(
            BillableEvent.category == BillingCategory.EXTERNAL_REMINDER,
            BillableEvent.occurred_at < end,
        )
    ).all()
    first: dict = {}
    within: dict = defaultdict(int)
    for occurred, key, campaign, person in rows:
        who = (campaign, person) if person is not None else key
        occurred = jptime.to_jst(occurred)
        first[who] = min(first.get(who, occurred), occurred)
        if occurred >= start:
            within[who] += 1
    return [(at, within[who]) for who, at in first.items() if at >= start]


def agreed_reminder_unit(reminder_unit: str | None = None) -> str:
    """The 督促 unit agreed with the client (``BILLING_REMINDER_UNIT``, "person" outside an
    app), or the one given, checked: the bill, the dashboard and the plan-vs-actual figures
    all count 督促 the same way."""
    if reminder_unit is None:
        config = current_app.config if has_app_context() else {}
        reminder_unit = config.get("BILLING_REMINDER_UNIT") or "person"
    if reminder_unit not in REMINDER_UNITS:
        raise BillingError(f"督促の請求単位が不正です（person または reminder）: {reminder_unit}")
    return reminder_unit


def reminder_count(
    session: Session, start: dt.datetime, end: dt.datetime, reminder_unit: str | None = None
) -> int:
    """督促 units billed between ``start`` and ``end`` in the agreed unit: people whose first
    reminder of a campaign falls there, or every reminder sent there."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if agreed_reminder_unit(reminder_unit) == "person":
        return len(_reminder_units(session, start, end))
    return len(_events(session, BillingCategory.EXTERNAL_REMINDER, start, end))


def monthly_lines(session: Session, month: str, reminder_unit: str | None = None) -> list[BillLine]:
    """Every category's lines for a month's period: one per price version (and a separate one
    for the previous month's late part), each event at the price of its day; 督促 in the
    agreed unit (``agreed_reminder_unit``)."""
    reminder_unit = agreed_reminder_unit(reminder_unit)
    year, mon = int(month[:4]), int(month[5:])
    start, calendar_start, end = period(year, mon)
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)  # stored times are UTC
    lines = []
    for category in BillingCategory.ALL:
        who, kind, what, unit = BillingCategory.ROWS[category]
        per_person = category == BillingCategory.EXTERNAL_REMINDER and reminder_unit == "person"
        if per_person:
            units = [(at, n, False) for at, n in _reminder_units(session, start, end)]
            unit = REMINDER_UNITS["person"]
        elif category == BillingCategory.EXTERNAL_KIT:
            units = [(at, None, mailed) for at, mailed in _external_guidance(session, start, end)]
        else:
            units = [(at, None, False) for at in _events(session, category, start, end)]
            if category == BillingCategory.EXTERNAL_REMINDER:
                unit = REMINDER_UNITS["reminder"]
        groups: dict = defaultdict(lambda: [0, 0])
        for at, reminders, mailed in units:
            version = price_version(session, category, at.date())
            group = groups[(at < calendar_start, mailed, version)]
            group[0] += 1
            group[1] += reminders or 0
        if not groups:
            lines.append(BillLine(category, f"{who} {kind}: {what}", unit, 0, None, 0))
        for (carried, mailed, version), (count, reminders) in sorted(
            groups.items(), key=lambda g: (not g[0][0], g[0][1], g[0][2] or (dt.date.min, 0))
        ):
            label = EMAILED_LABEL if mailed else f"{who} {kind}: {what}"
            if carried:
                label += f"（前月締切後 {jptime.to_jst(start):%m/%d %H:%M}～24:00 分）"
            lines.append(
                BillLine(
                    category,
                    label,
                    unit,
                    count,
                    version[1] if version else None,
                    count * version[1] if version else None,
                    version[0].isoformat() if version else None,
                    carried,
                    reminders if per_person else None,
                    mailed,
                )
            )
    return lines


# -- the carrier's fee table and the postage ledger ---------------------------------------------
def rate_on(session: Session, carrier: str, method: str, day: dt.date) -> int | None:
    return session.execute(
        select(PostageRate.price_yen)
        .where(
            PostageRate.carrier == carrier,
            PostageRate.method == method,
            PostageRate.effective_from <= day,
        )
        .order_by(PostageRate.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()


def fee_table(session: Session, day: dt.date) -> list[dict]:
    """The fee table in force on ``day``: each carrier and service at its newest version."""
    rows = session.execute(
        select(PostageRate)
        .where(PostageRate.effective_from <= day)
        .order_by(PostageRate.carrier, PostageRate.method, PostageRate.effective_from.desc())
    ).scalars()
    table: dict = {}
    for rate in rows:
        table.setdefault(
            (rate.carrier, rate.method),
            {
                "carrier": rate.carrier,
                "method": rate.method,
                "price_yen": rate.price_yen,
                "effective_from": rate.effective_from.isoformat(),
                "submitted_to_client_on": (
                    rate.submitted_to_client_on.isoformat() if rate.submitted_to_client_on else None
                ),
            },
        )
    return list(table.values())


def add_rate(session: Session, actor: Actor, item: PostageRate) -> PostageRate:
    """A new version of the fee table (never edited in place); validated and audited."""
    item.carrier = (item.carrier or "").strip()
    item.method = (item.method or "").strip()
    if not item.carrier or not item.method:
        raise BillingError("運送事業者・種別: 入力してください")
    if item.price_yen is None or item.price_yen < 0:
        raise BillingError("料金（円）: 0以上の整数で入力してください")
    if item.effective_from is None:
        raise BillingError("適用開始日: 入力してください")
    item.created_by = actor.name
    session.add(item)
    session.flush()
    trail.record(
        session,
        actor,
        "billing.rate_set",
        object_type="postage_rate",
        object_ids=[item.id],
        details={
            "carrier": item.carrier,
            "method": item.method,
            "price_yen": item.price_yen,
            "effective_from": item.effective_from.isoformat(),
        },
    )
    return item


def open_months(session: Session, today: dt.date) -> list[str]:
    """The months the ledger records now: this month, and last month until its report is
    sent (entries made in the first days of a month for the end of the previous one)."""
    this = f"{today.year:04d}-{today.month:02d}"
    last = "{:04d}-{:02d}".format(*_shift(today.year, today.month, -1))
    return ([] if last in sent_months(session) else [last]) + [this]


def validate_postage(
    session: Session,
    *,
    direction: str,
    carrier: str,
    method: str,
    posted_on: dt.date | None,
    cost_yen: int | None,
    today: dt.date,
) -> int:
    """Check a ledger entry (Japanese message naming the field); returns the cost, from the
    fee table when none is given."""
    if direction not in PostageEntry.DIRECTION_LABELS:
        raise BillingError("区分: 発送 か 返送 を選んでください")
    if posted_on is None:
        raise BillingError("日付: 入力してください")
    months = open_months(session, today)
    if posted_on > today or month_of(posted_on) not in months:
        allowed = "、".join(f"{m[:4]}年{int(m[5:])}月" for m in months)
        raise BillingError(
            f"日付: {posted_on:%Y/%m/%d} は記録できる期間（{allowed}、本日 {today:%Y/%m/%d} まで）"
            "の外です"
        )
    rate = rate_on(session, carrier, method, posted_on)
    if rate is None:
        raise BillingError(
            f"運送事業者・種別: {carrier} {method} は料金表（{posted_on:%Y/%m/%d} 時点）に"
            "ありません。先に料金表へ登録してください"
        )
    if cost_yen is None:
        return rate
    if cost_yen < 0:
        raise BillingError("料金（円）: 0以上の整数で入力してください")
    return cost_yen


def record_postage(
    session: Session,
    *,
    direction: str,
    carrier: str,
    method: str,
    posted_on: dt.date,
    actor: Actor,
    cost_yen: int | None = None,
    request_id: uuid.UUID | None = None,
    tracking_number: str | None = None,
    note: str | None = None,
    today: dt.date | None = None,
) -> PostageEntry:
    """One send or return at actual cost (the fee table of that day by default): validated,
    and audited in the caller's transaction."""
    if mynumber.contains_number(note):
        raise BillingError(mynumber.number_refusal("備考"))
    cost_yen = validate_postage(
        session,
        direction=direction,
        carrier=carrier,
        method=method,
        posted_on=posted_on,
        cost_yen=cost_yen,
        today=today or jptime.today_jst(),
    )
    entry = PostageEntry(
        direction=direction,
        carrier=carrier,
        method=method,
        cost_yen=cost_yen,
        posted_on=posted_on,
        month=month_of(posted_on),
        request_id=request_id,
        tracking_number=tracking_number,
        note=note,
        recorded_by=actor.name,
    )
    session.add(entry)
    session.flush()
    audit_postage(session, actor, entry)
    return entry


def audit_postage(session: Session, actor: Actor, entry: PostageEntry) -> None:
    trail.record(
        session,
        actor,
        "billing.postage_record",
        object_type="postage_entry",
        object_ids=[entry.id],
        details={
            "direction": entry.direction,
            "carrier": entry.carrier,
            "method": entry.method,
            "cost_yen": entry.cost_yen,
            "posted_on": entry.posted_on.isoformat(),
        },
    )


def postage_totals(session: Session, month: str) -> dict[str, dict[str, int]]:
    """``{"send": {"count": n, "yen": y}, "return": {...}}`` for a month (by date)."""
    totals = {"send": {"count": 0, "yen": 0}, "return": {"count": 0, "yen": 0}}
    rows = session.execute(
        select(
            PostageEntry.direction, func.count(), func.coalesce(func.sum(PostageEntry.cost_yen), 0)
        )
        .where(PostageEntry.month == month)
        .group_by(PostageEntry.direction)
    )
    for direction, count, yen in rows:
        totals[direction] = {"count": int(count), "yen": int(yen)}
    return totals


def postage_breakdown(session: Session, month: str) -> list[dict]:
    """The month's postage by direction, carrier, service and rate: 件数 × 料金 = 金額."""
    rows = session.execute(
        select(
            PostageEntry.direction,
            PostageEntry.carrier,
            PostageEntry.method,
            PostageEntry.cost_yen,
            func.count(),
        )
        .where(PostageEntry.month == month)
        .group_by(
            PostageEntry.direction, PostageEntry.carrier, PostageEntry.method, PostageEntry.cost_yen
        )
    ).all()
    order = {"send": 0, "return": 1}
    return [
        {
            "direction": direction,
            "direction_label": PostageEntry.DIRECTION_LABELS[direction],
            "carrier": carrier,
            "method": method,
            "unit_yen": int(cost),
            "count": int(count),
            "yen": int(cost) * int(count),
        }
        for direction, carrier, method, cost, count in sorted(
            rows, key=lambda r: (order.get(r[0], 9), r[1], r[2], r[3])
        )
    ]


def usage_report_due(year: int, month: int) -> dt.date:
    """When the 利用実績報告書 for a month is due (spec 6-5, 9.1).

    The 10th of the next month, or the business day before when the 10th is a holiday; for
    March, March 31 itself (covering through the 31st), likewise moved to the business day
    before when it is a holiday.
    """
    if month == 3:
        due = dt.date(year, 3, 31)
    else:
        next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
        due = dt.date(next_year, next_month, 10)
    return jptime.previous_business_day(due)
