"""Monthly usage report (利用実績報告書, spec 6-5 and 9.1): one row per month, its deliveries,
and the planned volumes (想定人数, spec 別添) the report sets beside the actuals.

Nothing here is personal data: the report holds counts and yen only. ``snapshot`` is the
report's figures as JSON at generation time and ``pdf`` the exact file that was generated
(and e-mailed): what the client received can be shown and re-sent unchanged, even after later
disposals or price versions would make a fresh computation differ.
"""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import (
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.core import utcnow
from app.models.types import UtcDateTime


class MonthlyReport(Model):
    """The report of one month ``YYYY-MM``: due date, notes, the generated file."""

    __tablename__ = "monthly_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), unique=True)
    due_on: Mapped[dt.date] = mapped_column(Date)
    # その他: free text the operator enters for the month (refused if it holds a number).
    notes: Mapped[str | None] = mapped_column(Text)
    notes_updated_by: Mapped[str | None] = mapped_column(String(200))
    notes_updated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    generated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    generated_by: Mapped[str | None] = mapped_column(String(200))
    snapshot: Mapped[str | None] = mapped_column(Text)  # JSON of the figures (counts, yen)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    # The current version (1 = 初版); each issued version is kept in ``versions``.
    version: Mapped[int | None] = mapped_column(Integer)
    invoice_pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    invoice_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set atomically by the scheduled run before it sends (cleared on failure): two workers
    # never both send the same month.
    auto_claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    deliveries: Mapped[list[ReportDelivery]] = relationship(
        "ReportDelivery", back_populates="report", order_by="ReportDelivery.id"
    )
    versions: Mapped[list[ReportVersion]] = relationship(
        "ReportVersion", back_populates="report", order_by="ReportVersion.version"
    )

    def was_sent(self, sha256: str | None) -> bool:
        """Whether the file with this digest reached the client (then it never changes)."""
        return any(d.status == "sent" and d.pdf_sha256 == sha256 for d in self.deliveries)

    @property
    def delivered(self) -> ReportDelivery | None:
        """The first successful delivery, if any."""
        return next((d for d in self.deliveries if d.status == "sent"), None)

    @property
    def last_delivery(self) -> ReportDelivery | None:
        return self.deliveries[-1] if self.deliveries else None


class ReportDelivery(Model):
    """One e-mail of a report's PDF to the client's configured addresses."""

    __tablename__ = "monthly_report_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(Integer, ForeignKey("monthly_report.id"), index=True)
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated addresses
    trigger: Mapped[str] = mapped_column(String(20))  # scheduled | manual
    requested_by: Mapped[str] = mapped_column(String(200))
    attempted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(20))  # sent | failed
    error: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(300))
    pdf_sha256: Mapped[str] = mapped_column(String(64))

    report: Mapped[MonthlyReport] = relationship(MonthlyReport, back_populates="deliveries")

    STATUS_LABELS = {"sent": "送信済", "failed": "送信失敗"}
    TRIGGER_LABELS = {"scheduled": "自動", "manual": "手動（再送）"}

    @property
    def status_label(self) -> str:
        return self.STATUS_LABELS.get(self.status, self.status)


class ReportVersion(Model):
    """One issued version of a month's report (第1版, 第2版, …): its period, figures, PDF and
    invoice, never changed once sent. A correction is a new version with its reason."""

    __tablename__ = "monthly_report_version"
    __table_args__ = (UniqueConstraint("report_id", "version", name="uq_report_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(Integer, ForeignKey("monthly_report.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was corrected (版 2 onwards)
    period_start: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    period_end: Mapped[dt.datetime] = mapped_column(UtcDateTime())  # the cut-off
    snapshot: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    invoice_pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    invoice_sha256: Mapped[str | None] = mapped_column(String(64))
    generated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    generated_by: Mapped[str] = mapped_column(String(200))

    report: Mapped[MonthlyReport] = relationship(MonthlyReport, back_populates="versions")

    @property
    def label(self) -> str:
        return f"第{self.version}版"


class PlannedVolume(Model):
    """想定人数 of one fiscal year and billing category (spec 別添), editable by the operator.

    ``category`` is a ``BillingCategory`` value; ``households`` is empty where the table
    has「-」. The migration seeds the spec's figures for 2022–2024.
    """

    __tablename__ = "planned_volume"
    __table_args__ = (UniqueConstraint("fiscal_year", "category", name="uq_planned_volume"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer)  # 年度 (April–March)
    period_label: Mapped[str] = mapped_column(String(100))  # e.g. 2022年8月～2023年3月
    category: Mapped[str] = mapped_column(String(40))
    households: Mapped[int | None] = mapped_column(Integer)
    people: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(200), default="migration")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
