"""Billing: a synthetic month matches a hand-computed table; due dates follow the calendar."""

import datetime as dt

import pytest

from app.core.actor import Actor
from app.models import BillingCategory as C
from app.models import UnitPrice
from app.operations import billing

JST_NOON = dt.timezone(dt.timedelta(hours=9))


def _at(day: int, month: int = 10, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=JST_NOON)


def _prices(session, **prices):
    for category, (price, since) in prices.items():
        session.add(
            UnitPrice(category=category, price_yen=price, effective_from=since, created_by="admin")
        )
    session.flush()


def test_a_synthetic_month_matches_the_hand_computed_bill(session):
    _prices(
        session,
        **{
            C.EMPLOYEE_KIT: (800, dt.date(2026, 4, 1)),
            C.EMPLOYEE_SMARTPHONE: (1200, dt.date(2026, 4, 1)),
            C.EXTERNAL_KIT: (700, dt.date(2026, 4, 1)),
            C.EXTERNAL_REMINDER: (300, dt.date(2026, 4, 1)),
            C.EXTERNAL_SMARTPHONE: (900, dt.date(2026, 4, 1)),
            C.EXTERNAL_POSTAL: (1500, dt.date(2026, 4, 1)),
        },
    )
    # A price change in the middle of the month: reminders from 10/16 cost 350.
    _prices(session, **{C.EXTERNAL_REMINDER: (350, dt.date(2026, 10, 16))})
    for i in range(3):
        billing.record_event(session, C.EMPLOYEE_KIT, f"kit:h{i}", _at(5))
    for i in range(2):
        billing.record_event(session, C.EMPLOYEE_SMARTPHONE, f"web:h{i}", _at(20))
    for i in range(4):
        billing.record_event(session, C.EXTERNAL_REMINDER, f"rem:x{i}", _at(10 + i * 3))
    billing.record_event(session, C.EXTERNAL_POSTAL, "paper:x9", _at(31))
    # Counted once: the same events again change nothing.
    assert billing.record_event(session, C.EMPLOYEE_KIT, "kit:h0", _at(6)) is False
    # Another month's event stays out; a JST just-after-midnight event lands in November.
    billing.record_event(session, C.EXTERNAL_KIT, "kit:x1", _at(1, month=11, hour=0))
    session.commit()

    lines = billing.monthly_lines(session, "2026-10")
    by = {(line.category, line.unit_price): line for line in lines}
    assert (by[C.EMPLOYEE_KIT, 800].count, by[C.EMPLOYEE_KIT, 800].amount) == (3, 2400)
    assert (by[C.EMPLOYEE_SMARTPHONE, 1200].count, by[C.EMPLOYEE_SMARTPHONE, 1200].amount) == (
        2,
        2400,
    )
    # Reminders on 10/10 and 10/13 at 300, 10/16 and 10/19 at 350: a line per price version,
    # so 件数 × 単価 = 金額 on each.
    reminders = [line for line in lines if line.category == C.EXTERNAL_REMINDER]
    assert [(r.count, r.unit_price, r.amount, r.price_from) for r in reminders] == [
        (2, 300, 600, "2026-04-01"),
        (2, 350, 700, "2026-10-16"),
    ]
    assert all(line.count * line.unit_price == line.amount for line in lines if line.count)
    assert (by[C.EXTERNAL_POSTAL, 1500].count, by[C.EXTERNAL_POSTAL, 1500].amount) == (1, 1500)
    assert [line.count for line in lines if line.category == C.EXTERNAL_KIT] == [0]
    november = billing.monthly_lines(session, "2026-11")
    assert [line.count for line in november if line.category == C.EXTERNAL_KIT] == [1]


def test_a_month_without_prices_shows_counts_but_no_amount(session):
    billing.record_event(session, C.EXTERNAL_KIT, "kit:a", _at(3))
    line = {x.category: x for x in billing.monthly_lines(session, "2026-10")}[C.EXTERNAL_KIT]
    assert line.count == 1 and line.amount is None


def test_postage_at_cost_and_from_the_fee_table(session):
    from app.models import PostageRate

    for method, price in (("定形郵便 50g以内", 110), ("簡易書留", 460)):
        session.add(
            PostageRate(
                carrier="日本郵便",
                method=method,
                price_yen=price,
                effective_from=dt.date(2024, 10, 1),
                created_by="op",
            )
        )
    session.flush()
    op = Actor.system("op")
    today = dt.date(2026, 10, 31)
    billing.record_postage(
        session,
        direction="send",
        carrier="日本郵便",
        method="定形郵便 50g以内",
        posted_on=dt.date(2026, 10, 2),
        actor=op,
        today=today,
    )
    billing.record_postage(
        session,
        direction="return",
        carrier="日本郵便",
        method="簡易書留",
        posted_on=dt.date(2026, 10, 20),
        cost_yen=460,
        actor=op,
        tracking_number="1234-5678-9012",
        today=today,
    )
    totals = billing.postage_totals(session, "2026-10")
    assert totals == {"send": {"count": 1, "yen": 110}, "return": {"count": 1, "yen": 460}}
    with pytest.raises(billing.BillingError) as info:
        billing.record_postage(
            session,
            direction="send",
            carrier="ヤマト運輸",
            method="宅急便",
            posted_on=dt.date(2026, 10, 2),
            actor=op,
            today=today,
        )
    assert "料金表" in str(info.value)


@pytest.mark.parametrize(
    ("year", "month", "due"),
    [
        (2026, 10, dt.date(2026, 11, 10)),  # a Tuesday
        (2026, 4, dt.date(2026, 5, 8)),  # 5/10 is a Sunday -> Friday 5/8
        (2025, 12, dt.date(2026, 1, 9)),  # 1/10 is a Saturday -> Friday 1/9
        (2026, 9, dt.date(2026, 10, 9)),  # 10/10 is a Saturday -> Friday 10/9
        (2024, 10, dt.date(2024, 11, 8)),  # 11/10 is a Sunday -> Friday 11/8
        (2026, 3, dt.date(2026, 3, 31)),  # March: the 31st itself (a Tuesday)
        (2024, 3, dt.date(2024, 3, 29)),  # 2024-03-31 is a Sunday -> Friday 3/29
        (2020, 1, dt.date(2020, 2, 10)),  # a Monday
        (2025, 1, dt.date(2025, 2, 10)),  # a Monday; 2/11 is the holiday
    ],
)
def test_report_due_dates(year, month, due):
    assert billing.usage_report_due(year, month) == due


def test_a_holiday_on_the_tenth_moves_it_back():
    # 2025-11-10 is a Monday; make sure a national holiday on a 10th is honoured:
    # 2031-02-10? Use jpholiday directly to find a 10th that is a weekday holiday.
    import jpholiday

    tenth = next(
        dt.date(y, m, 10)
        for y in range(2024, 2060)
        for m in range(1, 13)
        if dt.date(y, m, 10).weekday() < 5 and jpholiday.is_holiday(dt.date(y, m, 10))
    )
    month = tenth.month - 1 or 12
    year = tenth.year if tenth.month > 1 else tenth.year - 1
    due = billing.usage_report_due(year, month)
    assert due < tenth and due.weekday() < 5 and not jpholiday.is_holiday(due)
