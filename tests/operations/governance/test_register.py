"""取扱状況 register: every data set the system holds, access derived from the permission
table, counts and deletion status, and never a number or a name."""

import datetime as dt

import pytest

from app.access import policy
from app.core.mynumber import make_valid
from app.models import PersonKind
from app.operations import governance
from app.people import registry
from tests.conftest import pdf_text
from tests.support import actor, number_forms

NUMBER = make_valid("31415926535")
NAME = "登録 太郎"


@pytest.fixture
def stored_person(session, vault):
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name=NAME,
        code="E00042",
        birth_date=dt.date(1980, 4, 1),
    )
    registry.register_number(session, vault, person, NUMBER, "manual")
    session.commit()
    return person


def test_every_data_set_is_listed(session, stored_person):
    rows = governance.register(session, actor("Auditor"))
    assert [r.name for r in rows] == [d.name for d in governance.DATA_SETS]
    names = " ".join(r.name for r in rows)
    for data_set in (
        "人物",
        "個人番号",
        "本人確認書類の画像",
        "封緘データ",
        "郵送受付のスキャン画像",
        "返却データ",
        "バックアップ",
        "監査ログ",
        "お問い合わせ",
        "情報取扱者名簿",
    ):
        assert data_set in names
    by_key = dict(zip([d.key for d in governance.DATA_SETS], rows, strict=True))
    assert by_key["people"].count == "保管 1 名（廃棄済み 0 名）"
    assert by_key["numbers"].count.startswith("1 件")
    assert "未設定" in by_key["people"].retention or "経過" in by_key["people"].retention


def test_access_comes_from_the_permission_table(session):
    rows = {
        d.key: r
        for d, r in zip(
            governance.DATA_SETS, governance.register(session, actor("Auditor")), strict=True
        )
    }
    numbers = " ".join(rows["numbers"].access)
    assert "発注者担当者" in numbers and "事務取扱担当者" in numbers
    assert "システム管理者" not in numbers  # never personal data
    assert "監査担当者" not in numbers
    assert "サーバーのコマンドライン" in numbers  # import / export on the server
    assert rows["audit"].access == ["監査担当者（一覧・表示・検証）"]
    # Widening the table changes the register: nothing is typed by hand.
    before = governance.access_for(("AuditLog",))
    policy.ROLE_PERMISSIONS[policy.OPERATOR] |= {("can_list", "AuditLog")}
    try:
        assert "事務取扱担当者（受注者）（一覧）" in governance.access_for(("AuditLog",))
    finally:
        policy.ROLE_PERMISSIONS[policy.OPERATOR] -= {("can_list", "AuditLog")}
    assert governance.access_for(("AuditLog",)) == before


def test_register_holds_no_number_and_no_name(
    app, session, stored_person, needs_pdf, client, make_user, login
):
    outputs = [
        governance.register_export(session, actor("ClientStaff"), "csv")[1],
        governance.register_export(session, actor("SystemAdmin"), "csv", "cp932")[1],
    ]
    pdf = governance.register_export(session, actor("Auditor"), "pdf")[1]
    outputs.append(pdf_text(pdf).encode("utf-8"))
    staff, secret = make_user("ClientStaff")
    login(staff.username, totp_secret=secret)
    page = client.get("/register/")
    assert page.status_code == 200
    outputs.append(page.get_data())
    for data in outputs:
        for form in number_forms(NUMBER):
            assert form not in data
        assert NAME.encode("utf-8") not in data and NAME.encode("cp932") not in data
    assert "取扱状況" in pdf_text(pdf) and "アクセスできる者" in pdf_text(pdf)


def test_who_sees_the_register(session):
    for role in ("ClientStaff", "Auditor", "SystemAdmin"):
        governance.register(session, actor(role))
    with pytest.raises(policy.PermissionDenied):
        governance.register(session, actor("Operator"))
