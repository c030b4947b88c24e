"""Column types shared by every model.

``UtcDateTime`` is the one datetime column type. SQLite has no time zone: SQLAlchemy writes a
datetime's wall-clock fields and drops its offset, so a JST time (2027-01-12 23:59+09:00)
was stored as 23:59 and read back as 23:59 UTC, nine hours late. PostgreSQL converts an
aware value itself but accepts a naive one as the server's zone. The type makes both backends
behave the same: a naive value is refused (it names no instant), an aware one is converted to
UTC before it is written, and what is read is always an aware UTC datetime. Showing it in JST
is ``app.core.jptime``'s job.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone was about to be stored or compared with a column."""


class UtcDateTime(TypeDecorator[dt.datetime]):
    """``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, ``DATETIME`` (UTC text) on SQLite; aware
    datetimes only, stored in UTC, returned as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type:
        return dt.datetime

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise NaiveDatetimeError(
                f"日時の列に日時以外の値が渡されました: {type(value).__name__}"
            )
        if value.tzinfo is None or value.utcoffset() is None:
            # The value is not repeated: its digits run together like a twelve-digit number.
            raise NaiveDatetimeError(
                "時刻帯のない日時は保存・比較できません（UTC か JST を明示してください）"
            )
        utc = value.astimezone(dt.UTC)
        # SQLite keeps the wall-clock fields only: hand it the UTC ones, without an offset,
        # so every stored text compares in the same zone.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
