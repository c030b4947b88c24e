"""情報取扱者名簿 (spec 7.5): changes are proposed, and take effect only on the client's approval.

The operator's SystemAdmin proposes; a ClientStaff user other than the proposer approves or
rejects (with TOTP, enforced by the policy). Without this, an administrator could approve a
roster entry for an account they created and so reach the numbers. The first roster, agreed on
paper before the contract, is entered once through ``mynumber roster add --approved-by``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.access import accounts, policy
from app.audit import trail
from app.core import mynumber
from app.core.actor import Actor
from app.models import HandlerRosterEntry, RosterChange, utcnow

ACTIONS = ("add", "update", "revoke")
FIELDS = ("name", "department", "title", "nationality")
FIELD_LABELS = {"name": "氏名", "department": "所属部署", "title": "役職", "nationality": "国籍"}


class RosterError(ValueError):
    """A proposal or decision that cannot be made; the message says why, in Japanese."""


@dataclass(frozen=True)
class EntryFields:
    name: str
    department: str
    title: str
    nationality: str

    def validate(self) -> None:
        for field in FIELDS:
            value = (getattr(self, field) or "").strip()
            if not value:
                raise RosterError(f"{FIELD_LABELS[field]}を入力してください")
            if len(value) > 100:
                raise RosterError(f"{FIELD_LABELS[field]}は100文字以内で入力してください")
            if mynumber.contains_number(value):
                raise RosterError(mynumber.number_refusal(FIELD_LABELS[field]))


def propose(
    session: Session,
    actor: Actor,
    action: str,
    reason: str,
    fields: EntryFields | None = None,
    entry_id: int | None = None,
) -> RosterChange:
    """Record a proposed change; nothing changes in the roster until it is approved."""
    policy.require(actor, "can_propose", "RosterChange")
    if action not in ACTIONS:
        raise RosterError("変更の種類が不正です")
    if not (reason or "").strip():
        raise RosterError("変更の理由を入力してください")
    if mynumber.contains_number(reason):
        raise RosterError(mynumber.number_refusal("変更の理由"))
    entry = None
    if action in ("update", "revoke"):
        entry = session.get(HandlerRosterEntry, entry_id) if entry_id else None
        if entry is None or entry.status == "revoked":
            raise RosterError("対象の名簿登録が見つからないか、既に取り消されています")
    if action in ("add", "update"):
        if fields is None:
            raise RosterError("氏名・所属部署・役職・国籍を入力してください")
        fields.validate()
    change = RosterChange(
        entry_id=entry.id if entry else None,
        action=action,
        reason=reason.strip(),
        requested_by_id=actor.user_id,
        requested_by_name=actor.name,
        status="pending",
        **({f: getattr(fields, f).strip() for f in FIELDS} if fields else {}),
    )
    session.add(change)
    session.flush()
    trail.record(
        session,
        actor,
        "roster.change_requested",
        object_type="roster_change",
        object_ids=[change.id],
        details={"action": action, "entry_id": change.entry_id},
    )
    session.commit()
    return change


def decide(
    session: Session, actor: Actor, change_id: int, approve: bool, note: str | None = None
) -> RosterChange:
    """Approve (the change applies now) or reject; never by the one who proposed it."""
    policy.require(actor, "can_approve", "RosterChange")
    change = session.get(RosterChange, change_id)
    if change is None or change.status != "pending":
        raise RosterError("承認待ちの変更が見つかりません")
    if mynumber.contains_number(note):
        raise RosterError(mynumber.number_refusal("コメント"))
    # Not the proposer, nor an account the proposer created or had set up (app.access.accounts).
    reason = accounts.refuse_conflicted_approver(
        session,
        actor,
        change.requested_by_id,
        "roster.change_approved" if approve else "roster.change_rejected",
        "roster_change",
        change.id,
    )
    if reason is not None:
        raise RosterError(reason)
    change.status = "approved" if approve else "rejected"
    change.decided_by_id = actor.user_id
    change.decided_by_name = actor.name
    change.decided_at = utcnow()
    change.decision_note = (note or "").strip() or None
    if approve:
        _apply(session, change, approved_by=actor.name)
    session.flush()
    trail.record(
        session,
        actor,
        "roster.change_approved" if approve else "roster.change_rejected",
        object_type="roster_change",
        object_ids=[change.id],
        details={"action": change.action, "entry_id": change.entry_id},
    )
    session.commit()
    return change


def _apply(session: Session, change: RosterChange, approved_by: str) -> None:
    now = utcnow()
    if change.action == "add":
        entry = HandlerRosterEntry(
            name=change.name,
            department=change.department,
            title=change.title,
            nationality=change.nationality,
            status="approved",
            approved_by=approved_by,
            approved_at=now,
        )
        session.add(entry)
        session.flush()
        change.entry_id = entry.id
        return
    entry = session.get(HandlerRosterEntry, change.entry_id)
    if change.action == "update":
        for field in FIELDS:
            setattr(entry, field, getattr(change, field))
        entry.approved_by, entry.approved_at = approved_by, now
    else:
        entry.status = "revoked"


def add_preapproved(
    session: Session, actor: Actor, fields: EntryFields, approved_by: str
) -> HandlerRosterEntry:
    """The roster the client approved on paper before the contract (spec 7.5-1)."""
    fields.validate()
    if not (approved_by or "").strip():
        raise RosterError("承認者（発注者側）を入力してください")
    entry = HandlerRosterEntry(
        **{f: getattr(fields, f).strip() for f in FIELDS},
        status="approved",
        approved_by=approved_by.strip(),
        approved_at=utcnow(),
        note="契約前に書面で承認された名簿から登録",
    )
    session.add(entry)
    session.flush()
    trail.record(
        session,
        actor,
        "roster.preapproved_add",
        object_type="roster",
        object_ids=[entry.id],
        details={"approved_by": entry.approved_by},
    )
    session.commit()
    return entry
