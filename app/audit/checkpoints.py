"""Signed checkpoints of the audit chain, and their copies outside the database.

A checkpoint is an Ed25519 signature over the head of the chain (sequence number and hash).
Whoever holds the database can rewrite events and recompute every hash after them, but cannot
sign: the part of the chain up to a checkpoint is vouched for. Each checkpoint is also appended
to a file (fsync) and sent to syslog once its transaction commits, so that deleting
checkpoints from the database, or truncating the tail, is caught against a copy kept elsewhere.

The log signs itself: ``app.audit.signing`` calls ``checkpoint_if_due`` every
``AUDIT_CHECKPOINT_EVERY`` events and every few minutes while events arrive; a checkpoint is
only taken over a tail that extends the last signed point hash by hash.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from logging.handlers import SysLogHandler
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.audit import trail
from app.models import AuditChainHead, AuditCheckpoint, AuditEvent, utcnow

log = logging.getLogger(__name__)

# session.info key: the signed checkpoints to publish outside the database once the
# transaction commits.
PENDING_PUBLISH = "mnv_audit_pending_publish"


@dataclass(frozen=True)
class SigningPolicy:
    """When checkpoints are taken, where they are published and how much unsigned tail
    ``verify`` accepts. ``max_unsigned`` is larger than ``every`` and ``max_unsigned_minutes``
    larger than ``minutes``: a log whose signer runs never fails on its own schedule."""

    every: int = 500
    minutes: float = 5
    max_unsigned: int = 2000
    max_unsigned_minutes: float = 30
    file: str | None = None
    syslog: str | None = None

    @classmethod
    def from_config(cls, cfg: Mapping) -> SigningPolicy:
        return cls(
            every=int(cfg.get("AUDIT_CHECKPOINT_EVERY", cls.every)),
            minutes=float(cfg.get("AUDIT_CHECKPOINT_MINUTES", cls.minutes)),
            max_unsigned=int(cfg.get("AUDIT_MAX_UNSIGNED", cls.max_unsigned)),
            max_unsigned_minutes=float(
                cfg.get("AUDIT_MAX_UNSIGNED_MINUTES", cls.max_unsigned_minutes)
            ),
            file=cfg.get("AUDIT_CHECKPOINT_FILE") or None,
            syslog=cfg.get("AUDIT_SYSLOG") or None,
        )


def checkpoint_message(seq: int, hash_: str) -> bytes:
    """What a checkpoint signs: the sequence number and hash of the head (``app.audit.verifier``
    checks the same bytes)."""
    return f"mynumber-vault audit checkpoint v1|{seq}|{hash_}".encode("ascii")


def checkpoint(
    session: Session,
    signing_key: ed25519.Ed25519PrivateKey,
    file: str | Path | None,
    syslog: str | None = None,
) -> AuditCheckpoint | None:
    """Sign the current head and store the signature in the caller's transaction.

    The head row is locked first (bounded wait), so it cannot move while it is signed, and two
    checkpointers queue instead of both signing; the sequence number is the table's primary
    key, so the same head is never stored twice. Once the transaction commits, the checkpoint
    is appended (fsync) to ``file`` outside the database and sent to ``syslog`` when given:
    only a committed chain is vouched for outside.
    """
    try:
        head = trail.advance_head(session, 0)
    except SQLAlchemyError as exc:
        session.rollback()
        raise trail.AuditUnavailable(
            "監査ログの末尾をロックできないため、チェックポイントを作成できませんでした"
        ) from exc
    if head is None or head.seq == 0:
        return None
    existing = session.get(AuditCheckpoint, head.seq)
    if existing is not None:
        return existing
    signature = signing_key.sign(checkpoint_message(head.seq, head.hash))
    cp = AuditCheckpoint(
        seq=head.seq,
        hash=head.hash,
        signed_at=utcnow(),
        signature=base64.b64encode(signature).decode("ascii"),
    )
    session.add(cp)
    session.flush()
    line = json.dumps(
        {
            "seq": cp.seq,
            "hash": cp.hash,
            "signed_at": trail.utc_text(cp.signed_at),
            "signature": cp.signature,
        }
    )
    session.info.setdefault(PENDING_PUBLISH, []).append((line, str(file) if file else None, syslog))
    return cp


@dataclass(frozen=True)
class DueCheck:
    """What ``checkpoint_if_due`` found: the checkpoint it took (if any) and the newest
    signed sequence number after it."""

    taken: AuditCheckpoint | None
    last_signed_seq: int


def _unsigned_state(session: Session) -> tuple[int, AuditCheckpoint | None]:
    head_seq = session.execute(
        select(AuditChainHead.seq).where(AuditChainHead.id == 1)
    ).scalar_one_or_none()
    last = session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
    ).scalar_one_or_none()
    return head_seq or 0, last


def _is_due(head_seq: int, last: AuditCheckpoint | None, policy: SigningPolicy, by_time: bool):
    unsigned = head_seq - (last.seq if last else 0)
    if unsigned <= 0:
        return False
    if last is None or unsigned >= policy.every:
        return True
    if not by_time:
        return False
    signed_at = last.signed_at
    if signed_at.tzinfo is None:  # SQLite hands back naive UTC
        signed_at = signed_at.replace(tzinfo=dt.UTC)
    return (utcnow() - signed_at).total_seconds() >= policy.minutes * 60


def checkpoint_if_due(
    session: Session,
    signing_key: ed25519.Ed25519PrivateKey,
    policy: SigningPolicy,
    *,
    by_time: bool = True,
) -> DueCheck:
    """Take (and commit) a checkpoint when one is due: ``policy.every`` unsigned events, any
    unsigned event and no checkpoint at all, or (``by_time``) unsigned events and a last
    checkpoint older than ``policy.minutes``. Use a session of its own: it commits.

    Looks first without locking (most calls find nothing to do), then decides again under
    the head lock, so concurrent checkpointers (portal, worker, embedded thread) take one
    checkpoint between them, never two for the same head.
    """
    head_seq, last = _unsigned_state(session)
    if not _is_due(head_seq, last, policy, by_time):
        last_seq = last.seq if last else 0
        session.rollback()
        return DueCheck(None, last_seq)
    try:
        trail.advance_head(session, 0)
    except SQLAlchemyError as exc:
        session.rollback()
        raise trail.AuditUnavailable(
            "監査ログの末尾をロックできないため、チェックポイントを作成できませんでした"
        ) from exc
    session.expire_all()
    head_seq, last = _unsigned_state(session)
    if not _is_due(head_seq, last, policy, by_time):
        last_seq = last.seq if last else 0
        session.rollback()
        return DueCheck(None, last_seq)
    problem = _unsigned_tail_problem(session, last, policy.file, head_seq)
    if problem:
        session.rollback()
        log.error("audit chain not signed: %s", problem)
        raise AuditChainBroken(problem)
    cp = checkpoint(session, signing_key, policy.file, policy.syslog)
    session.commit()
    return DueCheck(cp, cp.seq if cp else head_seq)


class AuditChainBroken(trail.AuditUnavailable):
    """The unsigned tail does not extend the last signed point: it is not signed, so a
    rewritten chain never gets a genuine signature."""


def _last_in_file(path: str | Path | None) -> tuple[int, str] | None:
    """The newest checkpoint line of the outside file (read from its end)."""
    if not path or not Path(path).exists():
        return None
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 8192))
        lines = [line for line in handle.read().splitlines() if line.strip()]
    for raw in reversed(lines):
        try:
            item = json.loads(raw)
            return int(item["seq"]), str(item["hash"])
        except (ValueError, KeyError, TypeError):
            continue  # a partial first line of the window
    return None


def _unsigned_tail_problem(
    session: Session, last: AuditCheckpoint | None, file: str | Path | None, head_seq: int
) -> str | None:
    """Why the events after the newest signed point (in the database or in the file outside
    it) must not be signed, in Japanese; None when they extend it hash by hash.

    Costs at most the unsigned tail (``every`` events), not the whole chain. A database whose
    checkpoints were deleted is anchored by the file, so a rewrite behind them is refused.
    """
    anchors = [(last.seq, last.hash)] if last else []
    outside = _last_in_file(file)
    if outside:
        anchors.append(outside)
    seq, hash_ = max(anchors, default=(0, trail.GENESIS))
    if seq > head_seq:
        return f"チェックポイント {seq} より後のはずの末尾が {head_seq} までしかありません"
    start = seq if seq else 1
    prev = None
    query = (
        select(AuditEvent)
        .where(AuditEvent.seq >= start)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=1000)
    )
    expected = start
    for event in session.execute(query).scalars():
        if event.seq != expected:
            return f"イベント {expected} が欠落しています"
        if event.seq == seq:
            if event.hash != hash_:
                return f"イベント {seq} がチェックポイントと一致しません"
            prev = event.hash
        else:
            prev = prev if prev is not None else trail.GENESIS
            if event.prev_hash != prev or trail.chain_hash(prev, event) != event.hash:
                return f"イベント {event.seq} がチェーンとつながりません"
            prev = event.hash
        expected += 1
    if expected - 1 != head_seq:
        return f"イベント {expected} が欠落しています"
    return None


# -- publishing outside the database ------------------------------------------------------
def append_to_file(path: str | Path, line: str) -> None:
    """Append one line and fsync it: the copy that whoever holds the database cannot reach.
    The file is the service account's alone (0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


class _QuietSysLogHandler(SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        log.warning("audit checkpoint could not be sent to syslog")


_syslog_handlers: dict[str, SysLogHandler] = {}


def syslog_handler(target: str) -> SysLogHandler:
    """``udp://host:port``, ``tcp://host:port`` or a socket path such as ``/dev/log``."""
    handler = _syslog_handlers.get(target)
    if handler is None:
        parts = urlsplit(target)
        if parts.scheme in ("udp", "tcp"):
            kind = socket.SOCK_DGRAM if parts.scheme == "udp" else socket.SOCK_STREAM
            address: str | tuple[str, int] = (parts.hostname or "localhost", parts.port or 514)
            handler = _QuietSysLogHandler(address, SysLogHandler.LOG_AUTH, socktype=kind)
        else:
            handler = _QuietSysLogHandler(target, SysLogHandler.LOG_AUTH)
        handler.ident = "mynumber-vault: "
        _syslog_handlers[target] = handler
    return handler


def send_to_syslog(target: str, line: str) -> None:
    record = logging.makeLogRecord(
        {
            "name": "mynumber.audit",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "audit checkpoint %s",
            "args": (line,),
        }
    )
    syslog_handler(target).emit(record)


def _publish(pending: list[tuple[str, str | None, str | None]]) -> None:
    for line, file, syslog in pending:
        if file:
            try:
                append_to_file(file, line)
            except OSError as exc:
                log.error("audit checkpoint not appended to %s: %s", file, type(exc).__name__)
        if syslog:
            try:
                send_to_syslog(syslog, line)
            except OSError as exc:
                log.warning("audit checkpoint not sent to syslog: %s", type(exc).__name__)


@sa_event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING_PUBLISH, None)
    if pending:
        _publish(pending)


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    """A checkpoint rolled back was never stored: it must not be vouched for outside."""
    session.info.pop(PENDING_PUBLISH, None)
