"""Layouts: rules, date formats, the two defaults, saving (audited, ClientStaff/Operator)."""

import datetime as dt
import json

import pytest
from sqlalchemy import select

from app.access import policy
from app.io import layouts
from app.models import AuditEvent
from tests.support import actor


def test_defaults_from_the_migration(session):
    staff = layouts.get(session, "staff")
    assert staff.headers == [
        "職員番号",
        "職員氏名",
        "本人区分",
        "扶養者コード",
        "生年月日",
        "マイナンバー",
    ]
    assert staff.kind == "staff" and staff.encoding == "utf-8-sig" and staff.builtin
    external = layouts.get(session, "external")
    assert external.headers == ["委員番号", "氏名", "氏名カナ", "生年月日", "住所", "マイナンバー"]
    assert not staff.missing_for_import() and not external.missing_for_import()
    with pytest.raises(LookupError, match="staff"):
        layouts.get(session, "nothing")


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (dt.date(1985, 1, 2), "slash", "1985/01/02"),
        (dt.date(1985, 1, 2), "hyphen", "1985-01-02"),
        (dt.date(1985, 1, 2), "compact", "19850102"),
        (dt.date(1985, 1, 2), "wareki", "昭和60年1月2日"),
        (dt.date(2019, 5, 1), "wareki", "令和元年5月1日"),
        (dt.date(1989, 1, 7), "wareki", "昭和64年1月7日"),
        (dt.date(1989, 1, 8), "wareki", "平成元年1月8日"),
    ],
)
def test_date_formats_and_they_parse_back(value, fmt, expected):
    from app.core.fields import clean_date

    assert layouts.format_date(value, fmt) == expected
    assert clean_date(expected) == value


def test_validation_lists_every_problem():
    with pytest.raises(layouts.LayoutError) as info:
        layouts.validate(
            "",
            "staff",
            [
                ("code", "職員番号"),
                ("code", "番号2"),
                ("nothing", "x"),
                ("number", "=NUM"),
                ("name", "職員番号"),
            ],
            "roman",
            "latin-1",
        )
    text = " ".join(info.value.problems)
    for expected in ("様式名", "重複", "項目を選択", "使えない文字", "日付の形式", "文字コード"):
        assert expected in text
    with pytest.raises(layouts.LayoutError, match="この対象の様式では使えません"):
        layouts.validate("x", "external", [("kubun", "本人区分")], "slash", "cp932")


def test_save_edit_delete_audited_and_permissioned(session):
    staff_user = actor("ClientStaff", name="hr")
    layout = layouts.validate(
        "給与システム用",
        "staff",
        [
            ("dependent_code", "扶養コード"),
            ("name", "氏名"),
            ("number", "個人番号"),
            ("birth_date", "生年月日"),
            ("code", "社員番号"),
            ("", ""),
        ],
        "wareki",
        "cp932",
    )
    saved = layouts.save(session, staff_user, layout)
    assert saved.headers == ["扶養コード", "氏名", "個人番号", "生年月日", "社員番号"]
    assert not saved.missing_for_import()
    with pytest.raises(layouts.LayoutError, match="既に使われています"):
        layouts.save(session, staff_user, layout)
    session.rollback()
    with pytest.raises(layouts.LayoutError, match="既定の様式は削除できません"):
        layouts.delete(session, staff_user, layouts.get(session, "staff").id)
    for who in (actor("Auditor"), actor("SystemAdmin"), actor("ClientStaff", mfa=False)):
        with pytest.raises(policy.PermissionDenied):
            layouts.save(session, who, layout, saved.id)
    layouts.delete(session, actor("Operator"), saved.id)
    events = (
        session.execute(
            select(AuditEvent).where(AuditEvent.action.like("layout.%")).order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )
    assert [e.action for e in events] == ["layout.add", "layout.delete"]
    assert json.loads(events[0].details)["columns"][0] == ["dependent_code", "扶養コード"]


def test_a_number_in_a_layout_name_or_header_is_refused():
    with pytest.raises(layouts.LayoutError) as info:
        layouts.validate(
            "様式1234ー5678ー9018",
            "staff",
            [("code", "職員番号"), ("name", "1234.5678.9018")],
            "slash",
            "utf-8-sig",
        )
    problems = info.value.problems
    assert any(p.startswith("様式名に個人番号と思われる12桁の数字") for p in problems), problems
    assert any(p.startswith("列 2: 見出しに個人番号と思われる") for p in problems), problems
