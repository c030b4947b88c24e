"""Retention: the 削除予定日 from configurable rules; nothing is due without a 終了日."""

import datetime as dt

import pytest
from sqlalchemy import select

from app.lifecycle import retention
from app.models import AuditEvent, Person, PersonKind
from app.people import registry
from tests.support import actor

D = dt.date
RULES = {
    "employee": retention.Rule("employee", "jan10_after", 7, False, "扶養控除等申告書"),
    "dependent": retention.Rule("dependent", "jan10_after", 7, True, "扶養者に従う"),
    "external": retention.Rule("external", "jan31_after", 0, False, "支払調書"),
}


@pytest.mark.parametrize(
    ("kind", "ended", "head", "expected"),
    [
        ("employee", D(2024, 3, 31), None, D(2032, 1, 11)),  # Jan 10 2025 + 7 years, next day
        ("employee", D(2024, 12, 31), None, D(2032, 1, 11)),
        ("employee", None, None, None),  # still employed
        ("external", D(2025, 6, 30), None, D(2026, 2, 1)),  # after the 支払調書 for 2025
        ("external", None, None, None),  # more work expected: no 終了日
        ("dependent", None, D(2032, 1, 11), D(2032, 1, 11)),  # follows the employee
        ("dependent", D(2020, 5, 1), D(2032, 1, 11), D(2028, 1, 11)),  # left earlier
        ("dependent", None, None, None),
    ],
)
def test_dates(kind, ended, head, expected):
    assert retention.compute(RULES, kind, ended, head)[1] == expected


def test_leap_day_and_the_plain_anchor():
    rule = retention.Rule("x", "ended_on", 1, False, "")
    assert retention.delete_after(rule, D(2024, 2, 29)) == D(2025, 3, 1)


def test_recompute_follows_the_household_and_set_rule_is_audited(session, vault):
    head = registry.add_person(session, vault, kind=PersonKind.EMPLOYEE, name="甲", code="R1")
    child = registry.add_person(
        session, vault, kind=PersonKind.DEPENDENT, name="乙", household_head=head, dependent_seq=1
    )
    member = registry.add_person(session, vault, kind=PersonKind.EXTERNAL, name="丙", code="X9")
    head.ended_on = D(2020, 3, 31)
    member.ended_on = D(2020, 3, 31)
    session.commit()
    assert retention.recompute(session) == 3
    session.commit()
    assert session.get(Person, child.id).delete_after == D(2028, 1, 11)
    assert session.get(Person, member.id).delete_after == D(2021, 2, 1)
    assert set(retention.due_ids(session, D(2025, 1, 1))) == {member.id}
    assert set(retention.due_ids(session, D(2028, 1, 11))) == {head.id, child.id, member.id}
    counts = retention.counts(session, D(2025, 1, 1))
    assert counts == {"due": 1, "upcoming": 0, "no_date": 0, "active": 3}

    changed = retention.set_rule(
        session, actor(name="cli:test"), "external", "ended_on", 2, "委嘱終了から2年"
    )
    assert changed == 1
    assert session.get(Person, member.id).delete_after == D(2022, 4, 1)
    assert session.get(Person, member.id).retention_basis == "委嘱終了から2年"
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "retention.rule_changed")
    ).scalar_one()
    assert '"years": 2' in event.details and '"years": 0' in event.details
    for bad, message in (
        (("nobody", "ended_on", 1, "x"), "本人区分"),
        (("external", "someday", 1, "x"), "起算点"),
        (("external", "ended_on", 31, "x"), "0〜30年"),
        (("external", "ended_on", 1, " "), "根拠"),
    ):
        with pytest.raises(retention.RetentionError, match=message):
            retention.set_rule(session, actor(name="cli:test"), *bad)
