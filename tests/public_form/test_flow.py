"""The whole form through the test client, on SQLite and PostgreSQL: a household submits,
an operator opens it (audited), marks a deficiency, the subject resubmits just that."""

import json

import pytest
from sqlalchemy import func, select

from app.access.policy import SYSTEM_ADMIN, PermissionDenied
from app.collection import decisions, opening, subjects
from app.core import logsafe
from app.models import (
    AuditEvent,
    CaseAssignment,
    CollectionRequest,
    Inquiry,
    RequestStatus,
    Submission,
    SubmissionPart,
)
from app.people import registry
from app.vault import sealing
from tests import support
from tests.public_form.conftest import (
    DEP_BIRTH,
    NUMBER_ADDED,
    NUMBER_DEP,
    NUMBER_SELF,
    PURPOSE,
    jpeg,
    pdf,
)


def _wide(number: str) -> str:
    return number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def _no_number_in(bodies, numbers):
    hits = []
    for i, body in enumerate(bodies):
        for number in numbers:
            for form in support.number_forms(number):
                if form in body:
                    hits.append((i, number[-4:]))
    return hits


def _actions(session):
    return [
        e.action for e in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    ]


def _submit_household(subject, household):
    head, dep = str(household["head"].id), str(household["dep"].id)
    assert "利用目的" in subject.login(household["token"]).get_data(as_text=True)
    assert subject.consent().headers["Location"].endswith("/household")
    page = subject.get("/household").get_data(as_text=True)
    assert "山田 花子" in page and "子" in page  # the listed dependent, after both factors
    # Own number: full-width digits with hyphens are accepted.
    wide = _wide(NUMBER_SELF)
    response = subject.number(head, f"{wide[:4]}－{wide[4:8]}－{wide[8:]}", NUMBER_SELF)
    assert response.headers["Location"].endswith(f"/p/{head}/documents")
    assert subject.card(head).status_code == 302
    assert subject.number(dep, NUMBER_DEP).status_code == 302
    # A dependent proves the number only: the card's back is enough.
    assert subject.card(dep, self_role=False).status_code == 302
    # Add a dependent who is not on record yet, with a PDF 住民票 (named .jpg: sniffed).
    response = subject.post(
        "/dependents/add",
        {
            "name": "山田 次郎",
            "kana": "ヤマダ ジロウ",
            "relation": "子",
            "year": "2020",
            "month": "6",
            "day": "1",
        },
    )
    assert response.headers["Location"].endswith("/p/new1/number")
    assert subject.number("new1", NUMBER_ADDED).status_code == 302
    response = subject.documents(
        "new1", "other", {"number_doc": (pdf(), "juminhyo.jpg")}, {"number_doc_type": "juminhyo"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    confirm = subject.get("/confirm").get_data(as_text=True)
    # The added dependent by the name typed on this visit, the relation once; the name
    # itself is sealed (a later visit shows 「追加した扶養親族 1人目」).
    assert "入力済み" in confirm and "山田 次郎（子）" in confirm and "（子）（子）" not in confirm
    response = subject.submit()
    assert response.headers["Location"].endswith("/done")
    done = subject.get("/done").get_data(as_text=True)
    return done


def test_household_submits_and_nothing_is_readable(app, session, household, subject):
    done = _submit_household(subject, household)
    assert "受付番号" in done
    req = session.get(CollectionRequest, household["req"].id)
    session.refresh(req)
    assert req.status == RequestStatus.SUBMITTED
    submission = session.execute(select(Submission)).scalar_one()
    assert submission.receipt_no in done
    assert submission.status == "received" and submission.manifest_sealed
    parts = session.execute(select(SubmissionPart)).scalars().all()
    assert {(p.subject_ref, p.part) for p in parts} >= {
        (str(household["head"].id), "number"),
        ("new1", "identity"),
        ("new1", "document"),
    }
    pdf_part = next(p for p in parts if p.subject_ref == "new1" and p.part == "document")
    assert pdf_part.media_type == "application/pdf"  # decided by magic bytes, not ".jpg"
    actions = _actions(session)
    assert "intake.auth" in actions and "intake.submit" in actions
    # No number in any response, in the audit details, or in any byte at rest.
    numbers = [NUMBER_SELF, NUMBER_DEP, NUMBER_ADDED]
    assert _no_number_in(subject.bodies, numbers) == []
    assert support.leaks(app, numbers) == []
    # The added dependent's name is sealed too.
    assert not any("山田 次郎".encode() in data for _, data in support.written_bytes(app))
    # After submission the link shows the status only.
    subject.login(household["token"])
    status = subject.get("/status").get_data(as_text=True)
    assert "受付済" in status and submission.receipt_no in status
    assert subject.get("/consent").headers["Location"].endswith("/status")
    assert _no_number_in(subject.bodies, numbers) == []


def test_operator_opens_audited_and_resubmission_reopens_only_the_deficient_part(
    app, session, household, subject, operator, form_app
):
    _submit_household(subject, household)
    submission = session.execute(select(Submission)).scalar_one()
    keyring = app.extensions["mynumber_keyring"]
    support.give_case(session, household["req"], operator)  # assigned, claimed: 確認中
    before = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    opened = opening.open_submission(session, keyring, operator, submission.id, "")
    events = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert len(events) == before + 1 and events[-1].action == "intake.open"
    by_ref = {s.ref: s for s in opened.subjects}
    head_ref, dep_ref = str(household["head"].id), str(household["dep"].id)
    assert by_ref[head_ref].number == NUMBER_SELF
    assert by_ref[dep_ref].number == NUMBER_DEP
    assert by_ref["new1"].number == NUMBER_ADDED and by_ref["new1"].name == "山田 次郎"
    assert {d.doc_type for d in by_ref[head_ref].documents} == {"card_front", "card_back"}
    front = next(d for d in by_ref[head_ref].documents if d.doc_type == "card_front")
    assert front.data[:3] == b"\xff\xd8\xff" and b"Exif" not in front.data[:200]
    assert by_ref["new1"].documents[0].data.startswith(b"%PDF-")
    # Opening grants nothing by itself: the case the operator holds does (reveal rule 3).
    assert not session.execute(select(CaseAssignment)).first()
    assert registry.works_case(session, operator, household["head"].id)

    req = session.get(CollectionRequest, household["req"].id)
    reopened = decisions.mark_deficient(
        session, operator, req, [(dep_ref, "number_doc_unreadable")], "裏面がぼやけている"
    )
    session.commit()
    assert reopened == [{"ref": dep_ref, "part": "documents"}]

    # The subject sees what to fix, and the form asks only for that.
    other = type(subject)(form_app.test_client())
    other.login(household["token"])
    status = other.get("/status").get_data(as_text=True)
    assert "不備あり" in status and "番号確認書類の写真が読み取れません" in status
    assert "山田 花子" in status
    other.consent()
    household_page = other.get("/household").get_data(as_text=True)
    assert "再提出の必要はありません" in household_page
    assert other.number(head_ref, NUMBER_SELF).status_code == 302  # not reopened: bounced
    assert (
        session.execute(
            select(func.count()).select_from(SubmissionPart).where(SubmissionPart.part == "number")
        ).scalar_one()
        == 3
    )  # nothing new was stored for the number
    assert other.get(f"/p/{dep_ref}/number").status_code == 302
    assert other.card(dep_ref, self_role=False).status_code == 302
    assert other.submit().headers["Location"].endswith("/done")
    session.expire_all()
    second = session.execute(select(Submission).where(Submission.seq == 2)).scalar_one()
    assert {(p.subject_ref, p.part) for p in second.parts} == {(dep_ref, "document")}
    assert session.get(CollectionRequest, req.id).status == RequestStatus.SUBMITTED
    opened2 = opening.open_submission(session, keyring, operator, second.id, "再提出の確認")
    assert opened2.manifest["reopened"] == [{"ref": dep_ref, "part": "documents"}]
    decisions.set_status(session, operator, req, RequestStatus.COMPLETED)
    session.commit()
    assert [h.status for h in req.history] == [
        "issued",
        "submitted",
        "verifying",
        "deficient",
        "submitted",
        "completed",
    ]
    assert support.leaks(app, [NUMBER_SELF, NUMBER_DEP, NUMBER_ADDED]) == []


def test_swapped_or_extra_parts_are_detected(app, session, household, subject, operator):
    _submit_household(subject, household)
    submission = session.execute(select(Submission)).scalar_one()
    support.give_case(session, household["req"], operator)
    keyring = app.extensions["mynumber_keyring"]
    parts = sorted(submission.parts, key=lambda p: str(p.id))
    a, b = parts[0], parts[1]
    a.sealed, b.sealed = b.sealed, a.sealed  # a DBA swaps two sealed blobs
    session.commit()
    with pytest.raises(sealing.SealError):
        opening.open_submission(session, keyring, operator, submission.id, "")
    a.sealed, b.sealed = b.sealed, a.sealed
    session.delete(b)  # or drops one part
    session.commit()
    with pytest.raises(sealing.SealError):
        opening.open_submission(session, keyring, operator, submission.id, "")


def test_only_an_operator_may_open(app, session, household, subject):
    _submit_household(subject, household)
    submission = session.execute(select(Submission)).scalar_one()
    keyring = app.extensions["mynumber_keyring"]
    for roles in ((SYSTEM_ADMIN,), ("ClientStaff",), ("Auditor",)):
        actor = support.actor(*roles)
        with pytest.raises(PermissionDenied):
            opening.open_submission(session, keyring, actor, submission.id, "")
    denied = (
        session.execute(select(AuditEvent).where(AuditEvent.action == "intake.open"))
        .scalars()
        .all()
    )
    assert [e.outcome for e in denied] == ["denied"] * 3


def test_bad_inputs_get_japanese_messages_naming_the_field(session, household, subject):
    head = str(household["head"].id)
    subject.login(household["token"])
    assert "利用目的への同意" in subject.post("/consent", {}).get_data(as_text=True)
    subject.consent()
    wrong_check = NUMBER_SELF[:11] + str((int(NUMBER_SELF[11]) + 1) % 10)
    cases = [
        ((wrong_check, wrong_check), "個人番号: 番号の数字がどこか違っています"),
        (("1234", "1234"), "個人番号: 個人番号は12桁です（入力は4桁）"),
        (("abcdefghijkl", "abcdefghijkl"), "個人番号: 個人番号に数字以外の文字が含まれています"),
        ((NUMBER_SELF, NUMBER_DEP), "個人番号（確認用）: 1回目に入力した個人番号と一致しません"),
        ((NUMBER_SELF, ""), "個人番号（確認用）: 個人番号が入力されていません"),
    ]
    for (first, second), message in cases:
        response = subject.number(head, first, second)
        assert response.status_code == 422, (message, response.headers.get("Location"))
        page = response.get_data(as_text=True)
        assert message in page, page
        assert 'value="' + first not in page  # nothing typed is echoed back
    assert _no_number_in(subject.bodies, [NUMBER_SELF, NUMBER_DEP, wrong_check]) == []
    assert session.execute(select(func.count()).select_from(SubmissionPart)).scalar_one() == 0


def test_a_bad_file_stores_nothing_of_the_set(session, household, subject):
    head = str(household["head"].id)
    subject.login(household["token"])
    subject.consent()
    response = subject.documents(
        head,
        "card",
        {"card_front": (jpeg(), "front.jpg"), "card_back": (b"<html><script>x</script>", "b.png")},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "マイナンバーカード（裏面）: 対応していない形式です" in page
    assert session.execute(select(func.count()).select_from(SubmissionPart)).scalar_one() == 0
    response = subject.documents(
        head,
        "other",
        {"number_doc": (jpeg(), "n.jpg"), "identity_doc": (jpeg(), "i.jpg")},
        {"number_doc_type": "notice_card"},
    )
    assert "身元確認書類: 書類の種類を選んでください" in response.get_data(as_text=True)
    assert session.execute(select(func.count()).select_from(SubmissionPart)).scalar_one() == 0


def test_uploads_never_touch_a_temporary_file(session, household, subject, tmp_path, monkeypatch):
    import tempfile

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    head = str(household["head"].id)
    subject.login(household["token"])
    subject.consent()
    big = jpeg(size=(2000, 1500), noise=True)
    assert len(big) > 500 * 1024  # above werkzeug's in-memory threshold
    response = subject.documents(
        head, "card", {"card_front": (big, "front.jpg"), "card_back": (big, "back.jpg")}
    )
    assert response.status_code == 302
    assert list(spool.iterdir()) == []


def test_decline_is_recorded_with_its_reason(session, household, subject):
    subject.login(household["token"])
    response = subject.post("/decline", {"reason": "other", "note": f"番号は {NUMBER_SELF} です"})
    assert response.status_code == 422
    assert "理由の詳細に個人番号と思われる12桁の数字が含まれています" in response.get_data(
        as_text=True
    )
    response = subject.post("/decline", {"reason": "not_available", "note": "通知カードを紛失"})
    assert response.headers["Location"].endswith("/status")
    req = session.get(CollectionRequest, household["req"].id)
    session.refresh(req)
    assert req.status == RequestStatus.DECLINED
    assert req.decline_reason == "not_available" and req.decline_note == "通知カードを紛失"
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "intake.decline")
    ).scalar_one()
    assert json.loads(event.details) == {"reason": "not_available"}
    assert "提供しない" in subject.get("/status").get_data(as_text=True)
    assert _no_number_in(subject.bodies[-1:], [NUMBER_SELF]) == []


def test_inquiry_lands_in_the_admin_list(app, session, subject, client, make_user, portal_login):
    response = subject.post(
        "/contact",
        {
            "name": "山田 太郎",
            "contact": "taro@example.jp",
            "category": "documents",
            "body": f"番号 {NUMBER_SELF} で合っていますか",
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "お問い合わせ内容に個人番号と思われる12桁の数字が含まれています" in page
    assert _no_number_in([response.get_data()], [NUMBER_SELF]) == []
    response = subject.post(
        "/contact",
        {
            "name": "山田 太郎",
            "contact": "taro@example.jp",
            "category": "documents",
            "body": "通知カードの住所が古いのですが使えますか",
        },
    )
    assert "お問い合わせを受け付けました" in response.get_data(as_text=True)
    assert session.execute(select(Inquiry)).scalar_one().category == "documents"
    contact = subject.get("/contact").get_data(as_text=True)
    assert "10:00〜17:00" in contact and "12月29日〜1月3日" in contact

    user, secret = make_user("Operator")
    portal_login(user.username, secret)
    listing = client.get("/inquiryview/list/")
    assert listing.status_code == 200, listing.headers.get("Location")
    assert "山田 太郎" in listing.get_data(as_text=True)


def test_employee_helpers(session, household):
    assert logsafe.has_number_like(f"x{NUMBER_SELF}x")
    assert subjects.is_employee_request(session, household["req"])
    listed = subjects.listed_subjects(session, household["req"])
    assert [s.role for s in listed] == ["self", "dependent"]
    assert listed[1].birth_date == DEP_BIRTH
    assert household["req"].purpose_text == PURPOSE
