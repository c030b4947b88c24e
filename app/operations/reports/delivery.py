"""Generating, storing and e-mailing the monthly report; the scheduled run.

**Stored, not regenerated.** Generating a month's report stores its figures (``snapshot``,
JSON) and the PDF bytes with their SHA-256. The report holds counts and yen only, so storing
it adds no personal data; and what the client received stays exactly reproducible: a later
disposal (which removes the registration dates of the disposed numbers), a new price version
or a late correction would make a fresh computation differ from what was sent. The CSV is
rendered from the stored snapshot, so PDF and CSV always agree. Generating again (by hand)
replaces both and is audited.

**The scheduled run** (``run_scheduled``, daily job) sends last month's report once, from the
first business day after the month ends; for March, on its due date (March 31 or the business
day before), covering the month through that day. A month counts as delivered once one
e-mail went out; the run claims the month atomically before sending, so two workers never
both send, and a failure (recorded with its error) is retried by the next day's run. Only a
person re-sends by hand (portal or CLI, audited).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.models import MonthlyReport, ReportDelivery, utcnow
from app.operations.reports import monthly, output
from app.platform import mail

VIEW = "Reports"
JOB_ACTOR = Actor.system("job:monthly_report")
NOTES_MAX = 4000
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


def generate(
    session: Session,
    actor: Actor,
    month: str,
    *,
    client: str,
    operator: str,
    now: dt.datetime | None = None,
) -> MonthlyReport:
    """Compute the month's figures, render the PDF and store both (replacing an earlier
    generation); audited."""
    _authorize(actor, "can_generate")
    row = ensure(session, month)
    figures = monthly.compute(session, month, now=now)
    pdf = output.to_pdf(figures, client, operator)
    row.snapshot = json.dumps(figures, ensure_ascii=False, sort_keys=True)
    row.pdf = pdf
    row.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    row.generated_at = now or utcnow()
    row.generated_by = actor.name
    trail.record(
        session,
        actor,
        "report.generate",
        object_type="monthly_report",
        object_ids=[month],
        details={"sha256": row.pdf_sha256, "bytes": len(pdf)},
    )
    session.commit()
    return row


def figures(row: MonthlyReport) -> dict:
    if not row.snapshot:
        raise monthly.ReportError(
            f"{monthly.month_label(row.month)}の報告書はまだ作成されていません"
        )
    return json.loads(row.snapshot)


def file_name(month: str, fmt: str) -> str:
    return f"利用実績報告書_{month}.{fmt}"


def download(
    session: Session, actor: Actor, month: str, fmt: str, encoding: str = "utf-8-sig"
) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of the stored report; the download is audited first."""
    _authorize(actor, "can_download")
    if fmt not in ("pdf", "csv"):
        raise monthly.ReportError("形式は pdf か csv を指定してください")
    row = ensure(session, month)
    data = figures(row)
    trail.record(
        session,
        actor,
        "report.download",
        object_type="monthly_report",
        object_ids=[month],
        details={"format": fmt, "encoding": encoding if fmt == "csv" else None},
        commit=True,
    )
    if fmt == "csv":
        charset = "shift_jis" if encoding == "cp932" else "utf-8"
        return file_name(month, fmt), output.to_csv(data, encoding), f"text/csv; charset={charset}"
    return file_name(month, fmt), row.pdf, "application/pdf"


def _message(row: MonthlyReport, client: str, operator: str) -> tuple[str, str]:
    """Subject and body. The PDF's SHA-256 is kept in the delivery record, not in the text: a
    hex digest may hold twelve digits in a row that pass the check digit, which the mail
    guard would (rightly) refuse."""
    data = figures(row)
    label = data["month_label"]
    subject = f"【利用実績報告書】{label}分（{client} 御中）"
    body = (
        f"{client} ご担当者様\n\n"
        f"{operator}です。マイナンバー収集・保管・利用サービスの{label}分の利用実績報告書を"
        "お送りします（PDF を添付しています）。\n\n"
        f"対象期間: {data['period']}\n"
        f"提出期限: {data['due_on'].replace('-', '/')}\n\n"
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
        attachments=[mail.Attachment(file_name(month, "pdf"), row.pdf)],
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
        details={"recipients": len(recipients), "trigger": trigger, "error": delivery.error},
    )
    session.commit()
    return delivery


# -- the scheduled run --------------------------------------------------------------------------
def months_due(today: dt.date) -> list[str]:
    """Which months the run of ``today`` should have delivered by now."""
    months = []
    if today.month == 3 and today >= monthly.due_date(f"{today.year}-03"):
        months.append(f"{today.year}-03")  # March: due on the 31st, covering through it
    if today >= jptime.next_business_day(today.replace(day=1)):
        months.append(monthly.previous_month(today))
    return months


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
    for month in months_due(today):
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
