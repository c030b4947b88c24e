"""The 保管・廃棄 screens through a browser's eyes: who sees what, and the whole workflow."""

import re
import uuid

import pyotp
import pytest
from sqlalchemy import select

from app.models import AuditEvent, DisposalRequest, Person
from app.vault import sealed
from tests.conftest import ADMIN_PASSWORD
from tests.lifecycle.helpers import population
from tests.support import post_form, unused_totp_code


def _sign_in(client, make_user, login, role, **kwargs):
    user, secret = make_user(role, **kwargs)
    client.get("/logout/")
    login(user.username, totp_secret=secret)
    return user, secret


def test_request_approve_execute_and_certify_through_the_portal(
    client, make_user, login, session, vault, app
):
    crowd = population(session, vault, n=4)
    codes = "\n".join(f"{s.code}-00" for s in crowd[:2])
    names = [s.name for s in crowd]
    session.commit()

    operator, _ = _sign_in(client, make_user, login, "Operator")
    page = client.get("/disposal/new").get_data(as_text=True)
    assert "廃棄を申請する" in page
    response = post_form(
        client,
        "/disposal/new",
        {"scope": "people", "codes": codes, "reason": "退職後の保存期間満了"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    rid = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    detail = client.get(f"/disposal/{rid}").get_data(as_text=True)
    assert names[0] in detail and names[1] in detail and "承認待ち" in detail
    assert "承認する" not in detail  # the requester is not offered the approval
    bad = post_form(
        client, "/disposal/new", {"scope": "people", "codes": "NOPE-00", "reason": "x"}
    ).get_data(as_text=True)
    assert "1行目: 該当する人物が見つかりません" in bad

    staff, secret = _sign_in(client, make_user, login, "ClientStaff")
    wrong = f"{(int(pyotp.TOTP(secret).now()) + 1) % 1000000:06d}"
    response = post_form(
        client,
        f"/disposal/{rid}/decide",
        {"decision": "approve", "code": wrong},
        token_from=f"/disposal/{rid}",
    )
    assert "確認コード（TOTP）が正しくありません" in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    response = post_form(
        client,
        f"/disposal/{rid}/decide",
        # The code typed at sign-in is spent: the approval needs one of a later time step.
        {
            "decision": "approve",
            "code": unused_totp_code(app, staff.username, secret),
            "note": "承認します",
        },
        token_from=f"/disposal/{rid}",
    )
    assert "承認済み" in client.get(response.headers["Location"]).get_data(as_text=True)

    _sign_in(client, make_user, login, "Operator")
    session.commit()  # no open transaction of ours may hold the old rows (compaction waits)
    response = post_form(client, f"/disposal/{rid}/execute", {}, token_from=f"/disposal/{rid}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 名を廃棄しました" in page and "廃棄済み" in page
    assert names[0] not in page and names[2] not in page
    session.expire_all()
    req = session.get(DisposalRequest, uuid.UUID(rid))
    assert req.status == "executed" and req.compacted_at is not None
    assert session.get(Person, crowd[0].id).status == "disposed"
    assert session.get(Person, crowd[2].id).status == "active"

    auditor, secret = make_user("Auditor", roster=None)
    client.get("/logout/")
    login(auditor.username, totp_secret=secret)
    listing = client.get("/certificates/").get_data(as_text=True)
    assert req.certificate_no in listing
    csv_response = client.get(f"/certificates/{rid}.csv")
    assert csv_response.status_code == 200
    assert "attachment" in csv_response.headers["Content-Disposition"]
    assert str(crowd[0].id) in csv_response.get_data().decode("utf-8-sig")
    assert client.get(f"/disposal/{rid}").status_code == 403  # names: not for auditors
    actions = [e.action for e in session.execute(select(AuditEvent)).scalars()]
    for action in (
        "disposal.requested",
        "disposal.approved",
        "disposal.executed",
        "disposal.storage_compacted",
        "certificate.download",
    ):
        assert action in actions
    assert staff and operator


def test_system_admin_sees_none_of_the_personal_screens(client, login):
    login("admin", ADMIN_PASSWORD)
    for url in ("/retention/", "/disposal/", "/disposal/new", "/return/"):
        assert client.get(url).status_code == 403, url
    menu = client.get("/").get_data(as_text=True)
    assert "保管期限" not in menu and "廃棄申請" not in menu and "返却データ" not in menu


def test_retention_screen_lists_who_is_due(client, make_user, login, session, vault):
    import datetime as dt

    from app.lifecycle import retention

    crowd = population(session, vault, n=2)
    session.get(Person, crowd[0].id).ended_on = dt.date(2010, 3, 31)
    session.commit()
    retention.recompute(session)
    session.commit()
    _sign_in(client, make_user, login, "ClientStaff")
    page = client.get("/retention/").get_data(as_text=True)
    assert crowd[0].name in page and crowd[1].name not in page
    assert "削除予定日を過ぎた 1 名の廃棄を申請する" in page
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "retention.view")
    ).scalar_one()


def test_return_archive_from_the_portal(client, make_user, login, session, vault, app, tmp_path):
    crowd = population(session, vault, n=2)
    session.commit()
    private_text, public_text = sealed.generate_recipient()
    _sign_in(client, make_user, login, "Operator")
    assert client.get("/return/").status_code == 403
    staff, secret = _sign_in(client, make_user, login, "ClientStaff")
    refused = post_form(
        client,
        "/return/create",
        {"purpose": "返却", "public_key": public_text, "code": "000000"},
        token_from="/return/",
    )
    assert "確認コード" in client.get(refused.headers["Location"]).get_data(as_text=True)
    response = post_form(
        client,
        "/return/create",
        {
            "purpose": "契約終了に伴う返却",
            "public_key": public_text,
            "code": unused_totp_code(app, staff.username, secret),
        },
        token_from="/return/",
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "作成済み" in page
    link = re.search(r'href="(/return/[0-9a-f-]+/download)"', page).group(1)
    download = client.get(link)
    assert download.status_code == 200
    archive = tmp_path / "r.mnva"
    archive.write_bytes(download.get_data())
    opened = sealed.open_archive(
        archive,
        sealed.load_private(private_text),
        tmp_path / "o",
        operator_key=vault.keys.audit_signing_key().public_key(),
    )
    assert crowd[0].number in (opened.folder / "people_staff.csv").read_text(encoding="utf-8-sig")
    assert crowd[0].number not in page


@pytest.mark.parametrize("path", ["/disposal/not-a-uuid", "/certificates/x.pdf"])
def test_bad_ids_are_404(client, make_user, login, path):
    _sign_in(client, make_user, login, "ClientStaff")
    assert client.get(path).status_code == 404
