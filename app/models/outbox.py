"""outbox: work a transaction promised (a job to run, a mail to send), written in that same
transaction and handed to RQ (or run) after the commit by ``app.platform.outbox.dispatch``.

Rows hold a job's import path and its ids, never personal data or a number; ``key`` is
unique per message, so the same work is never promised twice.
"""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.core import utcnow
from app.models.types import UtcDateTime


class OutboxState:
    PENDING = "pending"  # waiting for a dispatcher (or for Redis to come back)
    DISPATCHING = "dispatching"  # claimed by one dispatcher; back to pending if it died
    DISPATCHED = "dispatched"  # handed to RQ (or run inline): never handed over again
    LABELS = {PENDING: "未送出", DISPATCHING: "送出中", DISPATCHED: "送出済"}


class OutboxMessage(Model):
    """One promised job: ``task`` (an ``app.jobs`` function) with ``args`` (JSON ids)."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(200))
    args: Mapped[str] = mapped_column(Text, default="[]")
    state: Mapped[str] = mapped_column(String(20), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # How far the job has got (a long job reports as it goes: ``app.platform.outbox.progress``),
    # kept with its state, whether it runs inline or in an RQ worker.
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    @property
    def state_label(self) -> str:
        return OutboxState.LABELS.get(self.state, self.state)
