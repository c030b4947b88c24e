"""The auditor's walk through the 監査ログ in a real browser (Debian's chromium, Playwright):
sign in with TOTP, type a JST date range (one end in 和暦) and pick a role, see exactly the
events of those JST days, and download them as CSV. No script error on the page (the old
filter's date picker threw one), nothing fetched from another origin. Screenshots land in
tests/artifacts/audit/."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from app.access.policy import AUDITOR
from app.audit import trail
from app.core.actor import Actor
from app.models import AuditEvent
from tests.collection.test_browser import live_portal  # noqa: F401
from tests.conftest import USER_PASSWORD
from tests.public_form.test_browser import ARGS, CHROMIUM, _chromium_or_skip
from tests.support import browser_sign_in

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "audit"
UTC = dt.UTC

# (actor, roles, UTC instant): the filter 2026/11/01〜令和8年11月2日 (JST) with 事務取扱担当者
# selects exactly the two marked True.
EVENTS = [
    ("op-before", ("Operator",), dt.datetime(2026, 10, 31, 14, 59, 59, tzinfo=UTC), False),
    ("op-first", ("Operator",), dt.datetime(2026, 10, 31, 15, 0, 0, tzinfo=UTC), True),
    ("staff-mid", ("ClientStaff",), dt.datetime(2026, 11, 1, 3, 0, 0, tzinfo=UTC), False),
    ("op-last", ("Operator",), dt.datetime(2026, 11, 2, 14, 59, 59, tzinfo=UTC), True),
    ("op-after", ("Operator",), dt.datetime(2026, 11, 2, 15, 0, 0, tzinfo=UTC), False),
]


def _seed(session, monkeypatch) -> None:
    for i, (name, roles, when, _) in enumerate(EVENTS, start=1):
        monkeypatch.setattr(trail, "utcnow", lambda when=when: when)
        trail.record(
            session,
            Actor(name=name, user_id=100 + i, roles=roles),
            "people.view",
            object_type="person",
            object_ids=[i],
            commit=True,
        )
    monkeypatch.undo()


def test_an_auditor_filters_by_jst_dates_and_role_and_downloads_the_csv(
    app,
    session,
    make_user,
    live_portal,  # noqa: F811
    backend,
    monkeypatch,
):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    _seed(session, monkeypatch)
    user, secret = make_user(AUDITOR, roster=None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wanted = [name for name, _, _, selected in EVENTS if selected]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(
            locale="ja-JP", viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        page = context.new_page()
        console: list[str] = []
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        browser_sign_in(page, live_portal, user.username, USER_PASSWORD, secret)
        page.goto(f"{live_portal}/auditlogview/list/")
        assert page.locator("h1").inner_text() == "監査ログ"
        page.fill("#from", "2026/11/01")
        page.fill("#to", "令和8年11月2日")
        page.select_option("#role", "Operator")
        with page.expect_navigation():
            page.click("#audit-search")
        rows = page.locator("#audit-events tbody tr")
        assert rows.count() == 2
        shown = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(2)]
        assert shown == list(reversed(wanted))  # newest first
        times = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(2)]
        assert times == ["2026/11/02 23:59:59", "2026/11/01 00:00:00"]
        assert rows.first.locator("td").nth(3).inner_text() == "事務取扱担当者（受注者）"
        assert rows.first.locator("td").nth(4).inner_text() == "人物の閲覧"
        assert page.locator("#audit-count").inner_text().startswith("全 2 件中 1〜2 件を表示")
        # The typed text stays as typed (no silent rewrite).
        assert page.input_value("#to") == "令和8年11月2日"
        page.screenshot(path=str(ARTIFACTS / f"audit-log-{backend}.png"), full_page=True)

        with page.expect_download() as download:
            page.click("#audit-download button[type=submit]")
        data = Path(download.value.path()).read_bytes()
        assert download.value.suggested_filename == "監査ログ_20261101-20261102.csv"

        # A date that does not exist is named, and nothing is listed.
        page.fill("#from", "2026/11/31")
        with page.expect_navigation():
            page.click("#audit-search")
        assert "期間（開始日）: 存在しない日付です: 2026/11/31" in page.inner_text(
            "#audit-filter-errors"
        )
        assert page.locator("#audit-events").count() == 0
        browser.close()

    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body = table[0], table[1:]
    assert [row[header.index("実行者")] for row in body] == wanted  # oldest first
    assert [row[header.index("日時（JST）")] for row in body] == [
        "2026/11/01 00:00:00",
        "2026/11/02 23:59:59",
    ]
    session.expire_all()
    exported = session.execute(
        select(AuditEvent).where(AuditEvent.action == "audit.export")
    ).scalar_one()
    assert exported.actor_name == user.username
    assert not errors, errors
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    assert all(url.startswith(live_portal) for url in requests), requests
