"""Roster and 情報管理体制図 downloads (PDF text, CSV with BOM / CP932), who may download them,
the chart's approval, and every download in the audit log."""

import json

import pytest
from sqlalchemy import select

from app.access import policy, roster
from app.models import AuditEvent
from app.operations import governance
from tests.conftest import pdf_text
from tests.support import actor

ENTRY = roster.EntryFields("名簿 花子", "BPO運用部", "係員", "日本")
CHART = governance.ChartText(
    responsible="運用 一郎（BPO運用部 部長）",
    handlers="名簿 花子 / 収集・確認\n名簿 次郎 / 郵送受付",
    contacts="平日 10:00〜17:00 窓口 03-0000-0000\n事故時: 運用部長 → 発注者 人事課長",
)


@pytest.fixture
def entry(session):
    return roster.add_preapproved(session, actor(), ENTRY, "発注者 人事部長")


def downloads(session) -> list[dict]:
    events = session.execute(
        select(AuditEvent).where(AuditEvent.object_type == "governance").order_by(AuditEvent.seq)
    ).scalars()
    return [{"action": e.action, **json.loads(e.details)} for e in events]


def test_roster_pdf_and_csv(app, session, entry, needs_pdf):
    for role in ("ClientStaff", "Auditor", "SystemAdmin"):
        name, data, mime = governance.roster_export(session, actor(role, user_id=5), "pdf")
        assert mime == "application/pdf" and name.endswith(".pdf")
    text = pdf_text(data)
    for label in ("情報取扱者名簿", "氏名", "所属部署", "役職", "国籍", "承認日"):
        assert label in text
    assert "名簿 花子" in text and "BPO運用部" in text
    _, utf8, _ = governance.roster_export(session, actor("Auditor"), "csv")
    assert utf8.startswith(b"\xef\xbb\xbf")
    lines = utf8.decode("utf-8-sig").splitlines()
    assert lines[0] == "氏名,所属部署,役職,国籍,承認日（JST）"
    assert lines[1].startswith("名簿 花子,BPO運用部,係員,日本,20")
    _, sjis, mime = governance.roster_export(session, actor("ClientStaff"), "csv", "cp932")
    assert "shift_jis" in mime and sjis.decode("cp932").splitlines() == lines
    assert [d["action"] for d in downloads(session)] == ["roster.export"] * 5


def test_revoked_and_pending_entries_are_not_on_the_exported_roster(session, entry):
    change = roster.propose(
        session, actor("SystemAdmin", user_id=1), "revoke", "退職", entry_id=entry.id
    )
    assert "名簿 花子" in governance.roster_export(session, actor("Auditor"), "csv")[1].decode(
        "utf-8-sig"
    )
    roster.decide(session, actor("ClientStaff", user_id=7), change.id, True)
    text = governance.roster_export(session, actor("Auditor"), "csv")[1].decode("utf-8-sig")
    assert "名簿 花子" not in text


@pytest.mark.parametrize(
    "who", [actor("Operator"), actor("ClientStaff", roster=False), actor("ClientStaff", mfa=False)]
)
def test_who_may_not_download(session, who):
    with pytest.raises(policy.PermissionDenied):
        governance.roster_export(session, who, "csv")
    assert downloads(session) == []


def test_chart_applies_only_after_another_client_user_approves(app, session, entry, needs_pdf):
    operator = actor("Operator", user_id=11, name="op")
    chart = governance.propose_chart(session, operator, CHART)
    assert governance.current_chart(session) is None
    with pytest.raises(governance.GovernanceError, match="承認済みの情報管理体制図"):
        governance.chart_export(session, actor("Auditor"), "pdf")
    with pytest.raises(policy.PermissionDenied):
        governance.decide_chart(session, operator, chart.id, True)
    with pytest.raises(governance.GovernanceError, match="自分が作成"):
        governance.decide_chart(session, actor("ClientStaff", user_id=11), chart.id, True)
    governance.decide_chart(
        session, actor("ClientStaff", user_id=12, name="client"), chart.id, True
    )
    assert governance.current_chart(session).id == chart.id

    # A second version waits; the first stays current until it is approved.
    second = governance.propose_chart(
        session, operator, governance.ChartText("運用 二郎（部長）", CHART.handlers, CHART.contacts)
    )
    assert governance.current_chart(session).id == chart.id
    assert [c.id for c in governance.chart_history(session)] == [second.id, chart.id]

    _, data, _ = governance.chart_export(session, actor("SystemAdmin", user_id=1), "pdf")
    text = pdf_text(data)
    assert "情報管理体制図" in text and "運用 一郎" in text and "郵送受付" in text
    assert "名簿 花子" in text  # the approved roster beside it
    _, csv_data, _ = governance.chart_export(session, actor("Auditor"), "csv", "cp932")
    rows = csv_data.decode("cp932").splitlines()
    assert rows[0] == "区分,内容" and rows[1] == "責任者,運用 一郎（BPO運用部 部長）"
    assert "事務取扱担当者,名簿 次郎 / 郵送受付" in rows
    actions = (
        session.execute(select(AuditEvent.action).where(AuditEvent.object_type == "handling_chart"))
        .scalars()
        .all()
    )
    assert actions == [
        "handling_chart.proposed",
        "handling_chart.approved",
        "handling_chart.proposed",
    ]
    assert [d["action"] for d in downloads(session)] == ["handling_chart.export"] * 2


def test_chart_text_is_checked(session):
    from app.core.mynumber import make_valid

    op = actor("Operator", user_id=11)
    with pytest.raises(governance.GovernanceError, match="責任者（氏名・役職）: 入力してください"):
        governance.propose_chart(session, op, governance.ChartText("", "a", "b"))
    with pytest.raises(governance.GovernanceError, match=r"連絡体制（1行に1件）に個人番号"):
        governance.propose_chart(
            session, op, governance.ChartText("責任者", "a", f"番号 {make_valid('12345678901')}")
        )


def test_screens(app, session, entry, make_user, login, client):
    staff, secret = make_user("ClientStaff")
    login(staff.username, totp_secret=secret)
    page = client.get("/handling-chart/").get_data(as_text=True)
    assert "情報管理体制図" in page and "/roster-export/roster.pdf" in page
    response = client.get("/roster-export/roster.csv?encoding=cp932")
    assert response.status_code == 200
    assert "名簿 花子" in response.get_data().decode("cp932")
    assert "attachment" in response.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("fmt", "encoding", "message"),
    [("xlsx", "utf-8-sig", "形式: pdf か csv"), ("csv", "latin-1", "文字コード: utf-8-sig")],
)
def test_a_bad_format_or_encoding_is_named_and_nothing_is_audited(
    session, entry, fmt, encoding, message
):
    staff = actor(policy.CLIENT_STAFF, user_id=5)
    for export in (governance.roster_export, governance.register_export):
        with pytest.raises(governance.GovernanceError, match=message):
            export(session, staff, fmt, encoding)
    assert downloads(session) == []
