"""利用実績報告書 (monthly usage report, spec 6-5 and 9.1): the figures of one month.

``compute(session, month)`` returns a plain dict of counts and yen (JSON-able, no personal
data: no name, no id, no number), read from what the other modules record:

- collections: verification cases accepted in the month (``VerificationCase``, decision
  ``accepted``), by category (役職員(親族含) / 外部委員等, from the request's person) and channel
  (web / paper); households = requests, people = numbers registered;
- reminders: ``Reminder`` rows of dunning runs in the month, by category and channel;
- deficiencies: request history rows ``deficient`` in the month (portal or verification);
- verifications: cases decided in the month, by decision;
- stored at month end: people with a number registered by then and not disposed by then;
- disposals: executed disposal requests and the people they removed, by kind;
- billing: ``billing.monthly_lines`` (each event at the price of its day) and
  ``billing.postage_totals`` (発送 / 返送);
- inquiries: received / answered and the response time in business hours
  (``desk.response_figures``: Mon–Fri 10:00–17:00 JST except holidays and 12/29–1/3);
- the fiscal year (April–March) so far beside the 想定人数 of ``PlannedVolume``, and a
  per-month series for the chart;
- その他: the operator's notes for the month (``MonthlyReport.notes``).

A disposed person's tombstone keeps the household and the number's first registration date
(``Person.number_registered_at``), so a month's storage counts recomputed after a disposal
stay what they were; the report also stores its snapshot and PDF when it is generated, and
the portal shows and re-sends that (see ``app.operations.reports.delivery``).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.core import jptime
from app.models import (
    BillableEvent,
    BillingCategory,
    CollectionRequest,
    CollectionRequestStatus,
    Decision,
    DisposalItem,
    DisposalKind,
    DisposalRequest,
    DisposalStatus,
    MonthlyReport,
    MyNumberRecord,
    Person,
    PersonKind,
    PlannedVolume,
    Reminder,
    VerificationCase,
)
from app.operations import billing, desk

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
EMPLOYEE = "employee"  # 役職員(親族含): employees and their dependents, counted by household
EXTERNAL = "external"  # 外部委員等: one person each
GROUP_LABELS = {EMPLOYEE: "役職員(親族含)", EXTERNAL: "外部委員等"}
CHANNEL_LABELS = {"web": "Web（スマートフォン）", "paper": "郵送"}
REMINDER_CHANNEL_LABELS = {"email": "メール", "post": "郵送"}
DECISION_LABELS = {
    Decision.ACCEPTED: "受理・登録",
    Decision.DEFICIENT: "不備",
    Decision.REFUSED: "不受理",
}
STORED_PLAN = ("stored_employee", "stored_external")


class ReportError(ValueError):
    """Bad report input; the message is Japanese and names the field."""


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month), or a Japanese error naming the value."""
    match = _MONTH.match((text or "").strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise ReportError(f"月の指定が正しくありません（YYYY-MM の形式、例: 2026-10）: {text}")
    return int(match.group(1)), int(match.group(2))


def month_label(month: str) -> str:
    year, mon = parse_month(month)
    return f"{year}年{mon}月"


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def previous_month(day: dt.date) -> str:
    """The month before the one ``day`` is in, as ``YYYY-MM``."""
    first = day.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """The month's period as [start, end) in UTC (stored times are UTC): JST midnights,
    except that March closes at 17:00 on its due date and April opens there
    (``billing.period``), so an event after March's cut-off is in April's report."""
    year, mon = parse_month(month)
    start, _calendar_start, end = billing.period(year, mon)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _moment(value: dt.datetime, end: bool = False) -> str:
    """``2026年11月30日 24:00`` for an end at midnight, else ``2027年3月31日 17:00``."""
    local = jptime.to_jst(value)
    if end and local.time() == dt.time(0):
        day = local.date() - dt.timedelta(days=1)
        return f"{day.year}年{day.month}月{day.day}日 24:00"
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def period_label(month: str) -> dict:
    """The period with its cut-off, as the report states it (JST)."""
    year, mon = parse_month(month)
    start, calendar_start, end = billing.period(year, mon)
    carried = start < calendar_start
    return {
        "text": f"{_moment(start)}～{_moment(end, end=True)}（日本時間）",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "cutoff": _moment(end, end=True),
        "carried_from": (
            f"{_moment(start)}～{_moment(calendar_start, end=True)}（前月の締切後）"
            if carried
            else None
        ),
    }


def due_date(month: str) -> dt.date:
    """When the report is due (``billing.usage_report_due``: 10th or March 31, moved back)."""
    return billing.usage_report_due(*parse_month(month))


def fiscal_year(month: str) -> int:
    """年度: April–March, named by the year it starts in."""
    year, mon = parse_month(month)
    return year if mon >= 4 else year - 1


def fiscal_months(month: str) -> list[str]:
    """April of the fiscal year up to ``month`` itself."""
    fy = fiscal_year(month)
    months = []
    year, mon = fy, 4
    while True:
        months.append(f"{year:04d}-{mon:02d}")
        if months[-1] == month:
            return months
        year, mon = next_month(year, mon)


def _group(kind: str) -> str:
    return EXTERNAL if kind == PersonKind.EXTERNAL else EMPLOYEE


# -- the sections ------------------------------------------------------------------------------
def collections(session: Session, month: str) -> dict:
    """Accepted verifications of the month: ``{group: {channel: {households, people}}}``."""
    start, end = bounds(month)
    out = {g: {c: {"households": 0, "people": 0} for c in CHANNEL_LABELS} for g in GROUP_LABELS}
    rows = session.execute(
        select(VerificationCase.channel, Person.kind, VerificationCase.registered)
        .join(CollectionRequest, CollectionRequest.id == VerificationCase.request_id)
        .join(Person, Person.id == CollectionRequest.person_id)
        .where(
            VerificationCase.decision == Decision.ACCEPTED,
            VerificationCase.decided_at >= start,
            VerificationCase.decided_at < end,
        )
    )
    for channel, kind, registered in rows:
        cell = out[_group(kind)][channel if channel in CHANNEL_LABELS else "web"]
        cell["households"] += 1
        cell["people"] += int(registered or 0)
    return out


def reminders(session: Session, month: str) -> dict:
    """督促 decided by the dunning runs of the month: ``{group: {channel: count}}``."""
    year, mon = parse_month(month)
    first = dt.date(year, mon, 1)
    last = dt.date(*next_month(year, mon), 1) - dt.timedelta(days=1)
    out = {g: {c: 0 for c in REMINDER_CHANNEL_LABELS} for g in GROUP_LABELS}
    rows = session.execute(
        select(Person.kind, Reminder.channel, func.count())
        .join(CollectionRequest, CollectionRequest.id == Reminder.request_id)
        .join(Person, Person.id == CollectionRequest.person_id)
        .where(Reminder.run_date >= first, Reminder.run_date <= last)
        .group_by(Person.kind, Reminder.channel)
    )
    for kind, channel, count in rows:
        groups = out[_group(kind)]
        groups[channel] = groups.get(channel, 0) + int(count)
    return out


def deficiencies(session: Session, month: str) -> int:
    """不備 recorded in the month (each notice to a subject once)."""
    start, end = bounds(month)
    return int(
        session.execute(
            select(func.count()).where(
                CollectionRequestStatus.status == "deficient",
                CollectionRequestStatus.at >= start,
                CollectionRequestStatus.at < end,
            )
        ).scalar_one()
    )


def verifications(session: Session, month: str) -> dict[str, int]:
    """Verification cases decided in the month, by decision (a released case is not one)."""
    start, end = bounds(month)
    out = {d: 0 for d in DECISION_LABELS}
    rows = session.execute(
        select(VerificationCase.decision, func.count())
        .where(
            VerificationCase.decision.in_(tuple(DECISION_LABELS)),
            VerificationCase.decided_at >= start,
            VerificationCase.decided_at < end,
        )
        .group_by(VerificationCase.decision)
    )
    for decision, count in rows:
        out[decision] = int(count)
    return out


def stored_at(session: Session, moment: dt.datetime) -> dict:
    """People whose number was stored at ``moment``: a number registered before it, and not
    disposed before it. A person disposed later has no number record left: their tombstone's
    ``number_registered_at`` says when it came (tombstones made before that column were given
    their creation date by the migration, the best date left)."""
    numbered = select(MyNumberRecord.person_id).where(MyNumberRecord.registered_at < moment)
    registered = Person.number_registered_at
    rows = session.execute(
        select(Person.id, Person.kind, Person.household_head_id).where(
            or_(
                and_(
                    Person.id.in_(numbered),
                    or_(Person.disposed_at.is_(None), Person.disposed_at >= moment),
                ),
                and_(Person.disposed_at >= moment, registered < moment),
            )
        )
    ).all()
    households: set = set()
    employees = dependents = external = 0
    for pid, kind, head in rows:
        if kind == PersonKind.EXTERNAL:
            external += 1
        else:
            households.add(head or pid)
            if kind == PersonKind.DEPENDENT:
                dependents += 1
            else:
                employees += 1
    return {
        EMPLOYEE: {"households": len(households), "people": employees + dependents},
        EXTERNAL: {"households": external, "people": external},
        "employees": employees,
        "dependents": dependents,
        "total_people": employees + dependents + external,
    }


def disposals(session: Session, month: str) -> dict:
    """Disposals executed in the month: requests and people removed, by group; materials."""
    start, end = bounds(month)
    executed = session.execute(
        select(DisposalRequest.kind, func.count())
        .where(
            DisposalRequest.status == DisposalStatus.EXECUTED,
            DisposalRequest.executed_at >= start,
            DisposalRequest.executed_at < end,
        )
        .group_by(DisposalRequest.kind)
    ).all()
    by_kind = {kind: int(count) for kind, count in executed}
    people = {EMPLOYEE: 0, EXTERNAL: 0}
    for kind, count in session.execute(
        select(DisposalItem.person_kind, func.count())
        .where(DisposalItem.disposed_at >= start, DisposalItem.disposed_at < end)
        .group_by(DisposalItem.person_kind)
    ):
        people[_group(kind)] += int(count)
    return {
        "data_requests": by_kind.get(DisposalKind.DATA, 0),
        "material_requests": by_kind.get(DisposalKind.MATERIAL, 0),
        "people": people,
    }


# Said on the report and the invoice whenever external members were guided by e-mail.
EMAILED_NOTE = (
    "外部委員へのメール案内 {n} 件（仕様 5.2-3 の対象外。収集キットは郵送しておらず、"
    "実績どおりメールでの案内として外部委員等の案内単価で計上、郵送料なし）"
)
TAX_RATE = 10  # 消費税 (%), on the service lines; postage is 立替金 at cost


def bill(session: Session, month: str, reminder_unit: str | None = None) -> dict:
    """The bill: one line per category and price version (件数 × 単価 = 金額), the 税抜 total,
    消費税 10 % (rounded down once, on the total) and the tax-included total."""
    reminder_unit = billing.agreed_reminder_unit(reminder_unit)
    lines = [
        {
            "category": line.category,
            "label": line.label,
            "unit": line.unit,
            "count": line.count,
            "unit_price": line.unit_price,
            "amount": line.amount,
            "price_from": line.price_from,
            "carried": line.carried,
            "reminders": line.reminders,
            "emailed": line.emailed,
        }
        for line in billing.monthly_lines(session, month, reminder_unit)
    ]
    emailed = sum(x["count"] for x in lines if x["emailed"])
    priced = [x["amount"] for x in lines]
    total = None if any(a is None for a in priced) else sum(priced)
    tax = None if total is None else total * TAX_RATE // 100
    return {
        "lines": lines,
        "total": total,
        "tax_rate": TAX_RATE,
        "tax": tax,
        "total_with_tax": None if total is None else total + tax,
        "reminder_unit": reminder_unit,
        "reminder_unit_label": billing.REMINDER_UNITS[reminder_unit],
        "unpriced": sorted({x["label"] for x in lines if x["amount"] is None}),
        "notes": [EMAILED_NOTE.format(n=emailed)] if emailed else [],
    }


def postage(session: Session, month: str) -> dict:
    """発送 / 返送 totals, the breakdown by carrier, service and rate, and the fee table in force
    at the end of the month (attached to the invoice, spec 6-6)."""
    year, mon = parse_month(month)
    last_day = dt.date(*next_month(year, mon), 1) - dt.timedelta(days=1)
    totals = billing.postage_totals(session, month)
    totals["total_yen"] = totals["send"]["yen"] + totals["return"]["yen"]
    totals["breakdown"] = billing.postage_breakdown(session, month)
    totals["fee_table"] = billing.fee_table(session, last_day)
    totals["fee_table_as_of"] = last_day.isoformat()
    return totals


def _inquiry_figures(session: Session, month: str) -> dict:
    """The desk's month (``desk.response_figures``) as plain JSON for the stored snapshot:
    received, answered, open at month end, and response times in desk hours."""
    f = desk.response_figures(session, month)
    return {
        "received": f.received,
        "answered": f.answered,
        "open_at_month_end": f.open_at_month_end,
        "median_hours": f.median_response_hours,
        "max_hours": f.max_response_hours,
        "within_one_day_share": f.within_one_business_day,
    }


def _fiscal_actuals(
    session: Session, months: list[str], reminder_unit: str | None = None
) -> dict[str, dict]:
    """Billable counts of the fiscal year so far per category: households and people; 督促
    in the unit the bill uses (``billing.reminder_count`` over the year's periods)."""
    out = {c: {"households": 0, "people": 0} for c in BillingCategory.ALL}
    rows = session.execute(
        select(
            BillableEvent.category, func.count(), func.coalesce(func.sum(BillableEvent.people), 0)
        )
        .where(BillableEvent.month.in_(months))
        .group_by(BillableEvent.category)
    )
    for category, count, people in rows:
        if category not in out:
            continue
        out[category]["households"] = int(count)
        out[category]["people"] = (
            int(people) if category == BillingCategory.EMPLOYEE_SMARTPHONE else int(count)
        )
    out[BillingCategory.EMPLOYEE_KIT]["people"] = None
    first, last = parse_month(months[0]), parse_month(months[-1])
    reminded = billing.reminder_count(
        session, billing.period(*first)[0], billing.period_end(*last), reminder_unit
    )
    out[BillingCategory.EXTERNAL_REMINDER] = {"households": reminded, "people": reminded}
    return out


def plan_vs_actual(session: Session, month: str, reminder_unit: str | None = None) -> dict:
    """The 想定人数 of the fiscal year (``PlannedVolume``) beside the actuals so far."""
    fy = fiscal_year(month)
    months = fiscal_months(month)
    actual = _fiscal_actuals(session, months, reminder_unit)
    planned = {
        p.category: p
        for p in session.execute(
            select(PlannedVolume).where(PlannedVolume.fiscal_year == fy)
        ).scalars()
    }
    rows = []
    for category in BillingCategory.ALL:
        who, kind, what, unit = BillingCategory.ROWS[category]
        plan = planned.get(category)
        rows.append(
            {
                "category": category,
                "who": who,
                "kind": kind,
                "what": what,
                "planned_households": plan.households if plan else None,
                "planned_people": plan.people if plan else None,
                "actual_households": actual[category]["households"],
                "actual_people": actual[category]["people"],
            }
        )
    period = next((p.period_label for p in planned.values() if p.category not in STORED_PLAN), "")
    stored_plan = {
        p.category: {"households": p.households, "people": p.people, "label": p.period_label}
        for p in session.execute(
            select(PlannedVolume)
            .where(PlannedVolume.category.in_(STORED_PLAN))
            .order_by(PlannedVolume.fiscal_year)
        ).scalars()
    }
    return {
        "fiscal_year": fy,
        "period_label": period,
        "from_month": months[0],
        "to_month": month,
        "has_plan": any(c in planned for c in BillingCategory.ALL),
        "rows": rows,
        "stored_plan": stored_plan,
    }


def monthly_series(session: Session, month: str) -> list[dict]:
    """Collections per month of the fiscal year so far, for the chart."""
    series = []
    for m in fiscal_months(month):
        c = collections(session, m)
        series.append(
            {
                "month": m,
                "employee_households": sum(v["households"] for v in c[EMPLOYEE].values()),
                "external_people": sum(v["people"] for v in c[EXTERNAL].values()),
            }
        )
    return series


def notes(session: Session, month: str) -> str:
    row = session.execute(
        select(MonthlyReport.notes).where(MonthlyReport.month == month)
    ).scalar_one_or_none()
    return row or ""


def compute(
    session: Session,
    month: str,
    now: dt.datetime | None = None,
    reminder_unit: str | None = None,
) -> dict:
    """Every figure of the month's report, as plain JSON-able data."""
    now = now or dt.datetime.now(dt.UTC)
    _start, end = bounds(month)
    stored_moment = min(end, now)
    period = period_label(month)
    return {
        "month": month,
        "month_label": month_label(month),
        "period": period["text"],
        "period_detail": period,
        "due_on": due_date(month).isoformat(),
        "computed_at": jptime.format_jst(now),
        "stored_as_of": jptime.format_jst(stored_moment),
        "collections": collections(session, month),
        "reminders": reminders(session, month),
        "deficiencies": deficiencies(session, month),
        "verifications": verifications(session, month),
        "stored": stored_at(session, stored_moment),
        "disposals": disposals(session, month),
        "billing": bill(session, month, reminder_unit),
        "postage": postage(session, month),
        "inquiries": _inquiry_figures(session, month),
        "plan": plan_vs_actual(session, month, reminder_unit),
        "series": monthly_series(session, month),
        "notes": notes(session, month),
    }
