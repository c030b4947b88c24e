"""Keeping records: validated like the import, audited by field name, numbers superseded."""

import datetime as dt
import json

import pytest
from sqlalchemy import select

from app.access import policy
from app.models import AuditEvent, MyNumberRecord, NameChange, Person, PersonKind
from app.people import records, registry
from tests.io.helpers import numbers
from tests.support import actor, leaks

HR = actor("ClientStaff", name="hr")
N = numbers(8, seed=41)


def events(session, action):
    return (
        session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )


def decrypt(session, vault, record):
    return vault.decrypt_for(
        session, record.person_id, "my_number_record", "ciphertext", record.id, record.ciphertext
    )


@pytest.fixture
def household(session, vault):
    head = records.add_from_form(
        session,
        vault,
        HR,
        PersonKind.EMPLOYEE,
        {
            "code": "E1",
            "name": "見本 太郎",
            "name_kana": "ミホン タロウ",
            "birth_date": "昭和55年4月1日",
            "number": N[0],
        },
    )
    kids = [
        records.add_dependent(
            session,
            vault,
            HR,
            head.id,
            {
                "name": f"見本 {name}",
                "relation": "子",
                "birth_date": f"2010/0{i}/01",
                "number": N[i],
            },
        )
        for i, name in ((1, "一郎"), (2, "二郎"), (3, "三子"))
    ]
    return head, kids


def test_add_person_and_dependents(session, vault, household):
    head, kids = household
    assert head.birth_date == dt.date(1980, 4, 1)
    assert [k.dependent_code for k in kids] == ["E1-01", "E1-02", "E1-03"]
    assert decrypt(session, vault, registry.active_record(session, kids[1].id)) == N[2]
    added = events(session, "person.add")[0]
    assert json.loads(added.details)["number"] is True
    assert N[0] not in added.details


def test_input_is_validated_like_the_import(session, vault, household):
    with pytest.raises(records.RecordError) as info:
        records.add_from_form(
            session,
            vault,
            HR,
            PersonKind.EXTERNAL,
            {
                "code": "X 1",
                "name": "",
                "birth_date": "2023/02/30",
                "number": N[0][:11] + "0",
                "name_kana": "見本",
            },
        )
    problems = info.value.problems
    assert any(p.startswith("職員番号・委員番号: ") for p in problems)
    assert "氏名: 入力されていません" in problems
    assert any(p.startswith("生年月日: 存在しない日付") for p in problems)
    assert any(p.startswith("氏名カナ: カナ以外") for p in problems)
    assert any(p.startswith("個人番号: ") for p in problems)
    with pytest.raises(records.RecordError, match="既に登録されています"):
        records.add_from_form(
            session,
            vault,
            HR,
            PersonKind.EMPLOYEE,
            {"code": "E1", "name": "見本 別人", "birth_date": "1990/01/01"},
        )
    with pytest.raises(records.RecordError, match="既に別の人物"):
        records.add_from_form(
            session,
            vault,
            HR,
            PersonKind.EXTERNAL,
            {"code": "X1", "name": "見本 委員", "birth_date": "1990/01/01", "number": N[1]},
        )


def test_edit_changes_the_household_code_and_audits_field_names(session, vault, household):
    head, kids = household
    changed = records.edit_person(
        session,
        vault,
        HR,
        head.id,
        {
            "code": "E100",
            "name_kana": "ミホン タロウ",
            "birth_date": "1980/04/02",
            "address": "東京都千代田区見本町1-1",
            "postal_code": "",
        },
    )
    assert changed == ["address", "birth_date", "code"]
    session.refresh(kids[0])
    assert [k.dependent_code for k in head.dependents] == ["E100-01", "E100-02", "E100-03"]
    assert registry.decrypt_address(session, vault, head) == "東京都千代田区見本町1-1"
    event = events(session, "person.edit")[-1]
    assert json.loads(event.details) == {"fields": ["address", "birth_date", "code"]}
    assert "見本町" not in event.details
    assert records.edit_person(session, vault, HR, head.id, {"name_kana": "ミホン タロウ"}) == []


def test_client_staff_correct_an_email_address_and_only_the_field_name_is_audited(
    session, vault, household
):
    """The way to change a contact a target list reported as different (a list never
    changes it, app.collection.targets)."""
    head, _kids = household
    with pytest.raises(records.RecordError, match="メールアドレス: 形式が正しくありません"):
        records.edit_person(session, vault, HR, head.id, {"email": "not-an-address"})
    changed = records.edit_person(session, vault, HR, head.id, {"email": "new@example.jp"})
    assert changed == ["email"] and head.email == "new@example.jp"
    event = events(session, "person.edit")[-1]
    assert json.loads(event.details) == {"fields": ["email"]}
    assert "example.jp" not in event.details
    assert records.edit_person(session, vault, HR, head.id, {"email": "new@example.jp"}) == []


def test_name_change_keeps_history(session, household):
    head, _ = household
    records.change_name(
        session,
        HR,
        head.id,
        {
            "name": "試験 太郎",
            "name_kana": "シケン タロウ",
            "changed_on": "2026/04/01",
            "reason": "婚姻",
        },
    )
    assert head.name == "試験 太郎"
    entry = session.execute(select(NameChange)).scalar_one()
    assert (entry.old_name, entry.new_name, entry.changed_on) == (
        "見本 太郎",
        "試験 太郎",
        dt.date(2026, 4, 1),
    )
    assert entry.recorded_by == "hr"
    with pytest.raises(records.RecordError, match="現在の氏名と同じ"):
        records.change_name(
            session,
            HR,
            head.id,
            {"name": "試験 太郎", "name_kana": "シケン タロウ", "changed_on": "2026/04/02"},
        )


def test_a_reissued_number_supersedes_the_old_one(app, session, vault, household):
    head, kids = household
    old = registry.active_record(session, head.id)
    records.replace_number(
        session, vault, HR, head.id, {"number": N[5], "reason": "漏えいによる再発行"}
    )
    kept = (
        session.execute(
            select(MyNumberRecord)
            .where(MyNumberRecord.person_id == head.id)
            .order_by(MyNumberRecord.registered_at)
        )
        .scalars()
        .all()
    )
    assert [r.status for r in kept] == ["superseded", "active"]
    assert decrypt(session, vault, kept[0]) == N[0] and kept[0].id == old.id
    assert decrypt(session, vault, kept[1]) == N[5]
    assert registry.find_by_number(session, vault, N[5]).id == head.id
    assert registry.find_by_number(session, vault, N[0]) is None
    event = events(session, "number.replace")[0]
    assert json.loads(event.details)["superseded_record"] == str(old.id)
    for bad, reason in (
        (N[5], "現在の個人番号と同じ"),
        (N[1], "既に別の人物"),
        (N[6][:11] + "x", "数字以外"),
    ):
        with pytest.raises(records.RecordError, match=reason):
            records.replace_number(session, vault, HR, head.id, {"number": bad, "reason": "再発行"})
    with pytest.raises(records.RecordError, match="理由"):
        records.replace_number(session, vault, HR, head.id, {"number": N[6], "reason": ""})
    assert leaks(app, N) == []


def test_remove_a_dependent_renumbers_the_rest(session, household):
    head, kids = household
    changes = records.remove_dependent(
        session, HR, kids[0].id, {"ended_on": "2026/03/31", "reason": "就職"}
    )
    assert changes == [("E1-02", "E1-01"), ("E1-03", "E1-02")]
    assert kids[0].status == records.REMOVED and kids[0].ended_on == dt.date(2026, 3, 31)
    active = [d for d in head.dependents if d.status == "active"]
    assert [(d.name, d.dependent_code) for d in active] == [
        ("見本 二郎", "E1-01"),
        ("見本 三子", "E1-02"),
    ]
    assert json.loads(events(session, "dependent.remove")[0].details)["renumbered"] == [
        ["E1-02", "E1-01"],
        ["E1-03", "E1-02"],
    ]
    added = records.add_dependent(
        session, vault_of(session), HR, head.id, {"name": "見本 四郎", "birth_date": "2020/01/01"}
    )
    assert added.dependent_code == "E1-03"
    assert records.renumber(session, HR, head.id) == []


def vault_of(session):
    from flask import current_app

    return current_app.extensions["mynumber_vault"]


def test_retirement_date_covers_the_household(session, household):
    head, kids = household
    touched = records.record_end(session, HR, head.id, {"ended_on": "2027/03/31"})
    assert set(touched) == {head.id, *(k.id for k in kids)}
    assert all(p.ended_on == dt.date(2027, 3, 31) for p in [head, *kids])


@pytest.mark.parametrize(
    "who",
    [actor("Operator"), actor("Auditor"), actor("SystemAdmin"), actor("ClientStaff", mfa=False)],
)
def test_only_client_staff_keep_records(session, vault, who):
    with pytest.raises(policy.PermissionDenied):
        records.add_from_form(
            session,
            vault,
            who,
            PersonKind.EMPLOYEE,
            {"code": "E1", "name": "見本", "birth_date": "1980/01/01"},
        )
    assert session.execute(select(Person)).first() is None
