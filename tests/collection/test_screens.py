"""The collection screens as a browser uses them: the client's campaign pages (create, upload
with the error report, letters, chart, CSV), the operator's sending, printing, paper intake
with blind double keying by two signed-in operators, and the verification queue. Who may not
see them cannot; no number is ever echoed into a page."""

import io
import re

import pytest
from sqlalchemy import select

from app.access.policy import AUDITOR, CLIENT_STAFF, OPERATOR
from app.collection import campaigns
from app.models import Campaign, CollectionRequest, RequestStatus
from tests import support
from tests.collection import flows
from tests.collection.conftest import (
    EMPLOYEE_CSV,
    NUMBER_ICHIRO,
    NUMBER_WRONG,
    future_business_day,
    jpeg,
)
from tests.conftest import ADMIN_PASSWORD


def _sign_in(client, make_user, login, role):
    client.get("/logout/")
    user, secret = make_user(role)
    response = login(user.username, totp_secret=secret)
    assert response.status_code == 302
    return user


def _post(client, url, data, token_from, **kwargs):
    return support.post_form(client, url, data, token_from=token_from, **kwargs)


def _campaign_id(client, name):
    page = client.get("/campaigns/").get_data(as_text=True)
    match = re.search(r'href="/campaigns/(\d+)">' + re.escape(name), page)
    assert match, page
    return match.group(1)


def test_client_staff_orders_and_follows_a_campaign(app, session, client, make_user, login):
    _sign_in(client, make_user, login, CLIENT_STAFF)
    listing = client.get("/campaigns/")
    assert listing.status_code == 200 and "新しいキャンペーン" in listing.get_data(as_text=True)
    template = client.get("/campaigns/template/employee.csv")
    assert template.data.startswith("\ufeff職員番号,本人区分,続柄,氏名".encode())

    # Bad input: each refused with a Japanese message naming the field.
    for data, message in (
        (
            {"name": "", "kind": "employee", "deadline": "2030-01-10", "purpose_text": "x"},
            "名称: 入力してください",
        ),
        (
            {"name": "a", "kind": "employee", "deadline": "2001-01-10", "purpose_text": "x"},
            "過去の日付",
        ),
        ({"name": "a", "kind": "employee", "deadline": "来週", "purpose_text": "x"}, "日付の形式"),
        (
            {"name": "a", "kind": "external", "deadline": "2030-01-10", "purpose_text": "x"},
            "対象月",
        ),
        ({"name": "a", "kind": "nobody", "deadline": "2030-01-10", "purpose_text": "x"}, "対象:"),
    ):
        response = _post(client, "/campaigns/create", data, "/campaigns/", follow_redirects=True)
        assert message in response.get_data(as_text=True), message
    assert session.execute(select(Campaign)).first() is None

    deadline = future_business_day()
    response = _post(
        client,
        "/campaigns/create",
        {
            "name": "役職員 2026",
            "kind": "employee",
            "deadline": deadline.isoformat(),
            "purpose_text": "源泉徴収票作成事務",
        },
        "/campaigns/",
    )
    assert response.status_code == 302
    cid = _campaign_id(client, "役職員 2026")
    page_url = f"/campaigns/{cid}"

    # An upload with problems: every one listed by line, nothing loaded.
    bad = EMPLOYEE_CSV.replace("1985/01/02", "1985/02/30").replace("taro@example.jp", "taro@") + (
        "E9999,扶養親族,子,孤立 花子,,2010/01/01,,,,\r\n"
    )
    response = _post(
        client,
        f"{page_url}/targets",
        {"file": (io.BytesIO(bad.encode("utf-8")), "targets.csv")},
        page_url,
        content_type="multipart/form-data",
    )
    # Checked by a job: the answer is the upload's own page (progress, then the result).
    assert response.status_code == 302
    assert re.fullmatch(rf"{page_url}/targets/[0-9a-f-]{{36}}", response.headers["Location"])
    response = client.get(response.headers["Location"])
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "3 件の問題があるため、登録しませんでした" in html
    assert "行 2: 生年月日: 存在しない日付です" in html
    assert "行 2: メールアドレス: メールアドレスの形式が正しくありません" in html
    assert "行 5: 職員番号: 扶養者（本人区分「本人」の行）がこのファイルにありません" in html
    assert session.execute(select(CollectionRequest)).first() is None
    response = _post(
        client,
        f"{page_url}/targets",
        {},
        page_url,
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "空のファイル" in response.get_data(as_text=True)

    # The good file.
    response = _post(
        client,
        f"{page_url}/targets",
        {"file": (io.BytesIO(EMPLOYEE_CSV.encode("utf-8-sig")), "targets.csv")},
        page_url,
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "依頼 2 件（メール 1・郵送 1）" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html  # the chart, drawn on the server
    assert re.search(r'id="count-created">2<', html)
    assert "未送付の依頼を送付する" not in html  # sending is the operator's

    # Letters: a bad placeholder is refused, a good text saved.
    letters_url = f"{page_url}/letters"
    response = _post(
        client,
        letters_url,
        {"kind": "request_email", "subject": "件名", "body": "{氏名} 様 {口座番号}"},
        letters_url,
    )
    assert response.status_code == 422 and "「{口座番号}」" in response.get_data(as_text=True)
    response = _post(
        client,
        letters_url,
        {"kind": "request_email", "subject": "件名", "body": "{氏名} 様"},
        letters_url,
    )
    assert "{リンク} が必要です" in response.get_data(as_text=True)
    response = _post(
        client,
        letters_url,
        {
            "kind": "request_email",
            "subject": "【見本機構】ご提出のお願い",
            "body": "{氏名} 様\n{リンク}\n{期限}まで",
        },
        letters_url,
    )
    assert response.status_code == 302
    assert campaigns.letter(session, int(cid), "request_email")[0] == "【見本機構】ご提出のお願い"

    # Statuses as CSV (UTF-8 with BOM, names but no numbers) and a request's timeline.
    csv_bytes = client.get(f"{page_url}/statuses.csv").data
    assert csv_bytes.startswith("\ufeff依頼コード,区分".encode())
    assert "見本 太郎" in csv_bytes.decode("utf-8-sig") and "作成" in csv_bytes.decode("utf-8-sig")
    req = session.execute(select(CollectionRequest)).scalars().first()
    timeline = client.get(f"/campaigns/request/{req.id}").get_data(as_text=True)
    assert "作成（リンク発行）" in timeline and "見本 太郎" in timeline

    # The collection work itself is not the client's.
    for url in ("/verification/", "/paper/", "/mailings/"):
        assert client.get(url).status_code in (302, 403), url
    response = _post(client, f"{page_url}/dispatch", {}, page_url)
    assert response.status_code in (302, 403)
    assert session.execute(select(CollectionRequest.sent_at)).scalars().first() is None


def test_operator_sends_prints_keys_and_verifies_on_screen(
    app, session, client, make_user, login, staff, smtp_server, needs_pdf
):
    app.config["SMTP_URL"] = smtp_server.url
    campaign, _ = flows.campaign_with_targets(app, staff, kind="external")
    page_url = f"/campaigns/{campaign.id}"
    first = _sign_in(client, make_user, login, OPERATOR)
    support.assign_operator(session, campaign, first.id)  # the client names who works it

    assert _post(client, f"{page_url}/dispatch", {}, page_url).status_code == 302
    response = _post(client, f"{page_url}/print", {}, page_url, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "印刷バッチ" in html and "PDF 1（1〜1通目" in html
    pdf_url = re.search(r'href="(/mailings/batch/\d+/1\.pdf)"', html).group(1)
    pdf_bytes = client.get(pdf_url).data
    assert pdf_bytes.startswith(b"%PDF")
    posted_url = re.search(r'action="(/mailings/batch/\d+/posted)"', html).group(1)
    response = _post(
        client,
        posted_url,
        {"posted_on": "明日", "carrier": "日本郵便", "method": "定形外郵便（規格内）"},
        "/mailings/",
        follow_redirects=True,
    )
    assert "発送日: 日付の形式" in response.get_data(as_text=True)
    response = _post(
        client,
        posted_url,
        {
            "posted_on": campaigns.jptime.today_jst().isoformat(),
            "carrier": "日本郵便",
            "method": "定形外郵便（規格内）",
        },
        "/mailings/",
    )
    # One press asks first: the print files are deleted when the batch is posted.
    confirm = response.get_data(as_text=True)
    assert "発送済みにしますか" in confirm and "印刷ファイル（PDF）は削除され" in confirm
    assert client.get(pdf_url).status_code == 200
    response = _post(
        client,
        posted_url,
        {
            "posted_on": campaigns.jptime.today_jst().isoformat(),
            "carrier": "日本郵便",
            "method": "定形外郵便（規格内）",
            "confirmed": "1",
        },
        "/mailings/",
        follow_redirects=True,
    )
    assert "1 通を発送済み" in response.get_data(as_text=True)
    assert client.get(pdf_url).status_code == 302  # the printed file is gone

    # The envelope comes back.
    req = flows.request_of("X2001")
    response = _post(
        client,
        "/paper/receive",
        {
            "request_code": "R-0000-0000",
            "received_on": "2026-01-01",
            "carrier": "日本郵便",
            "method": "特定記録郵便",
        },
        "/paper/",
        follow_redirects=True,
    )
    assert "該当する依頼がありません" in response.get_data(as_text=True)
    response = _post(
        client,
        "/paper/receive",
        {
            "request_code": req.request_code,
            "tracking_number": "1234 5678 9012",
            "received_on": campaigns.jptime.today_jst().isoformat(),
            "carrier": "日本郵便",
            "method": "特定記録郵便",
        },
        "/paper/",
    )
    item_url = response.headers["Location"]
    ref = str(req.person_id)
    response = _post(
        client,
        f"{item_url}/scan",
        {"ref": ref, "doc_type": "card_front", "file": (io.BytesIO(b"not an image"), "x.jpg")},
        item_url,
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "対応していない形式" in response.get_data(as_text=True)
    for doc_type in ("application_form", "card_front", "card_back"):
        response = _post(
            client,
            f"{item_url}/scan",
            {"ref": ref, "doc_type": doc_type, "file": (io.BytesIO(jpeg()), "scan.jpg")},
            item_url,
            content_type="multipart/form-data",
        )
        assert response.status_code == 302
    bodies = []
    bad = NUMBER_ICHIRO[:-1] + str((int(NUMBER_ICHIRO[-1]) + 1) % 10)
    response = _post(
        client, f"{item_url}/key", {"ref": ref, "number": bad}, item_url, follow_redirects=True
    )
    bodies.append(response.data)
    assert "数字がどこか違って" in response.get_data(as_text=True)
    response = _post(
        client,
        f"{item_url}/key",
        {"ref": ref, "number": NUMBER_ICHIRO},
        item_url,
        follow_redirects=True,
    )
    bodies.append(response.data)
    assert "2回目の入力" in response.get_data(as_text=True)
    assert 'name="number"' not in response.get_data(
        as_text=True
    )  # no second keying by the same person

    # A second operator keys blind: a mismatch; a third settles it.
    _sign_in(client, make_user, login, OPERATOR)
    page = client.get(item_url)
    bodies.append(page.data)
    assert 'name="number"' in page.get_data(as_text=True)
    response = _post(
        client,
        f"{item_url}/key",
        {"ref": ref, "number": NUMBER_WRONG},
        item_url,
        follow_redirects=True,
    )
    bodies.append(response.data)
    assert "入力が一致しません" in response.get_data(as_text=True)
    third = _sign_in(client, make_user, login, OPERATOR)
    support.assign_operator(session, campaign, third.id)  # this one verifies below
    response = _post(
        client,
        f"{item_url}/key",
        {"ref": ref, "number": NUMBER_ICHIRO},
        item_url,
        follow_redirects=True,
    )
    bodies.append(response.data)
    assert "2人の入力が一致しました" in response.get_data(as_text=True)
    response = _post(client, f"{item_url}/finish", {}, item_url, follow_redirects=True)
    assert "確認待ちに登録しました" in response.get_data(as_text=True)

    # Verification on screen: claim, open (the number shown to the claimer only), accept.
    queue = client.get("/verification/").get_data(as_text=True)
    claim_url = re.search(r'action="(/verification/claim/[^"]+)"', queue).group(1)
    _post(client, claim_url, {}, "/verification/")
    queue = client.get("/verification/").get_data(as_text=True)
    open_url = re.search(r'action="(/verification/case/\d+/open)"', queue).group(1)
    opened = _post(client, open_url, {"purpose": "番号確認・身元確認"}, "/verification/")
    html = opened.get_data(as_text=True)
    assert f"{NUMBER_ICHIRO[:4]} {NUMBER_ICHIRO[4:8]} {NUMBER_ICHIRO[8:]}" in html
    assert html.count('src="data:image/jpeg;base64,') == 3
    accept_url = re.search(r'action="(/verification/case/\d+/accept)"', html).group(1)
    response = _post(client, accept_url, {"ref": ref}, "/verification/", follow_redirects=True)
    assert "確認した書類の組み合わせを選んでください" in response.get_data(as_text=True)
    response = _post(
        client,
        accept_url,
        {"ref": ref, f"combination-{ref}": "card", f"number-{ref}": "1", f"identity-{ref}": "1"},
        "/verification/",
        follow_redirects=True,
    )
    assert "1 人の個人番号をマイナンバーデータベースに登録" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(CollectionRequest, req.id).status == RequestStatus.COMPLETED
    # Someone who did not claim it could not have opened it.
    other = _sign_in(client, make_user, login, OPERATOR)
    assert other.id != first.id
    response = _post(client, open_url, {}, "/paper/", follow_redirects=True)
    assert "担当していないため操作できません" in response.get_data(as_text=True)
    for body in bodies:
        for form in support.number_forms(NUMBER_ICHIRO) + support.number_forms(NUMBER_WRONG):
            assert form not in body
    assert support.leaks(app, [NUMBER_ICHIRO, NUMBER_WRONG]) == []


@pytest.mark.parametrize("role", ["SystemAdmin", AUDITOR])
def test_no_collection_screen_for_admins_and_auditors(
    app, session, client, make_user, login, staff, role
):
    campaign, _ = flows.campaign_with_targets(app, staff)
    if role == "SystemAdmin":
        login("admin", ADMIN_PASSWORD)
        assert client.get("/users/list/").status_code == 200  # signed in for real
    else:
        _sign_in(client, make_user, login, role)
    for url in (
        "/campaigns/",
        f"/campaigns/{campaign.id}",
        f"/campaigns/{campaign.id}/statuses.csv",
        "/campaigns/template/employee.csv",
        "/verification/",
        "/paper/",
        "/mailings/",
    ):
        response = client.get(url)
        assert response.status_code in (302, 403), url
        assert "見本 太郎" not in response.get_data(as_text=True)


def test_unknown_ids_are_404(app, client, make_user, login):
    _sign_in(client, make_user, login, OPERATOR)
    for url in (
        "/campaigns/999",
        "/campaigns/x",
        "/campaigns/request/nope",
        "/paper/nope",
    ):
        assert client.get(url).status_code == 404, url
    # The target list template is the client's (it places the order).
    assert client.get("/campaigns/template/x.csv").status_code == 403
    _sign_in(client, make_user, login, CLIENT_STAFF)
    assert client.get("/campaigns/template/x.csv").status_code == 404


def test_client_staff_assign_and_remove_operators_on_the_campaign_page(
    app, session, client, make_user, login, staff
):
    from app.access import assignments

    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    operator, _secret = make_user(OPERATOR)
    page_url = f"/campaigns/{campaign.id}"
    _sign_in(client, make_user, login, CLIENT_STAFF)
    page = client.get(page_url).get_data(as_text=True)
    assert "担当事務取扱担当者" in page and "まだ割り当てられていません" in page
    assert f'<option value="{operator.id}">{operator.username}</option>' in page
    response = _post(
        client, f"{page_url}/assign", {"user_id": str(operator.id)}, page_url, follow_redirects=True
    )
    html = response.get_data(as_text=True)
    assert f"{operator.username} をこのキャンペーンの担当に割り当てました" in html
    assert assignments.is_assigned(session, operator.id, campaign.id)
    response = _post(
        client,
        f"{page_url}/unassign",
        {"user_id": str(operator.id)},
        page_url,
        follow_redirects=True,
    )
    assert "担当を解除しました" in response.get_data(as_text=True)
    assert not assignments.is_assigned(session, operator.id, campaign.id)
    # An Operator sees who works the campaign but gets no assignment form, and a hand-made
    # POST is refused.
    _sign_in(client, make_user, login, OPERATOR)
    page = client.get(page_url).get_data(as_text=True)
    assert "担当事務取扱担当者" in page and "担当に割り当てる" not in page
    response = _post(
        client, f"{page_url}/assign", {"user_id": str(operator.id)}, "/resetmypassword/form"
    )
    assert response.status_code == 403
    assert not assignments.is_assigned(session, operator.id, campaign.id)


def test_an_added_dependent_reads_with_its_relation_once_on_the_paper_page(
    app, session, client, make_user, login, staff
):
    campaign, _ = flows.campaign_with_targets(app, staff)
    operator = _sign_in(client, make_user, login, OPERATOR)
    support.assign_operator(session, campaign, operator.id)
    req = flows.request_of("E1002")
    response = _post(
        client,
        "/paper/receive",
        {
            "request_code": req.request_code,
            "received_on": campaigns.jptime.today_jst().isoformat(),
            "carrier": "日本郵便",
            "method": "特定記録郵便",
        },
        "/paper/",
    )
    item_url = response.headers["Location"]
    for name in ("見本 花", "見本 実"):
        response = _post(
            client,
            f"{item_url}/dependent",
            {"name": name, "kana": "", "relation": "子", "birth_date": "2019-04-01"},
            item_url,
            follow_redirects=True,
        )
    html = response.get_data(as_text=True)
    assert "追加した扶養親族 1人目（子）" in html and "追加した扶養親族 2人目（子）" in html
    assert "（子）（子）" not in html
