"""Reading the audit log as an auditor does: filters in JST, pages with a count, a CSV.

Dates are what a person in Japan means: 「2026/12/01〜2026/12/07」 is from 00:00 JST on the
first day to the end of the last day in JST, compared with the stored UTC times as the UTC
instants ``[from 00:00 JST, day after to 00:00 JST)``. A date that cannot be read is refused
with a Japanese message naming the field; it is never quietly replaced by another date.

Downloading the filtered log is itself an audited access (``audit.export``), written after the
file is built and before it is handed out: no event, no file.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.audit import labels, trail
from app.core import jptime
from app.core.actor import Actor
from app.models import AuditEvent
from app.platform.csvio import CsvWriteError, CsvWriter

PAGE_SIZE = 50
# The CSV is built in memory (so a character CP932 cannot hold is reported before anything is
# sent); beyond this many events the auditor is asked to narrow the period.
MAX_CSV_EVENTS = 100_000
ENCODINGS = {"utf-8-sig": "UTF-8（BOM 付き）", "cp932": "Shift_JIS（CP932）"}
ACTOR_MAX = 100

CSV_HEADERS = [
    "番号",
    "日時（JST）",
    "実行者",
    "実行者（記録名）",
    "ユーザーID",
    "名簿ID",
    "ロール",
    "操作",
    "操作コード",
    "対象種別",
    "対象ID",
    "利用目的",
    "IPアドレス",
    "ブラウザ",
    "結果",
    "詳細",
    "直前ハッシュ",
    "ハッシュ",
]


@dataclass
class LogFilter:
    """What the auditor asked for; empty fields select everything."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    role: str = ""
    action: str = ""
    outcome: str = ""
    actor: str = ""
    page: int = 1
    # The text as typed, shown back in the form (a refused date stays as the auditor wrote it).
    typed: dict[str, str] = field(default_factory=dict)

    def query_args(self, **override) -> dict[str, str]:
        """The filter as URL arguments (for paging links and the CSV link)."""
        args = {k: v for k, v in self.typed.items() if v and k != "page"}
        args.update({k: str(v) for k, v in override.items()})
        return args

    def describe(self) -> dict[str, str]:
        """The filter in the audit event of a download (dates as ISO, codes as codes)."""
        out = {
            "period_from": self.date_from.isoformat() if self.date_from else "",
            "period_to": self.date_to.isoformat() if self.date_to else "",
            "role": self.role,
            "action": self.action,
            "outcome": self.outcome,
            "actor": self.actor,
        }
        return {k: v for k, v in out.items() if v}


def _date(args: Mapping[str, str], key: str, label: str, errors: list[str]) -> dt.date | None:
    text = (args.get(key) or "").strip()
    if not text:
        return None
    try:
        return jptime.parse_date(text)
    except jptime.InvalidDate as exc:
        errors.append(f"{label}: {exc}")
        return None


def parse_filter(args: Mapping[str, str]) -> tuple[LogFilter, list[str]]:
    """The filter from the list screen's query string, and what is wrong with it (Japanese,
    naming the field). Unknown arguments (FAB's own, a hand-made URL) are ignored."""
    errors: list[str] = []
    keys = ("from", "to", "role", "action", "outcome", "actor", "page")
    typed = {k: (args.get(k) or "").strip() for k in keys}
    f = LogFilter(typed=typed)
    f.date_from = _date(args, "from", "期間（開始日）", errors)
    f.date_to = _date(args, "to", "期間（終了日）", errors)
    if f.date_from and f.date_to and f.date_from > f.date_to:
        errors.append(
            f"期間: 開始日 {f.date_from:%Y/%m/%d} が終了日 {f.date_to:%Y/%m/%d} より後です"
        )
    role = typed["role"]
    if role and role != labels.NO_ROLE and role not in labels.ROLE_LABELS:
        errors.append("ロール: 一覧にないロールです。一覧から選んでください")
    else:
        f.role = role
    action = typed["action"]
    group = action[:-2] if action.endswith(".*") else None
    if action and action not in labels.ACTION_LABELS and group not in labels.CATEGORY_LABELS:
        errors.append("操作: 一覧にない操作です。一覧から選んでください")
    else:
        f.action = action
    outcome = typed["outcome"]
    if outcome and outcome not in labels.OUTCOME_LABELS:
        errors.append("結果: 成功・拒否・失敗のいずれかを選んでください")
    else:
        f.outcome = outcome
    if len(typed["actor"]) > ACTOR_MAX:
        errors.append(f"実行者: {ACTOR_MAX}文字以内で入力してください")
    else:
        f.actor = typed["actor"]
    page = typed["page"]
    if page and not (page.isascii() and page.isdigit() and 1 <= int(page) <= 10**6):
        errors.append("ページ: 1 以上の整数で指定してください")
    else:
        f.page = int(page) if page else 1
    return f, errors


def utc_range(f: LogFilter) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The JST days as UTC instants: [start of ``date_from`` JST, start of the day after
    ``date_to`` JST)."""
    start = end = None
    if f.date_from:
        start = dt.datetime.combine(f.date_from, dt.time(0), jptime.JST).astimezone(dt.UTC)
    if f.date_to:
        next_day = f.date_to + dt.timedelta(days=1)
        end = dt.datetime.combine(next_day, dt.time(0), jptime.JST).astimezone(dt.UTC)
    return start, end


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def statement(f: LogFilter) -> Select:
    """The events the filter selects, newest first."""
    query = select(AuditEvent)
    start, end = utc_range(f)
    if start is not None:
        query = query.where(AuditEvent.ts >= start)
    if end is not None:
        query = query.where(AuditEvent.ts < end)
    if f.role == labels.NO_ROLE:
        query = query.where(or_(AuditEvent.roles == "", AuditEvent.roles.is_(None)))
    elif f.role:
        # Stored as the sorted role names joined by commas.
        query = query.where(
            or_(
                AuditEvent.roles == f.role,
                AuditEvent.roles.like(f"{f.role},%"),
                AuditEvent.roles.like(f"%,{f.role}"),
                AuditEvent.roles.like(f"%,{f.role},%"),
            )
        )
    if f.action.endswith(".*"):
        query = query.where(AuditEvent.action.like(_like_escape(f.action[:-1]) + "%", escape="\\"))
    elif f.action:
        query = query.where(AuditEvent.action == f.action)
    if f.outcome:
        query = query.where(AuditEvent.outcome == f.outcome)
    if f.actor:
        query = query.where(
            func.lower(AuditEvent.actor_name).like(
                "%" + _like_escape(f.actor.lower()) + "%", escape="\\"
            )
        )
    return query.order_by(AuditEvent.seq.desc())


@dataclass
class Page:
    """One page of the filtered log, with the count a pager needs."""

    events: list[AuditEvent]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return (self.page - 1) * self.size + 1 if self.events else 0

    @property
    def last(self) -> int:
        return self.first + len(self.events) - 1 if self.events else 0


def count(session: Session, f: LogFilter) -> int:
    inner = statement(f).order_by(None).with_only_columns(AuditEvent.seq).subquery()
    return session.execute(select(func.count()).select_from(inner)).scalar_one()


def page(session: Session, f: LogFilter, size: int = PAGE_SIZE) -> Page:
    """The filter's page ``f.page``; a page past the end is empty (the pager says so)."""
    total = count(session, f)
    rows = session.execute(statement(f).limit(size).offset((f.page - 1) * size)).scalars().all()
    return Page(list(rows), total, f.page, size)


def csv_row(event: AuditEvent) -> list[str]:
    """One event as a CSV row: labelled, with the codes the chain hashes kept alongside."""
    return [
        str(event.seq),
        jptime.format_jst(event.ts, with_seconds=True),
        labels.actor_label(event.actor_name),
        event.actor_name or "",
        "" if event.actor_id is None else str(event.actor_id),
        "" if event.roster_entry_id is None else str(event.roster_entry_id),
        labels.roles_label(event.roles),
        labels.action_label(event.action),
        event.action,
        labels.object_type_label(event.object_type) if event.object_type else "",
        labels.object_ids_text(event.object_ids),
        event.purpose or "",
        event.ip or "",
        event.user_agent or "",
        labels.outcome_label(event.outcome),
        labels.details_text(event.details),
        event.prev_hash,
        event.hash,
    ]


class ExportRefused(ValueError):
    """The CSV cannot be made as asked (Japanese, says what to change)."""


def _rows(session: Session, f: LogFilter) -> Iterator[list[str]]:
    query = statement(f).order_by(None).order_by(AuditEvent.seq)
    for event in session.execute(query.execution_options(yield_per=2000)).scalars():
        yield csv_row(event)


def build_csv(session: Session, f: LogFilter, encoding: str = "utf-8-sig") -> tuple[bytes, int]:
    """The filtered log as CSV bytes (oldest first) and its event count; nothing recorded."""
    if encoding not in ENCODINGS:
        raise ExportRefused("文字コード: UTF-8（BOM 付き）か Shift_JIS（CP932）を選んでください")
    total = count(session, f)
    if total > MAX_CSV_EVENTS:
        raise ExportRefused(
            f"該当するイベントが {total:,} 件あります。1 回のダウンロードは {MAX_CSV_EVENTS:,} 件"
            "までです。期間を分けてダウンロードしてください"
        )
    out = io.BytesIO()
    writer = CsvWriter(out, encoding, CSV_HEADERS)
    batch: list[list[str]] = []
    try:
        for row in _rows(session, f):
            batch.append(row)
            if len(batch) >= 1000:
                writer.write_rows(batch)
                batch = []
        writer.write_rows(batch)
    except CsvWriteError as exc:
        raise ExportRefused(str(exc)) from None
    return out.getvalue(), writer.lines - 1


def file_name(f: LogFilter) -> str:
    """監査ログ_20261201-20261207.csv (the period, or 全期間)."""
    if not (f.date_from or f.date_to):
        period = "全期間"
    else:
        start = f"{f.date_from:%Y%m%d}" if f.date_from else ""
        end = f"{f.date_to:%Y%m%d}" if f.date_to else ""
        period = f"{start}-{end}"
    return f"監査ログ_{period}.csv"


def export_csv(
    session: Session, actor: Actor, f: LogFilter, encoding: str = "utf-8-sig"
) -> tuple[bytes, str]:
    """The filtered log as a download, audited (``audit.export``, committed) before it is
    handed out; (bytes, file name). ``ExportRefused`` when it cannot be made (nothing
    recorded); ``trail.AuditUnavailable`` when the event cannot be written (nothing sent)."""
    data, rows = build_csv(session, f, encoding)
    trail.record(
        session,
        actor,
        "audit.export",
        details={"criteria": f.describe(), "count": rows, "encoding": encoding},
        commit=True,
    )
    return data, file_name(f)
