"""The operator's case page in a real browser (Debian's chromium, Playwright), under the
portal's CSP: the number stored for someone else is flagged as the case opens, a 住民票 PDF
is shown as a page image far wider than 360 px and zooms, and a refused accept leaves the
operator on the case with their ticks. Screenshots land in tests/artifacts/collection/."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.access.policy import OPERATOR
from app.models import AuditEvent, PersonKind, db
from app.people import registry
from tests import support
from tests.collection.conftest import NUMBER_ICHIRO, actor_of, submit_external
from tests.conftest import USER_PASSWORD
from tests.public_form.conftest import jpeg, pdf
from tests.public_form.test_browser import ARGS, CHROMIUM, _chromium_or_skip
from tests.support import browser_sign_in, served

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "collection"


@pytest.fixture
def portal_url(app):
    with served(app) as url:
        yield url


def _opened_count() -> int:
    db.session.expire_all()
    return db.session.query(AuditEvent).filter(AuditEvent.action == "intake.open").count()


def test_the_case_page_flags_zooms_and_keeps_the_operator_on_a_refused_accept(
    app, session, vault, staff, make_user, form_app, portal_url, backend
):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    files = {"number_doc": (pdf(), "juminhyo.pdf"), "identity_doc": (jpeg(), "license.jpg")}
    types = {"number_doc_type": "juminhyo", "identity_doc_type": "license"}
    submitted = submit_external(app, staff, form_app, ("other", files, types))
    other = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="別人 三郎", code="X9999"
    )
    registry.register_number(session, vault, other, NUMBER_ICHIRO, "import")
    session.commit()
    user, secret = make_user(OPERATOR)
    support.give_case(session, submitted["req"], actor_of(user, OPERATOR))
    ref = submitted["ref"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(
            locale="ja-JP", viewport={"width": 1280, "height": 900}
        ).new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        browser_sign_in(page, portal_url, user.username, USER_PASSWORD, secret)
        page.goto(f"{portal_url}/verification/")
        page.click("button:has-text('開封して確認する')")
        page.wait_for_url("**/open")

        # The flag is there as soon as the case is open; it never says whose number it is.
        flag = page.locator(".mnv-number-flag")
        assert flag.is_visible() and "既に別の人物の番号として登録されています" in flag.inner_text()
        assert "別人" not in page.content()

        # The 住民票 PDF is a page image, as wide as the column, and zooms.
        frames = page.locator(".mnv-zoom")
        assert frames.count() == 2  # the PDF's one page and the licence photo
        pdf_view = page.locator("figure.mnv-doc", has_text="PDF・1 ページ").locator(".mnv-zoom")
        image = pdf_view.locator("img")
        before = image.bounding_box()["width"]
        assert before > 360, before
        pdf_view.locator("button.mnv-zoom-in").click()
        assert pdf_view.get_attribute("data-zoom") == "1.5"
        assert image.bounding_box()["width"] == pytest.approx(before * 1.5, rel=0.02)
        page.screenshot(path=str(ARTIFACTS / f"case-zoomed-{backend}.png"), full_page=True)
        pdf_view.locator("button.mnv-zoom-fit").click()
        assert image.bounding_box()["width"] == pytest.approx(before, rel=0.02)

        # Everything ticked, 受理 pressed: refused, and still on the same case.
        opened = _opened_count()
        page.check(f'input[name="number-{ref}"]')
        page.check(f'input[name="identity-{ref}"]')
        page.fill("#note", "書類は確認済み")
        page.click("button:has-text('受理して登録する')")
        page.wait_for_url("**/accept")
        assert "/verification/case/" in page.url and page.url.endswith("/accept")
        alert = page.locator(".alert-danger", has_text="受理できません")
        assert alert.first.is_visible()
        assert page.locator("h1").inner_text().startswith("確認")
        assert page.is_checked(f'input[name="number-{ref}"]')
        assert page.is_checked(f'input[name="identity-{ref}"]')
        assert page.input_value("#note") == "書類は確認済み"
        assert page.is_checked(f'input[name="def-{ref}"][value="number_registered"]')
        assert page.locator(".mnv-zoom img").count() == 2  # the documents are still shown
        page.screenshot(path=str(ARTIFACTS / f"case-refused-{backend}.png"), full_page=True)
        browser.close()
    # The refused accept opened the case once (audited); staying there opened nothing more.
    assert _opened_count() == opened + 1
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
