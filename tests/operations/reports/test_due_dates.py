"""The report's due date (spec 6-5, 9.1) and which months the daily run delivers when."""

import datetime as dt

import pytest

from app.operations.reports import delivery, monthly


@pytest.mark.parametrize(
    ("month", "due"),
    [
        ("2026-04", dt.date(2026, 5, 8)),  # 2026-05-10 is a Sunday -> Friday 5/8
        ("2027-12", dt.date(2028, 1, 7)),  # 2028-01-10 is 成人の日 (a Monday) -> Friday 1/7
        ("2033-09", dt.date(2033, 10, 7)),  # 2033-10-10 is スポーツの日 (a Monday) -> Friday
        ("2026-10", dt.date(2026, 11, 10)),  # an ordinary Tuesday
        ("2026-03", dt.date(2026, 3, 31)),  # March: the 31st itself, covering through it
        ("2024-03", dt.date(2024, 3, 29)),  # 2024-03-31 is a Sunday -> Friday 3/29
    ],
)
def test_due_date(month, due):
    assert monthly.due_date(month) == due


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "202610", "", "abcd-ef", "2026-1"])
def test_a_bad_month_is_a_japanese_error(bad):
    with pytest.raises(monthly.ReportError) as info:
        monthly.parse_month(bad)
    assert "YYYY-MM" in str(info.value)


@pytest.mark.parametrize(
    ("today", "months"),
    [
        (dt.date(2026, 11, 1), []),  # a Sunday: not yet
        (dt.date(2026, 11, 2), ["2026-10"]),  # the first business day after October
        (dt.date(2026, 11, 20), ["2026-10"]),  # later days retry until delivered
        (dt.date(2027, 1, 3), []),  # 1/1-1/3 are not business days
        (dt.date(2027, 1, 4), ["2026-12"]),
        (dt.date(2026, 3, 30), ["2026-02"]),  # March's own report is not due yet
        (dt.date(2026, 3, 31), ["2026-02", "2026-03"]),  # March: on its due date
        (dt.date(2026, 4, 1), ["2026-03"]),  # (already sent on 3/31: the run skips it)
    ],
)
def test_which_months_the_daily_run_delivers(today, months):
    assert delivery.months_due(today) == months


def test_fiscal_year_runs_april_to_march():
    assert monthly.fiscal_year("2027-02") == 2026
    assert monthly.fiscal_months("2026-06") == ["2026-04", "2026-05", "2026-06"]
    assert len(monthly.fiscal_months("2027-03")) == 12


def _jst(*args):
    from app.core import jptime

    return dt.datetime(*args, tzinfo=jptime.JST)


def _desk_seconds(start, end) -> float:
    from app.operations import desk

    return desk.business_elapsed(start, end).total_seconds()


def test_response_time_counts_business_hours_only():
    # Friday 16:00 → Monday 11:00: one hour on Friday, one on Monday.
    assert _desk_seconds(_jst(2026, 11, 27, 16), _jst(2026, 11, 30, 11)) == 7200
    # Received at night, answered the next morning at 10:30: half an hour.
    assert _desk_seconds(_jst(2026, 11, 25, 22), _jst(2026, 11, 26, 10, 30)) == 1800
    # Over 勤労感謝の日 (Monday 2026-11-23): Friday 17:00 → Tuesday 10:00 is nothing.
    assert _desk_seconds(_jst(2026, 11, 20, 17), _jst(2026, 11, 24, 10)) == 0
    # Over the year-end break: 12/28 16:00 → 1/4 10:30 is 1.5 hours.
    assert _desk_seconds(_jst(2026, 12, 28, 16), _jst(2027, 1, 4, 10, 30)) == 5400
