"""Export: round trip with the import, formulas, the audit event first, manifests, refusals."""

import csv
import io
import json

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from app.access import policy
from app.access.policy import ShellActor
from app.audit import trail
from app.audit.trail import AuditUnavailable
from app.io import exports, imports, layouts
from app.models import AuditEvent, ExportItem, Person
from app.people import registry
from app.platform.csvio import CsvWriteError
from tests.io.helpers import EXTERNAL_HEADER, STAFF_HEADER, csv_bytes, numbers, staff_rows
from tests.support import actor, leaks

CLI = ShellActor(name="cli:test")
HR = actor("ClientStaff", name="hr")


def load(session, vault, data, layout):
    report = imports.import_csv(session, vault, CLI, io.BytesIO(data), layout)
    assert report.ok, report.problems[:5]
    return report


def export(session, vault, layout, who=HR, purpose="年末調整", **kwargs):
    out = io.BytesIO()
    result = exports.export_csv(session, vault, who, layout, out, purpose, **kwargs)
    return result, out.getvalue()


def rows_of(data: bytes, encoding: str):
    text_ = data.decode("utf-8-sig" if encoding == "utf-8-sig" else "cp932")
    return list(csv.reader(io.StringIO(text_, newline="")))


def test_staff_round_trip_gives_the_same_rows(app, session, vault):
    layout = layouts.get(session, "staff")
    rows = staff_rows(40, dependents=2, seed=21)
    load(session, vault, csv_bytes(STAFF_HEADER, rows), layout)
    result, data = export(session, vault, layout)
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    out = rows_of(data, "utf-8-sig")
    assert out[0] == STAFF_HEADER
    assert sorted(out[1:]) == sorted(rows)
    assert result.count == 120
    # and the file imports back as "already stored"
    again = imports.import_csv(session, vault, CLI, io.BytesIO(data), layout)
    assert again.ok and again.skipped == 120
    assert leaks(app, [r[5] for r in rows]) == []


def test_external_round_trip_with_address_and_kana(session, vault):
    layout = layouts.get(session, "external")
    n = numbers(3, seed=22)
    rows = [
        ["X1", "見本 委員", "ミホン イイン", "1950/05/05", "東京都千代田区見本町1-1", n[0]],
        ["X2", "髙橋 講師", "", "1960/06/06", "", n[1]],
        ["X3", "𠮷田 委員", "ヨシダ イイン", "1970/07/07", "大阪府大阪市試験町2-2", n[2]],
    ]
    load(session, vault, csv_bytes(EXTERNAL_HEADER, rows), layout)
    _, data = export(session, vault, layout)
    assert sorted(rows_of(data, "utf-8-sig")[1:]) == sorted(rows)


def test_a_client_layout_round_trips_in_cp932_with_wareki_dates(session, vault):
    layout = layouts.save(
        session,
        HR,
        layouts.validate(
            "給与システム",
            "staff",
            [
                ("number", "個人番号"),
                ("dependent_code", "扶養コード"),
                ("code", "社員番号"),
                ("name", "氏名"),
                ("name_kana", "カナ"),
                ("relation", "続柄"),
                ("birth_date", "生年月日"),
                ("kubun", "区分"),
            ],
            "wareki",
            "cp932",
        ),
    )
    n = numbers(3, seed=23)
    header = layout.headers
    rows = [
        [n[0], "E1-00", "E1", "髙橋 一郎", "タカハシ イチロウ", "", "昭和60年1月2日", "本人"],
        [
            n[1],
            "E1-01",
            "E1",
            "髙橋 花子",
            "タカハシ ハナコ",
            "配偶者",
            "昭和62年3月4日",
            "扶養親族",
        ],
        [n[2], "E1-02", "E1", "髙橋 令子", "", "子", "令和元年5月1日", "扶養親族"],
    ]
    load(session, vault, csv_bytes(header, rows, "cp932"), layout)
    result, data = export(session, vault, layout)
    assert result.encoding == "cp932"
    assert not data.startswith(b"\xef\xbb\xbf")
    out = rows_of(data, "cp932")
    assert out[0] == header and sorted(out[1:]) == sorted(rows)


def test_formula_cells_are_neutralised_and_import_back(session, vault):
    layout = layouts.get(session, "external")
    n = numbers(2, seed=24)
    rows = [
        ["X1", '=HYPERLINK("http://example.invalid")', "", "1950/01/01", "+81 東京", n[0]],
        ["X2", "@見本", "", "1950/01/01", "-1 番地", n[1]],
    ]
    load(session, vault, csv_bytes(EXTERNAL_HEADER, rows), layout)
    _, data = export(session, vault, layout)
    out = sorted(rows_of(data, "utf-8-sig")[1:])
    assert out[0][1] == '\'=HYPERLINK("http://example.invalid")' and out[0][4] == "'+81 東京"
    assert out[1][1] == "'@見本" and out[1][4] == "'-1 番地"
    for row in out:
        assert not row[1].startswith(("=", "+", "-", "@"))
    stored = {p.name for p in session.execute(select(Person)).scalars()}
    assert stored == {rows[0][1], rows[1][1]}
    again = imports.import_csv(session, vault, CLI, io.BytesIO(data), layout)
    assert again.ok and again.skipped == 2


def test_a_cell_that_starts_with_a_quote_and_a_formula_comes_back_unchanged(session, vault):
    """A name really stored as ``'=見本`` (its CSV cell is ``''=見本``) is written with our own
    prefix again, so that reading the file back gives ``'=見本``, not ``=見本``."""
    layout = layouts.get(session, "external")
    n = numbers(1, seed=25)
    load(
        session,
        vault,
        csv_bytes(EXTERNAL_HEADER, [["X1", "''=見本", "", "1950/01/01", "", n[0]]]),
        layout,
    )
    assert session.execute(select(Person.name)).scalar_one() == "'=見本"
    _, data = export(session, vault, layout)
    assert rows_of(data, "utf-8-sig")[1][1] == "''=見本"


def test_the_audit_event_comes_first_and_lists_the_people(session, vault):
    layout = layouts.get(session, "staff")
    load(session, vault, csv_bytes(STAFF_HEADER, staff_rows(3, 1, seed=25)), layout)
    result, data = export(session, vault, layout, purpose="2026年分 源泉徴収票")
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "numbers.export")
    ).scalar_one()
    ids = sorted(str(i) for i in session.execute(select(Person.id)).scalars())
    assert sorted(json.loads(event.object_ids)) == ids
    details = json.loads(event.details)
    assert event.purpose == "2026年分 源泉徴収票" and details["count"] == 6
    assert details["manifest_sha256"] == exports.manifest_digest(session, result.export_id)[1]
    assert details["export_id"] == str(result.export_id)
    assert (
        session.execute(select(ExportItem).where(ExportItem.export_id == result.export_id))
        .scalars()
        .all()
    )
    for number in (row[5] for row in rows_of(data, "utf-8-sig")[1:]):
        assert number not in event.details and number not in event.object_ids


def test_no_audit_event_no_plaintext(session, vault, monkeypatch):
    layout = layouts.get(session, "staff")
    load(session, vault, csv_bytes(STAFF_HEADER, staff_rows(2, 0, seed=26)), layout)

    def broken(*args, **kwargs):
        raise AuditUnavailable("監査ログを書き込めないため、この操作は実行されませんでした")

    def must_not_decrypt(*args, **kwargs):
        raise AssertionError("decrypted before the audit event")

    monkeypatch.setattr(trail, "record", broken)
    monkeypatch.setattr("app.io.bulk.Opener.person_key", must_not_decrypt)
    out = io.BytesIO()
    with pytest.raises(AuditUnavailable):
        exports.export_csv(session, vault, HR, layout, out, "目的")
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    "who",
    [
        actor("Operator"),
        actor("Auditor"),
        actor("SystemAdmin"),
        actor("SystemAdmin", "ClientStaff"),
        actor("ClientStaff", mfa=False),
        actor("ClientStaff", roster=False),
    ],
)
def test_export_refused_and_the_refusal_audited(session, vault, who):
    layout = layouts.get(session, "staff")
    load(session, vault, csv_bytes(STAFF_HEADER, staff_rows(1, 0, seed=27)), layout)
    with pytest.raises(policy.PermissionDenied):
        export(session, vault, layout, who=who)
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "numbers.export")
    ).scalar_one()
    assert event.outcome == "denied"
    assert not session.execute(select(ExportItem)).first()


def test_a_purpose_is_required(session, vault):
    with pytest.raises(exports.ExportRefused, match="利用目的"):
        export(session, vault, layouts.get(session, "staff"), purpose="  ")


def test_cp932_refuses_a_name_it_cannot_write_and_says_where(session, vault):
    layout = layouts.get(session, "staff")
    n = numbers(1, seed=28)[0]
    load(
        session,
        vault,
        csv_bytes(STAFF_HEADER, [["E1", "𠮷田 太郎", "本人", "E1-00", "1980/01/01", n]]),
        layout,
    )
    with pytest.raises(CsvWriteError, match="行 2: 職員氏名: 「𠮷」"):
        export(session, vault, layout, encoding="cp932")
    failure = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "numbers.export", AuditEvent.outcome == "failure"
        )
    ).scalar_one()
    assert json.loads(failure.details)["error"] == "CsvWriteError"


def test_an_export_of_chosen_people_writes_only_them_of_the_layout_kind(session, vault):
    staff = layouts.get(session, "staff")
    rows = staff_rows(3, 0, seed=29)
    load(session, vault, csv_bytes(STAFF_HEADER, rows), staff)
    external = registry.add_person(session, vault, kind="external", name="見本 委員", code="X1")
    session.commit()
    chosen = session.execute(select(Person.id).where(Person.code == "E00003")).scalar_one()
    result, data = export(session, vault, staff, person_ids=[chosen, chosen, external.id])
    assert result.count == 1
    assert rows_of(data, "utf-8-sig")[1:] == [rows[2]]


def test_export_manifests_are_append_only(session, vault):
    layout = layouts.get(session, "staff")
    load(session, vault, csv_bytes(STAFF_HEADER, staff_rows(1, 0, seed=30)), layout)
    result, _ = export(session, vault, layout)
    for statement in (
        update(ExportItem).values(position=7),
        delete(ExportItem),
    ):
        with pytest.raises(DBAPIError):
            session.execute(statement.where(ExportItem.export_id == result.export_id))
            session.flush()
        session.rollback()
    assert session.execute(text("SELECT count(*) FROM export_item")).scalar_one() == 1


def test_many_slices_keep_the_order_and_every_row(session, vault, monkeypatch):
    monkeypatch.setattr(exports, "BATCH", 7)  # 41 rows: six slices, fetched ahead on PostgreSQL
    layout = layouts.get(session, "staff")
    rows = staff_rows(41, dependents=0, seed=31)
    load(session, vault, csv_bytes(STAFF_HEADER, list(reversed(rows))), layout)
    result, data = export(session, vault, layout)
    assert result.count == 41
    assert rows_of(data, "utf-8-sig")[1:] == rows  # 職員番号 order, whatever the file's order
