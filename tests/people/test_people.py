"""People and numbers as a service: search, 照合 by number, reveal — each audited."""

import datetime as dt
import json

import pytest
from sqlalchemy import select

from app.access import assignments, policy
from app.collection import verification
from app.core.mynumber import make_valid
from app.models import AuditEvent, CaseAssignment
from app.people import registry
from tests.support import SAMPLE_NUMBER, actor, add_household, hold_case, leaks

NUMBER = SAMPLE_NUMBER


@pytest.fixture
def household(session, vault):
    return add_household(session, vault)


def _last_event(session):
    return session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()


def test_search_by_each_key_and_by_number(session, vault, household):
    head, spouse = household
    staff = actor("ClientStaff")
    crit = registry.SearchCriteria
    assert [p.id for p in registry.search(session, vault, staff, crit(code="E0001"))] == [
        head.id,
        spouse.id,
    ]
    assert [p.id for p in registry.search(session, vault, staff, crit(kana="タロウ"))] == [head.id]
    assert [p.id for p in registry.search(session, vault, staff, crit(name="花子"))] == [spouse.id]
    assert [
        p.id for p in registry.search(session, vault, staff, crit(birth_date=dt.date(1982, 5, 6)))
    ] == [spouse.id]
    assert [p.id for p in registry.search(session, vault, staff, crit(number=NUMBER))] == [head.id]
    assert registry.search(session, vault, staff, crit(number=make_valid("98765432109"))) == []
    event = _last_event(session)
    assert event.action == "people.search"
    # The fields that were given, never a value typed into them.
    assert NUMBER not in event.details and '"fields": ["number"]' in event.details


def test_name_search_treats_wildcards_literally(session, vault, household):
    staff = actor("ClientStaff")
    assert registry.search(session, vault, staff, registry.SearchCriteria(name="%")) == []


@pytest.mark.parametrize(
    "criteria",
    [
        {"name": "見本　太郎"},  # full-width space
        {"name": "見本太郎"},  # no space
        {"name": "見本  太郎 "},  # two half-width spaces and a trailing one
        {"kana": "みほん　たろう"},  # hiragana
        {"kana": "ﾐﾎﾝ ﾀﾛｳ"},  # half-width katakana
        {"kana": "ミホンタロウ"},
        {"code": "0001"},  # part of 職員番号
        {"code": "ｅ０００"},  # full-width, lower case
    ],
)
def test_search_forgives_width_spaces_and_kana_forms_as_matching_does(
    session, vault, household, criteria
):
    head, _ = household
    found = registry.search(
        session, vault, actor("ClientStaff"), registry.SearchCriteria(**criteria)
    )
    assert head.id in [p.id for p in found]


def test_search_pages_with_the_full_count_instead_of_a_silent_cap(session, vault):
    for i in range(1, 251):
        registry.add_person(session, vault, kind="employee", name=f"頁送 {i:03d}", code=f"P{i:04d}")
    session.commit()
    staff = actor("ClientStaff")
    crit = registry.SearchCriteria(name="頁送")
    first = registry.search_page(session, vault, staff, crit)
    assert (first.total, first.pages, first.first, first.last) == (250, 5, 1, 50)
    assert [p.code for p in first.people][:2] == ["P0001", "P0002"]
    last = registry.search_page(session, vault, staff, crit, page=5)
    assert [p.code for p in last.people][-1] == "P0250" and (last.first, last.last) == (201, 250)
    beyond = registry.search_page(session, vault, staff, crit, page=99)
    assert beyond.page == 5
    assert len(registry.search(session, vault, staff, crit)) == 250


def test_reveal_is_audited_before_the_plaintext_exists(session, vault, household):
    head, _ = household
    staff = actor("ClientStaff", user_id=None, name="client-a")
    assert registry.reveal(session, vault, staff, head.id, "源泉徴収票の作成") == NUMBER
    event = _last_event(session)
    assert (event.action, event.outcome, event.purpose) == (
        "number.reveal",
        "success",
        "源泉徴収票の作成",
    )
    assert json.loads(event.object_ids) == [str(head.id)]
    assert NUMBER not in (event.details + event.object_ids)


def test_reveal_without_purpose_is_refused_and_audited(session, vault, household):
    head, _ = household
    with pytest.raises(policy.PermissionDenied):
        registry.reveal(session, vault, actor("ClientStaff"), head.id, "  ")
    assert _last_event(session).outcome == "denied"


def test_system_admin_reveal_is_refused_and_audited(session, vault, household):
    head, _ = household
    with pytest.raises(policy.PermissionDenied) as info:
        registry.reveal(session, vault, actor("SystemAdmin"), head.id, "調査")
    assert "システム管理者" in str(info.value)
    event = _last_event(session)
    assert (event.action, event.outcome) == ("number.reveal", "denied")


def test_operator_reveals_only_for_the_case_they_work(session, vault, household, make_user):
    head, spouse = household
    user, _ = make_user("Operator")
    operator = actor("Operator", user_id=user.id)
    with pytest.raises(policy.PermissionDenied) as info:
        registry.reveal(session, vault, operator, head.id, "本人確認")
    assert "担当している案件" in str(info.value)
    _campaign, _req, case = hold_case(session, head, operator)
    assert registry.reveal(session, vault, operator, head.id, "本人確認") == NUMBER
    # The household is one case: a dependent of that employee is covered too.
    assert registry.works_case(session, operator, spouse.id)
    # Giving the case back to the queue ends the right to reveal.
    verification.release(session, operator, case.id)
    assert not registry.works_case(session, operator, head.id)


def test_an_open_case_assignment_row_alone_grants_no_reveal(session, vault, household, make_user):
    """The old self-granted row (written when an Operator opened a submission) is no longer
    what counts: only a claimed case in a campaign a ClientStaff user assigned."""
    head, _spouse = household
    user, _ = make_user("Operator")
    operator = actor("Operator", user_id=user.id)
    session.add(CaseAssignment(person_id=head.id, user_id=user.id, reason="検証"))
    session.commit()
    assert not registry.works_case(session, operator, head.id)
    with pytest.raises(policy.PermissionDenied):
        registry.reveal(session, vault, operator, head.id, "本人確認")


def test_an_operator_removed_from_the_campaign_can_no_longer_reveal(
    session, vault, household, make_user
):
    head, _spouse = household
    user, _ = make_user("Operator")
    operator = actor("Operator", user_id=user.id)
    campaign, _req, _case = hold_case(session, head, operator)
    assert registry.works_case(session, operator, head.id)
    assignments.unassign(session, actor("ClientStaff", name="client-staff"), campaign, user.id)
    session.commit()
    with pytest.raises(policy.PermissionDenied):
        registry.reveal(session, vault, operator, head.id, "本人確認")


def test_auditor_cannot_search_or_reveal(session, vault, household):
    head, _ = household
    with pytest.raises(policy.PermissionDenied):
        registry.search(session, vault, actor("Auditor"), registry.SearchCriteria(code="E0001"))
    with pytest.raises(policy.PermissionDenied):
        registry.reveal(session, vault, actor("Auditor"), head.id, "監査")


def test_nothing_written_holds_the_number(session, vault, household, app):
    head, _ = household
    registry.reveal(session, vault, actor("ClientStaff"), head.id, "確認")
    assert leaks(app, [NUMBER]) == []
