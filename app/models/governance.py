"""情報管理体制図 (spec 7.5): the operator's structured text, kept as versions with history.

Each edit is a new row (nothing is overwritten); like a roster change it applies only when a
ClientStaff user other than its author approves it. The current chart is the newest approved
version.
"""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.core import utcnow
from app.models.types import UtcDateTime


class HandlingChart(Model):
    """One version of the 情報管理体制図 text: 責任者, 取扱者 and roles, 連絡体制."""

    __tablename__ = "handling_chart"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    responsible: Mapped[str] = mapped_column(String(200))  # 責任者（氏名・役職）
    handlers: Mapped[str] = mapped_column(Text)  # one line per handler: 氏名 / 役割
    contacts: Mapped[str] = mapped_column(Text)  # 連絡体制, one line each
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|approved|rejected
    proposed_by_id: Mapped[int | None] = mapped_column(Integer)
    proposed_by_name: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_by_name: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    STATUS_LABELS = {"pending": "承認待ち", "approved": "承認済み", "rejected": "却下"}

    @property
    def status_label(self) -> str:
        return self.STATUS_LABELS.get(self.status, self.status)
