"""A month billed by hand and the edges an agency's accounting desk checks, with a frozen
clock (every time is given to the services): November 2026 with a price change on 11/16,
four people reminded six times, postage by carrier and rate; the 請求書 read back with pypdf;
a report that was sent never changes (a back-dated price needs 第2版); March closes at
17:00 on 3/31 and what follows is April's own line; a month the job missed is still sent;
a disposal after month end leaves the month's counts; external members stay on the kit; the
postage ledger refuses a negative or out-of-month entry and audits every change."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from sqlalchemy import select, update

from app.collection import campaigns, targets
from app.core import jptime
from app.core.actor import Actor
from app.core.mynumber import make_valid
from app.models import (
    AuditEvent,
    Campaign,
    CampaignKind,
    Channel,
    CollectionRequest,
    MyNumberRecord,
    Person,
    PersonKind,
    PostageRate,
    UnitPrice,
)
from app.models import BillingCategory as C
from app.operations import billing
from app.operations.reports import delivery, invoice, monthly
from app.people import registry
from tests.conftest import pdf_text
from tests.lifecycle.helpers import dispose, population
from tests.operations.reports.conftest import CLIENT, OPERATOR

OP = Actor.system("op:test")
PRICES = {
    C.EMPLOYEE_KIT: 800,
    C.EMPLOYEE_SMARTPHONE: 1200,
    C.EXTERNAL_KIT: 700,
    C.EXTERNAL_REMINDER: 300,
    C.EXTERNAL_SMARTPHONE: 900,
    C.EXTERNAL_POSTAL: 1500,
}
ISSUER = {
    "OPERATOR_NAME": OPERATOR,
    "OPERATOR_POSTAL_CODE": "100-0005",
    "OPERATOR_ADDRESS": "東京都千代田区丸の内1-1-1",
    "INVOICE_REGISTRATION_NUMBER": "T1234567890123",
    "CONTRACT_TITLE": "マイナンバー収集・保管・利用業務委託",
    "OPERATOR_RESPONSIBLE": "見本 責任者",
    "CLIENT_NAME": CLIENT,
}


def jst(*args) -> dt.datetime:
    """A JST wall time, handed to the services in UTC (as they store it)."""
    return dt.datetime(*args, tzinfo=jptime.JST).astimezone(dt.UTC)


def _shell():
    from app.access.policy import ShellActor

    return ShellActor(name="cli:test")


def _prices(session) -> None:
    for category, price in PRICES.items():
        session.add(
            UnitPrice(
                category=category,
                price_yen=price,
                effective_from=dt.date(2026, 4, 1),
                created_by="admin",
            )
        )
    session.flush()


def _fee_table(session) -> None:
    for method, price in (("定形郵便 50g以内", 110), ("簡易書留", 460)):
        session.add(
            PostageRate(
                carrier="日本郵便",
                method=method,
                price_yen=price,
                effective_from=dt.date(2024, 10, 1),
                submitted_to_client_on=dt.date(2026, 4, 1),
                created_by="op",
            )
        )
    session.flush()


def _external_requests(session, vault, n: int) -> list[CollectionRequest]:
    """n external members, each with a request of one campaign (the kit by post)."""
    campaign = Campaign(
        name="外部委員 2026",
        kind=CampaignKind.EXTERNAL,
        deadline=dt.date(2026, 12, 15),
        purpose_text="報酬の支払調書作成のため",
        created_by="op",
    )
    session.add(campaign)
    session.flush()
    out = []
    for i in range(n):
        person = registry.add_person(
            session, vault, kind=PersonKind.EXTERNAL, name=f"外部 委員{i}", code=f"X{100 + i}"
        )
        req = CollectionRequest(
            person_id=person.id,
            token_hash=hashlib.sha256(uuid.uuid4().bytes).digest(),
            purpose_text=campaign.purpose_text,
            expires_at=jst(2026, 12, 31, 23, 59),
            created_by="op",
            campaign_id=campaign.id,
            channel=Channel.POST,
        )
        session.add(req)
        out.append(req)
    session.flush()
    return out


def _november(session, vault) -> None:
    """The month billed by hand below."""
    _prices(session)
    _fee_table(session)
    # From 11/16 a household's kit costs 850 (a price version added before the report).
    session.add(
        UnitPrice(
            category=C.EMPLOYEE_KIT,
            price_yen=850,
            effective_from=dt.date(2026, 11, 16),
            created_by="admin",
        )
    )
    for i in range(2):
        billing.record_event(session, C.EMPLOYEE_KIT, f"kit:a{i}", jst(2026, 11, 5, 10))
    for i in range(3):
        billing.record_event(session, C.EMPLOYEE_KIT, f"kit:b{i}", jst(2026, 11, 20, 10))
    # Four people reminded six times; a fifth was first reminded in October (billed then).
    reqs = _external_requests(session, vault, 5)
    times = {0: [10, 17, 24], 1: [10], 2: [17], 3: [24], 4: [10]}
    for i, days in times.items():
        for n, day in enumerate(days, start=1):
            billing.record_event(
                session, C.EXTERNAL_REMINDER, f"reminder:{reqs[i].id}:{n + 1}", jst(2026, 11, day)
            )
    billing.record_event(
        session, C.EXTERNAL_REMINDER, f"reminder:{reqs[4].id}:1", jst(2026, 10, 28), reqs[4].id
    )
    for i, days in times.items():  # the request ids, as mailings.on_sent records them
        for n, _day in enumerate(days, start=1):
            session.execute(
                update(billing.BillableEvent)
                .where(billing.BillableEvent.subject_key == f"reminder:{reqs[i].id}:{n + 1}")
                .values(request_id=reqs[i].id)
            )
    # A paper collection late on the month's last day is still November's.
    billing.record_event(session, C.EXTERNAL_POSTAL, "collect:p1", jst(2026, 11, 30, 23, 30))
    for day in (4, 5, 6):
        billing.record_postage(
            session,
            direction="send",
            carrier="日本郵便",
            method="定形郵便 50g以内",
            posted_on=dt.date(2026, 11, day),
            actor=OP,
            today=dt.date(2026, 11, 30),
        )
    billing.record_postage(
        session,
        direction="return",
        carrier="日本郵便",
        method="簡易書留",
        posted_on=dt.date(2026, 11, 25),
        actor=OP,
        today=dt.date(2026, 11, 30),
    )
    session.commit()


def test_a_month_and_its_invoice_match_the_hand_computed_bill(app, session, vault, needs_pdf):
    app.config.update(ISSUER)
    _november(session, vault)

    lines = [
        (x.category, x.count, x.unit_price, x.amount, x.reminders)
        for x in billing.monthly_lines(session, "2026-11")
        if x.count
    ]
    # By hand: kits 2 × 800 and 3 × 850; reminders 4 people × 300 (6 reminders beside);
    # one paper collection 1 × 1500.
    assert lines == [
        (C.EMPLOYEE_KIT, 2, 800, 1600, None),
        (C.EMPLOYEE_KIT, 3, 850, 2550, None),
        (C.EXTERNAL_REMINDER, 4, 300, 1200, 6),
        (C.EXTERNAL_POSTAL, 1, 1500, 1500, None),
    ]
    # The fifth person was billed in October, once for the campaign.
    october = [x for x in billing.monthly_lines(session, "2026-10") if x.count]
    assert [(x.category, x.count) for x in october] == [(C.EXTERNAL_REMINDER, 1)]
    # Billed per reminder when that is what the client agreed: all 7 of November (the
    # fifth person's second reminder included).
    per_reminder = billing.monthly_lines(session, "2026-11", "reminder")
    assert [(x.count, x.unit) for x in per_reminder if x.category == C.EXTERNAL_REMINDER] == [
        (7, "回")
    ]

    row = delivery.generate(
        session, _shell(), "2026-11", client=CLIENT, operator=OPERATOR, now=jst(2026, 12, 1, 10)
    )
    figures = delivery.figures(row)
    bill = figures["billing"]
    # 6,850 税抜; 消費税 685; 7,535 税込; postage 3 × 110 + 1 × 460 = 790 at cost.
    assert (bill["total"], bill["tax"], bill["total_with_tax"]) == (6850, 685, 7535)
    assert figures["postage"]["breakdown"] == [
        {
            "direction": "send",
            "direction_label": "発送",
            "carrier": "日本郵便",
            "method": "定形郵便 50g以内",
            "unit_yen": 110,
            "count": 3,
            "yen": 330,
        },
        {
            "direction": "return",
            "direction_label": "返送",
            "carrier": "日本郵便",
            "method": "簡易書留",
            "unit_yen": 460,
            "count": 1,
            "yen": 460,
        },
    ]
    assert figures["period"] == "2026年11月1日 00:00～2026年11月30日 24:00（日本時間）"

    text = pdf_text(row.invoice_pdf)
    for expected in (
        "請求書",
        f"{CLIENT} 御中",
        "発行日 2026年12月1日",
        "登録番号 T1234567890123",
        ISSUER["OPERATOR_ADDRESS"],
        ISSUER["CONTRACT_TITLE"],
        "責任者 見本 責任者",
        "2026/11/16",  # the price version of the 850 line
        "2,550",
        "督促の送付 6 回",
        "6,850",
        "消費税（10%）",
        "685",
        "7,535",
        "簡易書留",
        "790",
        "ご請求金額 8,325 円",
        "運送・郵送料金表",
        "2026/04/01",  # the fee table's submission to the client
    ):
        assert expected in text, expected
    assert "複数" not in text and "複数" not in pdf_text(row.pdf)
    assert "消費税（10%）" in pdf_text(row.pdf)


def test_march_closes_at_1700_and_what_follows_is_aprils_own_line(app, session, needs_pdf):
    _prices(session)
    billing.record_event(session, C.EMPLOYEE_KIT, "kit:before", jst(2027, 3, 31, 16, 59))
    billing.record_event(session, C.EMPLOYEE_KIT, "kit:after", jst(2027, 3, 31, 17, 45))
    billing.record_event(session, C.EMPLOYEE_KIT, "kit:april", jst(2027, 4, 12, 11))
    session.commit()

    march = [x for x in billing.monthly_lines(session, "2027-03") if x.count]
    assert [(x.count, x.carried) for x in march] == [(1, False)]
    april = [x for x in billing.monthly_lines(session, "2027-04") if x.count]
    assert [(x.count, x.carried) for x in april] == [(1, True), (1, False)]
    assert "前月締切後 03/31 17:00～24:00 分" in april[0].label
    # Every event in exactly one report.
    assert sum(x.count for x in march + april) == 3

    row = delivery.generate(
        session, _shell(), "2027-03", client=CLIENT, operator=OPERATOR, now=jst(2027, 3, 31, 17)
    )
    assert "2027年3月31日 17:00" in delivery.figures(row)["period"]
    april_figures = monthly.compute(session, "2027-04", now=jst(2027, 5, 6, 17))
    assert april_figures["period"].startswith("2027年3月31日 17:00～2027年4月30日 24:00")
    assert april_figures["period_detail"]["carried_from"]


def test_a_sent_report_never_changes_a_back_dated_price_needs_a_second_version(
    app, session, vault, report_mail, needs_pdf
):
    app.config.update(ISSUER)
    _november(session, vault)
    row = delivery.generate(
        session, _shell(), "2026-11", client=CLIENT, operator=OPERATOR, now=jst(2026, 12, 1, 10)
    )
    first_pdf, first_invoice = row.pdf, row.invoice_pdf
    sent = delivery.send(
        session,
        _shell(),
        "2026-11",
        recipients=app.config["REPORT_RECIPIENTS"],
        client=CLIENT,
        operator=OPERATOR,
    )
    assert sent.status == "sent"
    [first_mail] = report_mail.messages
    assert [a.get_filename() for a in first_mail.iter_attachments()] == [
        "利用実績報告書_2026-11.pdf",
        "請求書_2026-11.pdf",
    ]

    # A price dated inside the sent month: refused without a reason, naming the month.
    with pytest.raises(billing.BillingError) as info:
        billing.add_price(
            session,
            OP,
            category=C.EXTERNAL_POSTAL,
            price_yen=1400,
            effective_from=dt.date(2026, 11, 20),
        )
    assert "2026年11月分の報告書は送付済み" in str(info.value)
    session.rollback()
    billing.add_price(
        session,
        OP,
        category=C.EXTERNAL_POSTAL,
        price_yen=1400,
        effective_from=dt.date(2026, 11, 20),
        correction_reason="郵送収集の単価を契約変更により11/20から改定",
    )
    session.commit()
    assert delivery.corrections_due(session) == {"2026-11": ["単価改定（2026/11/20 適用）"]}
    # A price from the day after the period does not reach back.
    billing.add_price(
        session, OP, category=C.EXTERNAL_KIT, price_yen=750, effective_from=dt.date(2026, 12, 1)
    )
    session.commit()
    assert list(delivery.corrections_due(session)) == ["2026-11"]

    # Generating again is refused (CLI and portal call the same service) ...
    with pytest.raises(monthly.ReportError) as info:
        delivery.generate(session, _shell(), "2026-11", client=CLIENT, operator=OPERATOR)
    assert "送付済みのため変更できません" in str(info.value)
    session.rollback()
    assert (row.version, row.pdf, row.invoice_pdf) == (1, first_pdf, first_invoice)

    # ... a correction is 第2版 with its reason; the first stays, byte for byte.
    row = delivery.generate(
        session,
        _shell(),
        "2026-11",
        client=CLIENT,
        operator=OPERATOR,
        now=jst(2026, 12, 3, 10),
        correction_reason="郵送収集の単価改定（11/20 適用）の反映",
    )
    assert [v.version for v in row.versions] == [1, 2]
    assert row.versions[0].pdf == first_pdf and row.versions[0].invoice_pdf == first_invoice
    assert delivery.figures(row)["billing"]["total"] == 6850 - 100
    assert delivery.figures(row, 1)["billing"]["total"] == 6850
    assert "第2版（訂正版）" in pdf_text(row.pdf)
    assert "請求書（第2版・訂正）" in pdf_text(row.invoice_pdf)
    assert delivery.corrections_due(session) == {}
    name, data, _mime = delivery.download(session, _shell(), "2026-11", "pdf", version=1)
    assert (name, data) == ("利用実績報告書_2026-11.pdf", first_pdf)

    # The client is told: the correction goes out with its reason.
    delivery.send(
        session,
        _shell(),
        "2026-11",
        recipients=app.config["REPORT_RECIPIENTS"],
        client=CLIENT,
        operator=OPERATOR,
    )
    second_mail = report_mail.messages[-1]
    assert "訂正版（第2版）" in second_mail["Subject"]
    body = second_mail.get_body().get_content()
    assert "郵送収集の単価改定（11/20 適用）の反映" in body and "第1版" in body
    assert [a.get_filename() for a in second_mail.iter_attachments()] == [
        "利用実績報告書_2026-11_第2版.pdf",
        "請求書_2026-11_第2版.pdf",
    ]
    assert delivery.corrections_due(session) == {}  # 第2版 knew the new price
    actions = list(session.execute(select(AuditEvent.action)).scalars())
    assert "report.correct" in actions and "billing.price_set" in actions


def test_a_month_the_job_missed_is_sent_when_it_comes_back(app, session, report_mail, needs_pdf):
    _prices(session)
    billing.record_event(session, C.EMPLOYEE_KIT, "kit:sep", jst(2026, 9, 15, 10))
    session.commit()
    # The worker was down from September to early December.
    done = delivery.run_scheduled(
        session,
        recipients=app.config["REPORT_RECIPIENTS"],
        client=CLIENT,
        operator=OPERATOR,
        today=dt.date(2026, 12, 2),
        now=jst(2026, 12, 2, 17),
    )
    assert done == ["2026-09: 送信済", "2026-10: 送信済", "2026-11: 送信済"]
    assert delivery.months_due(dt.date(2026, 12, 2), "2026-09") == [
        "2026-09",
        "2026-10",
        "2026-11",
    ]


def test_a_disposal_after_month_end_leaves_the_months_counts(app, session, vault, make_user):
    crowd = population(session, vault, n=2)
    head = session.get(Person, crowd[0].id)
    child = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name="保管試験 子",
        household_head=head,
        dependent_seq=1,
        relation="子",
    )
    registry.register_number(session, vault, child, make_valid("55443322110"), "manual")
    session.commit()
    ids = [crowd[0].id, crowd[1].id, child.id]
    september = dt.datetime(2026, 9, 15, 3, tzinfo=dt.UTC)
    session.execute(
        update(MyNumberRecord)
        .where(MyNumberRecord.person_id.in_(ids))
        .values(registered_at=september)
    )
    session.execute(update(Person).where(Person.id.in_(ids)).values(created_at=september))
    session.commit()
    before = monthly.compute(session, "2026-09")["stored"]
    dispose(session, vault, app, make_user, [child.id])
    after = monthly.compute(session, "2026-09")["stored"]
    assert before["employee"] == after["employee"] == {"households": 2, "people": 3}


def test_external_members_stay_on_the_kit(app, session, vault):
    header = "委員番号,氏名,氏名カナ,生年月日,郵便番号,住所,メールアドレス,送付方法\n"
    rows = (
        "X1,外部 一郎,ガイブ イチロウ,1960-01-01,100-0001,東京都千代田区1-1,a@example.jp,メール\n"
        "X2,外部 二郎,ガイブ ジロウ,1961-01-01,100-0001,東京都千代田区1-2,b@example.jp,\n"
    )
    refused = targets.validate(None, CampaignKind.EXTERNAL, (header + rows).encode("utf-8-sig"))
    assert refused.problems == ["行 2: 送付方法: " + targets.EXTERNAL_KIT_ONLY]
    # Without a channel, an external member with an address gets the kit, e-mail or not.
    parsed = targets.validate(
        None, CampaignKind.EXTERNAL, (header + rows.splitlines(True)[1]).encode()
    )
    assert parsed.problems == []
    assert [h.head.channel for h in parsed.households] == [Channel.POST]
    person = registry.add_person(session, vault, kind=PersonKind.EXTERNAL, name="外部 三郎")
    campaign = Campaign(
        name="外部",
        kind=CampaignKind.EXTERNAL,
        deadline=dt.date(2026, 12, 15),
        purpose_text="支払調書",
        created_by="op",
    )
    session.add(campaign)
    session.flush()
    with pytest.raises(campaigns.CampaignError) as info:
        campaigns.issue_request(session, None, OP, campaign, person, Channel.EMAIL)
    assert "収集キットを郵送" in str(info.value)


def test_the_postage_ledger_refuses_bad_entries_and_audits_every_change(session):
    rate = billing.add_rate(
        session,
        OP,
        PostageRate(
            carrier="日本郵便",
            method="簡易書留",
            price_yen=460,
            effective_from=dt.date(2024, 10, 1),
        ),
    )
    today = dt.date(2026, 11, 20)

    def entry(**changes):
        values = {
            "direction": "send",
            "carrier": "日本郵便",
            "method": "簡易書留",
            "posted_on": dt.date(2026, 11, 10),
            "actor": OP,
            "today": today,
            **changes,
        }
        return billing.record_postage(session, **values)

    refusals = {
        "料金（円）: 0以上": {"cost_yen": -500},
        "日付: 2027/01/15 は記録できる期間": {"posted_on": dt.date(2027, 1, 15)},
        "日付: 2026/09/30 は記録できる期間": {"posted_on": dt.date(2026, 9, 30)},
        "運送事業者・種別: ヤマト運輸 宅急便 は料金表": {
            "carrier": "ヤマト運輸",
            "method": "宅急便",
        },
        "区分: 発送 か 返送": {"direction": "both"},
    }
    for message, changes in refusals.items():
        with pytest.raises(billing.BillingError) as info:
            entry(**changes)
        assert str(info.value).startswith(message), str(info.value)
    kept = entry()
    late = entry(posted_on=dt.date(2026, 10, 31))  # last month, its report not sent yet
    session.commit()
    assert (kept.cost_yen, late.month) == (460, "2026-10")
    events = session.execute(
        select(AuditEvent.action, AuditEvent.object_type)
        .where(AuditEvent.action.like("billing.%"))
        .order_by(AuditEvent.seq)
    ).all()
    assert [tuple(e) for e in events] == [
        ("billing.rate_set", "postage_rate"),
        ("billing.postage_record", "postage_entry"),
        ("billing.postage_record", "postage_entry"),
    ]
    assert rate.created_by == OP.name


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("T1234567890123", "T1234567890123"),
        ("Ｔ1234-5678-90123", "T1234567890123"),
        ("T123456789012", None),
        ("1234567890123", None),
        ("", None),
    ],
)
def test_the_registration_number_is_t_and_13_digits(text, ok):
    if ok:
        assert invoice.registration_number(text) == ok
    else:
        with pytest.raises(monthly.ReportError) as info:
            invoice.registration_number(text)
        assert "MYNUMBER_INVOICE_REGISTRATION_NUMBER" in str(info.value)
