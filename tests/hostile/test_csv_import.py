"""Hostile CSV files against the import (`mynumber import`, app/io/imports.py) and its screen.

Whatever the file holds — broken encodings, NUL bytes, a truncated quote, disguised digits,
SQL or formulas — the answer is a list of ``行 N: 項目: 理由`` problems (or a plain import of
harmless text), never a traceback, and a refused file leaves no person and no number behind.
"""

from __future__ import annotations

import csv
import io

import pytest

from app.access.policy import ShellActor
from app.io import exports, imports, layouts
from app.models import MyNumberRecord, Person
from app.platform.csvio import FORMULA_START
from tests.hostile.conftest import assert_clear_refusal, audit_events, count, counts
from tests.io.helpers import STAFF_HEADER, numbers
from tests.support import csrf_token, leaks

SHELL = ShellActor(name="cli:hostile")
GOOD = numbers(6, seed=808)


def _row(number: str, name: str = "見本 太郎", code: str = "E00001") -> list[str]:
    return [code, name, "本人", f"{code}-00", "1980/04/01", number]


def _import(session, vault, data: bytes, encoding: str = "auto") -> imports.ImportReport:
    return imports.import_csv(
        session, vault, SHELL, io.BytesIO(data), layouts.get(session, "staff"), encoding=encoding
    )


def _text_file(*rows: list[str]) -> bytes:
    """A well-formed UTF-8 (BOM) file: cells quoted where they need it."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([STAFF_HEADER, *rows])
    return out.getvalue().encode("utf-8-sig")


# Each: (file bytes, encoding option, a phrase of the expected problem).
HOSTILE_FILES = {
    "nul-byte-in-name": (
        _text_file(_row(GOOD[0], name="見本NUL太郎")).replace(b"NUL", b"\x00"),
        "auto",
        "行 2: 職員氏名: 制御文字が含まれています",
    ),
    "latin1-bytes-declared-utf8": (
        _text_file(_row(GOOD[0], name="Rene")).replace(b"Rene", b"Ren\xe9"),
        "utf-8",
        "として読めない文字があります（文字コードを確認してください）",
    ),
    "utf16-file": (
        ("\ufeff" + ",".join(STAFF_HEADER) + "\r\n").encode("utf-16-le"),
        "auto",
        "行 1",
    ),
    "lone-surrogate-bytes": (
        _text_file(_row(GOOD[0])).replace("見本".encode(), b"\xed\xa0\x80"),
        "utf-8",
        "として読めない文字があります",
    ),
    "truncated-mid-character": (
        _text_file(_row(GOOD[0], name="見本 太郎")).split("太郎".encode())[0] + "太".encode()[:2],
        "utf-8",
        "として読めない文字があります",
    ),
    "truncated-inside-quotes": (
        (",".join(STAFF_HEADER) + '\r\nE00001,"見本 太郎\r\n').encode("utf-8"),
        "auto",
        "CSV の形式が正しくありません",
    ),
    "oversize-cell": (
        _text_file(_row(GOOD[0], name="あ" * 70_000)),
        "auto",
        "長すぎる値",
    ),
    "empty-file": (b"", "auto", "ファイルが空です"),
    "bom-only": (b"\xef\xbb\xbf", "auto", "見出し"),
    "png-named-csv": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "auto", "行 1"),
    "header-replaced-by-sql": (
        b"id; DROP TABLE person; --\r\n1\r\n",
        "auto",
        "見出し",
    ),
    "ten-thousand-columns": (
        (",".join(STAFF_HEADER) + "\r\n" + ",".join(["x"] * 10_000) + "\r\n").encode(),
        "auto",
        "行 2",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FILES))
def test_a_hostile_file_is_refused_whole_with_a_line_and_reason(session, vault, case):
    data, encoding, phrase = HOSTILE_FILES[case]
    before = counts(Person, MyNumberRecord)
    report = _import(session, vault, data, encoding)
    assert not report.ok and not report.committed
    text = "\n".join(str(p) for p in report.problems)
    assert phrase in text, text
    assert text.startswith("行 "), text
    assert "Traceback" not in text
    assert counts(Person, MyNumberRecord) == before
    assert audit_events("numbers.import", "failure"), "the refused import is audited"


def test_a_number_hidden_in_a_name_by_zero_width_spaces_is_refused(app, session, vault):
    """``1\u200b2\u200b3…`` looks like a name to a twelve-digit check but is a number on
    screen: it must never be stored as plaintext in the name column (invariant 1)."""
    hidden = "\u200b".join(GOOD[1])
    report = _import(session, vault, _text_file(_row(GOOD[0], name=f"見本 {hidden}")))
    assert not report.ok
    assert str(report.problems[0]) == "行 2: 職員氏名: 制御文字が含まれています"
    assert count(Person) == 0 and leaks(app, [GOOD[1]]) == []


# Disguised digits in the number column: invisible or look-alike characters are refused,
# never silently dropped (a dropped character could turn two numbers into one).
DISGUISED_NUMBERS = {
    "zero-width-space": lambda n: n[:4] + "\u200b" + n[4:],
    "zero-width-joiner": lambda n: n[:6] + "\u200d" + n[6:],
    "rtl-override": lambda n: "\u202e" + n,
    "combining-acute": lambda n: n[:3] + "\u0301" + n[3:],
    "arabic-indic-digits": lambda n: n[:11] + "٣",
    "superscript-digit": lambda n: n[:11] + "³",
    "bom-inside": lambda n: n[:5] + "\ufeff" + n[5:],
    "thirteen-digits": lambda n: n + "0",
}


@pytest.mark.parametrize("trick", sorted(DISGUISED_NUMBERS))
def test_a_disguised_number_is_refused_and_nothing_is_stored(session, vault, trick):
    number = DISGUISED_NUMBERS[trick](GOOD[1])
    report = _import(
        session, vault, _text_file(_row(GOOD[0], code="E00001"), _row(number, code="E00002"))
    )
    assert not report.ok
    assert [str(p) for p in report.problems][0].startswith("行 3: マイナンバー: ")
    assert count(Person) == 0 and count(MyNumberRecord) == 0


def test_full_width_digits_and_hyphens_are_the_same_number(session, vault):
    """The one Unicode variant that is meant to work: a number typed in full width."""
    wide = GOOD[2].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    wide = f"{wide[:4]}－{wide[4:8]}－{wide[8:]}"
    report = _import(session, vault, _text_file(_row(wide)))
    assert report.ok and report.committed and report.created == 1
    again = _import(session, vault, _text_file(_row(GOOD[2], code="E00009")))
    assert not report.problems and again.ok is False  # the same number for someone else
    assert "行 2: マイナンバー: " in str(again.problems[0])


@pytest.mark.parametrize(
    "name",
    [
        "Robert'); DROP TABLE person;--",
        "' OR '1'='1",
        '"; DELETE FROM my_number_record WHERE ""="',
        "見本\\'; SELECT pg_sleep(5);--",
    ],
)
def test_sql_in_a_name_is_stored_as_text_and_the_tables_survive(session, vault, name):
    report = _import(session, vault, _text_file(_row(GOOD[3], name=name)))
    assert report.ok and report.committed
    session.expire_all()
    stored = session.query(Person).one()
    assert stored.name == name
    assert count(MyNumberRecord) == 1


@pytest.mark.parametrize(
    "control", ["\x1b[31m", "\u202e", "\u2066", "\x7f", "\x85", "\u200b", "\u200f", "\ufeff"]
)
def test_control_and_bidi_characters_in_a_name_are_refused(session, vault, control):
    report = _import(session, vault, _text_file(_row(GOOD[4], name=f"見本{control}太郎")))
    assert not report.ok
    assert str(report.problems[0]) == "行 2: 職員氏名: 制御文字が含まれています"
    assert count(Person) == 0


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_formula_cells_imported_are_neutralised_in_every_export(app, session, vault):
    """A name that starts like a formula goes in as text and comes out with a ``'`` in front,
    so Excel shows it instead of running it (CWE-1236); importing the export gives it back."""
    rows = [
        _row(n, name=f, code=f"E{i:05d}")
        for i, (n, f) in enumerate(zip(numbers(len(FORMULAS), seed=809), FORMULAS, strict=True))
    ]
    # A name may not hold control characters: the \t and \r ones are refused (the whole
    # file with them), the rest import as text.
    report = _import(session, vault, _text_file(*rows))
    assert {p.line for p in report.problems} == {6, 7}, [str(p) for p in report.problems]
    assert count(Person) == 0
    printable = [r for r in rows if r[1][0] not in "\t\r"]
    assert _import(session, vault, _text_file(*printable)).committed
    out = io.BytesIO()
    exports.export_csv(
        session, vault, SHELL, layouts.get(session, "staff"), out, purpose="敵対的入力の確認"
    )
    cells = [row[1] for row in csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig")))][1:]
    assert sorted(cells) == sorted("'" + r[1] for r in printable)
    assert all(c[0] == "'" and c[1] in FORMULA_START for c in cells)
    # What was exported imports back unchanged (the prefix is undone, and only that).
    again = _import(session, vault, out.getvalue())
    assert again.ok and again.skipped == len(printable)


# -- through the screen --------------------------------------------------------------------
def _upload(client, data: bytes, layout_id: str, filename: str = "社員.csv"):
    token = csrf_token(client, "/io/import/")
    return client.post(
        "/io/import/",
        data={
            "layout": layout_id,
            "encoding": "auto",
            "file": (io.BytesIO(data), filename),
            "csrf_token": token,
        },
        content_type="multipart/form-data",
    )


def test_the_import_screen_lists_problems_of_a_nul_file_in_japanese(client, session, signed_in):
    signed_in("ClientStaff")
    data = HOSTILE_FILES["nul-byte-in-name"][0]
    response = _upload(client, data, str(layouts.get(session, "staff").id))
    assert_clear_refusal(response, "行 2: 職員氏名: 制御文字が含まれています", status=200)
    assert count(Person) == 0


def test_an_upload_over_the_size_limit_gets_a_japanese_413(app, client, session, signed_in):
    signed_in("ClientStaff")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    data = _text_file(*[_row(n, code=f"E{i:05d}") for i, n in enumerate(numbers(2000, seed=7))])
    assert len(data) > 64 * 1024
    response = _upload(client, data, str(layouts.get(session, "staff").id))
    assert_clear_refusal(response, "ファイルが大きすぎます", status=413)
    assert count(Person) == 0


def test_a_traversal_file_name_never_reaches_the_disk_or_the_audit_log(
    app, client, session, signed_in
):
    """The file name is only a label: it is cut to its last part, never used as a path."""
    signed_in("ClientStaff")
    response = _upload(
        client,
        _text_file(_row(GOOD[5])),
        str(layouts.get(session, "staff").id),
        filename="../../../../etc/passwd",
    )
    assert_clear_refusal(response, "取り込めます", status=200)
    assert count(Person) == 0  # a preview stores nothing
    event = audit_events("numbers.import_check")[-1]
    assert "../" not in event.details and "passwd" in event.details
    assert leaks(app, [GOOD[5]]) == []


def test_a_stored_script_name_is_escaped_on_the_person_page(client, session, vault, signed_in):
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert _import(session, vault, _text_file(_row(GOOD[0], name=name))).committed
    person = session.query(Person).one()
    signed_in("ClientStaff")
    html = client.get(f"/people/{person.id}").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html
