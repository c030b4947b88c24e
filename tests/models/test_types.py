"""Every datetime column holds an instant: JST in, the same instant out, UTC at rest, on both
backends; a naive datetime (no instant at all) is refused before it reaches the database."""

from __future__ import annotations

import datetime as dt

import pytest
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from app.core.jptime import JST
from app.models import HandlerRosterEntry
from app.models.types import NaiveDatetimeError, UtcDateTime


def _entry(session, approved_at) -> HandlerRosterEntry:
    entry = HandlerRosterEntry(
        name="山田 太郎",
        department="総務部",
        title="主任",
        nationality="日本",
        approved_at=approved_at,
    )
    session.add(entry)
    session.commit()
    return entry


def _ours(table, column) -> bool:
    """Every table but Flask-AppBuilder's, and on ``ab_user`` the columns ``VaultUser`` adds
    (FAB writes its own in the server's local time, and they are not ours to change)."""
    if not table.name.startswith("ab_"):
        return True
    return table.name == "ab_user" and column.name not in vars(User)


def test_every_datetime_column_of_the_schema_is_utc_aware():
    columns = [
        (f"{table.name}.{column.name}", column.type)
        for table in Model.metadata.sorted_tables
        for column in table.columns
        if column.type.python_type is dt.datetime and _ours(table, column)
    ]
    assert "ab_user.locked_until" in {name for name, _ in columns}
    assert [name for name, kind in columns if not isinstance(kind, UtcDateTime)] == []


def test_a_jst_time_comes_back_as_the_same_instant_in_utc(session):
    jst = dt.datetime(2027, 1, 12, 23, 59, tzinfo=JST)
    entry_id = _entry(session, jst).id
    session.expire_all()
    back = session.get(HandlerRosterEntry, entry_id).approved_at
    assert back == jst
    assert back.utcoffset() == dt.timedelta(0)
    assert back == dt.datetime(2027, 1, 12, 14, 59, tzinfo=dt.UTC)


def test_what_is_at_rest_is_the_utc_wall_clock(session):
    entry_id = _entry(session, dt.datetime(2027, 1, 12, 23, 59, tzinfo=JST)).id
    raw = session.execute(
        text("SELECT approved_at FROM handler_roster_entry WHERE id = :id"), {"id": entry_id}
    ).scalar_one()
    if isinstance(raw, str):  # SQLite keeps text
        assert raw.startswith("2027-01-12 14:59:00")
    else:
        assert raw == dt.datetime(2027, 1, 12, 14, 59, tzinfo=dt.UTC)


def test_a_jst_bound_in_a_query_compares_as_the_same_instant(session):
    entry_id = _entry(session, dt.datetime(2027, 1, 12, 14, 59, tzinfo=dt.UTC)).id
    at = HandlerRosterEntry.approved_at
    same = dt.datetime(2027, 1, 12, 23, 59, tzinfo=JST)
    found = session.execute(select(HandlerRosterEntry.id).where(at == same)).scalars().all()
    assert found == [entry_id]
    later = dt.datetime(2027, 1, 13, 0, 0, tzinfo=JST)  # 15:00 UTC, one minute after
    before = session.execute(select(HandlerRosterEntry.id).where(at < later)).scalars().all()
    assert before == [entry_id]
    earlier = dt.datetime(2027, 1, 12, 23, 58, tzinfo=JST)
    assert session.execute(select(HandlerRosterEntry.id).where(at < earlier)).all() == []


def test_a_naive_datetime_is_refused_and_nothing_is_written(session):
    with pytest.raises(StatementError) as caught:
        _entry(session, dt.datetime(2027, 1, 12, 23, 59))
    assert isinstance(caught.value.orig, NaiveDatetimeError)
    assert "時刻帯" in str(caught.value.orig)
    session.rollback()
    assert session.execute(select(HandlerRosterEntry.id)).all() == []


def test_a_naive_datetime_in_a_query_is_refused_too(session):
    naive = dt.datetime(2027, 1, 12, 23, 59)
    with pytest.raises(StatementError):
        session.execute(
            select(HandlerRosterEntry.id).where(HandlerRosterEntry.approved_at < naive)
        ).all()
    session.rollback()


def test_a_link_valid_until_2359_jst_shows_and_expires_at_2359_jst(session, vault):
    """The issue's case: a campaign link valid until 2027/01/12 23:59 JST showed 2027/01/13
    08:59 on SQLite (the JST wall clock stored as if UTC, then shown in JST)."""
    from app.collection import requests
    from app.core import jptime
    from app.models import CollectionRequest, PersonKind
    from app.people import registry
    from tests.support import actor

    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.EXTERNAL,
        name="期限 確認",
        code="M9001",
        birth_date=dt.date(1980, 4, 1),
    )
    until = dt.datetime.combine(dt.date(2027, 1, 12), dt.time(23, 59), tzinfo=JST)
    req, _token = requests.create_request(
        session, actor("Operator"), person, purpose_text="源泉徴収票の作成", expires_at=until
    )
    session.commit()
    session.expire_all()
    stored = session.get(CollectionRequest, req.id)
    assert jptime.format_jst(stored.expires_at) == "2027/01/12 23:59"
    assert stored.expires_at == until
    one_minute_before = dt.datetime(2027, 1, 12, 23, 58, tzinfo=JST)
    assert requests.entry_state(stored, now=one_minute_before) == "ok"
    assert requests.entry_state(stored, now=until + dt.timedelta(minutes=1)) == "expired"
