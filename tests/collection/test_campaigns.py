"""Campaigns: creation on the business calendar, the client's letter texts with placeholders,
and what the client sees: counts by stage, the overdue list, the progress chart (server-side
SVG, no third-party origin) and the status CSV (UTF-8 with BOM, never a number)."""

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import select, update

from app.access import policy
from app.collection import campaigns
from app.core import jptime
from app.models import AuditEvent, Campaign, CollectionRequest, LetterKind, Person, Stage
from tests.collection import flows
from tests.collection.conftest import future_business_day


def _holiday_after_today() -> dt.date:
    day = jptime.today_jst() + dt.timedelta(days=1)
    while jptime.is_business_day(day):
        day += dt.timedelta(days=1)
    return day


def test_a_deadline_on_a_holiday_moves_to_the_next_business_day(session, staff):
    holiday = _holiday_after_today()
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="期限テスト",
        kind="employee",
        deadline=holiday.isoformat(),
        purpose_text="事務",
    )
    assert campaign.deadline == jptime.next_business_day(holiday) != holiday
    assert jptime.is_business_day(campaign.deadline)
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "campaign.create")
    ).scalar_one()
    assert '"deadline_moved": true' in event.details
    assert {letter.kind for letter in campaign.letters} == set(LetterKind.ALL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " "}, "名称: 入力してください"),
        ({"name": "x" * 201}, "200文字以内"),
        ({"kind": "vip"}, "対象:"),
        ({"deadline": ""}, "提出期限: 入力してください"),
        ({"deadline": "2000-01-01"}, "過去の日付"),
        ({"deadline": "令和99年99月99日"}, "提出期限:"),
        ({"month": "2026-13"}, "対象月"),
        ({"kind": "external", "month": None}, "対象月: 外部委員等"),
        ({"purpose_text": ""}, "利用目的: 入力してください"),
        ({"purpose_text": "番号 123456789018 を使う"}, "12桁"),
    ],
)
def test_campaign_bad_input(session, staff, kwargs, message):
    values = {
        "name": "テスト",
        "kind": "employee",
        "deadline": future_business_day(),
        "purpose_text": "事務",
        "month": None,
    } | kwargs
    with pytest.raises(campaigns.CampaignError, match=message):
        campaigns.create_campaign(session, staff, **values)


def test_only_client_staff_and_operators_create_campaigns(session):
    from tests.support import actor

    for who in (actor("SystemAdmin"), actor("Auditor"), actor("ClientStaff", mfa=False)):
        with pytest.raises(policy.PermissionDenied):
            campaigns.create_campaign(
                session,
                who,
                name="x",
                kind="employee",
                deadline=future_business_day(),
                purpose_text="x",
            )


@pytest.mark.parametrize(
    ("kind", "subject", "body", "message"),
    [
        ("request_email", "件名", "{氏名} 様", "{リンク} が必要です"),
        (
            "request_email",
            "件名",
            "{氏名} {リンク} {暗証番号}",
            "「{暗証番号}」はこの文書では使えません",
        ),
        ("kit_guide", "件名", "{氏名} {リンク}", "「{リンク}」はこの文書では使えません"),
        ("deficiency_letter", "件名", "{氏名}", "{不備内容} が必要です"),
        ("request_email", "", "{リンク}", "件名・表題: 入力してください"),
        ("request_email", "件名", "", "本文: 入力してください"),
        ("request_email", "件名", "{リンク} 1234 5678 9018", "12桁"),
        ("nonsense", "件名", "本文", "文書の種類"),
    ],
)
def test_letter_texts_are_checked(session, staff, kind, subject, body, message):
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="文言",
        kind="employee",
        deadline=future_business_day(),
        purpose_text="事務",
    )
    with pytest.raises(campaigns.CampaignError, match=re.escape(message)):
        campaigns.update_letter(session, staff, campaign, kind, subject, body)


def test_the_clients_wording_is_what_the_subject_reads(
    app, session, staff, operators, smtp_server, jobs
):
    app.config["SMTP_URL"] = smtp_server.url
    campaign, _ = flows.campaign_with_targets(app, staff)
    row = campaigns.update_letter(
        session,
        staff,
        campaign,
        "request_email",
        "{発注者}から{氏名}様へ",
        "{氏名} 様\n下記からお願いします。\n{リンク}\n期限 {期限}\n依頼コード {依頼コード}",
    )
    session.commit()
    assert row.version == 2
    flows.dispatch(campaign, operators[0], jobs)
    [message] = smtp_server.messages
    assert message["Subject"] == "見本機構から見本 太郎様へ"
    body = message.get_body(("plain",)).get_content()
    req = flows.request_of("E1001")
    assert f"依頼コード {req.request_code}" in body
    assert campaigns.format_date(campaign.deadline) in body


def test_the_clients_view_counts_chart_overdue_and_csv(app, session, staff, operators, jobs):
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], jobs)
    counts = campaigns.counts(session, campaign.id)
    assert counts[Stage.SENT] == 1 and counts[Stage.CREATED] == 1  # the kit is not posted yet
    assert sum(counts.values()) == 2
    assert campaigns.overdue(session, campaign.id) == []
    later = campaign.deadline + dt.timedelta(days=1)
    assert {r.person.code for r in campaigns.overdue(session, campaign.id, later)} == {
        "E1001",
        "E1002",
    }

    points = campaigns.progress(session, campaign)
    assert points[-1].sent == 1 and points[-1].submitted == 0
    svg = campaigns.progress_svg(points, 2)
    assert svg.startswith("<svg") and "<script" not in svg and "href" not in svg
    assert "送付済" in svg and "<polyline" in svg

    # A name that a spreadsheet would run as a formula is neutralised in the CSV.
    person = session.execute(select(Person).where(Person.code == "E1002")).scalar_one()
    person.name = '=HYPERLINK("http://evil")'
    session.commit()
    data = campaigns.status_csv(session, staff, campaign)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == campaigns.CSV_HEADER
    by_code = {r[2]: r for r in rows[1:]}
    assert by_code["E1001"][6] == "送付済" and by_code["E1002"][6] == "作成"
    assert by_code["E1002"][3].startswith("'=")
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "campaign.status_export")
    ).scalar_one()
    assert '"requests": 2' in event.details
    from tests.support import actor

    with pytest.raises(policy.PermissionDenied):
        campaigns.status_csv(session, actor("Auditor"), campaign)


def test_counts_include_every_stage(app, session, staff):
    campaign, _ = flows.campaign_with_targets(app, staff)
    session.execute(
        update(CollectionRequest)
        .where(CollectionRequest.campaign_id == campaign.id)
        .values(status="declined")
    )
    session.commit()
    counts = campaigns.counts(session, campaign.id)
    assert set(counts) == set(Stage.ALL) and counts[Stage.DECLINED] == 2
    assert campaigns.summary(session, session.get(Campaign, campaign.id))["total"] == 2


@pytest.mark.parametrize("subject", ["件名\r\nBcc: all@attacker.example", "件名\n", "件\x00名"])
def test_a_letter_subject_is_one_line(session, staff, subject):
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="件名",
        kind="employee",
        deadline=future_business_day(),
        purpose_text="事務",
    )
    body = "{氏名} 様\n{リンク}"
    if subject.endswith("\n"):  # a trailing break is trimmed like spaces: accepted
        assert campaigns.update_letter(session, staff, campaign, "request_email", subject, body)
        return
    with pytest.raises(campaigns.CampaignError, match="件名・表題: (改行|制御文字)は使えません"):
        campaigns.update_letter(session, staff, campaign, "request_email", subject, body)
