"""The My Number itself: normalisation, the statutory check digit, masking, and the one
detector of a number written anywhere in free text (``find_numbers`` and its contract below).

The check digit is defined by 行政手続における特定の個人を識別するための番号の利用等に関する法律
施行令 第8条: weights 6,5,4,3,2,7,6,5,4,3,2 over the first eleven digits, r = sum mod 11,
check = 0 if r <= 1 else 11 - r.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

# Separators people type between the digit groups (ASCII, full-width and Japanese dashes).
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー－ｰ]")


# A wrong check digit, in words a person understands: the digits do not add up, so one of
# them was mistyped. Said after a field label (「個人番号: …」), so it names neither the field
# again nor the check digit.
WRONG_DIGITS = "番号の数字がどこか違っています。お手元の書類と見比べて、12桁を入力し直してください"


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
        raise InvalidMyNumber(WRONG_DIGITS)
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


# -- finding a number in free text ----------------------------------------------------------
# The one detector every free-text field, log line and audit detail goes through.
#
# Contract: after NFKC (character by character, so spans point into the text as given), a
# *digit run* is a sequence of digits in which any two neighbours are separated only by
# characters that are neither letters nor digits: hyphens and dashes of every kind, dots,
# slashes, spaces, line breaks, brackets, full-width forms, mixed and repeated; modifier letters
# count as separators too (the long-vowel mark ー is one, and it is typed as a dash). A letter
# (Latin, kana, kanji) ends a run. A run is a *number* when any 12 consecutive digits of it carry a
# correct check digit: a 13+ digit run counts too, because "1234-5678-9018-7" still shows a
# number to whoever reads it (free text refuses rather than guesses).
#
# Digits are ASCII and full-width digits, every other script's decimal digits, the
# compatibility forms NFKC folds to digits (①, ⑴, ², 𝟏 …) and the kanji numerals 〇一二三四五六七八九.
# A kanji numeral is read both ways, as a digit and as a separator ("1234一5678一9018" uses
# 一 as a dash), and the run is a number if either reading holds one.
#
# A run whose every 12-digit window has a wrong check digit is NOT a number: phone numbers
# (10-11 digits), dates, postal codes and most order numbers pass, and one in about ten random
# 12-digit strings is refused. Such a refusal is the price of never storing a real number.
_KANJI_DIGITS = dict(zip("〇一二三四五六七八九", "0123456789", strict=True))
NUMBER_MASK = "************"
NUMBER_REASON = "個人番号と思われる12桁の数字が含まれています。個人番号は入力しないでください。"
# Each character is read as tokens: "0"-"9" a digit, "a"-"j" a kanji numeral (0-9), " " a
# separator, "x" anything that ends a run. Most characters give one token; a few give more
# (⑫ is "12"), and then spans are mapped back character by character.
_KANJI_TOKENS = str.maketrans("abcdefghij", "0123456789")
_DROP_KANJI = str.maketrans("", "", "abcdefghij ")
_DROP_SEPARATORS = str.maketrans("", "", " ")
_ASCII_TOKENS = {
    c: (chr(c) if chr(c).isdigit() else "x" if chr(c).isalnum() else " ") for c in range(128)
}
_RUN = re.compile(r"[0-9a-j](?: *[0-9a-j])*")


@lru_cache(maxsize=8192)
def _tokens(char: str) -> str:
    """The tokens of one character, after NFKC (see above)."""
    out = []
    for part in unicodedata.normalize("NFKC", char):
        value = unicodedata.decimal(part, None)
        if value is not None:
            out.append(str(value))
        elif part in _KANJI_DIGITS:
            out.append("abcdefghij"[int(_KANJI_DIGITS[part])])
        elif part.isalnum() and unicodedata.category(part) != "Lm":
            out.append("x")
        else:
            out.append(" ")
    return "".join(out) or " "


def _could_hold_twelve_digits(text: str) -> bool:
    """A cheap first look (C-level passes) so that ordinary text skips the character scan."""
    if text.isascii():
        return len(text) >= 12 and sum(text.count(d) for d in "0123456789") >= 12
    # Not the length of ``text``: one character may hold two digits (⑫).
    return sum(map(str.isnumeric, unicodedata.normalize("NFKC", text))) >= 12


def _has_valid_window(digits: str) -> bool:
    for start in range(len(digits) - 11):
        if check_digit(digits[start : start + 11]) == int(digits[start + 11]):
            return True
    return False


def find_numbers(text: str | None) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of ``text`` holding a My Number, in order (see the contract above).

    A span runs from the first to the last digit of the whole run, so masking it leaves no
    digit of the run behind.
    """
    if not text or not _could_hold_twelve_digits(text):
        return []
    if text.isascii():
        tokens = text.translate(_ASCII_TOKENS)
        origin = None
    else:
        parts = list(map(_tokens, text))
        tokens = "".join(parts)
        origin = None
        if len(tokens) != len(text):  # a character gave several tokens: map them back
            origin = [i for i, part in enumerate(parts) for _ in part]
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(tokens):
        token_run = run.group(0)
        read = token_run.translate(_KANJI_TOKENS).translate(_DROP_SEPARATORS)
        if len(read) < 12:
            continue
        plain = token_run.translate(_DROP_KANJI)  # the kanji numerals read as separators
        if _has_valid_window(read) or (len(plain) < len(read) and _has_valid_window(plain)):
            start, end = run.span()
            if origin is not None:
                start, end = origin[start], origin[end - 1] + 1
            if spans and start < spans[-1][1]:  # two runs from one character: one span
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
    return spans


def contains_number(text: str | None) -> bool:
    """True when ``text`` holds a My Number however it is written (see ``find_numbers``)."""
    return bool(find_numbers(text))


def mask_numbers(text: str | None, mask: str = NUMBER_MASK) -> str:
    """``text`` with every number found by ``find_numbers`` replaced by ``mask`` (logs, audit)."""
    if not text:
        return text or ""
    # Again until nothing is found: a span that starts inside a character NFKC splits (㎡ is
    # "m2") takes its letter with it, which can join the digits before it into a new run.
    # Each pass removes at least twelve digits, so this ends.
    while spans := find_numbers(text):
        for start, end in reversed(spans):
            text = text[:start] + mask + text[end:]
    return text


def number_refusal(label: str) -> str:
    """The Japanese refusal for a field holding a number: 「氏名に個人番号と思われる…」."""
    return f"{label}に{NUMBER_REASON}"


class NumberInText(ValueError):
    """A free-text value holds a My Number; ``str()`` is the Japanese refusal naming the field."""


def refuse_numbers(fields: dict[str, str | None]) -> None:
    """Raise ``NumberInText`` for the first ``{label: text}`` holding a number: the check a
    screen's save hook (a Flask-AppBuilder ``pre_add``) makes over its free-text columns."""
    for label, text in fields.items():
        problem = number_problem(text, label)
        if problem:
            raise NumberInText(problem)


def number_problem(text: str | None, label: str) -> str | None:
    """``number_refusal(label)`` when ``text`` holds a number, else None: the one check every
    free-text field (forms, services, CSV cells) makes before the text is stored or sent."""
    return number_refusal(label) if contains_number(text) else None
