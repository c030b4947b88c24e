"""What holds a person's data and how it goes: an unclassified table blocks execution, and
compaction never claims success while an older transaction could keep dead rows alive."""

import psycopg
import pytest

from app.lifecycle import disposal, holders
from app.models import Person
from tests.conftest import _pg_server_url
from tests.lifecycle.helpers import approved_request, population, user_actor


def test_a_table_nobody_classified_blocks_execution(session, vault, make_user, app, monkeypatch):
    crowd = population(session, vault, n=1)
    req, operator, _ = approved_request(session, vault, make_user, [crowd[0].id])
    assert holders.unclassified_tables() == []
    monkeypatch.setattr(
        holders, "HOLDERS", [h for h in holders.HOLDERS if h.table != "case_assignment"]
    )
    with pytest.raises(disposal.DisposalError, match="case_assignment"):
        disposal.execute(
            session,
            vault,
            user_actor(operator, "Operator"),
            req.id,
            app.config["DISPOSAL_JOURNAL_FILE"],
        )
    assert session.get(Person, crowd[0].id).status == "active"


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_compaction_waits_for_older_transactions_anywhere_on_the_server(session):
    """PostgreSQL keeps dead row versions while any older transaction with an xid runs, even
    in another database: compaction must not claim success before they end."""
    other = psycopg.connect(_pg_server_url())  # the maintenance database, not ours
    try:
        other.execute("SELECT pg_current_xact_id()")
        with pytest.raises(RuntimeError, match="older transaction"):
            holders.compact_storage(session, ["person"], wait_seconds=1)
    finally:
        other.rollback()
        other.close()
    assert holders.compact_storage(session, ["person"], wait_seconds=30)["vacuum_full"]
