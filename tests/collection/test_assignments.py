"""担当事務取扱担当者 (app.access.assignments): the client's staff decide which Operators work a
campaign; an Operator claims, opens and reveals only there and only on the case they hold."""

import json

import pytest
from sqlalchemy import select

from app.access import assignments, policy
from app.access.policy import CLIENT_STAFF, OPERATOR
from app.collection import decisions, opening, requests, verification
from app.models import AuditEvent, CampaignOperator
from app.people import registry
from tests import support
from tests.collection import flows
from tests.collection.conftest import TARO_BIRTH, actor_of, future_business_day

# 見本 太郎 (E1001 in EMPLOYEE_CSV), stored with an e-mail address the list does not have.
STORED_EMAIL = "taro.stored@example.jp"


def _events(session, action, outcome="success"):
    return list(
        session.execute(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == outcome)
        ).scalars()
    )


def _received_request(session, campaign):
    """Mark the campaign's first request as submitted with a received (empty) submission:
    enough for the queue and the claim, which never look inside."""
    return support.mark_received(session, flows.request_of("E1001"))


def test_client_staff_assign_and_unassign_and_both_are_audited(app, session, staff, operators):
    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    op = operators[0]
    assert assignments.current(session, campaign.id) == []
    row = assignments.assign(session, staff, campaign, op.user_id)
    session.commit()
    assert (row.user_id, row.assigned_by) == (op.user_id, staff.name)
    assert assignments.is_assigned(session, op.user_id, campaign.id)
    with pytest.raises(assignments.AssignmentError, match="既にこのキャンペーンの担当者"):
        assignments.assign(session, staff, campaign, op.user_id)
    assignments.unassign(session, staff, campaign, op.user_id)
    session.commit()
    assert not assignments.is_assigned(session, op.user_id, campaign.id)
    # Ended, not deleted: the history of who could work the order stays.
    kept = session.execute(select(CampaignOperator)).scalar_one()
    assert kept.removed_at is not None and kept.removed_by == staff.name
    assert len(_events(session, "campaign.assign")) == 1
    assert len(_events(session, "campaign.unassign")) == 1


def test_an_operator_cannot_assign_anyone_not_even_themselves(app, session, staff, operators):
    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    op = operators[0]
    with pytest.raises(policy.PermissionDenied, match="権限がありません"):
        assignments.assign(session, op, campaign, op.user_id)
    assert not assignments.is_assigned(session, op.user_id, campaign.id)


def test_only_an_approved_operator_can_be_assigned(app, session, staff, make_user):
    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    other_staff, _ = make_user(CLIENT_STAFF)
    pending, _ = make_user(OPERATOR, roster="pending")
    for user in (other_staff, pending):
        with pytest.raises(assignments.AssignmentError, match="名簿で承認済みの事務取扱担当者"):
            assignments.assign(session, staff, campaign, user.id)


def test_the_queue_shows_and_the_claim_allows_only_assigned_campaigns(
    app, session, staff, operators
):
    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    req = _received_request(session, campaign)
    op1, op2, _ = operators
    assignments.assign(session, staff, campaign, op1.user_id)
    session.commit()
    assert [i.request.id for i in verification.queue(session, op1).waiting] == [req.id]
    queue = verification.queue(session, op2)
    assert not (queue.waiting or queue.mine or queue.others or queue.approval)
    with pytest.raises(policy.PermissionDenied, match="割り当てられていない"):
        verification.claim(session, op2, req.id)
    denied = _events(session, "verification.claim", "denied")
    assert [e.actor_id for e in denied] == [op2.user_id]
    case = verification.claim(session, op1, req.id)
    assert case.claimed_by_id == op1.user_id


def test_removing_an_operator_stops_the_case_they_hold(app, session, staff, operators):
    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    req = _received_request(session, campaign)
    op = operators[0]
    assignments.assign(session, staff, campaign, op.user_id)
    session.commit()
    case = verification.claim(session, op, req.id)
    assert registry.works_case(session, op, req.person_id)
    assignments.unassign(session, staff, campaign, op.user_id)
    session.commit()
    assert not registry.works_case(session, op, req.person_id)
    keyring = app.extensions["mynumber_keyring"]
    with pytest.raises(policy.PermissionDenied, match="割り当てられていない"):
        verification.open_case(session, keyring, op, case.id)
    with pytest.raises(policy.PermissionDenied, match="担当している案件ではない"):
        opening.open_submission(session, keyring, op, req.submissions[-1].id, "確認")


def test_a_deficiency_is_recorded_only_by_the_operator_holding_the_case(
    app, session, staff, operators
):
    campaign, _ = flows.campaign_with_targets(app, staff)  # everyone assigned
    req = _received_request(session, campaign)
    op1, op2, _ = operators
    verification.claim(session, op1, req.id)
    ref = flows.intake_refs(req)[0]
    with pytest.raises(policy.PermissionDenied, match="不備を登録できません"):
        decisions.mark_deficient(session, op2, req, [(ref, "number_invalid")])
    assert [e.actor_id for e in _events(session, "intake.deficient", "denied")] == [op2.user_id]


def test_a_request_without_a_campaign_is_worked_by_nobody(app, session, vault, make_user):
    """A link issued by hand on the server has no order, so no assigned Operator."""
    from app.core.actor import Actor
    from app.models import PersonKind, RequestStatus

    user, _ = make_user(OPERATOR)
    op = actor_of(user, OPERATOR)
    person = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="手動 発行", code="X9", birth_date=TARO_BIRTH
    )
    req, _token = requests.create_request(
        session, Actor.system("test"), person, purpose_text="確認"
    )
    req.status = RequestStatus.SUBMITTED
    session.commit()
    assert not assignments.holds_case(session, op, req.id)
    with pytest.raises(policy.PermissionDenied, match="割り当てられていない"):
        verification.claim(session, op, req.id)


def test_a_target_list_keeps_stored_contacts_and_reports_the_difference(app, session, vault, staff):
    from app.models import Person, PersonKind

    stored = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name="見本 太郎",
        code="E1001",
        birth_date=TARO_BIRTH,
        email=STORED_EMAIL,
        postal_code="999-9999",
        address="北海道札幌市中央区北1条西2丁目",
    )
    session.commit()
    _campaign, result = flows.campaign_with_targets(app, staff, assign_operators=False)
    assert sorted(result.contact_differs) == sorted(
        ["行 2: メールアドレス", "行 2: 郵便番号", "行 2: 住所"]
    )
    session.expire_all()
    again = session.get(Person, stored.id)
    assert again.email == STORED_EMAIL and again.postal_code == "999-9999"
    assert registry.decrypt_address(session, vault, again) == "北海道札幌市中央区北1条西2丁目"
    # A person new to the database takes the list's contact data (nothing to divert from).
    assert flows.request_of("E1002").person.postal_code == "160-0023"
    loaded = _events(session, "campaign.targets_load")[-1]
    assert json.loads(loaded.details)["contact_differs"] == 3
    assert STORED_EMAIL not in loaded.details and "taro@example.jp" not in loaded.details


def test_the_server_shell_enters_a_clients_order_but_assigns_nobody(app, session, operators):
    """``mynumber campaign create`` is not an Operator's own order: it is audited as the
    server shell, and assigning operators stays with the client's staff."""
    from app.access.policy import ShellActor
    from app.collection import campaigns

    shell = ShellActor(name="cli:ops")
    campaign = campaigns.create_campaign(
        session,
        shell,
        name="ファイルで受けた依頼",
        kind="employee",
        deadline=future_business_day(),
        purpose_text="源泉徴収票作成事務",
    )
    with pytest.raises(policy.PermissionDenied):
        assignments.assign(session, shell, campaign, operators[0].user_id)
    assert not assignments.is_assigned(session, operators[0].user_id, campaign.id)


def test_only_a_client_staff_user_not_shown_its_first_password_assigns_an_operator(
    app, session, staff, make_user
):
    """The approver who was shown an Operator account's one-time password may hold it: they
    never assign it (refused, audited); another ClientStaff user may."""
    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    operator, _ = make_user(OPERATOR)
    operator.credentials_issued_to_id = staff.user_id
    session.commit()
    with pytest.raises(policy.PermissionDenied, match="初期パスワードはあなたに表示された"):
        assignments.assign(session, staff, campaign, operator.id)
    session.rollback()
    assert not assignments.is_assigned(session, operator.id, campaign.id)
    assert _events(session, "campaign.assign", "denied")
    other = actor_of(make_user(CLIENT_STAFF)[0], CLIENT_STAFF)
    assignments.assign(session, other, campaign, operator.id)
    session.commit()
    assert assignments.is_assigned(session, operator.id, campaign.id)
