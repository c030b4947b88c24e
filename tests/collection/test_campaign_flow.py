"""A whole campaign, end to end, with jobs inline and on a real Redis with a real worker:
targets CSV → e-mail received by a real SMTP server and kit PDFs rendered → web submission
through the public form → verification accepted → the numbers findable by 照合. Nothing
leaks: no number in any mail, PDF, job argument, Redis key or byte at rest."""

from sqlalchemy import select

from app.collection import campaigns, kits
from app.models import (
    BillableEvent,
    BillingCategory,
    CaseAssignment,
    Delivery,
    Person,
    PostageEntry,
    RequestStatus,
    Stage,
    Submission,
    SubmissionPart,
)
from app.people import registry
from tests import support
from tests.collection import flows
from tests.collection.conftest import (
    NUMBER_HANAKO,
    NUMBER_JIRO,
    NUMBER_TARO,
    NUMBERS,
    TARO_BIRTH,
    decode_qr_codes,
    mail_text,
    token_from,
)
from tests.conftest import pdf_text


def test_a_whole_campaign(app, session, staff, operators, smtp_server, subject, jobs, needs_pdf):
    app.config["SMTP_URL"] = smtp_server.url
    operator = operators[0]
    campaign, loaded = flows.campaign_with_targets(app, staff)
    assert (loaded.households, loaded.requests_issued, loaded.emails, loaded.posts) == (2, 2, 1, 1)
    assert loaded.people_created == 3
    taro_req, takahashi_req = flows.request_of("E1001"), flows.request_of("E1002")
    assert campaigns.counts(session, campaign.id)[Stage.CREATED] == 2

    # E-mail: one message, received by the SMTP server, with the name and the link only.
    flows.dispatch(campaign, operator, jobs)
    [message] = smtp_server.messages
    body = mail_text(message)
    assert message["To"] == "taro@example.jp"
    assert "見本 太郎 様" in body and "見本機構" in message["Subject"]
    link = next(line for line in body.splitlines() if "/r/" in line).strip()
    assert link.startswith("https://form.example.jp/r/")
    assert "1985" not in body and "千代田" not in body  # no birth date, no address
    # Sending again (a retried job) sends nothing twice.
    flows.dispatch(campaign, operator, jobs)
    from app.jobs.collection import send_delivery

    delivery = session.execute(
        select(Delivery).where(Delivery.request_id == taro_req.id)
    ).scalar_one()
    assert send_delivery(delivery.id) == "sent"
    assert len(smtp_server.messages) == 1
    session.refresh(taro_req)
    assert campaigns.stage(taro_req) == Stage.SENT

    # Post: the kit in a print batch, rendered by the job; Japanese text and a QR that opens
    # the same link the subject's own request has.
    batch, kit_pdf = flows.print_batch(app, campaign, operator, jobs)
    text = pdf_text(kit_pdf)
    for expected in (
        "髙橋 𠮷男 様",
        "160-0023",
        "申請用紙",
        "記入例",
        "返信用封筒ラベル",
        "追跡番号",
        "利用目的",
        "源泉徴収票",
    ):
        assert expected in text, expected
    [qr] = decode_qr_codes(kit_pdf)
    assert qr.startswith("https://form.example.jp/r/")
    assert qr != link
    session.refresh(takahashi_req)
    assert takahashi_req.request_code in text
    posted = kits.mark_posted(
        session,
        operator,
        batch,
        posted_on=flows.campaigns.jptime.today_jst(),
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_SEND_METHOD"],
    )
    session.commit()
    assert posted == 1
    assert campaigns.stage(takahashi_req) == Stage.SENT
    postage = session.execute(select(PostageEntry)).scalar_one()
    assert (postage.direction, postage.cost_yen, postage.request_id) == (
        "send",
        250,
        takahashi_req.id,
    )

    # The subject follows the e-mailed link on the public form.
    flows.submit_household_on_web(
        subject,
        token_from(link),
        str(taro_req.person_id),
        str(taro_req.person.dependents[0].id),
        [NUMBER_TARO, NUMBER_HANAKO, NUMBER_JIRO],
        TARO_BIRTH,
    )
    session.expire_all()
    assert campaigns.stage(flows.request_of("E1001")) == Stage.SUBMITTED

    # Verification: claimed, opened (audited), accepted with the checklist.
    case, view = flows.claim_and_open(app, operator, taro_req)
    assert {s.number for s in view.subjects} == {NUMBER_TARO, NUMBER_HANAKO, NUMBER_JIRO}
    result = flows.accept(app, operator, case, view)
    assert (result.status, result.registered, result.created_dependents) == ("accepted", 3, 1)
    session.expire_all()
    req = flows.request_of("E1001")
    assert req.status == RequestStatus.COMPLETED

    # 照合: the client finds every one of them by number.
    vault = app.extensions["mynumber_vault"]
    for number, name in (
        (NUMBER_TARO, "見本 太郎"),
        (NUMBER_HANAKO, "見本 花子"),
        (NUMBER_JIRO, "見本 次郎"),
    ):
        [found] = registry.search(session, vault, staff, registry.SearchCriteria(number=number))
        assert found.name == name
    jiro = session.execute(select(Person).where(Person.name == "見本 次郎")).scalar_one()
    assert jiro.household_head_id == req.person_id and jiro.relation == "子"
    assert jiro.dependent_code == "E1001-02"

    # The images are gone; only metadata of the submission stays; the case is closed.
    assert session.execute(select(SubmissionPart)).first() is None
    assert {s.status for s in session.execute(select(Submission)).scalars()} == {"disposed"}
    assert all(a.closed_at for a in session.execute(select(CaseAssignment)).scalars())

    # Billing: the 案内 for both households, the smartphone collection for one (3 people).
    events = {(e.category, e.people) for e in session.execute(select(BillableEvent)).scalars()}
    assert events == {
        (BillingCategory.EMPLOYEE_KIT, 1),
        (BillingCategory.EMPLOYEE_SMARTPHONE, 3),
    }
    assert len(session.execute(select(BillableEvent)).scalars().all()) == 3

    # The client's view.
    counts = campaigns.counts(session, campaign.id)
    assert counts[Stage.COMPLETED] == 1 and counts[Stage.SENT] == 1
    labels = [e.label for e in campaigns.timeline(session, req)]
    assert (
        labels.index("送付")
        < labels.index("受付済")
        < labels.index("確認中")
        < labels.index("完了")
    )

    # Nothing leaked anywhere.
    for message in smtp_server.messages:
        for form in support.number_forms(NUMBER_TARO):
            assert form not in message.as_bytes()
    assert all(n not in text for n in NUMBERS)
    for args in jobs.job_arguments():
        assert all(isinstance(a, int) for a in args), args  # ids only
    if jobs.mode == "rq":
        assert len(jobs.job_arguments()) >= 2  # the e-mail and the print batch ran on the worker
    dump = jobs.redis_dump()
    assert any(b"send_delivery" in blob for blob in dump) == (jobs.mode == "rq")
    assert not [
        blob for blob in dump for n in NUMBERS for f in support.number_forms(n) if f in blob
    ]
    assert support.leaks(app, NUMBERS) == []
