"""Numbers stored at month end and disposals: people registered in September, one of them
disposed of now through the real (approved) disposal. September's report still counts them;
this month's counts the disposal and one fewer stored."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from app.core.mynumber import make_valid
from app.models import MyNumberRecord, Person, PersonKind, utcnow
from app.operations import billing
from app.operations.reports import monthly
from app.people import registry
from tests.lifecycle.helpers import dispose, population

SEPTEMBER = dt.datetime(2026, 9, 15, 3, tzinfo=dt.UTC)


def test_stored_at_month_end_and_disposals(app, session, vault, make_user):
    crowd = population(session, vault, n=4)
    member = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="外部 委員", code="X9001"
    )
    registry.register_number(session, vault, member, make_valid("99887766554"), "manual")
    session.commit()
    # Three employees and the external member were registered in September (time travel).
    september_ids = [c.id for c in crowd[:3]] + [member.id]
    session.execute(
        update(MyNumberRecord)
        .where(MyNumberRecord.person_id.in_(september_ids))
        .values(registered_at=SEPTEMBER)
    )
    session.execute(update(Person).where(Person.id.in_(september_ids)).values(created_at=SEPTEMBER))
    session.commit()
    dispose(session, vault, app, make_user, [crowd[0].id])

    september = monthly.compute(session, "2026-09")
    assert september["stored"]["employee"] == {"households": 3, "people": 3}
    assert september["stored"]["external"] == {"households": 1, "people": 1}
    assert september["disposals"]["people"] == {"employee": 0, "external": 0}

    now = billing.month_of(utcnow())
    current = monthly.compute(session, now)
    assert current["stored"]["employee"] == {"households": 3, "people": 3}  # 4 - 1 disposed
    assert current["stored"]["external"]["people"] == 1
    assert current["disposals"]["data_requests"] == 1
    assert current["disposals"]["people"] == {"employee": 1, "external": 0}
    # August: nobody yet.
    assert monthly.compute(session, "2026-08")["stored"]["total_people"] == 0
