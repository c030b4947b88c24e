"""The number: normalisation, the statutory check digit, masking."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core import mynumber
from app.core.mynumber import InvalidMyNumber


def test_well_known_example_is_valid():
    assert mynumber.normalize("123456789018") == "123456789018"
    assert mynumber.check_digit("12345678901") == 8


def test_check_digit_by_hand():
    # 1*6+1*5+1*4+1*3+1*2+1*7+1*6+1*5+1*4+1*3+1*2 = 47; 47 mod 11 = 3; 11-3 = 8
    assert mynumber.check_digit("11111111111") == 8
    # all zeros: r = 0 <= 1 -> 0
    assert mynumber.check_digit("00000000000") == 0
    # r = 1 -> 0: 1 in the last position (weight 2)... choose digits summing to 12 -> r = 1
    assert mynumber.check_digit("00000000006") == 0  # 6*2 = 12, 12 mod 11 = 1
    # r = 10 -> 1: 5*2 = 10
    assert mynumber.check_digit("00000000005") == 1


@pytest.mark.parametrize(
    "raw",
    [
        "1234 5678 9018",
        "1234-5678-9018",
        "１２３４５６７８９０１８",
        "１２３４－５６７８－９０１８",
        " 123456789018 ",
        "1234ー5678ー9018",
    ],
)
def test_normalise_accepts_what_people_type(raw):
    assert mynumber.normalize(raw) == "123456789018"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("123456789012", "数字がどこか違って"),
        ("12345678901", "12桁"),
        ("1234567890123", "12桁"),
        ("12345678901a", "数字以外"),
        ("", "入力されていません"),
        ("１２３４５６７８９０１", "12桁"),
        ("١23456789018", "数字以外"),
    ],
)
def test_normalise_refuses_with_a_japanese_reason(raw, reason):
    with pytest.raises(InvalidMyNumber) as info:
        mynumber.normalize(raw)
    assert reason in str(info.value)
    assert "123456789" not in str(info.value)


def test_mask_shows_last_four_only():
    assert mynumber.mask("123456789018") == "****-****-9018"
    assert mynumber.mask(None) == "未登録"


@given(
    st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(0, 10), st.integers(1, 9)
)
def test_single_digit_errors_are_caught_unless_the_remainder_folds(first, position, delta):
    number = mynumber.make_valid(first)
    assert mynumber.is_valid(number)
    changed_digit = (int(number[position]) + delta) % 10
    changed = number[:position] + str(changed_digit) + number[position + 1 :]
    before = sum(int(d) * w for d, w in zip(number[:11], mynumber.WEIGHTS)) % 11
    after = sum(int(d) * w for d, w in zip(changed[:11], mynumber.WEIGHTS)) % 11
    # The statute folds remainders 0 and 1 into check digit 0: only that pair slips through.
    folds = {before, after} == {0, 1}
    assert mynumber.is_valid(changed) == folds


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_a_wrong_check_digit_is_always_caught(first):
    number = mynumber.make_valid(first)
    for digit in "0123456789":
        if digit != number[11]:
            assert not mynumber.is_valid(number[:11] + digit)


@given(st.text(max_size=40))
def test_normalise_never_crashes_and_never_echoes_digits(text):
    import re

    try:
        result = mynumber.normalize(text)
    except InvalidMyNumber as exc:
        assert not re.search(r"[0-9]{3,}", str(exc))
    else:
        assert len(result) == 12 and result.isascii() and result.isdigit()


# -- the detector: find_numbers / contains_number / mask_numbers ------------------------------
_DIGIT_FORMS = [
    "0123456789",
    "０１２３４５６７８９",  # full-width
    "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic digits
    "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",  # mathematical bold (NFKC folds them)
    "〇一二三四五六七八九",  # kanji numerals
]
_SEPARATOR = st.sampled_from(
    [
        "-", "‐", "‑", "‒", "–", "—", "―", "−", "ー", "－", "ｰ", "﹣",
        ".", "．", "。", "・", "/", "／", "\\", "_",
        " ", "  ", "\u3000", "\t", "\n", "(", ")", ",", "、", "*", "#", "~", "〜",
    ]
)  # fmt: skip
# Surrounding text: letters (which end a digit run) at the edges, anything else inside.
_WORD = st.text(alphabet="あいう氏名番号abcXYZ", min_size=1, max_size=6)
_ANY_TEXT = st.text(max_size=30)


def _write(number: str, form: str, separators: list[str]) -> str:
    digits = [form[int(d)] for d in number]
    return "".join(d + s for d, s in zip(digits, [*separators, ""], strict=True))


def _all_digit_chars(text: str) -> str:
    return "".join(c for c in text if unicodedata.decimal(c, None) is not None)


@given(
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.sampled_from(_DIGIT_FORMS),
    st.lists(st.lists(_SEPARATOR, max_size=3).map("".join), min_size=11, max_size=11),
    _WORD,
    _WORD,
)
def test_a_valid_number_is_found_however_it_is_written(first, form, separators, before, after):
    number = mynumber.make_valid(first)
    typed = _write(number, form, separators)
    text = f"{before} {typed} {after}"
    spans = mynumber.find_numbers(text)
    assert spans == [(len(before) + 1, len(before) + 1 + len(typed))]
    assert mynumber.contains_number(text)
    masked = mynumber.mask_numbers(text)
    assert masked == f"{before} {mynumber.NUMBER_MASK} {after}"
    assert not mynumber.contains_number(masked)


@given(
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.sampled_from(_DIGIT_FORMS[:2]),
    st.lists(_SEPARATOR, min_size=11, max_size=11),
    _ANY_TEXT,
    _ANY_TEXT,
)
def test_masking_leaves_no_digit_of_a_number_behind(first, form, separators, before, after):
    number = mynumber.make_valid(first)
    text = before + _write(number, form, separators) + after
    masked = mynumber.mask_numbers(text)
    assert not mynumber.contains_number(masked)
    # Whatever digits the surrounding text brought along, the number's own are gone: what is
    # left has fewer than 12 digits, or is text the mask cut off from the number.
    assert number not in _all_digit_chars(unicodedata.normalize("NFKC", masked))


@given(
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.integers(1, 9),
    st.lists(_SEPARATOR, min_size=11, max_size=11),
)
def test_a_wrong_check_digit_is_not_a_number(first, shift, separators):
    number = mynumber.make_valid(first)
    wrong = number[:11] + str((int(number[11]) + shift) % 10)
    text = "番号 " + _write(wrong, "0123456789", separators) + " です"
    assert mynumber.find_numbers(text) == []
    assert mynumber.mask_numbers(text) == text


@given(
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.text(alphabet="0123456789", min_size=1, max_size=4),
    st.text(alphabet="0123456789", max_size=4),
    _SEPARATOR,
)
def test_a_number_inside_a_longer_digit_run_is_found(first, head, tail, sep):
    number = mynumber.make_valid(first)
    text = f"注文 {head}{sep}{number[:6]}{sep}{number[6:]}{tail} 番"
    assert mynumber.contains_number(text)
    assert not mynumber.contains_number(mynumber.mask_numbers(text))


# Characters NFKC turns into several (㎡ is "m2", ㏩ is "10日", ⑫ is "12") next to digits.
_TRICKY = st.lists(
    st.sampled_from([*"0123456789 -.aー一", "㎡", "㎥", "㋀", "⑫", "⒈", "½", "𝟏", "㏩", "\u0301"]),
    min_size=12,
    max_size=40,
).map("".join)


@given(st.one_of(st.text(max_size=60), _TRICKY))
def test_the_detector_never_crashes_and_masking_is_idempotent(text):
    masked = mynumber.mask_numbers(text)
    assert not mynumber.contains_number(masked)
    assert mynumber.mask_numbers(masked) == masked


@pytest.mark.parametrize(
    "text",
    [
        "03-1234-5678",  # a phone number: 10 digits
        "090-1234-5678 または 03-1234-5678",  # two phone numbers, a word between them
        "2026/04/01～2026/04/30",  # a date range
        "〒100-0001 東京都千代田区丸の内一丁目1番1号",
        "123456789012",  # 12 digits, wrong check digit
        "1234567890123",  # 13 digits, no 12-digit window with a valid check digit
        "追跡番号 1234-5678-9012",
        "E0001-00",
    ],
)
def test_ordinary_numbers_are_not_numbers(text):
    assert mynumber.find_numbers(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "1234−5678−9018",
        "1234ー5678ー9018",
        "1234.5678.9018",
        "1234/5678/9018",
        "1234  5678  9018",
        "１２３４　５６７８　９０１８",
        "1234一5678一9018",  # 一 typed as a dash
        "一二三四五六七八九〇一八",
        "①②③④⑤⑥⑦⑧⑨⓪①⑧",
        "⑫345678901８",  # eleven characters, twelve digits
        "12\n34\n56\n78\n90\n18",
        "9-1234-5678-9018",  # the number inside a 13-digit run
        "氏名123456789018",  # glued to a word
    ],
)
def test_the_spellings_of_the_review_are_numbers(text):
    assert mynumber.contains_number(text)
    assert "9018" not in mynumber.mask_numbers(text)


def test_digits_joined_only_by_punctuation_are_read_as_one_run():
    # The price of refusing every spelling: two phone numbers with only " / " between them
    # are one 21-digit run, and one of its 12-digit windows happens to pass the check digit.
    # A word between them (または, 、携帯) ends the run.
    assert mynumber.contains_number("090-1234-5678 / 03-1234-5678")
    assert not mynumber.contains_number("090-1234-5678 または 03-1234-5678")


def test_refusal_names_the_field_and_never_the_value():
    assert mynumber.number_problem("連絡 1234.5678.9018", "氏名") == (
        "氏名に個人番号と思われる12桁の数字が含まれています。個人番号は入力しないでください。"
    )
    assert mynumber.number_problem("山田 太郎", "氏名") is None
    assert mynumber.number_problem(None, "氏名") is None


def test_a_wrong_digit_is_said_plainly():
    """Shown after a field label (「個人番号: …」): it names neither the field again nor the
    check digit, and tells the person what to do."""
    with pytest.raises(mynumber.InvalidMyNumber) as wrong:
        mynumber.normalize("123456789012")
    message = str(wrong.value)
    assert "個人番号" not in message and "チェックデジット" not in message
    assert "見比べて" in message
