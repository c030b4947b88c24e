"""Lookup by number: one statement, through the active-number index, on both databases.

The timing against a plaintext unique-index lookup is measured in bench/lookup.py (1M people);
here are the two things that decide it and do not depend on the machine: how many statements
a lookup runs and which plan the database picks for it. The plan is asked with sequential
scans priced out (a test table is small enough for a scan to win on cost alone): the question
is whether the index *can* serve the query, including as a prepared, generic plan.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from app.core.mynumber import make_valid
from app.people import registry
from tests.support import SAMPLE_NUMBER, add_household

INDEX = "uq_my_number_active_blind_index"


@pytest.fixture
def household(session, vault):
    return add_household(session, vault)


@pytest.fixture
def statements(session):
    engine = session.get_bind()
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def _lookup_sql(session, vault, number: str) -> tuple[str, dict | list]:
    """The statement find_by_number runs, as the driver gets it, with its parameters."""
    compiled = registry._person_by_blind_index().compile(dialect=session.get_bind().dialect)
    params = compiled.construct_params({"blind_index": vault.blind_index(number)})
    if compiled.positiontup:
        return compiled.string, [params[name] for name in compiled.positiontup]
    return compiled.string, params


def test_a_lookup_by_number_is_one_statement(session, vault, household, statements):
    head_id = household[0].id
    session.expunge_all()  # nothing remembered: what a new request sees
    statements.clear()
    found = registry.find_by_number(session, vault, SAMPLE_NUMBER)
    assert found is not None and found.id == head_id
    assert len(statements) == 1
    statements.clear()
    assert registry.find_by_number(session, vault, make_valid("99999999999")) is None
    assert len(statements) == 1


def test_a_superseded_number_is_not_found(session, vault, household):
    head, _spouse = household
    registry.register_number(session, vault, head, make_valid("55544433322"), "manual")
    session.commit()
    assert registry.find_by_number(session, vault, SAMPLE_NUMBER) is None
    assert registry.find_by_number(session, vault, make_valid("55544433322")).id == head.id


def test_the_lookup_uses_the_active_number_index(session, vault, household, backend):
    sql, params = _lookup_sql(session, vault, SAMPLE_NUMBER)
    conn = session.connection()
    if backend == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", tuple(params)).all()
        plan = " | ".join(str(row[-1]) for row in rows)
        assert f"INDEX {INDEX}" in plan, plan
        assert "SCAN my_number_record" not in plan, plan
        return
    # Sequential scans priced out (a test table is small enough for one to win on cost), and
    # the plan asked for as the driver runs the statement after a few executions: prepared,
    # with a generic plan that cannot see the parameter's value.
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql("PREPARE mnv_lookup(bytea) AS " + sql.replace("%(blind_index)s", "$1"))
    value = params["blind_index"].hex()  # hex digits only: safe to write into the statement
    (plan,) = conn.exec_driver_sql(
        f"EXPLAIN (FORMAT JSON) EXECUTE mnv_lookup('\\x{value}'::bytea)"
    ).one()
    conn.exec_driver_sql("DEALLOCATE mnv_lookup")
    text = json.dumps(plan)
    assert f'"Index Name": "{INDEX}"' in text, text
    assert "Seq Scan" not in text, text
    session.rollback()
