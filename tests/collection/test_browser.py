"""The client's campaign page in a real browser (Debian's chromium, Playwright): sign-in with
TOTP, the counts, the progress chart drawn on the server as SVG under the portal's CSP (no
violation reported, nothing fetched from another origin), and the request timeline.
Screenshots land in tests/artifacts/collection/."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.access.policy import CLIENT_STAFF
from tests.collection import flows
from tests.collection.conftest import Jobs
from tests.conftest import USER_PASSWORD
from tests.public_form.test_browser import ARGS, CHROMIUM, _chromium_or_skip
from tests.support import browser_sign_in, served

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "collection"


@pytest.fixture
def live_portal(app):
    with served(app) as url:
        yield url


def test_the_client_follows_a_campaign_in_a_browser(
    app, session, make_user, staff, operators, live_portal, backend
):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], Jobs("inline", app))
    user, secret = make_user(CLIENT_STAFF)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(
            locale="ja-JP", viewport={"width": 1280, "height": 900}
        ).new_page()
        console: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.on("request", lambda r: requests.append(r.url))
        browser_sign_in(page, live_portal, user.username, USER_PASSWORD, secret)
        page.goto(f"{live_portal}/campaigns/{campaign.id}")
        assert page.locator("h1").inner_text().startswith("2026年度 役職員マイナンバー収集")
        assert page.locator("#count-sent").inner_text() == "1"
        assert page.locator("#count-created").inner_text() == "1"
        chart = page.locator("svg.mnv-chart")
        assert chart.is_visible() and chart.locator("polyline").count() == 3
        page.screenshot(path=str(ARTIFACTS / f"campaign-{backend}.png"), full_page=True)
        page.click("text=" + flows.request_of("E1001").request_code)
        assert page.locator("#stage").inner_text() == "送付済"
        assert "作成（リンク発行）" in page.content()
        page.screenshot(path=str(ARTIFACTS / f"timeline-{backend}.png"), full_page=True)
        browser.close()
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    assert all(url.startswith(live_portal) or url.startswith("data:") for url in requests), requests


@pytest.mark.redis
def test_a_target_upload_shows_its_progress_then_every_problem_or_the_count(
    app, session, make_user, staff, rq_app, live_portal, backend
):
    """Upload → the progress page (the job waits in RQ: no worker yet, so the bar is seen for
    certain) → a worker runs it → the page refreshes itself into the result."""
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    from app.collection import campaigns
    from app.platform.queue import queue
    from tests.collection.conftest import EMPLOYEE_CSV, future_business_day
    from tests.support import drain_queue

    campaign = campaigns.create_campaign(
        session,
        staff,
        name="役職員 2026",
        kind="employee",
        deadline=future_business_day(),
        purpose_text="給与所得・退職所得の源泉徴収票作成事務",
    )
    user, secret = make_user(CLIENT_STAFF)
    bad = (
        EMPLOYEE_CSV.replace("taro@example.jp", "taro@")
        + "E9999,扶養親族,子,孤立 花子,,2010/01/01,,,,\r\n"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(
            locale="ja-JP", viewport={"width": 1280, "height": 900}
        ).new_page()
        browser_sign_in(page, live_portal, user.username, USER_PASSWORD, secret)
        for data, answer in (
            (bad.encode("utf-8"), "2 件の問題があるため、登録しませんでした"),
            (EMPLOYEE_CSV.encode("utf-8-sig"), "対象者リストを登録しました: 依頼 2 件"),
        ):
            page.goto(f"{live_portal}/campaigns/{campaign.id}")
            page.set_input_files(
                "#file", files=[{"name": "targets.csv", "mimeType": "text/csv", "buffer": data}]
            )
            page.click("text=確認して登録する")
            assert "/targets/" in page.url
            assert page.locator("h1").inner_text() == "対象者リストを確認しています"
            assert page.locator("[role=progressbar]").is_visible()
            assert "開始を待っています" in page.locator("#job-state").inner_text()
            page.screenshot(path=str(ARTIFACTS / f"targets-progress-{backend}.png"))
            drain_queue(queue())  # the worker takes the job
            # The bar refreshes itself every second until the result replaces it.
            page.wait_for_selector(f"text={answer}", timeout=60_000)
            assert page.locator("[role=progressbar]").count() == 0
            if "問題" in answer:
                html = page.content()
                assert "行 2: メールアドレス: メールアドレスの形式が正しくありません" in html
                assert (
                    "行 5: 職員番号: 扶養者（本人区分「本人」の行）がこのファイルにありません"
                    in html
                )
            page.screenshot(path=str(ARTIFACTS / f"targets-result-{backend}.png"), full_page=True)
        browser.close()
