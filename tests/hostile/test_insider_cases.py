"""Insider attack: an Operator placing their own collection order to reach a person's number.

The attack: an Operator who may not reveal a person made their own campaign, uploaded a
target list with the person's code, birth date and their own e-mail address (the upload
overwrote the stored address), submitted through the link, opened the submission and then
revealed the stored number; and any Operator could open another household's submission.

Now orders come from the client's staff only, an Operator works only within campaigns a
ClientStaff user assigned them to and only on the case they claimed, and a target list
never rewrites stored contact data. Every step of the attack ends in a Japanese refusal and
an audit event.
"""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from app.access import assignments, policy
from app.access.policy import OPERATOR
from app.collection import campaigns, links, mailings, targets, verification
from app.core.mynumber import make_valid
from app.models import Campaign, CampaignKind, CollectionRequest, Delivery, Person
from app.people import registry
from tests.collection import flows
from tests.collection.conftest import (
    EMPLOYEE_CSV,
    ICHIRO_BIRTH,
    NUMBER_ICHIRO,
    actor_of,
    collection_config,  # noqa: F401 - the return address and fees a request needs
    future_business_day,
)
from tests.hostile.conftest import assert_clear_refusal, audit_events
from tests.public_form.conftest import Subject
from tests.support import add_employee_with_number, csrf_token, post_form

VICTIM_NUMBER = make_valid("81122334455")
VICTIM_EMAIL = "victim@example.jp"
ATTACKER_EMAIL = "attacker@example.net"
# The victim's code and birth date (add_employee_with_number: 1980-04-01), the attacker's
# own e-mail address.
ATTACK_CSV = (
    EMPLOYEE_CSV.splitlines()[0]
    + "\r\n"
    + f"E9001,本人,,被害 太郎,ヒガイ タロウ,1980/04/01,,,{ATTACKER_EMAIL},メール\r\n"
)


@pytest.fixture
def victim(session, vault):
    """An employee with a stored number and e-mail address."""
    person = add_employee_with_number(session, vault, VICTIM_NUMBER, name="被害 太郎", code="E9001")
    person.email = VICTIM_EMAIL
    session.commit()
    return person


@pytest.fixture
def attacker(make_user, login):
    """An Operator on the approved roster, signed in through the real pages."""
    user, secret = make_user(OPERATOR)
    login(user.username, totp_secret=secret)
    return user


def _campaign(session, staff) -> Campaign:
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="2026年度 収集",
        kind=CampaignKind.EMPLOYEE,
        deadline=future_business_day(),
        purpose_text="給与所得の源泉徴収票作成事務",
    )
    session.commit()
    return campaign


def _details(event) -> dict:
    return json.loads(event.details) if isinstance(event.details, str) else event.details


def _denied(action: str, actor_id: int) -> list:
    return [e for e in audit_events(action, "denied") if e.actor_id == actor_id]


def test_an_operator_cannot_create_a_campaign(app, session, client, attacker):
    page = client.get("/campaigns/").get_data(as_text=True)
    assert "新しいキャンペーン" not in page  # the form is not offered
    response = post_form(
        client,
        "/campaigns/create",
        {
            "name": "自分の案件",
            "kind": CampaignKind.EMPLOYEE,
            "deadline": future_business_day().isoformat(),
            "purpose_text": "給与所得の源泉徴収票作成事務",
        },
        token_from="/resetmypassword/form",  # the list offers no form to an Operator
    )
    assert_clear_refusal(response, status=403)
    assert _details(_denied("access.denied", attacker.id)[-1])["route"] == "/campaigns/create"
    # The service refuses too (CLI, jobs and views all call it), and says so in the log.
    with pytest.raises(policy.PermissionDenied, match="権限がありません"):
        campaigns.create_campaign(
            session,
            actor_of(attacker, OPERATOR),
            name="自分の案件",
            kind=CampaignKind.EMPLOYEE,
            deadline=future_business_day(),
            purpose_text="給与所得の源泉徴収票作成事務",
        )
    assert _denied("campaign.create", attacker.id)
    assert session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 0


def test_an_operator_cannot_upload_a_target_list(app, session, client, staff, victim, attacker):
    campaign = _campaign(session, staff)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "対象者リストの登録" not in page
    response = client.post(
        f"/campaigns/{campaign.id}/targets",
        data={
            "csrf_token": csrf_token(client, "/resetmypassword/form"),
            "file": (io.BytesIO(ATTACK_CSV.encode()), "targets.csv"),
        },
        content_type="multipart/form-data",
    )
    assert_clear_refusal(response, status=403)
    assert _details(_denied("access.denied", attacker.id)[-1])["route"] == (
        "/campaigns/<string:cid>/targets"
    )
    with pytest.raises(policy.PermissionDenied, match="権限がありません"):
        targets.load(
            session,
            app.extensions["mynumber_vault"],
            app.extensions["mynumber_keyring"],
            actor_of(attacker, OPERATOR),
            campaign,
            ATTACK_CSV.encode(),
        )
    assert _denied("campaign.targets_load", attacker.id)
    session.expire_all()
    assert session.execute(select(func.count()).select_from(CollectionRequest)).scalar_one() == 0
    assert session.get(Person, victim.id).email == VICTIM_EMAIL


def test_a_target_upload_never_overwrites_a_stored_email(app, session, staff, operators, victim):
    """Even the client's own list cannot redirect a person's request: the stored address
    stays, the request goes to it, and the difference is shown to the uploader."""
    campaign = _campaign(session, staff)
    _parsed, result = targets.load(
        session,
        app.extensions["mynumber_vault"],
        app.extensions["mynumber_keyring"],
        staff,
        campaign,
        ATTACK_CSV.encode(),
    )
    session.commit()
    assert result.people_matched == 1 and result.requests_issued == 1
    assert result.contact_differs == ["行 2: メールアドレス"]
    session.expire_all()
    assert session.get(Person, victim.id).email == VICTIM_EMAIL
    loaded = audit_events("campaign.targets_load")[-1]
    assert _details(loaded)["contact_differs"] == 1
    assert ATTACKER_EMAIL not in str(loaded.details)
    # The request e-mail goes to the stored address, not to the list's.
    operator = operators[0]
    assignments.assign(session, staff, campaign, operator.user_id)
    session.commit()
    sent = mailings.dispatch(session, operator, campaign)
    delivery = session.get(Delivery, sent.emails[0])
    mail = mailings.build_mail(session, app.extensions["mynumber_keyring"], app.config, delivery)
    assert mail.to == [VICTIM_EMAIL]


def _submitted_external(app, session, staff, form_app):
    """An external member's household submitted on the web, in a campaign nobody works yet."""
    campaign, _ = flows.campaign_with_targets(app, staff, kind="external", assign_operators=False)
    req = flows.request_of("X2001")
    token = links.token_for(app.extensions["mynumber_keyring"], req.id)
    subject = Subject(form_app.test_client())
    subject.login(token, ICHIRO_BIRTH)
    subject.consent()
    ref = str(req.person_id)
    assert subject.number(ref, NUMBER_ICHIRO).status_code == 302
    assert subject.card(ref).status_code == 302
    assert subject.submit().headers["Location"].endswith("/done")
    session.expire_all()
    req = flows.request_of("X2001")
    return campaign, req, req.submissions[-1]


def test_an_operator_cannot_open_a_submission_of_a_case_not_assigned_to_them(
    app, session, client, staff, operators, form_app, attacker
):
    keyring = app.extensions["mynumber_keyring"]
    campaign, req, submission = _submitted_external(app, session, staff, form_app)
    colleague = operators[0]
    assignments.assign(session, staff, campaign, colleague.user_id)
    session.commit()

    # Not assigned to the campaign: the household is not even listed, opening is refused.
    listing = client.get("/intake/").get_data(as_text=True)
    assert str(submission.id) not in listing
    response = post_form(
        client,
        f"/intake/{submission.id}/open",
        {"purpose": "受付内容の確認"},
        token_from="/resetmypassword/form",
        follow_redirects=True,
    )
    assert_clear_refusal(response, "担当している案件ではないため開けません")
    assert _denied("intake.open", attacker.id)
    # Nor can the attacker take the case in the verification queue.
    response = post_form(
        client,
        f"/verification/claim/{req.id}",
        {},
        token_from="/resetmypassword/form",
        follow_redirects=True,
    )
    assert_clear_refusal(response, "担当事務取扱担当者に割り当てられていない")
    assert _denied("verification.claim", attacker.id)

    # The colleague the client assigned claims it; even once the attacker is assigned to the
    # campaign too, another Operator's case stays closed to them (one claimant at a time).
    case = verification.claim(session, colleague, req.id)
    assignments.assign(session, staff, campaign, attacker.id)
    session.commit()
    before = len(_denied("intake.open", attacker.id))
    response = post_form(
        client,
        f"/intake/{submission.id}/open",
        {"purpose": "受付内容の確認"},
        token_from="/resetmypassword/form",
        follow_redirects=True,
    )
    assert_clear_refusal(response, "担当している案件ではないため開けません")
    assert len(_denied("intake.open", attacker.id)) == before + 1
    with pytest.raises(policy.PermissionDenied):
        verification.open_case(session, keyring, actor_of(attacker, OPERATOR), case.id)

    # The assigned claimant does open it (the control: the rule refuses only the others).
    view = verification.open_case(session, keyring, colleague, case.id)
    assert view.subjects[0].number == NUMBER_ICHIRO


def test_an_operator_cannot_reveal_the_number_of_a_person_whose_case_they_do_not_hold(
    app, session, client, staff, operators, form_app, attacker
):
    """The last step of the attack: open the submission (which used to make the case the
    opener's) and reveal the stored number. Both are refused, even for an Operator the client
    assigned to the campaign, while a colleague holds the case."""
    vault = app.extensions["mynumber_vault"]
    campaign, req, submission = _submitted_external(app, session, staff, form_app)
    member = session.get(Person, req.person_id)
    registry.register_number(session, vault, member, VICTIM_NUMBER, "manual")  # stored earlier
    session.commit()
    colleague = operators[0]
    assignments.assign(session, staff, campaign, colleague.user_id)
    assignments.assign(session, staff, campaign, attacker.id)
    session.commit()
    verification.claim(session, colleague, req.id)

    response = post_form(
        client,
        f"/intake/{submission.id}/open",
        {"purpose": "受付内容の確認"},
        token_from="/resetmypassword/form",
        follow_redirects=True,
    )
    assert_clear_refusal(response, "担当している案件ではないため開けません")
    response = post_form(
        client,
        f"/people/{member.id}/reveal",
        {"purpose": "本人確認"},
        token_from="/resetmypassword/form",  # no reveal form is offered
    )
    html = assert_clear_refusal(response, "担当している案件の対象者のみ")
    assert VICTIM_NUMBER not in html and NUMBER_ICHIRO not in html
    assert _denied("number.reveal", attacker.id)
    with pytest.raises(policy.PermissionDenied):
        registry.reveal(session, vault, actor_of(attacker, OPERATOR), member.id, "本人確認")
    assert len(_denied("number.reveal", attacker.id)) == 2
    # The colleague holding the case may reveal (the four-eyes and claim rules unchanged).
    assert registry.reveal(session, vault, colleague, member.id, "本人確認") == VICTIM_NUMBER
