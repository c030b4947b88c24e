"""Opening a received submission for an operator: policy first, the audit event committed
next, and only then is anything decrypted with the intake private key from the key ring.

    received_submissions(session, limit)                  # metadata only, nothing opened
    opened = open_submission(session, keyring, actor, submission_id, purpose)

A document is shown, never handed out: a PDF (a 住民票) is rendered to page images in
memory when the submission is opened (``app.platform.pdfpages``), so every image the operator
sees comes from this one audited opening and nothing is downloaded to their PC.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import assignments, policy
from app.audit import trail
from app.collection.subjects import listed_subjects
from app.collection.terms import DOC_TYPES, EXCLUDE_REASONS, INTAKE_VIEW
from app.core.actor import Actor
from app.models import (
    CollectionRequest,
    Person,
    Submission,
    SubmissionPart,
    SubmissionStatus,
)
from app.platform import pdfpages
from app.vault import sealing


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
    pages: list[bytes] = field(default_factory=list)  # a PDF's pages as JPEG (in memory)
    pages_total: int = 0
    render_error: str | None = None

    @property
    def label(self) -> str:
        return DOC_TYPES.get(self.doc_type, self.doc_type)

    @property
    def images(self) -> list[bytes]:
        """What the operator sees: the photo itself, or the rendered pages of a PDF."""
        return [self.data] if self.media_type == "image/jpeg" else self.pages

    @property
    def pages_not_shown(self) -> int:
        return max(self.pages_total - len(self.pages), 0)


def _viewable(doc: OpenedDocument) -> OpenedDocument:
    """Render a PDF's pages at opening; a PDF that cannot be rendered says why (the operator
    then marks it unreadable: 番号確認書類の写真が読み取れません)."""
    if doc.media_type == "application/pdf":
        try:
            rendered = pdfpages.render(doc.data)
        except pdfpages.PdfRenderError as exc:
            doc.render_error = str(exc)
        else:
            doc.pages, doc.pages_total = rendered.images, rendered.total
    return doc


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
    flag: str | None = None  # why the number cannot be accepted (app.collection.duplicates)

    def display_name(self) -> str:
        return self.name or f"追加した扶養親族（{self.relation or '続柄未入力'}）"


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
                _viewable(OpenedDocument(row.id, meta["doc_type"], meta["media_type"], data))
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
