"""情報取扱者名簿 changes: proposed by the operator, approved by the client before they apply."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.core import HandlerRosterEntry, utcnow
from app.models.types import UtcDateTime


class RosterChange(Model):
    """A proposed addition, change or revocation of a roster entry (spec 7.5-4)."""

    __tablename__ = "roster_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("handler_roster_entry.id"), nullable=True
    )
    action: Mapped[str] = mapped_column(String(20))  # add|update|revoke
    name: Mapped[str | None] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(100))
    nationality: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    requested_by_name: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|approved|rejected
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_by_name: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)

    entry: Mapped[HandlerRosterEntry | None] = relationship(HandlerRosterEntry)

    ACTION_LABELS = {"add": "追加", "update": "変更", "revoke": "削除（取消）"}
    STATUS_LABELS = {"pending": "承認待ち", "approved": "承認済み", "rejected": "却下"}


class AccountChange(Model):
    """A requested change of an account that can reach personal data: its creation, its roles,
    its roster link, a password or TOTP reset. It applies only when a ClientStaff user other
    than the requester (and not an account the requester set up) approves (app.access.accounts)."""

    __tablename__ = "account_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key: the request stays on record even if the account is deleted later.
    user_id: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(128))
    # create|update|password_reset|totp_reset|activate
    action: Mapped[str] = mapped_column(String(20))
    # The requested state (create, update): role names separated by commas, and the link.
    roles: Mapped[str | None] = mapped_column(String(200))
    roster_entry_id: Mapped[int | None] = mapped_column(Integer)
    # The state when requested, for the approver to compare.
    previous_roles: Mapped[str | None] = mapped_column(String(200))
    previous_roster_entry_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    requested_by_name: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|approved|rejected
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_by_name: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)

    ACTION_LABELS = {
        "create": "アカウント作成",
        "update": "ロール・名簿の紐付けの変更",
        "password_reset": "パスワード再設定",  # nosec B105  # a label shown on screen, not a password
        "totp_reset": "二要素認証（TOTP）の再登録",
        "activate": "アカウントの再有効化",
    }
    STATUS_LABELS = {"pending": "承認待ち", "approved": "承認済み", "rejected": "却下"}

    @property
    def role_list(self) -> list[str]:
        return [r for r in (self.roles or "").split(",") if r]

    @property
    def previous_role_list(self) -> list[str]:
        return [r for r in (self.previous_roles or "").split(",") if r]
