"""A new user's walk on the real `mynumber run`: started as its own process on ports that are
not the defaults, with only `mynumber init` before it (who we are given as options) and a real
SMTP server (aiosmtpd) catching the mail. An Operator sends the campaign in Chromium; the
received mail's link opens the form served by that process; the subject submits on a
phone-sized screen and the receipt mail (受付のお知らせ) arrives with nothing run by hand.
Screenshots land in tests/artifacts/run/."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app import settings
from app.access.policy import CLIENT_STAFF, OPERATOR
from tests.collection import flows
from tests.collection.conftest import NUMBER_HANAKO, NUMBER_TARO, TARO_BIRTH, actor_of
from tests.conftest import TEST_IDENTITY, USER_PASSWORD
from tests.public_form.conftest import jpeg, pdf
from tests.public_form.test_browser import ARGS, CHROMIUM, PHONE, _chromium_or_skip
from tests.support import browser_sign_in

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "run"
LINK = re.compile(r"https?://\S+/r/\S+")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a loopback test URL
            return True
    except urllib.error.HTTPError:
        return True  # it answered (a redirect to the sign-in page, say)
    except OSError:
        return False


def _wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{seconds} 秒待っても {what}")


@pytest.fixture
def served(instance, smtp_server, tmp_path):
    """`mynumber init` (who we are as options), then `mynumber run` on two free ports."""
    admin_port, form_port = _free_port(), _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
        "SMTP_URL": smtp_server.url,
        "RATELIMIT_ENABLED": "0",
        "MYNUMBER_OUTBOX_INTERVAL_SECONDS": "1",
        "MYNUMBER_SQLITE_SYNCHRONOUS": "OFF",
    }
    options = []
    for key, value in TEST_IDENTITY.items():
        options += ["--" + key.lower().replace("_", "-"), value]
    # A fresh interpreter, as a new user's shell starts it (this process has threads running).
    init = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", "from app.cli import main; main()", "init", "--no-interactive"]
        + options,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert init.returncode == 0, init.stderr
    assert "発注者・受注者・窓口の設定" in init.stdout
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            "run",
            "--admin-port",
            str(admin_port),
            "--form-port",
            str(form_port),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    portal = f"http://127.0.0.1:{admin_port}"
    form = f"http://127.0.0.1:{form_port}"
    try:
        _wait_for(
            lambda: _answers(f"{form}/healthz") and _answers(f"{portal}/login/"),
            90,
            "mynumber run が応答しません: " + (tmp_path / "run.log").read_text(),
        )
        yield portal, form, smtp_server, tmp_path / "run.log"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _go(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def test_a_campaign_sent_on_any_port_reaches_the_form_and_the_receipt_arrives(
    app, session, make_user, served, tmp_path, backend
):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    portal, form, smtp, run_log = served
    assert f"メールと QR コードのリンク: {form}/r/" in run_log.read_text()
    operator, secret = make_user(OPERATOR)  # before the campaign: the client assigns them
    staff = actor_of(make_user(CLIENT_STAFF)[0], CLIENT_STAFF)
    campaign, _ = flows.campaign_with_targets(app, staff)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    front, juminhyo = tmp_path / "front.jpg", tmp_path / "jumin.pdf"
    front.write_bytes(jpeg())
    juminhyo.write_bytes(pdf())

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(
            locale="ja-JP", viewport={"width": 1280, "height": 900}
        ).new_page()
        browser_sign_in(page, portal, operator.username, USER_PASSWORD, secret)
        page.goto(f"{portal}/campaigns/{campaign.id}")
        _go(page, "text=未送付の依頼を送付する")
        assert "送付を開始しました" in page.content()
        page.screenshot(path=str(ARTIFACTS / f"sent-{backend}.png"), full_page=True)

        # The request mail arrives within seconds, with who we are and a link to this form.
        request_mail = _wait_for(lambda: list(smtp.messages), 30, "依頼メールが届きません")[0]
        assert request_mail["From"] == TEST_IDENTITY["MAIL_FROM"]
        assert request_mail["Subject"].startswith(f"【{TEST_IDENTITY['CLIENT_NAME']}】")
        body = request_mail.get_content()
        for placeholder in ("【発注者】", "受注者 の担当者", "0120-000-000", "example.jp）"):
            assert placeholder not in body
        assert TEST_IDENTITY["DESK_PHONE"] in body and TEST_IDENTITY["OPERATOR_NAME"] in body
        [link] = LINK.findall(body)
        assert link.startswith(f"{form}/r/"), link

        # Kits and the instance's other processes (`mynumber job dunning`) write the same
        # address: `run` stored it with the instance's settings.
        stored = settings.instance_settings(Path(app.config["MYNUMBER_HOME"]))
        assert stored["MYNUMBER_PUBLIC_FORM_URL"] == form

        # The subject, on a phone, follows the link and submits.
        phone = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="ja-JP"
        ).new_page()
        phone.goto(link)
        assert phone.url == f"{form}/verify"
        phone.screenshot(path=str(ARTIFACTS / f"link-opens-form-{backend}.png"), full_page=True)
        phone.select_option("select[name=year]", str(TARO_BIRTH.year))
        phone.select_option("select[name=month]", str(TARO_BIRTH.month))
        phone.select_option("select[name=day]", str(TARO_BIRTH.day))
        # The birth-date page also shows the purpose and asks for consent (one request fewer).
        phone.check("input[name=agree]")
        _go(phone, "button[type=submit]:not(#decline)")
        assert phone.url.endswith("/household")
        _go(phone, "#continue")
        phone.fill("#number", NUMBER_TARO)
        phone.fill("#number_confirm", NUMBER_TARO)
        _go(phone, "button[type=submit]")
        _go(phone, "text=マイナンバーカードがある")
        phone.set_input_files("#card_front", str(front))
        phone.set_input_files("#card_back", str(front))
        _go(phone, "button[type=submit]")
        phone.fill("#number", NUMBER_HANAKO)
        phone.fill("#number_confirm", NUMBER_HANAKO)
        _go(phone, "button[type=submit]")
        _go(phone, "text=マイナンバーカードがない")
        phone.select_option("#number_doc_type", "juminhyo")
        phone.set_input_files("#number_doc", str(juminhyo))
        _go(phone, "button[type=submit]")
        assert phone.url.endswith("/confirm")
        _go(phone, "#submit")
        assert phone.url.endswith("/done")
        receipt_no = phone.inner_text("#receipt")
        phone.screenshot(path=str(ARTIFACTS / f"done-{backend}.png"), full_page=True)

        # 受付のお知らせ arrives with nothing run by hand (the run process dispatches).
        receipt = _wait_for(
            lambda: [m for m in smtp.messages if "受け付けました" in m["Subject"]],
            30,
            "受付のお知らせが届きません",
        )[0]
        assert receipt["To"] == "taro@example.jp"
        assert receipt_no.strip() in receipt.get_content()

        # Nothing waits: the delivery screen shows no banner.
        page.goto(f"{portal}/mailings/")
        assert page.locator("#outbox-waiting").count() == 0
        browser.close()
