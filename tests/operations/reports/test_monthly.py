"""The monthly report of a month built through the real services: targets loaded, a kit
e-mailed and a kit posted, a household submitting on the web, verification accepting it, a
return envelope and an inquiry. Its figures match a table computed by hand; the PDF says so
in Japanese, the CSV too (BOM or CP932, formulas neutralised), the e-mail carries the PDF to
the client's addresses, and no number appears in any of them or at rest."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.collection import kits
from app.core import jptime
from app.core.actor import Actor
from app.models import (
    AuditEvent,
    BillingCategory,
    Inquiry,
    MonthlyReport,
    UnitPrice,
    utcnow,
)
from app.operations import billing, desk
from app.operations.reports import delivery, monthly, output
from tests import support
from tests.collection import flows
from tests.collection.conftest import (
    NUMBER_HANAKO,
    NUMBER_JIRO,
    NUMBER_TARO,
    TARO_BIRTH,
    mail_text,
    token_from,
)
from tests.conftest import pdf_text
from tests.operations.reports.conftest import CLIENT, OPERATOR

C = BillingCategory
PRICES = {
    C.EMPLOYEE_KIT: 800,
    C.EMPLOYEE_SMARTPHONE: 1200,
    C.EXTERNAL_KIT: 700,
    C.EXTERNAL_REMINDER: 300,
    C.EXTERNAL_SMARTPHONE: 900,
    C.EXTERNAL_POSTAL: 1500,
}
NUMBERS = [NUMBER_TARO, NUMBER_HANAKO, NUMBER_JIRO]


def _shell():
    from app.access.policy import ShellActor

    return ShellActor(name="cli:test")


def _build_the_month(app, session, staff, operator, subject, jobs, smtp_server) -> str:
    """Everything happens now, so the month is this (JST) month."""
    for category, price in PRICES.items():
        session.add(
            UnitPrice(
                category=category,
                price_yen=price,
                effective_from=dt.date(2020, 1, 1),
                created_by="admin",
            )
        )
    session.commit()
    campaign, _loaded = flows.campaign_with_targets(app, staff)
    taro_req = flows.request_of("E1001")
    flows.dispatch(campaign, operator, jobs)  # E1001: a link by e-mail
    [message] = [m for m in smtp_server.messages if m["To"] == "taro@example.jp"]
    link = next(line for line in mail_text(message).splitlines() if "/r/" in line).strip()
    batch, _kit = flows.print_batch(app, campaign, operator, jobs)  # E1002: a kit by post
    kits.mark_posted(
        session,
        operator,
        batch,
        posted_on=jptime.today_jst(),
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_SEND_METHOD"],
    )
    session.commit()
    flows.submit_household_on_web(
        subject,
        token_from(link),
        str(taro_req.person_id),
        str(taro_req.person.dependents[0].id),
        NUMBERS,
        TARO_BIRTH,
    )
    session.expire_all()
    case, view = flows.claim_and_open(app, operator, taro_req)
    assert flows.accept(app, operator, case, view).registered == 3
    # The documents go back to the subject by a trackable method (返送, 370 yen).
    billing.record_postage(
        session,
        direction="return",
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_RETURN_METHOD"],
        posted_on=jptime.today_jst(),
        actor=operator,
    )
    session.commit()
    # Two inquiries: one still open, one answered in 2.5 business hours on the month's
    # first business day.
    desk.receive_public(
        session,
        Actor.system("form"),
        name="見本 太郎",
        contact="taro@example.jp",
        category=desk.SUBJECT_CATEGORIES[0],
        body="書類の書き方を教えてください",
    )
    month = billing.month_of(utcnow())
    year, mon = monthly.parse_month(month)
    first = jptime.next_business_day(dt.date(year, mon, 1))
    at = dt.datetime.combine(first, dt.time(10, 0), tzinfo=jptime.JST).astimezone(dt.UTC)
    session.add(
        Inquiry(
            name="見本 花子",
            contact="03-0000-0000",
            category="other",
            body="期限について",
            status="answered",
            received_at=at,
            first_response_at=at + dt.timedelta(hours=2, minutes=30),
            handled_by=operator.name,
        )
    )
    session.commit()
    return month


def test_the_month_matches_the_hand_computed_table(
    app, session, staff, operators, subject, jobs, kit_config, report_mail, needs_pdf
):
    month = _build_the_month(app, session, staff, operators[0], subject, jobs, report_mail)
    figures = monthly.compute(session, month)

    # 別表 × counts, by hand: kits 2 × 800 (one e-mailed, one posted), web collection of
    # one household 1 × 1200; nothing else.
    # One price version each, so one line per category.
    bill = {line["category"]: line for line in figures["billing"]["lines"]}
    assert len(bill) == len(figures["billing"]["lines"])
    assert (bill[C.EMPLOYEE_KIT]["count"], bill[C.EMPLOYEE_KIT]["amount"]) == (2, 1600)
    assert (bill[C.EMPLOYEE_SMARTPHONE]["count"], bill[C.EMPLOYEE_SMARTPHONE]["amount"]) == (
        1,
        1200,
    )
    for category in (C.EXTERNAL_KIT, C.EXTERNAL_REMINDER, C.EXTERNAL_SMARTPHONE, C.EXTERNAL_POSTAL):
        assert (bill[category]["count"], bill[category]["amount"]) == (0, 0)
    assert figures["billing"]["total"] == 2800
    assert (figures["billing"]["tax"], figures["billing"]["total_with_tax"]) == (280, 3080)
    # Postage at cost: the kit sent (250) and the documents returned (370).
    assert figures["postage"]["send"] == {"count": 1, "yen": 250}
    assert figures["postage"]["return"] == {"count": 1, "yen": 370}
    assert figures["postage"]["total_yen"] == 620
    # One household collected on the web: 3 people (the subject, the listed dependent and
    # the one they added).
    assert figures["collections"]["employee"]["web"] == {"households": 1, "people": 3}
    assert figures["collections"]["employee"]["paper"] == {"households": 0, "people": 0}
    assert figures["collections"]["external"]["web"] == {"households": 0, "people": 0}
    assert figures["verifications"] == {"accepted": 1, "deficient": 0, "refused": 0}
    assert figures["deficiencies"] == 0
    # Stored now: the one household (3 people); 髙橋 has sent nothing yet.
    assert figures["stored"]["employee"] == {"households": 1, "people": 3}
    assert figures["stored"]["external"] == {"households": 0, "people": 0}
    # Inquiries: two received, one answered after 2.5 business hours.
    assert figures["inquiries"]["received"] == 2
    assert figures["inquiries"]["answered"] == 1
    assert figures["inquiries"]["median_hours"] == 2.5
    assert figures["inquiries"]["within_one_day_share"] == 1.0
    # The fiscal year so far beside the plan (none is registered for this year).
    plan = {row["category"]: row for row in figures["plan"]["rows"]}
    assert plan[C.EMPLOYEE_KIT]["actual_households"] == 2
    assert (
        plan[C.EMPLOYEE_SMARTPHONE]["actual_households"],
        plan[C.EMPLOYEE_SMARTPHONE]["actual_people"],
    ) == (1, 3)
    assert figures["series"][-1] == {
        "month": month,
        "employee_households": 1,
        "external_people": 0,
    }

    # Generated and stored (snapshot + PDF + digest), then e-mailed to the client.
    delivery.save_notes(session, operators[0], month, '=HYPERLINK("x") 郵便局の遅延あり')
    row = delivery.generate(session, _shell(), month, client=CLIENT, operator=OPERATOR)
    text = pdf_text(row.pdf)
    for expected in (
        f"利用実績報告書（{monthly.month_label(month)}分）",
        f"{CLIENT} 御中",
        "収集の実績",
        "1,600",
        "2,800",
        "620",
        "2.5 時間",
        "郵便局の遅延あり",
        "月別の収集実績",
    ):
        assert expected in text, expected
    assert row.pdf_sha256 and len(row.pdf_sha256) == 64

    _name, csv_bytes, _mime = delivery.download(session, _shell(), month, "csv")
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    csv_text = csv_bytes.decode("utf-8-sig")
    assert (
        "請求,役職員(親族含) 案内: 収集キット郵送等（単価 2020-01-01 適用）,件数（/世帯）,2"
        in csv_text
    )
    assert "郵送費,返送,金額（円）,370" in csv_text
    assert "郵送費,返送 日本郵便" in csv_text  # broken down by carrier, service and rate
    assert "'=HYPERLINK" in csv_text  # a formula is neutralised
    _name, sjis, _mime = delivery.download(session, _shell(), month, "csv", "cp932")
    assert sjis.decode("cp932").splitlines()[0] == "区分,項目,内訳,値"

    sent = delivery.send(
        session,
        _shell(),
        month,
        recipients=app.config["REPORT_RECIPIENTS"],
        client=CLIENT,
        operator=OPERATOR,
    )
    assert sent.status == "sent"
    [mail] = [m for m in report_mail.messages if "keiri@client.example.jp" in m["To"]]
    assert "jinji@client.example.jp" in mail["To"]
    assert "利用実績報告書" in mail["Subject"]
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"利用実績報告書_{month}.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == row.pdf
    body = mail_text(mail)
    assert monthly.month_label(month) in body and "添付" in body

    # Every download and send is on the audit record.
    actions = [a for (a,) in session.execute(select(AuditEvent.action))]
    assert actions.count("report.download") == 2 and "report.send" in actions

    # No number anywhere: PDF text, CSV, mail, and nothing at rest.
    for number in NUMBERS:
        for form in support.number_forms(number):
            assert form not in csv_bytes and form not in mail.as_bytes()
        assert number not in text and number not in csv_text and number not in body
    assert support.leaks(app, NUMBERS) == []


def test_notes_refuse_a_number(app, session, operators):
    from app.core.mynumber import make_valid

    number = make_valid("12345678901")
    try:
        delivery.save_notes(session, operators[0], "2026-10", f"番号 {number} の件")
    except monthly.ReportError as exc:
        assert "個人番号" in str(exc) and number not in str(exc)
    else:
        raise AssertionError("a note with a number was stored")
    session.rollback()
    assert session.execute(select(MonthlyReport.notes)).scalars().all() in ([], [None])


def test_the_planned_volumes_are_seeded_from_the_spec(app, session):
    data = monthly.plan_vs_actual(session, "2023-10")
    rows = {r["category"]: r for r in data["rows"]}
    assert data["fiscal_year"] == 2023 and data["has_plan"]
    assert (
        rows[C.EMPLOYEE_SMARTPHONE]["planned_households"],
        rows[C.EMPLOYEE_SMARTPHONE]["planned_people"],
    ) == (450, 700)
    assert rows[C.EMPLOYEE_KIT]["planned_people"] is None  # 「-」 in the table
    assert rows[C.EXTERNAL_POSTAL]["planned_people"] == 150
    assert data["stored_plan"]["stored_employee"]["people"] == 3800


def test_a_chart_is_plain_svg():
    svg = output.bar_chart_svg(
        [{"month": "2026-04", "employee_households": 3, "external_people": 1}]
    )
    assert svg.startswith("<svg") and "<script" not in svg and "http://www.w3.org/2000/svg" in svg
    assert "href" not in svg  # no reference to anything outside


def test_a_csv_encoding_other_than_utf8_or_cp932_is_refused():
    import pytest

    with pytest.raises(monthly.ReportError):
        output.to_csv({}, "latin-1")
