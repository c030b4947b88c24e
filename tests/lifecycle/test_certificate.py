"""削除証明書: PDF (Japanese text extracted with pypdf) and CSV, audited downloads."""

import csv
import io

import pytest
from sqlalchemy import select

from app.core import jptime
from app.lifecycle import certificate, disposal, holders
from app.models import AuditEvent, Person
from tests.conftest import pdf_text
from tests.lifecycle.helpers import approved_request, dispose, population, totp_now, user_actor
from tests.support import actor


def _download(session, vault, who, req, fmt):
    return certificate.download(
        session,
        vault,
        who,
        req.id,
        fmt,
        client="見本市役所",
        operator="株式会社見本BPO",
        responsible="情報セキュリティ責任者 見本 一郎",
    )


def test_pdf_certificate_says_what_was_destroyed_in_japanese(
    session, vault, make_user, app, needs_pdf
):
    crowd = population(session, vault, n=5)
    req = dispose(session, vault, app, make_user, [s.id for s in crowd[:3]])
    auditor, _ = make_user("Auditor", roster=None, totp=False)
    name, data, mime = _download(session, vault, user_actor(auditor, "Auditor"), req, "pdf")
    assert mime == "application/pdf" and name.endswith(".pdf") and data.startswith(b"%PDF")
    text = pdf_text(data).replace("\n", "")
    for expected in (
        "削除証明書",
        "見本市役所",
        "株式会社見本BPO",
        req.certificate_no,
        "暗号鍵の消去による復元不能化",
        "データ削除",
        "廃棄した人数",
        "3名",
        "指定した人物",
        "発行日",
        f"{jptime.today_jst():%Y年%m月%d日}",
        "責任者",
        "情報セキュリティ責任者 見本 一郎",
        "Operator 担当（人事部 担当）",  # requester and executor, by their roster entry
        "ClientStaff 担当（人事部 担当）",  # approver
        f"#{req.exec_first_seq}",
        f"#{req.exec_last_seq}",
        req.exec_last_hash[:16],
        "退職後の保存期間満了",
    ):
        assert expected in text, expected
    for someone in crowd[:3]:
        assert someone.code in text and someone.name in text
        assert str(someone.id) not in text and someone.number not in text
    for someone in crowd[3:]:
        assert someone.code not in text and someone.name not in text
    for account in (req.requested_by_name, req.decided_by_name):
        assert account not in text
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "certificate.download")
    ).scalar_one()
    assert event.actor_name == auditor.username and str(req.id) in event.object_ids


def test_csv_certificate_lists_every_disposed_person_by_code_name_and_id(
    session, vault, make_user, app
):
    crowd = population(session, vault, n=4)
    req = dispose(session, vault, app, make_user, [s.id for s in crowd[:2]])
    staff, _ = make_user("ClientStaff")
    name, data, mime = _download(session, vault, user_actor(staff, "ClientStaff"), req, "csv")
    assert data.startswith(b"\xef\xbb\xbf") and mime.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    facts = {r[0]: r[1] for r in rows if len(r) == 2}
    assert facts["証明書番号"] == req.certificate_no
    assert facts["チェーンハッシュ（実行の最後のイベント）"] == req.exec_last_hash
    assert facts["監査ログ: 実行"] == f"#{req.exec_first_seq} 〜 #{req.exec_last_seq}"
    assert facts["対象人物IDの SHA-256（昇順・改行区切り）"] == holders.ids_digest(
        [s.id for s in crowd[:2]]
    )
    people = rows[rows.index(["廃棄した人"]) + 1 :]
    assert people[0] == [*certificate.PEOPLE_HEADER, "人物ID（監査ログとの照合用）"]
    assert sorted(people[1:]) == sorted([s.code, s.name, "役職員", str(s.id)] for s in crowd[:2])
    assert facts["日時の表記"] == "日本時間（JST、UTC+9）"


def test_no_certificate_before_execution_and_not_for_operators_or_admins(session, vault, make_user):
    crowd = population(session, vault, n=1)
    operator, _ = make_user("Operator")
    staff, secret = make_user("ClientStaff")
    req = disposal.request_disposal(
        session,
        user_actor(operator, "Operator"),
        scope="people",
        reason="x",
        person_ids=[crowd[0].id],
    )
    disposal.decide(
        session, vault, user_actor(staff, "ClientStaff"), req.id, True, totp_now(secret)
    )
    with pytest.raises(certificate.CertificateError, match="実行済み"):
        _download(session, vault, user_actor(staff, "ClientStaff"), req, "csv")
    from app.access import policy

    for who in (user_actor(operator, "Operator"), actor("SystemAdmin")):
        with pytest.raises(policy.PermissionDenied):
            _download(session, vault, who, req, "csv")


def test_csv_certificate_neutralises_a_value_that_starts_like_a_formula(
    session, vault, make_user, app
):
    """The certificate's CSV goes through the product's one CSV writer: a client name typed
    as =HYPERLINK(…) stays text in Excel."""
    crowd = population(session, vault, n=2)
    req = dispose(session, vault, app, make_user, [s.id for s in crowd[:1]])
    cert = certificate.load(session, vault, req.id, '=HYPERLINK("http://x")', "受注者")
    rows = list(csv.reader(io.StringIO(certificate.to_csv(cert).decode("utf-8-sig"))))
    facts = {r[0]: r[1] for r in rows if len(r) == 2}
    assert facts["発注者"] == '\'=HYPERLINK("http://x")'


def test_certificate_names_people_as_at_execution_and_the_shell_as_a_command(
    session, vault, make_user, app, needs_pdf
):
    """Reconciling with the client's records: an employee and their dependent (扶養者コード),
    an external member (委員番号), by the names they had when the disposal ran (a name changed
    after the request counts), the shell named as a command, and the 発行日 as issued."""
    import datetime as dt

    from app.access.policy import ShellActor
    from app.models import PersonKind
    from app.people import registry

    head = registry.add_person(
        session, vault, kind=PersonKind.EMPLOYEE, name="照合 一郎", code="E1001"
    )
    child = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name="照合 花子",
        code="E1001",
        household_head=head,
        dependent_seq=1,
        relation="子",
    )
    member = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="委員 次郎", code="M0042"
    )
    kept = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="残る 人", code="M0043"
    )
    session.commit()
    req, _, _ = approved_request(session, vault, make_user, [head.id, child.id, member.id])
    session.get(Person, member.id).name = "委員 次郎（旧姓 山川）"
    session.commit()
    disposal.execute(
        session, vault, ShellActor(name="cli:root"), req.id, app.config["DISPOSAL_JOURNAL_FILE"]
    )
    assert session.get(Person, member.id).name != "委員 次郎（旧姓 山川）"  # the tombstone
    cert = certificate.load(
        session,
        vault,
        req.id,
        "見本市役所",
        "株式会社見本BPO",
        responsible="情報セキュリティ責任者 見本 一郎",
        issued_on=dt.date(2027, 1, 12),
    )
    assert [p.cells for p in cert.people] == [
        ["E1001", "照合 一郎", "役職員"],
        ["E1001-01", "照合 花子", "扶養親族"],
        ["M0042", "委員 次郎（旧姓 山川）", "外部委員等"],
    ]
    facts = dict(cert.rows)
    assert facts["実行者"] == "コマンド操作（root）"
    assert facts["申請者"].startswith("Operator 担当（人事部 担当）（")
    assert facts["承認者（発注者）"].startswith("ClientStaff 担当（人事部 担当）（")
    assert facts["発行日"] == "2027年01月12日"
    assert facts["責任者"] == "情報セキュリティ責任者 見本 一郎"
    text = pdf_text(certificate.to_pdf(cert)).replace("\n", "")
    for expected in (
        "E1001-01",
        "照合 花子",
        "M0042",
        "委員 次郎（旧姓 山川）",
        "コマンド操作（root）",
        "2027年01月12日",
        "情報セキュリティ責任者 見本 一郎",
        "外部委員等",
    ):
        assert expected in text, expected
    assert "cli:root" not in text and str(head.id) not in text
    assert "M0043" not in text and kept.name not in text
