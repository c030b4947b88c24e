"""Receiving: a draft becomes a received submission (the web form's submit and paper intake's
finish alike), the subject's 提供しない, and what the link shows afterwards.

    submit(session, req, draft, public_key, actor, consented_at)    # seals the manifest; commits
    decline(session, req, actor, code, note); subject_status(session, req)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.audit import trail
from app.collection import parts
from app.collection.drafts import existing_draft, progress, require_open
from app.collection.history import change_status
from app.collection.subjects import in_request
from app.collection.terms import (
    DECLINE_REASONS,
    DEFICIENCY_CODES,
    RECEIPT_ALPHABET,
    IntakeError,
    free_text,
)
from app.core.actor import Actor
from app.models import CollectionRequest, RequestStatus, Submission, SubmissionStatus, utcnow
from app.platform import outbox
from app.vault import sealing

SEND_RECEIPT = "app.jobs.outbox.send_receipt"  # the job, by name (app.platform.queue)


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
    require_open(req)
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
    受付済, audit. Shared by the web form (``submit``) and paper intake, so both kinds of
    submission look the same to verification. Commits."""
    require_open(req)
    # Metadata only: the sealed bytes are not read back (their digest was taken on storing).
    # As the database has them, not as the draft's writes left them in memory: the manifest
    # binds exactly the rows that are stored.
    stored = parts.stored(session, draft, fresh=True)
    if not stored:
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
            for p in stored
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
    parts.refresh_size(session, draft)
    trail.record(
        session,
        actor,
        action,
        object_type="submission",
        object_ids=[draft.id, req.id],
        details={
            "seq": draft.seq,
            "parts": len(stored),
            "bytes": draft.size_bytes,
            "kind": draft.kind,
        },
    )
    req.reopened = "[]"
    if action == "intake.submit":  # the receipt mail (受付のお知らせ), in this transaction
        promise_receipt(session, draft.id)
    change_status(
        session,
        req,
        RequestStatus.SUBMITTED,
        actor,
        note=f"{note + ' ' if note else ''}受付番号 {draft.receipt_no}",
    )
    submission_id, receipt_no = draft.id, draft.receipt_no
    session.commit()
    # The caller's next reads are these two (the receipt page, the receipt mail's key): keep
    # them loaded rather than reading the row back because the commit expired it.
    set_committed_value(draft, "id", submission_id)
    set_committed_value(draft, "receipt_no", receipt_no)
    return draft


def promise_receipt(session: Session, submission_id: uuid.UUID) -> None:
    """The receipt mail of a web submission, promised by name through the outbox in the
    transaction that receives it (no commit): the job (``SEND_RECEIPT``) builds the delivery
    in the worker, since the public form cannot read the key ring."""
    outbox.add(session, SEND_RECEIPT, submission_id, key=receipt_key(submission_id), once=True)


def receipt_key(submission_id: uuid.UUID) -> str:
    """The outbox key of a submission's receipt mail (dispatched after the commit)."""
    return f"receipt:{submission_id}"


def decline(
    session: Session, req: CollectionRequest, actor: Actor, code: str, note: str | None
) -> None:
    """The subject chooses 提供しない; the reason is recorded (never a number). Commits."""
    if req.status != RequestStatus.ISSUED:
        raise IntakeError("この依頼は受付済みのため、提供しない旨の届出はできません")
    if code not in DECLINE_REASONS:
        raise IntakeError("提供しない理由: 選んでください", "reason")
    note = free_text(note, "理由の詳細", 500, field="note")
    trail.record(
        session,
        actor,
        "intake.decline",
        object_type="collection_request",
        object_ids=[req.id],
        details={"reason": code},
    )
    draft = existing_draft(session, req)
    if draft is not None:  # whatever was sealed so far is not wanted any more
        session.delete(draft)
    req.decline_reason = code
    req.decline_note = note
    change_status(session, req, RequestStatus.DECLINED, actor, reasons=[{"code": code}], note=note)
    session.commit()


@dataclass(frozen=True)
class StatusView:
    """What the link shows after submission: the status, never the data."""

    status: str
    label: str
    message: str
    fixes: list[tuple[str, str]]  # (whose, what to fix)
    can_resubmit: bool
    receipt_no: str | None


_STATUS_MESSAGES = {
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


def subject_status(session: Session, req: CollectionRequest) -> StatusView:
    received = [s for s in req.submissions if s.status == SubmissionStatus.RECEIVED]
    receipt = received[-1].receipt_no if received else None
    fixes: list[tuple[str, str]] = []
    if req.status == RequestStatus.DEFICIENT:
        names = {s.ref: s.display_name() for s in in_request(session, req, None)}
        last = next((h for h in reversed(req.history) if h.status == RequestStatus.DEFICIENT), None)
        for item in last.reasons if last else []:
            text = DEFICIENCY_CODES.get(item.get("code"), ("内容をご確認ください。", ()))[0]
            fixes.append((names.get(item.get("ref"), "ご本人"), text))
    return StatusView(
        req.status,
        req.status_label,
        _STATUS_MESSAGES.get(req.status, ""),
        fixes,
        req.status == RequestStatus.DEFICIENT,
        receipt,
    )
