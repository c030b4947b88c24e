"""The intake services campaigns build on: issuing, transitions, deficiencies, drafts."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.access.policy import PermissionDenied
from app.collection import decisions, drafts, receive, requests
from app.collection.terms import IntakeError
from app.core.actor import Actor
from app.models import (
    CollectionRequestStatus,
    PersonKind,
    RequestStatus,
    Submission,
    SubmissionPart,
    utcnow,
)
from app.people import registry
from tests import support
from tests.public_form.conftest import NUMBER_SELF


def test_create_request_refuses_what_cannot_work(session, vault, household):
    actor = Actor.system("test")
    with pytest.raises(IntakeError, match="扶養者"):
        requests.create_request(session, actor, household["dep"], purpose_text="x")
    nobirth = registry.add_person(session, vault, kind=PersonKind.EXTERNAL, name="生年 不明")
    with pytest.raises(IntakeError, match="生年月日"):
        requests.create_request(session, actor, nobirth, purpose_text="x")
    with pytest.raises(IntakeError, match="利用目的"):
        requests.create_request(session, actor, household["head"], purpose_text="  ")


def test_transitions_are_checked_and_audited(session, household, operator):
    req = household["req"]
    with pytest.raises(IntakeError, match="変更できません"):
        decisions.set_status(session, operator, req, RequestStatus.COMPLETED)  # nothing submitted
    # Nothing submitted, so no case anyone could hold: a deficiency is refused outright.
    with pytest.raises(PermissionDenied, match="不備を登録できません"):
        decisions.mark_deficient(
            session, operator, req, [(str(household["head"].id), "number_invalid")]
        )
    with pytest.raises(PermissionDenied):
        decisions.set_status(session, support.actor("ClientStaff"), req, RequestStatus.CANCELLED)
    decisions.set_status(session, operator, req, RequestStatus.CANCELLED, "再発行のため")
    session.commit()
    assert req.status == RequestStatus.CANCELLED
    assert requests.entry_state(req) == "cancelled"
    rows = session.execute(select(CollectionRequestStatus.status)).scalars().all()
    assert rows == ["issued", "cancelled"]


def test_deficiency_codes_and_people_are_validated(session, household, operator, subject):
    ref = str(household["head"].id)
    dep = str(household["dep"].id)
    subject.login(household["token"])
    subject.consent()
    subject.number(ref, NUMBER_SELF)
    subject.card(ref)
    subject.post(f"/p/{dep}/exclude", {"reason": "left_household"})
    assert subject.submit().headers["Location"].endswith("/done")
    req = household["req"]
    session.refresh(req)
    support.give_case(session, req, operator)
    with pytest.raises(IntakeError, match="理由コードが不明"):
        decisions.mark_deficient(session, operator, req, [(ref, "bogus")])
    with pytest.raises(IntakeError, match="含まれていません"):
        decisions.mark_deficient(session, operator, req, [("new9", "number_invalid")])
    with pytest.raises(IntakeError, match="12桁"):
        decisions.mark_deficient(session, operator, req, [(ref, "number_invalid")], NUMBER_SELF)
    req.expires_at = utcnow() + dt.timedelta(days=1)  # nearly expired when found deficient
    reopened = decisions.mark_deficient(
        session, operator, req, [(ref, "number_mismatch")], "番号と書類が違う"
    )
    assert reopened == [{"ref": ref, "part": "number"}, {"ref": ref, "part": "documents"}]
    expires = req.expires_at if req.expires_at.tzinfo else req.expires_at.replace(tzinfo=dt.UTC)
    assert expires >= utcnow() + dt.timedelta(days=decisions.DEFICIENCY_GRACE_DAYS - 1)
    view = receive.subject_status(session, req)
    assert view.can_resubmit and view.fixes[0][0] == "山田 太郎"


def test_stale_drafts_are_purged(session, household, subject):
    ref = str(household["head"].id)
    subject.login(household["token"])
    subject.consent()
    subject.number(ref, NUMBER_SELF)
    assert session.execute(select(func.count()).select_from(SubmissionPart)).scalar_one() == 1
    assert drafts.purge_stale_drafts(session, dt.timedelta(hours=1)) == 0
    draft = session.execute(select(Submission)).scalar_one()
    draft.created_at = draft.created_at - dt.timedelta(hours=2)
    session.commit()
    assert drafts.purge_stale_drafts(session, dt.timedelta(hours=1)) == 1
    session.commit()
    assert session.execute(select(func.count()).select_from(SubmissionPart)).scalar_one() == 0
