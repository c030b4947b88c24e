"""Steps the collection tests share (service level, as views, CLI and jobs call them)."""

from __future__ import annotations

from sqlalchemy import select

from app.access import assignments
from app.collection import campaigns, kits, mailings, subjects, targets, verification
from app.jobs.collection import render_print_batch, send_delivery
from app.models import CampaignKind, CollectionRequest, Person, PrintBatch, db
from app.platform.queue import enqueue
from tests.collection.conftest import (
    EMPLOYEE_CSV,
    EXTERNAL_CSV,
    future_business_day,
)


def campaign_with_targets(
    app, staff, kind=CampaignKind.EMPLOYEE, csv_text=None, encoding=None, assign_operators=True
):
    """A campaign and its loaded targets: the employee file in UTF-8 with BOM (it has 𠮷,
    which CP932 cannot hold), the external one in CP932 as Excel saves it. Unless told not to,
    the client's staff then assigns every Operator on the approved roster to it (the usual
    order: the client names the operators who work its collection, app.access.assignments)."""
    session = db.session
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="2026年度 役職員マイナンバー収集"
        if kind == CampaignKind.EMPLOYEE
        else "外部委員 4月分",
        kind=kind,
        deadline=future_business_day(),
        purpose_text="給与所得・退職所得の源泉徴収票作成事務",
        month=None if kind == CampaignKind.EMPLOYEE else "2026-04",
    )
    encoding = encoding or ("utf-8-sig" if kind == CampaignKind.EMPLOYEE else "cp932")
    data = (csv_text or (EMPLOYEE_CSV if kind == CampaignKind.EMPLOYEE else EXTERNAL_CSV)).encode(
        encoding
    )
    _parsed, result = targets.load(
        session,
        app.extensions["mynumber_vault"],
        app.extensions["mynumber_keyring"],
        staff,
        campaign,
        data,
    )
    session.commit()
    if assign_operators:
        for user in assignments.candidates(session):
            assignments.assign(session, staff, campaign, user.id)
        session.commit()
    return campaign, result


def request_of(code: str) -> CollectionRequest:
    person = db.session.execute(
        select(Person).where(Person.code == code, Person.kind != "dependent")
    ).scalar_one()
    return db.session.execute(
        select(CollectionRequest).where(
            CollectionRequest.person_id == person.id, CollectionRequest.status != "cancelled"
        )
    ).scalar_one()


def dispatch(campaign, operator, jobs):
    result = mailings.dispatch(db.session, operator, campaign)
    for delivery_id in result.emails:
        enqueue(send_delivery, delivery_id)
    jobs.drain()
    return result


def print_batch(app, campaign, operator, jobs):
    batch = kits.create_batch(db.session, operator, campaign)
    enqueue(render_print_batch, batch.id)
    jobs.drain()
    db.session.expire_all()
    batch = db.session.get(PrintBatch, batch.id)
    assert batch.status == "ready", batch.error
    return batch, kits.batch_file(db.session, app.extensions["mynumber_vault"], operator, batch, 1)


def claim_and_open(app, operator, req):
    case = verification.claim(db.session, operator, req.id)
    view = verification.open_case(db.session, app.extensions["mynumber_keyring"], operator, case.id)
    return case, view


def full_checklist(view, combination=None):
    return {
        s.ref: {
            "combination": combination or s.detected_combination or "card",
            "number": True,
            "identity": True,
        }
        for s in view.subjects
        if not s.excluded_reason
    }


def accept(app, operator, case, view, **kwargs):
    return verification.accept(
        db.session,
        app.extensions["mynumber_vault"],
        app.extensions["mynumber_keyring"],
        operator,
        case.id,
        full_checklist(view, **kwargs),
    )


def submit_household_on_web(subject, token, head_ref, dep_ref, numbers, birth):
    """The subject's own number and card, the listed dependent's, and one added dependent."""
    from tests.public_form.conftest import pdf

    subject.login(token, birth)
    subject.consent()
    assert subject.number(head_ref, numbers[0]).status_code == 302
    assert subject.card(head_ref).status_code == 302
    assert subject.number(dep_ref, numbers[1]).status_code == 302
    assert subject.card(dep_ref, self_role=False).status_code == 302
    response = subject.post(
        "/dependents/add",
        {
            "name": "見本 次郎",
            "kana": "ミホン ジロウ",
            "relation": "子",
            "year": "2020",
            "month": "6",
            "day": "1",
        },
    )
    assert response.headers["Location"].endswith("/p/new1/number")
    assert subject.number("new1", numbers[2]).status_code == 302
    response = subject.documents(
        "new1", "other", {"number_doc": (pdf(), "juminhyo.pdf")}, {"number_doc_type": "juminhyo"}
    )
    assert response.status_code == 302
    assert subject.submit().headers["Location"].endswith("/done")


def intake_refs(req):
    return [s.ref for s in subjects.listed_subjects(db.session, req)]
