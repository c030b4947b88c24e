"""Migrations: one chain whose file order is the chain, that goes down to an empty database
and up again on both backends, and whose schema is exactly what the models declare."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DatabaseError

from app.models import ExportLayout, PlannedVolume, RetentionRule
from app.web.factory import MIGRATIONS

# Refuse UPDATE and DELETE in the database itself (see the baseline revision).
APPEND_ONLY = ("audit_event", "audit_checkpoint", "export_item")
REVISION_ID = re.compile(r"^(\d{4})_[a-z0-9_]+$")


def _scripts() -> ScriptDirectory:
    config = Config(str(Path(MIGRATIONS) / "alembic.ini"))
    config.set_main_option("script_location", MIGRATIONS)
    return ScriptDirectory.from_config(config)


def test_one_head_and_the_file_order_is_the_chain():
    scripts = _scripts()
    assert len(scripts.get_heads()) == 1
    chain = [s.revision for s in reversed(list(scripts.walk_revisions("base", "heads")))]
    files = sorted(p.stem for p in (Path(MIGRATIONS) / "versions").glob("*.py"))
    # Each file is named after its revision id, NNNN_what_it_does, numbered from 0001 without
    # a gap: sorting the files gives the chain.
    assert chain == files
    numbers = [int(REVISION_ID.match(revision).group(1)) for revision in chain]
    assert numbers == list(range(1, len(chain) + 1))
    for script in scripts.walk_revisions():
        assert not script.branch_labels and not script.dependencies


def _current(conn) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _drift(conn) -> list:
    return compare_metadata(
        MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
    )


def _partial_index_drift(conn) -> list[str]:
    """Autogenerate does not compare an index's WHERE: a partial index that lost it (or a
    full one that gained one) would pass unnoticed, and queries rely on both kinds."""
    dialect = conn.dialect.name
    inspector = inspect(conn)
    wrong = []
    for table in Model.metadata.sorted_tables:
        reflected = {i["name"]: i for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            wanted = index.dialect_options[dialect].get("where")
            if index.name not in reflected:
                wrong.append(f"{table.name}.{index.name}: missing")
                continue
            found = reflected[index.name].get("dialect_options", {}).get(f"{dialect}_where")
            if _condition(found) != _condition(wanted):
                wrong.append(f"{table.name}.{index.name}: {found!r} (models: {wanted!r})")
    return wrong


def _condition(where) -> str:
    """An index condition without what PostgreSQL adds when it prints one back: parentheses,
    casts and spaces (``((status)::text = 'active'::text)``)."""
    return "" if where is None else re.sub(r"::[a-z ]+|[()\s]", "", str(where))


def _triggers(conn) -> set[str]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
    else:
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    return {row[0] for row in rows}


def _expected_triggers(dialect: str) -> set[str]:
    if dialect == "postgresql":
        return {f"{table}_append_only" for table in APPEND_ONLY}
    return {f"{table}_no_{verb}" for table in APPEND_ONLY for verb in ("update", "delete")}


def _functions(conn) -> list[str]:
    """Our PL/pgSQL functions (none on SQLite)."""
    if conn.dialect.name != "postgresql":
        return []
    return list(
        conn.execute(
            text(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = current_schema()"
            )
        ).scalars()
    )


def test_the_instance_schema_matches_the_models(app):
    """The golden instance every test starts from was built by `mynumber init`, that is by
    these migrations."""
    from app.models import db

    with db.engine.connect() as conn:
        assert _current(conn) == _scripts().get_current_head()
        assert _drift(conn) == []
        assert _partial_index_drift(conn) == []
        assert _triggers(conn) == _expected_triggers(conn.dialect.name)


def test_down_to_base_and_up_to_head(app, session):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="base")
    with db.engine.connect() as conn:
        # Nothing left but Alembic's own bookkeeping, now empty.
        assert inspect(conn).get_table_names() == ["alembic_version"]
        assert _current(conn) is None
        assert _triggers(conn) == set() and _functions(conn) == []

    upgrade(directory=directory)
    with db.engine.connect() as conn:
        assert _current(conn) == _scripts().get_current_head()
        assert _drift(conn) == []
        assert _partial_index_drift(conn) == []
        assert _triggers(conn) == _expected_triggers(conn.dialect.name)
    # The rows an instance starts with, once each.
    builtin = select(ExportLayout.name).where(ExportLayout.builtin).order_by(ExportLayout.name)
    assert session.execute(builtin).scalars().all() == ["external", "staff"]
    rules = session.execute(select(RetentionRule.kind).order_by(RetentionRule.kind)).scalars()
    assert rules.all() == ["dependent", "employee", "external"]
    # 別添: six rows for each of 2022, 2023 and 2024, and the two 保管人数 rows.
    volumes = select(func.count()).select_from(PlannedVolume)
    assert session.execute(volumes).scalar_one() == 20
    session.remove()
    # And the append-only triggers refuse, not just exist.
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO export_item (export_id, position, person_id) VALUES (:e, 1, :p)"),
            {"e": uuid.uuid4().hex, "p": uuid.uuid4().hex},
        )
    for statement in ("UPDATE export_item SET position = 2", "DELETE FROM export_item"):
        with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
