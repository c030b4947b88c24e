"""Migration 0009 (outbox) matches the model exactly and goes down and up again."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect


def _previous() -> str:
    """The revision 0009_outbox follows (whatever the merge chained it to)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "migrations/versions/0009_outbox.py"
    spec = importlib.util.spec_from_file_location("m0009_outbox", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.down_revision


PREVIOUS = _previous()


def test_0009_down_and_up_and_no_drift(app):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision=PREVIOUS)
    with db.engine.connect() as conn:
        assert "outbox_message" not in set(inspect(conn).get_table_names())
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        assert "outbox_message" in set(inspect(conn).get_table_names())
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
        )
    assert diff == []
