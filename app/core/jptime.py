"""Japanese time: JST display, dates as people write them (和暦 included), the business calendar.

The business calendar is that of 行政機関の休日に関する法律: Saturdays, Sundays, national
holidays (jpholiday) and the year-end break 12/29–1/3 are not business days.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo

import jpholiday

JST = ZoneInfo("Asia/Tokyo")

# Era name, its letters, and its first day.
ERAS = (
    ("令和", ("R", "r"), dt.date(2019, 5, 1)),
    ("平成", ("H", "h"), dt.date(1989, 1, 8)),
    ("昭和", ("S", "s"), dt.date(1926, 12, 25)),
    ("大正", ("T", "t"), dt.date(1912, 7, 30)),
    ("明治", ("M", "m"), dt.date(1868, 1, 25)),
)
_ERA_BY_KEY = {name: start for name, _, start in ERAS} | {
    letter: start for _, letters, start in ERAS for letter in letters
}
_ERA_END = {ERAS[i][2]: ERAS[i - 1][2] for i in range(1, len(ERAS))}


def wareki_year(year: int) -> str:
    """The era year of a western year as a year is labelled (``1911`` → ``明治44年``): the era
    in force at the year's end, so a year an era began in is that era's 元年. Before 明治: ""."""
    for name, _letters, start in ERAS:
        if year >= start.year:
            n = year - start.year + 1
            return f"{name}{'元' if n == 1 else n}年"
    return ""


_WESTERN = re.compile(r"^(\d{4})[/\-.年](\d{1,2})[/\-.月](\d{1,2})日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_WAREKI = re.compile(
    r"^(令和|平成|昭和|大正|明治|[RHSTMrhstm])\s*(元|\d{1,2})[/\-.年](\d{1,2})[/\-.月](\d{1,2})日?$"
)


class InvalidDate(ValueError):
    """Raised with a Japanese reason."""


def parse_date(text: str) -> dt.date:
    """``1985/01/02``, ``1985-01-02``, ``19850102``, ``昭和60年1月2日``, ``S60.1.2``, ``令和元年…``."""
    raw = unicodedata.normalize("NFKC", (text or "")).strip().replace(" ", "")
    if not raw:
        raise InvalidDate("日付が入力されていません")
    match = _WESTERN.match(raw) or _COMPACT.match(raw)
    if match:
        year, month, day = (int(g) for g in match.groups())
        return _make(year, month, day)
    match = _WAREKI.match(raw)
    if match:
        era, year_text, month, day = match.groups()
        start = _ERA_BY_KEY[era]
        year_in_era = 1 if year_text == "元" else int(year_text)
        if year_in_era < 1:
            raise InvalidDate(f"和暦の年が不正です: {text}")
        date = _make(start.year + year_in_era - 1, int(month), int(day))
        end = _ERA_END.get(start)
        if date < start or (end is not None and date >= end):
            raise InvalidDate(f"その元号に存在しない日付です: {text}")
        return date
    raise InvalidDate(f"日付の形式が不正です（例: 1985/01/02、昭和60年1月2日）: {text}")


def _make(year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise InvalidDate(f"存在しない日付です: {year}/{month}/{day}") from exc


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time as UTC-aware. Every datetime column now reads back aware UTC on both backends
    (``app.models.types.UtcDateTime``); a naive value from elsewhere (FAB's own columns,
    old code) is taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def to_jst(value: dt.datetime | None) -> dt.datetime | None:
    """Stored UTC (aware, or naive from SQLite) to JST."""
    if value is None:
        return None
    return aware(value).astimezone(JST)


def format_jst(value: dt.datetime | None, with_seconds: bool = False) -> str:
    local = to_jst(value)
    if local is None:
        return ""
    return local.strftime("%Y/%m/%d %H:%M:%S" if with_seconds else "%Y/%m/%d %H:%M")


def format_jst_words(value: dt.datetime | None) -> str:
    """JST as 2026年12月07日 20時12分, for mail bodies: in the numeric form the twelve digits of
    a date and time run together and, about one minute in ten, carry a valid My Number check
    digit, so the mail guard refuses the mail."""
    local = to_jst(value)
    return local.strftime("%Y年%m月%d日 %H時%M分") if local else ""


def today_jst() -> dt.date:
    return dt.datetime.now(JST).date()


def is_business_day(day: dt.date) -> bool:
    """Not a weekend, a national holiday, or 12/29–1/3."""
    if day.weekday() >= 5 or jpholiday.is_holiday(day):
        return False
    if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return False
    return True


def previous_business_day(day: dt.date) -> dt.date:
    """``day`` itself if it is a business day, else the last one before it."""
    while not is_business_day(day):
        day -= dt.timedelta(days=1)
    return day


def next_business_day(day: dt.date) -> dt.date:
    """``day`` itself if it is a business day, else the first one after it."""
    while not is_business_day(day):
        day += dt.timedelta(days=1)
    return day
