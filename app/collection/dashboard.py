"""The dashboard: counts for the client's staff and the operators, no
personal data: people stored, open campaigns' progress, overdue and deficient requests, this
month's billable counts, the next report due; charts as server-drawn SVG (no script, no
third-party origin)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.collection import campaigns
from app.core import jptime
from app.models import Campaign, CollectionRequest, MonthlyReport, RequestStatus, Stage
from app.operations import billing
from app.operations.reports import monthly, output

CAMPAIGN_LIMIT = 5


def next_report(session: Session, today: dt.date) -> dict:
    """The nearest report not yet delivered: last month's if still open, else this month's."""
    this_month = f"{today.year:04d}-{today.month:02d}"
    candidates = [monthly.previous_month(today), this_month]
    delivered = {
        r.month: r
        for r in session.execute(
            select(MonthlyReport).where(MonthlyReport.month.in_(candidates))
        ).scalars()
    }
    for month in candidates:
        row = delivered.get(month)
        if row is None or row.delivered is None:
            return {
                "month": month,
                "month_label": monthly.month_label(month),
                "due_on": monthly.due_date(month),
                "generated": bool(row and row.generated_at),
                "failed": bool(row and row.last_delivery and row.last_delivery.status == "failed"),
            }
    ny, nm = monthly.next_month(today.year, today.month)
    month = f"{ny:04d}-{nm:02d}" if today.month != 3 else this_month
    return {
        "month": month,
        "month_label": monthly.month_label(month),
        "due_on": monthly.due_date(month),
        "generated": False,
        "failed": False,
    }


def campaign_progress(session: Session, today: dt.date) -> list[dict]:
    rows = []
    for campaign in session.execute(
        select(Campaign)
        .where(Campaign.status == "open")
        .order_by(Campaign.deadline.desc(), Campaign.id.desc())
        .limit(CAMPAIGN_LIMIT)
    ).scalars():
        counts = campaigns.counts(session, campaign.id)
        total = sum(counts.values())
        rows.append(
            {
                "campaign": campaign,
                "total": total,
                "completed": counts[Stage.COMPLETED],
                "waiting": sum(counts[s] for s in Stage.WAITING),
                "deficient": counts[Stage.DEFICIENT],
                "overdue": len(campaigns.overdue(session, campaign.id, today)),
                "chart": campaigns.progress_svg(
                    campaigns.progress(session, campaign, today), total, campaign.deadline
                ),
            }
        )
    return rows


def figures(session: Session, today: dt.date | None = None) -> dict:
    today = today or jptime.today_jst()
    month = f"{today.year:04d}-{today.month:02d}"
    progress = campaign_progress(session, today)
    overdue_total = int(
        session.execute(
            select(func.count()).where(
                CollectionRequest.status == RequestStatus.ISSUED,
                CollectionRequest.deadline < today,
            )
        ).scalar_one()
    )
    deficient_total = int(
        session.execute(
            select(func.count()).where(CollectionRequest.status == RequestStatus.DEFICIENT)
        ).scalar_one()
    )
    return {
        "today": today,
        "month_label": monthly.month_label(month),
        "stored": monthly.stored_at(session, dt.datetime.now(dt.UTC)),
        "campaigns": progress,
        "overdue": overdue_total,
        "deficient": deficient_total,
        "deficiencies_this_month": monthly.deficiencies(session, month),
        "billing": billing.monthly_lines(session, month),
        "next_report": next_report(session, today),
        "collections_chart": output.bar_chart_svg(monthly.monthly_series(session, month)),
        "fiscal_year": monthly.fiscal_year(month),
    }
