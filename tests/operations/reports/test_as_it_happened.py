"""The bill says what really happened, and every figure counts the same way (frozen clock,
SQLite and PostgreSQL): external members e-mailed before the channel rule are billed as
e-mail guidance on a line of their own with a note, no kit, no postage (a bounce re-sent by
post was a kit); the dashboard and the plan-vs-actual table count 督促 in the agreed unit
like the bill; a tombstone keeps its number's registration date, so a disposal after month
end leaves earlier months' storage counts exactly as they were; 集計日時 is marked JST."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.collection import dashboard
from app.core.mynumber import make_valid
from app.models import BillingCategory as C
from app.models import (
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    MyNumberRecord,
    Person,
    PersonKind,
)
from app.operations import billing
from app.operations.reports import delivery, monthly, output
from app.people import registry
from tests.conftest import pdf_text
from tests.lifecycle.helpers import dispose
from tests.operations.reports.conftest import CLIENT
from tests.operations.reports.test_edges import (
    ISSUER,
    OP,
    _external_requests,
    _fee_table,
    _prices,
    _shell,
    jst,
)


def _request_sent(session, req, channel: str, status: str, at: dt.datetime, seq: int = 1):
    """A request delivery as mailings.on_sent leaves it, with the kit's billable event."""
    session.add(
        Delivery(
            request_id=req.id,
            campaign_id=req.campaign_id,
            kind=DeliveryKind.REQUEST,
            seq=seq,
            channel=channel,
            status=status,
            sent_at=at,
        )
    )
    billing.record_event(session, C.EXTERNAL_KIT, f"kit:{req.id}", at, req.id)


def test_emailed_external_members_are_billed_as_email_guidance_with_a_note(
    app, session, vault, needs_pdf
):
    app.config.update(ISSUER)
    _prices(session)
    _fee_table(session)
    mailed_a, mailed_b, posted, bounced = _external_requests(session, vault, 4)
    # Two e-mailed before the channel rule existed; one sent the kit by post; one e-mailed,
    # bounced, and re-sent by post (a kit after all).
    _request_sent(session, mailed_a, Channel.EMAIL, DeliveryStatus.SENT, jst(2026, 11, 5, 10))
    _request_sent(session, mailed_b, Channel.EMAIL, DeliveryStatus.SENT, jst(2026, 11, 5, 11))
    _request_sent(session, posted, Channel.POST, DeliveryStatus.SENT, jst(2026, 11, 6, 10))
    _request_sent(session, bounced, Channel.EMAIL, DeliveryStatus.BOUNCED, jst(2026, 11, 7, 10))
    session.add(
        Delivery(
            request_id=bounced.id,
            campaign_id=bounced.campaign_id,
            kind=DeliveryKind.REQUEST,
            seq=2,
            channel=Channel.POST,
            status=DeliveryStatus.SENT,
            sent_at=jst(2026, 11, 9, 10),
        )
    )
    for day in (6, 9):  # the two kits posted
        billing.record_postage(
            session,
            direction="send",
            carrier="日本郵便",
            method="定形郵便 50g以内",
            posted_on=dt.date(2026, 11, day),
            actor=OP,
            today=dt.date(2026, 11, 30),
        )
    session.commit()

    lines = [
        (x.label, x.count, x.unit_price, x.amount)
        for x in billing.monthly_lines(session, "2026-11")
        if x.count
    ]
    # By hand: 2 kits × 700 = 1,400 and 2 e-mail guidances × 700 = 1,400 (the 案内 price
    # agreed for external members, no kit, no postage); postage 2 × 110 = 220 for the kits.
    assert lines == [
        ("外部委員等 案内: 収集キット郵送", 2, 700, 1400),
        (billing.EMAILED_LABEL, 2, 700, 1400),
    ]

    row = delivery.generate(
        session,
        _shell(),
        "2026-11",
        client=CLIENT,
        operator="運用 株式会社",
        now=jst(2026, 12, 1, 10),
    )
    figures = delivery.figures(row)
    bill = figures["billing"]
    assert (bill["total"], bill["tax"], bill["total_with_tax"]) == (2800, 280, 3080)
    assert figures["postage"]["total_yen"] == 220
    note = "外部委員へのメール案内 2 件（仕様 5.2-3 の対象外"
    assert [n[: len(note)] for n in bill["notes"]] == [note]

    report_text = pdf_text(row.pdf).replace("\n", "")
    invoice_text = pdf_text(row.invoice_pdf).replace("\n", "")
    for text in (report_text, invoice_text):
        assert "メールでの案内" in text and note in text
    assert "ご請求金額 3,300 円" in invoice_text
    # 集計日時 is JST and says so, in the PDF and the CSV alike.
    assert "集計日時 2026/12/01 10:00（JST）" in report_text
    csv_rows = output.to_csv(figures).decode("utf-8-sig")
    assert "報告,集計日時,,2026/12/01 10:00（JST）" in csv_rows
    assert "請求,注記,," + note in csv_rows


def _reminded(session, vault) -> None:
    """One campaign: one person reminded three times, another once, in November 2026."""
    _prices(session)
    a, b = _external_requests(session, vault, 2)
    for n, day in enumerate((10, 17, 24), start=1):
        billing.record_event(
            session, C.EXTERNAL_REMINDER, f"reminder:{a.id}:{n}", jst(2026, 11, day), a.id
        )
    billing.record_event(
        session, C.EXTERNAL_REMINDER, f"reminder:{b.id}:1", jst(2026, 11, 10), b.id
    )
    session.commit()


def _counts(session) -> tuple[int, int, int]:
    """督促 as the bill, the plan-vs-actual table and the dashboard count them."""
    bill = sum(
        x.count
        for x in billing.monthly_lines(session, "2026-11")
        if x.category == C.EXTERNAL_REMINDER
    )
    plan = next(
        r
        for r in monthly.compute(session, "2026-11", now=jst(2026, 12, 1))["plan"]["rows"]
        if r["category"] == C.EXTERNAL_REMINDER
    )
    board = sum(
        x.count
        for x in dashboard.figures(session, dt.date(2026, 11, 30))["billing"]
        if x.category == C.EXTERNAL_REMINDER
    )
    return bill, plan["actual_households"], board


def test_the_dashboard_and_the_plan_count_reminders_in_the_billed_unit(app, session, vault):
    _reminded(session, vault)
    app.config["BILLING_REMINDER_UNIT"] = "person"
    assert _counts(session) == (2, 2, 2)  # two people, once each for the campaign
    app.config["BILLING_REMINDER_UNIT"] = "reminder"
    assert _counts(session) == (4, 4, 4)  # four reminders sent


def test_a_disposal_after_month_end_keeps_the_registration_date(app, session, vault, make_user):
    """Created in August, number registered on October 15, disposed in December: stored at
    the end of October but not of September, before and after the disposal alike."""
    person = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="保管 試験", code="X900"
    )
    registry.register_number(session, vault, person, make_valid("55443322110"), "manual")
    session.commit()
    october = jst(2026, 10, 15, 12)
    session.execute(
        MyNumberRecord.__table__.update()
        .where(MyNumberRecord.person_id == person.id)
        .values(registered_at=october)
    )
    session.execute(
        Person.__table__.update()
        .where(Person.id == person.id)
        .values(created_at=jst(2026, 8, 20, 12))
    )
    session.commit()

    def stored() -> tuple[int, int]:
        return tuple(
            monthly.compute(session, m, now=jst(2026, 12, 1))["stored"]["external"]["people"]
            for m in ("2026-09", "2026-10")
        )

    before = stored()
    assert before == (0, 1)
    dispose(session, vault, app, make_user, [person.id])
    session.expire_all()
    tombstone = session.get(Person, person.id)
    assert tombstone.disposed_at is not None and tombstone.code is None
    assert tombstone.number_registered_at == october
    assert (
        session.execute(select(MyNumberRecord).where(MyNumberRecord.person_id == person.id)).first()
        is None
    )
    assert stored() == before
