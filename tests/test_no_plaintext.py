"""Invariant 1, end to end: after a realistic session of work, none of the numbers used can
be found in anything the system wrote — database (file or tables), key ring, logs, outbox."""

import datetime as dt
import logging

from app.core.mynumber import make_valid
from app.lifecycle.keyops import rotate
from app.models import PersonKind
from app.people import registry
from tests.support import actor, add_employee_with_number, leaks, post_form

NUMBERS = [make_valid(f"{i:011d}") for i in (12345678901, 23456789012, 34567890123, 45678901234)]


def test_a_full_scenario_leaves_no_number_behind(app, session, vault, client, make_user, login):
    employee = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name="見本 太郎",
        code="E9",
        birth_date=dt.date(1970, 1, 1),
        address="東京都千代田区",
    )
    child = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name="見本 次郎",
        household_head=employee,
        dependent_seq=1,
        relation="子",
    )
    external = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="見本 委員", code="X1"
    )
    gone = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="見本 退任", code="X2"
    )
    for person, number in zip((employee, child, external, gone), NUMBERS, strict=True):
        registry.register_number(session, vault, person, number, "manual")
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
        registry.search(
            session, vault, actor("ClientStaff"), registry.SearchCriteria(number=NUMBERS[1])
        )[0].id
        == child.id
    )

    for handler in logging.getLogger().handlers:
        handler.flush()
    assert leaks(app, NUMBERS) == []


def _typed_forms(number: str) -> list[str]:
    """How a number ends up in a purpose: pasted, grouped as on the card, full-width."""
    wide = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return [
        f"源泉徴収票（{number}）",
        f"扶養控除申告 {number[:4]} {number[4:8]} {number[8:]}",
        f"年末調整 {wide}",
    ]


def test_a_number_typed_into_a_purpose_or_reason_is_refused_and_never_stored(
    app, session, vault, make_user
):
    """Every purpose or reason a user types is kept (audit log, request, certificate): one
    with a number in it is refused with a message saying so, and neither the refusal's audit
    event nor anything else stores it."""
    import io

    import pytest

    from app.access import policy
    from app.collection import requests, terms
    from app.io import exports, layouts, matching
    from app.lifecycle import disposal, returns
    from tests.lifecycle.helpers import user_actor

    person = add_employee_with_number(session, vault, NUMBERS[1], code="E1")
    staff = actor("ClientStaff")
    operator, _ = make_user("Operator")
    typed_number = NUMBERS[0]
    for typed in _typed_forms(typed_number):
        with pytest.raises(policy.PermissionDenied, match="12桁"):
            registry.reveal(session, vault, staff, person.id, typed)
        with pytest.raises(exports.ExportRefused, match="12桁"):
            exports.export_csv(
                session, vault, staff, layouts.get(session, "staff"), io.BytesIO(), typed
            )
        with pytest.raises(matching.MatchError, match="12桁"):
            matching.bulk_match(
                session, staff, io.BytesIO(b""), layouts.get(session, "staff"), typed
            )
        with pytest.raises(returns.ReturnError, match="12桁"):
            returns.check_purpose(typed)
        with pytest.raises(terms.IntakeError, match="12桁"):
            requests.create_request(session, actor("Operator"), person, purpose_text=typed)
        with pytest.raises(disposal.DisposalError, match="12桁"):
            disposal.request_disposal(
                session,
                user_actor(operator, "Operator"),
                scope="people",
                reason=typed,
                person_ids=[person.id],
            )
        session.rollback()
    # The refusals were audited (a refused reveal and export), with the number masked.
    from sqlalchemy import select

    from app.models import AuditEvent

    refused = session.execute(
        select(AuditEvent.purpose).where(AuditEvent.outcome.in_(("denied", "failure")))
    ).scalars()
    assert any(p and "************" in p for p in refused)
    assert leaks(app, [typed_number]) == []
