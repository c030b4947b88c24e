"""Onboarding import: every rejection, encodings, households, skips, atomicity, audit."""

import datetime as dt
import io
import json

import pytest
from sqlalchemy import func, select

from app.access import policy
from app.access.policy import ShellActor
from app.core.mynumber import make_valid
from app.io import imports, layouts
from app.models import AuditEvent, DataKey, MyNumberRecord, Person, PersonKind
from app.people import registry
from tests.io.helpers import EXTERNAL_HEADER, STAFF_HEADER, csv_bytes, numbers, staff_rows
from tests.support import actor, leaks

CLI = ShellActor(name="cli:test")


def run(session, vault, data, layout="staff", who=CLI, **kwargs):
    return imports.import_csv(
        session, vault, who, io.BytesIO(data), layouts.get(session, layout), **kwargs
    )


def counts(session):
    return tuple(
        session.execute(select(func.count()).select_from(model)).scalar_one()
        for model in (Person, DataKey, MyNumberRecord)
    )


def decrypt(session, vault, person):
    record = registry.active_record(session, person.id)
    return vault.decrypt_for(
        session, person.id, "my_number_record", "ciphertext", record.id, record.ciphertext
    )


def test_staff_households_are_stored_encrypted_and_audited(app, session, vault):
    rows = staff_rows(3, dependents=2)
    report = run(session, vault, csv_bytes(STAFF_HEADER, rows), filename="社員.csv")
    assert report.ok and report.committed, report.problems
    assert (report.rows, report.created, report.skipped, report.attached) == (9, 9, 0, 0)
    assert counts(session) == (9, 9, 9)
    head = session.execute(
        select(Person).where(Person.code == "E00002", Person.dependent_seq == 0)
    ).scalar_one()
    assert head.kind == PersonKind.EMPLOYEE and head.name == "見本 太郎1"
    assert head.birth_date == dt.date(1980, 4, 1)
    assert [d.dependent_code for d in head.dependents] == ["E00002-01", "E00002-02"]
    assert all(d.kind == PersonKind.DEPENDENT and d.code == "E00002" for d in head.dependents)
    assert decrypt(session, vault, head) == rows[3][5]
    assert decrypt(session, vault, head.dependents[1]) == rows[5][5]
    assert registry.find_by_number(session, vault, rows[4][5]).id == head.dependents[0].id
    # The key and number rows get time-ordered ids (appended at the B-tree's right edge).
    for model in (DataKey, MyNumberRecord):
        assert {i.version for i in session.execute(select(model.id)).scalars()} == {7}
    events = (
        session.execute(
            select(AuditEvent)
            .where(AuditEvent.action.like("numbers.import%"))
            .order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )
    assert [e.action for e in events] == ["numbers.import.begin", "numbers.import"]
    details = json.loads(events[1].details)
    assert details["created"] == 9 and details["file"] == "社員.csv"
    assert leaks(app, [r[5] for r in rows]) == []


def test_every_problem_is_listed_and_nothing_is_imported(app, session, vault):
    stored = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="見本 委員", code="X1"
    )
    n = numbers(12, seed=9)
    registry.register_number(session, vault, stored, n[0], "manual")
    session.commit()
    before = counts(session)
    bad_digit = n[1][:11] + str((int(n[1][11]) + 1) % 10)
    rows = [
        ["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", n[2]],  # 2 fine
        ["E1", "見本 花子", "扶養家族", "E1-01", "2010/01/01", bad_digit],  # 3
        ["E2", "見本 次郎", "本人", "E2-00", "1981/04/01", n[3][:11]],  # 4
        ["E3", "見本 三郎", "本人", "E3-00", "1982/04/01", "12345678901A"],  # 5
        ["E4", "見本 四郎", "本人", "E4-00", "2023/02/30", n[4]],  # 6
        ["E5", "見本 五郎", "配偶者", "E5-00", "1983/04/01", n[5]],  # 7
        ["E9", "見本 九子", "扶養家族", "E9-01", "2012/01/01", n[6]],  # 8 no employee
        ["E6", "見本 六郎", "本人", "E6-00", "1984/04/01", n[2]],  # 9 same number as line 2
        ["E7", "見本 七郎", "本人", "E7-00", "1985/04/01", n[0]],  # 10 stored for X1
        ["E8", "見本 八郎", "扶養家族", "E8-00", "1986/04/01", n[7]],  # 11 kubun vs code
        ["E1", "見本 一子", "扶養家族", "E1-02", "2011/01/01"],  # 12 five columns
        ["E1", "見本 一美", "扶養家族", "E1-01", "2012/01/01", n[8]],  # 13 E1-01 twice
        ["E10", "", "本人", "E10-00", "1990/01/01", n[9]],  # 14 no name
        ["E11", "見本 十一", "本人", "E12-00", "1990/01/01", n[10]],  # 15 code mismatch
    ]
    report = run(session, vault, csv_bytes(STAFF_HEADER, rows))
    assert not report.ok and not report.committed
    got = [(p.line, p.field, p.reason) for p in report.problems]
    expected = [
        (3, "マイナンバー", "数字がどこか違って"),
        (4, "マイナンバー", "12桁"),
        (5, "マイナンバー", "数字以外"),
        (6, "生年月日", "存在しない日付"),
        (7, "本人区分", "「本人」または「扶養親族」"),
        (8, "職員番号", "扶養親族の職員（本人）が"),
        (9, "マイナンバー", "ファイル内の別の行と同じ"),
        (10, "マイナンバー", "既に別の人物に登録"),
        (11, "本人区分", "扶養者コードと一致しません"),
        (12, "列数", "この行は5列"),
        (13, "扶養者コード", "E1-01 がファイル内で重複"),
        (14, "職員氏名", "入力されていません"),
        (15, "扶養者コード", "職員番号と一致しません"),
    ]
    assert len(got) == len(expected), got
    for (line, field, reason), (eline, efield, ereason) in zip(got, expected, strict=True):
        assert (line, field) == (eline, efield) and ereason in reason, (line, field, reason)
    text = "\n".join(str(p) for p in report.problems)
    assert all(number[:8] not in text for number in n + [bad_digit])
    assert text.splitlines()[0].startswith("行 3: マイナンバー: ")
    assert counts(session) == before
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "numbers.import")
    ).scalar_one()
    assert event.outcome == "failure" and json.loads(event.details)["problems"] == 13
    assert leaks(app, n + [bad_digit]) == []


def test_repeats_are_found_across_batches_even_after_a_bad_row(session, vault):
    """The in-file checks run a batch at a time: a number or 扶養者コード first seen many rows
    (and batches) earlier, even on a row that had another problem, is still a repeat, and a
    dependent finds its employee from an earlier batch."""
    n = numbers(imports.BATCH + 20, seed=21)
    rows = (
        [["A1", "見本 一郎", "本人", "A1-00", "1980/02/30", n[0]]]  # 2: bad date
        + [
            [f"G{i}", f"見本 {i}", "本人", f"G{i}-00", "1970/01/01", n[i + 1]]
            for i in range(imports.BATCH + 10)
        ]  # 3 .. BATCH + 12
        + [
            ["G1", "見本 一子", "扶養家族", "G1-01", "2010/01/01", n[-1]],  # fine
            ["B1", "見本 二郎", "本人", "B1-00", "1981/01/01", n[0]],  # number of line 2
            ["G2", "見本 重複", "本人", "G2-00", "1982/01/01", n[-2]],  # G2-00 again
        ]
    )
    report = run(session, vault, csv_bytes(STAFF_HEADER, rows))
    last = imports.BATCH + 12
    assert [(p.line, p.field) for p in report.problems] == [
        (2, "生年月日"),
        (last + 2, "マイナンバー"),
        (last + 3, "扶養者コード"),
    ], report.problems
    assert "ファイル内の別の行と同じ個人番号です" in report.problems[1].reason
    assert "G2-00 がファイル内で重複" in report.problems[2].reason
    assert not report.committed and counts(session) == (0, 0, 0)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            ["職員番号", "氏名", "本人区分", "扶養者コード", "生年月日", "マイナンバー"],
            "「氏名」はこの様式にありません",
        ),
        (
            ["職員番号", "職員氏名", "本人区分", "扶養者コード", "生年月日"],
            "「マイナンバー」の列がありません",
        ),
        (STAFF_HEADER + ["職員氏名"], "「職員氏名」が2回あります"),
        (
            ["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", make_valid("12345678901")],
            "見出し行がありません",
        ),
    ],
)
def test_header_must_match_the_layout(session, vault, header, reason):
    report = run(
        session,
        vault,
        csv_bytes(
            header, [["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", make_valid("98765432109")]]
        ),
    )
    assert not report.ok
    assert any(p.line == 1 and p.field == "見出し" and reason in p.reason for p in report.problems)
    assert "12345678901" not in " ".join(str(p) for p in report.problems)
    assert counts(session) == (0, 0, 0)


def test_columns_in_another_order_are_fine(session, vault):
    n = numbers(1, seed=4)[0]
    header = ["マイナンバー", "生年月日", "扶養者コード", "本人区分", "職員氏名", "職員番号"]
    report = run(
        session, vault, csv_bytes(header, [[n, "1980/04/01", "E1-00", "本人", "見本 太郎", "E1"]])
    )
    assert report.ok and report.created == 1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp932"])
def test_utf8_bom_and_cp932_files_give_the_same_people(session, vault, encoding):
    n = numbers(3, seed=5)
    rows = [
        ["E1", "髙橋 一郎", "本人", "E1-00", "昭和60年1月2日", n[0]],
        ["E1", "髙橋 花子", "扶養家族", "E1-01", "S60.1.3", f"{n[1][:4]}-{n[1][4:8]}-{n[1][8:]}"],
        [
            "E2",
            "渡邊 次郎",
            "本人",
            "E2-00",
            "1990-12-31",
            n[2].translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        ],
    ]
    report = run(session, vault, csv_bytes(STAFF_HEADER, rows, encoding))
    assert report.ok, report.problems
    assert report.encoding == encoding
    people_ = (
        session.execute(select(Person).order_by(Person.code, Person.dependent_seq)).scalars().all()
    )
    assert [p.name for p in people_] == ["髙橋 一郎", "髙橋 花子", "渡邊 次郎"]
    assert [p.birth_date for p in people_] == [
        dt.date(1985, 1, 2),
        dt.date(1985, 1, 3),
        dt.date(1990, 12, 31),
    ]
    assert [decrypt(session, vault, p) for p in people_] == n


def test_names_outside_cp932_survive_in_utf8(session, vault):
    n = numbers(1, seed=6)[0]
    report = run(
        session,
        vault,
        csv_bytes(STAFF_HEADER, [["E1", "𠮷田 太郎", "本人", "E1-00", "1980/01/01", n]]),
    )
    assert report.ok
    assert session.execute(select(Person.name)).scalar_one() == "𠮷田 太郎"


def test_forced_wrong_encoding_is_a_problem_with_a_line(session, vault):
    n = numbers(1, seed=7)[0]
    data = csv_bytes(STAFF_HEADER, [["E1", "髙橋 一郎", "本人", "E1-00", "1980/01/01", n]], "cp932")
    report = run(session, vault, data, encoding="utf-8")
    assert not report.ok and report.problems[0].field == "ファイル"
    assert counts(session) == (0, 0, 0)


def test_same_person_same_number_is_skipped_not_duplicated(session, vault):
    rows = staff_rows(2, dependents=1, seed=8)
    data = csv_bytes(STAFF_HEADER, rows)
    assert run(session, vault, data).created == 4
    again = run(session, vault, data)
    assert again.ok and (again.created, again.skipped) == (0, 4)
    assert counts(session) == (4, 4, 4)
    more = rows + [
        ["E00003", "見本 三郎", "本人", "E00003-00", "1979/01/01", numbers(1, seed=99)[0]]
    ]
    third = run(session, vault, csv_bytes(STAFF_HEADER, more))
    assert (third.created, third.skipped) == (1, 4)


def test_stored_person_without_number_gets_it_and_a_different_number_is_refused(session, vault):
    head = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name="見本 太郎",
        code="E1",
        birth_date=dt.date(1980, 4, 1),
    )
    session.commit()
    n = numbers(3, seed=10)
    report = run(
        session,
        vault,
        csv_bytes(
            STAFF_HEADER,
            [
                ["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", n[0]],
                ["E1", "見本 花子", "扶養家族", "E1-01", "2010/01/01", n[1]],
            ],
        ),
    )
    assert report.ok and (report.attached, report.created) == (1, 1)
    session.expire_all()
    assert decrypt(session, vault, head) == n[0]
    assert head.dependents[0].household_head_id == head.id
    refused = run(
        session,
        vault,
        csv_bytes(STAFF_HEADER, [["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", n[2]]]),
    )
    assert not refused.ok and "別の個人番号" in refused.problems[0].reason
    assert decrypt(session, vault, head) == n[0]


def test_dependents_before_their_employee_and_of_a_stored_employee(session, vault):
    stored = registry.add_person(
        session, vault, kind=PersonKind.EMPLOYEE, name="見本 既存", code="S1"
    )
    session.commit()
    n = numbers(4, seed=11)
    rows = (
        [
            ["E1", "見本 花子", "扶養家族", "E1-01", "2010/01/01", n[0]],
            ["S1", "見本 既存子", "扶養家族", "S1-01", "2011/01/01", n[1]],
            ["E1", "見本 次子", "扶養家族", "E1-02", "2012/01/01", n[2]],
        ]
        + [
            [f"F{i}", f"見本 {i}", "本人", f"F{i}-00", "1970/01/01", m]
            for i, m in enumerate(numbers(imports.BATCH + 10, seed=12))
        ]
        + [
            ["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", n[3]],
        ]
    )
    report = run(session, vault, csv_bytes(STAFF_HEADER, rows))
    assert report.ok, report.problems[:3]
    head = session.execute(
        select(Person).where(Person.code == "E1", Person.dependent_seq == 0)
    ).scalar_one()
    assert [d.name for d in head.dependents] == ["見本 花子", "見本 次子"]
    session.refresh(stored)
    assert [d.name for d in stored.dependents] == ["見本 既存子"]


def test_external_members_with_address_encrypted(app, session, vault):
    n = numbers(2, seed=13)
    rows = [
        ["X001", "見本 委員", "ミホン イイン", "1950/05/05", "東京都千代田区見本町1-1", n[0]],
        ["X002", "試験 講師", "", "1960/06/06", "", n[1]],
    ]
    report = run(session, vault, csv_bytes(EXTERNAL_HEADER, rows), layout="external")
    assert report.ok, report.problems
    member = session.execute(select(Person).where(Person.code == "X001")).scalar_one()
    assert member.kind == PersonKind.EXTERNAL and member.name_kana == "ミホン イイン"
    assert registry.decrypt_address(session, vault, member) == "東京都千代田区見本町1-1"
    assert decrypt(session, vault, member) == n[0]
    duplicate = run(
        session,
        vault,
        csv_bytes(EXTERNAL_HEADER, rows + [rows[0][:5] + [numbers(1, seed=14)[0]]]),
        layout="external",
    )
    assert any("委員番号 X001 がファイル内で重複" in p.reason for p in duplicate.problems)
    assert leaks(app, n) == []


def test_dry_run_checks_everything_and_writes_nothing(session, vault):
    rows = staff_rows(2, dependents=1, seed=15)
    report = run(session, vault, csv_bytes(STAFF_HEADER, rows), dry_run=True)
    assert report.ok and report.created == 4 and not report.committed
    assert counts(session) == (0, 0, 0)
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "numbers.import_check")
    ).scalar_one()
    assert json.loads(event.details)["dry_run"] is True


def test_formula_prefix_written_by_our_export_is_read_back(session, vault):
    n = numbers(1, seed=16)[0]
    header = ["委員番号", "氏名", "氏名カナ", "生年月日", "住所", "マイナンバー"]
    report = run(
        session,
        vault,
        csv_bytes(header, [["X1", "見本 委員", "", "1950/01/01", "'-1 番地", n]]),
        layout="external",
    )
    assert report.ok
    member = session.execute(select(Person)).scalar_one()
    assert registry.decrypt_address(session, vault, member) == "-1 番地"


@pytest.mark.parametrize(
    "who",
    [actor("Operator"), actor("Auditor"), actor("SystemAdmin"), actor("ClientStaff", mfa=False)],
)
def test_only_client_staff_and_the_shell_import(session, vault, who):
    data = csv_bytes(STAFF_HEADER, staff_rows(1, 0, seed=17))
    with pytest.raises(policy.PermissionDenied):
        run(session, vault, data, who=who)
    assert run(session, vault, data, who=actor("ClientStaff")).created == 1


def test_an_export_only_layout_cannot_import(session, vault):
    layout = layouts.validate(
        "一覧", "staff", [("code", "職員番号"), ("name", "氏名")], "slash", "utf-8-sig"
    )
    with pytest.raises(ValueError, match="取り込みに使えません"):
        imports.import_csv(session, vault, CLI, io.BytesIO(b"x"), layout)


def test_empty_and_header_only_files(session, vault):
    assert run(session, vault, b"").problems[0].reason.startswith("ファイルが空")
    header_only = run(session, vault, csv_bytes(STAFF_HEADER, []))
    assert header_only.problems[0].reason == "データ行がありません"
