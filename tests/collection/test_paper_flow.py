"""A postal subject, end to end: the kit PDF (Japanese text read back with pypdf, the QR code
decoded with zxing-cpp) → the returned envelope → scans and blind double keying with a
mismatch that a third operator settles → verification finds a deficiency → a letter tells the
subject what to fix → a second envelope with just that → accepted, registered."""

import pytest
from sqlalchemy import select

from app.access import policy
from app.collection import campaigns, kits, paper, requests, verification
from app.models import (
    AuditEvent,
    BillableEvent,
    BillingCategory,
    CampaignKind,
    Delivery,
    DeliveryKind,
    PaperPart,
    PostageEntry,
    PostageRate,
    RequestStatus,
    Stage,
    Submission,
    SubmissionPart,
)
from app.people import registry
from tests import support
from tests.collection import flows
from tests.collection.conftest import (
    FORM_URL,
    NUMBER_ICHIRO,
    NUMBER_WRONG,
    NUMBERS,
    decode_qr_codes,
    jpeg,
)
from tests.conftest import pdf_text


def _envelope(app, session, operator, req, tracking):
    return paper.receive_envelope(
        session,
        operator,
        request_code=req.request_code.replace("-", "").lower(),  # typed sloppily
        received_on=campaigns.jptime.today_jst().isoformat(),
        tracking=tracking,
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_RETURN_METHOD"],
    )


def test_postal_subject_from_kit_to_registration(app, session, staff, operators, jobs, needs_pdf):
    op1, op2, op3 = operators
    keyring = app.extensions["mynumber_keyring"]
    campaign, _ = flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    req = flows.request_of("X2001")
    ref = str(req.person_id)

    # The kit.
    flows.dispatch(campaign, op1, jobs)
    batch, kit_pdf = flows.print_batch(app, campaign, op1, jobs)
    text = pdf_text(kit_pdf)
    for expected in (
        "佐藤 一郎 様",
        "〒530-0001",
        "大阪府大阪市北区梅田一丁目1番1号",
        "マイナンバー（個人番号）提出書（申請用紙）",
        "記入例",
        "Web 登録利用ガイド",
        "返信用封筒ラベル",
        "追跡番号（お問い合わせ番号）",
        "見本BPO株式会社 マイナンバー収集受付係 行",
        req.request_code,
    ):
        assert expected in text, expected
    [qr] = decode_qr_codes(kit_pdf)
    assert qr.startswith(f"{FORM_URL}/r/")
    assert (
        requests.lookup(session, qr.rsplit("/r/", 1)[1]).id == req.id
    )  # the QR opens this request
    kits.mark_posted(
        session,
        op1,
        batch,
        posted_on=campaigns.jptime.today_jst(),
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_SEND_METHOD"],
    )
    session.commit()

    # The envelope comes back: tracking number, return postage, scans.
    item = _envelope(app, session, op1, req, "1234-5678-90")
    assert paper.find_request(session, "r" + req.request_code[2:]).id == req.id
    paper.add_scan(session, keyring, op1, item, ref, "application_form", jpeg())
    paper.add_scan(session, keyring, op1, item, ref, "card_front", jpeg(gps=True))
    paper.add_scan(session, keyring, op1, item, ref, "card_back", jpeg())

    # Double keying: the first operator, then a second one who types a different number.
    first = paper.key_number(session, keyring, op1, item, ref, NUMBER_ICHIRO)
    assert not first.agreed and "2回目の入力" in first.message
    with pytest.raises(paper.PaperError, match="別の担当者が入力"):
        paper.key_number(session, keyring, op1, item, ref, NUMBER_ICHIRO)
    second = paper.key_number(session, keyring, op2, item, ref, NUMBER_WRONG)
    assert second.mismatch and "第三者確認" in second.message
    with pytest.raises(paper.PaperError, match="二重入力が一致していません"):
        paper.finish(session, keyring, op1, item)
    third = paper.key_number(session, keyring, op3, item, ref, NUMBER_ICHIRO)
    assert third.agreed
    # Nothing about the entries is readable: sealed, compared by MAC only.
    rows = session.execute(select(PaperPart).where(PaperPart.part == "number")).scalars().all()
    assert len({r.check for r in rows}) == 2 and all(len(r.check) == 32 for r in rows)
    submission = paper.finish(session, keyring, op1, item)
    assert submission.kind == "paper" and submission.status == "received"
    assert session.execute(select(PaperPart)).first() is None  # the losing entry is gone too

    # Verification: the agreed number, the scans beside it; a deficiency.
    session.refresh(req)
    assert req.status == RequestStatus.SUBMITTED
    case, view = flows.claim_and_open(app, op2, req)
    [subject_view] = view.subjects
    assert subject_view.number == NUMBER_ICHIRO and subject_view.channel == "paper"
    assert {d.doc_type for d in subject_view.documents} == {
        "application_form",
        "card_front",
        "card_back",
    }
    front = next(d for d in subject_view.documents if d.doc_type == "card_front")
    assert b"Exif" not in front.data[:200]  # re-encoded like a web upload
    notice = verification.deficient(
        session, op2, case.id, [(ref, "identity_doc_expired")], "表面の有効期限切れ"
    )
    assert notice.kind == DeliveryKind.DEFICIENCY and notice.channel == "post"
    session.refresh(req)
    assert campaigns.stage(req) == Stage.DEFICIENT
    assert req.reopened_items == [{"ref": ref, "part": "documents"}]

    # The deficiency letter goes out in the next print batch.
    batch2, letter_pdf = flows.print_batch(app, campaign, op1, jobs)
    letter_text = pdf_text(letter_pdf)
    assert "ご提出内容の確認のお願い" in letter_text
    assert "有効期限が切れています" in letter_text and "提出し直していただくもの" in letter_text
    assert decode_qr_codes(letter_pdf) == [qr]  # the same link, rendered again
    kits.mark_posted(
        session,
        op1,
        batch2,
        posted_on=campaigns.jptime.today_jst(),
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_SEND_METHOD"],
    )
    session.commit()

    # The first envelope's documents are sent back (return postage recorded): by a service
    # of the carrier's fee table, as the postage ledger requires.
    session.add(
        PostageRate(
            carrier="日本郵便",
            method="簡易書留",
            price_yen=580,
            effective_from=campaigns.jptime.today_jst().replace(day=1),
            created_by="test",
        )
    )
    session.commit()
    paper.return_documents(
        session,
        op1,
        item,
        sent_on=campaigns.jptime.today_jst(),
        carrier="日本郵便",
        method="簡易書留",
        cost_yen=580,
        tracking="9999-0000-1111",  # twelve digits: normal for a tracking number
    )

    # The resubmission: a second envelope with a valid ID copy only.
    item2 = _envelope(app, session, op2, req, "2234-5678-90")
    with pytest.raises(paper.PaperError, match="今回の提出の対象ではありません"):
        paper.key_number(session, keyring, op2, item2, ref, NUMBER_ICHIRO)
    with pytest.raises(paper.PaperError, match="スキャン画像がありません"):
        paper.finish(session, keyring, op2, item2)
    paper.add_scan(session, keyring, op2, item2, ref, "license", jpeg())
    paper.add_scan(session, keyring, op2, item2, ref, "notice_card", jpeg())
    second_submission = paper.finish(session, keyring, op2, item2)
    assert second_submission.seq == 2
    session.refresh(req)
    assert campaigns.stage(req, resubmitted=True) == Stage.RESUBMITTED
    assert campaigns.stages(session, [req])[req.id] == Stage.RESUBMITTED

    # Accepted: the number from the first envelope, the documents from the second.
    case2, view2 = flows.claim_and_open(app, op3, req)
    [merged] = view2.subjects
    assert merged.number == NUMBER_ICHIRO
    assert {d.doc_type for d in merged.documents} == {"license", "notice_card"}
    assert merged.detected_combination == "other"
    result = flows.accept(app, op3, case2, view2)
    assert result.registered == 1
    session.refresh(req)
    assert req.status == RequestStatus.COMPLETED
    vault = app.extensions["mynumber_vault"]
    [found] = registry.search(session, vault, staff, registry.SearchCriteria(number=NUMBER_ICHIRO))
    assert found.id == req.person_id
    assert registry.active_record(session, req.person_id).source == "paper"
    assert registry.find_by_number(session, vault, NUMBER_WRONG) is None
    assert session.execute(select(SubmissionPart)).first() is None
    assert {s.status for s in session.execute(select(Submission)).scalars()} == {"disposed"}

    # Postage: kit and letter sent, two envelopes and one return of documents.
    entries = session.execute(select(PostageEntry).order_by(PostageEntry.id)).scalars().all()
    assert [(e.direction, e.cost_yen) for e in entries] == [
        ("send", 250),
        ("return", 370),
        ("send", 250),
        ("return", 580),
        ("return", 370),
    ]
    assert entries[1].tracking_number == "1234-5678-90"
    # Billing: 案内 (kit) and 郵送収集, once each, per person.
    assert {e.category for e in session.execute(select(BillableEvent)).scalars()} == {
        BillingCategory.EXTERNAL_KIT,
        BillingCategory.EXTERNAL_POSTAL,
    }
    labels = [e.label for e in campaigns.timeline(session, req)]
    for expected in (
        "送付",
        "郵送書類の到着",
        "不備あり",
        "不備のお知らせ送付",
        "提出書類の返送",
        "完了",
    ):
        assert expected in labels, expected

    # The audit trail never names the number; nothing at rest, in PDFs or in Redis holds it.
    details = " ".join(e.details for e in session.execute(select(AuditEvent)).scalars())
    assert NUMBER_ICHIRO not in details and NUMBER_WRONG not in details
    assert all(n not in text + letter_text for n in NUMBERS)
    dump = jobs.redis_dump()
    assert not [b for b in dump for n in NUMBERS for f in support.number_forms(n) if f in b]
    assert support.leaks(app, NUMBERS) == []


def test_keying_needs_two_different_portal_users(app, session, staff, operators):
    keyring = app.extensions["mynumber_keyring"]
    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    req = flows.request_of("X2001")
    item = _envelope(app, session, operators[0], req, None)
    ref = str(req.person_id)
    cli = support.actor("Operator", user_id=None, name="cli:root")
    with pytest.raises(paper.PaperError, match="ポータルの利用者"):
        paper.key_number(session, keyring, cli, item, ref, NUMBER_ICHIRO)
    with pytest.raises(policy.PermissionDenied):
        paper.key_number(session, keyring, staff, item, ref, NUMBER_ICHIRO)
    with pytest.raises(paper.PaperError, match="数字がどこか違って"):
        paper.key_number(
            session,
            keyring,
            operators[0],
            item,
            ref,
            NUMBER_ICHIRO[:-1] + str((int(NUMBER_ICHIRO[-1]) + 1) % 10),
        )
    with pytest.raises(paper.PaperError, match="対象者が見つかりません"):
        paper.key_number(session, keyring, operators[0], item, "someone-else", NUMBER_ICHIRO)
    paper.key_number(session, keyring, operators[0], item, ref, NUMBER_ICHIRO)
    assert not paper.state(session, item)[0].agreed
    with pytest.raises(paper.PaperError, match="入力中の郵送受付があります"):
        _envelope(app, session, operators[0], req, None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("request_code", "R-ZZZZ-ZZZZ", "該当する依頼がありません"),
        ("received_on", "2999-01-01", "未来の日付"),
        ("received_on", "昨日", "日付の形式"),
        ("tracking", "x" * 31, "30文字以内"),
        ("tracking", "<script>", "英数字とハイフン"),
        ("cost_yen", -1, "0以上"),
    ],
)
def test_envelope_bad_input(app, session, staff, operators, field, value, message):
    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    req = flows.request_of("X2001")
    values = {
        "request_code": req.request_code,
        "received_on": campaigns.jptime.today_jst(),
        "tracking": None,
        "carrier": app.config["KIT_CARRIER"],
        "method": app.config["KIT_RETURN_METHOD"],
        "cost_yen": None,
    }
    values[field] = value
    with pytest.raises(paper.PaperError, match=message):
        paper.receive_envelope(session, operators[0], **values)


def test_bad_scans_are_refused(app, session, staff, operators):
    from tests.public_form.conftest import png_bomb

    keyring = app.extensions["mynumber_keyring"]
    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    req = flows.request_of("X2001")
    item = _envelope(app, session, operators[0], req, None)
    ref = str(req.person_id)
    with pytest.raises(paper.PaperError, match="対応していない形式"):
        paper.add_scan(
            session, keyring, operators[0], item, ref, "card_front", b"MZ\x90\x00 not an image"
        )
    with pytest.raises(paper.PaperError, match="画素数が多すぎます"):
        paper.add_scan(session, keyring, operators[0], item, ref, "card_front", png_bomb())
    with pytest.raises(paper.PaperError, match="書類の種類"):
        paper.add_scan(session, keyring, operators[0], item, ref, "selfie", jpeg())
    assert session.execute(select(PaperPart)).first() is None
    assert not session.execute(select(Delivery)).first()
