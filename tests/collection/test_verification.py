"""Verification decisions: only the claimer opens a case (a refused attempt is audited);
the checklist must be complete; four-eyes acceptance by a second, different operator; a
number held by someone else stops everything; refusal disposes of the submission; the
client's policy may keep ID images, encrypted under the person's DEK (and shredded with it)."""

import json

import pytest
from sqlalchemy import select

from app.access import policy
from app.collection import campaigns, decisions, terms, verification
from app.core import jptime
from app.models import (
    AuditEvent,
    CaseStatus,
    MyNumberRecord,
    RequestStatus,
    RetainedDocument,
    SubmissionPart,
    VerificationCase,
)
from app.people import registry
from app.vault.envelopes import ShreddedError, field_aad, unseal
from tests.collection import flows
from tests.collection.conftest import (
    ICHIRO_BIRTH,
    NUMBER_ICHIRO,
    NUMBERS,
)
from tests.public_form.conftest import Subject


def _checklist(ref, **overrides):
    entry = {"combination": "card", "number": True, "identity": True} | overrides
    return {ref: entry}


def _accept(app, session, actor, case_id, checklist):
    return verification.accept(
        session,
        app.extensions["mynumber_vault"],
        app.extensions["mynumber_keyring"],
        actor,
        case_id,
        checklist,
    )


def test_only_the_claimer_opens_and_a_refusal_is_audited(app, session, operators, submitted):
    op1, op2, _ = operators
    req = submitted["req"]
    queue = verification.queue(session, op1)
    assert [i.request.id for i in queue.waiting] == [req.id]
    case = verification.claim(session, op1, req.id)
    session.refresh(req)
    assert req.status == RequestStatus.VERIFYING
    with pytest.raises(verification.VerificationError, match="別の担当者が確認中"):
        verification.claim(session, op2, req.id)
    assert [i.request.id for i in verification.queue(session, op1).mine] == [req.id]
    assert [i.request.id for i in verification.queue(session, op2).others] == [req.id]
    with pytest.raises(policy.PermissionDenied):
        verification.open_case(session, app.extensions["mynumber_keyring"], op2, case.id)
    denied = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "verification.open", AuditEvent.outcome == "denied"
        )
    ).scalar_one()
    assert denied.actor_name == op2.name
    # Nobody without the Operator role gets near it.
    with pytest.raises(policy.PermissionDenied):
        verification.queue(session, flows_staff(app))
    # Released, the case goes back to the queue for anyone.
    verification.release(session, op1, case.id)
    assert [i.request.id for i in verification.queue(session, op2).waiting] == [req.id]
    case2 = verification.claim(session, op2, req.id)
    assert case2.id != case.id


def flows_staff(app):
    from tests.support import actor

    return actor("ClientStaff", user_id=999)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"combination": None}, "組み合わせを選んでください"),
        ({"combination": "other"}, "提出された書類が一致しません"),
        ({"number": False}, "番号確認のチェックがありません"),
        ({"identity": False}, "身元確認のチェックがありません"),
    ],
)
def test_an_incomplete_checklist_registers_nothing(
    app, session, operators, submitted, overrides, message
):
    case, _view = flows.claim_and_open(app, operators[0], submitted["req"])
    with pytest.raises(verification.VerificationError, match=message):
        _accept(app, session, operators[0], case.id, _checklist(submitted["ref"], **overrides))
    assert session.execute(select(MyNumberRecord)).first() is None
    assert session.get(VerificationCase, case.id).status == CaseStatus.CLAIMED


def test_four_eyes_needs_a_second_operator(app, session, operators, submitted):
    op1, op2, _ = operators
    submitted["campaign"].four_eyes = True
    session.commit()
    req = submitted["req"]
    case, view = flows.claim_and_open(app, op1, req)
    assert view.four_eyes
    result = _accept(app, session, op1, case.id, _checklist(submitted["ref"]))
    assert result.status == CaseStatus.AWAITING_APPROVAL and result.registered == 0
    assert session.execute(select(MyNumberRecord)).first() is None
    assert [i.request.id for i in verification.queue(session, op1).others] == [req.id]
    assert [i.request.id for i in verification.queue(session, op2).approval] == [req.id]
    # The checker cannot approve their own check.
    with pytest.raises(policy.PermissionDenied, match="別の担当者"):
        verification.claim_approval(session, op1, case.id)
    with pytest.raises(policy.PermissionDenied):
        _accept(app, session, op1, case.id, _checklist(submitted["ref"]))
    verification.claim_approval(session, op2, case.id)
    result = _accept(app, session, op2, case.id, _checklist(submitted["ref"]))
    assert result.status == "accepted" and result.registered == 1
    closed = session.get(VerificationCase, case.id)
    assert (closed.checked_by, closed.decided_by, closed.decision) == (
        op1.name,
        op2.name,
        "accepted",
    )
    assert json.loads(closed.checklist) == {submitted["ref"]: ["card", "number", "identity"]}
    session.refresh(req)
    assert req.status == RequestStatus.COMPLETED
    assert "確認済（承認待ち）" in [h.label for h in req.history]


def test_a_number_stored_for_someone_else_stops_the_acceptance(
    app, session, vault, operators, submitted
):
    other = registry.add_person(session, vault, kind="external", name="別人 二郎", code="X9999")
    registry.register_number(session, vault, other, NUMBER_ICHIRO, "manual")
    session.commit()
    case, _view = flows.claim_and_open(app, operators[0], submitted["req"])
    with pytest.raises(verification.VerificationError, match="既に別の人物の番号として登録"):
        _accept(app, session, operators[0], case.id, _checklist(submitted["ref"]))
    session.expire_all()
    assert registry.active_record(session, submitted["req"].person_id) is None
    assert session.get(VerificationCase, case.id).status == CaseStatus.CLAIMED
    assert session.execute(select(SubmissionPart)).first() is not None  # nothing was disposed
    failure = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "verification.accept", AuditEvent.outcome == "failure"
        )
    ).scalar_one()
    assert "duplicate_number" in failure.details


def test_refusal_disposes_of_the_submission_and_the_subject_is_told(
    app, session, operators, submitted, form_app
):
    case, _view = flows.claim_and_open(app, operators[0], submitted["req"])
    with pytest.raises(verification.VerificationError, match="理由を選んでください"):
        verification.refuse(session, operators[0], case.id, "because", None)
    verification.refuse(session, operators[0], case.id, "identity_unconfirmed", "顔写真が別人")
    req = submitted["req"]
    session.refresh(req)
    assert req.status == RequestStatus.REFUSED
    assert session.execute(select(SubmissionPart)).first() is None
    assert "本人確認ができない" in req.history[-1].note
    subject = Subject(form_app.test_client())
    subject.login(submitted["token"], ICHIRO_BIRTH)
    page = subject.get("/status").get_data(as_text=True)
    assert "受け付けることができませんでした" in page


def test_a_deficiency_by_email_reopens_just_that(app, session, operators, submitted, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    req = submitted["req"]
    req.channel = "email"
    req.person.email = "ichiro@example.jp"
    session.commit()
    case, _view = flows.claim_and_open(app, operators[0], req)
    with pytest.raises(terms.IntakeError, match="理由コードが不明"):
        verification.deficient(session, operators[0], case.id, [(submitted["ref"], "ugly")], None)
    session.rollback()
    notice = verification.deficient(
        session, operators[0], case.id, [(submitted["ref"], "number_mismatch")], "裏面の番号と違う"
    )
    from app.jobs.collection import send_delivery

    assert send_delivery(notice.id) == "sent"
    [message] = smtp_server.messages
    body = message.get_body(("plain",)).get_content()
    assert "入力された個人番号と確認書類の番号が一致しません" in body and "/r/" in body
    for n in NUMBERS:
        assert n not in body
    session.refresh(req)
    # A new deadline, given in the notice: 14 days on (a business day), or the request's own
    # deadline when that is later; the link stays open past it.
    resubmit_by = decisions.resubmission_deadline(jptime.today_jst())
    assert req.deadline >= resubmit_by
    assert f"{campaigns.format_date(req.deadline)}までに" in body
    assert jptime.aware(req.expires_at).date() > req.deadline
    assert req.reopened_items == [
        {"ref": submitted["ref"], "part": "number"},
        {"ref": submitted["ref"], "part": "documents"},
    ]


def test_kept_images_are_encrypted_under_the_persons_key(app, session, vault, operators, submitted):
    app.config["COLLECTION_KEEP_ID_IMAGES"] = True
    case, view = flows.claim_and_open(app, operators[0], submitted["req"])
    originals = {d.doc_type: d.data for d in view.subjects[0].documents}
    result = flows.accept(app, operators[0], case, view)
    assert result.kept_images == 2
    person_id = submitted["req"].person_id
    rows = (
        session.execute(select(RetainedDocument).where(RetainedDocument.person_id == person_id))
        .scalars()
        .all()
    )
    dek = vault.unwrap(vault.data_key_row(session, person_id))
    for row in rows:
        assert row.ciphertext[:2] == b"MV" and originals[row.doc_type] not in row.ciphertext
        plain = unseal(dek, field_aad("retained_document", "ciphertext", row.id), row.ciphertext)
        assert plain == originals[row.doc_type]
    # Crypto-shredding the person takes the images with it.
    vault.shred(session, [person_id])
    session.commit()
    with pytest.raises(ShreddedError):
        vault.data_key_row(session, person_id)


def test_a_case_from_an_earlier_round_does_not_block_the_resubmission(
    app, session, operators, submitted, form_app
):
    op1, op2, _ = operators
    req = submitted["req"]
    stale = verification.claim(session, op1, req.id)
    # The deficiency is recorded on the older 受付一覧 screen, not through the case.
    decisions.mark_deficient(session, op1, req, [(submitted["ref"], "identity_doc_unreadable")])
    session.commit()
    subject = Subject(form_app.test_client())
    subject.login(submitted["token"], ICHIRO_BIRTH)
    subject.consent()
    assert subject.card(submitted["ref"]).status_code == 302
    assert subject.submit().headers["Location"].endswith("/done")
    session.expire_all()
    assert [i.request.id for i in verification.queue(session, op2).waiting] == [req.id]
    fresh = verification.claim(session, op2, req.id)
    assert session.get(VerificationCase, stale.id).status == CaseStatus.CLOSED
    view = verification.open_case(session, app.extensions["mynumber_keyring"], op2, fresh.id)
    assert view.subjects[0].number == NUMBER_ICHIRO
