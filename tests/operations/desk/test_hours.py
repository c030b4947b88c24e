"""The desk's hours: Mon–Fri 10:00–17:00 JST, except weekends, national holidays and 12/29–1/3.

Dates used (2026): Fri 11/20; Mon 11/23 勤労感謝の日; Sat 11/28; Mon 12/28 the last business
day of the year; 12/29–1/3 the year-end break; Mon 2027-01-04 the first business day.
"""

import datetime as dt

from app.core.jptime import JST
from app.operations import desk


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=JST)


def test_open_only_inside_hours_on_business_days():
    assert desk.is_open(jst(2026, 11, 27, 10, 0))  # Friday, opening minute
    assert desk.is_open(jst(2026, 11, 27, 16, 59))
    assert not desk.is_open(jst(2026, 11, 27, 9, 59))
    assert not desk.is_open(jst(2026, 11, 27, 17, 0))  # closing time excluded
    assert not desk.is_open(jst(2026, 11, 28, 12, 0))  # Saturday
    assert not desk.is_open(jst(2026, 11, 23, 12, 0))  # 勤労感謝の日 (a Monday)
    assert not desk.is_open(jst(2026, 12, 30, 12, 0))  # a Wednesday in the year-end break
    assert not desk.is_open(jst(2027, 1, 2, 12, 0))


def test_moments_in_utc_or_naive_utc_are_read_as_jst():
    friday_10_jst = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)
    assert desk.is_open(friday_10_jst)
    assert desk.is_open(friday_10_jst.replace(tzinfo=None))  # SQLite hands back naive UTC
    assert not desk.is_open(dt.datetime(2026, 11, 27, 0, 59, tzinfo=dt.UTC))


def test_next_opening():
    assert desk.next_opening(jst(2026, 11, 27, 8, 30)) == jst(2026, 11, 27, 10, 0)
    assert desk.next_opening(jst(2026, 11, 27, 12, 0)) == jst(2026, 11, 27, 12, 0)  # open now
    assert desk.next_opening(jst(2026, 11, 27, 17, 0)) == jst(2026, 11, 30, 10, 0)  # weekend
    assert desk.next_opening(jst(2026, 11, 21, 11, 0)) == jst(2026, 11, 24, 10, 0)  # + holiday
    assert desk.next_opening(jst(2026, 12, 28, 17, 30)) == jst(2027, 1, 4, 10, 0)  # year end


def test_business_hours_over_a_weekend_and_a_national_holiday():
    # Friday 16:00 → Tuesday 11:00 with Monday 11/23 a holiday: 1 h + 1 h.
    elapsed = desk.business_elapsed(jst(2026, 11, 20, 16, 0), jst(2026, 11, 24, 11, 0))
    assert elapsed == dt.timedelta(hours=2)
    # Received on Saturday, answered Monday 10:30: only the half hour counts.
    elapsed = desk.business_elapsed(jst(2026, 11, 28, 9, 0), jst(2026, 11, 30, 10, 30))
    assert elapsed == dt.timedelta(minutes=30)


def test_business_hours_over_the_year_end_break():
    elapsed = desk.business_elapsed(jst(2026, 12, 28, 16, 0), jst(2027, 1, 4, 10, 30))
    assert elapsed == dt.timedelta(hours=1, minutes=30)
    # A whole business week is five desk days of seven hours.
    week = desk.business_elapsed(jst(2026, 11, 30, 0, 0), jst(2026, 12, 7, 0, 0))
    assert week == 5 * desk.BUSINESS_DAY
    assert desk.business_elapsed(jst(2026, 12, 2), jst(2026, 12, 1)) == dt.timedelta(0)


def test_displayed_state_says_when_the_desk_reopens():
    closed = desk.state(jst(2026, 12, 28, 18, 0))
    assert not closed.open_now
    assert closed.reopens_text == "1月4日（月）10:00"
    assert "10:00〜17:00" in closed.hours and "12月29日〜1月3日" in closed.hours
    assert desk.state(jst(2026, 11, 27, 11, 0)).open_now
