"""Which Operators work which collection order (担当事務取扱担当者), and the case rule.

A campaign is the client's order. The client's staff (ClientStaff, ``can_assign`` on
Campaigns) decide which Operators work it; an Operator can never assign themselves, so
"assigned" always means that a second party decided. Within an assigned campaign an Operator
claims a case in the verification queue (one claimant at a time, ``app.collection.verification``), and
only the Operator holding that case — the claimant, or under four-eyes the second Operator
who took the approval — opens its submissions and reveals the household's stored numbers.
A request that belongs to no campaign (a link issued by hand on the server) has no order and
so no Operator: nobody at the portal opens it.

Every assignment, removal and refusal is audited. Plain functions, called by views, CLI and
the services in ``app.collection.opening``, ``app.collection.decisions``,
``app.collection.verification`` and ``app.people.registry`` alike.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core.actor import Actor
from app.models import (
    Campaign,
    CampaignOperator,
    CaseStatus,
    CollectionRequest,
    Person,
    VaultUser,
    VerificationCase,
    utcnow,
)

VIEW = "Campaigns"  # FAB permission view name (app.access.policy)
NOT_ASSIGNED = (
    "このキャンペーンの担当事務取扱担当者に割り当てられていないため操作できません"
    "（割当ては発注者担当者が行います）"
)
NOT_YOUR_CASE = (
    "この提出は、あなたが確認キューで担当している案件ではないため開けません"
    "（発注者担当者が割り当てたキャンペーンの案件を、確認キューで担当してから開いてください）"
)


class AssignmentError(ValueError):
    """A Japanese message for the client's staff (which account, why)."""


def _operator_account(session: Session, user_id: int) -> VaultUser | None:
    """An active Operator account on the approved roster, or None."""
    user = session.get(VaultUser, user_id)
    if user is None or not user.active:
        return None
    if not any(r.name == policy.OPERATOR for r in user.roles):
        return None
    if user.roster_entry is None or not user.roster_entry.is_approved:
        return None
    return user


def candidates(session: Session) -> list[VaultUser]:
    """Accounts a ClientStaff user may assign: Operators on the approved roster."""
    users = session.execute(select(VaultUser).order_by(VaultUser.username)).scalars()
    return [u for u in users if _operator_account(session, u.id) is not None]


def current(session: Session, campaign_id: int) -> list[CampaignOperator]:
    """The campaign's Operators now (removed ones are history)."""
    return list(
        session.execute(
            select(CampaignOperator)
            .where(
                CampaignOperator.campaign_id == campaign_id,
                CampaignOperator.removed_at.is_(None),
            )
            .order_by(CampaignOperator.assigned_at, CampaignOperator.id)
        ).scalars()
    )


def is_assigned(session: Session, user_id: int | None, campaign_id: int | None) -> bool:
    """Is this account an Operator of this campaign now? No campaign, no account: no."""
    if user_id is None or campaign_id is None:
        return False
    found = session.execute(
        select(CampaignOperator.id).where(
            CampaignOperator.campaign_id == campaign_id,
            CampaignOperator.user_id == user_id,
            CampaignOperator.removed_at.is_(None),
        )
    ).first()
    return found is not None


def assigned_campaign_ids(session: Session, user_id: int | None) -> set[int]:
    """Campaigns this account works now."""
    if user_id is None:
        return set()
    return set(
        session.execute(
            select(CampaignOperator.campaign_id).where(
                CampaignOperator.user_id == user_id, CampaignOperator.removed_at.is_(None)
            )
        ).scalars()
    )


def assign(session: Session, actor: Actor, campaign: Campaign, user_id: int) -> CampaignOperator:
    """A ClientStaff user makes an Operator a 担当事務取扱担当者 of the campaign. Audited; the
    caller commits."""
    policy.require(actor, "can_assign", VIEW)
    user = _operator_account(session, user_id)
    if user is None:
        raise AssignmentError("担当者: 名簿で承認済みの事務取扱担当者を選んでください")
    if campaign.status != "open":
        raise AssignmentError("終了したキャンペーンには担当者を割り当てられません")
    if actor.user_id is not None and user.credentials_issued_to_id == actor.user_id:
        # They may have signed in with it first and kept the account: no second party.
        refuse(
            session,
            actor,
            "campaign.assign",
            "campaign",
            [campaign.id, user.id],
            f"{user.username} の初期パスワードはあなたに表示されたため、あなたはこのアカウントを"
            "割り当てられません。別の発注者担当者が割り当ててください",
        )
    existing = next((a for a in current(session, campaign.id) if a.user_id == user.id), None)
    if existing is not None:
        raise AssignmentError(f"{user.username} は既にこのキャンペーンの担当者です")
    row = CampaignOperator(
        campaign_id=campaign.id,
        user_id=user.id,
        user_name=user.username,
        assigned_by_id=actor.user_id,
        assigned_by=actor.name,
        assigned_at=utcnow(),
    )
    session.add(row)
    session.flush()
    trail.record(
        session,
        actor,
        "campaign.assign",
        object_type="campaign",
        object_ids=[campaign.id, user.id],
    )
    return row


def unassign(session: Session, actor: Actor, campaign: Campaign, user_id: int) -> None:
    """End an Operator's assignment: from now on they neither claim nor open nor reveal in
    the campaign (a case they hold stays in the queue for another Operator). Audited; the
    caller commits."""
    policy.require(actor, "can_assign", VIEW)
    rows = [a for a in current(session, campaign.id) if a.user_id == user_id]
    if not rows:
        raise AssignmentError("この担当者はこのキャンペーンに割り当てられていません")
    trail.record(
        session,
        actor,
        "campaign.unassign",
        object_type="campaign",
        object_ids=[campaign.id, user_id],
    )
    for row in rows:
        row.removed_at = utcnow()
        row.removed_by = actor.name
    session.flush()


def refuse(
    session: Session, actor: Actor, action: str, object_type: str, object_ids: list, reason: str
) -> None:
    """Audit the refusal (committed) and raise it: used for every assignment check."""
    trail.record(
        session,
        actor,
        action,
        object_type=object_type,
        object_ids=object_ids,
        outcome="denied",
        details={"reason": reason},
        commit=True,
    )
    raise policy.PermissionDenied(reason)


def holds_case(session: Session, actor: Actor, request_id: uuid.UUID) -> bool:
    """Does this Operator hold the open case of this request in a campaign assigned to them?

    Holding means claimed (確認中) by them, or under four-eyes the approval taken by them
    (承認作業中) — the same two states in which ``app.collection.verification`` lets them work it.
    """
    if actor.user_id is None:
        return False
    req = session.get(CollectionRequest, request_id)
    if req is None or not is_assigned(session, actor.user_id, req.campaign_id):
        return False
    found = session.execute(
        select(VerificationCase.id).where(
            VerificationCase.request_id == request_id,
            _held_by(actor.user_id),
        )
    ).first()
    return found is not None


def works_person(session: Session, actor: Actor, person_id: uuid.UUID) -> bool:
    """Does this Operator hold an open case of the person's household (see ``holds_case``)?"""
    if actor.user_id is None:
        return False
    person = session.get(Person, person_id)
    ids = {person_id}
    if person is not None and person.household_head_id:
        ids.add(person.household_head_id)
    rows = session.execute(
        select(CollectionRequest.campaign_id)
        .join(VerificationCase, VerificationCase.request_id == CollectionRequest.id)
        .where(CollectionRequest.person_id.in_(ids), _held_by(actor.user_id))
    ).scalars()
    return any(is_assigned(session, actor.user_id, campaign_id) for campaign_id in rows)


def _held_by(user_id: int):
    return or_(
        and_(
            VerificationCase.status == CaseStatus.CLAIMED, VerificationCase.claimed_by_id == user_id
        ),
        and_(
            VerificationCase.status == CaseStatus.APPROVING,
            VerificationCase.approver_id == user_id,
            or_(
                VerificationCase.checked_by_id.is_(None), VerificationCase.checked_by_id != user_id
            ),
        ),
    )
