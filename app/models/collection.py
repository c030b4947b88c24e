"""Collection operations (spec 5.2): campaigns, letter texts, deliveries, print batches,
reminders, paper intake with double keying, verification cases, retained documents.

What is deliberately *not* here: a plaintext number, a link token, or a rendered kit in the
clear. Keyed numbers of paper forms are HPKE-sealed to the intake key like web submissions
(with a keyed MAC for the blind comparison); rendered print files are sealed under a
KEK-derived key and deleted once the batch is posted; retained ID images (only when the
client's policy keeps them) are encrypted under the person's DEK, so crypto-shredding covers
them.

A request's stage for the client (作成 → 送付済 → 督促済 → 提出済 → 確認中 → 完了 | 不備 →
再提出 | 辞退) is derived from the intake status plus ``sent_at`` / ``reminder_count`` on the
request (see ``app.collection.campaigns.stage``): the public form keeps its own, smaller state machine.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.core import utcnow
from app.models.intake import CollectionRequest
from app.models.system_sealed import PRINT_FILE, TARGET_UPLOAD, TARGET_UPLOAD_RESULT
from app.models.types import UtcDateTime


class CampaignKind:
    EMPLOYEE = "employee"  # 役職員 and their dependents: one request per household
    EXTERNAL = "external"  # 外部委員等: one request per person, monthly (spec 5.2-4)
    LABELS = {EMPLOYEE: "役職員（扶養親族を含む）", EXTERNAL: "外部委員等（月次）"}
    ALL = (EMPLOYEE, EXTERNAL)


class Channel:
    EMAIL = "email"  # a link by e-mail (spec 5.2-3 なお書き)
    POST = "post"  # a printed kit with QR code and return envelope
    LABELS = {EMAIL: "メール", POST: "郵送"}
    ALL = (EMAIL, POST)


class Stage:
    """What the client sees for a request (derived, see ``app.collection.campaigns.stage``)."""

    CREATED = "created"
    SENT = "sent"
    REMINDED = "reminded"
    SUBMITTED = "submitted"
    RESUBMITTED = "resubmitted"
    VERIFYING = "verifying"
    DEFICIENT = "deficient"
    COMPLETED = "completed"
    DECLINED = "declined"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    LABELS = {
        CREATED: "作成",
        SENT: "送付済",
        REMINDED: "督促済",
        SUBMITTED: "提出済",
        RESUBMITTED: "再提出",
        VERIFYING: "確認中",
        DEFICIENT: "不備",
        COMPLETED: "完了",
        DECLINED: "辞退",
        REFUSED: "不受理",
        CANCELLED: "無効",
    }
    ALL = tuple(LABELS)
    # Not submitted yet: what dunning chases and the overdue list shows.
    WAITING = (CREATED, SENT, REMINDED)


class Campaign(Model):
    """One collection order from the client: a kind, a deadline, the client's texts."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    month: Mapped[str | None] = mapped_column(String(7))  # 対象月 YYYY-MM (external members)
    deadline: Mapped[dt.date] = mapped_column(Date)  # a business day (moved forward if not)
    purpose_text: Mapped[str] = mapped_column(Text)  # 利用目的, the client's wording
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open|closed
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    letters: Mapped[list[LetterTemplate]] = relationship(
        "LetterTemplate", back_populates="campaign", order_by="LetterTemplate.kind"
    )

    @property
    def kind_label(self) -> str:
        return CampaignKind.LABELS.get(self.kind, self.kind)


class LetterKind:
    REQUEST_EMAIL = "request_email"
    KIT_GUIDE = "kit_guide"
    REMINDER_EMAIL = "reminder_email"
    REMINDER_LETTER = "reminder_letter"
    DEFICIENCY_EMAIL = "deficiency_email"
    DEFICIENCY_LETTER = "deficiency_letter"
    LABELS = {
        REQUEST_EMAIL: "提出依頼メール",
        KIT_GUIDE: "収集キットの案内文",
        REMINDER_EMAIL: "督促メール",
        REMINDER_LETTER: "督促状（郵送）",
        DEFICIENCY_EMAIL: "不備のお知らせメール",
        DEFICIENCY_LETTER: "不備のお知らせ（郵送）",
    }
    ALL = tuple(LABELS)
    EMAILS = (REQUEST_EMAIL, REMINDER_EMAIL, DEFICIENCY_EMAIL)


class LetterTemplate(Model):
    """The client's wording (spec 5.2-1) for one letter or e-mail, with placeholders."""

    __tablename__ = "letter_template"
    __table_args__ = (UniqueConstraint("campaign_id", "kind", name="uq_letter_template_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaign.id"))
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(String(200))  # e-mail subject or letter title
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    campaign: Mapped[Campaign] = relationship(Campaign, back_populates="letters")

    @property
    def kind_label(self) -> str:
        return LetterKind.LABELS.get(self.kind, self.kind)


class DeliveryKind:
    REQUEST = "request"  # the first e-mail or the kit
    REMINDER = "reminder"  # 督促
    DEFICIENCY = "deficiency"  # 不備のお知らせ
    RECEIPT = "receipt"  # 受付のお知らせ after a web submission (app.collection.receipts)
    LABELS = {
        REQUEST: "依頼",
        REMINDER: "督促",
        DEFICIENCY: "不備のお知らせ",
        RECEIPT: "受付のお知らせ",
    }


class DeliveryStatus:
    PENDING = "pending"  # e-mail: queued; post: waiting for the next print batch
    SENDING = "sending"  # handed to SMTP, outcome not yet recorded (never sent again blindly)
    SENT = "sent"  # e-mail accepted by SMTP, or letter posted
    FAILED = "failed"  # temporary failure: retried at next_attempt_at
    BOUNCED = "bounced"  # permanent failure (address refused, bounce reported)
    BATCHED = "batched"  # in a print batch, not posted yet
    CANCELLED = "cancelled"  # no longer needed (submitted, request replaced)
    GAVE_UP = "gave_up"  # temporary failures until MAIL_MAX_ATTEMPTS: an operator decides
    LABELS = {
        PENDING: "送信待ち",
        SENDING: "送信中（結果未確認）",
        SENT: "送付済",
        FAILED: "再送待ち",
        BOUNCED: "不達",
        BATCHED: "印刷待ち",
        CANCELLED: "取消",
        GAVE_UP: "送信失敗（要対応）",
    }


class Delivery(Model):
    """One message to a subject by one channel; ``(request, kind, seq)`` makes it once only."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("request_id", "kind", "seq", name="uq_delivery_once"),
        Index("ix_delivery_status_next", "status", "next_attempt_at"),
        Index("ix_delivery_campaign", "campaign_id", "channel", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("collection_request.id"))
    campaign_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("campaign.id"))
    kind: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(Integer, default=1)
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(300), index=True)
    print_batch_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("print_batch.id"))
    batch_position: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    @property
    def status_label(self) -> str:
        return DeliveryStatus.LABELS.get(self.status, self.status)

    @property
    def kind_label(self) -> str:
        return DeliveryKind.LABELS.get(self.kind, self.kind)


class PrintBatch(Model):
    """A campaign's pending letters (kits, reminders, deficiency letters) in postal-code order,
    rendered by a job into sealed PDF parts; posting it records postage per letter."""

    __tablename__ = "print_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaign.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    rendered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    posted_on: Mapped[dt.date | None] = mapped_column(Date)
    posted_by: Mapped[str | None] = mapped_column(String(200))

    STATUS_LABELS = {
        "queued": "作成待ち",
        "rendering": "作成中",
        "ready": "印刷可",
        "failed": "作成失敗",
        "posted": "発送済",
    }

    @property
    def status_label(self) -> str:
        return self.STATUS_LABELS.get(self.status, self.status)


class PrintBatchFile(Model):
    """One rendered part of a print batch (it carries names, addresses and link QR codes):
    sealed under a KEK-derived key, deleted when the batch is posted."""

    __tablename__ = "print_batch_file"
    __table_args__ = (UniqueConstraint("batch_id", "part_no", name="uq_print_batch_file_part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(Integer, ForeignKey("print_batch.id"))
    part_no: Mapped[int] = mapped_column(Integer)
    first_position: Mapped[int] = mapped_column(Integer)
    last_position: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary, info=PRINT_FILE.info())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class TargetUpload(Model):
    """A target list uploaded in the portal, checked and loaded by a job (the page shows its
    progress). The file is sealed under a KEK-derived key until the job has read it, then
    dropped; the job's findings (every problem, or the counts) are sealed likewise. The job
    acts as the uploading user: ``actor`` is that user's audit identity at upload time
    (name, roles, roster link: no personal data)."""

    __tablename__ = "target_upload"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaign.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, info=TARGET_UPLOAD.info())
    result: Mapped[bytes | None] = mapped_column(LargeBinary, info=TARGET_UPLOAD_RESULT.info())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    STATUS_LABELS = {
        "queued": "受付済み",
        "running": "確認・登録しています",
        "loaded": "登録しました",
        "checked": "確認しました（登録なし）",
        "refused": "問題があるため登録しませんでした",
        "failed": "処理できませんでした",
    }
    RUNNING = ("queued", "running")

    @property
    def status_label(self) -> str:
        return self.STATUS_LABELS.get(self.status, self.status)


class Reminder(Model):
    """A 督促 decided by the dunning run of ``run_date``: once per request per run."""

    __tablename__ = "reminder"
    __table_args__ = (
        UniqueConstraint("request_id", "seq", name="uq_reminder_seq"),
        UniqueConstraint("request_id", "run_date", name="uq_reminder_run"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("collection_request.id"))
    seq: Mapped[int] = mapped_column(Integer)
    run_date: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)  # the new date the reminder asks for
    channel: Mapped[str] = mapped_column(String(10))
    delivery_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("delivery.id"))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class PaperIntakeStatus:
    OPEN = "open"  # scanning and keying
    SUBMITTED = "submitted"  # became a received submission in the verification queue
    LABELS = {OPEN: "入力中", SUBMITTED: "確認待ちに登録済"}


class PaperIntake(Model):
    """A returned envelope: tracking number, date, return postage, then scans and keying.

    ``submission_id`` is reserved when the envelope is recorded: every scan and keyed number is
    sealed bound to it, so finishing moves the sealed parts into the submission unchanged.
    """

    __tablename__ = "paper_intake"
    __table_args__ = (Index("ix_paper_intake_request", "request_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("collection_request.id"))
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    tracking_number: Mapped[str | None] = mapped_column(String(50))
    received_on: Mapped[dt.date] = mapped_column(Date)
    postage_entry_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("postage_entry.id"))
    status: Mapped[str] = mapped_column(String(20), default=PaperIntakeStatus.OPEN)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_by: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    returned_on: Mapped[dt.date | None] = mapped_column(Date)  # documents sent back
    return_postage_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("postage_entry.id"))

    parts: Mapped[list[PaperPart]] = relationship(
        "PaperPart", back_populates="intake", order_by="PaperPart.created_at"
    )
    request: Mapped[CollectionRequest] = relationship("CollectionRequest")

    @property
    def status_label(self) -> str:
        return PaperIntakeStatus.LABELS.get(self.status, self.status)


class PaperPart(Model):
    """A sealed piece of a paper submission: a scan, an added dependent's identity, an
    exclusion, or one operator's keying of one person's number.

    A keyed number also carries ``check``: HMAC-SHA256 under a key derived from the index key
    and salted with the intake and person, so two keyings are compared without decrypting
    either and the value cannot be matched against any other table.
    """

    __tablename__ = "paper_part"
    __table_args__ = (Index("ix_paper_part_intake", "intake_id", "subject_ref", "part"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    intake_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("paper_intake.id"))
    subject_ref: Mapped[str] = mapped_column(String(64))
    part: Mapped[str] = mapped_column(String(20))  # number | document | identity | excluded
    doc_type: Mapped[str] = mapped_column(String(30), default="")
    media_type: Mapped[str | None] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))
    check: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    entered_by_id: Mapped[int | None] = mapped_column(Integer)
    entered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    intake: Mapped[PaperIntake] = relationship(PaperIntake, back_populates="parts")


class CaseStatus:
    CLAIMED = "claimed"  # an operator works it
    AWAITING_APPROVAL = "awaiting_approval"  # four-eyes: checked, a second operator must accept
    APPROVING = "approving"  # the second operator has claimed the approval
    CLOSED = "closed"
    LABELS = {
        CLAIMED: "確認中",
        AWAITING_APPROVAL: "承認待ち",
        APPROVING: "承認作業中",
        CLOSED: "終了",
    }
    OPEN = (CLAIMED, AWAITING_APPROVAL, APPROVING)


class Decision:
    ACCEPTED = "accepted"
    DEFICIENT = "deficient"
    REFUSED = "refused"
    RELEASED = "released"  # the operator gave the case back to the queue
    LABELS = {ACCEPTED: "受理・登録", DEFICIENT: "不備", REFUSED: "不受理", RELEASED: "担当解除"}


class VerificationCase(Model):
    """番号確認 + 身元確認 of one received submission (spec 5.2-7), and its decision."""

    __tablename__ = "verification_case"
    __table_args__ = (
        Index("ix_verification_case_request", "request_id", "status"),
        Index("ix_verification_case_decided", "decided_at", "decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("collection_request.id"))
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("submission.id"))
    channel: Mapped[str] = mapped_column(String(10))  # web | paper (of that submission)
    status: Mapped[str] = mapped_column(String(20), default=CaseStatus.CLAIMED)
    claimed_by_id: Mapped[int | None] = mapped_column(Integer)
    claimed_by: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    checked_by_id: Mapped[int | None] = mapped_column(Integer)
    checked_by: Mapped[str | None] = mapped_column(String(200))
    checked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    checklist: Mapped[str] = mapped_column(Text, default="{}")  # JSON {ref: [item, ...]}
    approver_id: Mapped[int | None] = mapped_column(Integer)
    approver: Mapped[str | None] = mapped_column(String(200))
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    reasons: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{"ref", "code"}]
    registered: Mapped[int] = mapped_column(Integer, default=0)  # numbers registered
    note: Mapped[str | None] = mapped_column(Text)

    @property
    def status_label(self) -> str:
        return CaseStatus.LABELS.get(self.status, self.status)

    @property
    def decision_label(self) -> str:
        return Decision.LABELS.get(self.decision or "", "")

    @property
    def checklist_items(self) -> dict:
        return json.loads(self.checklist or "{}")

    @property
    def reason_items(self) -> list[dict]:
        return json.loads(self.reasons or "[]")


class RetainedDocument(Model):
    """An ID image kept after verification because the client's policy says so: encrypted
    under the person's DEK (AAD binds table, column, row), so disposal shreds it too."""

    __tablename__ = "retained_document"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("person.id"), index=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("collection_request.id"))
    doc_type: Mapped[str] = mapped_column(String(30))
    media_type: Mapped[str] = mapped_column(String(50))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CampaignOperator(Model):
    """担当事務取扱担当者: an Operator a ClientStaff user assigned to a campaign.

    The assignment is what lets an Operator claim, open, verify and reveal within the
    campaign: it is decided by the client's staff (never by the Operator), audited, and ended
    (``removed_at``) rather than deleted, so the history of who could work which order stays.
    """

    __tablename__ = "campaign_operator"
    __table_args__ = (Index("ix_campaign_operator_user", "user_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaign.id"), index=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("ab_user.id"))
    user_name: Mapped[str] = mapped_column(String(200))
    assigned_by_id: Mapped[int | None] = mapped_column(Integer)
    assigned_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    removed_by: Mapped[str | None] = mapped_column(String(200))
    removed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
