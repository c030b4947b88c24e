"""Migration 0008 matches the models exactly and goes down and up again, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect


def test_0008_down_and_up_and_no_drift(app):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="0007")
    with db.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        columns = {c["name"] for c in inspect(conn).get_columns("collection_request")}
    assert "campaign" not in tables and "verification_case" not in tables
    assert "request_code" not in columns
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
        )
    assert diff == []
