"""Paper intake (spec 5.2-3 ②): a returned envelope becomes a submission like a web one.

1. An operator records the envelope: the request code printed on the form, the tracking
   number, the arrival date, and the return postage (返送 side of the ledger).
2. The form and the ID copies are scanned and uploaded; each file is cleaned like a web upload
   (``app.collection.uploads``) and sealed to the intake key at once like a web part
   (``app.collection.parts``), bound to the submission id reserved for this envelope. Nothing is written in the clear.
3. An operator keys each person's number from the form; a **second, different operator keys
   it again blind** (no one ever sees another entry). Entries are compared by a keyed MAC,
   without decrypting either; a mismatch needs a further operator's keying, and the value two
   different operators keyed identically wins.
4. Finishing moves the sealed scans and the agreed numbers into a received submission
   (``app.collection.receive``): it joins the same verification queue as web submissions.

A deficiency reopens the request as for the web; the subject may answer by web or by post,
and a resubmission by post is a new envelope carrying only what was reopened. Paper documents
can be sent back to the subject (return postage recorded).
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import unicodedata
import uuid
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.collection import campaigns, history, parts, receive, terms, uploads
from app.collection.subjects import (
    Subject,
    in_request,
    is_employee_request,
    next_added_ref,
    part_is_open,
)
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.models import (
    CollectionRequest,
    PaperIntake,
    PaperIntakeStatus,
    PaperPart,
    PostageEntry,
    RequestStatus,
    Submission,
    SubmissionPart,
    SubmissionStatus,
    utcnow,
)
from app.operations import billing
from app.vault import sealing

VIEW = "PaperIntake"  # FAB permission view name (app.access.policy)


class PaperError(ValueError):
    """A Japanese message naming the field; never contains a number."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _free_text(value, label: str, max_len: int, required: bool = False, field=None):
    try:
        return terms.free_text(value, label, max_len, required=required, field=field)
    except terms.IntakeError as exc:
        raise PaperError(str(exc), exc.field) from None


def tracking_number(value: str | None, field: str = "tracking_number") -> str | None:
    """A carrier's tracking number (追跡番号): digits, letters and hyphens. Twelve digits are
    normal here (ゆうパック, レターパック and most couriers use them), so the free-text rule
    that refuses 12-digit runs does not apply; the field accepts nothing but this shape."""
    text = re.sub(r"[\s‐－ー-]+", "-", unicodedata.normalize("NFKC", value or "").strip()).strip(
        "-"
    )
    if not text:
        return None
    if len(text) > 30 or not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", text):
        raise PaperError("追跡番号: 英数字とハイフンで30文字以内で入力してください", field)
    return text.upper()


def public_key(keyring) -> sealing.IntakePublicKey:
    """The intake public key, derived from the key ring's private half (admin side)."""
    secret = keyring.get_secret(sealing.SECRET_NAME)
    if secret is None:
        raise sealing.IntakeKeyError("受付用鍵が鍵リングにありません（`mynumber init`）")
    return sealing.IntakePublicKey.from_dict(sealing.public_from_secret(secret))


def find_request(session: Session, code: str) -> CollectionRequest | None:
    normalized = campaigns.normalize_code(code)
    if not normalized:
        return None
    return session.execute(
        select(CollectionRequest).where(CollectionRequest.request_code == normalized)
    ).scalar_one_or_none()


def _open_intake(session: Session, request_id: uuid.UUID) -> PaperIntake | None:
    return session.execute(
        select(PaperIntake).where(
            PaperIntake.request_id == request_id, PaperIntake.status == PaperIntakeStatus.OPEN
        )
    ).scalar_one_or_none()


def _past_date(value: dt.date | str | None, label: str, field: str) -> dt.date:
    """A date typed by the operator (or given as a date), never in the future: postage is
    recorded for what already happened."""
    if isinstance(value, str) or value is None:
        try:
            value = jptime.parse_date(value or "")
        except jptime.InvalidDate as exc:
            raise PaperError(f"{label}: {exc}", field) from None
    if value > jptime.today_jst():
        raise PaperError(f"{label}: 未来の日付は指定できません", field)
    return value


def _return_postage(
    session: Session,
    actor: Actor,
    *,
    day: dt.date,
    carrier: str,
    method: str,
    cost_yen: int | None,
    tracking: str | None,
    request_id: uuid.UUID,
    note: str,
) -> PostageEntry:
    """Postage on the 返送 side of the ledger (spec 6-6 実費), with the form's field named in
    any error so the operator sees where to correct."""
    tracking = tracking_number(tracking)
    if not (carrier or "").strip() or not (method or "").strip():
        raise PaperError("運送事業者と種別を入力してください", "method")
    if cost_yen is not None and cost_yen < 0:
        raise PaperError("料金: 0以上の整数で入力してください", "cost_yen")
    try:
        return billing.record_postage(
            session,
            direction="return",
            carrier=carrier.strip(),
            method=method.strip(),
            posted_on=day,
            actor=actor,
            cost_yen=cost_yen,
            request_id=request_id,
            tracking_number=tracking,
            note=note,
        )
    except billing.BillingError as exc:
        raise PaperError(f"料金: {exc}", "cost_yen") from None


def receive_envelope(
    session: Session,
    actor: Actor,
    *,
    request_code: str,
    received_on: dt.date | str | None,
    tracking: str | None,
    carrier: str,
    method: str,
    cost_yen: int | None = None,
) -> PaperIntake:
    """Record a returned envelope and its return postage. Audited; committed."""
    policy.require(actor, "can_add", VIEW)
    req = find_request(session, request_code)
    if req is None:
        raise PaperError(
            "依頼コード: 該当する依頼がありません（申請用紙の依頼コードを確認）", "request_code"
        )
    if req.status not in RequestStatus.OPEN_FOR_INPUT:
        raise PaperError(
            f"依頼コード: この依頼は「{req.status_label}」のため郵送の提出を受け付けられません",
            "request_code",
        )
    if _open_intake(session, req.id) is not None:
        raise PaperError("依頼コード: この依頼には入力中の郵送受付があります", "request_code")
    received_on = _past_date(received_on, "到着日", "received_on")
    entry = _return_postage(
        session,
        actor,
        day=received_on,
        carrier=carrier,
        method=method,
        cost_yen=cost_yen,
        tracking=tracking,
        request_id=req.id,
        note="返信用封筒（提出書類）",
    )
    item = PaperIntake(
        id=uuid.uuid4(),
        request_id=req.id,
        submission_id=uuid.uuid4(),
        tracking_number=tracking,
        received_on=received_on,
        postage_entry_id=entry.id,
        status=PaperIntakeStatus.OPEN,
        recorded_by=actor.name,
    )
    session.add(item)
    session.flush()
    trail.record(
        session,
        actor,
        "paper.receive",
        object_type="paper_intake",
        object_ids=[item.id, req.id],
        details={"tracking_number": tracking, "received_on": received_on.isoformat()},
    )
    history.record_event(
        session,
        req,
        "paper_received",
        actor,
        note=f"追跡番号 {tracking}" if tracking else "追跡番号なし",
    )
    session.commit()
    return item


# -- who is on the form ----------------------------------------------------------------------
@dataclass
class RefState:
    subject: Subject
    number_open: bool
    documents_open: bool
    keyings: int = 0
    keyed_by_me: bool = False
    agreed: bool = False
    mismatch: bool = False
    excluded: bool = False
    documents: list[str] = field(default_factory=list)


def _require_open(item: PaperIntake) -> None:
    if item.status != PaperIntakeStatus.OPEN:
        raise PaperError("この郵送受付は確認待ちに登録済みです")


def subjects(session: Session, item: PaperIntake) -> list[Subject]:
    """The request's people plus dependents added on this paper form."""
    req = session.get(CollectionRequest, item.request_id)
    out = in_request(session, req, None)
    known = {s.ref for s in out}
    for part in item.parts:
        if part.part == "identity" and part.subject_ref not in known:
            out.append(Subject(part.subject_ref, "added", None, part.doc_type, None))
            known.add(part.subject_ref)
    return out


def _open_parts(req: CollectionRequest, ref: str) -> tuple[bool, bool]:
    if req.status == RequestStatus.ISSUED:
        return True, True
    return part_is_open(req, ref, "number"), part_is_open(req, ref, "documents")


def state(session: Session, item: PaperIntake, actor: Actor | None = None) -> list[RefState]:
    """Per person: which parts this envelope must carry, keying progress, scans. Metadata
    only: nothing is decrypted, no entry is shown."""
    req = session.get(CollectionRequest, item.request_id)
    out = []
    added_here = {p.subject_ref for p in item.parts if p.part == "identity"}
    for subject in subjects(session, item):
        number_open, documents_open = _open_parts(req, subject.ref)
        if subject.ref in added_here:
            number_open = documents_open = True
        if not (number_open or documents_open):
            continue
        rs = RefState(subject, number_open, documents_open)
        numbers = [p for p in item.parts if p.subject_ref == subject.ref and p.part == "number"]
        rs.keyings = len(numbers)
        rs.keyed_by_me = actor is not None and any(
            p.entered_by_id == actor.user_id for p in numbers
        )
        rs.agreed = _agreed(numbers) is not None
        rs.mismatch = len(numbers) >= 2 and not rs.agreed
        rs.excluded = any(p.subject_ref == subject.ref and p.part == "excluded" for p in item.parts)
        rs.documents = [
            p.doc_type for p in item.parts if p.subject_ref == subject.ref and p.part == "document"
        ]
        out.append(rs)
    return out


def _agreed(numbers: list[PaperPart]) -> PaperPart | None:
    """The earliest entry that a different operator keyed identically, if any."""
    ordered = sorted(numbers, key=lambda p: jptime.aware(p.created_at))
    for i, first in enumerate(ordered):
        for other in ordered[i + 1 :]:
            if other.entered_by_id != first.entered_by_id and hmac.compare_digest(
                first.check, other.check
            ):
                return first
    return None


def _check_mac(keyring, item: PaperIntake, ref: str, number: str) -> bytes:
    """HMAC under the key provider's key for this purpose, salted with the envelope and
    person: equal entries compare equal here, and nowhere else."""
    return keyring.mac("paper-keying", f"{item.id}|{ref}|{number}".encode("ascii"))


def _store(
    session: Session,
    keyring,
    item: PaperIntake,
    actor: Actor,
    ref: str,
    part: str,
    doc_type: str,
    media_type: str | None,
    plaintext: bytes,
    check: bytes | None = None,
) -> PaperPart:
    """Seal one part of this envelope exactly like a web part, so that finishing moves it
    into the submission unchanged."""
    row = parts.seal(
        PaperPart,
        public_key(keyring),
        item.request_id,
        item.submission_id,
        ref=ref,
        part=part,
        doc_type=doc_type,
        media_type=media_type,
        plaintext=plaintext,
        intake_id=item.id,
        check=check,
        entered_by_id=actor.user_id,
        entered_by=actor.name,
    )
    session.add(row)
    session.flush()
    return row


def _subject(session: Session, item: PaperIntake, ref: str) -> Subject:
    for subject in subjects(session, item):
        if subject.ref == ref:
            return subject
    raise PaperError("対象者が見つかりません", "ref")


def add_scan(
    session: Session, keyring, actor: Actor, item: PaperIntake, ref: str, doc_type: str, data: bytes
) -> PaperPart:
    """A scanned page (the form, or an ID copy), cleaned and sealed at once. Audited."""
    policy.require(actor, "can_scan", VIEW)
    _require_open(item)
    _subject(session, item, ref)
    if doc_type not in terms.DOC_TYPES:
        raise PaperError("書類の種類を選んでください", "doc_type")
    config = current_app.config
    try:
        doc = uploads.process(
            data,
            max_bytes=config["INTAKE_MAX_FILE_BYTES"],
            max_pixels=config["INTAKE_MAX_IMAGE_PIXELS"],
        )
    except uploads.UploadRejected as exc:
        if isinstance(exc, uploads.ActiveContentRejected):
            uploads.audit_refusal(session, actor, exc, where="paper_intake", object_ids=[item.id])
        raise PaperError(f"スキャン画像: {exc}", "file") from None
    total = session.execute(
        select(func.coalesce(func.sum(PaperPart.size_bytes), 0)).where(
            PaperPart.intake_id == item.id
        )
    ).scalar_one()
    if int(total) + len(doc.data) > config["INTAKE_MAX_SUBMISSION_BYTES"]:
        raise PaperError("スキャン画像: この郵送受付の容量の上限を超えます", "file")
    row = _store(session, keyring, item, actor, ref, "document", doc_type, doc.media_type, doc.data)
    trail.record(
        session,
        actor,
        "paper.scan",
        object_type="paper_intake",
        object_ids=[item.id, row.id],
        details={"doc_type": doc_type, "bytes": row.size_bytes},
    )
    session.commit()
    return row


def remove_scan(session: Session, actor: Actor, item: PaperIntake, part_id: uuid.UUID) -> None:
    policy.require(actor, "can_scan", VIEW)
    _require_open(item)
    row = session.get(PaperPart, part_id)
    if row is None or row.intake_id != item.id or row.part != "document":
        raise PaperError("スキャン画像が見つかりません")
    trail.record(
        session,
        actor,
        "paper.scan_remove",
        object_type="paper_intake",
        object_ids=[item.id, row.id],
    )
    session.delete(row)
    session.commit()


@dataclass(frozen=True)
class KeyingResult:
    keyings: int
    agreed: bool
    mismatch: bool

    @property
    def message(self) -> str:
        if self.agreed:
            return "入力を記録しました。2人の入力が一致しました。"
        if self.mismatch:
            return (
                "入力を記録しました。入力が一致しません: 別の担当者が申請用紙を見て、"
                "もう一度入力してください（第三者確認）。"
            )
        return "入力を記録しました。別の担当者による2回目の入力（ブラインド）が必要です。"


def key_number(
    session: Session, keyring, actor: Actor, item: PaperIntake, ref: str, raw: str
) -> KeyingResult:
    """One operator's keying of one person's number. Each operator keys a person once; the
    entry is sealed and compared by MAC only. Audited (never the number)."""
    policy.require(actor, "can_key", VIEW)
    _require_open(item)
    if actor.user_id is None:
        raise PaperError("番号の入力はポータルの利用者として行ってください（二重入力の確認に必要）")
    _subject(session, item, ref)
    req = session.get(CollectionRequest, item.request_id)
    added_here = any(p.subject_ref == ref and p.part == "identity" for p in item.parts)
    if not added_here and not _open_parts(req, ref)[0]:
        raise PaperError("この方の個人番号は今回の提出の対象ではありません", "number")
    numbers = [p for p in item.parts if p.subject_ref == ref and p.part == "number"]
    if any(p.entered_by_id == actor.user_id for p in numbers):
        raise PaperError("この方の番号は既に入力済みです。別の担当者が入力してください", "number")
    if _agreed(numbers) is not None:
        raise PaperError("この方の番号は2人の入力が一致済みです", "number")
    try:
        number = mynumber.normalize(raw)
    except mynumber.InvalidMyNumber as exc:
        raise PaperError(f"個人番号: {exc}", "number") from None
    check = _check_mac(keyring, item, ref, number)
    payload = parts.number_payload(number)
    del number
    row = _store(session, keyring, item, actor, ref, "number", "", None, payload, check=check)
    del payload
    numbers.append(row)
    agreed = _agreed(numbers) is not None
    result = KeyingResult(len(numbers), agreed, len(numbers) >= 2 and not agreed)
    trail.record(
        session,
        actor,
        "paper.key",
        object_type="paper_intake",
        object_ids=[item.id],
        details={"ref": ref, "entry": len(numbers), "agreed": agreed, "mismatch": result.mismatch},
    )
    session.commit()
    session.refresh(item)
    return result


def add_dependent(
    session: Session,
    keyring,
    actor: Actor,
    item: PaperIntake,
    *,
    name: str,
    kana: str | None,
    relation: str,
    birth_date: dt.date | str,
) -> str:
    """A dependent written into the form's （追加） rows: the identity is sealed like the
    web's. Returns the new ref."""
    policy.require(actor, "can_key", VIEW)
    _require_open(item)
    req = session.get(CollectionRequest, item.request_id)
    if not is_employee_request(session, req) or req.status != RequestStatus.ISSUED:
        raise PaperError("扶養親族の追加は役職員の初回の提出でのみできます")
    name = _free_text(name, "氏名", 100, required=True, field="name")
    kana = _free_text(kana, "氏名（フリガナ）", 100, field="kana")
    relation = _free_text(relation, "続柄", 20, required=True, field="relation")
    if isinstance(birth_date, str):
        try:
            birth_date = jptime.parse_date(birth_date)
        except jptime.InvalidDate as exc:
            raise PaperError(f"生年月日: {exc}", "birth_date") from None
    if birth_date > jptime.today_jst():
        raise PaperError("生年月日: 未来の日付は入力できません", "birth_date")
    ref = next_added_ref(subjects(session, item))
    if ref is None:
        raise PaperError("追加できる扶養親族は10人までです")
    payload = parts.identity_payload(name, kana, relation, birth_date)
    _store(session, keyring, item, actor, ref, "identity", relation, None, payload)
    trail.record(
        session, actor, "paper.add_dependent", object_type="paper_intake", object_ids=[item.id]
    )
    session.commit()
    session.refresh(item)
    return ref


def exclude(
    session: Session, keyring, actor: Actor, item: PaperIntake, ref: str, reason: str
) -> None:
    """A listed dependent marked 対象外 on the form."""
    policy.require(actor, "can_key", VIEW)
    _require_open(item)
    subject = _subject(session, item, ref)
    req = session.get(CollectionRequest, item.request_id)
    if subject.role != "dependent" or req.status != RequestStatus.ISSUED:
        raise PaperError("この対象者は対象外にできません")
    if reason not in terms.EXCLUDE_REASONS:
        raise PaperError("対象外とする理由: 選んでください", "reason")
    session.execute(
        delete(PaperPart).where(PaperPart.intake_id == item.id, PaperPart.subject_ref == ref)
    )
    _store(
        session,
        keyring,
        item,
        actor,
        ref,
        "excluded",
        "",
        None,
        parts.excluded_payload(reason),
    )
    trail.record(
        session,
        actor,
        "paper.exclude",
        object_type="paper_intake",
        object_ids=[item.id],
        details={"ref": ref, "reason": reason},
    )
    session.commit()
    session.refresh(item)


def finish(session: Session, keyring, actor: Actor, item: PaperIntake) -> Submission:
    """Every number agreed by two operators, at least one scan: the envelope becomes a
    received submission (sealed parts moved unchanged) in the verification queue."""
    policy.require(actor, "can_finish", VIEW)
    _require_open(item)
    req = session.get(CollectionRequest, item.request_id)
    if req.status not in RequestStatus.OPEN_FOR_INPUT:
        raise PaperError(f"この依頼は「{req.status_label}」のため、確認待ちに登録できません")
    states = state(session, item)
    missing = []
    agreed_parts: dict[str, PaperPart] = {}
    for rs in states:
        if rs.excluded:
            continue
        if rs.number_open:
            numbers = [
                p for p in item.parts if p.subject_ref == rs.subject.ref and p.part == "number"
            ]
            winner = _agreed(numbers)
            if winner is None:
                missing.append(f"{rs.subject.display_name()}: 個人番号の二重入力が一致していません")
            else:
                agreed_parts[rs.subject.ref] = winner
    needs_documents = any(rs.documents_open and not rs.excluded for rs in states)
    scans = [p for p in item.parts if p.part == "document"]
    if needs_documents and not scans:
        missing.append("申請用紙・確認書類のスキャン画像がありません")
    if missing:
        raise PaperError("確認待ちに登録できません: " + "／".join(missing))
    key = public_key(keyring)
    seq = session.execute(
        select(func.coalesce(func.max(Submission.seq), 0)).where(Submission.request_id == req.id)
    ).scalar_one()
    submission = Submission(
        id=item.submission_id,
        request_id=req.id,
        seq=int(seq) + 1,
        kind="paper",
        status=SubmissionStatus.DRAFT,
        format_version=sealing.FORMAT_VERSION,
        key_id=key.key_id,
        size_bytes=0,
    )
    session.add(submission)
    session.flush()
    kept = [p for p in item.parts if p.part in ("document", "identity", "excluded")]
    kept += list(agreed_parts.values())
    for part in kept:
        session.add(
            SubmissionPart(
                id=part.id,
                submission_id=submission.id,
                subject_ref=part.subject_ref,
                part=part.part,
                doc_type=part.doc_type,
                media_type=part.media_type,
                size_bytes=part.size_bytes,
                sealed=part.sealed,
                digest=part.digest,
                created_at=part.created_at,
            )
        )
    session.flush()
    # Every keyed entry goes, the losing ones included: only the agreed value was moved.
    session.execute(delete(PaperPart).where(PaperPart.intake_id == item.id))
    item.status = PaperIntakeStatus.SUBMITTED
    item.finished_by = actor.name
    item.finished_at = utcnow()
    refs = {p.subject_ref for p in kept}
    roles = {s.subject.ref: s.subject.role for s in states}
    excluded = {p.subject_ref for p in kept if p.part == "excluded"}
    manifest_subjects = [
        {"ref": ref, "role": roles.get(ref, "added"), "excluded": ref in excluded}
        for ref in sorted(refs, key=lambda r: (roles.get(r) != "self", r))
    ]
    consented = dt.datetime.combine(item.received_on, dt.time(0, 0), tzinfo=jptime.JST)
    return receive.receive(
        session,
        req,
        submission,
        key,
        actor,
        consented_at=consented,
        subjects=manifest_subjects,
        action="paper.submit",
        note="郵送",
    )


def return_documents(
    session: Session,
    actor: Actor,
    item: PaperIntake,
    *,
    sent_on: dt.date | str,
    carrier: str,
    method: str,
    cost_yen: int | None = None,
    tracking: str | None = None,
) -> None:
    """Paper documents sent back to the subject (spec 5.2-5 提出書類等の返送); the postage is
    recorded on the return side. Audited."""
    policy.require(actor, "can_return", VIEW)
    if item.returned_on is not None:
        raise PaperError("この郵送受付の書類は返送済みです")
    sent_on = _past_date(sent_on, "返送日", "sent_on")
    entry = _return_postage(
        session,
        actor,
        day=sent_on,
        carrier=carrier,
        method=method,
        cost_yen=cost_yen,
        tracking=tracking,
        request_id=item.request_id,
        note="提出書類の返送",
    )
    item.returned_on = sent_on
    item.return_postage_id = entry.id
    req = session.get(CollectionRequest, item.request_id)
    trail.record(
        session,
        actor,
        "paper.return_documents",
        object_type="paper_intake",
        object_ids=[item.id, req.id],
        details={"sent_on": sent_on.isoformat(), "tracking_number": tracking},
    )
    history.record_event(
        session, req, "documents_returned", actor, note=f"追跡番号 {tracking or 'なし'}"
    )
    session.commit()


def open_intakes(session: Session, limit: int = 500) -> list[PaperIntake]:
    return list(
        session.execute(
            select(PaperIntake)
            .where(PaperIntake.status == PaperIntakeStatus.OPEN)
            .order_by(PaperIntake.recorded_at)
            .limit(limit)
        ).scalars()
    )


def recent_intakes(session: Session, limit: int = 100) -> list[PaperIntake]:
    return list(
        session.execute(
            select(PaperIntake)
            .where(PaperIntake.status != PaperIntakeStatus.OPEN)
            .order_by(PaperIntake.recorded_at.desc())
            .limit(limit)
        ).scalars()
    )
