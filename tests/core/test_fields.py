"""The rules every value obeys (shared by the import and the record forms)."""

import datetime as dt

import pytest

from app.core import fields as F
from app.core.mynumber import make_valid

NUMBER = make_valid("12345678901")


@pytest.mark.parametrize(
    "raw",
    [
        NUMBER,
        f"{NUMBER[:4]}-{NUMBER[4:8]}-{NUMBER[8:]}",
        f"{NUMBER[:4]} {NUMBER[4:8]} {NUMBER[8:]}",
        NUMBER.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        f"{NUMBER[:4]}－{NUMBER[4:8]}ー{NUMBER[8:]}",
    ],
)
def test_numbers_are_normalised(raw):
    assert F.clean_number(raw) == NUMBER


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (NUMBER[:11] + str((int(NUMBER[11]) + 1) % 10), "数字がどこか違って"),
        (NUMBER[:11], "12桁"),
        (NUMBER + "0", "12桁"),
        ("12345678901A", "数字以外"),
        ("", "入力されていません"),
    ],
)
def test_bad_numbers_are_refused_without_echoing_them(raw, reason):
    with pytest.raises(F.FieldError) as info:
        F.clean_number(raw)
    assert reason in str(info.value)
    assert not any(run in str(info.value) for run in (raw[:6], NUMBER[:6]) if run)


def test_fast_check_digit_path_agrees_with_the_statute():
    import random

    from app.core.mynumber import is_valid

    rng = random.Random(3)
    for _ in range(5000):
        raw = f"{rng.randrange(10**12):012d}"
        try:
            F.clean_number(raw)
            ok = True
        except F.FieldError:
            ok = False
        assert ok == is_valid(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1985/01/02", dt.date(1985, 1, 2)),
        ("1985-01-02", dt.date(1985, 1, 2)),
        ("昭和60年1月2日", dt.date(1985, 1, 2)),
        ("S60.1.2", dt.date(1985, 1, 2)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
    ],
)
def test_dates_as_people_write_them(raw, expected):
    assert F.clean_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2023/02/29", "存在しない日付"),
        ("平成32年1月1日", "その元号に存在しない日付"),
        ("1985/13/01", "存在しない日付"),
        ("123456789018", "日付の形式"),
        ("", "入力されていません"),
    ],
)
def test_bad_dates_have_reasons_that_do_not_repeat_the_value(raw, reason):
    with pytest.raises(F.FieldError) as info:
        F.clean_date(raw)
    assert reason in str(info.value)
    if raw:
        assert raw not in str(info.value)


def test_future_birth_dates_are_refused_but_end_dates_may_be_ahead():
    ahead = (dt.date.today() + dt.timedelta(days=400)).strftime("%Y/%m/%d")
    with pytest.raises(F.FieldError, match="未来"):
        F.clean_date(ahead)
    assert F.clean_date(ahead, False, True) is not None


def test_names_keep_their_exact_characters():
    for name in ("髙橋 一郎", "𠮷田 花子", "渡邊\U000e0100 太郎", "ｱｲｳ", "Smith ジョン"):
        assert F.clean_name(name) == name


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "入力されていません"),
        ("   ", "入力されていません"),
        ("見本\x00太郎", "制御文字"),
        ("見本\u202e太郎", "制御文字"),
        ("見本 " + NUMBER, "12桁"),
        ("あ" * 101, "100文字"),
    ],
)
def test_bad_names(raw, reason):
    with pytest.raises(F.FieldError, match=reason):
        F.clean_name(raw)


def test_codes_kana_kubun_dependent_code():
    assert F.clean_code(" Ｅ０００１ ") == "E0001"
    for bad in ("", "E 01", "-E01", "職員1", "E" * 21, NUMBER):
        with pytest.raises(F.FieldError):
            F.clean_code(bad)
    assert F.clean_kana("ミホン タロウ") == "ミホン タロウ"
    assert F.clean_kana("ﾐﾎﾝ ﾀﾛｳ") == "ﾐﾎﾝ ﾀﾛｳ"
    with pytest.raises(F.FieldError, match="カナ以外"):
        F.clean_kana("見本")
    assert F.clean_kubun("本人") is True and F.clean_kubun("扶養親族") is False
    assert F.clean_kubun("扶養家族") is False  # the older word, in files made before
    with pytest.raises(F.FieldError, match="本人"):
        F.clean_kubun("配偶者")
    assert F.clean_dependent_code("E0001-00", "E0001") == 0
    assert F.clean_dependent_code("E0001－０２", "E0001") == 2
    with pytest.raises(F.FieldError, match="職員番号と一致しません"):
        F.clean_dependent_code("E0002-01", "E0001")
    with pytest.raises(F.FieldError, match="形式"):
        F.clean_dependent_code("E0001-1", "E0001")
    assert F.clean_postal_code("１００－０００１") == "100-0001"
    with pytest.raises(F.FieldError):
        F.clean_postal_code("1000")
