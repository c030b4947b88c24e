"""Migration 0010 (lean person indexes) matches the models, goes down and up again, and the
queries that relied on the changed indexes still use them, on both backends."""

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text


def _person_indexes(conn) -> set[str]:
    return {i["name"] for i in inspect(conn).get_indexes("person")}


def test_0010_down_and_up_and_no_drift(app):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="0009_outbox")
    with db.engine.connect() as conn:
        assert "ix_person_name" in _person_indexes(conn)
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        names = _person_indexes(conn)
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
        )
    assert "ix_person_name" not in names
    assert {"ix_person_household", "ix_person_delete_after"} <= names
    assert diff == []


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
