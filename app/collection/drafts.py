"""The subject's draft: every part is sealed to the intake public key the moment it arrives.

The public form holds only that public key, so nothing it stored can be read back here::

    draft = draft_for(session, req, public_key)
    put_number / put_documents / add_dependent / exclude_dependent   # each part sealed at once
    progress(session, req, draft)                                    # metadata only

Submitting the draft is ``app.collection.receive``. None of these functions commits.
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.collection import parts
from app.collection.subjects import (
    Subject,
    in_request,
    is_employee_request,
    next_added_ref,
    part_is_open,
)
from app.collection.terms import (
    COMBINATIONS,
    DOC_TYPES,
    EXCLUDE_REASONS,
    IDENTITY_DOCS,
    NUMBER_DOCS,
    IntakeError,
    free_text,
)
from app.collection.uploads import Document, limit_text
from app.core import jptime, mynumber
from app.models import (
    CollectionRequest,
    RequestStatus,
    Submission,
    SubmissionPart,
    SubmissionStatus,
    utcnow,
)
from app.vault import sealing


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
        parts.remember(session, draft, [])
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
        parts.remember(session, draft, [])  # a new draft has nothing in it yet
    return draft


def existing_draft(session: Session, req: CollectionRequest) -> Submission | None:
    """The request's draft, if any (a query: for when ``req.submissions`` is not loaded)."""
    return session.execute(
        select(Submission).where(
            Submission.request_id == req.id, Submission.status == SubmissionStatus.DRAFT
        )
    ).scalar_one_or_none()


def require_open(req: CollectionRequest) -> None:
    if req.status not in RequestStatus.OPEN_FOR_INPUT:
        raise IntakeError("この依頼は受付済みのため、入力できません")


def _check_ref(session: Session, req: CollectionRequest, draft: Submission, ref: str) -> Subject:
    for subject in in_request(session, req, draft):
        if subject.ref == ref:
            return subject
    raise IntakeError("対象者が見つかりません。最初からやり直してください")


def _store(
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
        parts.drop(session, draft, ref, part, doc_type)
    kept = parts.stored(session, draft)
    rows = [
        parts.seal(
            SubmissionPart,
            public_key,
            req.id,
            draft.id,
            ref=ref,
            part=part,
            doc_type=doc_type,
            media_type=media_type,
            plaintext=plaintext,
            submission_id=draft.id,
        )
        for part, doc_type, media_type, plaintext in items
    ]
    session.add_all(rows)
    session.flush()
    parts.remember(session, draft, [*kept, *(parts.PartRow.of(r) for r in rows)])
    return rows


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
    require_open(req)
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
    payload = parts.number_payload(number)
    _store(session, public_key, req, draft, ref, [("number", "", None, payload)])
    del number, again, payload
    parts.refresh_size(session, draft)


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
    require_open(req)
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
    existing_docs = sum(r.size_bytes for r in parts.stored(session, draft) if r.subject_ref != ref)
    if existing_docs + incoming > max_submission_bytes:
        raise IntakeError(
            f"提出全体の容量が上限（{limit_text(max_submission_bytes)}）を超えます。"
            "写真を小さくしてから選んでください",
            chosen[0],
        )
    parts.drop(session, draft, ref, "document")
    _store(
        session,
        public_key,
        req,
        draft,
        ref,
        [("document", d, documents[d].media_type, documents[d].data) for d in chosen],
    )
    parts.refresh_size(session, draft)


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
    require_open(req)
    if not is_employee_request(session, req):
        raise IntakeError("扶養親族の追加は役職員の方のみです")
    if req.status != RequestStatus.ISSUED:
        raise IntakeError("再提出では扶養親族を追加できません")
    name = free_text(name, "氏名", 100, required=True, field="name")
    kana = free_text(kana, "氏名（フリガナ）", 100, field="kana")
    relation = free_text(relation, "続柄", 20, required=True, field="relation")
    if birth_date > jptime.today_jst():  # the subject's today, not the server's zone
        raise IntakeError("生年月日: 未来の日付は入力できません", "birth_date")
    ref = next_added_ref(in_request(session, req, draft))
    if ref is None:
        raise IntakeError("追加できる扶養親族は10人までです。お問い合わせ窓口にご相談ください")
    payload = parts.identity_payload(name, kana, relation, birth_date)
    _store(session, public_key, req, draft, ref, [("identity", relation, None, payload)])
    parts.refresh_size(session, draft)
    return ref


def remove_added(session: Session, req: CollectionRequest, draft: Submission, ref: str) -> None:
    """Drop a dependent the subject added by mistake (only from the current draft)."""
    require_open(req)
    if not ref.startswith("new"):
        raise IntakeError("登録済みの扶養親族は「対象外」として届け出てください")
    parts.drop(session, draft, ref)
    parts.refresh_size(session, draft)


def exclude_dependent(
    session: Session,
    public_key: sealing.IntakePublicKey,
    req: CollectionRequest,
    draft: Submission,
    ref: str,
    reason: str,
) -> None:
    """A listed dependent who should not be collected (left the household…); sealed."""
    require_open(req)
    subject = _check_ref(session, req, draft, ref)
    if subject.role != "dependent" or req.status != RequestStatus.ISSUED:
        raise IntakeError("この対象者は対象外にできません")
    if reason not in EXCLUDE_REASONS:
        raise IntakeError("対象外とする理由: 選んでください", "reason")
    parts.drop(session, draft, ref)
    payload = parts.excluded_payload(reason)
    _store(session, public_key, req, draft, ref, [("excluded", "", None, payload)])
    parts.refresh_size(session, draft)


def include_dependent(
    session: Session, req: CollectionRequest, draft: Submission, ref: str
) -> None:
    require_open(req)
    parts.drop(session, draft, ref, "excluded")
    parts.refresh_size(session, draft)


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
    rows = [(r.subject_ref, r.part, r.doc_type) for r in parts.stored(session, draft)]
    out = []
    for subject in in_request(session, req, draft):
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
