"""The rules each value obeys, shared by the CSV import and the portal's record forms.

Every ``clean_*`` function returns the stored form or raises ``FieldError`` with a Japanese
reason. A reason never repeats the value: a cell may hold a My Number typed in the wrong
column, and the reason ends up on a screen, in a terminal and in an audit event.

Names, kana and addresses keep their exact characters (異体字 such as 髙 or 𠮷, variation
selectors included); identifiers (職員番号, 委員番号, 扶養者コード, dates, the number) are
normalised with NFKC because people type them with full-width digits.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import unicodedata
from functools import lru_cache

from app.core import jptime, mynumber

NAME_MAX = 100
KANA_MAX = 100
ADDRESS_MAX = 200
RELATION_MAX = 20
CODE_MAX = 20

KUBUN_SELF = "本人"
KUBUN_DEPENDENT = "扶養親族"
# Older files (and the first CSV layouts) wrote 扶養家族; both read as a dependent.
KUBUN_DEPENDENT_ALIASES = frozenset({KUBUN_DEPENDENT, "扶養家族"})

_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.\-]{0,19}")
_DEPENDENT_SUFFIX = re.compile(r"-([0-9]{2})")
# Control characters, the bidirectional overrides and marks that can disguise text, and the
# zero-width characters that can hide a number from the number check (1\u200b2\u200b3…).
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff65-\uff9f\u3000 ・ー－\-]+")
_POSTAL = re.compile(r"([0-9]{3})-?([0-9]{4})")
_ASCII_DIGITS = re.compile(r"[0-9]{12}")
# sum(w * int(d)) over ASCII bytes is sum(w * byte) - 48 * sum(w): one C-level map per number.
_WEIGHT_OFFSET = 48 * sum(mynumber.WEIGHTS)


class FieldError(ValueError):
    """A value broke a rule; ``str()`` is the Japanese reason, never the value itself."""


def _text(raw: str | None) -> str:
    return "" if raw is None else str(raw)


def has_hidden_characters(text: str | None) -> bool:
    """True when ``text`` holds a control, bidirectional or zero-width character: nothing a
    person means to type in a name or an address, and each can disguise what is shown."""
    return bool(text) and _CONTROL.search(text) is not None


def _free_text(raw: str | None, limit: int, required: bool) -> str | None:
    """Names and addresses: kept exactly, but never empty, over-long, or hiding a number."""
    text = _text(raw)
    if not text.strip():
        if required:
            raise FieldError("入力されていません")
        return None
    if len(text) > limit:
        raise FieldError(f"{limit}文字以内で入力してください")
    if _CONTROL.search(text):
        raise FieldError("制御文字が含まれています")
    if mynumber.contains_number(text):
        raise FieldError(mynumber.NUMBER_REASON)
    return text


def clean_name(raw: str | None) -> str:
    """氏名: required, exact characters kept."""
    return _free_text(raw, NAME_MAX, required=True)


def clean_kana(raw: str | None, required: bool = False) -> str | None:
    """氏名カナ: katakana or hiragana (full or half width), spaces, ー and ・."""
    text = _free_text(raw, KANA_MAX, required=required)
    if text is not None and not _KANA.fullmatch(text):
        raise FieldError("カナ以外の文字が含まれています")
    return text


def clean_address(raw: str | None) -> str | None:
    """住所: optional, exact characters kept (stored encrypted)."""
    return _free_text(raw, ADDRESS_MAX, required=False)


def clean_relation(raw: str | None) -> str | None:
    """続柄: optional short text (子, 配偶者 …)."""
    return _free_text(raw, RELATION_MAX, required=False)


def _nfkc(raw: str | None) -> str:
    """NFKC, skipped for ASCII text (which NFKC leaves as it is): most identifiers."""
    text = _text(raw)
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


_SPACES = re.compile(r"\s+")
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(0x3041, 0x3097)}


def name_key(text: str | None) -> str:
    """How names compare when searched or matched (照合): NFKC, no spaces of any width.
    ``見本　太郎`` = ``見本 太郎`` = ``見本太郎``; 異体字 stay distinct (髙 is not 高)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", _text(text)))


def kana_key(text: str | None) -> str:
    """How kana compare when searched: ``name_key`` (half-width kana become full-width) and
    hiragana as katakana, so ｹﾝｼｮｳ, けんしょう and ケンショウ are one reading."""
    return name_key(text).translate(_HIRAGANA_TO_KATAKANA)


def code_key(text: str | None) -> str:
    """How 職員番号・委員番号 compare when searched in part: NFKC, no spaces, upper case."""
    return name_key(text).upper()


def clean_code(raw: str | None) -> str:
    """職員番号 / 委員番号: ASCII letters, digits, ``-_.`` after NFKC; never 12 digits."""
    text = _nfkc(raw).strip()
    if not text:
        raise FieldError("入力されていません")
    if len(text) > CODE_MAX:
        raise FieldError(f"{CODE_MAX}文字以内で入力してください")
    if not _CODE.fullmatch(text):
        raise FieldError("英数字と - _ . のみ使えます（先頭は英数字）")
    if mynumber.contains_number(text):  # 1234-5678-9018 passes the shape above
        raise FieldError(mynumber.NUMBER_REASON)
    if _ASCII_DIGITS.search(text):
        raise FieldError("12桁の数字は使えません（個人番号の列と入れ違っていませんか）")
    return text


def clean_kubun(raw: str | None) -> bool:
    """本人区分: True for 本人, False for 扶養親族 (or the older 扶養家族)."""
    text = unicodedata.normalize("NFKC", _text(raw)).strip()
    if text == KUBUN_SELF:
        return True
    if text in KUBUN_DEPENDENT_ALIASES:
        return False
    if not text:
        raise FieldError("入力されていません")
    raise FieldError(f"「{KUBUN_SELF}」または「{KUBUN_DEPENDENT}」を入力してください")


def clean_dependent_code(raw: str | None, code: str | None) -> int:
    """扶養者コード ``{職員番号}-NN``: returns NN (00 = the employee, 01… = dependents)."""
    text = _nfkc(raw).strip()
    if not text:
        raise FieldError("入力されていません")
    head, sep, tail = text.rpartition("-")
    if not sep or not _DEPENDENT_SUFFIX.fullmatch(sep + tail):
        raise FieldError("「職員番号-連番2桁」の形式で入力してください（例: 職員番号-00）")
    if code is not None and head != code:
        raise FieldError(f"職員番号と一致しません（{code}-NN の形式です）")
    return int(tail)


@lru_cache(maxsize=65536)
def _parse_date_cached(text: str) -> dt.date:
    return jptime.parse_date(text)


# The reasons jptime gives, without the value it appends after them.
_DATE_REASONS = (
    "存在しない日付です",
    "その元号に存在しない日付です",
    "和暦の年が不正です",
)
DATE_FORMAT_REASON = "日付の形式が不正です（例: 1985/01/02、1985-01-02、昭和60年1月2日、S60.1.2）"


def clean_date(
    raw: str | None,
    required: bool = True,
    future_ok: bool = False,
    today: dt.date | None = None,
) -> dt.date | None:
    """A date as people write it (西暦 or 和暦); impossible and (by default) future dates refused.

    ``today`` (JST) may be passed by callers checking many rows."""
    text = _text(raw).strip()
    if not text:
        if required:
            raise FieldError("入力されていません")
        return None
    try:
        value = _parse_date_cached(text)
    except jptime.InvalidDate as exc:
        message = str(exc)
        for reason in _DATE_REASONS:
            if message.startswith(reason):
                raise FieldError(reason) from None
        raise FieldError(DATE_FORMAT_REASON) from None
    if not future_ok and value > (today or jptime.today_jst()):
        raise FieldError("未来の日付です")
    if value.year < 1868:
        raise FieldError("1868年より前の日付は扱えません")
    return value


def clean_postal_code(raw: str | None) -> str | None:
    """郵便番号: optional, stored as ``123-4567``."""
    text = unicodedata.normalize("NFKC", _text(raw)).strip()
    if not text:
        return None
    match = _POSTAL.fullmatch(text)
    if not match:
        raise FieldError("「123-4567」の形式で入力してください")
    return f"{match.group(1)}-{match.group(2)}"


def clean_number(raw: str | None) -> str:
    """個人番号: 12 ASCII digits with a correct check digit (reasons from app.core.mynumber)."""
    text = _text(raw)
    if len(text) == 12 and text.isascii() and text.isdigit():
        # The common case, without NFKC and the separator pass (same rule as app.core.mynumber).
        remainder = (
            sum(map(operator.mul, mynumber.WEIGHTS, text.encode("ascii"))) - _WEIGHT_OFFSET
        ) % 11
        if (0 if remainder <= 1 else 11 - remainder) != int(text[11]):
            raise FieldError(mynumber.WRONG_DIGITS)
        return text
    try:
        return mynumber.normalize(text)
    except mynumber.InvalidMyNumber as exc:
        raise FieldError(str(exc)) from None


# -- mail headers ---------------------------------------------------------------------------
# Line breaks of every kind (CR, LF, NEL, U+2028/2029), NUL and the other C0/C1 controls, and
# the bidi controls that make an address read differently from what it is.
_HEADER_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def header_reason(value: str | None) -> str | None:
    """Why ``value`` cannot go into a mail header (Japanese, without the field), or None."""
    for char in value or "":
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _HEADER_BIDI:
            kind = "改行" if char in "\r\n\x85\u2028\u2029" else "制御文字"
            return f"{kind}は使えません（1行で入力してください）"
    return None


def header_problem(label: str, value: str | None) -> str | None:
    """``header_reason`` naming the field: every form and import that takes an address, a
    display name or a subject calls it, the settings check every address at start-up, and
    ``app.platform.mail.build`` calls it again for every header."""
    reason = header_reason(value)
    return f"{label}: {reason}" if reason else None
