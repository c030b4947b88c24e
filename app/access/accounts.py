"""Accounts that can reach personal data: created and changed only with the client's approval.

A SystemAdmin manages accounts, but must never obtain one that reads numbers. So an account
with an Operator or ClientStaff role, or linked to an entry of the 情報取扱者名簿, changes only
through an ``AccountChange``: the SystemAdmin requests it (the account is created inactive,
without those roles or the link), and a ClientStaff user other than the requester approves it
with TOTP. Three rules make the second person real:

- one roster entry backs at most one account (a unique column, and a Japanese refusal here);
- the approver is neither the requester, nor the account concerned, nor an account that the
  requester created, whose access or credentials the requester last had set, or whose
  one-time password the requester was shown (``approver_conflict``, also used for roster
  changes, disposals and campaign assignments);
- the administrator never holds a usable credential of such an account: when an approval
  creates it, grants it personal-data access, moves its roster link or resets its password, the
  system generates a one-time password and shows it once, to the approver, who hands it to the
  user; the user replaces it at first sign-in and enrols TOTP then. Any session signed in
  before credentials were issued ends (``credentials_issued_at`` is part of the session's
  access grant, ``app.web.identity.access_grant``). The approver who was shown it is recorded
  (``credentials_issued_to_id``): they may have signed in first and kept the account.

Re-activating a switched-off personal-data account grants access like a new role, so it is
an ``AccountChange`` too (``activate``); switching one off, like removing a role, applies at
once. Approving it issues no credentials: the account keeps the ones it had, which the
requester never held.

The very first ClientStaff account cannot be approved by anyone on the portal: the server's
shell creates it once from the client's signed paper (``mynumber account add --approved-by``),
like the first roster.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from flask import current_app
from flask_appbuilder.security.sqla.models import Role
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.access import policy
from app.audit import trail
from app.core import mynumber
from app.core.actor import Actor
from app.models import AccountChange, HandlerRosterEntry, VaultUser, utcnow

VIEW = "AccountChange"
ACTIONS = ("create", "update", "password_reset", "totp_reset", "activate")
PERSONAL_ROLES = policy.ROSTER_REQUIRED


class AccountError(ValueError):
    """A request or decision that cannot be made; the message says why, in Japanese."""


@dataclass(frozen=True)
class Decision:
    change: AccountChange
    # Shown once to the approver, never stored: the new user's first password.
    one_time_password: str | None = None


def role_names(user: VaultUser) -> list[str]:
    return sorted(r.name for r in user.roles)


def is_personal(roles: list[str] | set[str] | tuple[str, ...], roster_entry_id: int | None) -> bool:
    """Whether an account in this state can reach personal data (or is tied to a person)."""
    return bool(set(roles) & PERSONAL_ROLES) or roster_entry_id is not None


def is_personal_account(user: VaultUser) -> bool:
    return is_personal(role_names(user), user.roster_entry_id)


def check_entry_free(session: Session, entry_id: int, user_id: int | None) -> HandlerRosterEntry:
    """The roster entry exists, is not revoked, and backs no other account or request."""
    entry = session.get(HandlerRosterEntry, entry_id)
    if entry is None or entry.status == "revoked":
        raise AccountError("指定された情報取扱者名簿の登録が見つからないか、既に取り消されています")
    holder = session.execute(
        select(VaultUser.username).where(
            VaultUser.roster_entry_id == entry_id,
            *([VaultUser.id != user_id] if user_id is not None else []),
        )
    ).scalar()
    if holder is not None:
        raise AccountError(
            f"情報取扱者名簿の「{entry.name}」は既に別のアカウント（{holder}）に紐付いています。"
            "1件の名簿登録に紐付けられるアカウントは1つだけです"
        )
    pending = session.execute(
        select(AccountChange).where(
            AccountChange.status == "pending",
            AccountChange.roster_entry_id == entry_id,
            *([AccountChange.user_id != user_id] if user_id is not None else []),
        )
    ).scalar()
    if pending is not None:
        raise AccountError(
            f"情報取扱者名簿の「{entry.name}」は承認待ちの申請（申請ID {pending.id}、"
            f"アカウント {pending.username}）で既に指定されています"
        )
    return entry


def _check_no_pending(session: Session, user_id: int) -> None:
    """One request at a time per account: the approver sees exactly what will apply."""
    pending = session.execute(
        select(AccountChange).where(
            AccountChange.user_id == user_id, AccountChange.status == "pending"
        )
    ).scalar()
    if pending is not None:
        raise AccountError(
            f"アカウント {pending.username} には承認待ちの申請（申請ID {pending.id}）があります。"
            "承認・却下されてから申請してください"
        )


def _check_roles(roles: list[str]) -> None:
    unknown = [r for r in roles if r not in policy.ROLES]
    if unknown:
        raise AccountError(f"不明なロールです: {', '.join(unknown)}")
    if policy.SYSTEM_ADMIN in roles and set(roles) & PERSONAL_ROLES:
        raise AccountError(
            "システム管理者のロールと個人番号を扱うロール（事務取扱担当者・発注者担当者）は、"
            "同じアカウントに付与できません"
        )


def precheck(
    session: Session,
    actor: Actor,
    roles: list[str],
    roster_entry_id: int | None,
    user_id: int | None,
) -> None:
    """Refuse at once (audited) a request that ``propose`` would refuse: the user screen
    checks before it writes anything, so a refused account is not created half-way."""
    try:
        policy.require(actor, "can_propose", VIEW)
        if user_id is not None and user_id == actor.user_id:
            raise AccountError("自分のアカウントについては申請できません")
        if user_id is not None:
            _check_no_pending(session, user_id)
        _check_roles(roles)
        if roster_entry_id is not None:
            check_entry_free(session, roster_entry_id, user_id)
    except (AccountError, policy.PermissionDenied) as exc:
        _record_refused_request(
            session,
            actor,
            user_id,
            {"roles": roles, "roster_entry_id": roster_entry_id, "reason": str(exc)},
        )
        raise


def _record_refused_request(
    session: Session, actor: Actor, user_id: int | None, details: dict
) -> None:
    """A refused account request, audited (committed) after what the attempt wrote is rolled
    back: trying to link someone else's roster entry or widen one's own roles is worth knowing
    about, and nothing of the attempt may stay."""
    session.rollback()
    trail.record(
        session,
        actor,
        "account.change_requested",
        object_type="user",
        object_ids=[user_id] if user_id is not None else [],
        outcome="denied",
        details=details,
        commit=True,
    )


def _screen_edit_problem(
    actor: Actor,
    user_id: int,
    before: tuple[set[str], int | None, bool],
    after: tuple[set[str], int | None, bool],
) -> str | None:
    """Why the user screen may not save this edit at all, or None.

    ``before`` and ``after`` are (roles, roster entry id, active) as stored and as typed."""
    (old_roles, old_entry, was_active), (roles, entry_id, active) = before, after
    gained = roles - old_roles
    grants = bool(gained & PERSONAL_ROLES) or (entry_id is not None and entry_id != old_entry)
    if gained and user_id == actor.user_id:
        return (
            "自分のアカウントにロールを追加することはできません"
            f"（{', '.join(sorted(gained))}）。別のシステム管理者に依頼してください"
        )
    touches_personal = is_personal(old_roles, old_entry) or is_personal(roles, entry_id)
    if (
        policy.SYSTEM_ADMIN in roles
        and touches_personal
        and (policy.SYSTEM_ADMIN in gained or grants)
    ):
        return (
            "システム管理者のロールと、個人番号を扱うロール（事務取扱担当者・発注者担当者）"
            "または情報取扱者名簿の紐付けは、同じアカウントに付与できません"
        )
    if active and not was_active and touches_personal and grants:
        return (
            "アカウントの再有効化と、個人番号を扱うロール・名簿の紐付けの追加は同時に申請できません。"
            "先に再有効化だけを保存してください"
        )
    return None


def check_screen_edit(
    session: Session,
    actor: Actor,
    user_id: int,
    before: tuple[set[str], int | None, bool],
    after: tuple[set[str], int | None, bool],
) -> None:
    """Refuse (audited, ``account.change_requested`` denied) an edit of the user screen that
    would widen the editor's own roles, put the SystemAdmin role on an account that reaches
    personal data, or mix a re-activation with new access. What it lets through, the screen
    splits into what applies at once and what becomes an ``AccountChange``."""
    problem = _screen_edit_problem(actor, user_id, before, after)
    if problem is None:
        return
    details = {
        "roles": sorted(after[0]),
        "roster_entry_id": after[1],
        "active": after[2],
        "reason": problem,
    }
    _record_refused_request(session, actor, user_id, details)
    raise AccountError(problem)


def propose(
    session: Session,
    actor: Actor,
    user: VaultUser,
    action: str,
    reason: str,
    roles: list[str] | None = None,
    roster_entry_id: int | None = None,
) -> AccountChange:
    """Record a requested change; the account changes only when it is approved. Commits.

    A refused request is audited too (``account.change_requested``, denied): trying to link
    someone else's roster entry is worth knowing about."""
    try:
        return _propose(session, actor, user, action, reason, roles, roster_entry_id)
    except (AccountError, policy.PermissionDenied) as exc:
        _record_refused_request(
            session,
            actor,
            user.id,
            {"action": action, "roster_entry_id": roster_entry_id, "reason": str(exc)},
        )
        raise


def _propose(
    session: Session,
    actor: Actor,
    user: VaultUser,
    action: str,
    reason: str,
    roles: list[str] | None,
    roster_entry_id: int | None,
) -> AccountChange:
    policy.require(actor, "can_propose", VIEW)
    if action not in ACTIONS:
        raise AccountError("申請の種類が不正です")
    if not (reason or "").strip():
        raise AccountError("申請の理由を入力してください")
    # Every ClientStaff user and Auditor reads the reason: a number typed there is refused.
    problem = mynumber.number_problem(reason, "申請の理由")
    if problem:
        raise AccountError(problem)
    if actor.user_id is not None and actor.user_id == user.id:
        raise AccountError("自分のアカウントについては申請できません")
    _check_no_pending(session, user.id)
    if action in ("create", "update"):
        roles = sorted(set(roles or []))
        _check_roles(roles)
        if roster_entry_id is not None:
            check_entry_free(session, roster_entry_id, user.id)
    else:
        if action == "activate" and user.active:
            raise AccountError(f"アカウント {user.username} は既に有効です")
        roles, roster_entry_id = role_names(user), user.roster_entry_id
    change = AccountChange(
        user_id=user.id,
        username=user.username,
        action=action,
        roles=",".join(roles),
        roster_entry_id=roster_entry_id,
        previous_roles=",".join(role_names(user)),
        previous_roster_entry_id=user.roster_entry_id,
        reason=reason.strip(),
        requested_by_id=actor.user_id,
        requested_by_name=actor.name,
        status="pending",
    )
    session.add(change)
    session.flush()
    trail.record(
        session,
        actor,
        "account.change_requested",
        object_type="account_change",
        object_ids=[change.id],
        details={
            "action": action,
            "user_id": user.id,
            "roles": roles,
            "roster_entry_id": roster_entry_id,
        },
    )
    session.commit()
    return change


def approver_conflict(
    session: Session, actor: Actor, requester_id: int | None, subject_user_id: int | None = None
) -> str | None:
    """Why this actor may not be the second person for a request, or None.

    The second person must be independent of the requester: not the requester, not the account
    the request is about, not an account with the SystemAdmin role, and not an account the
    requester created or whose roles, roster link or credentials the requester last had set
    (else an administrator approves their own request through an account they made), nor an
    account whose one-time password the requester was last shown (they may have signed in
    with it before its holder did and kept it: one person acting as two)."""
    if actor.user_id is not None and actor.user_id == requester_id:
        return "自分が申請した変更は承認できません"
    if actor.user_id is not None and actor.user_id == subject_user_id:
        return "自分のアカウントについての申請は承認できません"
    if policy.SYSTEM_ADMIN in actor.roles:
        return "システム管理者のロールを持つアカウントでは承認できません"
    approver = session.get(VaultUser, actor.user_id) if actor.user_id is not None else None
    if approver is None or requester_id is None:
        return None
    if approver.created_by_fk == requester_id:
        return (
            "このアカウントは申請者が作成したアカウントのため、申請者の申請を承認できません。"
            "別の発注者担当者に承認を依頼してください"
        )
    if approver.access_set_by_id == requester_id:
        return (
            "このアカウントのロール・名簿の紐付け・認証情報は申請者の申請で設定されたため、"
            "申請者の申請を承認できません。別の発注者担当者に承認を依頼してください"
        )
    if approver.credentials_issued_to_id == requester_id:
        return (
            "このアカウントの初期パスワードは申請者に表示されたため、申請者の申請を承認できません。"
            "別の発注者担当者に承認を依頼してください"
        )
    return None


def refuse_conflicted_approver(
    session: Session,
    actor: Actor,
    requester_id: int | None,
    action: str,
    object_type: str,
    object_id: int,
    subject_user_id: int | None = None,
) -> str | None:
    """``approver_conflict``, and when there is one, a denied audit event (committed)."""
    reason = approver_conflict(session, actor, requester_id, subject_user_id)
    if reason is not None:
        session.rollback()
        trail.record(
            session,
            actor,
            action,
            object_type=object_type,
            object_ids=[object_id],
            outcome="denied",
            details={"reason": reason, "requested_by_id": requester_id},
            commit=True,
        )
    return reason


def decide(
    session: Session, actor: Actor, change_id: int, approve: bool, note: str | None = None
) -> Decision:
    """Approve (the change applies now) or reject. Commits.

    On an approval that issues credentials, the one-time password is returned to be shown
    once to the approver; only its hash is stored."""
    policy.require(actor, "can_approve", VIEW)
    change = session.get(AccountChange, change_id)
    if change is None or change.status != "pending":
        raise AccountError("承認待ちの申請が見つかりません")
    action = "account.change_approved" if approve else "account.change_rejected"
    # The comment is stored and shown like the reason: a number typed there is refused.
    problem = mynumber.number_problem(note, "コメント")
    if problem:
        session.rollback()
        trail.record(
            session,
            actor,
            action,
            object_type="account_change",
            object_ids=[change.id],
            outcome="denied",
            details={"reason": problem},
            commit=True,
        )
        raise AccountError(problem)
    reason = refuse_conflicted_approver(
        session, actor, change.requested_by_id, action, "account_change", change.id, change.user_id
    )
    if reason is not None:
        raise AccountError(reason)
    user = session.get(VaultUser, change.user_id)
    if user is None:
        raise AccountError(f"対象のアカウント（{change.username}）が見つかりません（削除済み）")
    password = None
    if approve:
        password = _apply(session, change, user, actor)
    change.status = "approved" if approve else "rejected"
    change.decided_by_id = actor.user_id
    change.decided_by_name = actor.name
    change.decided_at = utcnow()
    change.decision_note = (note or "").strip() or None
    session.flush()
    trail.record(
        session,
        actor,
        action,
        object_type="account_change",
        object_ids=[change.id],
        details={
            "action": change.action,
            "user_id": change.user_id,
            "roles": change.role_list,
            "roster_entry_id": change.roster_entry_id,
            "credentials_issued": password is not None,
        },
    )
    session.commit()
    return Decision(change, password)


def _apply(session: Session, change: AccountChange, user: VaultUser, approver: Actor) -> str | None:
    """Make the approved change; returns a new one-time password when one is issued (to be
    shown to the approver, who is recorded as having seen it)."""
    before_personal = is_personal_account(user)
    before_entry = user.roster_entry_id
    issue_password = change.action in ("create", "password_reset")
    clear_totp = change.action in ("create", "totp_reset")
    if change.action == "activate":
        # The account keeps its credentials (the requester never held them); who last had
        # its access set is unchanged, so no conflict recorded on it is forgotten.
        user.active = True
        return None
    if change.action in ("create", "update"):
        _check_roles(change.role_list)
        if change.roster_entry_id is not None:
            check_entry_free(session, change.roster_entry_id, user.id)
        user.roles = list(
            session.execute(select(Role).where(Role.name.in_(change.role_list))).scalars()
        )
        user.roster_entry_id = change.roster_entry_id
        user.active = True if change.action == "create" else user.active
        now_personal = is_personal(change.role_list, change.roster_entry_id)
        moved = change.roster_entry_id is not None and change.roster_entry_id != before_entry
        if now_personal and (not before_personal or moved):
            # Whoever held this account until now (possibly the requester) loses it.
            issue_password = clear_totp = True
    user.access_set_by_id = change.requested_by_id
    password = None
    if issue_password:
        password = one_time_password()
        user.password = generate_password_hash(
            password,
            method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
            salt_length=current_app.config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16),
        )
        user.password_change_required = True
        user.fail_login_count = 0
        user.locked_until = None
        user.credentials_issued_to_id = approver.user_id
    if clear_totp:
        user.totp_secret_enc = None
        user.totp_enrolled_at = None
    if issue_password or clear_totp:
        user.credentials_issued_at = utcnow()
    return password


def one_time_password() -> str:
    """16 random characters from every class: meets the password policy, never stored."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16)) + "-Aa1"


def unusable_password_hash() -> str:
    """A hash of a random secret nobody is told: the account cannot sign in until approval."""
    return generate_password_hash(secrets.token_urlsafe(32))


def add_preapproved(
    session: Session,
    actor: Actor,
    *,
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    role: str,
    roster_entry_id: int,
    approved_by: str,
) -> tuple[VaultUser, str]:
    """The first accounts, approved by the client on paper (the portal has no approver yet).

    Only the server's shell calls this (it holds the key ring anyway); the paper approval is
    named in the audit event, and the one-time password is returned to be printed once."""
    if not isinstance(actor, policy.ShellActor):
        raise AccountError("書面承認によるアカウント作成はサーバーのコマンドからのみ行えます")
    if not (approved_by or "").strip():
        raise AccountError("承認者（発注者側）を入力してください")
    if role not in PERSONAL_ROLES:
        raise AccountError("書面承認で作成できるのは事務取扱担当者・発注者担当者のアカウントです")
    if session.execute(select(VaultUser.id).where(VaultUser.username == username)).scalar():
        raise AccountError(f"ユーザー名 {username} は既に使われています")
    entry = check_entry_free(session, roster_entry_id, None)
    role_row = session.execute(select(Role).where(Role.name == role)).scalar_one()
    password = one_time_password()
    user = VaultUser(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        active=True,
        password=generate_password_hash(
            password,
            method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
            salt_length=current_app.config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16),
        ),
        password_change_required=True,
        roster_entry_id=entry.id,
        credentials_issued_at=utcnow(),
        credentials_issued_to_id=actor.user_id,  # the shell prints it: nobody on the portal
    )
    user.roles = [role_row]
    session.add(user)
    session.flush()
    trail.record(
        session,
        actor,
        "account.preapproved_add",
        object_type="user",
        object_ids=[user.id],
        details={"roles": [role], "roster_entry_id": entry.id, "approved_by": approved_by.strip()},
    )
    session.commit()
    return user, password
