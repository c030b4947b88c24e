"""Intake: collection requests, the subject's sealed submission, and opening it for an operator.

This is the service API of the public form (issue 4) that the collection operations (issue 5:
campaigns, mailings, verification queue) build on. Every function takes the SQLAlchemy
session first; functions acting for a person take an ``Actor``; none of them commits unless
its docstring says so.

Issuing a link (admin side, CLI, issue 5's campaigns)::

    req, token = create_request(session, actor, person, purpose_text=..., valid_days=60)
    url = request_url(base_url, token)      # the token is shown once, only its hash is kept

The subject's side (the public form; it holds only the intake *public* key)::

    req = lookup(session, token); entry_state(req)        # "ok" | "expired" | "locked" | ...
    verify_birth_date(session, req, date, actor)          # 5 failures lock the request
    draft = draft_for(session, req, public_key)
    put_number / put_documents / add_dependent / exclude_dependent   # each part sealed at once
    progress(session, req, draft); submit(session, req, draft, public_key, actor, consented_at)
    decline(session, req, actor, code, note); subject_status(session, req)

The operator's side (admin portal; has the private key from the key ring)::

    received_submissions(session, limit)                  # metadata only, nothing opened
    opened = open_submission(session, keyring, actor, submission_id, purpose)  # audited first
    set_status(session, actor, req, RequestStatus.VERIFYING)
    mark_deficient(session, actor, req, [(ref, "number_doc_unreadable"), ...], note)
    set_status(session, actor, req, RequestStatus.COMPLETED)   # after registering the numbers
    unlock(session, actor, req)

A subject reference (``ref``) is the person's UUID as text for people listed in the request,
or ``"new1"``, ``"new2"``… for dependents the subject added (their identity is sealed too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.access import assignments, policy
from app.audit import trail
from app.collection.uploads import Document
from app.core import mynumber
from app.core.actor import Actor
from app.core.fields import has_hidden_characters
from app.models import (
    CollectionRequest,
    CollectionRequestStatus,
    Inquiry,
    Person,
    PersonKind,
    RequestStatus,
    Submission,
    SubmissionPart,
    SubmissionStatus,
    utcnow,
)
from app.platform import outbox
from app.vault import sealing

TOKEN_BYTES = 24  # 192 bits of randomness; URL-safe base64 gives 32 characters
RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
DEFICIENCY_GRACE_DAYS = 14
SEND_RECEIPT = "app.jobs.outbox.send_receipt"  # the job, by name (app.platform.queue)

INTAKE_VIEW = "Intake"  # FAB permission view name (app.access.policy)

DOC_TYPES = {
    "card_front": "マイナンバーカード（表面）",
    "card_back": "マイナンバーカード（裏面）",
    "notice_card": "通知カード（記載事項に変更がないもの）",
    "juminhyo": "住民票の写し（個人番号の記載があるもの）",
    "license": "運転免許証",
    "passport": "パスポート",
    "residence_card": "在留カード・特別永住者証明書",
    "other_photo_id": "その他の顔写真付き公的身分証明書",
    # Paper route (issue 5): the scanned application form itself, beside the ID copies.
    "application_form": "申請用紙（郵送で届いたもの）",
}
NUMBER_DOCS = ("notice_card", "juminhyo")
IDENTITY_DOCS = ("license", "passport", "residence_card", "other_photo_id")
COMBINATIONS = {
    "card": "マイナンバーカード（表面・裏面）",
    "other": "通知カードまたは住民票の写し ＋ 顔写真付きの身分証明書",
}

# Reason codes an operator gives for a deficiency, and what each reopens on the form.
DEFICIENCY_CODES: dict[str, tuple[str, tuple[str, ...]]] = {
    "number_mismatch": (
        "入力された個人番号と確認書類の番号が一致しません。番号と書類をもう一度提出してください。",
        ("number", "documents"),
    ),
    "number_invalid": (
        "個人番号を確認できませんでした。番号をもう一度入力してください。",
        ("number",),
    ),
    "number_doc_unreadable": (
        "番号確認書類の写真が読み取れません。明るい場所で、全体が写るように撮影してください。",
        ("documents",),
    ),
    "identity_doc_unreadable": (
        "身元確認書類の写真が読み取れません。明るい場所で、全体が写るように撮影してください。",
        ("documents",),
    ),
    "identity_doc_expired": (
        "身元確認書類の有効期限が切れています。有効な書類を提出してください。",
        ("documents",),
    ),
    "doc_combination": (
        "確認書類の組み合わせが要件を満たしていません。案内に沿って提出し直してください。",
        ("documents",),
    ),
    "name_mismatch": (
        "書類の氏名・生年月日がご登録の内容と一致しません。最新の書類を提出してください。",
        ("documents",),
    ),
    "notification_letter": (
        "個人番号通知書は番号確認書類として使えません。通知カード・住民票の写し・"
        "マイナンバーカードのいずれかを提出してください。",
        ("documents",),
    ),
}

DECLINE_REASONS = {
    "no_intent": "提供を希望しない",
    "not_target": "対象ではないと考える（退職・扶養から外れた等）",
    "not_available": "番号が分からない・書類が手元にない",
    "other": "その他",
}
EXCLUDE_REASONS = {
    "left_household": "扶養から外れた",
    "deceased": "死亡した",
    "other": "その他",
}
INQUIRY_CATEGORIES = {
    "how_to": "提出方法について",
    "documents": "確認書類について",
    "link": "リンク・QRコード・ロックについて",
    "decline": "提出しない場合について",
    "other": "その他",
}

# Allowed operator transitions (submission and decline are the subject's own).
_TRANSITIONS = {
    RequestStatus.VERIFYING: {RequestStatus.SUBMITTED},
    RequestStatus.COMPLETED: {RequestStatus.SUBMITTED, RequestStatus.VERIFYING},
    RequestStatus.CANCELLED: {
        RequestStatus.ISSUED,
        RequestStatus.SUBMITTED,
        RequestStatus.VERIFYING,
        RequestStatus.DEFICIENT,
    },
    # The operator refuses a submission (issue 5's verification; reason recorded).
    RequestStatus.REFUSED: {RequestStatus.SUBMITTED, RequestStatus.VERIFYING},
}


class IntakeError(ValueError):
    """A Japanese message for the subject or the operator; never contains a number."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- tokens -------------------------------------------------------------------------------
def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def request_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/r/{token}"


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _free_text(
    value: str | None, label: str, max_len: int, required: bool = False, field: str | None = None
) -> str | None:
    """Trimmed text, or IntakeError naming the field. A number (``mynumber.contains_number``)
    is refused: free text is stored in the clear, so a number typed into it must never get
    that far."""
    text = (value or "").strip()
    if not text:
        if required:
            raise IntakeError(f"{label}: 入力してください", field)
        return None
    if len(text) > max_len:
        raise IntakeError(f"{label}: {max_len}文字以内で入力してください", field)
    # Line breaks and tabs are text; NUL (PostgreSQL refuses it), other control characters,
    # bidi overrides and zero-width characters (which could hide a number from the check
    # below) are not.
    if has_hidden_characters(text.replace("\r", "").replace("\n", "").replace("\t", "")):
        raise IntakeError(f"{label}: 使えない制御文字が含まれています", field)
    if mynumber.contains_number(text):
        raise IntakeError(mynumber.number_refusal(label), field)
    return text


def record_event(
    session: Session,
    req: CollectionRequest,
    event: str,
    actor: Actor,
    note: str | None = None,
    reasons: list[dict] | None = None,
) -> None:
    """A history row that does not change the status: sent, reminded, deficiency notice,
    paper received, documents returned (``RequestStatus.EVENT_LABELS``)."""
    if event not in RequestStatus.EVENT_LABELS:
        raise ValueError(f"unknown history event {event}")
    session.add(
        CollectionRequestStatus(
            request_id=req.id,
            status=event,
            at=utcnow(),
            actor_name=actor.name,
            reason_codes=json.dumps(reasons or [], ensure_ascii=False),
            note=note,
        )
    )


def _history(
    session: Session,
    req: CollectionRequest,
    status: str,
    actor: Actor,
    reasons: list[dict] | None = None,
    note: str | None = None,
) -> None:
    req.status = status
    req.status_changed_at = utcnow()
    session.add(
        CollectionRequestStatus(
            request_id=req.id,
            status=status,
            at=req.status_changed_at,
            actor_name=actor.name,
            reason_codes=json.dumps(reasons or [], ensure_ascii=False),
            note=note,
        )
    )


# -- issuing ------------------------------------------------------------------------------
def create_request(
    session: Session,
    actor: Actor,
    person: Person,
    *,
    purpose_text: str,
    valid_days: int = 60,
    expires_at: dt.datetime | None = None,
) -> tuple[CollectionRequest, str]:
    """Issue a link for an employee's household or an external member.

    Returns the request and the token; the token is not stored (only its SHA-256), so the
    caller must put it into the QR code / e-mail now. An earlier open request of the same
    person is cancelled: only the newest link works.
    """
    if person.kind == PersonKind.DEPENDENT:
        raise IntakeError("扶養親族の分は、扶養者（役職員）への依頼に含めて収集します")
    if person.status != "active":
        raise IntakeError("廃棄済みの人物には依頼できません")
    if person.birth_date is None:
        raise IntakeError("生年月日が登録されていない人物には依頼できません（本人確認に使います）")
    # The client's own wording, shown to the subject (a campaign allows 2,000 characters).
    problem = trail.purpose_problem(purpose_text, max_len=2000)
    if problem:
        raise IntakeError(problem, "purpose_text")
    purpose = purpose_text.strip()
    trail.record(
        session,
        actor,
        "intake.request_create",
        object_type="person",
        object_ids=[person.id],
    )
    for old in session.execute(
        select(CollectionRequest).where(
            CollectionRequest.person_id == person.id,
            CollectionRequest.status.in_(RequestStatus.OPEN_FOR_INPUT),
        )
    ).scalars():
        _history(session, old, RequestStatus.CANCELLED, actor, note="新しいリンクの発行により無効")
    token = new_token()
    req = CollectionRequest(
        id=uuid.uuid4(),
        person_id=person.id,
        token_hash=token_hash(token),
        purpose_text=purpose,
        status=RequestStatus.ISSUED,
        expires_at=expires_at or utcnow() + dt.timedelta(days=valid_days),
        failed_attempts=0,
        reopened="[]",
        created_by=actor.name,
    )
    session.add(req)
    session.flush()
    _history(session, req, RequestStatus.ISSUED, actor)
    session.flush()
    return req, token


# -- the subject's entry ------------------------------------------------------------------
def lookup(session: Session, token: str) -> CollectionRequest | None:
    """The request for a token, by its hash (a constant-size index lookup)."""
    if not token or len(token) > 200:
        return None
    req = session.execute(
        select(CollectionRequest).where(CollectionRequest.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if req is not None and not hmac.compare_digest(req.token_hash, token_hash(token)):
        return None
    return req


def entry_state(req: CollectionRequest, now: dt.datetime | None = None) -> str:
    """``ok``, ``cancelled`` (used or replaced), ``locked`` or ``expired``."""
    now = now or utcnow()
    if req.status == RequestStatus.CANCELLED:
        return "cancelled"
    if req.locked_at is not None:
        return "locked"
    if req.status in RequestStatus.OPEN_FOR_INPUT and _aware(req.expires_at) < now:
        return "expired"
    return "ok"


@dataclass(frozen=True)
class FactorResult:
    ok: bool
    remaining: int
    locked: bool


def verify_birth_date(
    session: Session, req: CollectionRequest, birth_date: dt.date, actor: Actor, max_failures: int
) -> FactorResult:
    """Check the second factor. Every attempt is audited; ``max_failures`` wrong ones lock the
    request until an operator unlocks it. Commits (the counter must survive the request)."""
    if req.locked_at is not None:
        return FactorResult(False, 0, True)
    person = session.get(Person, req.person_id)
    if person is not None and person.birth_date is not None and person.birth_date == birth_date:
        trail.record(
            session, actor, "intake.auth", object_type="collection_request", object_ids=[req.id]
        )
        req.failed_attempts = 0
        session.commit()
        return FactorResult(True, max_failures, False)
    # Atomic increment: parallel guesses cannot share one count.
    session.execute(
        update(CollectionRequest)
        .where(CollectionRequest.id == req.id)
        .values(failed_attempts=CollectionRequest.failed_attempts + 1)
    )
    session.refresh(req)
    trail.record(
        session,
        actor,
        "intake.auth",
        object_type="collection_request",
        object_ids=[req.id],
        outcome="failure",
        details={"failed_attempts": req.failed_attempts},
    )
    locked = req.failed_attempts >= max_failures
    if locked:
        req.locked_at = utcnow()
        trail.record(
            session,
            actor,
            "intake.locked",
            object_type="collection_request",
            object_ids=[req.id],
            outcome="denied",
        )
    session.commit()
    return FactorResult(False, max(0, max_failures - req.failed_attempts), locked)


# -- what one transaction already read ------------------------------------------------------
# A form request asks "who is in this request, what has been stored" several times (to find
# the person, to check the ref, to compute the next step, to check the size). The answers are
# kept in ``session.info`` for the current transaction only, and kept in step with the
# writes made through this module; anything else that could change them clears them:
# commit, rollback, any ORM DELETE/UPDATE statement, any flush of a part, a submission or a
# person. Plain metadata only: never a sealed byte, never a number.
_MEMO = "mnv_intake_memo"


@dataclass(frozen=True)
class PartRow:
    """Metadata of one stored part (what ``progress``, the size and the manifest need)."""

    id: uuid.UUID
    subject_ref: str
    part: str
    doc_type: str
    media_type: str | None
    size_bytes: int
    digest: str


def _memo(session: Session) -> dict:
    return session.info.setdefault(_MEMO, {})


def forget(session: Session) -> None:
    """Drop everything remembered for this transaction (the events below call it)."""
    session.info.pop(_MEMO, None)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_at_transaction_end(session: Session) -> None:
    forget(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_at_soft_rollback(session: Session, _previous) -> None:
    forget(session)


@event.listens_for(Session, "do_orm_execute")
def _forget_on_bulk_write(state) -> None:
    if not state.is_select:
        memo = state.session.info.get(_MEMO)
        if memo:
            memo.pop("parts", None)
            memo.pop("parts_read", None)
            memo.pop("received_added", None)


@event.listens_for(Session, "after_flush")
def _forget_on_flush(session: Session, _context) -> None:
    memo = session.info.get(_MEMO)
    if not memo:
        return
    changed = {type(o) for o in (*session.new, *session.dirty, *session.deleted)}
    if SubmissionPart in changed:
        memo.pop("parts", None)
        memo.pop("parts_read", None)
        memo.pop("received_added", None)
    if Submission in changed:
        memo.pop("received_added", None)
    if Person in changed or CollectionRequest in changed:
        memo.pop("listed", None)


def _parts(session: Session, draft: Submission, fresh: bool = False) -> list[PartRow]:
    """The metadata of the draft's stored parts (one query per transaction).

    ``fresh``: as the database has them, not as this module's own writes since left them
    (a read earlier in this transaction with no write since is just as fresh)."""
    memo = _memo(session)
    known = memo.get("parts", {}).get(draft.id)
    if known is not None and (not fresh or draft.id in memo.get("parts_read", ())):
        return known
    rows = [
        PartRow(*row)
        for row in session.execute(
            select(
                SubmissionPart.id,
                SubmissionPart.subject_ref,
                SubmissionPart.part,
                SubmissionPart.doc_type,
                SubmissionPart.media_type,
                SubmissionPart.size_bytes,
                SubmissionPart.digest,
            ).where(SubmissionPart.submission_id == draft.id)
        ).all()
    ]
    _remember_parts(session, draft, rows)
    _memo(session).setdefault("parts_read", set()).add(draft.id)
    return rows


def _remember_parts(session: Session, draft: Submission, rows: list[PartRow]) -> None:
    memo = _memo(session)
    memo.setdefault("parts", {})[draft.id] = rows
    memo.get("parts_read", set()).discard(draft.id)


def _drop_parts(
    session: Session,
    draft: Submission,
    ref: str,
    part: str | None = None,
    doc_type: str | None = None,
) -> None:
    """Delete the draft's parts of one subject (optionally of one kind, one slot). No
    statement when this transaction already knows there is nothing to delete."""
    rows = _parts(session, draft)

    def hit(row: PartRow) -> bool:
        return (
            row.subject_ref == ref
            and (part is None or row.part == part)
            and (doc_type is None or row.doc_type == doc_type)
        )

    if not any(hit(r) for r in rows):
        return
    where = [SubmissionPart.submission_id == draft.id, SubmissionPart.subject_ref == ref]
    if part is not None:
        where.append(SubmissionPart.part == part)
    if doc_type is not None:
        where.append(SubmissionPart.doc_type == doc_type)
    session.execute(delete(SubmissionPart).where(*where))
    _remember_parts(session, draft, [r for r in rows if not hit(r)])


# -- who is in the request ------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    ref: str
    role: str  # self | dependent | added
    name: str | None
    relation: str | None
    birth_date: dt.date | None

    @property
    def needs_identity_document(self) -> bool:
        """身元確認 is for the subject who submits; dependents need 番号確認 only."""
        return self.role == "self"

    def display_name(self) -> str:
        if self.name:
            return self.name
        return f"追加した扶養親族（{self.relation or '続柄未入力'}）"


def _listed(session: Session, req: CollectionRequest) -> tuple[str | None, list[Subject]]:
    """(the person's kind, the listed subjects), read once per transaction."""
    known = _memo(session).get("listed", {}).get(req.id)
    if known is not None:
        return known
    person = req.person  # loaded with the request by the form (one query)
    if person is None:
        return None, []
    out = [Subject(str(person.id), "self", person.name, None, person.birth_date)]
    if person.kind == PersonKind.EMPLOYEE:
        # A query of its own rather than ``person.dependents``: reached through the request,
        # that lazy load would not carry the form's column limits (app.platform.dbroles).
        dependents = session.execute(
            select(Person)
            .where(Person.household_head_id == person.id)
            .order_by(Person.dependent_seq)
        ).scalars()
        for dep in dependents:
            if dep.status == "active" and dep.kind == PersonKind.DEPENDENT:
                out.append(
                    Subject(str(dep.id), "dependent", dep.name, dep.relation, dep.birth_date)
                )
    result = (person.kind, out)
    _memo(session).setdefault("listed", {})[req.id] = result
    return result


def listed_subjects(session: Session, req: CollectionRequest) -> list[Subject]:
    """The person and, for an employee, the dependents on record when the form is used."""
    return list(_listed(session, req)[1])


def _received_added(session: Session, req: CollectionRequest) -> dict[str, str | None]:
    """Dependents added in earlier (received) submissions: ref → relation."""
    known = _memo(session).get("received_added", {}).get(req.id)
    if known is not None:
        return known
    added: dict[str, str | None] = {}
    sub_ids = [s.id for s in req.submissions if s.status == SubmissionStatus.RECEIVED]
    if sub_ids:
        rows = session.execute(
            select(SubmissionPart.subject_ref, SubmissionPart.doc_type).where(
                SubmissionPart.submission_id.in_(sub_ids), SubmissionPart.part == "identity"
            )
        ).all()
        for ref, relation in rows:
            added[ref] = relation or None
    _memo(session).setdefault("received_added", {})[req.id] = added
    return added


def subjects(session: Session, req: CollectionRequest, draft: Submission | None) -> list[Subject]:
    """Listed people plus dependents added in this draft or in earlier submissions."""
    out = listed_subjects(session, req)
    added = dict(_received_added(session, req))
    if draft is not None:
        for row in _parts(session, draft):
            if row.part == "identity":
                added[row.subject_ref] = row.doc_type or None
    for ref in sorted(added, key=lambda r: int(r[3:]) if r[3:].isdigit() else 0):
        out.append(Subject(ref, "added", None, added[ref], None))
    return out


def is_employee_request(session: Session, req: CollectionRequest) -> bool:
    return _listed(session, req)[0] == PersonKind.EMPLOYEE


# -- the draft: every part is sealed the moment it arrives ----------------------------------
def draft_for(
    session: Session,
    req: CollectionRequest,
    public_key: sealing.IntakePublicKey,
    create: bool = True,
) -> Submission | None:
    """The request's open draft submission (created on first use when ``create``).

    One query (the request's submissions, which ``subjects`` needs too) finds the draft and
    the next sequence number."""
    drafts = [s for s in req.submissions if s.status == SubmissionStatus.DRAFT]
    draft = drafts[0] if drafts else None
    if draft is not None and draft.key_id != public_key.key_id:
        # The intake key was replaced: parts sealed to the old key are dropped, not mixed.
        session.execute(delete(SubmissionPart).where(SubmissionPart.submission_id == draft.id))
        draft.key_id = public_key.key_id
        draft.size_bytes = 0
        session.flush()
        _remember_parts(session, draft, [])
    if draft is None and create:
        seq = max((s.seq for s in req.submissions), default=0)
        draft = Submission(
            id=uuid.uuid4(),
            request=req,
            seq=seq + 1,
            kind="web",
            status=SubmissionStatus.DRAFT,
            format_version=sealing.FORMAT_VERSION,
            key_id=public_key.key_id,
            size_bytes=0,
        )
        session.add(draft)
        session.flush()
        _remember_parts(session, draft, [])  # a new draft has nothing in it yet
    return draft


def _require_open(req: CollectionRequest) -> None:
    if req.status not in RequestStatus.OPEN_FOR_INPUT:
        raise IntakeError("この依頼は受付済みのため、入力できません")


def part_is_open(req: CollectionRequest, ref: str, part: str) -> bool:
    """Issued: everything is open. Deficient: only what the operator reopened (and new
    dependents' parts when the household part was reopened)."""
    if req.status == RequestStatus.ISSUED:
        return True
    if req.status != RequestStatus.DEFICIENT:
        return False
    return any(i["ref"] == ref and i["part"] == part for i in req.reopened_items)


def _check_ref(session: Session, req: CollectionRequest, draft: Submission, ref: str) -> Subject:
    for subject in subjects(session, req, draft):
        if subject.ref == ref:
            return subject
    raise IntakeError("対象者が見つかりません。最初からやり直してください")


def _store_part(
    session: Session,
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    ref: str,
    part: str,
    doc_type: str,
    media_type: str | None,
    plaintext: bytes,
) -> SubmissionPart:
    """Seal and store one part, replacing the same slot of the draft."""
    return _store_parts(
        session, public_key, req, draft, ref, [(part, doc_type, media_type, plaintext)]
    )[0]


def _store_parts(
    session: Session,
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    ref: str,
    items: list[tuple[str, str, str | None, bytes]],
) -> list[SubmissionPart]:
    """Seal and store parts of one subject ((part, doc_type, media_type, plaintext) each),
    replacing the same slots; one flush, so the rows go to the database in one batch."""
    for part, doc_type, _media, _data in items:
        _drop_parts(session, draft, ref, part, doc_type)
    kept = _parts(session, draft)
    rows = [_sealed_row(public_key, req, draft, ref, *item) for item in items]
    session.add_all(rows)
    session.flush()
    metas = [
        PartRow(r.id, ref, r.part, r.doc_type, r.media_type, r.size_bytes, r.digest) for r in rows
    ]
    _remember_parts(session, draft, [*kept, *metas])
    return rows


def _sealed_row(
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    ref: str,
    part: str,
    doc_type: str,
    media_type: str | None,
    plaintext: bytes,
) -> SubmissionPart:
    """One part sealed to the intake key, bound to its request, submission and part id."""
    part_id = uuid.uuid4()
    sealed = sealing.seal(public_key, sealing.part_info(req.id, draft.id, part_id), plaintext)
    return SubmissionPart(
        id=part_id,
        submission_id=draft.id,
        subject_ref=ref,
        part=part,
        doc_type=doc_type,
        media_type=media_type,
        size_bytes=len(sealed),
        sealed=sealed,
        digest=hashlib.sha256(sealed).hexdigest(),
        created_at=utcnow(),
    )


def _refresh_size(session: Session, draft: Submission) -> int:
    draft.size_bytes = sum(r.size_bytes for r in _parts(session, draft))
    return draft.size_bytes


def put_number(
    session: Session,
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    ref: str,
    first: str,
    second: str,
) -> None:
    """Check the number (entered twice, check digit) and seal it. Errors name the field."""
    _require_open(req)
    _check_ref(session, req, draft, ref)
    if not part_is_open(req, ref, "number"):
        raise IntakeError("この項目は再提出の対象ではありません")
    try:
        number = mynumber.normalize(first)
    except mynumber.InvalidMyNumber as exc:
        raise IntakeError(f"個人番号: {exc}", "number") from None
    try:
        again = mynumber.normalize(second)
    except mynumber.InvalidMyNumber as exc:
        raise IntakeError(f"個人番号（確認用）: {exc}", "number_confirm") from None
    if not hmac.compare_digest(number, again):
        raise IntakeError(
            "個人番号（確認用）: 1回目に入力した個人番号と一致しません", "number_confirm"
        )
    payload = json.dumps({"number": number}).encode("ascii")
    _store_part(session, public_key, req, draft, ref, "number", "", None, payload)
    del number, again, payload
    _refresh_size(session, draft)


def required_documents(subject: Subject, combination: str) -> list[tuple[str, tuple[str, ...]]]:
    """The document slots of a combination: (field name, doc types allowed in it)."""
    if combination == "card":
        slots = [("card_back", ("card_back",))]
        if subject.needs_identity_document:
            slots.insert(0, ("card_front", ("card_front",)))
        return slots
    if combination == "other":
        slots = [("number_doc", NUMBER_DOCS)]
        if subject.needs_identity_document:
            slots.append(("identity_doc", IDENTITY_DOCS))
        return slots
    raise IntakeError("確認書類の組み合わせを選んでください", "combination")


def put_documents(
    session: Session,
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    ref: str,
    combination: str,
    documents: dict[str, Document],
    max_submission_bytes: int,
) -> None:
    """Seal one person's complete set of documents for a combination, replacing earlier ones.

    ``documents`` maps a doc type (``card_front``, ``notice_card``, ``license``…) to the
    cleaned file. Either the whole set is stored or nothing is.
    """
    _require_open(req)
    subject = _check_ref(session, req, draft, ref)
    if not part_is_open(req, ref, "documents"):
        raise IntakeError("この項目は再提出の対象ではありません")
    slots = required_documents(subject, combination)
    chosen: list[str] = []
    for field_name, allowed in slots:
        matches = [d for d in documents if d in allowed]
        if len(matches) != 1:
            names = "・".join(DOC_TYPES[a] for a in allowed)
            raise IntakeError(f"{names} の写真または PDF を選んでください", field_name)
        chosen.append(matches[0])
    extra = set(documents) - set(chosen)
    if extra:
        raise IntakeError("選んだ組み合わせに含まれない書類があります", "combination")
    incoming = sum(len(documents[d].data) for d in chosen)
    existing_docs = sum(r.size_bytes for r in _parts(session, draft) if r.subject_ref != ref)
    if existing_docs + incoming > max_submission_bytes:
        raise IntakeError(
            f"提出全体の容量が上限（{max_submission_bytes // 1048576} MB）を超えます。"
            "写真を小さくしてから選んでください",
            chosen[0],
        )
    _drop_parts(session, draft, ref, "document")
    _store_parts(
        session,
        public_key,
        req,
        draft,
        ref,
        [("document", d, documents[d].media_type, documents[d].data) for d in chosen],
    )
    _refresh_size(session, draft)


def add_dependent(
    session: Session,
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    *,
    name: str,
    kana: str | None,
    relation: str,
    birth_date: dt.date,
) -> str:
    """A dependent the subject adds: the identity is sealed; only the relation is in the clear
    (it labels the row for the subject). Returns the new ref (``new1``…)."""
    _require_open(req)
    if not is_employee_request(session, req):
        raise IntakeError("扶養親族の追加は役職員の方のみです")
    if req.status != RequestStatus.ISSUED:
        raise IntakeError("再提出では扶養親族を追加できません")
    name = _free_text(name, "氏名", 100, required=True, field="name")
    kana = _free_text(kana, "氏名（フリガナ）", 100, field="kana")
    relation = _free_text(relation, "続柄", 20, required=True, field="relation")
    if birth_date > dt.date.today():
        raise IntakeError("生年月日: 未来の日付は入力できません", "birth_date")
    existing = [s.ref for s in subjects(session, req, draft) if s.role == "added"]
    if len(existing) >= 10:
        raise IntakeError("追加できる扶養親族は10人までです。お問い合わせ窓口にご相談ください")
    numbers = [int(r[3:]) for r in existing if r[3:].isdigit()]
    ref = f"new{max(numbers, default=0) + 1}"
    payload = json.dumps(
        {"name": name, "kana": kana, "relation": relation, "birth_date": birth_date.isoformat()},
        ensure_ascii=False,
    ).encode("utf-8")
    _store_part(session, public_key, req, draft, ref, "identity", relation, None, payload)
    _refresh_size(session, draft)
    return ref


def remove_added(session: Session, req: CollectionRequest, draft: Submission, ref: str) -> None:
    """Drop a dependent the subject added by mistake (only from the current draft)."""
    _require_open(req)
    if not ref.startswith("new"):
        raise IntakeError("登録済みの扶養親族は「対象外」として届け出てください")
    _drop_parts(session, draft, ref)
    _refresh_size(session, draft)


def exclude_dependent(
    session: Session,
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    ref: str,
    reason: str,
) -> None:
    """A listed dependent who should not be collected (left the household…); sealed."""
    _require_open(req)
    subject = _check_ref(session, req, draft, ref)
    if subject.role != "dependent" or req.status != RequestStatus.ISSUED:
        raise IntakeError("この対象者は対象外にできません")
    if reason not in EXCLUDE_REASONS:
        raise IntakeError("対象外とする理由: 選んでください", "reason")
    _drop_parts(session, draft, ref)
    payload = json.dumps({"reason": reason}).encode("ascii")
    _store_part(session, public_key, req, draft, ref, "excluded", "", None, payload)
    _refresh_size(session, draft)


def include_dependent(
    session: Session, req: CollectionRequest, draft: Submission, ref: str
) -> None:
    _require_open(req)
    _drop_parts(session, draft, ref, "excluded")
    _refresh_size(session, draft)


@dataclass
class SubjectProgress:
    subject: Subject
    number_open: bool
    documents_open: bool
    number_done: bool = False
    documents_done: bool = False
    document_types: list[str] = field(default_factory=list)
    excluded: bool = False

    @property
    def complete(self) -> bool:
        if self.excluded:
            return True
        return (self.number_done or not self.number_open) and (
            self.documents_done or not self.documents_open
        )

    @property
    def active(self) -> bool:
        """Does the form ask anything of this person in this round?"""
        return self.number_open or self.documents_open


def progress(session: Session, req: CollectionRequest, draft: Submission) -> list[SubjectProgress]:
    """What is done and what is still needed, per person (metadata only: nothing is opened)."""
    rows = [(r.subject_ref, r.part, r.doc_type) for r in _parts(session, draft)]
    out = []
    for subject in subjects(session, req, draft):
        if req.status == RequestStatus.ISSUED:
            number_open = documents_open = True
        else:
            number_open = part_is_open(req, subject.ref, "number")
            documents_open = part_is_open(req, subject.ref, "documents")
            if subject.role == "added" and not (number_open or documents_open):
                continue
        item = SubjectProgress(subject, number_open, documents_open)
        docs = [d for r, p, d in rows if r == subject.ref and p == "document"]
        item.number_done = any(r == subject.ref and p == "number" for r, p, _ in rows)
        item.excluded = any(r == subject.ref and p == "excluded" for r, p, _ in rows)
        item.document_types = docs
        item.documents_done = _documents_complete(subject, docs)
        out.append(item)
    return out


def _documents_complete(subject: Subject, doc_types: list[str]) -> bool:
    for combination in COMBINATIONS:
        slots = required_documents(subject, combination)
        if all(sum(1 for d in doc_types if d in allowed) == 1 for _, allowed in slots) and len(
            doc_types
        ) == len(slots):
            return True
    return False


def _receipt_no() -> str:
    chars = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(8))
    return f"MN-{chars[:4]}-{chars[4:]}"


def submit(
    session: Session,
    req: CollectionRequest,
    draft: Submission,
    public_key: sealing.IntakePublicKey,
    actor: Actor,
    consented_at: dt.datetime,
) -> Submission:
    """Close the draft: seal a manifest that binds every part (by the SHA-256 of its sealed
    bytes), give a receipt number, move the request to 受付済, audit. Commits."""
    _require_open(req)
    if draft.key_id != public_key.key_id:
        raise IntakeError("受付用の鍵が更新されました。お手数ですが最初から入力し直してください")
    items = progress(session, req, draft)
    missing = [p.subject.display_name() for p in items if not p.complete]
    if missing:
        raise IntakeError("まだ入力が終わっていない方がいます: " + "、".join(missing))
    return receive(
        session,
        req,
        draft,
        public_key,
        actor,
        consented_at=consented_at,
        subjects=[
            {"ref": p.subject.ref, "role": p.subject.role, "excluded": p.excluded} for p in items
        ],
    )


def receive(
    session: Session,
    req: CollectionRequest,
    draft: Submission,
    public_key: sealing.IntakePublicKey,
    actor: Actor,
    *,
    consented_at: dt.datetime,
    subjects: list[dict],
    action: str = "intake.submit",
    note: str | None = None,
) -> Submission:
    """Seal the manifest over the stored parts, give a receipt number, move the request to
    受付済, audit. Shared by the web form (``submit``) and paper intake (issue 5), so both
    kinds of submission look the same to verification. Commits."""
    _require_open(req)
    # Metadata only: the sealed bytes are not read back (their digest was taken on storing).
    # As the database has them, not as this module's writes left them in memory: the
    # manifest binds exactly the rows that are stored.
    parts = _parts(session, draft, fresh=True)
    if not parts:
        raise IntakeError("提出する内容がありません")
    now = utcnow()
    manifest = {
        "format": sealing.FORMAT_VERSION,
        "request_id": str(req.id),
        "submission_id": str(draft.id),
        "seq": draft.seq,
        "purpose_sha256": hashlib.sha256(req.purpose_text.encode("utf-8")).hexdigest(),
        "consented_at": consented_at.astimezone(dt.UTC).isoformat(),
        "submitted_at": now.isoformat(),
        "reopened": req.reopened_items if req.status == RequestStatus.DEFICIENT else None,
        "subjects": subjects,
        "parts": [
            {
                "id": str(p.id),
                "ref": p.subject_ref,
                "part": p.part,
                "doc_type": p.doc_type,
                "media_type": p.media_type,
                "sha256": p.digest,
            }
            for p in parts
        ],
    }
    draft.manifest_sealed = sealing.seal(
        public_key,
        sealing.manifest_info(req.id, draft.id),
        json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode("utf-8"),
    )
    draft.status = SubmissionStatus.RECEIVED
    draft.received_at = now
    draft.receipt_no = _receipt_no()
    _refresh_size(session, draft)
    trail.record(
        session,
        actor,
        action,
        object_type="submission",
        object_ids=[draft.id, req.id],
        details={
            "seq": draft.seq,
            "parts": len(parts),
            "bytes": draft.size_bytes,
            "kind": draft.kind,
        },
    )
    req.reopened = "[]"
    if action == "intake.submit":  # the receipt mail (受付のお知らせ), in this transaction
        promise_receipt(session, draft.id)
    _history(
        session,
        req,
        RequestStatus.SUBMITTED,
        actor,
        note=f"{note + ' ' if note else ''}受付番号 {draft.receipt_no}",
    )
    submission_id, receipt_no = draft.id, draft.receipt_no
    session.commit()
    # The caller's next reads are these two (the receipt page, the receipt mail's key): keep
    # them loaded rather than reading the row back because the commit expired it (issue 4).
    set_committed_value(draft, "id", submission_id)
    set_committed_value(draft, "receipt_no", receipt_no)
    return draft


def decline(
    session: Session, req: CollectionRequest, actor: Actor, code: str, note: str | None
) -> None:
    """The subject chooses 提供しない; the reason is recorded (never a number). Commits."""
    if req.status != RequestStatus.ISSUED:
        raise IntakeError("この依頼は受付済みのため、提供しない旨の届出はできません")
    if code not in DECLINE_REASONS:
        raise IntakeError("提供しない理由: 選んでください", "reason")
    note = _free_text(note, "理由の詳細", 500, field="note")
    trail.record(
        session,
        actor,
        "intake.decline",
        object_type="collection_request",
        object_ids=[req.id],
        details={"reason": code},
    )
    draft = draft_for_existing(session, req)
    if draft is not None:  # whatever was sealed so far is not wanted any more
        session.delete(draft)
    req.decline_reason = code
    req.decline_note = note
    _history(session, req, RequestStatus.DECLINED, actor, reasons=[{"code": code}], note=note)
    session.commit()


def draft_for_existing(session: Session, req: CollectionRequest) -> Submission | None:
    return session.execute(
        select(Submission).where(
            Submission.request_id == req.id, Submission.status == SubmissionStatus.DRAFT
        )
    ).scalar_one_or_none()


@dataclass(frozen=True)
class StatusView:
    """What the link shows after submission: the status, never the data."""

    status: str
    label: str
    message: str
    fixes: list[tuple[str, str]]  # (whose, what to fix)
    can_resubmit: bool
    receipt_no: str | None


def subject_status(session: Session, req: CollectionRequest) -> StatusView:
    received = [s for s in req.submissions if s.status == SubmissionStatus.RECEIVED]
    receipt = received[-1].receipt_no if received else None
    messages = {
        RequestStatus.ISSUED: "まだ提出されていません。",
        RequestStatus.SUBMITTED: "ご提出を受け付けました。担当者が内容を確認します。",
        RequestStatus.VERIFYING: "担当者が提出内容を確認しています。",
        RequestStatus.DEFICIENT: "提出内容に不備がありました。下記の項目だけを提出し直してください。",
        RequestStatus.COMPLETED: "確認が完了しました。ご協力ありがとうございました。",
        RequestStatus.DECLINED: "提供しない旨の届出を受け付けました。",
        RequestStatus.CANCELLED: "このリンクは無効です。",
        RequestStatus.REFUSED: "ご提出の内容を受け付けることができませんでした。"
        "詳しくはお問い合わせ窓口にご連絡ください。",
    }
    fixes: list[tuple[str, str]] = []
    if req.status == RequestStatus.DEFICIENT:
        names = {s.ref: s.display_name() for s in subjects(session, req, None)}
        last = next((h for h in reversed(req.history) if h.status == RequestStatus.DEFICIENT), None)
        for item in last.reasons if last else []:
            text = DEFICIENCY_CODES.get(item.get("code"), ("内容をご確認ください。", ()))[0]
            fixes.append((names.get(item.get("ref"), "ご本人"), text))
    return StatusView(
        req.status,
        req.status_label,
        messages.get(req.status, ""),
        fixes,
        req.status == RequestStatus.DEFICIENT,
        receipt,
    )


# -- inquiries ----------------------------------------------------------------------------
def receive_inquiry(
    session: Session, actor: Actor, *, name: str, contact: str, category: str, body: str
) -> Inquiry:
    """An inquiry from the public contact form (``app.operations.desk.receive_public``). Commits."""
    from app.operations import desk

    try:
        return desk.receive_public(
            session, actor, name=name, contact=contact, category=category, body=body
        )
    except desk.DeskError as exc:
        raise IntakeError(str(exc), exc.field) from exc


# -- the operator's side ------------------------------------------------------------------
def received_submissions(
    session: Session, limit: int = 200, campaign_ids: set[int] | None = None
) -> list[Submission]:
    """Received submissions, newest first (metadata only; nothing is opened); with
    ``campaign_ids``, only those of these campaigns (an Operator's assigned ones)."""
    query = select(Submission).where(Submission.status == SubmissionStatus.RECEIVED)
    if campaign_ids is not None:
        query = query.join(CollectionRequest, CollectionRequest.id == Submission.request_id).where(
            CollectionRequest.campaign_id.in_(campaign_ids)
        )
    return list(
        session.execute(query.order_by(Submission.received_at.desc()).limit(limit)).scalars()
    )


@dataclass
class OpenedDocument:
    part_id: uuid.UUID
    doc_type: str
    media_type: str
    data: bytes

    @property
    def label(self) -> str:
        return DOC_TYPES.get(self.doc_type, self.doc_type)


@dataclass
class OpenedSubject:
    ref: str
    role: str
    name: str | None
    kana: str | None
    relation: str | None
    birth_date: str | None
    number: str | None = None
    excluded_reason: str | None = None
    documents: list[OpenedDocument] = field(default_factory=list)


@dataclass
class OpenedSubmission:
    submission: Submission
    request: CollectionRequest
    manifest: dict
    subjects: list[OpenedSubject]


def _intake_private_key(keyring, key_id: str):
    secret = keyring.get_secret(sealing.SECRET_NAME)
    if secret is None or secret.get("key_id") != key_id:
        raise sealing.IntakeKeyError("この提出を封緘した受付用鍵が鍵リングにありません")
    return sealing.private_key(secret)


def _check_open(session: Session, actor: Actor, request_id: uuid.UUID) -> None:
    """``can_open`` and, on top, the case rule (``app.access.assignments``): only the Operator who
    holds this request's case, in a campaign a ClientStaff user assigned them to, opens it."""
    policy.require(actor, "can_open", INTAKE_VIEW)
    if not assignments.holds_case(session, actor, request_id):
        raise policy.PermissionDenied(assignments.NOT_YOUR_CASE)


def open_submission(
    session: Session, keyring, actor: Actor, submission_id: uuid.UUID, purpose: str
) -> OpenedSubmission:
    """Unseal a received submission for an operator.

    Policy first (an Operator with ``can_open`` who holds the request's case in a campaign
    assigned to them; a refusal is audited), then the audit event is committed, and only then
    is anything decrypted. Opening grants nothing: the case was claimed in the verification
    queue, within an assignment a ClientStaff user made. The manifest must match the stored
    parts exactly.
    """
    submission = session.get(Submission, submission_id)
    if submission is None or submission.status != SubmissionStatus.RECEIVED:
        raise LookupError("提出が見つかりません")
    req = submission.request
    owner = session.get(Person, req.person_id)
    if owner is None or owner.status == "disposed":
        raise LookupError("この提出の対象者は廃棄済みです（提出内容は削除されています）")
    purpose = (purpose or "").strip() or "受付内容の確認（番号確認・身元確認）"
    problem = trail.purpose_problem(purpose)
    try:
        if problem:
            raise policy.PermissionDenied(problem)  # refused and audited, like a reveal
        _check_open(session, actor, req.id)
    except policy.PermissionDenied as exc:
        trail.record(
            session,
            actor,
            "intake.open",
            object_type="submission",
            object_ids=[submission.id, req.person_id],
            purpose=purpose,
            outcome="denied",
            details={"reason": str(exc)},
            commit=True,
        )
        raise
    trail.record(
        session,
        actor,
        "intake.open",
        object_type="submission",
        object_ids=[submission.id, req.person_id],
        purpose=purpose,
        commit=True,
    )
    key = _intake_private_key(keyring, submission.key_id)
    manifest = json.loads(
        sealing.open_sealed(
            key, sealing.manifest_info(req.id, submission.id), submission.manifest_sealed
        )
    )
    if manifest.get("request_id") != str(req.id) or manifest.get("submission_id") != str(
        submission.id
    ):
        raise sealing.SealError("封緘データの対応関係が一致しません")
    # Parts of a dependent disposed of since (app.lifecycle.disposal) are gone by design.
    disposed = _disposed_refs(session, [p["ref"] for p in manifest["parts"]])
    expected = {p["id"]: p for p in manifest["parts"] if p["ref"] not in disposed}
    rows = list(
        session.execute(
            select(SubmissionPart).where(SubmissionPart.submission_id == submission.id)
        ).scalars()
    )
    if {str(r.id) for r in rows} != set(expected):
        raise sealing.SealError("提出の構成が封緘時と一致しません（部品の追加・削除）")
    by_ref: dict[str, OpenedSubject] = {}
    listed = {s.ref: s for s in listed_subjects(session, req)}
    for entry in manifest["subjects"]:
        ref = entry["ref"]
        if ref in disposed:
            continue
        known = listed.get(ref)
        by_ref[ref] = OpenedSubject(
            ref=ref,
            role=entry["role"],
            name=known.name if known else None,
            kana=None,
            relation=known.relation if known else None,
            birth_date=known.birth_date.isoformat() if known and known.birth_date else None,
        )
    for row in rows:
        meta = expected[str(row.id)]
        actual = hashlib.sha256(row.sealed).hexdigest()
        if meta["sha256"] != actual or row.digest != actual or meta["ref"] != row.subject_ref:
            raise sealing.SealError("提出の部品が封緘時と一致しません（差し替え）")
        data = sealing.open_sealed(
            key, sealing.part_info(req.id, submission.id, row.id), row.sealed
        )
        target = by_ref.setdefault(
            row.subject_ref, OpenedSubject(row.subject_ref, "added", None, None, None, None)
        )
        if meta["part"] == "number":
            target.number = json.loads(data)["number"]
        elif meta["part"] == "identity":
            identity = json.loads(data)
            target.name = identity["name"]
            target.kana = identity.get("kana")
            target.relation = identity["relation"]
            target.birth_date = identity["birth_date"]
        elif meta["part"] == "excluded":
            target.excluded_reason = EXCLUDE_REASONS.get(json.loads(data)["reason"])
        elif meta["part"] == "document":
            target.documents.append(
                OpenedDocument(row.id, meta["doc_type"], meta["media_type"], data)
            )
    return OpenedSubmission(submission, req, manifest, list(by_ref.values()))


def _disposed_refs(session: Session, refs: list[str]) -> set[str]:
    """The subject refs that name a person disposed of (their parts were deleted)."""
    ids = set()
    for ref in refs:
        try:
            ids.add(uuid.UUID(ref))
        except ValueError:
            continue
    if not ids:
        return set()
    found = session.execute(
        select(Person.id).where(Person.id.in_(ids), Person.status == "disposed")
    ).scalars()
    return {str(i) for i in found}


def open_document(session: Session, keyring, actor: Actor, part_id: uuid.UUID) -> OpenedDocument:
    """One document of a received submission (a PDF download); audited first."""
    row = session.get(SubmissionPart, part_id)
    if row is None or row.part != "document":
        raise LookupError("書類が見つかりません")
    submission = row.submission
    if submission.status != SubmissionStatus.RECEIVED:
        raise LookupError("書類が見つかりません")
    try:
        _check_open(session, actor, submission.request_id)
    except policy.PermissionDenied as exc:
        trail.record(
            session,
            actor,
            "intake.open_document",
            object_type="submission_part",
            object_ids=[row.id, submission.id],
            outcome="denied",
            details={"reason": str(exc)},
            commit=True,
        )
        raise
    trail.record(
        session,
        actor,
        "intake.open_document",
        object_type="submission_part",
        object_ids=[row.id, submission.id],
        commit=True,
    )
    key = _intake_private_key(keyring, submission.key_id)
    data = sealing.open_sealed(
        key, sealing.part_info(submission.request_id, submission.id, row.id), row.sealed
    )
    return OpenedDocument(row.id, row.doc_type, row.media_type or "", data)


def set_status(
    session: Session, actor: Actor, req: CollectionRequest, status: str, note: str | None = None
) -> None:
    """Move a request along (確認中, 完了, 無効). Audited, in the caller's transaction."""
    policy.require(actor, "can_decide", INTAKE_VIEW)
    allowed_from = _TRANSITIONS.get(status)
    if allowed_from is None or req.status not in allowed_from:
        raise IntakeError(
            f"「{req.status_label}」から「{RequestStatus.LABELS.get(status, status)}」には変更できません"
        )
    note = _free_text(note, "メモ", 500)
    trail.record(
        session,
        actor,
        "intake.status",
        object_type="collection_request",
        object_ids=[req.id],
        details={"from": req.status, "to": status},
    )
    _history(session, req, status, actor, note=note)
    session.flush()


def mark_deficient(
    session: Session,
    actor: Actor,
    req: CollectionRequest,
    items: Iterable[tuple[str, str]],
    note: str | None = None,
) -> list[dict]:
    """Record a deficiency with reason codes per person; the form reopens just those parts
    (number and/or documents of those people) and the link's deadline is extended. Only the
    Operator holding the request's case records one (``app.access.assignments``); a refusal is
    audited."""
    policy.require(actor, "can_decide", INTAKE_VIEW)
    if not assignments.holds_case(session, actor, req.id):
        assignments.refuse(
            session,
            actor,
            "intake.deficient",
            "collection_request",
            [req.id],
            "この依頼は、あなたが確認キューで担当している案件ではないため不備を登録できません",
        )
    if req.status not in (RequestStatus.SUBMITTED, RequestStatus.VERIFYING):
        raise IntakeError("受付済・確認中の依頼にだけ不備を登録できます")
    known = {s.ref for s in subjects(session, req, None)}
    reasons: list[dict] = []
    reopened: list[dict] = []
    for ref, code in items:
        if ref not in known:
            raise IntakeError("不備の対象者が依頼に含まれていません")
        if code not in DEFICIENCY_CODES:
            raise IntakeError(f"不備の理由コードが不明です: {code}")
        reasons.append({"ref": ref, "code": code})
        for part in DEFICIENCY_CODES[code][1]:
            if {"ref": ref, "part": part} not in reopened:
                reopened.append({"ref": ref, "part": part})
    if not reasons:
        raise IntakeError("不備の理由を1つ以上選んでください")
    note = _free_text(note, "メモ", 500)
    trail.record(
        session,
        actor,
        "intake.deficient",
        object_type="collection_request",
        object_ids=[req.id],
        details={"reasons": reasons},
    )
    req.reopened = json.dumps(reopened)
    grace = utcnow() + dt.timedelta(days=DEFICIENCY_GRACE_DAYS)
    if _aware(req.expires_at) < grace:
        req.expires_at = grace
    _history(session, req, RequestStatus.DEFICIENT, actor, reasons=reasons, note=note)
    session.flush()
    return reopened


def unlock(session: Session, actor: Actor, req: CollectionRequest) -> None:
    """Lift a birth-date lockout after the subject called the desk. Audited."""
    policy.require(actor, "can_decide", INTAKE_VIEW)
    trail.record(
        session,
        actor,
        "intake.unlock",
        object_type="collection_request",
        object_ids=[req.id],
        details={"failed_attempts": req.failed_attempts},
    )
    req.failed_attempts = 0
    req.locked_at = None
    session.flush()


def purge_stale_drafts(session: Session, older_than: dt.timedelta) -> int:
    """Delete drafts nobody finished (their sealed parts are useless). For a periodic job."""
    cutoff = utcnow() - older_than
    stale = list(
        session.execute(
            select(Submission).where(
                Submission.status == SubmissionStatus.DRAFT, Submission.created_at < cutoff
            )
        ).scalars()
    )
    for draft in stale:
        session.delete(draft)
    session.flush()
    return len(stale)


def promise_receipt(session: Session, submission_id: uuid.UUID) -> None:
    """The receipt mail of a web submission, promised by name through the outbox in the
    transaction that receives it (no commit): the job (``SEND_RECEIPT``) builds the delivery
    in the worker, since the public form cannot read the key ring."""
    outbox.add(session, SEND_RECEIPT, submission_id, key=receipt_key(submission_id), once=True)


def receipt_key(submission_id: uuid.UUID) -> str:
    """The outbox key of a submission's receipt mail (dispatched after the commit)."""
    return f"receipt:{submission_id}"
