"""Generating, storing and e-mailing the monthly report and its invoice; the scheduled run.

**Stored, not regenerated; sent, never changed.** Generating a month's report stores its
figures (``snapshot``, JSON), the PDF and the 請求書 PDF with their SHA-256, as a version
(``ReportVersion``, 第1版). The report holds counts and yen only, so storing it adds no
personal data; and what the client received stays exactly reproducible: a later disposal, a
back-dated price or a late correction would make a fresh computation differ from what was
sent. Until a version is sent it may be generated again (replaced); once sent it is
immutable: a correction is a new version (第2版) with its reason, both kept and listed, and
the client is told by the correction's e-mail. A price version dated inside a sent month
marks that month as needing a correction (``corrections_due``). The CSV is rendered from the
stored snapshot, so PDF and CSV always agree.

**The scheduled run** (``run_scheduled``, daily job) sends every month that is due and not
delivered yet, from the first month with any activity on: a month the worker missed is
generated when it comes back. A month is due from the first business day after it ends;
March on its due date (March 31 or the business day before), closing at 17:00 that day
(``billing.period``): what happens after the cut-off is in April's report, on its own line.
A month counts as delivered once one e-mail went out; the run claims the month atomically
before sending, so two workers never both send, and a failure (recorded with its error) is
retried by the next day's run. Only a person re-sends by hand (portal or CLI, audited).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from flask import current_app, has_app_context
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.models import (
    BillableEvent,
    MonthlyReport,
    PostageEntry,
    ReportDelivery,
    ReportVersion,
    UnitPrice,
    utcnow,
)
from app.operations.reports import invoice, monthly, output
from app.platform import mail

VIEW = "Reports"
JOB_ACTOR = Actor.system("job:monthly_report")
NOTES_MAX = 4000
REASON_MAX = 1000
CLAIM_STALE = dt.timedelta(hours=1)


def _authorize(actor: Actor, permission: str) -> None:
    """The scheduled job takes no decision of a person; everyone else goes by the policy."""
    if actor != JOB_ACTOR:
        policy.require(actor, permission, VIEW)


def ensure(session: Session, month: str) -> MonthlyReport:
    """The month's row (created with its due date on first use)."""
    monthly.parse_month(month)
    row = session.execute(
        select(MonthlyReport).where(MonthlyReport.month == month)
    ).scalar_one_or_none()
    if row is None:
        row = MonthlyReport(month=month, due_on=monthly.due_date(month))
        session.add(row)
        session.flush()
    return row


def save_notes(session: Session, actor: Actor, month: str, text: str) -> MonthlyReport:
    """その他: the operator's notes for the month (never a number: mail refuses those too)."""
    _authorize(actor, "can_notes")
    text = (text or "").strip()
    if len(text) > NOTES_MAX:
        raise monthly.ReportError(f"その他（特記事項）: {NOTES_MAX}文字以内で入力してください")
    if mynumber.contains_number(text):
        raise monthly.ReportError(mynumber.number_refusal("その他（特記事項）"))
    row = ensure(session, month)
    row.notes = text or None
    row.notes_updated_by = actor.name
    row.notes_updated_at = utcnow()
    trail.record(
        session,
        actor,
        "report.notes",
        object_type="monthly_report",
        object_ids=[month],
        details={"length": len(text)},
    )
    session.commit()
    return row


def _config() -> dict:
    return current_app.config if has_app_context() else {}


def current_version(row: MonthlyReport) -> ReportVersion | None:
    return row.versions[-1] if row.versions else None


def is_sent(row: MonthlyReport) -> bool:
    """Whether the current version reached the client (then only a correction follows)."""
    current = current_version(row)
    return current is not None and row.was_sent(current.pdf_sha256)


def _check_reason(text: str | None) -> str:
    reason = (text or "").strip()
    if len(reason) > REASON_MAX:
        raise monthly.ReportError(f"訂正理由: {REASON_MAX}文字以内で入力してください")
    if mynumber.contains_number(reason):
        raise monthly.ReportError(mynumber.number_refusal("訂正理由"))
    return reason


def generate(
    session: Session,
    actor: Actor,
    month: str,
    *,
    client: str,
    operator: str,
    now: dt.datetime | None = None,
    correction_reason: str | None = None,
) -> MonthlyReport:
    """Compute the month's figures, render the report and the invoice, and store them as a
    version; audited. A version not sent yet is replaced; a sent one never is: then a
    correction reason is required and the result is the next version (第2版, …)."""
    _authorize(actor, "can_generate")
    reason = _check_reason(correction_reason)
    row = ensure(session, month)
    current = current_version(row)
    sent = is_sent(row)
    label = monthly.month_label(month)
    if sent and not reason:
        raise monthly.ReportError(
            f"{label}の報告書（第{current.version}版）は送付済みのため変更できません。"
            f"訂正する場合は訂正理由を入力して訂正版（第{current.version + 1}版）を作成してください"
        )
    now = now or utcnow()
    config = _config()
    figures = monthly.compute(
        session, month, now=now, reminder_unit=config.get("BILLING_REMINDER_UNIT", "person")
    )
    replace = current if current is not None and not sent else None
    version = replace.version if replace else (current.version + 1 if current else 1)
    if replace is not None and not reason:
        reason = replace.reason or ""  # a correction generated again keeps its reason
    figures["version"] = version
    # The price versions this generation knew: a later one reaching back marks the month.
    figures["prices_known_upto"] = session.execute(
        select(func.coalesce(func.max(UnitPrice.id), 0))
    ).scalar_one()
    if version > 1:
        figures["correction"] = {"reason": reason, "replaces": version - 1}
    pdf = output.to_pdf(figures, client, operator)
    invoice_pdf = None
    try:
        issuer = invoice.issuer_from(config)
        invoice_pdf = invoice.to_pdf(figures, issuer, client, now)
    except monthly.ReportError as exc:
        figures["invoice_problem"] = str(exc)
    snapshot = json.dumps(figures, ensure_ascii=False, sort_keys=True)
    start, end = monthly.bounds(month)
    target = replace or ReportVersion(report_id=row.id, version=version)
    target.reason = reason or None
    target.period_start, target.period_end = start, end
    target.snapshot, target.pdf = snapshot, pdf
    target.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    target.invoice_pdf = invoice_pdf
    target.invoice_sha256 = hashlib.sha256(invoice_pdf).hexdigest() if invoice_pdf else None
    target.generated_at, target.generated_by = now, actor.name
    if replace is None:
        session.add(target)
        row.versions.append(target)
    row.version = version
    row.snapshot, row.pdf, row.pdf_sha256 = snapshot, pdf, target.pdf_sha256
    row.invoice_pdf, row.invoice_sha256 = invoice_pdf, target.invoice_sha256
    row.generated_at, row.generated_by = now, actor.name
    trail.record(
        session,
        actor,
        "report.correct" if version > 1 and replace is None else "report.generate",
        object_type="monthly_report",
        object_ids=[month, version],
        details={
            "version": version,
            "sha256": row.pdf_sha256,
            "bytes": len(pdf),
            "invoice_sha256": row.invoice_sha256,
            "reason": reason or None,
            "replaced_unsent": replace is not None,
        },
    )
    session.commit()
    return row


def corrections_due(session: Session) -> dict[str, list[str]]:
    """Sent months that a price version registered after their generation reaches back
    into: ``{month: [what changed]}``; each needs a corrected version."""
    due: dict[str, list[str]] = {}
    for row in session.execute(select(MonthlyReport)).scalars():
        current = current_version(row)
        if current is None or not row.was_sent(current.pdf_sha256):
            continue
        known = json.loads(current.snapshot).get("prices_known_upto", 0)
        last_day = (jptime.to_jst(current.period_end) - dt.timedelta(microseconds=1)).date()
        prices = session.execute(
            select(UnitPrice)
            .where(UnitPrice.id > known, UnitPrice.effective_from <= last_day)
            .order_by(UnitPrice.id)
        ).scalars()
        notes = [f"単価改定（{p.effective_from:%Y/%m/%d} 適用）" for p in prices]
        if notes:
            due[row.month] = notes
    return due


def figures(row: MonthlyReport, version: int | None = None) -> dict:
    if version is not None:
        found = _version(row, version)
        return json.loads(found.snapshot)
    if not row.snapshot:
        raise monthly.ReportError(
            f"{monthly.month_label(row.month)}の報告書はまだ作成されていません"
        )
    return json.loads(row.snapshot)


def _version(row: MonthlyReport, version: int) -> ReportVersion:
    found = next((v for v in row.versions if v.version == version), None)
    if found is None:
        raise monthly.ReportError(
            f"{monthly.month_label(row.month)}の報告書に第{version}版はありません"
        )
    return found


def file_name(month: str, fmt: str, version: int | None = None) -> str:
    suffix = f"_第{version}版" if version and version > 1 else ""
    if fmt == "invoice":
        return f"請求書_{month}{suffix}.pdf"
    return f"利用実績報告書_{month}{suffix}.{fmt}"


def download(
    session: Session,
    actor: Actor,
    month: str,
    fmt: str,
    encoding: str = "utf-8-sig",
    version: int | None = None,
) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of the stored report, its CSV or its invoice (the
    current version, or an earlier one kept); the download is audited first."""
    _authorize(actor, "can_download")
    if fmt not in ("pdf", "csv", "invoice"):
        raise monthly.ReportError("形式は pdf、csv、invoice（請求書）のいずれかを指定してください")
    row = ensure(session, month)
    data = figures(row, version)
    chosen = _version(row, version) if version is not None else current_version(row)
    number = chosen.version if chosen else None
    if fmt == "invoice" and (chosen is None or not chosen.invoice_pdf):
        raise monthly.ReportError(
            f"{monthly.month_label(month)}の請求書は作成されていません"
            + (f"（{data['invoice_problem']}）" if data.get("invoice_problem") else "")
        )
    trail.record(
        session,
        actor,
        "report.download",
        object_type="monthly_report",
        object_ids=[month],
        details={
            "format": fmt,
            "encoding": encoding if fmt == "csv" else None,
            "version": number,
        },
        commit=True,
    )
    name = file_name(month, fmt, number)
    if fmt == "csv":
        charset = "shift_jis" if encoding == "cp932" else "utf-8"
        return name, output.to_csv(data, encoding), f"text/csv; charset={charset}"
    if fmt == "invoice":
        return name, chosen.invoice_pdf, "application/pdf"
    return name, chosen.pdf if chosen else row.pdf, "application/pdf"


def _message(row: MonthlyReport, client: str, operator: str) -> tuple[str, str]:
    """Subject and body. The PDF's SHA-256 is kept in the delivery record, not in the text: a
    hex digest may hold twelve digits in a row that pass the check digit, which the mail
    guard would (rightly) refuse."""
    data = figures(row)
    label = data["month_label"]
    version = data.get("version") or 1
    correction = data.get("correction")
    if correction:
        subject = f"【利用実績報告書・訂正版（第{version}版）】{label}分（{client} 御中）"
        intro = (
            f"{label}分の利用実績報告書と請求書の訂正版（第{version}版）をお送りします。"
            f"第{correction['replaces']}版を差し替えます（第{correction['replaces']}版も管理ポータルに"
            "保管しており、ダウンロードできます）。\n\n"
            f"訂正理由: {correction['reason']}\n\n"
        )
    else:
        subject = f"【利用実績報告書】{label}分（{client} 御中）"
        intro = (
            f"マイナンバー収集・保管・利用サービスの{label}分の利用実績報告書を"
            "お送りします（PDF を添付しています）。\n\n"
        )
    attached = "報告書と請求書の PDF" if row.invoice_pdf else "報告書の PDF"
    body = (
        f"{client} ご担当者様\n\n"
        f"{operator}です。{intro}"
        f"対象期間: {data['period']}\n"
        f"提出期限: {data['due_on'].replace('-', '/')}\n"
        f"添付: {attached}\n\n"
        "CSV 版と過去の報告書は管理ポータルの「利用実績報告書」からダウンロードできます。\n"
        "このメールには個人番号・個人情報は含まれていません。\n"
    )
    return subject, body


def send(
    session: Session,
    actor: Actor,
    month: str,
    *,
    recipients: list[str],
    client: str,
    operator: str,
    trigger: str = "manual",
) -> ReportDelivery:
    """E-mail the stored PDF to the configured addresses and record the outcome (sent or
    failed, with the error); audited either way."""
    _authorize(actor, "can_send")
    recipients = [r.strip() for r in recipients if r and r.strip()]
    if not recipients:
        raise monthly.ReportError(
            "送信先: 報告書の送信先（MYNUMBER_REPORT_RECIPIENTS）が設定されていません"
        )
    row = ensure(session, month)
    subject, body = _message(row, client, operator)
    message = mail.Mail(
        to=recipients,
        subject=subject,
        body=body,
        attachments=[mail.Attachment(file_name(month, "pdf", row.version), row.pdf)]
        + (
            [mail.Attachment(file_name(month, "invoice", row.version), row.invoice_pdf)]
            if row.invoice_pdf
            else []
        ),
    )
    delivery = ReportDelivery(
        report_id=row.id,
        recipients=", ".join(recipients),
        trigger=trigger,
        requested_by=actor.name,
        attempted_at=utcnow(),
        pdf_sha256=row.pdf_sha256,
    )
    try:
        delivery.message_id = mail.send_from_app(message)
        delivery.status = "sent"
    except (mail.MailError, mail.MailContainsNumber, mail.MailHeaderRefused) as exc:
        delivery.status = "failed"
        delivery.error = str(exc)[:300]
    session.add(delivery)
    session.flush()
    trail.record(
        session,
        actor,
        "report.send",
        object_type="monthly_report",
        object_ids=[month, delivery.id],
        outcome="success" if delivery.status == "sent" else "failure",
        details={
            "recipients": len(recipients),
            "trigger": trigger,
            "version": row.version,
            "error": delivery.error,
        },
    )
    session.commit()
    return delivery


# -- the scheduled run --------------------------------------------------------------------------
def is_due(month: str, today: dt.date) -> bool:
    """March from its due date; any other month from the first business day after it."""
    year, mon = monthly.parse_month(month)
    if mon == 3:
        return today >= monthly.due_date(month)
    return today >= jptime.next_business_day(dt.date(*monthly.next_month(year, mon), 1))


def month_range(first: str, last: str) -> list[str]:
    months = []
    year, mon = monthly.parse_month(first)
    while f"{year:04d}-{mon:02d}" <= last:
        months.append(f"{year:04d}-{mon:02d}")
        year, mon = monthly.next_month(year, mon)
    return months


def months_due(today: dt.date, first: str | None = None) -> list[str]:
    """Which months the run of ``today`` should have delivered by now, oldest first: every
    due month from ``first`` (the first month with any activity) on, else last month and
    this one (March, on its due date)."""
    this = f"{today.year:04d}-{today.month:02d}"
    start = min(first, monthly.previous_month(today)) if first else monthly.previous_month(today)
    return [m for m in month_range(start, this) if is_due(m, today)]


def first_month(session: Session) -> str | None:
    """The first month with anything to report: a report row, a billable event, postage."""
    candidates = [
        session.execute(select(func.min(MonthlyReport.month))).scalar_one_or_none(),
        session.execute(select(func.min(BillableEvent.month))).scalar_one_or_none(),
        session.execute(select(func.min(PostageEntry.month))).scalar_one_or_none(),
    ]
    found = [c for c in candidates if c]
    return min(found) if found else None


def _claim(session: Session, row: MonthlyReport, now: dt.datetime) -> bool:
    """Take the month for this run (atomic UPDATE): False if another run holds it."""
    result = session.execute(
        update(MonthlyReport)
        .where(
            MonthlyReport.id == row.id,
            or_(
                MonthlyReport.auto_claimed_at.is_(None),
                MonthlyReport.auto_claimed_at < now - CLAIM_STALE,
            ),
        )
        .values(auto_claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def _stale(row: MonthlyReport) -> bool:
    """Generate again before sending: never generated, generated before the period closed,
    or the notes changed since."""
    if row.generated_at is None or not row.pdf:
        return True
    _start, end = monthly.bounds(row.month)
    generated = jptime.to_jst(row.generated_at)
    if generated < end:
        return True
    notes_at = jptime.to_jst(row.notes_updated_at)
    return notes_at is not None and notes_at > generated


def run_scheduled(
    session: Session,
    *,
    recipients: list[str],
    client: str,
    operator: str,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Deliver every month that is due and not delivered yet; returns what was done."""
    today = today or jptime.today_jst()
    now = now or utcnow()
    done = []
    for month in months_due(today, first_month(session)):
        if not recipients:
            done.append(f"{month}: 送信先（MYNUMBER_REPORT_RECIPIENTS）が未設定のため送信しません")
            continue
        row = ensure(session, month)
        session.commit()
        if row.delivered is not None:
            continue
        if not _claim(session, row, now):
            done.append(f"{month}: 別の実行が送信中")
            continue
        session.refresh(row)
        if row.delivered is not None:  # delivered between our read and the claim
            continue
        try:
            if _stale(row):
                row = generate(session, JOB_ACTOR, month, client=client, operator=operator, now=now)
            delivery = send(
                session,
                JOB_ACTOR,
                month,
                recipients=recipients,
                client=client,
                operator=operator,
                trigger="scheduled",
            )
        except Exception:
            session.rollback()
            row.auto_claimed_at = None
            session.commit()
            raise
        if delivery.status != "sent":
            row.auto_claimed_at = None  # the next day's run tries again
            session.commit()
        done.append(f"{month}: {delivery.status_label}")
    return done
