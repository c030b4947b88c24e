"""No dead ends: the first screen lists what the user may do, refusals say why and offer the
way on (menu, top page, sign-out), and the browser finds a favicon."""

from tests.conftest import ADMIN_PASSWORD


def _signed_in(make_user, login, role, **kwargs):
    user, secret = make_user(role, **kwargs)
    login(user.username, totp_secret=secret)
    return user


def test_an_account_without_an_approved_roster_entry_is_told_why_and_how_out(
    client, make_user, login
):
    _signed_in(make_user, login, "ClientStaff", roster="pending")
    refused = client.get("/people/")
    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert "情報取扱者名簿" in html and "承認" in html  # the reason
    assert 'href="/logout/"' in html and "ログアウト" in html  # the way out
    assert "portal.css" in html and "navbar" in html  # a portal page, not a bare one
    # 「トップページに戻る」 leads to a page that answers, with the same reason: no loop.
    assert 'href="/"' in html
    top = client.get("/")
    assert top.status_code == 200
    page = top.get_data(as_text=True)
    assert "情報取扱者名簿" in page and 'href="/logout/"' in page


def test_missing_pages_are_portal_pages(client, make_user, login):
    _signed_in(make_user, login, "ClientStaff")
    response = client.get("/no-such-page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "ページが見つかりません" in html and "portal.css" in html and "Traceback" not in html


def test_signed_out_refusals_and_missing_pages_offer_the_sign_in(client):
    html = client.get("/no-such-page").get_data(as_text=True)
    assert "ページが見つかりません" in html and "/login/" in html


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.data[:4] == b"\x00\x00\x01\x00"
    assert 'rel="icon"' in client.get("/login/").get_data(as_text=True)


def test_the_system_admins_first_screen_lists_their_tasks(client, login):
    login("admin", ADMIN_PASSWORD)
    html = client.get("/").get_data(as_text=True)
    assert "できること" in html
    for link in ('href="/keys/"', 'href="/roster-changes/"', 'href="/account-changes/"'):
        assert link in html
    assert "人物検索" not in html  # never a personal-data screen
