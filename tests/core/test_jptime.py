"""Dates as people write them, JST, and the administrative business calendar."""

import datetime as dt

import pytest

from app.core import jptime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1985/01/02", dt.date(1985, 1, 2)),
        ("1985-1-2", dt.date(1985, 1, 2)),
        ("19850102", dt.date(1985, 1, 2)),
        ("昭和60年1月2日", dt.date(1985, 1, 2)),
        ("S60.1.2", dt.date(1985, 1, 2)),
        ("平成元年1月8日", dt.date(1989, 1, 8)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
        ("Ｈ３１．４．３０", dt.date(2019, 4, 30)),
        ("1985年1月2日", dt.date(1985, 1, 2)),
    ],
)
def test_parse_date_accepts_western_and_wareki(text, expected):
    assert jptime.parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1985/02/30", "存在しない日付"),
        ("平成元年1月7日", "その元号に存在しない"),  # 1989-01-07 was still 昭和64年
        ("昭和65年1月1日", "その元号に存在しない"),
        ("明日", "形式が不正"),
        ("", "入力されていません"),
    ],
)
def test_parse_date_refuses_with_reason(text, reason):
    with pytest.raises(jptime.InvalidDate) as info:
        jptime.parse_date(text)
    assert reason in str(info.value)


def test_business_calendar():
    assert jptime.is_business_day(dt.date(2026, 11, 27))  # Friday
    assert not jptime.is_business_day(dt.date(2026, 11, 28))  # Saturday
    assert not jptime.is_business_day(dt.date(2026, 11, 23))  # 勤労感謝の日
    assert not jptime.is_business_day(dt.date(2025, 12, 29))  # year-end break, a Monday
    assert not jptime.is_business_day(dt.date(2026, 1, 2))
    assert jptime.previous_business_day(dt.date(2026, 1, 3)) == dt.date(2025, 12, 26)
    assert jptime.next_business_day(dt.date(2025, 12, 27)) == dt.date(2026, 1, 5)


def test_jst_display_of_utc_times():
    utc = dt.datetime(2026, 3, 31, 15, 30, tzinfo=dt.UTC)
    assert jptime.format_jst(utc) == "2026/04/01 00:30"
    assert jptime.format_jst(utc.replace(tzinfo=None)) == "2026/04/01 00:30"  # SQLite: naive UTC


def test_a_time_in_words_never_reads_as_a_number():
    """2026/12/07 20:10 is the twelve digits 202612072010, a valid My Number: a mail carrying
    the numeric form at such a minute is refused by the mail guard."""
    from app.core import mynumber

    at = dt.datetime(2026, 12, 7, 11, 10, tzinfo=dt.UTC)  # 20:10 JST
    assert mynumber.contains_number(jptime.format_jst(at))
    assert jptime.format_jst_words(at) == "2026年12月07日 20時10分"
    assert not mynumber.contains_number(jptime.format_jst_words(at))


@pytest.mark.parametrize(
    ("year", "label"),
    [
        (1900, "明治33年"),
        (1911, "明治44年"),
        (1912, "大正元年"),
        (1926, "昭和元年"),
        (1989, "平成元年"),
        (2019, "令和元年"),
        (2026, "令和8年"),
        (1867, ""),
    ],
)
def test_every_year_since_meiji_has_its_era_label(year, label):
    assert jptime.wareki_year(year) == label
