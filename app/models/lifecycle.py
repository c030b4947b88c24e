"""Storage lifecycle tables: retention rules, disposal requests and their items, backups and
return archives.

People appear by id; ``disposal_item`` also keeps each disposed person's 職員番号 / 委員番号
and name for the deletion certificate, sealed under the KEK (never a number). A disposed person's
``person`` row stays, scrubbed of every personal column, as the tombstone (see
``app.lifecycle.disposal``), so that every id recorded here and elsewhere (audit events, export
manifests) keeps pointing at a row.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask_appbuilder import Model
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.core import utcnow
from app.models.system_sealed import DISPOSED_PERSON
from app.models.types import UtcDateTime


class RetentionRule(Model):
    """How long a kind of person is kept after their 終了日 (退職日 / 委嘱終了日).

    ``anchor`` is where the counting starts (``ended_on``, ``jan10_after``: January 10 of
    the year after the end, ``jan31_after``: January 31 of the year after) and ``years`` how
    many years are added; the 削除予定日 is the day after. ``follow_household`` (dependents):
    the employee's date applies too, whichever comes first.
    """

    __tablename__ = "retention_rule"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    anchor: Mapped[str] = mapped_column(String(30))
    years: Mapped[int] = mapped_column(Integer, default=0)
    follow_household: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="migration")


class DisposalKind:
    DATA = "data"  # the stored numbers and everything else of chosen people
    MATERIAL = "material"  # paper originals and other related materials (spec 5.3, last para)
    LABELS = {DATA: "データ（マイナンバーデータベース）", MATERIAL: "紙の原本・その他の資料"}


class DisposalScope:
    PEOPLE = "people"
    DUE = "due"
    ALL = "all"
    MATERIAL = "material"
    LABELS = {
        PEOPLE: "指定した人物",
        DUE: "削除予定日を過ぎた人物",
        ALL: "保管している全員（契約終了時）",
        MATERIAL: "紙の原本・その他の資料",
    }


class DisposalStatus:
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    LABELS = {
        PENDING: "承認待ち",
        APPROVED: "承認済み（未実行）",
        REJECTED: "却下",
        EXECUTED: "廃棄済み",
    }


class DisposalRequest(Model):
    """A request to dispose of data or materials: requested, approved by the client (someone
    other than the requester, with TOTP), executed, certified."""

    __tablename__ = "disposal_request"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    # Materials: what is to be destroyed (e.g. 提出書類の原本 2025年度分 段ボール3箱).
    material_description: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[str | None] = mapped_column(String(200))
    planned_count: Mapped[int] = mapped_column(Integer, default=0)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    requested_by_name: Mapped[str] = mapped_column(String(200))
    # The requester, approver and executor as the certificate names them (roster name,
    # department and title, or 「コマンド操作（root）」), kept as they stood at each step:
    # ``*_by_name`` is the account the audit trail knows, which the client's records do not.
    requested_by_display: Mapped[str | None] = mapped_column(String(300))
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    request_seq: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=DisposalStatus.PENDING)
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_by_name: Mapped[str | None] = mapped_column(String(200))
    decided_by_display: Mapped[str | None] = mapped_column(String(300))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
    decision_seq: Mapped[int | None] = mapped_column(Integer)
    executed_by_id: Mapped[int | None] = mapped_column(Integer)
    executed_by_name: Mapped[str | None] = mapped_column(String(200))
    executed_by_display: Mapped[str | None] = mapped_column(String(300))
    executed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    person_count: Mapped[int | None] = mapped_column(Integer)
    numbers_deleted: Mapped[int | None] = mapped_column(Integer)
    keys_destroyed: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str | None] = mapped_column(Text)
    performed_on: Mapped[dt.date | None] = mapped_column(Date)  # materials
    contractor_ref: Mapped[str | None] = mapped_column(String(200))  # materials
    exec_first_seq: Mapped[int | None] = mapped_column(Integer)
    exec_last_seq: Mapped[int | None] = mapped_column(Integer)
    exec_last_hash: Mapped[str | None] = mapped_column(String(64))
    compacted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # The key closure that ends a data disposal (app.lifecycle.key_closure): the KEK version
    # current at execution, when the older KEKs were retired, and what that made unreadable
    # (JSON: retired versions, backup files), for the certificate.
    kek_version_at_execution: Mapped[int | None] = mapped_column(Integer)
    keys_closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    key_closure: Mapped[str | None] = mapped_column(Text)
    certificate_no: Mapped[str | None] = mapped_column(String(40), unique=True)

    items: Mapped[list[DisposalItem]] = relationship(
        "DisposalItem", back_populates="request", order_by="DisposalItem.id"
    )

    @property
    def short_id(self) -> str:
        return self.id.hex[:8].upper()

    @property
    def status_label(self) -> str:
        return DisposalStatus.LABELS.get(self.status, self.status)

    @property
    def scope_label(self) -> str:
        return DisposalScope.LABELS.get(self.scope, self.scope)

    @property
    def kind_label(self) -> str:
        return DisposalKind.LABELS.get(self.kind, self.kind)


class DisposalItem(Model):
    """One person in a disposal: the scope as approved, then what was destroyed."""

    __tablename__ = "disposal_item"
    __table_args__ = (UniqueConstraint("request_id", "person_id", name="uq_disposal_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("disposal_request.id"), index=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("person.id"), index=True)
    person_kind: Mapped[str] = mapped_column(String(20))
    # 職員番号 / 委員番号 (扶養者コード for a dependent) and the name as they were at
    # execution (JSON), sealed under the KEK before the person row is scrubbed: the
    # certificate lists the people the way the client's own records know them, and nothing
    # of them is readable in the database's bytes. Never a number.
    identity_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, info=DISPOSED_PERSON.info())
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    request: Mapped[DisposalRequest] = relationship(DisposalRequest, back_populates="items")


class BackupRecord(Model):
    """A backup that was written (the file itself is encrypted; see ``app.lifecycle.backup``)."""

    __tablename__ = "backup_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # manual|scheduled|keyring
    file_name: Mapped[str] = mapped_column(String(400))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(20))
    schema_revision: Mapped[str | None] = mapped_column(String(40))
    audit_seq: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    pruned_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class ReturnArchive(Model):
    """An archive of everything stored, encrypted to the client's public key (spec 5.3-4)."""

    __tablename__ = "return_archive"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    requested_by_name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    recipient_public: Mapped[str] = mapped_column(Text)  # the client's public key (not secret)
    recipient_fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|ready|failed
    file_name: Mapped[str | None] = mapped_column(String(400))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    person_count: Mapped[int | None] = mapped_column(Integer)
    number_count: Mapped[int | None] = mapped_column(Integer)
    audit_seq: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(String(400))

    STATUS_LABELS = {"pending": "作成中", "ready": "作成済み", "failed": "失敗"}
