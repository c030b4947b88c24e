"""The number: normalisation, the statutory check digit, masking."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import mynumber
from app.mynumber import InvalidMyNumber


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
        ("123456789012", "チェックデジット"),
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
