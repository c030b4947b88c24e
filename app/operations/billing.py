"""Billing: unit prices by effective date, billable events counted once, postage at cost.

The collection work calls ``record_event`` as things happen; the monthly report calls
``monthly_lines`` and ``postage_totals``. Views only validate input through these functions.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core import jptime, mynumber
from app.models import BillableEvent, BillingCategory, PostageEntry, PostageRate, UnitPrice


class BillingError(ValueError):
    """Bad billing input; the message names the field, in Japanese."""


@dataclass(frozen=True)
class BillLine:
    category: str
    label: str
    unit: str
    count: int
    unit_price: int | None
    amount: int | None


def month_of(moment: dt.datetime | dt.date) -> str:
    """``YYYY-MM`` of a time (in JST) or a date."""
    if isinstance(moment, dt.datetime):
        moment = jptime.to_jst(moment).date()
    return f"{moment.year:04d}-{moment.month:02d}"


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


def validate_price(category: str, price_yen: int | None, effective_from: dt.date | None) -> None:
    if category not in BillingCategory.ALL:
        raise BillingError("区分を選択してください")
    if price_yen is None or price_yen < 0:
        raise BillingError("単価（円）は0以上の整数で入力してください")
    if effective_from is None:
        raise BillingError("適用開始日を入力してください")


def price_on(session: Session, category: str, day: dt.date) -> int | None:
    """The unit price in force on ``day`` (the newest version that started by then)."""
    return session.execute(
        select(UnitPrice.price_yen)
        .where(UnitPrice.category == category, UnitPrice.effective_from <= day)
        .order_by(UnitPrice.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()


def monthly_lines(session: Session, month: str) -> list[BillLine]:
    """Every category's count and amount for a month, each event at the price of its day."""
    lines = []
    for category in BillingCategory.ALL:
        who, kind, what, unit = BillingCategory.ROWS[category]
        rows = session.execute(
            select(BillableEvent.occurred_at).where(
                BillableEvent.month == month, BillableEvent.category == category
            )
        ).scalars()
        count = 0
        amount = 0
        unpriced = False
        prices: set[int] = set()
        for occurred in rows:
            count += 1
            price = price_on(session, category, jptime.to_jst(occurred).date())
            if price is None:
                unpriced = True
            else:
                amount += price
                prices.add(price)
        unit_price = prices.pop() if len(prices) == 1 else None
        lines.append(
            BillLine(
                category,
                f"{who} {kind}: {what}",
                unit,
                count,
                unit_price,
                None if unpriced else amount,
            )
        )
    return lines


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


def record_postage(
    session: Session,
    *,
    direction: str,
    carrier: str,
    method: str,
    posted_on: dt.date,
    recorded_by: str,
    cost_yen: int | None = None,
    request_id: uuid.UUID | None = None,
    tracking_number: str | None = None,
    note: str | None = None,
) -> PostageEntry:
    """One send or return at actual cost; the cost defaults to the fee table of that day."""
    if direction not in ("send", "return"):
        raise BillingError("発送・返送の区別が不正です")
    if mynumber.contains_number(note):
        raise BillingError(mynumber.number_refusal("備考"))
    if cost_yen is None:
        cost_yen = rate_on(session, carrier, method, posted_on)
        if cost_yen is None:
            raise BillingError(
                f"{carrier} {method} の料金表（{posted_on:%Y/%m/%d} 時点）がありません"
            )
    if cost_yen < 0:
        raise BillingError("料金（円）は0以上で入力してください")
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
        recorded_by=recorded_by,
    )
    session.add(entry)
    session.flush()
    return entry


def postage_totals(session: Session, month: str) -> dict[str, dict[str, int]]:
    """``{"send": {"count": n, "yen": y}, "return": {...}}`` for a month."""
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
