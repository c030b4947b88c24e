"""The audit chain: append-only events, each hashed onto the one before it.

``hash = SHA-256(prev_hash || canonical event)``. Editing, deleting or reordering any event
breaks the chain at that event. Truncating the tail, or rewriting the chain and recomputing
every hash after the change, is caught by the signed checkpoints (``app.audit.checkpoints``)
that ``app.audit.verifier`` checks the chain against with the public key alone.

Waiting for the chain head is bounded (``AUDIT_LOCK_TIMEOUT_SECONDS``): a lock held on it makes
the guarded action fail with ``AuditUnavailable`` (a 503 page), never hang.

Fail closed: ``record`` raises ``AuditUnavailable`` when the event cannot be written, and the
callers perform the access only after it returned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from flask import current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy import text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.core import logsafe, mynumber
from app.core.actor import Actor
from app.models import AuditChainHead, AuditEvent, utcnow

log = logging.getLogger(__name__)

PURPOSE_MAX = 500

GENESIS = "0" * 64
# session.info key: the newest sequence number this transaction appended (read after the
# commit by app.audit.signing, which signs every N events).
APPENDED_SEQ = "mnv_audit_appended_seq"
# Every column of an audit event, in the order the 監査ログ screen and the return archive's
# audit_log.csv show them.
EVENT_COLUMNS = (
    "seq",
    "ts",
    "actor_name",
    "actor_id",
    "roster_entry_id",
    "roles",
    "action",
    "object_type",
    "object_ids",
    "purpose",
    "ip",
    "user_agent",
    "outcome",
    "details",
    "prev_hash",
    "hash",
)


class AuditUnavailable(RuntimeError):
    """The audit event could not be written, so the access it guards must not happen."""


LOCK_TIMEOUT_SECONDS = 5.0
# Every SQLite connection's busy timeout (set on connect by app.web.factory), put back after
# the chain head's own bounded wait.
SQLITE_BUSY_TIMEOUT_MS = 10000


def utc_text(value: dt.datetime) -> str:
    """A timestamp as hashed into an event and written into a checkpoint line: UTC, to the
    microsecond, one fixed form."""
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: AuditEvent) -> bytes:
    """The bytes that are hashed: every field but the hashes, in a fixed JSON form."""
    body = {
        "seq": event.seq,
        "ts": utc_text(event.ts),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "roster_entry_id": event.roster_entry_id,
        "roles": event.roles,
        "action": event.action,
        "object_type": event.object_type,
        "object_ids": event.object_ids,
        "purpose": event.purpose,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "outcome": event.outcome,
        "details": event.details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(event)).hexdigest()


def _lock_timeout() -> float:
    if has_app_context():
        return float(current_app.config.get("AUDIT_LOCK_TIMEOUT_SECONDS", LOCK_TIMEOUT_SECONDS))
    return LOCK_TIMEOUT_SECONDS


def _is_lock_timeout(exc: SQLAlchemyError) -> bool:
    """PostgreSQL's lock_timeout (55P03) or SQLite's busy timeout ran out."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "55P03":
        return True
    return "database is locked" in str(orig or "")


def advance_head(session: Session, step: int):
    """Lock the chain head row and add ``step`` to its sequence; (seq, hash) after the update.

    The UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) first, so two
    appenders can never both read the same head; it hands back the new sequence number and
    the previous hash itself (RETURNING: no second statement to read them). ``step=0`` only
    locks (a checkpoint: the head cannot move while it is signed).

    The wait for that lock is bounded: whoever holds the head (a stuck transaction, an
    attacker's open session) makes audited actions fail after the timeout instead of hanging
    every request. PostgreSQL: ``lock_timeout`` for this statement only (set_config local to
    the transaction, put back after); SQLite: the connection's busy timeout, likewise.
    """
    timeout_ms = max(1, int(_lock_timeout() * 1000))
    statement = (
        update(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .values(seq=AuditChainHead.seq + step)
        .returning(AuditChainHead.seq, AuditChainHead.hash)
        # "fetch" keeps a head already in this session in step with the database.
        .execution_options(synchronize_session="fetch")
    )
    if session.get_bind().dialect.name == "postgresql":
        previous = session.execute(
            text(
                "WITH old AS MATERIALIZED (SELECT current_setting('lock_timeout') AS v) "
                "SELECT old.v, set_config('lock_timeout', :t, true) FROM old"
            ),
            {"t": f"{timeout_ms}ms"},
        ).scalar_one()
        head = session.execute(statement).one_or_none()
        # Only after success: a failed statement aborted the transaction, which ends the
        # setting anyway.
        session.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": previous})
        return head
    session.execute(text(f"PRAGMA busy_timeout = {timeout_ms}"))
    try:
        return session.execute(statement).one_or_none()
    finally:
        session.execute(text(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))


def ensure_head(session: Session) -> None:
    """Create the chain head row once (``mynumber init``)."""
    if session.get(AuditChainHead, 1) is None:
        session.add(AuditChainHead(id=1, seq=0, hash=GENESIS))
        session.flush()


def purpose_problem(
    purpose: str | None, label: str = "利用目的", max_len: int = PURPOSE_MAX
) -> str | None:
    """Why a stated purpose (利用目的) cannot be recorded, in Japanese; None if it can.

    The one rule for every purpose a user types (reveal, export, 照合, return): it is kept in
    the audit log for as long as the log, so a number typed into it ("○○さん 1234 5678 9018
    の源泉徴収票") would put a plaintext number in the database. Refused, like a number typed
    into any other free-text field.
    """
    text = (purpose or "").strip()
    if not text:
        return f"{label}を入力してください"
    if len(text) > max_len:
        return f"{label}は{max_len}文字以内で入力してください"
    return mynumber.number_problem(text, label)


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_ids: list | tuple = (),
    purpose: str | None = None,
    outcome: str = "success",
    details: dict | None = None,
    commit: bool = False,
) -> AuditEvent:
    """Append one event to the chain in the caller's transaction.

    With ``commit=True`` the transaction is committed before returning: read accesses (a
    reveal, an export) call it that way so the event is durable *before* any plaintext exists.
    """
    try:
        head = advance_head(session, 1)
        if head is None:
            raise AuditUnavailable("監査ログが初期化されていません")
        # A second line of defence for the free text that comes from outside (a refused
        # request's purpose, a browser's user agent): no number is ever stored (the one
        # detector, app.core.mynumber.find_numbers).
        if purpose:
            purpose = logsafe.scrub(purpose)
        user_agent = logsafe.scrub(actor.user_agent or "")[:400] or None
        event = AuditEvent(
            seq=head.seq,
            ts=utcnow(),
            actor_id=actor.user_id,
            actor_name=actor.name,
            roster_entry_id=actor.roster_entry_id,
            roles=",".join(actor.roles),
            action=action,
            object_type=object_type,
            object_ids=json.dumps([str(i) for i in object_ids], ensure_ascii=False),
            purpose=purpose,
            ip=actor.ip,
            user_agent=user_agent,
            outcome=outcome,
            details=json.dumps(details or {}, sort_keys=True, ensure_ascii=False, default=str),
            prev_hash=head.hash,
        )
        event.hash = chain_hash(head.hash, event)
        session.execute(
            update(AuditChainHead).where(AuditChainHead.id == 1).values(hash=event.hash)
        )
        session.add(event)
        session.flush()
        # Read after the commit by app.audit.signing: a checkpoint is due every N events.
        session.info[APPENDED_SEQ] = head.seq
        if commit:
            session.commit()
        return event
    except AuditUnavailable:
        session.rollback()
        raise
    except SQLAlchemyError as exc:
        session.rollback()
        if _is_lock_timeout(exc):
            log.error("audit chain head stayed locked for %.1f s: action refused", _lock_timeout())
            raise AuditUnavailable(
                "監査ログが他の処理によってロックされたままのため、この操作は実行されませんでした"
                f"（{_lock_timeout():g} 秒待機）。しばらく待ってから、もう一度お試しください"
            ) from exc
        log.error("audit event could not be written: %s", type(exc).__name__)
        raise AuditUnavailable(
            "監査ログを書き込めないため、この操作は実行されませんでした"
        ) from exc


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    """Events rolled back were never appended: nothing for the signer to count."""
    session.info.pop(APPENDED_SEQ, None)
