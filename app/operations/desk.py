"""問合せ窓口 (spec 6-2/3): business hours, the inquiry lifecycle, and response figures.

Hours: Monday to Friday 10:00–17:00 JST, except 行政機関の休日 (national holidays and
12/29–1/3, ``app.core.jptime.is_business_day``). The same rules give what the contact page shows
(open now? when does it reopen?) and the response times of the monthly report, counted in
business hours only: an inquiry received on Friday at 16:00 and answered on Monday at 11:00
took two business hours. One business day is the desk's seven hours.

Lifecycle: 受付 (received, from the public form or the portal) → 対応中 (an Operator took
it or was assigned) → 回答済 (answered; the first answer sets ``first_response_at``) → 完了
(closed). Every step is a history row (who, when, what) and an audit event. A body or a
response that contains a valid My Number (or any 12-digit run) is refused before anything is
stored: inquiries are kept in the clear and must never hold a number.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core import fields, jptime, mynumber
from app.core.actor import Actor
from app.core.fields import has_hidden_characters
from app.models import (
    Inquiry,
    InquiryAction,
    InquirySource,
    InquiryStatus,
    VaultUser,
    utcnow,
)
from app.platform import mail, outbox
from app.settings import missing_identity

OPEN_AT = dt.time(10, 0)
CLOSE_AT = dt.time(17, 0)
BUSINESS_DAY = dt.timedelta(hours=7)  # one business day of the desk
# The hours in words, the one text the contact page, letters, e-mails and the portal print;
# written from the same times the desk's figures count.
DESK_HOURS = f"平日（月〜金）{OPEN_AT:%H:%M}〜{CLOSE_AT:%H:%M}（土日祝日・12月29日〜1月3日を除く）"

# Permissions (app.access.policy): Operators work the desk; ClientStaff file and follow their own.
VIEW = "Inquiries"
CLIENT_VIEW = "ClientInquiries"

CATEGORIES = {
    "how_to": "提出方法について",
    "documents": "確認書類について",
    "link": "リンク・QRコード・ロックについて",
    "decline": "提出しない場合について",
    "collection": "収集の依頼・進捗について",
    "report": "報告書・請求について",
    "other": "その他",
}
SUBJECT_CATEGORIES = ("how_to", "documents", "link", "decline", "other")
CLIENT_CATEGORIES = ("collection", "report", "other")

# Allowed status changes; 完了 is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    InquiryStatus.RECEIVED: frozenset(
        {InquiryStatus.IN_PROGRESS, InquiryStatus.ANSWERED, InquiryStatus.CLOSED}
    ),
    InquiryStatus.IN_PROGRESS: frozenset({InquiryStatus.ANSWERED, InquiryStatus.CLOSED}),
    InquiryStatus.ANSWERED: frozenset({InquiryStatus.IN_PROGRESS, InquiryStatus.CLOSED}),
    InquiryStatus.CLOSED: frozenset(),
}


class DeskError(ValueError):
    """A Japanese message naming the field and the reason; ``field`` is the form field."""

    def __init__(self, message: str, field: str | None = None, *, number: bool = False):
        super().__init__(message)
        self.field = field
        self.number = number  # the text held a My Number: the refusal is audit evidence


# -- business hours ---------------------------------------------------------------------
def _jst(moment: dt.datetime) -> dt.datetime:
    """Any aware time (or naive UTC from SQLite) in JST."""
    local = jptime.to_jst(moment)
    if local is None:  # a missing time is a caller's bug, never a desk-hours answer
        raise ValueError("時刻が指定されていません")
    return local


def _window(day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
    """The desk's hours on ``day`` (JST), or None when it is not a business day."""
    if not jptime.is_business_day(day):
        return None
    return (
        dt.datetime.combine(day, OPEN_AT, tzinfo=jptime.JST),
        dt.datetime.combine(day, CLOSE_AT, tzinfo=jptime.JST),
    )


def is_open(moment: dt.datetime) -> bool:
    """Whether the desk is staffed at ``moment`` (opening time included, closing excluded)."""
    local = _jst(moment)
    window = _window(local.date())
    return window is not None and window[0] <= local < window[1]


def next_opening(moment: dt.datetime) -> dt.datetime:
    """When the desk next opens after ``moment`` (JST); ``moment`` itself while it is open."""
    local = _jst(moment)
    if is_open(local):
        return local
    day = local.date()
    window = _window(day)
    if window is None or local >= window[1]:
        day = jptime.next_business_day(day + dt.timedelta(days=1))
    return dt.datetime.combine(day, OPEN_AT, tzinfo=jptime.JST)


def business_elapsed(start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Desk hours between two moments: only 10:00–17:00 JST of business days count."""
    begin, finish = _jst(start), _jst(end)
    if finish <= begin:
        return dt.timedelta(0)
    total = dt.timedelta(0)
    day = begin.date()
    while day <= finish.date():
        window = _window(day)
        if window is not None:
            lo, hi = max(begin, window[0]), min(finish, window[1])
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total


@dataclass(frozen=True)
class DeskState:
    """What the contact page shows now."""

    hours: str
    open_now: bool
    reopens_at: dt.datetime | None  # None while open

    @property
    def reopens_text(self) -> str:
        if self.reopens_at is None:
            return ""
        weekday = "月火水木金土日"[self.reopens_at.weekday()]
        return self.reopens_at.strftime(f"%-m月%-d日（{weekday}）%-H:%M")


def state(moment: dt.datetime | None = None) -> DeskState:
    moment = moment or utcnow()
    opened = is_open(moment)
    return DeskState(DESK_HOURS, opened, None if opened else next_opening(moment))


# -- text checks ----------------------------------------------------------------------------
def clean_text(value: str | None, label: str, field: str, max_len: int) -> str:
    """Trimmed, required text without any My Number (nothing is stored otherwise)."""
    text = (value or "").strip()
    if not text:
        raise DeskError(f"{label}: 入力してください", field)
    if len(text) > max_len:
        raise DeskError(f"{label}: {max_len}文字以内で入力してください", field)
    # Line breaks and tabs are text; NUL (PostgreSQL refuses it), other control characters,
    # bidi overrides and zero-width characters (which could hide a number) are not.
    if has_hidden_characters(text.replace("\r", "").replace("\n", "").replace("\t", "")):
        raise DeskError(f"{label}: 使えない制御文字が含まれています", field)
    if mynumber.contains_number(text):
        raise DeskError(mynumber.number_refusal(label), field, number=True)
    return text


# -- the lifecycle --------------------------------------------------------------------------
def _history(
    session: Session,
    item: Inquiry,
    actor: Actor,
    action: str,
    before: str | None,
    note: str | None = None,
) -> None:
    session.add(
        InquiryAction(
            inquiry_id=item.id,
            actor_id=actor.user_id,
            actor_name=actor.name,
            action=action,
            from_status=before,
            to_status=item.status,
            note=note,
        )
    )
    trail.record(
        session,
        actor,
        f"inquiry.{action}",
        object_type="inquiry",
        object_ids=[item.id],
        details={"from": before, "to": item.status, "source": item.source},
    )


def receive_public(
    session: Session, actor: Actor, *, name: str, contact: str, category: str, body: str
) -> Inquiry:
    """An inquiry from the public contact page (a subject). Commits."""
    if category not in SUBJECT_CATEGORIES:
        raise DeskError("お問い合わせの種類: 選んでください", "category")
    for label, field, value in (
        ("お名前", "name", name),
        ("ご連絡先（メールアドレスまたは電話番号）", "contact", contact),
    ):
        problem = fields.header_problem(label, (value or "").strip())  # one line each
        if problem:
            raise DeskError(problem, field)
    try:
        cleaned = {
            "name": clean_text(name, "お名前", "name", 100),
            "contact": clean_text(
                contact, "ご連絡先（メールアドレスまたは電話番号）", "contact", 200
            ),
            "body": clean_text(body, "お問い合わせ内容", "body", 2000),
        }
    except DeskError as exc:
        if exc.number:  # evidence that a number was sent; the field's name, never its text
            session.rollback()
            trail.record(
                session,
                actor,
                "inquiry.refused",
                object_type="inquiry",
                outcome="denied",
                details={"reason": "number_in_text", "field": exc.field},
                commit=True,
            )
        raise
    item = Inquiry(
        source=InquirySource.SUBJECT,
        category=category,
        status=InquiryStatus.RECEIVED,
        **cleaned,
    )
    session.add(item)
    session.flush()
    _history(session, item, actor, "receive", None)
    session.commit()
    return item


def file_from_portal(session: Session, actor: Actor, *, category: str, body: str) -> Inquiry:
    """A ClientStaff user's inquiry from the portal; they follow it there. Commits."""
    policy.require(actor, "can_add", CLIENT_VIEW)
    if category not in CLIENT_CATEGORIES:
        raise DeskError("お問い合わせの種類: 選んでください", "category")
    user = session.get(VaultUser, actor.user_id) if actor.user_id else None
    item = Inquiry(
        source=InquirySource.CLIENT,
        name=actor.name,
        contact=(user.email if user and user.email else actor.name)[:200],
        category=category,
        body=clean_text(body, "お問い合わせ内容", "body", 2000),
        status=InquiryStatus.RECEIVED,
        filed_by_id=actor.user_id,
    )
    session.add(item)
    session.flush()
    _history(session, item, actor, "receive", None)
    session.commit()
    return item


def _load_for_work(session: Session, actor: Actor, inquiry_id: int) -> Inquiry:
    policy.require(actor, "can_edit", VIEW)
    item = session.get(Inquiry, inquiry_id, with_for_update=True)
    if item is None:
        raise DeskError("お問い合わせが見つかりません")
    return item


def _move(item: Inquiry, to: str) -> str:
    before = item.status
    if to != before and to not in TRANSITIONS.get(before, frozenset()):
        raise DeskError(
            f"状態: 「{InquiryStatus.LABELS.get(before, before)}」から"
            f"「{InquiryStatus.LABELS.get(to, to)}」には変更できません"
        )
    item.status = to
    return before


def operators(session: Session) -> list[VaultUser]:
    """Accounts an inquiry can be assigned to: Operators on the approved roster."""
    users = session.execute(select(VaultUser).order_by(VaultUser.username)).scalars()
    return [
        u
        for u in users
        if u.active
        and any(r.name == policy.OPERATOR for r in u.roles)
        and u.roster_entry is not None
        and u.roster_entry.is_approved
    ]


def assign(session: Session, actor: Actor, inquiry_id: int, assignee_id: int) -> Inquiry:
    """Give the inquiry to an Operator; a 受付 inquiry becomes 対応中. Commits."""
    item = _load_for_work(session, actor, inquiry_id)
    if item.status == InquiryStatus.CLOSED:
        raise DeskError("完了したお問い合わせは割り当てられません")
    target = next((u for u in operators(session) if u.id == assignee_id), None)
    if target is None:
        raise DeskError("担当者: 名簿で承認済みの事務取扱担当者を選んでください", "assignee_id")
    item.assignee_id = target.id
    item.assignee_name = f"{target.last_name} {target.first_name}".strip() or target.username
    before = item.status
    if item.status == InquiryStatus.RECEIVED:
        _move(item, InquiryStatus.IN_PROGRESS)
    _history(session, item, actor, "assign", before, note=f"担当: {item.assignee_name}")
    session.commit()
    return item


def respond(session: Session, actor: Actor, inquiry_id: int, response: str) -> Inquiry:
    """Record the answer (回答済); the first answer fixes ``first_response_at``. Commits."""
    item = _load_for_work(session, actor, inquiry_id)
    text = clean_text(response, "回答", "response", 4000)
    before = _move(item, InquiryStatus.ANSWERED)
    item.response = text
    now = utcnow()
    if item.first_response_at is None:
        item.first_response_at = now
    if item.assignee_id is None and actor.user_id is not None:
        item.assignee_id, item.assignee_name = actor.user_id, actor.name
    item.handled_by, item.handled_at = actor.name, now
    _history(session, item, actor, "respond", before)
    if answer_channel(item) == "mail":
        # The answer goes to the subject through the outbox, in this transaction (ids only).
        session.flush()
        answered = len([a for a in item.actions if a.action == "respond"])
        outbox.add(session, SEND_ANSWER, item.id, answered)
    session.commit()
    return item


# -- the answer to the subject --------------------------------------------------------------
SEND_ANSWER = "app.jobs.outbox.send_inquiry_answer"  # the job, by name (app.platform.queue)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def answer_channel(item: Inquiry) -> str:
    """How the answer reaches who asked: ``mail`` (a subject who gave an e-mail address),
    ``phone`` (a subject who gave a phone number: the desk calls back), ``portal`` (the
    client's staff read it on their inquiry screen)."""
    if item.source != InquirySource.SUBJECT:
        return "portal"
    return "mail" if _EMAIL.match((item.contact or "").strip()) else "phone"


ANSWER_CHANNEL_TEXT = {
    "mail": "回答を記録すると、お問い合わせの方（{contact}）にメールで送られます。",
    "phone": "連絡先が電話番号のため、回答はメールでは送られません。電話（{contact}）で回答してください。",
    "portal": "回答は発注者担当者のポータル（窓口への問合せ）に表示されます。メールでは送られません。",
}


def answer_key(item: Inquiry) -> str | None:
    """The outbox key of the latest answer's mail (None when the answer is not mailed)."""
    if answer_channel(item) != "mail":
        return None
    answered = len([a for a in item.actions if a.action == "respond"])
    return outbox.key_for(SEND_ANSWER, item.id, answered)


def answer_mail(item: Inquiry, config) -> mail.Mail:
    """The answer as an e-mail: the name, the category and the answer; never the question
    (it may hold what the subject should not have sent) and never a number (refused when
    the answer was recorded, and again by ``app.platform.mail``)."""
    body = (
        f"{item.name} 様\n\n"
        f"{config['CLIENT_NAME']}のマイナンバー収集について、お問い合わせいただいた件"
        f"（{CATEGORIES.get(item.category, item.category)}）にご回答いたします。\n\n"
        f"{item.response}\n\n"
        "このメールは送信専用です。ご不明な点は下記の窓口までお問い合わせください。\n"
        f"{config['OPERATOR_NAME']} マイナンバー収集 問い合わせ窓口\n"
        f"電話 {config['DESK_PHONE']}（{DESK_HOURS}）\n"
        f"メール {config['DESK_EMAIL']}\n"
    )
    return mail.Mail([item.contact.strip()], f"お問い合わせへの回答（受付番号 {item.id}）", body)


def send_answer(session: Session, config, inquiry_id: int, answered: int) -> str:
    """Mail the ``answered``-th answer of an inquiry, once (a history row marks it sent)."""
    item = session.get(Inquiry, inquiry_id)
    if item is None or answer_channel(item) != "mail" or not item.response:
        return "not_mailable"
    marker = f"{answered} 回目の回答"
    if any(a.action == "mail" and a.note == marker for a in item.actions):
        return "already_sent"
    job = Actor.system("job:mail")
    missing = missing_identity(config)
    if missing:
        _history(
            session,
            item,
            job,
            "mail_failed",
            item.status,
            note="設定がありません: " + "、".join(missing),
        )
        session.commit()
        return "not_configured"
    try:
        mail.send_from_app(answer_mail(item, config))
    except (mail.MailError, mail.MailHeaderRefused, mail.MailContainsNumber) as exc:
        _history(session, item, job, "mail_failed", item.status, note=str(exc)[:300])
        session.commit()
        return "failed"
    _history(session, item, job, "mail", item.status, note=marker)
    session.commit()
    return "sent"


def close(session: Session, actor: Actor, inquiry_id: int, note: str | None = None) -> Inquiry:
    """完了: nothing more to do. Commits."""
    item = _load_for_work(session, actor, inquiry_id)
    remark = (note or "").strip() or None
    if remark:
        remark = clean_text(remark, "メモ", "note", 1000)
    before = _move(item, InquiryStatus.CLOSED)
    item.closed_at = utcnow()
    item.handled_by, item.handled_at = actor.name, item.closed_at
    _history(session, item, actor, "close", before, note=remark)
    session.commit()
    return item


def reopen(session: Session, actor: Actor, inquiry_id: int) -> Inquiry:
    """回答済 → 対応中 when the asker follows up. Commits."""
    item = _load_for_work(session, actor, inquiry_id)
    if item.status != InquiryStatus.ANSWERED:
        raise DeskError("回答済のお問い合わせのみ再対応にできます")
    before = _move(item, InquiryStatus.IN_PROGRESS)
    _history(session, item, actor, "reopen", before)
    session.commit()
    return item


def desk_list(session: Session, actor: Actor, status: str | None = None) -> list[Inquiry]:
    """The Operators' list, open ones first by age."""
    policy.require(actor, "can_list", VIEW)
    query = select(Inquiry).order_by(Inquiry.received_at.desc())
    if status:
        query = query.where(Inquiry.status == status)
    return list(session.execute(query.limit(500)).scalars())


def own_inquiries(session: Session, actor: Actor) -> list[Inquiry]:
    """What a ClientStaff user filed, with the answers."""
    policy.require(actor, "can_list", CLIENT_VIEW)
    return list(
        session.execute(
            select(Inquiry)
            .where(Inquiry.filed_by_id == actor.user_id, Inquiry.source == InquirySource.CLIENT)
            .order_by(Inquiry.received_at.desc())
        ).scalars()
    )


def own_inquiry(session: Session, actor: Actor, inquiry_id: int) -> Inquiry:
    policy.require(actor, "can_show", CLIENT_VIEW)
    item = session.get(Inquiry, inquiry_id)
    if item is None or item.source != InquirySource.CLIENT or item.filed_by_id != actor.user_id:
        raise DeskError("お問い合わせが見つかりません")
    return item


# -- figures for the monthly report ---------------------------------------------------------
@dataclass(frozen=True)
class ResponseFigures:
    """One month of the desk, for the 利用実績報告書.

    ``answered`` counts first answers given in the month; the response times are those of
    these inquiries, from receipt to first answer, in desk hours; ``within_one_business_day``
    is the share of them answered within seven desk hours (None when nothing was answered).
    ``open_at_month_end`` counts inquiries received by month end and not closed by then.
    """

    month: str
    received: int
    answered: int
    open_at_month_end: int
    median_response_hours: float | None
    max_response_hours: float | None
    within_one_business_day: float | None


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """``YYYY-MM`` → [first day 00:00 JST, next month's first day 00:00 JST)."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        start = dt.datetime(year, mon, 1, tzinfo=jptime.JST)
    except ValueError as exc:
        raise DeskError(f"月の形式が不正です（例: 2026-11）: {month}") from exc
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=jptime.JST)
    return start, end


def _hours(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def response_figures(session: Session, month: str) -> ResponseFigures:
    """Received, answered, still open, and response times in desk hours for ``month``."""
    # Compared in UTC: stored times are UTC, and SQLite compares them as text.
    start, end = (bound.astimezone(dt.UTC) for bound in month_bounds(month))
    received = session.execute(
        select(Inquiry.id).where(Inquiry.received_at >= start, Inquiry.received_at < end)
    ).all()
    answered = session.execute(
        select(Inquiry.received_at, Inquiry.first_response_at).where(
            Inquiry.first_response_at >= start, Inquiry.first_response_at < end
        )
    ).all()
    still_open = session.execute(
        select(Inquiry.id).where(
            Inquiry.received_at < end,
            or_(Inquiry.closed_at.is_(None), and_(Inquiry.closed_at >= end)),
        )
    ).all()
    times = [business_elapsed(r, a) for r, a in answered]
    within = sum(1 for t in times if t <= BUSINESS_DAY)
    return ResponseFigures(
        month=month,
        received=len(received),
        answered=len(answered),
        open_at_month_end=len(still_open),
        median_response_hours=_hours(statistics.median(times)) if times else None,
        max_response_hours=_hours(max(times)) if times else None,
        within_one_business_day=round(within / len(times), 4) if times else None,
    )
