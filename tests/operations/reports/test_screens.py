"""Screens: 利用実績報告書 for the client's staff, operators and auditors (downloads audited);
a SystemAdmin sees months, due dates and delivery status only; the dashboard is the landing
page of the client's staff and the operators, with charts drawn on the server."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from app.access.policy import OPERATOR
from app.core.mynumber import make_valid
from app.models import AuditEvent, BillingCategory, MonthlyReport
from app.operations import billing
from app.operations.reports import delivery
from tests import support
from tests.conftest import ADMIN_PASSWORD


def _generated_october(session):
    billing.record_event(
        session,
        BillingCategory.EXTERNAL_KIT,
        "kit:x1",
        dt.datetime(2026, 10, 15, 3, tzinfo=dt.UTC),
    )
    session.commit()
    return delivery.generate(
        session, support.actor(OPERATOR), "2026-10", client="見本機構", operator="見本BPO"
    )


def _sign_in(make_user, login, role):
    user, secret = make_user(role)
    login(user.username, totp_secret=secret)
    return user


def test_auditor_reads_and_downloads_reports(client, make_user, login, session, needs_pdf):
    row = _generated_october(session)
    _sign_in(make_user, login, "Auditor")
    page = client.get("/reports/").get_data(as_text=True)
    assert "利用実績報告書" in page and "2026/11/10" in page
    assert "作成し直す" not in page and "特記事項を保存" not in page  # reads only
    response = client.get("/reports/2026-10.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data == row.pdf
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    csv = client.get("/reports/2026-10.csv?encoding=cp932")
    assert csv.status_code == 200 and "shift_jis" in csv.headers["Content-Type"]
    session.expire_all()
    downloads = (
        session.execute(select(AuditEvent).where(AuditEvent.action == "report.download"))
        .scalars()
        .all()
    )
    assert len(downloads) == 2 and {d.actor_name for d in downloads} == {downloads[0].actor_name}
    assert post_blocked(client, "/reports/2026-10/resend")


def test_the_page_shows_last_and_this_month_without_writing_them(client, make_user, login, session):
    """Looking is not a change: the two months are shown with their due dates, and no row is
    stored until a report or a note is saved for them."""
    from app.core import jptime
    from app.operations.reports import monthly

    _sign_in(make_user, login, OPERATOR)
    page = client.get("/reports/").get_data(as_text=True)
    today = jptime.today_jst()
    for month in (monthly.previous_month(today), f"{today.year:04d}-{today.month:02d}"):
        assert f"{month.replace('-', '年')}月" in page
        assert monthly.due_date(month).strftime("%Y/%m/%d") in page
    session.expire_all()
    assert session.execute(select(MonthlyReport)).scalars().all() == []


def post_blocked(client, url) -> bool:
    """A POST with a valid CSRF token (from the user's own password form) is refused."""
    token_from = "/resetmypassword/form"
    return support.post_form(client, url, {}, token_from=token_from).status_code == 403


def test_system_admin_sees_delivery_status_but_no_figures(client, login, session, needs_pdf):
    _generated_october(session)
    login("admin", ADMIN_PASSWORD)
    page = client.get("/reports/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "2026/11/10" in text and "未送信" in text
    assert "2026-10.pdf" not in text and "2026-10.csv" not in text  # no download links
    assert client.get("/reports/2026-10.pdf").status_code == 403
    assert client.get("/reports/2026-10.csv").status_code == 403
    assert client.get("/dashboard/").status_code == 403
    # The landing page stays the plain one for an administrator.
    assert client.get("/").status_code == 200


def test_operator_keeps_notes_generates_and_resends(
    app, client, make_user, login, session, smtp_server, needs_pdf
):
    app.config.update(SMTP_URL=smtp_server.url, REPORT_RECIPIENTS=["keiri@client.example.jp"])
    _sign_in(make_user, login, "Operator")
    response = support.post_form(
        client,
        "/reports/2026-10/notes",
        {"notes": "10月は郵便の遅延がありました"},
        token_from="/reports/",
    )
    assert response.status_code == 302
    # A note holding a number is refused, and the earlier note stays.
    number = make_valid("12345678901")
    refused = support.post_form(
        client,
        "/reports/2026-10/notes",
        {"notes": f"番号 {number}"},
        token_from="/reports/",
        follow_redirects=True,
    )
    assert "その他（特記事項）に個人番号と思われる12桁の数字" in refused.get_data(as_text=True)
    assert number not in refused.get_data(as_text=True)
    session.expire_all()
    row = session.execute(
        select(MonthlyReport).where(MonthlyReport.month == "2026-10")
    ).scalar_one()
    assert row.notes == "10月は郵便の遅延がありました"
    assert (
        support.post_form(
            client, "/reports/2026-10/generate", {}, token_from="/reports/"
        ).status_code
        == 302
    )
    sent = support.post_form(
        client, "/reports/2026-10/resend", {}, token_from="/reports/", follow_redirects=True
    )
    assert "送信しました" in sent.get_data(as_text=True)
    [message] = smtp_server.messages
    assert message["To"] == "keiri@client.example.jp"
    page = client.get("/reports/").get_data(as_text=True)
    assert "送信済" in page


def test_client_staff_land_on_the_dashboard(client, make_user, login, session):
    billing.record_event(session, BillingCategory.EXTERNAL_KIT, "kit:now", None)
    session.commit()
    _sign_in(make_user, login, "ClientStaff")
    landing = client.get("/")
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/dashboard/")
    page = client.get("/dashboard/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for expected in ("保管人数", "期限超過", "不備", "次の利用実績報告書", "請求対象件数", "<svg"):
        assert expected in text, expected
    # Charts are inline SVG: no script, nothing from another origin.
    for svg in re.findall(r"<svg.*?</svg>", text, flags=re.S):
        assert "<script" not in svg and "href" not in svg
    assert not re.search(r'(src|href)="https?://', text)
    csp = page.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp or "default-src" in csp
    # Client staff read reports but neither generate nor send them.
    assert client.get("/reports/").status_code == 200
    assert post_blocked(client, "/reports/2026-10/generate")


def test_operators_land_on_the_dashboard_too(client, make_user, login):
    _sign_in(make_user, login, "Operator")
    assert client.get("/").headers["Location"].endswith("/dashboard/")


def test_auditor_has_no_dashboard(client, make_user, login):
    _sign_in(make_user, login, "Auditor")
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/").status_code == 200


def test_operator_edits_the_planned_volumes_client_staff_read_them(
    client, make_user, login, session
):
    from app.models import PlannedVolume

    plan = session.execute(
        select(PlannedVolume).where(
            PlannedVolume.fiscal_year == 2023, PlannedVolume.category == "external_postal"
        )
    ).scalar_one()
    operator = _sign_in(make_user, login, "Operator")
    page = client.get("/plannedvolumeview/list/").get_data(as_text=True)
    assert "外部委員等 回収: 郵送収集（/人）" in page
    response = support.post_form(
        client,
        f"/plannedvolumeview/edit/{plan.id}",
        {"period_label": "2023年4月～2024年3月", "households": "160", "people": "160"},
    )
    assert response.status_code == 302
    session.expire_all()
    plan = session.get(PlannedVolume, plan.id)
    assert (plan.people, plan.updated_by) == (160, operator.username)
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "report.plan_set")
    ).scalar_one()
    client.get("/logout/")
    _sign_in(make_user, login, "ClientStaff")
    assert client.get("/plannedvolumeview/list/").status_code == 200
    assert client.get(f"/plannedvolumeview/edit/{plan.id}").status_code == 403


def test_a_sent_report_is_corrected_as_a_second_version_on_the_portal(
    app, client, make_user, login, session, smtp_server, needs_pdf
):
    app.config.update(SMTP_URL=smtp_server.url, REPORT_RECIPIENTS=["keiri@client.example.jp"])
    _generated_october(session)
    _sign_in(make_user, login, "Operator")
    support.post_form(client, "/reports/2026-10/resend", {}, token_from="/reports/")
    page = client.get("/reports/").get_data(as_text=True)
    assert "訂正版（第2版）を作成" in page  # in place of 作成し直す
    # Without a reason the service refuses (the CLI calls the same one).
    refused = support.post_form(
        client, "/reports/2026-10/generate", {}, token_from="/reports/", follow_redirects=True
    )
    assert "送付済みのため変更できません" in refused.get_data(as_text=True)
    done = support.post_form(
        client,
        "/reports/2026-10/generate",
        {"reason": "外部委員の案内件数の訂正"},
        token_from="/reports/",
        follow_redirects=True,
    )
    assert "（第2版）を作成しました" in done.get_data(as_text=True)
    session.expire_all()
    row = session.execute(
        select(MonthlyReport).where(MonthlyReport.month == "2026-10")
    ).scalar_one()
    assert [v.version for v in row.versions] == [1, 2]
    page = client.get("/reports/").get_data(as_text=True)
    assert "第1版" in page and "訂正理由（第2版）: 外部委員の案内件数の訂正" in page
    first = client.get("/reports/2026-10.pdf?version=1")
    assert first.status_code == 200 and first.data == row.versions[0].pdf
