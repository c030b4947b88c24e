"""Verification (spec 5.2-7): 番号確認 + 身元確認 of received submissions, web and paper alike,
and the decision that ends a request.

The queue holds every request that was submitted (受付済) or is being checked (確認中). An
operator claims a case; only the claimer can open it, and opening unseals every received
submission of the request (each opening audited first, by ``opening.open_submission``) and
merges them: a resubmission after a deficiency carries only what was reopened.

Decisions, each audited before it takes effect:
- **accept**: with a checklist per person of the accepted document combination, 番号確認 and
  (for the person who submits) 身元確認. The numbers go into the My Number database under each
  person's DEK (``people.register_number``); dependents the subject added become Person rows;
  ID images are deleted unless the client's policy keeps them (then they are re-encrypted
  under the person's DEK); the sealed submission is disposed; the request is 完了; the
  collection is counted for billing by category and channel.
  With the four-eyes option the first operator's accept only records the check (承認待ち);
  a second, different operator opens the case again and accepts — only then is anything
  registered.
- **deficient**: reason codes per person (``terms.DEFICIENCY_CODES``) and a note; the request
  reopens for exactly that, and the subject is told by e-mail or letter.
- **refused**: a reason (未提供理由) and a note; the submission is disposed.

For the monthly report: ``VerificationCase`` rows hold each decision with its time,
channel (web/paper), reasons and the count registered.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import assignments, policy
from app.audit import trail
from app.collection import campaigns, decisions, duplicates, history, mailings, opening, terms
from app.core.actor import Actor
from app.models import (
    BillingCategory,
    Campaign,
    CaseAssignment,
    CaseStatus,
    CollectionRequest,
    Decision,
    Delivery,
    DeliveryKind,
    PaperIntake,
    PaperPart,
    Person,
    PersonKind,
    RequestStatus,
    RetainedDocument,
    Submission,
    SubmissionPart,
    SubmissionStatus,
    VerificationCase,
    utcnow,
)
from app.operations import billing
from app.people import registry
from app.vault.envelopes import field_aad, seal

VIEW = "Verification"  # FAB permission view name (app.access.policy)
REFUSAL_REASONS = campaigns.REFUSAL_REASONS
CHECK_ITEMS = {
    "number": "番号確認: 書類の番号と入力（記入）された番号が一致している",
    "identity": "身元確認: 書類の氏名・生年月日・顔写真が本人のものであり、有効期限内である",
}


class VerificationError(ValueError):
    """A Japanese message for the operator; never contains a number."""


class AcceptRefused(VerificationError):
    """Accepting was refused; ``view`` is the case as opened (and audited) for the attempt,
    so the operator stays on it without opening and auditing it again."""

    def __init__(self, message: str, view: CaseView) -> None:
        super().__init__(message)
        self.view = view


def _note(value: str | None, max_len: int = 500) -> str | None:
    try:
        return terms.free_text(value, "メモ", max_len)
    except terms.IntakeError as exc:
        raise VerificationError(str(exc)) from None


# -- the queue ---------------------------------------------------------------------------------
@dataclass
class QueueItem:
    request: CollectionRequest
    person: Person
    submission: Submission
    case: VerificationCase | None


@dataclass
class Queue:
    waiting: list[QueueItem] = field(default_factory=list)
    mine: list[QueueItem] = field(default_factory=list)
    approval: list[QueueItem] = field(default_factory=list)
    others: list[QueueItem] = field(default_factory=list)


def _latest_received(session: Session, request_id: uuid.UUID) -> Submission | None:
    return session.execute(
        select(Submission)
        .where(Submission.request_id == request_id, Submission.status == SubmissionStatus.RECEIVED)
        .order_by(Submission.seq.desc())
        .limit(1)
    ).scalar_one_or_none()


def _open_cases(session: Session, request_ids: list[uuid.UUID]) -> dict:
    """Open cases by request, ignoring stale ones: a case opened on a submission that is no
    longer the newest (a deficiency was recorded elsewhere, e.g. on the 受付一覧 screen, and
    the subject resubmitted) belongs to a round that is over."""
    out = {}
    for case in session.execute(
        select(VerificationCase).where(
            VerificationCase.request_id.in_(request_ids),
            VerificationCase.status.in_(CaseStatus.OPEN),
        )
    ).scalars():
        latest = _latest_received(session, case.request_id)
        if latest is not None and latest.id == case.submission_id:
            out[case.request_id] = case
    return out


def _open_case(session: Session, request_id: uuid.UUID) -> VerificationCase | None:
    return _open_cases(session, [request_id]).get(request_id)


def queue(session: Session, actor: Actor, limit: int = 500) -> Queue:
    """Cases to work, from the actor's point of view (metadata only: nothing is opened):
    only those of the campaigns a ClientStaff user assigned the actor to."""
    policy.require(actor, "can_list", VIEW)
    mine = assignments.assigned_campaign_ids(session, actor.user_id)
    if not mine:
        return Queue()
    reqs = list(
        session.execute(
            select(CollectionRequest)
            .where(
                CollectionRequest.status.in_((RequestStatus.SUBMITTED, RequestStatus.VERIFYING)),
                CollectionRequest.campaign_id.in_(mine),
            )
            .order_by(CollectionRequest.status_changed_at)
            .limit(limit)
        ).scalars()
    )
    out = Queue()
    if not reqs:
        return out
    cases = _open_cases(session, [r.id for r in reqs])
    for req in reqs:
        submission = _latest_received(session, req.id)
        if submission is None:
            continue
        item = QueueItem(req, req.person, submission, cases.get(req.id))
        case = item.case
        if case is None:
            out.waiting.append(item)
        elif case.status == CaseStatus.CLAIMED and case.claimed_by_id == actor.user_id:
            out.mine.append(item)
        elif case.status == CaseStatus.APPROVING and case.approver_id == actor.user_id:
            out.mine.append(item)
        elif case.status == CaseStatus.AWAITING_APPROVAL and case.checked_by_id != actor.user_id:
            out.approval.append(item)
        else:
            out.others.append(item)
    return out


def claim(session: Session, actor: Actor, request_id: uuid.UUID) -> VerificationCase:
    """Take a submitted request: the case is yours and the request is 確認中. Audited."""
    policy.require(actor, "can_claim", VIEW)
    if actor.user_id is None:
        raise VerificationError("確認はポータルの利用者として行ってください")
    req = session.execute(
        select(CollectionRequest)
        .where(CollectionRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # what is true under the lock, not before
    ).scalar_one_or_none()
    if req is None:
        raise LookupError("依頼が見つかりません")
    if not assignments.is_assigned(session, actor.user_id, req.campaign_id):
        assignments.refuse(
            session,
            actor,
            "verification.claim",
            "collection_request",
            [req.id],
            assignments.NOT_ASSIGNED,
        )
    if req.status not in (RequestStatus.SUBMITTED, RequestStatus.VERIFYING):
        raise VerificationError(f"この依頼は「{req.status_label}」のため確認できません")
    if _open_case(session, req.id) is not None:
        raise VerificationError("この依頼は別の担当者が確認中です")
    for stale in session.execute(
        select(VerificationCase).where(
            VerificationCase.request_id == req.id, VerificationCase.status.in_(CaseStatus.OPEN)
        )
    ).scalars():
        _close(stale, actor, Decision.RELEASED)
        stale.note = "再提出により終了"
    submission = _latest_received(session, req.id)
    if submission is None:
        raise VerificationError("確認する提出がありません")
    case = VerificationCase(
        request_id=req.id,
        submission_id=submission.id,
        channel=submission.kind,
        status=CaseStatus.CLAIMED,
        claimed_by_id=actor.user_id,
        claimed_by=actor.name,
        claimed_at=utcnow(),
        checklist="{}",
        reasons="[]",
        registered=0,
    )
    session.add(case)
    session.flush()
    trail.record(
        session,
        actor,
        "verification.claim",
        object_type="verification_case",
        object_ids=[case.id, req.id],
    )
    if req.status == RequestStatus.SUBMITTED:
        decisions.set_status(session, actor, req, RequestStatus.VERIFYING)
    session.commit()
    return case


def _case(session: Session, case_id: int) -> VerificationCase:
    case = session.get(VerificationCase, case_id)
    if case is None:
        raise LookupError("確認案件が見つかりません")
    return case


def _require_worker(session: Session, actor: Actor, case: VerificationCase, what: str) -> None:
    """Only the claimer (or, under four-eyes, the second operator) works a case, and only
    while still assigned to its campaign; a refused attempt is audited."""
    ok = (case.status == CaseStatus.CLAIMED and case.claimed_by_id == actor.user_id) or (
        case.status == CaseStatus.APPROVING
        and case.approver_id == actor.user_id
        and case.checked_by_id != actor.user_id
    )
    req = session.get(CollectionRequest, case.request_id)
    assigned = assignments.is_assigned(session, actor.user_id, req.campaign_id if req else None)
    if actor.user_id is not None and ok and assigned:
        return
    trail.record(
        session,
        actor,
        f"verification.{what}",
        object_type="verification_case",
        object_ids=[case.id, case.request_id],
        outcome="denied",
        details={"status": case.status, "assigned": assigned},
        commit=True,
    )
    if ok and not assigned:
        raise policy.PermissionDenied(assignments.NOT_ASSIGNED)
    raise policy.PermissionDenied("この確認案件を担当していないため操作できません")


def release(session: Session, actor: Actor, case_id: int) -> None:
    """Give a case back to the queue (or an approval back to 承認待ち)."""
    policy.require(actor, "can_claim", VIEW)
    case = _case(session, case_id)
    _require_worker(session, actor, case, "release")
    trail.record(
        session,
        actor,
        "verification.release",
        object_type="verification_case",
        object_ids=[case.id, case.request_id],
    )
    if case.status == CaseStatus.APPROVING:
        case.status = CaseStatus.AWAITING_APPROVAL
        case.approver_id = None
        case.approver = None
    else:
        _close(case, actor, Decision.RELEASED)
    session.commit()


def claim_approval(session: Session, actor: Actor, case_id: int) -> VerificationCase:
    """Four-eyes: a second operator, not the one who checked, takes the approval."""
    policy.require(actor, "can_claim", VIEW)
    case = _case(session, case_id)
    req = session.get(CollectionRequest, case.request_id)
    if not assignments.is_assigned(session, actor.user_id, req.campaign_id if req else None):
        assignments.refuse(
            session,
            actor,
            "verification.claim_approval",
            "verification_case",
            [case.id, case.request_id],
            assignments.NOT_ASSIGNED,
        )
    if case.status != CaseStatus.AWAITING_APPROVAL:
        raise VerificationError("この案件は承認待ちではありません")
    if actor.user_id is None or actor.user_id == case.checked_by_id:
        trail.record(
            session,
            actor,
            "verification.claim_approval",
            object_type="verification_case",
            object_ids=[case.id, case.request_id],
            outcome="denied",
            commit=True,
        )
        raise policy.PermissionDenied("承認は一次確認をした担当者とは別の担当者が行います")
    trail.record(
        session,
        actor,
        "verification.claim_approval",
        object_type="verification_case",
        object_ids=[case.id, case.request_id],
    )
    case.status = CaseStatus.APPROVING
    case.approver_id = actor.user_id
    case.approver = actor.name
    session.commit()
    return case


# -- opening a case ----------------------------------------------------------------------------
@dataclass
class CaseSubject:
    ref: str
    role: str
    name: str | None
    kana: str | None
    relation: str | None
    birth_date: str | None
    number: str | None = None
    excluded_reason: str | None = None
    documents: list[opening.OpenedDocument] = field(default_factory=list)
    channel: str = "web"
    flag: str | None = None  # why the number cannot be accepted (app.collection.duplicates)

    @property
    def needs_identity(self) -> bool:
        return self.role == "self"

    @property
    def detected_combination(self) -> str | None:
        types = {d.doc_type for d in self.documents}
        number_doc = bool(types & set(terms.NUMBER_DOCS))
        identity_doc = bool(types & set(terms.IDENTITY_DOCS))
        if self.needs_identity:
            if {"card_front", "card_back"} <= types:
                return "card"
            if number_doc and identity_doc:
                return "other"
            return None
        if "card_back" in types:
            return "card"
        return "other" if number_doc else None

    def display_name(self) -> str:
        return self.name or f"追加した扶養親族（{self.relation or '続柄未入力'}）"


@dataclass
class CaseView:
    case: VerificationCase
    request: CollectionRequest
    person: Person
    submissions: list[Submission]
    subjects: list[CaseSubject]
    four_eyes: bool


def four_eyes_for(session: Session, req: CollectionRequest) -> bool:
    if req.campaign_id is not None:
        campaign = session.get(Campaign, req.campaign_id)
        if campaign is not None:
            return bool(campaign.four_eyes)
    return bool(current_app.config.get("COLLECTION_FOUR_EYES"))


def open_case(
    session: Session, keyring, actor: Actor, case_id: int, purpose: str = "", vault=None
) -> CaseView:
    """Unseal every received submission of the case's request (each audited) and merge them
    into one view per person. Only the operator working the case may do this. With the
    ``vault``, a number stored for someone else is flagged at once (``duplicates``)."""
    policy.require(actor, "can_decide", VIEW)
    case = _case(session, case_id)
    _require_worker(session, actor, case, "open")
    req = session.get(CollectionRequest, case.request_id)
    submissions = list(
        session.execute(
            select(Submission)
            .where(Submission.request_id == req.id, Submission.status == SubmissionStatus.RECEIVED)
            .order_by(Submission.seq)
        ).scalars()
    )
    if not submissions:
        raise VerificationError("確認する提出がありません")
    purpose = (purpose or "").strip() or "番号確認・身元確認"
    by_ref: dict[str, CaseSubject] = {}
    for submission in submissions:
        opened = opening.open_submission(session, keyring, actor, submission.id, purpose)
        for s in opened.subjects:
            target = by_ref.get(s.ref)
            if target is None:
                target = by_ref[s.ref] = CaseSubject(
                    s.ref, s.role, s.name, s.kana, s.relation, s.birth_date
                )
            for attr in ("name", "kana", "relation", "birth_date"):
                if getattr(s, attr):
                    setattr(target, attr, getattr(s, attr))
            if s.number:
                target.number = s.number
                target.channel = submission.kind
            if s.documents:
                target.documents = list(s.documents)
            if s.excluded_reason:
                target.excluded_reason = s.excluded_reason
    order = {"self": 0, "dependent": 1, "added": 2}
    merged = sorted(by_ref.values(), key=lambda s: (order.get(s.role, 3), s.ref))
    if vault is not None:
        duplicates.flag(session, vault, actor, req, merged)
    return CaseView(case, req, req.person, submissions, merged, four_eyes_for(session, req))


# -- decisions ---------------------------------------------------------------------------------
def check_checklist(view: CaseView, checklist: dict[str, dict]) -> dict[str, list[str]]:
    """Every person who is collected must have a number, a confirmed accepted combination,
    番号確認 and (the person who submits) 身元確認. Web documents must match the chosen
    combination; paper copies may sit on the form itself, so there the operator's word is
    the record. Returns what is stored with the case."""
    problems = []
    stored: dict[str, list[str]] = {}
    active = [s for s in view.subjects if not s.excluded_reason]
    if not active:
        raise VerificationError("登録する対象者がいません（全員が対象外です）")
    for s in active:
        entry = checklist.get(s.ref) or {}
        name = s.display_name()
        if not s.number:
            problems.append(f"{name}: 個人番号が提出されていません")
            continue
        if s.flag:
            problems.append(f"{name}: {s.flag}")
            continue
        combination = entry.get("combination")
        if combination not in terms.COMBINATIONS:
            problems.append(f"{name}: 確認した書類の組み合わせを選んでください")
            continue
        if s.channel == "web" and s.documents and s.detected_combination != combination:
            problems.append(f"{name}: 選んだ組み合わせと提出された書類が一致しません")
        if not entry.get("number"):
            problems.append(f"{name}: 番号確認のチェックがありません")
        if s.needs_identity and not entry.get("identity"):
            problems.append(f"{name}: 身元確認のチェックがありません")
        stored[s.ref] = [
            combination,
            *[k for k in ("number", "identity") if entry.get(k)],
        ]
    if problems:
        raise VerificationError("受理できません: " + "／".join(problems))
    return stored


@dataclass(frozen=True)
class AcceptResult:
    status: str  # awaiting_approval | accepted
    registered: int
    created_dependents: int
    kept_images: int


def accept(
    session: Session,
    vault,
    keyring,
    actor: Actor,
    case_id: int,
    checklist: dict[str, dict],
    note: str | None = None,
) -> AcceptResult:
    """Accept a case (see module docstring). Commits; raises without any effect when the
    checklist is incomplete or a number belongs to someone else."""
    policy.require(actor, "can_decide", VIEW)
    note = _note(note)
    view = open_case(session, keyring, actor, case_id, "確認結果の登録（受理）", vault)
    case, req = view.case, view.request
    try:
        stored = check_checklist(view, checklist)
    except VerificationError as exc:
        if any(s.flag for s in view.subjects):
            _audit_duplicate(session, actor, case_id, req)
        raise AcceptRefused(str(exc), view) from None
    if view.four_eyes and case.status == CaseStatus.CLAIMED:
        trail.record(
            session,
            actor,
            "verification.check",
            object_type="verification_case",
            object_ids=[case.id, req.id],
            details={"checklist": stored},
        )
        case.status = CaseStatus.AWAITING_APPROVAL
        case.checked_by_id, case.checked_by, case.checked_at = actor.user_id, actor.name, utcnow()
        case.checklist = json.dumps(stored)
        case.note = note
        history.record_event(session, req, "checked", actor, note="別の担当者の承認待ち")
        session.commit()
        return AcceptResult(CaseStatus.AWAITING_APPROVAL, 0, 0, 0)
    keep = bool(current_app.config.get("COLLECTION_KEEP_ID_IMAGES"))
    trail.record(
        session,
        actor,
        "verification.accept",
        object_type="verification_case",
        object_ids=[case.id, req.id, req.person_id],
        details={
            "checklist": stored,
            "four_eyes": view.four_eyes,
            "checked_by": case.checked_by,
            "keep_images": keep,
            "channel": case.channel,
        },
    )
    head = session.get(Person, req.person_id)
    registered = 0
    created = 0
    kept = 0
    try:
        for s in view.subjects:
            if s.excluded_reason:
                continue
            person, new = _person_for(session, vault, head, s)
            created += int(new)
            registry.register_number(session, vault, person, s.number, s.channel)
            registered += 1
            if keep:
                kept += _retain(session, vault, req, person, s.documents)
    except registry.DuplicateNumber:  # stored for someone else since the case was opened
        session.rollback()
        _audit_duplicate(session, actor, case_id, req)
        raise AcceptRefused(
            "受理できません: 提出された個人番号が既に別の人物に登録されています"
            "（不備または不受理として扱い、発注者に確認してください）",
            view,
        ) from None
    for s in view.subjects:
        s.number = None  # the plaintext leaves memory with the view
    _dispose(session, req)
    decisions.set_status(
        session, actor, req, RequestStatus.COMPLETED, note=f"{registered}人の個人番号を登録"
    )
    _bill_collection(session, head, req, case.channel, registered)
    case.checklist = json.dumps(stored) if not case.checklist_items else case.checklist
    case.registered = registered
    if note:
        case.note = f"{case.note}／{note}" if case.note else note
    _close(case, actor, Decision.ACCEPTED)
    _close_assignments(session, req)
    session.commit()
    return AcceptResult("accepted", registered, created, kept)


def _audit_duplicate(session: Session, actor: Actor, case_id: int, req: CollectionRequest):
    trail.record(
        session,
        actor,
        "verification.accept",
        object_type="verification_case",
        object_ids=[case_id, req.id],
        outcome="failure",
        details={"reason": "duplicate_number"},
        commit=True,
    )


def _person_for(session: Session, vault, head: Person, s: CaseSubject) -> tuple[Person, bool]:
    """The listed person, or a new dependent for one the subject added (identity was sealed
    until now)."""
    if s.role != "added":
        person = session.get(Person, uuid.UUID(s.ref))
        if person is None or person.status != "active":
            raise VerificationError(f"{s.display_name()}: 人物が見つかりません")
        return person, False
    if not s.name or not s.birth_date:
        raise VerificationError("追加された扶養親族の氏名・生年月日が提出されていません")
    seq = session.execute(
        select(func.coalesce(func.max(Person.dependent_seq), 0)).where(
            Person.household_head_id == head.id
        )
    ).scalar_one()
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name=s.name,
        name_kana=s.kana,
        birth_date=dt.date.fromisoformat(s.birth_date),
        household_head=head,
        dependent_seq=int(seq) + 1,
        relation=s.relation,
    )
    return person, True


def _retain(
    session: Session, vault, req: CollectionRequest, person: Person, documents: list
) -> int:
    dek, key_row = vault.ensure_data_key(session, person.id)
    for doc in documents:
        row_id = uuid.uuid4()
        session.add(
            RetainedDocument(
                id=row_id,
                person_id=person.id,
                request_id=req.id,
                doc_type=doc.doc_type,
                media_type=doc.media_type,
                ciphertext=seal(
                    dek,
                    key_row.version,
                    field_aad("retained_document", "ciphertext", row_id),
                    doc.data,
                ),
            )
        )
    return len(documents)


def _dispose(session: Session, req: CollectionRequest) -> int:
    """The decision is made: every sealed part of the request goes (drafts, received
    submissions, unfinished paper entries). Submission rows stay as metadata."""
    removed = 0
    for submission in session.execute(
        select(Submission).where(Submission.request_id == req.id)
    ).scalars():
        if submission.status == SubmissionStatus.DRAFT:
            session.delete(submission)
            continue
        for part in list(submission.parts):
            session.delete(part)
            removed += 1
        submission.status = SubmissionStatus.DISPOSED
        submission.manifest_sealed = None
    intakes = [
        i.id
        for i in session.execute(
            select(PaperIntake).where(PaperIntake.request_id == req.id)
        ).scalars()
    ]
    if intakes:
        for part in session.execute(
            select(PaperPart).where(PaperPart.intake_id.in_(intakes))
        ).scalars():
            session.delete(part)
            removed += 1
    session.flush()
    return removed


def _bill_collection(
    session: Session, head: Person, req: CollectionRequest, channel: str, registered: int
) -> None:
    """別表: 役職員 are billed per household for smartphone collection; 外部委員等 per person,
    smartphone or postal. (The table has no postal row for 役職員: spec 5.2-3 expects the web
    route for them, so a paper collection of an employee household is not billed.)"""
    if head.kind == PersonKind.EXTERNAL:
        category = (
            BillingCategory.EXTERNAL_POSTAL
            if channel == "paper"
            else BillingCategory.EXTERNAL_SMARTPHONE
        )
    elif channel == "web":
        category = BillingCategory.EMPLOYEE_SMARTPHONE
    else:
        return
    billing.record_event(session, category, f"collect:{req.id}", utcnow(), req.id, registered)


def _close(case: VerificationCase, actor: Actor, decision: str) -> None:
    case.status = CaseStatus.CLOSED
    case.decision = decision
    case.decided_by_id = actor.user_id
    case.decided_by = actor.name
    case.decided_at = utcnow()


def _close_assignments(session: Session, req: CollectionRequest) -> None:
    """The case is over: nobody keeps the right to reveal these numbers because of it."""
    for assignment in session.execute(
        select(CaseAssignment).where(
            CaseAssignment.person_id == req.person_id, CaseAssignment.closed_at.is_(None)
        )
    ).scalars():
        assignment.closed_at = utcnow()


def deficient(
    session: Session,
    actor: Actor,
    case_id: int,
    items: list[tuple[str, str]],
    note: str | None = None,
) -> Delivery | None:
    """Record what is wrong, per person; the request reopens for exactly that and a notice
    goes out by the request's channel. Returns the notice (the caller enqueues an e-mail)."""
    policy.require(actor, "can_decide", VIEW)
    case = _case(session, case_id)
    _require_worker(session, actor, case, "deficient")
    req = session.get(CollectionRequest, case.request_id)
    reopened = decisions.mark_deficient(session, actor, req, items, note)
    case.reasons = json.dumps([{"ref": r, "code": c} for r, c in items])
    case.note = _note(note)
    _close(case, actor, Decision.DEFICIENT)
    delivery = None
    if req.campaign_id is not None and req.channel:
        delivery = mailings.new_delivery(session, req, DeliveryKind.DEFICIENCY)
    trail.record(
        session,
        actor,
        "verification.deficient",
        object_type="verification_case",
        object_ids=[case.id, req.id],
        details={"reopened": reopened, "notice": delivery.channel if delivery else None},
    )
    session.commit()
    return delivery


def refuse(
    session: Session, actor: Actor, case_id: int, code: str, note: str | None = None
) -> None:
    """Refuse the submission (未提供理由 recorded); its sealed parts are disposed."""
    policy.require(actor, "can_decide", VIEW)
    case = _case(session, case_id)
    _require_worker(session, actor, case, "refuse")
    if code not in REFUSAL_REASONS:
        raise VerificationError("不受理の理由を選んでください")
    note = _note(note, 400)
    req = session.get(CollectionRequest, case.request_id)
    trail.record(
        session,
        actor,
        "verification.refuse",
        object_type="verification_case",
        object_ids=[case.id, req.id],
        details={"reason": code},
    )
    decisions.set_status(
        session,
        actor,
        req,
        RequestStatus.REFUSED,
        note="／".join(t for t in (REFUSAL_REASONS[code], note) if t),
    )
    _dispose(session, req)
    case.reasons = json.dumps([{"code": code}])
    case.note = note
    _close(case, actor, Decision.REFUSED)
    _close_assignments(session, req)
    session.commit()


def has_parts(session: Session, request_id: uuid.UUID) -> int:
    """Sealed parts still stored for a request (0 after a decision)."""
    return session.execute(
        select(func.count())
        .select_from(SubmissionPart)
        .join(Submission, Submission.id == SubmissionPart.submission_id)
        .where(Submission.request_id == request_id)
    ).scalar_one()
