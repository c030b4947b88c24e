"""削除証明書: PDF (Japanese text extracted with pypdf) and CSV, audited downloads."""

import csv
import io

import pytest
from sqlalchemy import select

from app.lifecycle import certificate, disposal, holders
from app.models import AuditEvent
from tests.conftest import pdf_text
from tests.lifecycle.helpers import dispose, population, totp_now, user_actor
from tests.support import actor


def _download(session, who, req, fmt):
    return certificate.download(
        session, who, req.id, fmt, client="見本市役所", operator="株式会社見本BPO"
    )


def test_pdf_certificate_says_what_was_destroyed_in_japanese(
    session, vault, make_user, app, needs_pdf
):
    crowd = population(session, vault, n=5)
    req = dispose(session, vault, app, make_user, [s.id for s in crowd[:3]])
    auditor, _ = make_user("Auditor", roster=None, totp=False)
    name, data, mime = _download(session, user_actor(auditor, "Auditor"), req, "pdf")
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
        req.requested_by_name,
        req.decided_by_name,
        req.executed_by_name,
        f"#{req.exec_first_seq}",
        f"#{req.exec_last_seq}",
        req.exec_last_hash[:16],
        "退職後の保存期間満了",
    ):
        assert expected in text, expected
    for someone in crowd[:3]:
        assert str(someone.id) in text
        assert someone.name not in text
    for someone in crowd[3:]:
        assert str(someone.id) not in text
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "certificate.download")
    ).scalar_one()
    assert event.actor_name == auditor.username and str(req.id) in event.object_ids


def test_csv_certificate_lists_every_tombstoned_id(session, vault, make_user, app):
    crowd = population(session, vault, n=4)
    req = dispose(session, vault, app, make_user, [s.id for s in crowd[:2]])
    staff, _ = make_user("ClientStaff")
    name, data, mime = _download(session, user_actor(staff, "ClientStaff"), req, "csv")
    assert data.startswith(b"\xef\xbb\xbf") and mime.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    facts = {r[0]: r[1] for r in rows if len(r) == 2}
    assert facts["証明書番号"] == req.certificate_no
    assert facts["チェーンハッシュ（実行の最後のイベント）"] == req.exec_last_hash
    assert facts["監査ログ: 実行"] == f"#{req.exec_first_seq} 〜 #{req.exec_last_seq}"
    assert facts["対象人物IDの SHA-256（昇順・改行区切り）"] == holders.ids_digest(
        [s.id for s in crowd[:2]]
    )
    ids = rows[rows.index(["廃棄した人物ID"]) + 1 :]
    assert sorted(r[0] for r in ids) == sorted(str(s.id) for s in crowd[:2])


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
        _download(session, user_actor(staff, "ClientStaff"), req, "csv")
    from app.access import policy

    for who in (user_actor(operator, "Operator"), actor("SystemAdmin")):
        with pytest.raises(policy.PermissionDenied):
            _download(session, who, req, "csv")


def test_csv_certificate_neutralises_a_value_that_starts_like_a_formula(
    session, vault, make_user, app
):
    """The certificate's CSV goes through the product's one CSV writer: a client name typed
    as =HYPERLINK(…) stays text in Excel."""
    crowd = population(session, vault, n=2)
    req = dispose(session, vault, app, make_user, [s.id for s in crowd[:1]])
    cert = certificate.load(session, req.id, '=HYPERLINK("http://x")', "受注者")
    rows = list(csv.reader(io.StringIO(certificate.to_csv(cert).decode("utf-8-sig"))))
    facts = {r[0]: r[1] for r in rows if len(r) == 2}
    assert facts["発注者"] == '\'=HYPERLINK("http://x")'
