"""Billing screens: who edits prices, who records postage, and the messages on bad input."""

from sqlalchemy import select

from app.models import AuditEvent, PostageEntry, UnitPrice
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


def test_operator_records_postage_but_cannot_set_prices(client, make_user, login, session):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/unitpriceview/add").status_code == 403
    assert client.get("/unitpriceview/list/").status_code == 200
    response = post_form(
        client,
        "/postageentryview/add",
        {
            "direction": "return",
            "carrier": "日本郵便",
            "method": "簡易書留",
            "posted_on": "2026-10-20",
            "cost_yen": "460",
            "tracking_number": "",
            "note": "",
        },
    )
    assert response.status_code == 302
    session.expire_all()
    entry = session.execute(select(PostageEntry)).scalar_one()
    assert (entry.month, entry.cost_yen, entry.recorded_by) == ("2026-10", 460, user.username)


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
