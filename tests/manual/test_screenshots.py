"""The service manual's screenshots, taken from the running app, and the manual built from them.

Debian's chromium (Playwright) walks every task the manual documents — as ClientStaff,
Operator, SystemAdmin, Auditor and as a subject on a phone — against the real portal and
public form served on loopback, with demo data loaded through the real import (``app.io.demo``).
Each screen is saved as ``docs/manual/img/<name>.png``, the names the Markdown references; then
every referenced image must exist and the PDF (``app.operations.manual``) must build and contain every
chapter title. ``make manual`` runs this module and then writes ``docs/manual/manual.pdf``.

Why SQLite only: this module documents screens, it does not test storage; the screens are the
same on both databases (every screen's behaviour is tested on both elsewhere), and one run
instead of two keeps the browser walk — the slowest part of the suite — short.

No screenshot shows a full My Number except the reveal step, which shows a demo number
(``DEMO-`` people): every other ``.mnv-number`` is masked by Playwright's ``mask=`` option,
and the number fields of the form and the paper keying are shot before anything is typed.

Adding a screen: one ``Screen`` in ``SCREENS`` (a page reached by URL as a signed-in role)
plus a Markdown paragraph with ``![…](img/<name>.png)``; a screen that needs clicks goes in
the walk below, next to its chapter.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass

import pyotp
import pytest
from sqlalchemy import select

from app.access.policy import AUDITOR, CLIENT_STAFF, OPERATOR, ShellActor
from app.collection import links
from app.core import mynumber
from app.io import demo
from app.models import AuditEvent, CollectionRequest, Person, UnitPrice, db
from app.models.billing import BillingCategory
from app.operations.manual import MANUAL_DIR, build_pdf, chapter_titles, referenced_images
from tests.collection.conftest import EMPLOYEE_CSV, TARO_BIRTH, future_business_day
from tests.conftest import ADMIN_PASSWORD, ADMIN_TOTP_SECRET, USER_PASSWORD, pdf_text
from tests.public_form.conftest import NUMBER_DEP, NUMBER_SELF, jpeg, pdf
from tests.public_form.test_browser import ARGS, CHROMIUM, PHONE, _chromium_or_skip
from tests.support import add_kit_postage_rates, unused_totp_code

pytestmark = pytest.mark.browser

IMG = MANUAL_DIR / "img"
DESKTOP = {"width": 1280, "height": 640}  # full-page shots grow to fit the content
CLIENT_NAME = "見本機構"
OPERATOR_NAME = "見本BPO株式会社"


@pytest.fixture
def backend() -> str:
    """SQLite only (see the module docstring)."""
    return "sqlite"


@dataclass(frozen=True)
class Screen:
    """A page shown as it is: ``who`` (client, operator, operator2, admin, auditor) opens
    ``path`` (``{campaign}``, ``{request}``, ``{person}`` filled in from the walk)."""

    name: str
    who: str
    path: str
    full_page: bool = True


# Pages that need nothing but to be opened. Add a screen here and reference it in Markdown.
SCREENS: list[Screen] = [
    Screen("client-home", "client", "/", full_page=False),
    Screen("client-campaign-list", "client", "/campaigns/"),
    Screen("client-campaign-letters", "client", "/campaigns/{campaign}/letters"),
    Screen("client-layouts", "client", "/io/layouts/"),
    Screen("client-records-new", "client", "/records/new"),
    Screen("client-retention", "client", "/retention/", full_page=False),
    Screen("client-return", "client", "/return/"),
    Screen("client-roster", "client", "/rosterview/list/"),
    Screen("client-postage-ledger", "client", "/postageentryview/list/"),
    # Reports, dashboard, the client's inquiries, 情報管理体制.
    Screen("client-dashboard", "client", "/dashboard/"),
    Screen("client-reports", "client", "/reports/"),
    Screen("client-my-inquiries", "client", "/my-inquiries/new"),
    Screen("client-handling-chart", "client", "/handling-chart/"),
    Screen("client-register", "client", "/register/"),
    Screen("operator-reports", "operator", "/reports/"),
    Screen("operator-planned", "operator", "/plannedvolumeview/list/"),
    Screen("admin-handling-chart", "admin", "/handling-chart/"),
    Screen("auditor-reports", "auditor", "/reports/"),
    Screen("operator-home", "operator", "/", full_page=False),
    Screen("operator-intake", "operator", "/intake/"),
    Screen("operator-inquiries", "operator", "/inquiryview/list/"),
    Screen("operator-postage-rates", "operator", "/postagerateview/list/"),
    Screen("operator-mailings", "operator", "/mailings/"),
    Screen("admin-users", "admin", "/users/list/"),
    Screen("admin-roster", "admin", "/rosterview/list/"),
    Screen("admin-unit-prices", "admin", "/unitpriceview/list/"),
    Screen("admin-keys", "admin", "/keys/"),
    Screen("admin-people-denied", "admin", "/people/", full_page=False),
    Screen("auditor-audit-log", "auditor", "/auditlogview/list/", full_page=False),
    Screen("auditor-audit-event", "auditor", "/auditlogview/show/{reveal_event}"),
    Screen("auditor-roster-changes", "auditor", "/roster-changes/"),
    Screen("auditor-certificates", "auditor", "/certificates/"),
]


class Camera:
    """Saves ``img/<name>.png``; masks every full number unless told the page shows a demo
    number on purpose."""

    def __init__(self) -> None:
        IMG.mkdir(parents=True, exist_ok=True)
        for old in IMG.glob("*.png"):
            old.unlink()
        self.names: list[str] = []

    def __call__(self, page, name: str, full_page: bool = True, show_number: bool = False):
        if not show_number:
            shown = _numbers_shown(page)
            assert shown == [], f"{name}: 写真に個人番号が写ります（{len(shown)} 件）"
        mask = [] if show_number else [page.locator(".mnv-number")]
        page.screenshot(
            path=str(IMG / f"{name}.png"), full_page=full_page, mask=mask, mask_color="#777"
        )
        self.names.append(name)


_DIGITS = re.compile(
    r"(?<![0-9A-Za-z])[0-9０-９](?:[0-9０-９]|[ \-－]){10,16}[0-9０-９](?![0-9A-Za-z])"
)
_SHOWN = """(masked) => {
  const copy = document.body.cloneNode(true);
  if (masked) copy.querySelectorAll('.mnv-number').forEach((e) => e.remove());
  const values = [...document.querySelectorAll('input, textarea')].map((e) => e.value);
  return [copy.textContent, ...values].join('\\n');
}"""


def _numbers_shown(page, masked: bool = True) -> list[str]:
    """Valid My Numbers in what the shot would show: the page's text outside the masked
    ``.mnv-number`` elements, and every field's value (typed numbers show in the picture)."""
    text = page.evaluate(_SHOWN, masked)
    found = [m for m in _DIGITS.findall(text) if mynumber.is_valid(m)]
    # One digit twelve times (000000000000, e.g. in a chart's markup) looks like no number.
    return [m for m in found if len(set(mynumber.normalize(m))) > 1]


def _serve(wsgi_app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def _go(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _totp(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def _birth(page, date: dt.date) -> None:
    page.select_option("select[name=year]", str(date.year))
    page.select_option("select[name=month]", str(date.month))
    page.select_option("select[name=day]", str(date.day))


def _seed(app, session, vault, make_user) -> dict:
    """Demo people (real import), accounts for every role, the operator's settings."""
    app.config.update(
        OPERATOR_POSTAL_CODE="100-0005",
        OPERATOR_ADDRESS="東京都千代田区丸の内一丁目1番1号 見本ビル3階",
        CLIENT_NAME=CLIENT_NAME,
        OPERATOR_NAME=OPERATOR_NAME,
    )
    demo.load(session, vault, ShellActor(name="cli:manual"), 40, 10, 2026)
    add_kit_postage_rates(session, app, created_by="manual")
    for category, price in zip(BillingCategory.ALL, (1200, 800, 1200, 300, 800, 1000), strict=True):
        session.add(
            UnitPrice(
                category=category,
                price_yen=price,
                effective_from=dt.date(2026, 4, 1),
                created_by="admin",
            )
        )
    session.commit()
    users = {}
    for key, role, name in (
        ("client", CLIENT_STAFF, ("見本", "発注者")),
        ("operator", OPERATOR, ("試験", "受託者")),
        ("operator2", OPERATOR, ("架空", "受託者")),
        ("auditor", AUDITOR, ("例示", "監査")),
    ):
        user, secret = make_user(role, username=f"manual-{key}")
        user.first_name, user.last_name = name
        users[key] = (user.username, secret)
    new_user, _ = make_user(CLIENT_STAFF, username="manual-newcomer", totp=False)
    users["newcomer"] = (new_user.username, None)
    users["admin"] = ("admin", ADMIN_TOTP_SECRET)  # enrolled in the golden instance
    session.commit()
    return users


def _sign_in(browser, portal, username, secret, password=USER_PASSWORD, camera=None, prefix=None):
    context = browser.new_context(locale="ja-JP", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{portal}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    if camera and prefix:
        camera(page, f"{prefix}-login", full_page=False)
    _go(page, "button[type=submit], input[type=submit]")
    if secret and "/totp/" in page.url:
        if camera and prefix:
            camera(page, f"{prefix}-totp", full_page=False)
        page.fill("input[name=code]", _totp(secret))
        _go(page, "button[type=submit]")
    return page


def _request_of(code: str) -> CollectionRequest:
    person = db.session.execute(
        select(Person).where(Person.code == code, Person.kind != "dependent")
    ).scalar_one()
    return db.session.execute(
        select(CollectionRequest).where(CollectionRequest.person_id == person.id)
    ).scalar_one()


def test_manual_screenshots_and_pdf(
    app,
    session,
    vault,
    make_user,
    form_app,
    instance,
    tmp_path,
    needs_pdf,  # noqa: F811
):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    users = _seed(app, session, vault, make_user)
    portal_server, portal_thread, portal = _serve(app)
    form_server, form_thread, form = _serve(form_app)
    app.config["PUBLIC_FORM_URL"] = form
    camera = Camera()
    files = tmp_path / "files"
    files.mkdir()
    (files / "front.jpg").write_bytes(jpeg())
    (files / "back.jpg").write_bytes(jpeg(color=(90, 90, 90)))
    (files / "juminhyo.pdf").write_bytes(pdf())
    (files / "scan.jpg").write_bytes(jpeg(color=(240, 240, 235)))
    (files / "targets.csv").write_bytes(EMPLOYEE_CSV.encode("utf-8-sig"))
    ids: dict[str, str] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            pages = {}
            # -- sign-in: first time (TOTP enrolment), then every time ----------------------
            newcomer = _sign_in(browser, portal, users["newcomer"][0], None)
            assert "/totp/" in newcomer.url
            camera(newcomer, "common-totp-enrol")
            newcomer.context.close()
            pages["client"] = _sign_in(
                browser, portal, *users["client"], camera=camera, prefix="common"
            )
            pages["operator"] = _sign_in(browser, portal, *users["operator"])
            pages["operator2"] = _sign_in(browser, portal, *users["operator2"])
            pages["auditor"] = _sign_in(browser, portal, *users["auditor"])
            pages["admin"] = _sign_in(browser, portal, *users["admin"], password=ADMIN_PASSWORD)
            client, operator, admin, auditor = (
                pages["client"],
                pages["operator"],
                pages["admin"],
                pages["auditor"],
            )

            # -- ClientStaff: search, person, reveal ----------------------------------------
            client.goto(f"{portal}/people/")
            client.fill("input[name=name]", "見本")
            camera(client, "client-search-form", full_page=False)
            _go(client, "form.mnv-search button[type=submit]")
            camera(client, "client-search-results", full_page=False)
            demo_person = session.execute(
                select(Person).where(Person.code == "DEMO-E00001", Person.kind == "employee")
            ).scalar_one()
            ids["person"] = str(demo_person.id)
            client.goto(f"{portal}/people/{demo_person.id}")
            client.fill("textarea[name=purpose]", "2026年分 源泉徴収票の作成")
            camera(client, "client-person")
            _go(client, "button:has-text('利用目的を記録して表示する')")
            assert client.locator("#revealed-number").is_visible()
            session.expire_all()
            ids["reveal_event"] = str(
                session.execute(
                    select(AuditEvent.seq).where(AuditEvent.action == "number.reveal")
                ).scalar_one()
            )
            # The one picture with a full number (a demo person's): the check that guards
            # every other picture sees it here once the mask is off.
            assert len(_numbers_shown(client, masked=False)) == 1
            camera(client, "client-reveal", full_page=False, show_number=True)

            # -- ClientStaff: export and bulk 照合 -------------------------------------------
            client.goto(f"{portal}/io/export/")
            _choose_layout(client, "staff")
            client.fill("textarea[name=purpose], input[name=purpose]", "2026年分 源泉徴収票の作成")
            camera(client, "client-export")
            keys = files / "keys.csv"
            # Three demo employees by code and birth date, and one key that matches nobody.
            rows = ["職員番号,生年月日"]
            for person in session.execute(
                select(Person)
                .where(Person.kind == "employee", Person.code.startswith("DEMO-E"))
                .order_by(Person.code)
                .limit(3)
            ).scalars():
                rows.append(f"{person.code},{person.birth_date:%Y/%m/%d}")
            rows.append("DEMO-E09999,1980/01/01")
            keys.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")
            client.goto(f"{portal}/io/match/")
            client.set_input_files("input[name=file]", str(keys))
            _choose_layout(client, "staff")
            client.fill("textarea[name=purpose], input[name=purpose]", "扶養控除等申告書の照合")
            camera(client, "client-match-form")
            _go(client, "button:has-text('照合する')")
            assert "該当 3 人" in client.content()
            camera(client, "client-match-result")

            # -- Campaign: the client orders it and loads the targets ------------------------
            client.goto(f"{portal}/campaigns/")
            client.fill("input[name=name]", "2026年度 役職員マイナンバー収集")
            client.fill("input[name=deadline]", future_business_day().isoformat())
            client.fill("textarea[name=purpose_text]", "給与所得・退職所得の源泉徴収票作成事務")
            camera(client, "client-campaign-create")
            _go(client, "button:has-text('作成する')")
            match = re.search(r"/campaigns/([^/?#]+)$", client.url)
            assert match, client.url
            ids["campaign"] = match.group(1)
            client.set_input_files("input[name=file]", str(files / "targets.csv"))
            camera(client, "client-campaign-targets")
            _go(client, "button:has-text('確認して登録する')")
            camera(client, "client-campaign-loaded")
            # The client names the operators who work it (担当事務取扱担当者).
            for key in ("operator", "operator2"):
                client.select_option("#assign-user", label=users[key][0])
                _go(client, "button:has-text('担当に割り当てる')")

            # -- Operator: send (mail) and print (post) --------------------------------------
            operator.goto(f"{portal}/campaigns/{ids['campaign']}")
            _go(operator, "button:has-text('未送付の依頼を送付する')")
            camera(operator, "operator-campaign-sent")
            _go(operator, "form[action$='/print'] button")
            operator.goto(f"{portal}/mailings/")
            camera(operator, "operator-print-batch")

            # -- Subject (phone): the web form ------------------------------------------------
            session.expire_all()
            taro = _request_of("E1001")
            token = links.token_for(app.extensions["mynumber_keyring"], taro.id)
            phone = browser.new_context(
                viewport=PHONE,
                device_scale_factor=1,
                is_mobile=True,
                has_touch=True,
                locale="ja-JP",
            ).new_page()
            phone.goto(f"{form}/r/{token}")
            _birth(phone, TARO_BIRTH)
            phone.check("input[name=agree]")
            camera(phone, "subject-birth-date")  # the birth date and the consent: one page
            _go(phone, "button[type=submit]")
            camera(phone, "subject-household")
            _go(phone, "#continue")
            camera(phone, "subject-number")
            phone.fill("#number", NUMBER_SELF)
            phone.fill("#number_confirm", NUMBER_SELF)
            _go(phone, "button[type=submit]")
            camera(phone, "subject-documents")
            _go(phone, "text=マイナンバーカードがある")
            phone.set_input_files("#card_front", str(files / "front.jpg"))
            phone.set_input_files("#card_back", str(files / "back.jpg"))
            camera(phone, "subject-documents-card")
            _go(phone, "button[type=submit]")
            phone.fill("#number", NUMBER_DEP)
            phone.fill("#number_confirm", NUMBER_DEP)
            _go(phone, "button[type=submit]")
            _go(phone, "text=マイナンバーカードがない")
            phone.select_option("#number_doc_type", "juminhyo")
            phone.set_input_files("#number_doc", str(files / "juminhyo.pdf"))
            camera(phone, "subject-documents-dependent")
            _go(phone, "button[type=submit]")
            phone.goto(f"{form}/dependents/add")
            camera(phone, "subject-dependent-add")
            phone.goto(f"{form}/decline")
            camera(phone, "subject-decline")
            phone.goto(f"{form}/confirm")
            camera(phone, "subject-confirm")
            _go(phone, "#submit")
            camera(phone, "subject-done")
            # Later: the same link and the birth date again show the status.
            phone.goto(f"{form}/r/{token}")
            _birth(phone, TARO_BIRTH)
            _go(phone, "button[type=submit]")
            assert phone.url.endswith("/status"), phone.url
            camera(phone, "subject-status")
            phone.goto(f"{form}/contact")
            phone.fill("#name", "見本 太郎")
            phone.fill("#contact", "taro@example.jp")
            phone.select_option("#category", index=1)
            phone.fill("#body", "扶養親族の書類は住民票の写しでよいでしょうか。")
            camera(phone, "subject-contact")
            _go(phone, "button[type=submit]")
            phone.context.close()

            # -- Operator: verification queue; the dependent's document is unreadable --------
            operator.goto(f"{portal}/verification/")
            camera(operator, "operator-verification-queue")
            _go(operator, "button:has-text('担当する')")
            camera(operator, "operator-verification-claimed")
            _go(operator, "button:has-text('開封して確認する')")
            for box in operator.locator("form.mnv-accept input[type=checkbox]").all():
                box.check()
            camera(operator, "operator-verification-case")
            dependent = operator.locator("form.mnv-deficiency fieldset").last
            dependent.locator("input[value=number_doc_unreadable]").check()
            operator.fill("#def-note", "住民票の写しの番号が読み取れないため")
            operator.locator("form.mnv-deficiency").scroll_into_view_if_needed()
            camera(operator, "operator-deficiency", full_page=False)
            _go(operator, "form.mnv-deficiency button[type=submit]")
            camera(operator, "operator-deficiency-sent", full_page=False)

            # -- Subject: the status shows what to redo; only that is submitted again ---------
            phone = browser.new_context(
                viewport=PHONE,
                device_scale_factor=1,
                is_mobile=True,
                has_touch=True,
                locale="ja-JP",
            ).new_page()
            phone.goto(f"{form}/r/{token}")
            _birth(phone, TARO_BIRTH)
            _go(phone, "button[type=submit]")
            assert "不備あり" in phone.content()
            camera(phone, "subject-status-deficient")
            _go(phone, "#resubmit")
            phone.check("input[name=agree]")
            _go(phone, "button[type=submit]")
            assert phone.url.endswith("/documents"), phone.url
            _go(phone, "text=マイナンバーカードがない")
            phone.select_option("#number_doc_type", "notice_card")
            phone.set_input_files("#number_doc", str(files / "back.jpg"))
            camera(phone, "subject-resubmit")
            _go(phone, "button[type=submit]")
            _go(phone, "#submit")
            assert phone.url.endswith("/done"), phone.url
            phone.context.close()

            # -- Operator: the second round is accepted -------------------------------------
            operator.goto(f"{portal}/verification/")
            _go(operator, "button:has-text('担当する')")
            _go(operator, "button:has-text('開封して確認する')")
            for box in operator.locator("form.mnv-accept input[type=checkbox]").all():
                box.check()
            _go(operator, "form.mnv-accept button[type=submit]")
            camera(operator, "operator-verification-accepted", full_page=False)

            # -- Operator: paper intake with double keying -------------------------------------
            session.expire_all()
            jiro = _request_of("E1002")
            operator.goto(f"{portal}/paper/")
            operator.fill("#request_code", jiro.request_code)
            operator.fill("#tracking_number", "1234-5678-9012")
            camera(operator, "operator-paper-receive")
            _go(operator, "button:has-text('受け付ける')")
            ids["paper"] = operator.url.rstrip("/").rsplit("/", 1)[-1]
            operator.set_input_files("input[name=file]", str(files / "scan.jpg"))
            _go(operator, "button:has-text('スキャン画像を登録')")
            camera(operator, "operator-paper-keying")
            number = "".join(ch for ch in NUMBER_DEP)  # never shown: typed after the shot
            operator.fill("input[name=number]", number)
            _go(operator, "button:has-text('入力する')")
            second = pages["operator2"]
            second.goto(operator.url)
            second.fill("input[name=number]", number)
            _go(second, "button:has-text('入力する')")
            camera(second, "operator-paper-second-keying")
            _go(second, "button:has-text('入力を終えて確認待ちに登録する')")
            camera(second, "operator-paper-finished", full_page=False)

            # -- Client follows the campaign ---------------------------------------------------
            client.goto(f"{portal}/campaigns/{ids['campaign']}")
            camera(client, "client-campaign-status")
            session.expire_all()
            client.goto(f"{portal}/campaigns/request/{_request_of('E1001').id}")
            camera(client, "client-request-timeline")

            # -- ClientStaff: import (a problem listed) ---------------------------------------
            bad = files / "import-bad.csv"
            bad.write_text(
                "職員番号,職員氏名,本人区分,扶養者コード,生年月日,マイナンバー\r\n"
                "DEMO-E90001,見本 一郎,本人,DEMO-E90001-00,1980/02/30,123456789012\r\n",
                encoding="utf-8-sig",
            )
            client.goto(f"{portal}/io/import/")
            client.set_input_files("input[name=file]", str(bad))
            _choose_layout(client, "staff")
            camera(client, "client-import-form")
            _go(client, "button:has-text('検査する')")
            camera(client, "client-import-problems")

            # -- Roster: the administrator proposes, the client approves ---------------------
            admin.goto(f"{portal}/roster-changes/propose")
            _fill_roster_proposal(admin)
            camera(admin, "admin-roster-propose")
            _go(admin, "button:has-text('申請する')")
            client.goto(f"{portal}/roster-changes/")
            camera(client, "client-roster-approve")
            _go(client, "button[value=approve]")

            # -- Disposal: operator requests, client approves (TOTP), operator executes -----
            operator.goto(f"{portal}/disposal/new")
            operator.select_option("select[name=scope]", "people")
            operator.fill("textarea[name=codes]", "DEMO-E00040-00")
            operator.fill("textarea[name=reason]", "退職後の保存期間が満了したため")
            camera(operator, "operator-disposal-request")
            _go(operator, "button:has-text('申請する')")
            disposal_url = operator.url
            client.goto(disposal_url)
            # A code of a later time step than the one spent at the client's sign-in.
            client.fill("input[name=code]", unused_totp_code(app, *users["client"]))
            camera(client, "client-disposal-approve")
            _go(client, "button[value=approve]")
            operator.goto(disposal_url)
            camera(operator, "operator-disposal-execute")
            _go(operator, "button:has-text('廃棄を実行する')")
            camera(operator, "operator-disposal-done")
            client.goto(f"{portal}/certificates/")
            camera(client, "client-certificates")

            # -- Pages that need only to be opened, then the key rotation ----------------------
            for screen in SCREENS:
                page = pages[screen.who]
                page.goto(portal + screen.path.format(**ids))
                camera(page, screen.name, full_page=screen.full_page)
            admin.goto(f"{portal}/keys/")
            _go(admin, "button:has-text('KEK を更新して全データ鍵を再ラップする')")
            camera(admin, "admin-keys-rotated", full_page=False)
            auditor.goto(f"{portal}/audit-verify/")
            camera(auditor, "auditor-audit-verify")
            browser.close()
    finally:
        for server, thread in ((portal_server, portal_thread), (form_server, form_thread)):
            server.shutdown()
            thread.join(timeout=5)

    # Every image the manual references was just taken, and the PDF builds from them.
    referenced = referenced_images()
    missing = [name for name in referenced if not (MANUAL_DIR / name).is_file()]
    assert missing == [], f"マニュアルが参照する画像がありません: {missing}"
    unused = sorted({f"img/{name}.png" for name in camera.names} - set(referenced))
    assert unused == [], f"撮影したのにマニュアルが参照していない画像: {unused}"
    out = tmp_path / "manual.pdf"
    build_pdf(out)
    text = pdf_text(out.read_bytes())
    flat = re.sub(r"\s+", "", text)
    for title in chapter_titles():
        assert re.sub(r"\s+", "", title) in flat, title


def _fill_roster_proposal(page) -> None:
    page.select_option("select[name=action]", "add")
    for name, value in (
        ("name", "架空 三郎"),
        ("department", "業務センター"),
        ("title", "事務取扱担当者"),
        ("nationality", "日本"),
        ("reason", "繁忙期の増員のため"),
    ):
        locator = page.locator(f"[name={name}]")
        if locator.count():
            locator.fill(value)


def _choose_layout(page, name: str) -> None:
    """Pick a layout by its name (the options' values are database ids)."""
    for option in page.locator("select[name=layout] option").all():
        if option.inner_text().startswith(f"{name}（"):
            page.select_option("select[name=layout]", option.get_attribute("value"))
            return
    raise AssertionError(f"様式 {name} がありません")
