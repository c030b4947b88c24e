"""Failed second-factor attempts and the account lock, shared by sign-in and step-up.

A wrong TOTP code counts the same wherever it is typed: at sign-in or when an action asks for
a fresh code again (disposal approval, return archive). Otherwise whoever holds a signed-in
session could try step-up codes without limit until one of the valid ones matches. The lock
also ends every session of the user (the session version is raised), so the session the
guesses came from is closed too. Plain database logic: views, CLI and services call it.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import func, update
from sqlalchemy.orm import Session

from app.audit import trail
from app.core import jptime
from app.core.actor import Actor
from app.models import VaultUser, utcnow

LOCKED_MESSAGE = (
    "ログイン失敗が続いたため、このアカウントは一時的にロックされています。"
    "しばらくしてから再度お試しいただくか、システム管理者に連絡してください。"
)


def is_locked(user: VaultUser) -> bool:
    """Whether the account is locked right now (the lock ends by itself after a while)."""
    locked = jptime.aware(user.locked_until)
    return bool(locked and locked > utcnow())


def bump_session_version(session: Session, user: VaultUser) -> None:
    """End every session (and every pending sign-in) of the user, on every device.

    An atomic increment: two concurrent bumps both count. The caller commits."""
    table = VaultUser.__table__
    session.execute(
        update(table)
        .where(table.c.id == user.id)
        .values(session_version=table.c.session_version + 1)
    )
    session.expire(user, ["session_version"])


def lock_message() -> str:
    """What the user reads at the attempt that locked the account."""
    cfg = current_app.config
    return (
        f"ログインに{cfg['LOGIN_MAX_FAILURES']}回失敗したため、"
        f"アカウントを{cfg['LOGIN_LOCKOUT_MINUTES']}分間ロックしました。"
    )


def register_failure(
    session: Session, user: VaultUser, actor: Actor, reason: str, action: str = "auth.login"
) -> bool:
    """Count a wrong (or replayed) second-factor code, audit it, lock at the limit.

    The counter is raised by an atomic UPDATE (parallel guesses all count) and committed at
    once, whatever the caller does with its own transaction afterwards. Returns whether the
    account is now locked. ``action`` names where the code was typed in the audit log.
    """
    table = VaultUser.__table__
    session.execute(
        update(table)
        .where(table.c.id == user.id)
        .values(fail_login_count=func.coalesce(table.c.fail_login_count, 0) + 1)
    )
    session.commit()
    session.refresh(user)
    trail.record(session, actor, action, outcome="failure", details={"reason": reason}, commit=True)
    if (user.fail_login_count or 0) >= current_app.config["LOGIN_MAX_FAILURES"]:
        lock(session, user, actor)
        return True
    return False


def lock(session: Session, user: VaultUser, actor: Actor) -> int:
    """Lock the account for ``LOGIN_LOCKOUT_MINUTES`` and end all its sessions; audited.

    Returns the minutes. The counter starts again from zero after the lock."""
    minutes = current_app.config["LOGIN_LOCKOUT_MINUTES"]
    user.locked_until = utcnow() + dt.timedelta(minutes=minutes)
    user.fail_login_count = 0
    bump_session_version(session, user)  # a lock also ends every session the user already has
    session.commit()
    trail.record(
        session,
        actor,
        "auth.lockout",
        object_type="user",
        object_ids=[user.id],
        details={"minutes": minutes},
        commit=True,
    )
    return minutes
