"""The My Number itself: normalisation, the statutory check digit, masking.

The check digit is defined by 行政手続における特定の個人を識別するための番号の利用等に関する法律
施行令 第8条: weights 6,5,4,3,2,7,6,5,4,3,2 over the first eleven digits, r = sum mod 11,
check = 0 if r <= 1 else 11 - r.
"""

from __future__ import annotations

import re
import unicodedata

WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

# Separators people type between the digit groups (ASCII, full-width and Japanese dashes).
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー－ｰ]")


class InvalidMyNumber(ValueError):
    """Raised with a Japanese reason; the message never contains the digits themselves."""


def normalize(raw: str) -> str:
    """Turn what a person typed into 12 ASCII digits, or raise InvalidMyNumber.

    Full-width digits (NFKC) and the usual separators are accepted because that is what
    people copy from a card or a spreadsheet; anything else is refused with a reason.
    """
    if raw is None:
        raise InvalidMyNumber("個人番号が入力されていません")
    text = unicodedata.normalize("NFKC", str(raw))
    text = _SEPARATORS.sub("", text)
    if not text:
        raise InvalidMyNumber("個人番号が入力されていません")
    if not text.isascii() or not text.isdigit():
        raise InvalidMyNumber("個人番号に数字以外の文字が含まれています")
    if len(text) != 12:
        raise InvalidMyNumber(f"個人番号は12桁です（入力は{len(text)}桁）")
    if check_digit(text[:11]) != int(text[11]):
        raise InvalidMyNumber("個人番号のチェックデジットが正しくありません")
    return text


def check_digit(first_eleven: str) -> int:
    """The statutory check digit for the first eleven digits."""
    if len(first_eleven) != 11 or not first_eleven.isdigit():
        raise InvalidMyNumber("チェックデジットの計算には11桁の数字が必要です")
    total = sum(int(d) * w for d, w in zip(first_eleven, WEIGHTS, strict=True))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid(raw: str) -> bool:
    """True when ``raw`` normalises to a number with a correct check digit."""
    try:
        normalize(raw)
    except InvalidMyNumber:
        return False
    return True


def mask(number: str | None) -> str:
    """The display form ``****-****-9018``: the last four digits, enough to tell people apart."""
    if not number:
        return "未登録"
    return f"****-****-{number[-4:]}"


def format_grouped(number: str) -> str:
    """``1234 5678 9018``: the grouping printed on the card, for the one reveal."""
    return f"{number[0:4]} {number[4:8]} {number[8:12]}"


def make_valid(first_eleven: str) -> str:
    """Complete eleven digits into a valid number (synthetic data, tests, demo)."""
    return first_eleven + str(check_digit(first_eleven))
