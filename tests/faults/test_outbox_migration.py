"""Migration 0009 (outbox) matches the model exactly and goes down and up again."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect


def test_0009_down_and_up_and_no_drift(app):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="0005")
    with db.engine.connect() as conn:
        assert "outbox_message" not in set(inspect(conn).get_table_names())
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        assert "outbox_message" in set(inspect(conn).get_table_names())
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
        )
    assert diff == []
