"""The person table keeps only indexes some query uses, and the partial ones still serve their
queries on both backends.

Every index on person is work for the bulk import, so one that no query uses only slows it:
``ix_person_name`` is gone (names are searched by ``LIKE '%…%'``, which no B-tree serves), and
``ix_person_household`` and ``ix_person_delete_after`` are partial (``… IS NOT NULL``), so that
employees, external members and undated people are not written into them. That the schema has
exactly these indexes is tested in tests/platform/test_migrations.py."""

import uuid

import pytest
from sqlalchemy import text


def _plan(conn, sql: str, params: dict) -> str:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table: ask for the index
        rows = conn.execute(text("EXPLAIN " + sql), params)
    else:
        rows = conn.execute(text("EXPLAIN QUERY PLAN " + sql), params)
    return "\n".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        # a household's dependents (records, verification, intake, targets)
        ("SELECT id FROM person WHERE household_head_id = :v", "ix_person_household"),
        # retention: who is due (app.lifecycle.retention.due_query) and who comes up next
        (
            "SELECT id FROM person WHERE delete_after IS NOT NULL AND delete_after <= :d",
            "ix_person_delete_after",
        ),
        (
            "SELECT id FROM person WHERE delete_after > :d AND delete_after <= :d",
            "ix_person_delete_after",
        ),
    ],
)
def test_partial_indexes_still_serve_their_queries(app, sql, index):
    from app.models import db

    params = {"v": str(uuid.uuid4()), "d": "2030-01-01"}
    with db.engine.connect() as conn:
        assert index in _plan(conn, sql, params)
