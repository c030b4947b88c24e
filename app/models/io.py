"""Import, export and record-keeping tables: layouts, name history, tickets, export manifests.

- ``ExportLayout``: the client's CSV format (spec 5.4-3), used for import and export alike.
- ``NameChange``: 氏名変更 history; the person row keeps the current name.
- ``IoTicket``: a pending two-step portal action (import preview → confirm, 照合 → download);
  its payload is sealed under a KEK-derived key and deleted when used or expired.
- ``ExportItem``: the manifest of an export, one row per person, append-only; the export's
  audit event carries its count and SHA-256, so the chain vouches for it.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.core import utcnow
from app.models.system_sealed import IO_TICKET
from app.models.types import UtcDateTime


class ExportLayout(Model):
    """A named CSV layout of one kind (``staff`` or ``external``): columns, labels, format."""

    __tablename__ = "export_layout"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # staff|external
    # JSON list of [field, header label] in column order (fields: app.io.layouts.FIELDS).
    columns: Mapped[str] = mapped_column(Text)
    date_format: Mapped[str] = mapped_column(String(20), default="slash")
    encoding: Mapped[str] = mapped_column(String(20), default="utf-8-sig")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(200))


class NameChange(Model):
    """One 氏名変更: what the name was, what it became, from when, recorded by whom."""

    __tablename__ = "name_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("person.id"), index=True)
    old_name: Mapped[str] = mapped_column(String(200))
    old_kana: Mapped[str | None] = mapped_column(String(200))
    new_name: Mapped[str] = mapped_column(String(200))
    new_kana: Mapped[str | None] = mapped_column(String(200))
    changed_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(200))


class IoTicket(Model):
    """A portal step waiting for its confirmation; the payload is sealed, never plaintext."""

    __tablename__ = "io_ticket"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    purpose: Mapped[str] = mapped_column(String(20))  # import|match
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"))
    layout_id: Mapped[int] = mapped_column(Integer, ForeignKey("export_layout.id"))
    payload: Mapped[bytes] = mapped_column(LargeBinary, info=IO_TICKET.info())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ExportItem(Model):
    """Whose data one export contained, in the file's order (append-only; no foreign key, so
    it outlives disposal). Keyed by position: a 200,000-row manifest is appended, not scattered
    through a second index on random UUIDs; "who exported this person" scans, which is rare."""

    __tablename__ = "export_item"

    export_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
