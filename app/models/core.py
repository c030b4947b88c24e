"""Core tables: people, numbers, data keys, users and roster, case assignments, audit chain.

Only ciphertext, blind indexes and the columns needed for 照合 (name, kana, birth date,
employee / member number) are stored in the clear. Alembic owns the schema: every change here
comes with a migration in ``migrations/versions``.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask_appbuilder import Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.system_sealed import TOTP_SECRET
from app.models.types import UtcDateTime

db = SQLA()


def utcnow() -> dt.datetime:
    """Times are stored in UTC and shown in JST."""
    return dt.datetime.now(dt.UTC)


class PersonKind:
    EMPLOYEE = "employee"
    DEPENDENT = "dependent"
    EXTERNAL = "external"
    LABELS = {EMPLOYEE: "役職員", DEPENDENT: "扶養親族", EXTERNAL: "外部委員等"}
    ALL = (EMPLOYEE, DEPENDENT, EXTERNAL)


class HandlerRosterEntry(Model):
    """情報取扱者名簿: only people on it, approved by the client, may handle numbers."""

    __tablename__ = "handler_roster_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(100))
    nationality: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|approved|revoked
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def is_approved(self) -> bool:
        return self.status == "approved" and self.approved_at is not None

    def __repr__(self) -> str:
        return f"{self.name}（{self.department} {self.title}）"


class VaultUser(User):
    """FAB's user plus what the vault needs: roster link, TOTP secret, lockout."""

    __tablename__ = "ab_user"

    # One roster entry names one person, so it belongs to at most one account: otherwise an
    # administrator could link a new account to someone else's approved entry.
    roster_entry_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("handler_roster_entry.id"), nullable=True, unique=True
    )
    # Who requested the last approved change of this account's roles, roster link or
    # credentials (app.access.accounts): that person may never count on this account's approval.
    access_set_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # When the system last issued this account's credentials (one-time password, TOTP reset);
    # a session signed in before then ends (part of app.web.identity.access_grant).
    credentials_issued_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Who was last shown this account's one-time password (the approver; None when the
    # server's shell printed it): they may have signed in first and kept the account, so the
    # account never counts as a second person against them (app.access.accounts.approver_conflict).
    credentials_issued_to_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Encrypted under the KEK ring (see app.vault.envelopes.seal_system); never stored in the clear.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, info=TOTP_SECRET.info()
    )
    totp_enrolled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Set when someone other than the user chose the password (creation, reset): the user
    # must replace it before anything else, so an administrator never knows a live password.
    password_change_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Copied into the session cookie at sign-in and checked on every request: logout and lock
    # raise it, which ends every session of the user at once (app.web.identity.enforce_session).
    session_version: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), nullable=False
    )
    # The TOTP time step of the last accepted code: that code, or an older one, is refused.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    roster_entry: Mapped[HandlerRosterEntry | None] = relationship(HandlerRosterEntry)


class Person(Model):
    """A subject: employee, dependent (linked to the employee) or external member."""

    __tablename__ = "person"
    # No index on name: names are searched by partial match, which a B-tree cannot serve.
    # Partial indexes where most rows hold NULL: every query compares the column, which
    # implies NOT NULL, and the bulk import does not write those rows into them.
    __table_args__ = (
        Index("ix_person_code", "kind", "code"),
        Index("ix_person_birth_date", "birth_date"),
        Index(
            "ix_person_household",
            "household_head_id",
            "dependent_seq",
            postgresql_where=text("household_head_id IS NOT NULL"),
            sqlite_where=text("household_head_id IS NOT NULL"),
        ),
        Index(
            "ix_person_delete_after",
            "delete_after",
            postgresql_where=text("delete_after IS NOT NULL"),
            sqlite_where=text("delete_after IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(20))
    # 職員番号 (employees) or 委員番号 (external members); dependents carry their employee's.
    code: Mapped[str | None] = mapped_column(String(50))
    household_head_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("person.id"), nullable=True
    )
    dependent_seq: Mapped[int] = mapped_column(Integer, default=0)  # 扶養者コード suffix
    relation: Mapped[str | None] = mapped_column(String(50))  # 続柄
    name: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    postal_code: Mapped[str | None] = mapped_column(String(10))
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email: Mapped[str | None] = mapped_column(String(320))
    ended_on: Mapped[dt.date | None] = mapped_column(Date)  # 退職日 / 委嘱終了日
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|disposed
    # Storage lifecycle (app.lifecycle.retention, app.lifecycle.disposal): the rule applied and the 削除予定日;
    # a disposed person's row stays as the tombstone, every personal column scrubbed.
    retention_basis: Mapped[str | None] = mapped_column(String(200))
    delete_after: Mapped[dt.date | None] = mapped_column(Date)
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # When the number was first registered, copied onto the tombstone at disposal (the number
    # record goes): a month's 'stored at month end' recomputed later stays what it was.
    number_registered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)

    household_head: Mapped[Person | None] = relationship(
        "Person", remote_side=[id], back_populates="dependents"
    )
    dependents: Mapped[list[Person]] = relationship(
        "Person", back_populates="household_head", order_by="Person.dependent_seq"
    )

    @property
    def kind_label(self) -> str:
        return PersonKind.LABELS.get(self.kind, self.kind)

    @property
    def dependent_code(self) -> str | None:
        """扶養者コード: 職員番号 plus a two-digit sequence, ``-00`` for the employee."""
        if self.kind == PersonKind.EXTERNAL or not self.code:
            return None
        return f"{self.code}-{self.dependent_seq:02d}"


class DataKey(Model):
    """A person's data key, wrapped by a KEK; destroying this row is crypto-shredding."""

    __tablename__ = "data_key"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("person.id"), unique=True, index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    kek_version: Mapped[int] = mapped_column(Integer)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    rewrapped_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    person: Mapped[Person] = relationship(Person)


class MyNumberRecord(Model):
    """One number of one person: ciphertext under the person's DEK plus its blind index.

    A number the municipality re-issues is not overwritten: the old record is kept, still
    encrypted, with status ``superseded``. Only one active record may hold a given number.
    """

    __tablename__ = "my_number_record"
    __table_args__ = (
        Index(
            "uq_my_number_active_blind_index",
            "blind_index",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_my_number_person", "person_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("person.id"))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    blind_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The last four digits, for the masked display ****-****-9018 (like a card's last four).
    last4: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|superseded
    source: Mapped[str] = mapped_column(String(20))  # import|web|paper|manual
    registered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    person: Mapped[Person] = relationship(Person)

    SOURCE_LABELS = {
        "import": "CSV取込",
        "web": "Webフォーム",
        "paper": "郵送（書面）",
        "manual": "画面で入力",
    }

    @property
    def source_label(self) -> str:
        """How the number came in, as the screens say it."""
        return self.SOURCE_LABELS.get(self.source, "その他")


class CaseAssignment(Model):
    """An Operator working a person's case (verification, deficiency) may reveal that number."""

    __tablename__ = "case_assignment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("person.id"), index=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("ab_user.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    person: Mapped[Person] = relationship(Person)


class AuditEvent(Model):
    """One append-only, hash-chained audit event. Never holds a number."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    roster_entry_id: Mapped[int | None] = mapped_column(Integer)
    roles: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(100), index=True)
    object_type: Mapped[str | None] = mapped_column(String(50))
    object_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    purpose: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    outcome: Mapped[str] = mapped_column(String(20))  # success|denied|failure
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON object
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Model):
    """The single row that serialises appends and holds the newest hash."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Model):
    """An Ed25519 signature over (seq, hash): verifiable with the public key alone."""

    __tablename__ = "audit_checkpoint"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    signature: Mapped[str] = mapped_column(String(200))  # base64
