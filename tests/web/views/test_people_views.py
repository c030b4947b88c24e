"""照合 screens through the browser's eyes: who sees what, and the one audited reveal."""

import re

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.conftest import ADMIN_PASSWORD
from tests.support import SAMPLE_NUMBER, actor, add_household, hold_case, leaks, post_form

NUMBER = SAMPLE_NUMBER


@pytest.fixture
def person(session, vault):
    head, _child = add_household(session, vault, "見本 一郎", "子")
    return head


def _signed_in(make_user, login, role, **kwargs):
    user, secret = make_user(role, **kwargs)
    login(user.username, totp_secret=secret)
    return user


def test_client_staff_searches_sees_masked_and_reveals_with_purpose(
    client, make_user, login, person, session, app
):
    _signed_in(make_user, login, "ClientStaff")
    page = post_form(
        client, "/people/", {"birth_date": "昭和55年4月1日"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "見本 太郎" in page and "****-****-9018" in page and NUMBER not in page
    page = post_form(
        client, "/people/", {"number": f"{NUMBER[:4]}-{NUMBER[4:8]}-{NUMBER[8:]}"}
    ).get_data(as_text=True)
    assert "見本 太郎" in page and "9018" in page and NUMBER[:8] not in page
    detail = client.get(f"/people/{person.id}").get_data(as_text=True)
    assert "E0001-00" in detail and "E0001-01" in detail and "見本 一郎" in detail
    assert "1234 5678 9018" not in detail
    response = post_form(
        client,
        f"/people/{person.id}/reveal",
        {"purpose": "年末調整"},
        token_from=f"/people/{person.id}",
    )
    html = response.get_data(as_text=True)
    assert "1234 5678 9018" in html
    assert response.headers["Cache-Control"] == "no-store"
    event = (
        session.execute(select(AuditEvent).where(AuditEvent.action == "number.reveal"))
        .scalars()
        .one()
    )
    assert event.outcome == "success" and event.purpose == "年末調整"
    assert leaks(app, [NUMBER]) == []


def test_reveal_without_purpose_shows_a_message(client, make_user, login, person):
    _signed_in(make_user, login, "ClientStaff")
    response = post_form(
        client, f"/people/{person.id}/reveal", {"purpose": ""}, token_from=f"/people/{person.id}"
    )
    html = response.get_data(as_text=True)
    assert "利用目的を入力してください" in html and "1234 5678 9018" not in html


def test_bad_search_input_gets_a_japanese_message(client, make_user, login, person):
    _signed_in(make_user, login, "ClientStaff")
    html = post_form(client, "/people/", {"number": "1234"}).get_data(as_text=True)
    assert "個人番号は12桁です" in html
    html = post_form(
        client, "/people/", {"birth_date": "2001/02/30"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "存在しない日付" in html


def test_system_admin_is_refused_people_and_reveal(client, login, person):
    login("admin", ADMIN_PASSWORD)
    assert client.get("/people/").status_code == 403
    assert client.get(f"/people/{person.id}").status_code == 403
    response = client.post(f"/people/{person.id}/reveal", data={"purpose": "x"})
    assert response.status_code in (400, 403)
    assert "9018" not in response.get_data(as_text=True)
    menu = client.get("/").get_data(as_text=True)
    assert "人物検索" not in menu


def test_auditor_is_refused_people_but_reads_the_audit_log(client, make_user, login, person):
    _signed_in(make_user, login, "Auditor", roster=None)
    assert client.get("/people/").status_code == 403
    assert client.get("/auditlogview/list/").status_code == 200
    verify = client.get("/audit-verify/").get_data(as_text=True)
    assert "監査ログは完全です" in verify


def test_operator_without_a_case_sees_no_reveal(client, make_user, login, person, session):
    user = _signed_in(make_user, login, "Operator")
    detail = client.get(f"/people/{person.id}").get_data(as_text=True)
    assert "権限がありません" in detail
    # A hand-made POST (token taken from another form) is still refused by the service.
    response = post_form(
        client,
        f"/people/{person.id}/reveal",
        {"purpose": "確認"},
        token_from="/resetmypassword/form",
    )
    assert "担当している案件" in response.get_data(as_text=True)
    hold_case(session, person, actor("Operator", user_id=user.id, name=user.username))
    response = post_form(
        client,
        f"/people/{person.id}/reveal",
        {"purpose": "確認"},
        token_from=f"/people/{person.id}",
    )
    assert "1234 5678 9018" in response.get_data(as_text=True)


def test_unapproved_roster_entry_means_no_access(client, make_user, login, person):
    _signed_in(make_user, login, "ClientStaff", roster="pending")
    assert client.get("/people/").status_code == 403


def test_unknown_or_malformed_person_ids_are_404(client, make_user, login):
    _signed_in(make_user, login, "ClientStaff")
    assert client.get("/people/not-a-uuid").status_code == 404
    response = client.get("/people/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert re.search(r"Traceback|File \"", response.get_data(as_text=True)) is None


def test_system_admin_proposes_roster_changes_and_rotates_keys(client, login, session):
    login("admin", ADMIN_PASSWORD)
    response = post_form(
        client,
        "/roster-changes/propose",
        {
            "action": "add",
            "entry_id": "0",
            "name": "名簿 一郎",
            "department": "BPO運用部",
            "title": "主任",
            "nationality": "日本",
            "reason": "増員",
        },
    )
    assert response.status_code == 302
    assert client.get("/rosterview/list/").status_code == 200
    page = client.get("/keys/").get_data(as_text=True)
    assert "現在使用中" in page and "データベースで依存するもの" in page
    confirm = post_form(client, "/keys/rotate", {}, token_from="/keys/")
    assert confirm.status_code == 200 and "KEK を更新しますか" in confirm.get_data(as_text=True)
    assert "旧版" not in client.get("/keys/").get_data(as_text=True)  # nothing done yet
    response = post_form(client, "/keys/rotate", {"confirmed": "1"}, token_from="/keys/")
    assert response.status_code == 302
    page = client.get("/keys/").get_data(as_text=True)
    assert "旧版（廃棄できます）" in page and "mynumber keys retire" in page
    actions = [e.action for e in session.execute(select(AuditEvent)).scalars()]
    assert "roster.change_requested" in actions and "keys.rotate" in actions


def test_name_searches_live_in_the_url_so_back_and_return_find_them(
    client, make_user, login, person
):
    _signed_in(make_user, login, "ClientStaff")
    response = post_form(client, "/people/", {"name": "見本　一郎"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/people/?") and "csrf" not in location
    page = client.get(location).get_data(as_text=True)
    assert "検索結果 1 件" in page and "見本 一郎" in page
    # The form shows what was searched, and the person page leads back to these results.
    assert 'value="見本　一郎"' in page
    link = re.search(r'href="(/people/[0-9a-f-]{36}\?back=[^"]+)"', page).group(1)
    detail = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    back = re.search(r'href="([^"]+)">&laquo; 検索に戻る', detail).group(1)
    crafted = client.get(
        f"/people/{link.split('/')[2].split('?')[0]}?back=" + "%26".join(["a=1"] * 20)
    )
    assert crafted.status_code == 200  # a hand-made back address falls back to the search
    assert "name=" in back
    assert "検索結果 1 件" in client.get(back.replace("&amp;", "&")).get_data(as_text=True)


def test_kana_and_partial_code_searches_find_by_get(client, make_user, login, person):
    _signed_in(make_user, login, "ClientStaff")
    for query in ("kana=みほん+たろう", "kana=ﾐﾎﾝ", "code=000"):
        page = client.get(f"/people/?{query}").get_data(as_text=True)
        assert "見本 太郎" in page, query


def test_number_searches_stay_posted_and_never_reach_a_url(client, make_user, login, person):
    _signed_in(make_user, login, "ClientStaff")
    response = post_form(client, "/people/", {"number": NUMBER, "name": "見本"})
    assert response.status_code == 200 and "Location" not in response.headers
    assert "検索結果 1 件" in response.get_data(as_text=True)
    # A number typed into the name field is refused on the POST, not redirected into a URL.
    response = post_form(client, "/people/", {"name": NUMBER})
    assert response.status_code == 200 and "Location" not in response.headers
    html = response.get_data(as_text=True)
    assert "氏名に個人番号と思われる12桁の数字" in html and NUMBER not in html
    # A number hand-written into a search address is refused the same way.
    html = client.get(f"/people/?name={NUMBER}").get_data(as_text=True)
    assert "氏名に個人番号と思われる12桁の数字" in html


def test_search_results_are_paged_with_a_total(client, make_user, login, session, vault):
    from app.people import registry

    for i in range(1, 121):
        registry.add_person(session, vault, kind="employee", name=f"頁送 {i:03d}", code=f"P{i:04d}")
    session.commit()
    _signed_in(make_user, login, "ClientStaff")
    page = client.get("/people/?name=頁送").get_data(as_text=True)
    assert "検索結果 120 件（1〜50 件目を表示）" in page and "頁送 050" in page
    assert "頁送 051" not in page and "page=3" in page
    page = client.get("/people/?name=頁送&page=3").get_data(as_text=True)
    assert "（101〜120 件目を表示）" in page and "頁送 120" in page
    assert client.get("/people/?name=頁送&page=abc").status_code == 200
