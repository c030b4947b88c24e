"""Migration 0011 (account changes) matches the models, goes down and up again, and refuses
an instance where two accounts share a roster entry, naming them."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text


def test_0011_down_and_up_and_no_drift(app):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="0010_lean_indexes")
    with db.engine.connect() as conn:
        assert "account_change" not in inspect(conn).get_table_names()
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
        )
        assert "account_change" in inspect(conn).get_table_names()
    assert diff == []


def test_0011_refuses_accounts_sharing_a_roster_entry(app, make_user, caplog):
    from app.models import db

    first, _ = make_user("Operator")
    second, _ = make_user("ClientStaff")
    entry_id, second_id = first.roster_entry_id, second.id
    names = (first.username, second.username)
    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="0010_lean_indexes")
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE ab_user SET roster_entry_id = :e WHERE id = :u"),
            {"e": entry_id, "u": second_id},
        )
    with pytest.raises(SystemExit):  # flask-migrate logs the migration's error and exits
        upgrade(directory=directory)
    message = caplog.text
    assert "複数のアカウントが紐付いている" in message
    assert all(name in message for name in names)
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE ab_user SET roster_entry_id = NULL WHERE id = :u"), {"u": second_id}
        )
    upgrade(directory=directory)


def test_0015_down_and_up_and_no_drift(app):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="0014_disposal_key_closure")
    with db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("ab_user")}
        assert "credentials_issued_to_id" not in columns
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
        )
        columns = {c["name"] for c in inspect(conn).get_columns("ab_user")}
    assert "credentials_issued_to_id" in columns and diff == []
