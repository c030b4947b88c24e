"""Reminders in the report are the dunning run's decisions, by category and channel: an
e-mailed employee household and a posted external member, both past their deadline, each get
one reminder from the run of 2026-10-02 and appear in October's report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from app.collection import dunning, kits
from app.core import jptime
from app.models import CampaignKind, CollectionRequest
from app.operations.reports import monthly
from tests.collection import flows


def test_reminders_by_category_and_channel(
    app, session, staff, operators, jobs, kit_config, smtp_server, needs_pdf
):
    app.config["SMTP_URL"] = smtp_server.url
    operator = operators[0]
    employees, _ = flows.campaign_with_targets(app, staff)
    externals, _ = flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    flows.dispatch(employees, operator, jobs)  # E1001 by e-mail (E1002's kit is not posted)
    flows.dispatch(externals, operator, jobs)
    batch, _kit = flows.print_batch(app, externals, operator, jobs)
    kits.mark_posted(
        session,
        operator,
        batch,
        posted_on=jptime.today_jst(),
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_SEND_METHOD"],
    )
    session.commit()
    # Their deadline was October 1st; the dunning run of Friday October 2nd reminds them.
    session.execute(update(CollectionRequest).values(deadline=dt.date(2026, 10, 1)))
    session.commit()
    result = dunning.run(session, today=dt.date(2026, 10, 2))
    assert result.reminded == 2

    october = monthly.compute(session, "2026-10")
    assert october["reminders"] == {
        "employee": {"email": 1, "post": 0},
        "external": {"email": 0, "post": 1},
    }
    assert monthly.compute(session, "2026-09")["reminders"]["external"]["post"] == 0
