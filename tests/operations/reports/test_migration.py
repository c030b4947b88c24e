"""Migration 0009_monthly_report matches the models exactly, seeds the spec's 想定人数, and
goes down and up again, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select

from app.models import PlannedVolume


def test_down_and_up_and_no_drift(app, session):
    from app.models import db

    directory = app.extensions["migrate"].directory
    db.session.remove()
    downgrade(directory=directory, revision="0005")
    with db.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert not tables & {"monthly_report", "monthly_report_delivery", "planned_volume"}
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Model.metadata
        )
    assert diff == []
    # 別添: six rows for each of 2022, 2023, 2024, and the two 保管人数 rows.
    assert session.execute(select(func.count()).select_from(PlannedVolume)).scalar_one() == 20
