"""Billing screens: who edits prices, who records postage, and the messages on bad input."""

import datetime as dt
import json

from sqlalchemy import select

from app.core import jptime
from app.models import (
    AuditEvent,
    MonthlyReport,
    PostageEntry,
    PostageRate,
    ReportDelivery,
    UnitPrice,
)
from tests.conftest import ADMIN_PASSWORD
from tests.support import post_form


def test_system_admin_adds_a_price_version_which_is_audited(client, login, session):
    login("admin", ADMIN_PASSWORD)
    response = post_form(
        client,
        "/unitpriceview/add",
        {
            "category": "external_reminder",
            "price_yen": "300",
            "effective_from": "2026-04-01",
            "note": "契約単価",
        },
    )
    assert response.status_code == 302
    session.expire_all()
    price = session.execute(select(UnitPrice)).scalar_one()
    assert (price.price_yen, price.created_by) == (300, "admin")
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "billing.price_set")
    ).scalar_one()
    page = client.get("/unitpriceview/list/").get_data(as_text=True)
    assert "外部委員等 督促: 督促の連絡（/人）" in page and "300 円" in page


def test_negative_price_is_refused_with_a_message(client, login, session):
    login("admin", ADMIN_PASSWORD)
    response = post_form(
        client,
        "/unitpriceview/add",
        {"category": "external_kit", "price_yen": "-5", "effective_from": "2026-04-01"},
        follow_redirects=True,
    )
    assert "0以上の整数" in response.get_data(as_text=True)
    session.expire_all()
    assert session.execute(select(UnitPrice)).first() is None


def _fee_table(session) -> None:
    session.add(
        PostageRate(
            carrier="日本郵便",
            method="簡易書留",
            price_yen=460,
            effective_from=dt.date(2024, 10, 1),
            created_by="test",
        )
    )
    session.commit()


def test_operator_records_postage_but_cannot_set_prices(client, make_user, login, session):
    _fee_table(session)
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/unitpriceview/add").status_code == 403
    assert client.get("/unitpriceview/list/").status_code == 200
    today = jptime.today_jst()
    response = post_form(
        client,
        "/postageentryview/add",
        {
            "direction": "return",
            "carrier": "日本郵便",
            "method": "簡易書留",
            "posted_on": today.isoformat(),
            "cost_yen": "460",
            "tracking_number": "",
            "note": "",
        },
    )
    assert response.status_code == 302
    session.expire_all()
    entry = session.execute(select(PostageEntry)).scalar_one()
    assert (entry.month, entry.cost_yen, entry.recorded_by) == (
        today.strftime("%Y-%m"),
        460,
        user.username,
    )
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "billing.postage_record")
    ).scalar_one()
    assert event.actor_name == user.username


def test_a_negative_or_future_postage_entry_is_refused(client, make_user, login, session):
    _fee_table(session)
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    today = jptime.today_jst()
    for changes, message in (
        ({"cost_yen": "-500"}, "料金（円）: 0以上の整数"),
        (
            {"posted_on": (today + dt.timedelta(days=40)).isoformat(), "cost_yen": "460"},
            "は記録できる期間",
        ),
    ):
        values = {
            "direction": "send",
            "carrier": "日本郵便",
            "method": "簡易書留",
            "posted_on": today.isoformat(),
            "cost_yen": "",
            "tracking_number": "",
            "note": "",
            **changes,
        }
        response = post_form(client, "/postageentryview/add", values, follow_redirects=True)
        assert message in response.get_data(as_text=True)
    session.expire_all()
    assert session.execute(select(PostageEntry)).first() is None


def test_a_fee_table_version_is_audited(client, make_user, login, session):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    response = post_form(
        client,
        "/postagerateview/add",
        {
            "carrier": "日本郵便",
            "method": "簡易書留",
            "price_yen": "460",
            "effective_from": "2026-04-01",
            "submitted_to_client_on": "2026-03-20",
        },
    )
    assert response.status_code == 302
    session.expire_all()
    rate = session.execute(select(PostageRate)).scalar_one()
    assert rate.created_by == user.username
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "billing.rate_set")
    ).scalar_one()


def test_postage_without_cost_or_fee_table_is_refused(client, make_user, login, session):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    response = post_form(
        client,
        "/postageentryview/add",
        {
            "direction": "send",
            "carrier": "日本郵便",
            "method": "定形郵便",
            "posted_on": "2026-10-20",
            "cost_yen": "",
            "tracking_number": "",
            "note": "",
        },
        follow_redirects=True,
    )
    assert "料金表" in response.get_data(as_text=True)
    session.expire_all()
    assert session.execute(select(PostageEntry)).first() is None


def test_auditor_reads_prices_but_adds_nothing(client, make_user, login):
    user, secret = make_user("Auditor", roster=None)
    login(user.username, totp_secret=secret)
    assert client.get("/unitpriceview/list/").status_code == 200
    assert client.get("/postageentryview/list/").status_code == 200
    assert client.get("/postageentryview/add").status_code == 403


def test_a_price_inside_a_sent_month_needs_a_correction_reason(client, login, session):
    report = MonthlyReport(month="2026-11", due_on=dt.date(2026, 12, 10))
    session.add(report)
    session.flush()
    session.add(
        ReportDelivery(
            report_id=report.id,
            recipients="keiri@client.example.jp",
            trigger="scheduled",
            requested_by="job:monthly_report",
            status="sent",
            pdf_sha256="0" * 64,
        )
    )
    session.commit()
    login("admin", ADMIN_PASSWORD)
    values = {
        "category": "external_postal",
        "price_yen": "1400",
        "effective_from": "2026-11-20",
        "note": "",
        "correction_reason": "",
    }
    response = post_form(client, "/unitpriceview/add", values, follow_redirects=True)
    assert "2026年11月分の報告書は送付済みです" in response.get_data(as_text=True)
    session.expire_all()
    assert session.execute(select(UnitPrice)).first() is None

    values["correction_reason"] = "契約変更により改定"
    assert post_form(client, "/unitpriceview/add", values).status_code == 302
    session.expire_all()
    price = session.execute(select(UnitPrice)).scalar_one()
    assert "訂正理由: 契約変更により改定" in price.note


def test_a_blank_fee_is_filled_from_the_fee_table_on_the_form(client, make_user, login, session):
    """料金 is optional on the ledger form: blank takes the fee table's rate for the chosen
    carrier and service on that day; a value typed in is still checked."""
    _fee_table(session)
    session.add(
        PostageRate(
            carrier="日本郵便",
            method="定形郵便 50g以内",
            price_yen=110,
            effective_from=dt.date(2024, 10, 1),
            created_by="test",
        )
    )
    session.commit()
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    form = client.get("/postageentryview/add").get_data(as_text=True)
    cost_input = form[form.index('id="cost_yen"') - 200 : form.index('id="cost_yen"') + 200]
    assert "required" not in cost_input
    assert "空欄なら料金表のその日の料金を使います" in form
    today = jptime.today_jst()
    values = {
        "direction": "send",
        "carrier": "日本郵便",
        "method": "定形郵便 50g以内",
        "posted_on": today.isoformat(),
        "cost_yen": "",
        "tracking_number": "",
        "note": "",
    }
    assert post_form(client, "/postageentryview/add", values).status_code == 302
    refused = post_form(
        client,
        "/postageentryview/add",
        {**values, "method": "簡易書留", "cost_yen": "-460"},
        follow_redirects=True,
    )
    assert "料金（円）: 0以上の整数" in refused.get_data(as_text=True)
    session.expire_all()
    entries = session.execute(select(PostageEntry)).scalars().all()
    assert [(e.method, e.cost_yen) for e in entries] == [("定形郵便 50g以内", 110)]
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "billing.postage_record")
    ).scalar_one()
    assert json.loads(event.details)["cost_yen"] == 110
    page = client.get("/postageentryview/list/").get_data(as_text=True)
    assert "110 円" in page
