"""The portal in a real browser (Debian's chromium, Playwright): the people search forgives
and keeps its results for Back and 「検索に戻る」; an account without an approved roster entry
is told why and can sign out, with no loop; a form keeps what was typed and asks before an
action with consequences, without JavaScript doing it. Screenshots in tests/artifacts/web/."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import Person
from tests.conftest import USER_PASSWORD
from tests.public_form.test_browser import ARGS, CHROMIUM, _chromium_or_skip
from tests.support import add_household, browser_sign_in, served

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"


@pytest.fixture
def live_portal(app):
    with served(app) as url:
        yield url


@pytest.fixture
def browser():
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _page(browser):
    return browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900}).new_page()


def test_search_forgives_and_back_finds_the_results(
    browser, live_portal, session, vault, make_user, backend
):
    head, _ = add_household(session, vault, "見本 花子", "子")
    user, secret = make_user("ClientStaff")
    page = _page(browser)
    browser_sign_in(page, live_portal, user.username, USER_PASSWORD, secret)
    page.goto(f"{live_portal}/people/")
    page.fill("input[name=name]", "見本　太郎")  # a full-width space
    with page.expect_navigation():
        page.click("form.mnv-search button[type=submit]")
    assert "name=" in page.url  # the search is in the address: Back and bookmarks work
    assert page.locator("#search-count").inner_text().startswith("検索結果 1 件")
    page.screenshot(path=str(ARTIFACTS / f"search-{backend}.png"), full_page=True)
    with page.expect_navigation():
        page.click(f"a[href*='{head.id}']")
    with page.expect_navigation():
        page.click("text=検索に戻る")
    assert page.locator("#search-count").inner_text().startswith("検索結果 1 件")
    assert page.input_value("input[name=name]") == "見本　太郎"
    with page.expect_navigation():
        page.click(f"a[href*='{head.id}']")
    page.go_back()
    assert page.locator("#search-count").inner_text().startswith("検索結果 1 件")
    page.fill("input[name=kana]", "ﾐﾎﾝ")  # half-width kana
    page.fill("input[name=name]", "")
    with page.expect_navigation():
        page.click("form.mnv-search button[type=submit]")
    assert page.locator("#search-count").inner_text().startswith("検索結果 1 件")


def test_an_unapproved_account_is_told_why_and_can_sign_out(
    browser, live_portal, make_user, backend
):
    user, secret = make_user("ClientStaff", roster="pending")
    page = _page(browser)
    browser_sign_in(page, live_portal, user.username, USER_PASSWORD, secret)
    assert "情報取扱者名簿" in page.locator(".mnv-withheld").first.inner_text()
    response = page.goto(f"{live_portal}/people/")
    assert response.status == 403
    assert page.locator("nav, .navbar").count() > 0  # a portal page with its menu
    assert "情報取扱者名簿" in page.locator(".mnv-withheld").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"refused-{backend}.png"), full_page=True)
    with page.expect_navigation():
        page.click("text=トップページ（できること一覧）に戻る")
    assert page.url.rstrip("/") == live_portal  # the top page answers: no loop
    assert page.request.get(f"{live_portal}/favicon.ico").status == 200
    with page.expect_navigation():
        page.click(".mnv-page a.btn[href='/logout/']")
    assert "/login" in page.url


def test_forms_keep_what_was_typed_and_ask_before_consequences(
    browser, live_portal, session, vault, make_user, backend
):
    head, child = add_household(session, vault, "見本 花子", "子")
    user, secret = make_user("ClientStaff")
    page = _page(browser)
    page.route("**/*.js", lambda route: route.abort())  # the confirm step needs no script
    browser_sign_in(page, live_portal, user.username, USER_PASSWORD, secret)
    page.goto(f"{live_portal}/records/{head.id}")
    page.fill("#d-name", "見本 二郎")
    page.fill("#d-kana", "ミホン ジロウ")
    page.fill("#d-rel", "子")
    page.fill("#d-birth", "2015/02/30")
    with page.expect_navigation():
        page.click(f"form[action='/records/{head.id}/dependents'] button[type=submit]")
    assert "存在しない日付" in page.content()
    assert (
        page.input_value("#d-name") == "見本 二郎" and page.input_value("#d-birth") == "2015/02/30"
    )

    end = page.locator(f"form[action='/records/{head.id}/end'] input[name=ended_on]")
    assert end.input_value() == ""  # never today's date by default
    end.fill("2026/03/31")
    with page.expect_navigation():
        page.click("text=記録する（確認画面へ）")
    assert "退職日を記録しますか" in page.locator("h1").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"confirm-{backend}.png"), full_page=True)
    with page.expect_navigation():
        page.click("#confirm-button")
    session.expire_all()
    assert str(session.get(Person, head.id).ended_on) == "2026-03-31"

    with page.expect_navigation():
        page.click("text=扶養から削除（確認画面へ）")
    with page.expect_navigation():
        page.click("text=やめる（前の画面に戻る）")
    session.expire_all()
    assert session.execute(select(Person.status).where(Person.id == child.id)).scalar() == "active"
