"""Bulk 照合: keys to people, ambiguous and missing keys listed, numbers only by export."""

import csv
import io
import json

import pytest
from sqlalchemy import select

from app.access import policy
from app.access.policy import ShellActor
from app.io import exports, imports, layouts, matching
from app.models import AuditEvent
from tests.io.helpers import EXTERNAL_HEADER, STAFF_HEADER, csv_bytes, numbers
from tests.support import actor

HR = actor("ClientStaff", name="hr")


@pytest.fixture
def stored(session, vault):
    n = numbers(7, seed=31)
    rows = [
        ["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", n[0]],
        ["E1", "見本 一郎", "扶養家族", "E1-01", "2010/01/01", n[1]],  # twins: same code
        ["E1", "見本 二郎", "扶養家族", "E1-02", "2010/01/01", n[2]],  # and birth date
        ["E2", "髙橋 花子", "本人", "E2-00", "1985/05/05", n[3]],
        ["E3", "見本 太郎", "本人", "E3-00", "1980/04/01", n[4]],  # same name and birth as E1
        ["E4", "渡辺 三郎", "本人", "E4-00", "1990/09/09", n[5]],
    ]
    staff = layouts.get(session, "staff")
    assert imports.import_csv(
        session, vault, ShellActor(name="cli:t"), io.BytesIO(csv_bytes(STAFF_HEADER, rows)), staff
    ).ok
    ext = [["X1", "見本 委員", "", "1980/04/01", "", n[6]]]
    assert imports.import_csv(
        session,
        vault,
        ShellActor(name="cli:t"),
        io.BytesIO(csv_bytes(EXTERNAL_HEADER, ext)),
        layouts.get(session, "external"),
    ).ok
    return rows


def match(session, data, layout="staff", who=HR):
    return matching.bulk_match(
        session, who, io.BytesIO(data), layouts.get(session, layout), "年末調整"
    )


def test_by_code_and_birth_date(session, vault, stored):
    keys = csv_bytes(
        ["職員番号", "生年月日"],
        [
            ["E2", "昭和60年5月5日"],  # 2 one person
            ["E1", "2010/01/01"],  # 3 twins: ambiguous
            ["E1", "1980-04-01"],  # 4 one person
            ["E9", "1980/04/01"],  # 5 nobody
            ["E4", "1990/02/30"],  # 6 impossible date
            ["E2", "1985/05/05"],  # 7 same person again: once in the output
            ["X1", "1980/04/01"],  # 8 an external member is not in the staff layout
        ],
    )
    result = match(session, keys)
    assert result.by == "code" and result.keys == 7
    assert len(result.person_ids) == 2
    assert [(u.line, u.reason) for u in result.ambiguous] == [
        (3, "2 人が該当します（特定できません）")
    ]
    assert [u.line for u in result.unmatched] == [5, 8]
    assert [(u.line, u.key) for u in result.invalid] == [(6, "生年月日")]
    assert "E9" in result.unmatched[0].key
    out = io.BytesIO()
    exports.export_csv(
        session,
        vault,
        HR,
        layouts.get(session, "staff"),
        out,
        "年末調整",
        person_ids=result.person_ids,
    )
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert rows[1:] == [stored[3], stored[0]]  # in the order of the keys
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "numbers.match")
    ).scalar_one()
    assert json.loads(event.details)["matched"] == 2 and event.purpose == "年末調整"


def test_by_name_and_birth_date_ignoring_spaces_but_not_itaiji(session, stored):
    keys = csv_bytes(
        ["氏名", "生年月日"],
        [
            ["渡辺　三郎", "1990/09/09"],  # full-width space
            ["見本 太郎", "1980/04/01"],  # two people share it
            ["高橋 花子", "1985/05/05"],  # 高 is not 髙
            ["髙橋花子", "1985/05/05"],
        ],
    )
    result = match(session, keys, "staff")
    assert result.by == "name" and len(result.person_ids) == 2
    assert [u.line for u in result.ambiguous] == [3]
    assert [u.line for u in result.unmatched] == [4]


def test_external_members_and_bad_key_files(session, stored):
    result = match(session, csv_bytes(["委員番号", "生年月日"], [["X1", "1980/04/01"]]), "external")
    assert len(result.person_ids) == 1
    with pytest.raises(matching.MatchError, match="見出し"):
        match(session, csv_bytes(["番号", "誕生日"], [["E1", "1980/04/01"]]))
    number_as_key = match(
        session, csv_bytes(["職員番号", "生年月日"], [[stored[0][5], "1980/04/01"]])
    )
    assert number_as_key.invalid and stored[0][5] not in str(number_as_key.invalid[0])


@pytest.mark.parametrize("who", [actor("Operator"), actor("Auditor"), actor("SystemAdmin")])
def test_only_client_staff_match(session, stored, who):
    with pytest.raises(policy.PermissionDenied):
        match(session, csv_bytes(["職員番号", "生年月日"], [["E2", "1985/05/05"]]), who=who)
