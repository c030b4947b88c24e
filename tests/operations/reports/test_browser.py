"""The dashboard in a real browser (Debian's chromium, Playwright): a ClientStaff user signs
in with TOTP and lands on it; the charts are SVG drawn on the server and render under the
portal's CSP (no violation reported, nothing fetched from another origin). Screenshots land
in tests/artifacts/reports/."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.access.policy import CLIENT_STAFF
from tests.collection import flows
from tests.collection.test_browser import live_portal  # noqa: F401
from tests.conftest import USER_PASSWORD
from tests.public_form.test_browser import ARGS, CHROMIUM, _chromium_or_skip
from tests.support import browser_sign_in

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "reports"


def test_client_staff_land_on_the_dashboard_in_a_browser(
    app,
    session,
    make_user,
    staff,
    operators,
    jobs,
    kit_config,
    live_portal,  # noqa: F811
    backend,
):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
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
        page.goto(f"{live_portal}/")
        assert page.url.endswith("/dashboard/")
        assert page.locator("h1").inner_text() == "ダッシュボード"
        charts = page.locator("svg.mnv-chart")
        assert charts.count() == 2  # monthly collections + the campaign's progress
        assert charts.first.is_visible()
        assert "2026年度 役職員マイナンバー収集" in page.content()
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{backend}.png"), full_page=True)
        page.goto(f"{live_portal}/reports/")
        assert page.locator("h1").inner_text() == "利用実績報告書"
        page.screenshot(path=str(ARTIFACTS / f"reports-{backend}.png"), full_page=True)
        browser.close()
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    assert all(url.startswith(live_portal) or url.startswith("data:") for url in requests), requests
