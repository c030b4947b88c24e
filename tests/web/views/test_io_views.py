"""CSV screens through the browser's eyes: preview then confirm, one-time downloads, refusals."""

import csv
import io
import json
import re

import pytest
from sqlalchemy import func, select

from app.io import layouts
from app.models import AuditEvent, IoTicket, Person
from tests.conftest import ADMIN_PASSWORD
from tests.io.helpers import STAFF_HEADER, csv_bytes, staff_rows
from tests.support import csrf_token, leaks, post_form


def signed_in(make_user, login, role, **kwargs):
    user, secret = make_user(role, **kwargs)
    login(user.username, totp_secret=secret)
    return user


def upload(client, url, data: bytes, fields: dict, token_from=None):
    token = csrf_token(client, token_from or url)
    return client.post(
        url,
        data={**fields, "file": (io.BytesIO(data), "社員.csv"), "csrf_token": token},
        content_type="multipart/form-data",
    )


def people_count(session):
    session.expire_all()
    return session.execute(select(func.count()).select_from(Person)).scalar_one()


def staff_id(session):
    return str(layouts.get(session, "staff").id)


def test_client_staff_previews_problems_then_imports_after_confirming(
    app, client, make_user, login, session
):
    signed_in(make_user, login, "ClientStaff")
    rows = staff_rows(5, dependents=1, seed=51)
    numbers_used = [r[5] for r in rows]
    bad = [r[:] for r in rows]
    bad[2][5] = bad[2][5][:11] + str((int(bad[2][5][11]) + 1) % 10)
    html = upload(
        client,
        "/io/import/",
        csv_bytes(STAFF_HEADER, bad, "cp932"),
        {"layout": staff_id(session), "encoding": "auto"},
    ).get_data(as_text=True)
    assert "行 4: マイナンバー: 番号の数字がどこか違っています" in html
    assert "この内容で取り込む" not in html
    assert not any(n[:8] in html for n in numbers_used)
    assert people_count(session) == 0

    html = upload(
        client,
        "/io/import/",
        csv_bytes(STAFF_HEADER, rows, "cp932"),
        {"layout": staff_id(session), "encoding": "auto"},
    ).get_data(as_text=True)
    assert "取り込めます: 新規 10 人" in html and "Shift_JIS（CP932）" in html
    assert people_count(session) == 0
    ticket = re.search(r'name="ticket" type="hidden" value="([^"]+)"', html).group(1)
    assert session.execute(select(func.count()).select_from(IoTicket)).scalar_one() == 1
    assert leaks(app, numbers_used) == []  # the waiting upload is sealed

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    done = client.post("/io/import/confirm", data={"ticket": ticket, "csrf_token": token})
    assert "取り込みました: 新規 10 人" in done.get_data(as_text=True)
    assert people_count(session) == 10
    assert session.execute(select(func.count()).select_from(IoTicket)).scalar_one() == 0
    again = client.post("/io/import/confirm", data={"ticket": ticket, "csrf_token": token})
    assert again.status_code == 302 and people_count(session) == 10
    assert leaks(app, numbers_used) == []


@pytest.mark.parametrize("role", ["Operator", "Auditor"])
def test_only_client_staff_see_the_import_screen(client, make_user, login, role):
    signed_in(make_user, login, role, **({"roster": None} if role == "Auditor" else {}))
    assert client.get("/io/import/").status_code == 403


@pytest.fixture
def stored(session, vault):
    from app.access.policy import ShellActor
    from app.io import imports

    rows = staff_rows(4, dependents=1, seed=52)
    report = imports.import_csv(
        session,
        vault,
        ShellActor(name="cli:t"),
        io.BytesIO(csv_bytes(STAFF_HEADER, rows)),
        layouts.get(session, "staff"),
    )
    assert report.ok
    return rows


def test_client_staff_downloads_an_export_once_with_a_purpose(
    client, make_user, login, session, stored, app
):
    signed_in(make_user, login, "ClientStaff")
    refused = post_form(
        client, "/io/export/", {"layout": staff_id(session), "encoding": "", "purpose": ""}
    )
    assert "利用目的を入力してください" in refused.get_data(as_text=True)
    response = post_form(
        client,
        "/io/export/",
        {"layout": staff_id(session), "encoding": "cp932", "purpose": "年末調整"},
    )
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.get_data().decode("cp932"))))
    assert sorted(rows[1:]) == sorted(stored)
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "numbers.export")
    ).scalar_one()
    assert event.purpose == "年末調整" and len(json.loads(event.object_ids)) == 8
    assert leaks(app, [r[5] for r in stored]) == []


@pytest.mark.parametrize("role", ["Operator", "Auditor"])
def test_operator_and_auditor_are_refused_export(client, make_user, login, session, stored, role):
    signed_in(make_user, login, role, **({"roster": None} if role == "Auditor" else {}))
    assert client.get("/io/export/").status_code == 403
    response = client.post("/io/export/", data={"layout": staff_id(session), "purpose": "x"})
    assert response.status_code in (400, 403)
    assert stored[0][5].encode() not in response.get_data()


def test_system_admin_sees_no_csv_menu_and_is_refused(client, login, session, stored):
    login("admin", ADMIN_PASSWORD)
    for url in ("/io/export/", "/io/import/", "/io/match/", "/records/new", "/io/layouts/"):
        assert client.get(url).status_code == 403, url
    menu = client.get("/").get_data(as_text=True)
    for name in ("CSV出力", "CSV取込", "一括照合", "人物の登録"):
        assert name not in menu


def test_bulk_match_report_then_one_download(client, make_user, login, session, stored):
    signed_in(make_user, login, "ClientStaff")
    keys = csv_bytes(
        ["職員番号", "生年月日"],
        [["E00001", "1980/04/01"], ["E00002", "2010/01/01"], ["E00099", "1980/04/01"]],
    )
    html = upload(
        client,
        "/io/match/",
        keys,
        {
            "layout": staff_id(session),
            "encoding": "",
            "key_encoding": "auto",
            "purpose": "支払調書",
        },
    ).get_data(as_text=True)
    assert "該当 2 人" in html and "E00099" in html and "該当する人物がいません" in html
    assert not any(r[5] in html for r in stored)
    ticket = re.search(r'name="ticket" type="hidden" value="([^"]+)"', html).group(1)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    download = client.post("/io/match/download", data={"ticket": ticket, "csrf_token": token})
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert rows[1:] == [stored[0], stored[3]]
    second = client.post("/io/match/download", data={"ticket": ticket, "csrf_token": token})
    assert second.status_code == 302
    actions = [
        e.action for e in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    ]
    assert actions.count("numbers.match") == 1 and actions.count("numbers.export") == 1


def test_layout_editor(client, make_user, login, session):
    signed_in(make_user, login, "ClientStaff")
    data = {"name": "年末調整用", "kind": "staff", "date_format": "wareki", "encoding": "cp932"}
    for i, (field, header) in enumerate(
        [("code", "社員番号"), ("name", "氏名"), ("number", "個人番号")]
    ):
        data[f"columns-{i}-field"] = field
        data[f"columns-{i}-header"] = header
    response = post_form(client, "/io/layouts/new", data)
    assert response.status_code == 302
    page = client.get("/io/layouts/").get_data(as_text=True)
    assert "年末調整用" in page and "社員番号,氏名,個人番号" in page and "出力のみ" in page
    saved = layouts.get(session, "年末調整用")
    assert saved.date_format == "wareki" and saved.encoding == "cp932"
    edit = client.get(f"/io/layouts/{saved.id}").get_data(as_text=True)
    assert 'value="社員番号"' in edit
    bad = post_form(client, f"/io/layouts/{saved.id}", {**data, "columns-1-field": "code"})
    assert "重複" in bad.get_data(as_text=True)
    gone = post_form(client, f"/io/layouts/{saved.id}/delete", {}, token_from="/io/layouts/")
    assert gone.status_code == 302
    session.expire_all()
    assert "年末調整用" not in layouts.all_names(session)


def test_uploads_never_spool_to_disk(app):
    big = b"x" * (2 * 1024 * 1024)
    with app.test_request_context(
        "/io/import/",
        method="POST",
        data={"file": (io.BytesIO(big), "big.csv")},
        content_type="multipart/form-data",
    ):
        from flask import request

        stream = request.files["file"].stream
        assert isinstance(stream, io.BytesIO) and len(stream.getvalue()) == len(big)


def test_a_ticket_is_used_once_by_its_owner_within_its_lifetime(app, session, vault, make_user):
    import datetime as dt

    from app.io import tickets
    from app.models import IoTicket

    user, _ = make_user("Operator")
    other, _ = make_user("Operator")
    layout_id = layouts.get(session, "staff").id
    ticket = tickets.create(session, vault, user.id, "import", layout_id, b"auto\npayload")
    stored = session.get(IoTicket, ticket)
    assert b"payload" not in stored.payload
    for who, purpose in ((other.id, "import"), (user.id, "match")):
        with pytest.raises(tickets.TicketError):
            tickets.take(session, vault, str(ticket), who, purpose)
    assert tickets.take(session, vault, str(ticket), user.id, "import") == (
        layout_id,
        b"auto\npayload",
    )
    with pytest.raises(tickets.TicketError):
        tickets.take(session, vault, str(ticket), user.id, "import")
    old = tickets.create(session, vault, user.id, "import", layout_id, b"x")
    session.get(IoTicket, old).expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    session.commit()
    with pytest.raises(tickets.TicketError):
        tickets.take(session, vault, str(old), user.id, "import")
    assert session.get(IoTicket, old) is None
