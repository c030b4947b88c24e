"""Invariant 1, end to end: after a realistic session of work, none of the numbers used can
be found in anything the system wrote — database (file or tables), key ring, logs, outbox."""

import datetime as dt
import logging

from app import people
from app.keyops import rotate
from app.models import PersonKind
from app.mynumber import make_valid
from tests.support import actor, leaks, post_form

NUMBERS = [make_valid(f"{i:011d}") for i in (12345678901, 23456789012, 34567890123, 45678901234)]


def test_a_full_scenario_leaves_no_number_behind(app, session, vault, client, make_user, login):
    employee = people.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name="見本 太郎",
        code="E9",
        birth_date=dt.date(1970, 1, 1),
        address="東京都千代田区",
    )
    child = people.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name="見本 次郎",
        household_head=employee,
        dependent_seq=1,
        relation="子",
    )
    external = people.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="見本 委員", code="X1"
    )
    gone = people.add_person(session, vault, kind=PersonKind.EXTERNAL, name="見本 退任", code="X2")
    for person, number in zip((employee, child, external, gone), NUMBERS, strict=True):
        people.register_number(session, vault, person, number, "manual")
    session.commit()

    # Someone logs a number by mistake: the masking filter catches it.
    logging.getLogger("app.mistake").warning("debug %s", NUMBERS[0])

    user, secret = make_user("ClientStaff")
    login(user.username, totp_secret=secret)
    for number in NUMBERS:
        assert post_form(client, "/people/", {"number": number}).status_code == 200
    for person in (employee, child, external):
        response = post_form(
            client,
            f"/people/{person.id}/reveal",
            {"purpose": "法定調書"},
            token_from=f"/people/{person.id}",
        )
        assert response.status_code == 200
    rotate(session, vault, actor("SystemAdmin"))
    vault.shred(session, [gone.id])
    session.commit()
    assert (
        people.search(
            session, vault, actor("ClientStaff"), people.SearchCriteria(number=NUMBERS[1])
        )[0].id
        == child.id
    )

    for handler in logging.getLogger().handlers:
        handler.flush()
    assert leaks(app, NUMBERS) == []
