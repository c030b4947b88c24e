"""The client's campaign page in a real browser (Debian's chromium, Playwright): sign-in with
TOTP, the counts, the progress chart drawn on the server as SVG under the portal's CSP (no
violation reported, nothing fetched from another origin), and the request timeline.
Screenshots land in tests/artifacts/collection/."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.access.policy import CLIENT_STAFF
from tests.collection import flows
from tests.collection.conftest import Jobs
from tests.conftest import USER_PASSWORD
from tests.public_form.test_browser import ARGS, CHROMIUM, _chromium_or_skip
from tests.support import browser_sign_in

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "collection"


@pytest.fixture
def live_portal(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


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
