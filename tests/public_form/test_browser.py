"""End to end in a real browser: Debian's chromium driven by Playwright, phone-sized, with
JavaScript switched off (the form must work without it), through every step including
uploads, a deficiency and the resubmission. A screenshot of each step lands in
tests/artifacts/public_form/. A second short run with JavaScript on checks the typing help."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from app.collection import decisions
from app.models import CollectionRequest, RequestStatus, Submission
from tests import support
from tests.public_form.conftest import BIRTH, DEP_BIRTH, NUMBER_DEP, NUMBER_SELF, jpeg, pdf

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "public_form"
PHONE = {"width": 390, "height": 844}


def _chromium_or_skip():
    reason = None
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        reason = (
            f"{CHROMIUM} がありません（scripts/system-deps.sh が Debian の chromium を入れます）"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright（Python パッケージ）がありません"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true ではブラウザテストが必須です: {reason}")
        pytest.skip(reason)


@pytest.fixture
def live_form(form_app):
    """The form app served over HTTP on a free loopback port, in a thread."""
    with support.served(form_app) as url:
        yield url


@pytest.fixture
def browser():
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        instance.close()


def _phone(browser, javascript: bool):
    return browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="ja-JP",
        java_script_enabled=javascript,
    )


class Shots:
    def __init__(self, backend: str):
        self.dir = ARTIFACTS / backend
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.pages: list[str] = []

    def __call__(self, page, name: str) -> None:
        self.count += 1
        page.screenshot(path=str(self.dir / f"{self.count:02d}-{name}.png"), full_page=True)
        self.pages.append(page.content())


def _go(page, selector: str) -> None:
    """Click something that loads a new page, and wait until that page is there."""
    with page.expect_navigation():
        page.click(selector)


def _birth(page, date):
    page.select_option("select[name=year]", str(date.year))
    page.select_option("select[name=month]", str(date.month))
    page.select_option("select[name=day]", str(date.day))


def test_every_step_in_a_phone_browser_without_javascript(
    app, backend, session, household, live_form, browser, tmp_path, operator
):
    shots = Shots(backend)
    front, back, juminhyo = tmp_path / "front.jpg", tmp_path / "back.jpg", tmp_path / "jumin.pdf"
    front.write_bytes(jpeg())
    back.write_bytes(jpeg(color=(90, 90, 90)))
    juminhyo.write_bytes(pdf())
    head, dep = str(household["head"].id), str(household["dep"].id)

    context = _phone(browser, javascript=False)
    page = context.new_page()
    page.goto(f"{live_form}/r/{household['token']}")
    assert page.url.endswith("/verify") and "山田" not in page.content()
    # The birth date and the purpose with its consent: one page, one request.
    assert "利用目的" in page.content()
    shots(page, "birth-date-consent")
    _birth(page, BIRTH.replace(day=3))
    page.check("input[name=agree]")
    _go(page, "button[type=submit]")
    assert "あと4回" in page.content()
    # Nothing chosen is lost after the error: all three selects and the tick stay.
    assert page.input_value("select[name=year]") == str(BIRTH.year)
    assert page.input_value("select[name=month]") == str(BIRTH.month)
    assert page.input_value("select[name=day]") == "3"
    assert page.is_checked("input[name=agree]")
    shots(page, "birth-date-wrong")
    page.select_option("select[name=day]", str(BIRTH.day))
    _go(page, "button[type=submit]")
    assert page.url.endswith("/household") and "山田 花子" in page.content()
    shots(page, "household")
    _go(page, "#continue")
    assert page.url.endswith(f"/p/{head}/number")
    page.fill("#number", NUMBER_SELF[:11] + str((int(NUMBER_SELF[11]) + 1) % 10))
    page.fill("#number_confirm", NUMBER_SELF)
    _go(page, "button[type=submit]")
    assert "番号の数字がどこか違っています" in page.content()
    assert page.input_value("#number") == ""  # never echoed back
    shots(page, "number-error")
    wide = NUMBER_SELF.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    page.fill("#number", wide)
    page.fill("#number_confirm", NUMBER_SELF)
    _go(page, "button[type=submit]")
    assert page.url.endswith(f"/p/{head}/documents")
    shots(page, "documents-choose")
    _go(page, "text=マイナンバーカードがある")
    page.set_input_files("#card_front", str(front))
    page.set_input_files("#card_back", str(back))
    shots(page, "documents-card")
    _go(page, "button[type=submit]")
    assert page.url.endswith(f"/p/{dep}/number")
    page.fill("#number", NUMBER_DEP)
    page.fill("#number_confirm", NUMBER_DEP)
    _go(page, "button[type=submit]")
    _go(page, "text=マイナンバーカードがない")
    page.select_option("#number_doc_type", "juminhyo")
    page.set_input_files("#number_doc", str(juminhyo))
    shots(page, "dependent-documents")
    _go(page, "button[type=submit]")
    assert page.url.endswith("/confirm")
    assert "住民票の写し" in page.content()
    shots(page, "confirm")
    _go(page, "#submit")
    assert page.url.endswith("/done")
    receipt = page.inner_text("#receipt")
    shots(page, "receipt")
    context.close()

    # The operator finds the dependent's document unreadable.
    req = session.get(CollectionRequest, household["req"].id)
    session.refresh(req)
    support.give_case(session, req, operator)  # assigned and claimed, as the portal requires
    decisions.mark_deficient(session, operator, req, [(dep, "number_doc_unreadable")])
    session.commit()

    context = _phone(browser, javascript=False)
    page = context.new_page()
    page.goto(f"{live_form}/r/{household['token']}")
    _birth(page, BIRTH)
    _go(page, "button[type=submit]")
    assert page.url.endswith("/status")
    assert "不備あり" in page.content() and "番号確認書類の写真が読み取れません" in page.content()
    assert receipt in page.content()
    shots(page, "status-deficient")
    _go(page, "#resubmit")
    page.check("input[name=agree]")
    _go(page, "button[type=submit]")
    # Straight to the one thing that was wrong.
    assert page.url.endswith(f"/p/{dep}/documents")
    page.goto(f"{live_form}/household")
    assert "再提出の必要はありません" in page.content()
    shots(page, "resubmission-household")
    _go(page, "#continue")
    assert page.url.endswith(f"/p/{dep}/documents")
    _go(page, "text=マイナンバーカードがない")
    page.select_option("#number_doc_type", "notice_card")
    page.set_input_files("#number_doc", str(back))
    _go(page, "button[type=submit]")
    assert page.url.endswith("/confirm")
    shots(page, "resubmission-confirm")
    _go(page, "#submit")
    assert page.url.endswith("/done")
    shots(page, "resubmission-receipt")
    context.close()

    session.expire_all()
    req = session.get(CollectionRequest, household["req"].id)
    assert req.status == RequestStatus.SUBMITTED
    second = session.execute(select(Submission).where(Submission.seq == 2)).scalar_one()
    assert {(p.subject_ref, p.doc_type) for p in second.parts} == {(dep, "notice_card")}
    # No number in any page the browser saw, nor in any byte at rest.
    seen = [html.encode() for html in shots.pages]
    for number in (NUMBER_SELF, NUMBER_DEP):
        for form in support.number_forms(number):
            assert not any(form in html for html in seen)
    assert support.leaks(app, [NUMBER_SELF, NUMBER_DEP]) == []
    assert shots.count >= 13


def test_typing_help_with_javascript(backend, household, live_form, browser):
    shots = Shots(f"{backend}-js")
    context = _phone(browser, javascript=True)
    page = context.new_page()
    page.goto(f"{live_form}/r/{household['token']}")
    _birth(page, BIRTH)
    page.check("input[name=agree]")
    _go(page, "button[type=submit]")
    _go(page, "#continue")
    wrong = NUMBER_SELF[:11] + str((int(NUMBER_SELF[11]) + 1) % 10)
    page.fill("#number", wrong)
    assert "数字がどこか違って" in page.inner_text('.js-check[data-for="number"]')
    page.fill("#number", NUMBER_SELF.translate(str.maketrans("0123456789", "０１２３４５６７８９")))
    assert page.inner_text('.js-check[data-for="number"]') == "形式は正しいです"
    page.fill("#number_confirm", NUMBER_DEP)
    assert "一致しません" in page.inner_text('.js-check[data-for="number_confirm"]')
    shots(page, "number-help")
    context.close()


def _small_targets(page) -> list[str]:
    """Every visible control a finger has to hit that is under 44 × 44 CSS px: links,
    buttons, selects, text and file inputs, and checkboxes by the label that holds them."""
    small = []
    selector = "main a, main button, main select, main input:not([type=hidden]), main label.check"
    for handle in page.query_selector_all(selector):
        if not handle.is_visible():
            continue
        if handle.get_attribute("type") == "checkbox":
            label = handle.evaluate_handle("e => e.closest('label')").as_element()
            assert label is not None, "a checkbox without its label"
            handle = label
        box = handle.bounding_box()
        if box["height"] < 44 or box["width"] < 44:
            text = (handle.inner_text() or handle.get_attribute("name") or "").strip()[:20]
            small.append(f"{text} {box['width']:.0f}×{box['height']:.0f}")
    return small


def test_added_dependents_by_name_large_targets_and_honest_messages(
    backend, form_app, household, live_form, browser, tmp_path
):
    """An iPhone-sized screen: the landing page says who sees what; the added dependents
    are asked and shown by name; a validation error keeps what was typed; every tap target
    is at least 44 px; a too-big file is refused with its real size."""
    shots = Shots(f"{backend}-dependents")
    context = _phone(browser, javascript=True)
    page = context.new_page()
    page.goto(f"{live_form}/")
    landing = page.inner_text("main")
    assert "第三者が提出内容に触れることはありません" not in landing
    assert "表示したり、ファイルに出力したり" in landing  # the client's staff, after the check
    assert _small_targets(page) == []
    shots(page, "landing")

    page.goto(f"{live_form}/r/{household['token']}")
    assert _small_targets(page) == []  # the consent checkbox included
    box = page.query_selector("label.check").bounding_box()
    assert box["height"] >= 44
    _birth(page, BIRTH)
    page.click("label.check")  # the whole label is the target
    assert page.is_checked("input[name=agree]")
    _go(page, "button[type=submit]")
    assert page.url.endswith("/household")
    assert _small_targets(page) == []

    # A dependent with an impossible date: the error keeps every field.
    _go(page, "text=扶養親族を追加する")
    page.fill("#name", "山田 一郎")
    page.fill("#kana", "ヤマダ イチロウ")
    page.fill("#relation", "子")
    page.select_option("select[name=year]", "2019")
    page.select_option("select[name=month]", "2")
    page.select_option("select[name=day]", "30")
    _go(page, "button[type=submit]")
    assert "存在しない日付" in page.content()
    assert page.input_value("#name") == "山田 一郎"
    assert page.input_value("#kana") == "ヤマダ イチロウ"
    assert page.input_value("#relation") == "子"
    assert page.input_value("select[name=year]") == "2019"
    assert page.input_value("select[name=month]") == "2"
    assert _small_targets(page) == []
    shots(page, "add-dependent-error")
    page.select_option("select[name=day]", "28")
    _go(page, "button[type=submit]")
    assert page.url.endswith("/p/new1/number")
    assert "山田 一郎（子）" in page.inner_text(".who")
    page.goto(f"{live_form}/dependents/add")
    page.fill("#name", "山田 二郎")
    page.fill("#relation", "子")
    _birth(page, DEP_BIRTH)
    _go(page, "button[type=submit]")
    page.goto(f"{live_form}/household")
    names = page.inner_text(".people")
    assert "山田 一郎" in names and "山田 二郎" in names
    assert "（子）（子）" not in page.content()
    shots(page, "household-added-by-name")

    # A file over the limit: its real size, in the units a phone shows.
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\0" * (11_000_000 - 3))
    page.goto(f"{live_form}/p/new1/documents?combination=other")
    page.select_option("#number_doc_type", "juminhyo")
    page.set_input_files("#number_doc", str(big))
    _go(page, "button[type=submit]")
    assert "11.0 MB、上限 10 MB" in page.content()
    assert _small_targets(page) == []
    shots(page, "file-too-big")
    context.close()


def test_the_lock_page_gives_the_phone_number(form_app, household, live_form, browser):
    context = _phone(browser, javascript=False)
    page = context.new_page()
    page.goto(f"{live_form}/r/{household['token']}")
    for _ in range(form_app.config["INTAKE_MAX_FAILURES"]):
        _birth(page, BIRTH.replace(day=3))
        page.check("input[name=agree]")
        _go(page, "button[type=submit]")
    text = page.inner_text("main")
    assert "ロック" in text and "お電話ください" in text
    assert f"電話 {form_app.config['DESK_PHONE']}" in text
    context.close()
