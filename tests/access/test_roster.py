"""情報取扱者名簿: changes apply only after a ClientStaff user other than the proposer approves."""

import pytest
from sqlalchemy import select

from app.access import policy, roster
from app.models import HandlerRosterEntry
from tests.support import actor

FIELDS = roster.EntryFields("名簿 花子", "BPO運用部", "係員", "日本")


def test_add_applies_only_after_approval(session):
    admin = actor("SystemAdmin", user_id=1, name="admin")
    change = roster.propose(session, admin, "add", "増員", FIELDS)
    assert session.execute(select(HandlerRosterEntry)).first() is None
    roster.decide(session, actor("ClientStaff", user_id=7, name="client"), change.id, True)
    entry = session.execute(select(HandlerRosterEntry)).scalar_one()
    assert entry.is_approved and entry.approved_by == "client"


def test_update_and_revoke(session):
    admin = actor("SystemAdmin", user_id=1)
    client = actor("ClientStaff", user_id=7)
    entry = roster.add_preapproved(session, actor(), FIELDS, "発注者 人事部長")
    change = roster.propose(
        session,
        admin,
        "update",
        "異動",
        roster.EntryFields("名簿 花子", "人事部", "主任", "日本"),
        entry.id,
    )
    roster.decide(session, client, change.id, True)
    assert session.get(HandlerRosterEntry, entry.id).department == "人事部"
    change = roster.propose(session, admin, "revoke", "退職", entry_id=entry.id)
    roster.decide(session, client, change.id, True)
    assert session.get(HandlerRosterEntry, entry.id).status == "revoked"


def test_rejected_change_changes_nothing(session):
    change = roster.propose(session, actor("SystemAdmin", user_id=1), "add", "増員", FIELDS)
    roster.decide(session, actor("ClientStaff", user_id=7), change.id, False, "不要")
    assert session.execute(select(HandlerRosterEntry)).first() is None


@pytest.mark.parametrize(
    ("who", "message"),
    [
        (actor("SystemAdmin", user_id=1), "権限"),  # the operator cannot approve its own list
        (actor("ClientStaff", user_id=1), "自分が申請"),  # same person as the proposer
        (actor("ClientStaff", user_id=7, mfa=False), "二要素"),
        (actor("Auditor", user_id=9), "権限"),
    ],
)
def test_who_may_not_approve(session, who, message):
    change = roster.propose(session, actor("SystemAdmin", user_id=1), "add", "増員", FIELDS)
    with pytest.raises((roster.RosterError, policy.PermissionDenied)) as info:
        roster.decide(session, who, change.id, True)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "add", "reason": "", "fields": FIELDS}, "理由"),
        ({"action": "add", "reason": "x", "fields": roster.EntryFields("", "a", "b", "c")}, "氏名"),
        ({"action": "revoke", "reason": "x", "entry_id": 999}, "見つからない"),
        ({"action": "drop", "reason": "x"}, "種類"),
    ],
)
def test_bad_proposals_are_refused_with_reasons(session, kwargs, message):
    with pytest.raises(roster.RosterError) as info:
        roster.propose(session, actor("SystemAdmin", user_id=1), **kwargs)
    assert message in str(info.value)


def test_account_loses_access_when_its_entry_is_revoked(session, app, make_user):
    from app.web.identity import actor_for

    user, _ = make_user("ClientStaff")
    assert policy.allows(actor_for(user, mfa=True), "can_reveal", "People")
    change = roster.propose(
        session, actor("SystemAdmin", user_id=1), "revoke", "退職", entry_id=user.roster_entry_id
    )
    roster.decide(session, actor("ClientStaff", user_id=99), change.id, True)
    session.refresh(user)
    assert not policy.allows(actor_for(user, mfa=True), "can_reveal", "People")


@pytest.mark.parametrize(
    ("fields", "reason", "label"),
    [
        (roster.EntryFields("名簿 1234.5678.9018", "BPO運用部", "係員", "日本"), "増員", "氏名"),
        (roster.EntryFields("名簿 花子", "部 1234−5678−9018", "係員", "日本"), "増員", "所属部署"),
        (FIELDS, "番号 1234ー5678ー9018 の人", "変更の理由"),
    ],
)
def test_a_number_in_a_roster_field_is_refused_naming_the_field(session, fields, reason, label):
    admin = actor("SystemAdmin", user_id=1)
    with pytest.raises(roster.RosterError, match=f"^{label}に個人番号と思われる12桁の数字"):
        roster.propose(session, admin, "add", reason, fields)


def test_a_number_in_a_decision_note_is_refused(session):
    change = roster.propose(session, actor("SystemAdmin", user_id=1), "add", "増員", FIELDS)
    with pytest.raises(roster.RosterError, match="^コメントに個人番号"):
        roster.decide(session, actor("ClientStaff", user_id=7), change.id, False, "1234/5678/9018")
