"""Campaigns: the client's collection orders, their letter texts, their requests' stages, and
what the client sees of them at any time (spec 5.2-5: 収集依頼の履歴、結果等は発注者が随時
確認できる).

A campaign has a kind (役職員 with dependents: one request per household; 外部委員等: one per
person, monthly per spec 5.2-4), a deadline on the business calendar, the 利用目的 and the
client's own wording for every letter and e-mail (spec 5.2-1), stored as editable templates
with placeholders such as ``{氏名}`` and ``{リンク}``.

The stage of a request (作成 → 送付済 → 督促済 → 提出済 → 確認中 → 完了 | 不備 → 再提出 | 辞退)
is derived from the intake status and the sending state, so the public form's state machine
stays as small as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import unicodedata
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass

from flask import current_app
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.collection import letter_texts, links
from app.collection.letter_texts import DEFAULT_LETTERS, DEFAULT_PURPOSE  # noqa: F401  # campaigns.DEFAULT_PURPOSE is the name the screens and the CLI use
from app.collection.requests import create_request
from app.collection.terms import DECLINE_REASONS, DEFICIENCY_CODES, RECEIPT_ALPHABET
from app.core import fields, jptime, mynumber
from app.core.actor import Actor
from app.models import (
    Campaign,
    CampaignKind,
    Channel,
    CollectionRequest,
    CollectionRequestStatus,
    Delivery,
    LetterKind,
    LetterTemplate,
    PaperIntake,
    Person,
    PersonKind,
    Reminder,
    RequestStatus,
    Stage,
    Submission,
    SubmissionStatus,
    VerificationCase,
    utcnow,
)
from app.operations import desk
from app.platform import csvio

VIEW = "Campaigns"  # FAB permission view name (app.access.policy)
CODE_ALPHABET = RECEIPT_ALPHABET

# Placeholders a letter may use, and what they stand for.
PLACEHOLDERS = {
    "氏名": "宛先の氏名（世帯の場合は役職員本人）",
    "期限": "提出期限（督促では新しい期限）",
    "依頼コード": "申請用紙・封筒に印字する依頼コード",
    "リンク": "提出フォームのリンク（メールのみ）",
    "不備内容": "不備の内容と再提出していただく書類（不備のお知らせのみ）",
    "発注者": "発注者名",
    "受注者": "受注者名",
    "窓口電話": "お問い合わせ窓口の電話番号",
    "窓口メール": "お問い合わせ窓口のメールアドレス",
    "受付時間": "お問い合わせ窓口の受付時間",
    "取扱い": "提出内容を誰がいつ見るか、確認書類の画像をどうするか（設定から）",
}
_ALLOWED = {
    LetterKind.REQUEST_EMAIL: set(PLACEHOLDERS) - {"不備内容"},
    LetterKind.KIT_GUIDE: set(PLACEHOLDERS) - {"不備内容", "リンク"},
    LetterKind.REMINDER_EMAIL: set(PLACEHOLDERS) - {"不備内容"},
    LetterKind.REMINDER_LETTER: set(PLACEHOLDERS) - {"不備内容", "リンク"},
    LetterKind.DEFICIENCY_EMAIL: set(PLACEHOLDERS),
    LetterKind.DEFICIENCY_LETTER: set(PLACEHOLDERS) - {"リンク"},
}
_REQUIRED = {
    LetterKind.REQUEST_EMAIL: {"リンク"},
    LetterKind.REMINDER_EMAIL: {"リンク"},
    LetterKind.DEFICIENCY_EMAIL: {"リンク", "不備内容"},
    LetterKind.DEFICIENCY_LETTER: {"不備内容"},
}
_PLACEHOLDER = re.compile(r"\{([^{}\n]{1,20})\}")


class CampaignError(ValueError):
    """A Japanese message naming the field; never contains a number."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- letters ------------------------------------------------------------------------------
def check_letter(kind: str, subject: str, body: str) -> tuple[str, str]:
    """Validate a letter text: known placeholders only, the required ones present, no
    12-digit run (a template is stored and mailed in the clear)."""
    if kind not in LetterKind.ALL:
        raise CampaignError("文書の種類が不正です", "kind")
    subject = (subject or "").strip()
    body = (body or "").replace("\r\n", "\n").strip()
    if not subject:
        raise CampaignError("件名・表題: 入力してください", "subject")
    if len(subject) > 200:
        raise CampaignError("件名・表題: 200文字以内で入力してください", "subject")
    problem = fields.header_problem("件名・表題", subject)  # the subject is a mail header
    if problem:
        raise CampaignError(problem, "subject")
    if not body:
        raise CampaignError("本文: 入力してください", "body")
    if len(body) > 5000:
        raise CampaignError("本文: 5000文字以内で入力してください", "body")
    for label, text, field in (("件名・表題", subject, "subject"), ("本文", body, "body")):
        if mynumber.contains_number(text):
            raise CampaignError(mynumber.number_refusal(label), field)
        for name in _PLACEHOLDER.findall(text):
            if name not in _ALLOWED[kind]:
                raise CampaignError(
                    f"{label}: 差し込み項目「{{{name}}}」はこの文書では使えません"
                    f"（使えるもの: {'、'.join('{' + n + '}' for n in sorted(_ALLOWED[kind]))}）",
                    field,
                )
    used = set(_PLACEHOLDER.findall(subject + body))
    missing = _REQUIRED.get(kind, set()) - used
    if missing:
        raise CampaignError(
            "本文: 差し込み項目 "
            + "、".join("{" + n + "}" for n in sorted(missing))
            + " が必要です",
            "body",
        )
    return subject, body


def fill(text: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders; anything else is left as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def letter(session: Session, campaign_id: int | None, kind: str) -> tuple[str, str]:
    """The campaign's wording for a letter, or the default text."""
    if campaign_id is not None:
        row = session.execute(
            select(LetterTemplate).where(
                LetterTemplate.campaign_id == campaign_id, LetterTemplate.kind == kind
            )
        ).scalar_one_or_none()
        if row is not None:
            return row.subject, row.body
    return DEFAULT_LETTERS[kind]


def common_values(config) -> dict[str, str]:
    return {
        "発注者": config["CLIENT_NAME"],
        "受注者": config["OPERATOR_NAME"],
        "窓口電話": config["DESK_PHONE"],
        "窓口メール": config["DESK_EMAIL"],
        "受付時間": desk.DESK_HOURS,
        "取扱い": letter_texts.handling(config),
    }


def format_date(day: dt.date | None) -> str:
    if day is None:
        return ""
    weekday = "月火水木金土日"[day.weekday()]
    return f"{day.year}年{day.month}月{day.day}日（{weekday}）"


def update_letter(
    session: Session, actor: Actor, campaign: Campaign, kind: str, subject: str, body: str
) -> LetterTemplate:
    """Save the client's wording for one letter (a new version; audited)."""
    policy.require(actor, "can_letters", VIEW)
    subject, body = check_letter(kind, subject, body)
    row = session.execute(
        select(LetterTemplate).where(
            LetterTemplate.campaign_id == campaign.id, LetterTemplate.kind == kind
        )
    ).scalar_one_or_none()
    if row is None:
        row = LetterTemplate(campaign_id=campaign.id, kind=kind, version=0)
        session.add(row)
    row.subject, row.body = subject, body
    row.version = (row.version or 0) + 1
    row.updated_by, row.updated_at = actor.name, utcnow()
    session.flush()
    trail.record(
        session,
        actor,
        "campaign.letter_update",
        object_type="campaign",
        object_ids=[campaign.id],
        details={"kind": kind, "version": row.version},
    )
    return row


# -- campaigns ----------------------------------------------------------------------------
def _deadline(value: dt.date | str | None) -> tuple[dt.date, bool]:
    if value is None or value == "":
        raise CampaignError("提出期限: 入力してください", "deadline")
    if isinstance(value, str):
        try:
            value = jptime.parse_date(value)
        except jptime.InvalidDate as exc:
            raise CampaignError(f"提出期限: {exc}", "deadline") from None
    if value < jptime.today_jst():
        raise CampaignError("提出期限: 過去の日付は指定できません", "deadline")
    moved = jptime.next_business_day(value)
    return moved, moved != value


def create_campaign(
    session: Session,
    actor: Actor,
    *,
    name: str,
    kind: str,
    deadline: dt.date | str | None,
    purpose_text: str,
    month: str | None = None,
    four_eyes: bool | None = None,
) -> Campaign:
    """A new campaign with the default letter texts (the client edits them). A deadline on a
    holiday moves to the next business day (行政機関の休日に関する法律 第2条). Audited; only
    the client's staff order a collection (a refusal is audited too)."""
    policy.require_audited(
        session, actor, "can_add", VIEW, "campaign.create", object_type="campaign"
    )
    name = (name or "").strip()
    if not name:
        raise CampaignError("名称: 入力してください", "name")
    if len(name) > 200:
        raise CampaignError("名称: 200文字以内で入力してください", "name")
    if mynumber.contains_number(name):
        raise CampaignError(mynumber.number_refusal("名称"), "name")
    if kind not in CampaignKind.ALL:
        raise CampaignError("対象: 役職員 または 外部委員等 を選んでください", "kind")
    month = (month or "").strip() or None
    if month is not None:
        match = re.fullmatch(r"(\d{4})-(\d{2})", month)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise CampaignError("対象月: YYYY-MM の形式で入力してください（例: 2026-04）", "month")
    if kind == CampaignKind.EXTERNAL and month is None:
        raise CampaignError(
            "対象月: 外部委員等は月次で収集します。対象月を入力してください", "month"
        )
    day, moved = _deadline(deadline)
    purpose = (purpose_text or "").strip()
    if not purpose:
        raise CampaignError("利用目的: 入力してください", "purpose_text")
    if len(purpose) > 2000:
        raise CampaignError("利用目的: 2000文字以内で入力してください", "purpose_text")
    if mynumber.contains_number(purpose):
        raise CampaignError(mynumber.number_refusal("利用目的"), "purpose_text")
    if four_eyes is None:
        four_eyes = bool(current_app.config.get("COLLECTION_FOUR_EYES"))
    campaign = Campaign(
        name=name,
        kind=kind,
        month=month,
        deadline=day,
        purpose_text=purpose,
        four_eyes=four_eyes,
        status="open",
        created_by=actor.name,
    )
    session.add(campaign)
    session.flush()
    for kind_, (subject, body) in DEFAULT_LETTERS.items():
        session.add(
            LetterTemplate(
                campaign_id=campaign.id,
                kind=kind_,
                subject=subject,
                body=body,
                version=1,
                updated_by=actor.name,
            )
        )
    trail.record(
        session,
        actor,
        "campaign.create",
        object_type="campaign",
        object_ids=[campaign.id],
        details={
            "kind": kind,
            "deadline": day.isoformat(),
            "deadline_moved": moved,
            "four_eyes": four_eyes,
        },
    )
    session.flush()
    return campaign


def _request_code(session: Session) -> str:
    for _ in range(20):
        chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        code = f"R-{chars[:4]}-{chars[4:]}"
        taken = session.execute(
            select(CollectionRequest.id).where(CollectionRequest.request_code == code)
        ).first()
        if taken is None:
            return code
    raise RuntimeError("依頼コードを採番できません")  # pragma: no cover - 32^8 codes


def normalize_code(text: str) -> str:
    """What an operator types from a returned form: any case, spaces, full-width."""
    raw = re.sub(r"[\s\-‐－ー]", "", unicodedata.normalize("NFKC", text or "")).upper()
    if raw.startswith("R"):
        raw = raw[1:]
    return f"R-{raw[:4]}-{raw[4:]}" if len(raw) == 8 else ""


def issue_request(
    session: Session, keyring, actor: Actor, campaign: Campaign, person: Person, channel: str
) -> CollectionRequest:
    """One campaign request: a derived token (``app.collection.links``), a request code for the kit, the
    campaign's deadline, and a link that stays usable for the grace period after it."""
    if channel not in Channel.ALL:
        raise CampaignError("送付方法が不正です", "channel")
    if channel == Channel.EMAIL and person.kind == PersonKind.EXTERNAL:
        # Spec 5.2-3: e-mail instead of the kit is for 役職員 and their dependents only.
        raise CampaignError("外部委員等には収集キットを郵送します（メールは使えません）", "channel")
    grace = int(current_app.config.get("COLLECTION_LINK_GRACE_DAYS", 60))
    expires = dt.datetime.combine(
        campaign.deadline + dt.timedelta(days=grace), dt.time(23, 59), tzinfo=jptime.JST
    )
    req, _token = create_request(
        session, actor, person, purpose_text=campaign.purpose_text, expires_at=expires
    )
    links.assign(keyring, req)
    req.campaign_id = campaign.id
    req.channel = channel
    req.deadline = campaign.deadline
    req.request_code = _request_code(session)
    session.flush()
    return req


# -- stages -------------------------------------------------------------------------------
def stage(req: CollectionRequest, resubmitted: bool = False) -> str:
    """The client's stage of a request (see module docstring)."""
    status = req.status
    if status == RequestStatus.ISSUED:
        if req.reminder_count:
            return Stage.REMINDED
        return Stage.SENT if req.sent_at else Stage.CREATED
    if status == RequestStatus.SUBMITTED:
        return Stage.RESUBMITTED if resubmitted else Stage.SUBMITTED
    return {
        RequestStatus.VERIFYING: Stage.VERIFYING,
        RequestStatus.DEFICIENT: Stage.DEFICIENT,
        RequestStatus.COMPLETED: Stage.COMPLETED,
        RequestStatus.DECLINED: Stage.DECLINED,
        RequestStatus.REFUSED: Stage.REFUSED,
        RequestStatus.CANCELLED: Stage.CANCELLED,
    }.get(status, Stage.CANCELLED)


def _resubmitted_ids(session: Session, request_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Requests whose newest received submission is a resubmission (seq > 1)."""
    if not request_ids:
        return set()
    out: set[uuid.UUID] = set()
    for start in range(0, len(request_ids), 500):
        chunk = request_ids[start : start + 500]
        rows = session.execute(
            select(Submission.request_id, func.max(Submission.seq))
            .where(
                Submission.request_id.in_(chunk),
                Submission.status != SubmissionStatus.DRAFT,
            )
            .group_by(Submission.request_id)
        ).all()
        out |= {rid for rid, seq in rows if seq and seq > 1}
    return out


def stages(session: Session, requests: list[CollectionRequest]) -> dict[uuid.UUID, str]:
    resub = _resubmitted_ids(
        session, [r.id for r in requests if r.status == RequestStatus.SUBMITTED]
    )
    return {r.id: stage(r, r.id in resub) for r in requests}


def campaign_requests(session: Session, campaign_id: int) -> list[CollectionRequest]:
    """The campaign's requests (replaced ones included: they are history too)."""
    return list(
        session.execute(
            select(CollectionRequest)
            .where(CollectionRequest.campaign_id == campaign_id)
            .order_by(CollectionRequest.created_at, CollectionRequest.request_code)
        ).scalars()
    )


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Requests per stage, every stage present (zeros included)."""
    reqs = campaign_requests(session, campaign_id)
    tally = Counter(stages(session, reqs).values())
    return {s: tally.get(s, 0) for s in Stage.ALL}


def overdue(
    session: Session, campaign_id: int, today: dt.date | None = None
) -> list[CollectionRequest]:
    """Not submitted and past the deadline (the list the client chases with us)."""
    today = today or jptime.today_jst()
    return list(
        session.execute(
            select(CollectionRequest)
            .where(
                CollectionRequest.campaign_id == campaign_id,
                CollectionRequest.status == RequestStatus.ISSUED,
                CollectionRequest.deadline < today,
            )
            .order_by(CollectionRequest.deadline, CollectionRequest.request_code)
        ).scalars()
    )


# -- progress per day (server-side SVG: no third-party origin, no script) ----------------
@dataclass(frozen=True)
class DayPoint:
    day: dt.date
    sent: int
    submitted: int
    completed: int


def progress(session: Session, campaign: Campaign, today: dt.date | None = None) -> list[DayPoint]:
    """Cumulative requests sent, submitted (first submission) and completed, per JST day."""
    today = today or jptime.today_jst()
    rows = session.execute(
        select(
            CollectionRequestStatus.request_id,
            CollectionRequestStatus.status,
            CollectionRequestStatus.at,
        )
        .join(CollectionRequest, CollectionRequest.id == CollectionRequestStatus.request_id)
        .where(
            CollectionRequest.campaign_id == campaign.id,
            CollectionRequestStatus.status.in_(("sent", "submitted", "completed")),
        )
    ).all()
    first: dict[tuple[str, uuid.UUID], dt.date] = {}
    for rid, status, at in rows:
        day = jptime.to_jst(at).date()
        key = (status, rid)
        if key not in first or day < first[key]:
            first[key] = day
    per_day: dict[str, Counter] = defaultdict(Counter)
    for (status, _rid), day in first.items():
        per_day[status][day] += 1
    start = jptime.to_jst(campaign.created_at).date()
    end = max([today, *[d for c in per_day.values() for d in c]]) if per_day else today
    if (end - start).days > 400:  # a long campaign: the last 400 days are shown
        start = end - dt.timedelta(days=400)
    points = []
    totals = Counter()
    earlier = {s: sum(n for d, n in c.items() if d < start) for s, c in per_day.items()}
    totals.update(earlier)
    day = start
    while day <= end:
        for status in ("sent", "submitted", "completed"):
            totals[status] += per_day[status].get(day, 0)
        points.append(DayPoint(day, totals["sent"], totals["submitted"], totals["completed"]))
        day += dt.timedelta(days=1)
    return points


def progress_svg(points: list[DayPoint], total: int, deadline: dt.date | None = None) -> str:
    """A line chart of the cumulative counts, as a self-contained SVG element: integer ticks,
    a marker on each day's value, the deadline as a dashed line."""
    width, height, left, bottom, top, right = 720, 260, 48, 36, 16, 12
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max([total, 1, *[p.sent for p in points]])
    step = max(1, -(-highest // 4))
    top_value = step * -(-highest // step)
    n = max(len(points) - 1, 1)

    def x_of(i: int) -> float:
        return left + (plot_w * i / n if len(points) > 1 else plot_w / 2)

    def y_of(value: int) -> float:
        return top + plot_h * (1 - value / top_value)

    series = (
        ("sent", "送付済", "#1f77b4"),
        ("submitted", "提出済", "#ff7f0e"),
        ("completed", "完了", "#2ca02c"),
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="日別の進捗（累計）" '
        f'class="mnv-chart">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#ccc"/>',
    ]
    for value in range(0, top_value + 1, step):
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{value}</text>"
        )
    if points:
        for i in sorted({0, len(points) // 2, len(points) - 1}):
            parts.append(
                f'<text x="{x_of(i):.1f}" y="{height - 12}" font-size="11" '
                f'text-anchor="middle">{points[i].day:%m/%d}</text>'
            )
        if deadline is not None and points[0].day <= deadline <= points[-1].day:
            x = x_of((deadline - points[0].day).days)
            parts.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
                'stroke="#b00" stroke-dasharray="4 3"/>'
                f'<text x="{x + 3:.1f}" y="{top + plot_h - 4}" font-size="11" fill="#b00">期限</text>'
            )
        for key, label, color in series:
            coords = " ".join(
                f"{x_of(i):.1f},{y_of(getattr(p, key)):.1f}" for i, p in enumerate(points)
            )
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}">'
                f"<title>{escape(label)}</title></polyline>"
            )
            last = points[-1]
            parts.append(
                f'<circle cx="{x_of(len(points) - 1):.1f}" cy="{y_of(getattr(last, key)):.1f}" '
                f'r="3.5" fill="{color}"><title>{escape(label)} {getattr(last, key)}</title>'
                "</circle>"
            )
    for i, (_key, label, color) in enumerate(series):
        x = left + 8 + i * 90
        parts.append(
            f'<rect x="{x}" y="{top + 6}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="{top + 15}" font-size="11">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- a request's full timeline -------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    label: str
    actor: str
    detail: str


def timeline(session: Session, req: CollectionRequest) -> list[TimelineEntry]:
    """Every step of a request: status changes and events with their actors, deliveries with
    their attempts, reminders, paper envelopes, verification decisions. No number, ever."""
    out: list[TimelineEntry] = []
    for h in req.history:
        label = "作成（リンク発行）" if h.status == RequestStatus.ISSUED else h.label
        detail = h.note or ""
        if h.reasons:
            texts = [
                DEFICIENCY_CODES.get(r.get("code"), (None,))[0]
                or DECLINE_REASONS.get(r.get("code"))
                or REFUSAL_REASONS.get(r.get("code"))
                or r.get("code", "")
                for r in h.reasons
            ]
            detail = "／".join(t for t in [*texts, detail] if t)
        out.append(TimelineEntry(h.at, label, h.actor_name, detail))
    for d in session.execute(select(Delivery).where(Delivery.request_id == req.id)).scalars():
        text = f"{Channel.LABELS.get(d.channel, d.channel)}・{d.status_label}"
        if d.attempts:
            text += f"（試行 {d.attempts} 回）"
        if d.last_error and d.status != "sent":
            text += f" {d.last_error}"
        out.append(TimelineEntry(d.created_at, f"{d.kind_label}の送付準備", "system", text))
    for r in session.execute(select(Reminder).where(Reminder.request_id == req.id)).scalars():
        out.append(
            TimelineEntry(
                r.created_at,
                f"督促の決定（第{r.seq}回）",
                r.created_by,
                f"{format_date(r.run_date)}の督促処理・{Channel.LABELS.get(r.channel, r.channel)}",
            )
        )
    for p in session.execute(select(PaperIntake).where(PaperIntake.request_id == req.id)).scalars():
        out.append(
            TimelineEntry(
                p.recorded_at,
                "郵送書類の受付",
                p.recorded_by,
                f"到着日 {format_date(p.received_on)} 追跡番号 {p.tracking_number or 'なし'}"
                f"・{p.status_label}",
            )
        )
    for c in session.execute(
        select(VerificationCase).where(VerificationCase.request_id == req.id)
    ).scalars():
        out.append(TimelineEntry(c.claimed_at, "確認の担当", c.claimed_by, c.status_label))
        if c.decided_at:
            out.append(
                TimelineEntry(
                    c.decided_at,
                    f"確認結果: {c.decision_label}",
                    c.decided_by or "",
                    f"一次確認 {c.checked_by}" if c.checked_by else "",
                )
            )
    return sorted(out, key=lambda e: jptime.to_jst(e.at))


REFUSAL_REASONS = {
    "identity_unconfirmed": "本人確認ができない",
    "not_target": "収集の対象ではない（退職・扶養から外れた等）",
    "duplicate": "他の依頼で提出済み",
    "other": "その他",
}


# -- CSV of statuses for the client (no numbers) --------------------------------------------
CSV_HEADER = [
    "依頼コード",
    "区分",
    "職員番号・委員番号",
    "氏名",
    "送付方法",
    "提出期限",
    "状態",
    "送付日（JST）",
    "督促回数",
    "提出日（JST）",
    "完了日（JST）",
    "不備・不受理の理由",
]


def status_csv(session: Session, actor: Actor, campaign: Campaign) -> bytes:
    """Every request of a campaign with its stage and dates, UTF-8 with BOM. Names are in it,
    numbers never; the download is audited with the request count."""
    policy.require(actor, "can_export", VIEW)
    reqs = campaign_requests(session, campaign.id)
    trail.record(
        session,
        actor,
        "campaign.status_export",
        object_type="campaign",
        object_ids=[campaign.id],
        details={"requests": len(reqs)},
        commit=True,
    )
    labels = stages(session, reqs)
    first: dict[tuple[uuid.UUID, str], dt.datetime] = {}
    reasons: dict[uuid.UUID, str] = {}
    ids = [r.id for r in reqs]
    for start in range(0, len(ids), 500):
        for h in session.execute(
            select(CollectionRequestStatus)
            .where(CollectionRequestStatus.request_id.in_(ids[start : start + 500]))
            .order_by(CollectionRequestStatus.id)
        ).scalars():
            first.setdefault((h.request_id, h.status), h.at)
            if h.status in (RequestStatus.DEFICIENT, RequestStatus.REFUSED) and h.reasons:
                reasons[h.request_id] = "／".join(
                    (
                        DEFICIENCY_CODES.get(r.get("code"), (None,))[0]
                        or REFUSAL_REASONS.get(r.get("code"))
                        or r.get("code", "")
                    )
                    for r in h.reasons
                )
    rows = []

    def day(value: dt.datetime | None) -> str:
        return jptime.to_jst(value).strftime("%Y/%m/%d") if value else ""

    for r in reqs:
        person = r.person
        rows.append(
            [
                r.request_code or "",
                person.kind_label,
                person.code or "",
                person.name,
                Channel.LABELS.get(r.channel or "", ""),
                r.deadline.strftime("%Y/%m/%d") if r.deadline else "",
                Stage.LABELS[labels[r.id]],
                day(r.sent_at),
                str(r.reminder_count or 0),
                day(first.get((r.id, RequestStatus.SUBMITTED))),
                day(first.get((r.id, RequestStatus.COMPLETED))),
                reasons.get(r.id, ""),
            ]
        )
    return csvio.csv_bytes(CSV_HEADER, rows)


def summary(session: Session, campaign: Campaign) -> dict:
    """Counts for the list screen."""
    c = counts(session, campaign.id)
    total = sum(v for k, v in c.items() if k != Stage.CANCELLED)
    return {"total": total, "counts": c, "completed": c[Stage.COMPLETED]}


def to_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
