"""Intake tables: collection requests (the link a subject gets), sealed submissions, inquiries.

No plaintext number is ever stored here. A submission consists of parts, each sealed to the
intake public key (HPKE) the moment the public form receives it, and a sealed manifest that
binds the parts together at submission time. Only metadata that the form needs to guide the
subject (which person, which part, which document type, sizes) is in the clear.

The request's token is stored as SHA-256 only; the token itself exists in the QR code or the
e-mail link and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from flask_appbuilder import Model
from sqlalchemy import (
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

from app.models.core import Person, utcnow
from app.models.types import UtcDateTime


class RequestStatus:
    """A request's life as far as the form is concerned. Mailing and dunning do not change it
    (the form treats a request the same whether it was e-mailed, posted or reminded); they add
    history events (``EVENT_LABELS``) and the client sees a stage derived from both."""

    ISSUED = "issued"  # link issued, nothing submitted yet
    SUBMITTED = "submitted"  # 受付済
    VERIFYING = "verifying"  # 確認中
    DEFICIENT = "deficient"  # 不備あり: the form reopens for what was wrong
    COMPLETED = "completed"  # 完了
    DECLINED = "declined"  # the subject chose 提供しない
    CANCELLED = "cancelled"  # withdrawn or replaced by a new link
    REFUSED = "refused"  # the operator refused the submission (未提供理由 recorded)
    ALL = (ISSUED, SUBMITTED, VERIFYING, DEFICIENT, COMPLETED, DECLINED, CANCELLED, REFUSED)
    LABELS = {
        ISSUED: "未提出",
        SUBMITTED: "受付済",
        VERIFYING: "確認中",
        DEFICIENT: "不備あり",
        COMPLETED: "完了",
        DECLINED: "提供しない（受付済）",
        CANCELLED: "無効",
        REFUSED: "不受理",
    }
    # History rows that record an event without changing the status.
    EVENT_LABELS = {
        "sent": "送付",
        "reminded": "督促",
        "deficiency_notice": "不備のお知らせ送付",
        "receipt_notice": "受付のお知らせ送付",  # promised through the outbox
        "paper_received": "郵送書類の到着",
        "documents_returned": "提出書類の返送",
        "checked": "確認済（承認待ち）",
        "bounced": "メール不達",
    }
    # States in which the form accepts new data.
    OPEN_FOR_INPUT = (ISSUED, DEFICIENT)


class CollectionRequest(Model):
    """One link (QR code / e-mail) for one household (employee + dependents) or one person."""

    __tablename__ = "collection_request"
    __table_args__ = (
        Index("ix_collection_request_person", "person_id", "status"),
        Index("ix_collection_request_campaign", "campaign_id", "status"),
        UniqueConstraint("request_code", name="uq_collection_request_code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("person.id"))
    # SHA-256 of the 128+-bit token; the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    purpose_text: Mapped[str] = mapped_column(Text)  # 利用目的, the client's own text
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.ISSUED)
    status_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # JSON list of {"ref": person id or "new1", "part": "number"|"documents"} the form reopens.
    reopened: Mapped[str] = mapped_column(Text, default="[]")
    decline_reason: Mapped[str | None] = mapped_column(String(50))
    decline_note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Collection operations: the campaign it belongs to, how it reaches the subject,
    # its deadline, the code printed on the kit, and what was sent. All nullable/defaulted, so
    # a link issued by hand (`mynumber request create`) is a request without a campaign.
    campaign_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("campaign.id", name="fk_collection_request_campaign"), nullable=True
    )
    channel: Mapped[str | None] = mapped_column(String(10))  # email | post
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    request_code: Mapped[str | None] = mapped_column(String(20))  # 依頼コード on the kit
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # Reminders that actually went out (e-mail sent / letter posted): the 督促済 stage.
    reminder_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    person: Mapped[Person] = relationship(Person)
    history: Mapped[list[CollectionRequestStatus]] = relationship(
        "CollectionRequestStatus",
        back_populates="request",
        order_by="CollectionRequestStatus.id",
    )
    submissions: Mapped[list[Submission]] = relationship(
        "Submission", back_populates="request", order_by="Submission.seq"
    )

    @property
    def status_label(self) -> str:
        return RequestStatus.LABELS.get(self.status, self.status)

    @property
    def reopened_items(self) -> list[dict]:
        return json.loads(self.reopened or "[]")


class CollectionRequestStatus(Model):
    """The timestamped history of a request's status: what the client can see at any time."""

    __tablename__ = "collection_request_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("collection_request.id"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    actor_name: Mapped[str] = mapped_column(String(200))
    # Deficiencies: JSON list of {"ref": ..., "code": ...}; declines: [{"code": ...}].
    reason_codes: Mapped[str] = mapped_column(Text, default="[]")
    note: Mapped[str | None] = mapped_column(Text)

    request: Mapped[CollectionRequest] = relationship(CollectionRequest, back_populates="history")

    @property
    def reasons(self) -> list[dict]:
        return json.loads(self.reason_codes or "[]")

    @property
    def label(self) -> str:
        return RequestStatus.LABELS.get(self.status) or RequestStatus.EVENT_LABELS.get(
            self.status, self.status
        )


class SubmissionStatus:
    DRAFT = "draft"  # the subject is still entering; parts are sealed already
    RECEIVED = "received"  # submitted: manifest sealed, receipt number given
    DISPOSED = "disposed"  # decided: sealed parts and manifest deleted, metadata kept


class Submission(Model):
    """What a subject sent through the form: sealed parts plus a sealed manifest.

    ``seq`` 1 is the first submission of a request, 2+ are resubmissions after a deficiency
    (holding only what was reopened). ``key_id`` names the intake key the parts are sealed to.
    """

    __tablename__ = "submission"
    __table_args__ = (
        UniqueConstraint("request_id", "seq", name="uq_submission_request_seq"),
        Index("ix_submission_status_received", "status", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("collection_request.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default="web")  # web | paper
    status: Mapped[str] = mapped_column(String(20), default=SubmissionStatus.DRAFT)
    format_version: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(64))
    receipt_no: Mapped[str | None] = mapped_column(String(20), unique=True)
    manifest_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    received_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    request: Mapped[CollectionRequest] = relationship(
        CollectionRequest, back_populates="submissions"
    )
    parts: Mapped[list[SubmissionPart]] = relationship(
        "SubmissionPart",
        back_populates="submission",
        order_by="SubmissionPart.created_at",
        cascade="all, delete-orphan",
    )


class SubmissionPart(Model):
    """One sealed piece: a number, a document image/PDF, or an added dependent's identity."""

    __tablename__ = "submission_part"
    __table_args__ = (
        UniqueConstraint(
            "submission_id", "subject_ref", "part", "doc_type", name="uq_submission_part_slot"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("submission.id"), index=True)
    subject_ref: Mapped[str] = mapped_column(String(64))  # person id, or "new1" for an added one
    part: Mapped[str] = mapped_column(String(20))  # number | document | identity
    doc_type: Mapped[str] = mapped_column(String(30), default="")  # card_front, license, ...
    media_type: Mapped[str | None] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # SHA-256 of ``sealed``, taken when it was stored: the manifest binds parts by it without
    # reading megabytes back, and opening checks it against the bytes actually found.
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    submission: Mapped[Submission] = relationship(Submission, back_populates="parts")


class InquiryStatus:
    """受付 → 対応中 → 回答済 → 完了 (``app.operations.desk`` owns the transitions)."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"
    LABELS = {RECEIVED: "受付", IN_PROGRESS: "対応中", ANSWERED: "回答済", CLOSED: "完了"}
    OPEN = (RECEIVED, IN_PROGRESS, ANSWERED)


class InquirySource:
    SUBJECT = "subject"  # the public form's contact page
    CLIENT = "client"  # a ClientStaff user from the portal
    LABELS = {SUBJECT: "本人（公開フォーム）", CLIENT: "発注者（ポータル）"}


class Inquiry(Model):
    """A question to the 問合せ窓口 (spec 6-2/3): from a subject through the public contact
    form or from the client's staff through the portal; Operators assign, answer and close it.
    Never holds a My Number: ``app.operations.desk`` refuses a body or response containing one."""

    __tablename__ = "inquiry"
    __table_args__ = (Index("ix_inquiry_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(20), default=InquirySource.SUBJECT)
    name: Mapped[str] = mapped_column(String(100))
    contact: Mapped[str] = mapped_column(String(200))  # e-mail address or phone number
    category: Mapped[str] = mapped_column(String(30))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=InquiryStatus.RECEIVED)
    # The ClientStaff account that filed it from the portal (it sees its own).
    filed_by_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("ab_user.id"))
    assignee_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("ab_user.id"))
    assignee_name: Mapped[str | None] = mapped_column(String(200))
    response: Mapped[str | None] = mapped_column(Text)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow
    )
    staff_note: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[str | None] = mapped_column(String(200))
    handled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    actions: Mapped[list[InquiryAction]] = relationship(
        "InquiryAction", back_populates="inquiry", order_by="InquiryAction.id"
    )

    @property
    def status_label(self) -> str:
        return InquiryStatus.LABELS.get(self.status, self.status)

    @property
    def source_label(self) -> str:
        return InquirySource.LABELS.get(self.source, self.source)


class InquiryAction(Model):
    """One step of an inquiry's history: who did what, when (status changes also audited)."""

    __tablename__ = "inquiry_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(Integer, ForeignKey("inquiry.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(30))  # receive|assign|start|respond|close|note
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)

    inquiry: Mapped[Inquiry] = relationship(Inquiry, back_populates="actions")

    LABELS = {
        "receive": "受付",
        "assign": "担当者の割当",
        "start": "対応開始",
        "respond": "回答",
        "close": "完了",
        "reopen": "再対応",
        "mail": "回答をメールで送信",
        "mail_failed": "回答メールの送信に失敗",
    }

    @property
    def label(self) -> str:
        return self.LABELS.get(self.action, self.action)
