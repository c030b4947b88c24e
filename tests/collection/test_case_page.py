"""The operator's case: a number already stored for someone else is flagged as soon as the case
is opened (never saying whose, to the operator or the subject), with a deficiency reason of
its own; a refused accept keeps the operator on the case without opening (decrypting and
auditing) it again; the documents are in the page, as large as the column and zoomable, a
住民票 PDF as its rendered pages, never a download."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from app.access.policy import OPERATOR
from app.collection import receive, verification
from app.models import AuditEvent, CaseStatus, PersonKind, RequestStatus, db
from app.people import registry
from tests import support
from tests.collection import flows
from tests.collection.conftest import (
    NUMBER_ICHIRO,
    actor_of,
    submit_external,
)
from tests.public_form.conftest import jpeg, pdf


def _held_by_someone_else(session, vault, number):
    other = registry.add_person(
        session,
        vault,
        kind=PersonKind.EXTERNAL,
        name="別人 三郎",
        code="X9999",
        birth_date=dt.date(1960, 1, 1),
    )
    registry.register_number(session, vault, other, number, "import")
    session.commit()
    return other


def _events(action):
    db.session.expire_all()
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).scalars()
    )


def _accept(app, operator, case_id, checklist):
    return verification.accept(
        db.session,
        app.extensions["mynumber_vault"],
        app.extensions["mynumber_keyring"],
        operator,
        case_id,
        checklist,
    )


def test_a_number_held_elsewhere_is_flagged_at_opening_and_stops_the_accept(
    app, session, vault, operators, submitted
):
    other = _held_by_someone_else(session, vault, NUMBER_ICHIRO)
    operator, req, ref = operators[0], submitted["req"], submitted["ref"]
    case = verification.claim(session, operator, req.id)
    view = verification.open_case(
        session, app.extensions["mynumber_keyring"], operator, case.id, vault=vault
    )
    [subject] = view.subjects
    assert "既に別の人物の番号として登録されています" in subject.flag
    assert "別人" not in subject.flag and "X9999" not in subject.flag  # never whose
    # The client's staff can find out whose: the audit event names the holder.
    [event] = _events("intake.number_held_elsewhere")
    assert str(other.id) in json.loads(event.object_ids)
    assert json.loads(event.details) == {"refs": [ref]}

    # Accepting is refused with the checklist complete, and the view comes back with it.
    with pytest.raises(verification.AcceptRefused, match="別の人物の番号") as refused:
        _accept(app, operator, case.id, flows.full_checklist(view))
    assert refused.value.view.subjects[0].number == NUMBER_ICHIRO
    [failure] = _events("verification.accept")
    assert failure.outcome == "failure" and "duplicate_number" in failure.details
    session.expire_all()
    assert registry.find_by_number(session, vault, NUMBER_ICHIRO).id == other.id
    assert session.get(type(case), case.id).status == CaseStatus.CLAIMED
    assert session.get(type(req), req.id).status == RequestStatus.VERIFYING

    # Its own deficiency reason: the number and the documents again, and the subject reads
    # only that the number could not be accepted.
    verification.deficient(session, operator, case.id, [(ref, "number_registered")])
    session.expire_all()
    req = session.get(type(req), req.id)
    assert req.reopened_items == [
        {"ref": ref, "part": "number"},
        {"ref": ref, "part": "documents"},
    ]
    [(_whose, what)] = receive.subject_status(session, req).fixes
    assert "受け付けられませんでした" in what
    assert "別" not in what and "登録" not in what


def test_the_persons_own_stored_number_is_no_conflict(app, session, vault, operators, submitted):
    req = submitted["req"]
    registry.register_number(session, vault, req.person, NUMBER_ICHIRO, "import")
    session.commit()
    case = verification.claim(session, operators[0], req.id)
    view = verification.open_case(
        session, app.extensions["mynumber_keyring"], operators[0], case.id, vault=vault
    )
    assert view.subjects[0].flag is None and not _events("intake.number_held_elsewhere")


def test_a_juminhyo_pdf_is_rendered_to_page_images_when_the_case_is_opened(
    app, session, staff, operators, form_app
):
    files = {"number_doc": (pdf(), "juminhyo.pdf"), "identity_doc": (jpeg(), "license.jpg")}
    types = {"number_doc_type": "juminhyo", "identity_doc_type": "license"}
    submitted = submit_external(app, staff, form_app, ("other", files, types))
    case, view = flows.claim_and_open(app, operators[0], submitted["req"])
    docs = {d.doc_type: d for d in view.subjects[0].documents}
    juminhyo = docs["juminhyo"]
    assert juminhyo.media_type == "application/pdf" and juminhyo.render_error is None
    assert juminhyo.pages_total == 1 and len(juminhyo.images) == 1
    assert juminhyo.images[0].startswith(b"\xff\xd8")  # a JPEG page, made in memory
    assert docs["license"].images == [docs["license"].data]
    assert case.status == CaseStatus.CLAIMED


# -- on screen ---------------------------------------------------------------------------------
def _open_on_screen(client, make_user, portal_login, session, req):
    user, secret = make_user(OPERATOR)
    operator = actor_of(user, OPERATOR)
    support.give_case(session, req, operator)
    portal_login(user.username, secret)
    queue = client.get("/verification/").get_data(as_text=True)
    open_url = re.search(r'action="(/verification/case/\d+/open)"', queue).group(1)
    page = support.post_form(client, open_url, {"purpose": ""}, token_from="/verification/")
    assert page.status_code == 200
    return user, page.get_data(as_text=True)


def test_the_case_page_flags_the_number_and_a_refused_accept_stays_on_the_case(
    app, session, vault, client, make_user, portal_login, submitted
):
    _held_by_someone_else(session, vault, NUMBER_ICHIRO)
    ref = submitted["ref"]
    user, html = _open_on_screen(client, make_user, portal_login, session, submitted["req"])
    assert 'class="alert alert-danger mnv-number-flag"' in html
    assert "既に別の人物の番号として登録されています" in html and "別人" not in html
    # The deficiency reason for it is ticked already.
    assert re.search(rf'name="def-{ref}" value="number_registered" checked', html), (
        "the reason is offered and pre-ticked"
    )
    opened_before = len(_events("intake.open"))
    accept_url = re.search(r'action="(/verification/case/\d+/accept)"', html).group(1)
    ticks = {"ref": ref, f"combination-{ref}": "card", f"number-{ref}": "1", f"identity-{ref}": "1"}
    response = support.post_form(
        client, accept_url, {**ticks, "note": "確認済み"}, token_from="/verification/"
    )
    # Still the case page (no redirect to the queue), with the reason and the ticks kept.
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "受理できません" in page and "別の人物の番号" in page
    assert f'action="{accept_url}"' in page
    assert re.search(rf'name="number-{ref}" value="1" checked', page)
    assert ">確認済み</textarea>" in page
    # The accept opened the case once (audited); staying on it opened nothing more.
    assert len(_events("intake.open")) == opened_before + 1
    assert [(e.actor_name, e.outcome) for e in _events("verification.accept")] == [
        (user.username, "failure")
    ]
    assert support.leaks(app, [NUMBER_ICHIRO]) == []


def test_the_intake_page_flags_it_too_and_shows_a_pdf_as_pages(
    app, session, vault, staff, client, make_user, portal_login, form_app
):
    files = {"number_doc": (pdf(), "juminhyo.pdf"), "identity_doc": (jpeg(), "license.jpg")}
    types = {"number_doc_type": "juminhyo", "identity_doc_type": "license"}
    submitted = submit_external(app, staff, form_app, ("other", files, types))
    _held_by_someone_else(session, vault, NUMBER_ICHIRO)
    session.expire_all()
    user, secret = make_user(OPERATOR)
    support.give_case(session, flows.request_of("X2001"), actor_of(user, OPERATOR))
    portal_login(user.username, secret)
    listing = client.get("/intake/").get_data(as_text=True)
    html = support.post_form(
        client,
        re.search(r'action="(/intake/[^"]+/open)"', listing).group(1),
        {"purpose": ""},
        token_from="/intake/",
    ).get_data(as_text=True)
    assert "既に別の人物の番号として登録されています" in html and "別人" not in html
    assert "住民票の写し（個人番号の記載があるもの）（PDF・1 ページ）" in html
    assert html.count('class="mnv-zoom"') == 2 and html.count('src="data:image/jpeg') == 2
    assert "mynumber/docview.js" in html and "ダウンロード" not in html
    assert submitted["ref"] in html
