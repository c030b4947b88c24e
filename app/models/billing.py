"""Billing (spec 6-6 and 別表): unit prices, billable events, the carrier's fee table, postage.

Billable counts are derived from ``BillableEvent`` rows that the collection work records as it
happens (a kit sent, a reminder, a web or paper collection); a unique key makes every event
count once, in the month it happened. Prices are versioned by effective date, never edited in
place, so a past month's bill can always be recomputed exactly.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask_appbuilder import Model
from sqlalchemy import Date, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.core import utcnow
from app.models.types import UtcDateTime


class BillingCategory:
    """The rows of マイナンバー収集料金単価表 (spec 別表)."""

    EMPLOYEE_KIT = "employee_kit"
    EMPLOYEE_SMARTPHONE = "employee_smartphone"
    EXTERNAL_KIT = "external_kit"
    EXTERNAL_REMINDER = "external_reminder"
    EXTERNAL_SMARTPHONE = "external_smartphone"
    EXTERNAL_POSTAL = "external_postal"

    # category: (対象者, 区分, 内容, 単位)
    ROWS = {
        EMPLOYEE_KIT: ("役職員(親族含)", "案内", "収集キット郵送等", "世帯"),
        EMPLOYEE_SMARTPHONE: ("役職員(親族含)", "収集", "スマートフォン収集", "世帯"),
        EXTERNAL_KIT: ("外部委員等", "案内", "収集キット郵送", "人"),
        EXTERNAL_REMINDER: ("外部委員等", "督促", "督促の連絡", "人"),
        EXTERNAL_SMARTPHONE: ("外部委員等", "回収", "スマートフォン収集", "人"),
        EXTERNAL_POSTAL: ("外部委員等", "回収", "郵送収集", "人"),
    }
    ALL = tuple(ROWS)

    @classmethod
    def label(cls, category: str) -> str:
        who, kind, what, unit = cls.ROWS[category]
        return f"{who} {kind}: {what}（/{unit}）"


class UnitPrice(Model):
    """A price (yen, tax excluded) for one category from a date on; the newest version wins."""

    __tablename__ = "unit_price"
    __table_args__ = (UniqueConstraint("category", "effective_from", name="uq_unit_price_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    price_yen: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class BillableEvent(Model):
    """One billable thing that happened. ``subject_key`` + category is unique: counted once."""

    __tablename__ = "billable_event"
    __table_args__ = (
        UniqueConstraint("category", "subject_key", name="uq_billable_event_once"),
        Index("ix_billable_event_month", "month", "category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    # What makes it one event, e.g. "kit:<request id>", "reminder:<request id>:<n>".
    subject_key: Mapped[str] = mapped_column(String(200))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM in JST
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    people: Mapped[int] = mapped_column(Integer, default=1)  # people covered (households)


class PostageRate(Model):
    """The carrier's fee table, submitted in advance and versioned (spec 6-6)."""

    __tablename__ = "postage_rate"
    __table_args__ = (
        UniqueConstraint("carrier", "method", "effective_from", name="uq_postage_rate_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    carrier: Mapped[str] = mapped_column(String(100))  # e.g. 日本郵便
    method: Mapped[str] = mapped_column(String(100))  # e.g. 定形郵便 50g以内, 簡易書留
    price_yen: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    submitted_to_client_on: Mapped[dt.date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class PostageEntry(Model):
    """One send or return with its actual cost (実費), for the monthly 発送/返送 totals."""

    __tablename__ = "postage_entry"
    __table_args__ = (Index("ix_postage_entry_month", "month", "direction"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(10))  # send|return
    carrier: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(100))
    cost_yen: Mapped[int] = mapped_column(Integer)
    posted_on: Mapped[dt.date] = mapped_column(Date)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM of posted_on
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    DIRECTION_LABELS = {"send": "発送", "return": "返送"}
