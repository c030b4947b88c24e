"""The audit chain: append-only events, SHA-256 hash chain, Ed25519-signed checkpoints.

``hash = SHA-256(prev_hash || canonical event)``. Editing, deleting or reordering any event
breaks the chain at that event; truncating the tail is caught against a checkpoint kept outside
the database (the checkpoint file, syslog, the monthly report). An auditor verifies with the
public key alone: the chain needs no secret, the checkpoints only the public half of the signing
key.

The log signs itself: ``app.audit.signing`` takes a checkpoint every ``AUDIT_CHECKPOINT_EVERY``
events and every few minutes while events arrive, and ``verify`` refuses a log with no
checkpoint or with a longer unsigned tail than allowed: an unsigned event is one whoever holds
the database can rewrite (hashes recomputed) without a trace.

Waiting for the chain head is bounded (``AUDIT_LOCK_TIMEOUT_SECONDS``): a lock held on it makes
the guarded action fail with ``AuditUnavailable`` (a 503 page), never hang.

Fail closed: ``record`` raises ``AuditUnavailable`` when the event cannot be written, and the
callers perform the access only after it returned.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from logging.handlers import SysLogHandler
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy import select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.core import logsafe, mynumber
from app.core.actor import Actor
from app.models import AuditChainHead, AuditCheckpoint, AuditEvent, utcnow

log = logging.getLogger(__name__)

PURPOSE_MAX = 500

GENESIS = "0" * 64
# session.info keys: the newest sequence number this transaction appended, and the signed
# checkpoints to publish outside the database once it commits.
APPENDED_SEQ = "mnv_audit_appended_seq"
PENDING_PUBLISH = "mnv_audit_pending_publish"
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


@dataclass
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints: int = 0  # distinct signed checkpoints checked against the chain
    problems: list[str] = field(default_factory=list)  # notes that do not fail the check
    # "tampered": the chain or a checkpoint does not fit; "unsigned": the chain fits but too
    # much of it (or all of it) is covered by no signature, so a rewrite could go unseen.
    kind: str | None = None
    last_signed_seq: int = 0
    last_signed_at: dt.datetime | None = None
    unsigned: int = 0
    in_database: int = 0
    in_file: int = 0


LOCK_TIMEOUT_SECONDS = 5.0
# Every SQLite connection's busy timeout (set on connect in app/__init__.py), put back after
# the chain head's own bounded wait.
SQLITE_BUSY_TIMEOUT_MS = 10000


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


def _ts(value: dt.datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: AuditEvent) -> bytes:
    """The bytes that are hashed: every field but the hashes, in a fixed JSON form."""
    body = {
        "seq": event.seq,
        "ts": _ts(event.ts),
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


def _advance_head(session: Session, step: int):
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
        head = _advance_head(session, 1)
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


# -- checkpoints --------------------------------------------------------------------------
def _checkpoint_message(seq: int, hash_: str) -> bytes:
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
        head = _advance_head(session, 0)
    except SQLAlchemyError as exc:
        session.rollback()
        raise AuditUnavailable(
            "監査ログの末尾をロックできないため、チェックポイントを作成できませんでした"
        ) from exc
    if head is None or head.seq == 0:
        return None
    existing = session.get(AuditCheckpoint, head.seq)
    if existing is not None:
        return existing
    signature = signing_key.sign(_checkpoint_message(head.seq, head.hash))
    cp = AuditCheckpoint(
        seq=head.seq,
        hash=head.hash,
        signed_at=utcnow(),
        signature=base64.b64encode(signature).decode("ascii"),
    )
    session.add(cp)
    session.flush()
    line = json.dumps(
        {"seq": cp.seq, "hash": cp.hash, "signed_at": _ts(cp.signed_at), "signature": cp.signature}
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
        _advance_head(session, 0)
    except SQLAlchemyError as exc:
        session.rollback()
        raise AuditUnavailable(
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


class AuditChainBroken(AuditUnavailable):
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
    seq, hash_ = max(anchors, default=(0, GENESIS))
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
            prev = prev if prev is not None else GENESIS
            if event.prev_hash != prev or chain_hash(prev, event) != event.hash:
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
    session.info.pop(PENDING_PUBLISH, None)
    session.info.pop(APPENDED_SEQ, None)


def load_public_key(pem: bytes) -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError("公開鍵が Ed25519 ではありません")
    return key


def _signature_ok(public_key: ed25519.Ed25519PublicKey, seq: int, hash_: str, sig: str) -> bool:
    try:
        public_key.verify(base64.b64decode(sig), _checkpoint_message(seq, hash_))
    except (InvalidSignature, ValueError):
        return False
    return True


# -- verification -------------------------------------------------------------------------
def _read_checkpoint_file(path: Path) -> list[tuple[int, str, str]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            found.append((int(item["seq"]), item["hash"], item["signature"]))
    return found


def verify(
    session: Session,
    public_key: ed25519.Ed25519PublicKey | None = None,
    checkpoint_file: str | Path | None = None,
    policy: SigningPolicy | None = None,
    now: dt.datetime | None = None,
) -> VerifyResult:
    """Recompute the whole chain; report the first event that does not fit.

    Needs no secret: the hashes are keyless and the checkpoints are checked with the public
    key. Streams the events so a long log does not fill memory.

    A chain that fits is not enough: whoever holds the database can drop the append-only
    triggers, rewrite events and recompute every hash after them. Only a signature over a
    point of the chain (a checkpoint, in the database and in ``checkpoint_file`` outside it)
    tells; so a log with no checkpoint, or whose unsigned tail is longer than
    ``policy.max_unsigned`` events or older than ``policy.max_unsigned_minutes``, fails too.
    """
    policy = policy or SigningPolicy()
    from_db = [
        (cp.seq, cp.hash, cp.signature)
        for cp in session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)).scalars()
    ]
    signed_at = dict(
        session.execute(select(AuditCheckpoint.seq, AuditCheckpoint.signed_at)).tuples().all()
    )
    from_file: list[tuple[int, str, str]] = []
    notes: list[str] = []
    if checkpoint_file:
        if Path(checkpoint_file).exists():
            from_file = _read_checkpoint_file(Path(checkpoint_file))
        elif from_db:
            notes.append(f"データベース外のチェックポイントファイルがありません: {checkpoint_file}")
        file_seqs = {seq for seq, _, _ in from_file}
        missing = [seq for seq, _, _ in from_db if seq not in file_seqs]
        if from_file and missing:
            notes.append(
                "データベースのチェックポイント "
                + "、".join(str(s) for s in missing[:5])
                + (" ほか" if len(missing) > 5 else "")
                + " がデータベース外のファイルにありません"
            )
    checkpoints = from_db + from_file
    distinct = len({seq for seq, _, _ in checkpoints})

    def result(ok: bool, count: int, first_bad: int | None, problem: str | None, kind=None):
        return VerifyResult(
            ok,
            count,
            first_bad,
            problem,
            distinct,
            notes,
            kind=kind,
            in_database=len(from_db),
            in_file=len(from_file),
        )

    for seq, hash_, sig in checkpoints:
        if public_key is not None and not _signature_ok(public_key, seq, hash_, sig):
            return result(
                False, 0, seq, f"チェックポイント {seq} の署名が検証できません", "tampered"
            )
    # Only the hashes a checkpoint vouches for are kept, so memory stays flat.
    wanted = {seq for seq, _, _ in checkpoints}
    hashes: dict[int, str] = {}
    last_signed = max(wanted, default=0)
    first_unsigned_ts: dt.datetime | None = None

    expected_seq = 1
    prev = GENESIS
    count = 0
    query = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000)
    for event in session.execute(query).scalars():
        count += 1
        if event.seq != expected_seq:
            return result(
                False,
                count,
                event.seq,
                f"イベント {expected_seq} が欠落しています（次は {event.seq}）",
                "tampered",
            )
        if event.prev_hash != prev:
            return result(
                False,
                count,
                event.seq,
                f"イベント {event.seq} の直前ハッシュが一致しません",
                "tampered",
            )
        if chain_hash(prev, event) != event.hash:
            return result(
                False,
                count,
                event.seq,
                f"イベント {event.seq} の内容が改ざんされています",
                "tampered",
            )
        prev = event.hash
        if event.seq in wanted:
            hashes[event.seq] = event.hash
        if event.seq == last_signed + 1:
            first_unsigned_ts = event.ts
        expected_seq += 1
        session.expunge(event)
    last_seq = expected_seq - 1

    head = session.get(AuditChainHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != prev):
        return result(
            False,
            count,
            last_seq + 1,
            f"末尾のイベントが削除されています（記録上の最終 {head.seq}、実在 {last_seq}）",
            "tampered",
        )
    good_before = 0  # the newest checkpoint that fits: events up to it are untouched
    for seq, hash_, _ in sorted(checkpoints):
        if seq > last_seq:
            return result(
                False,
                count,
                last_seq + 1,
                f"チェックポイント {seq} 以前のイベントが削除されています（実在 {last_seq} まで）",
                "tampered",
            )
        if hashes.get(seq) != hash_:
            return result(
                False,
                count,
                good_before + 1,
                f"イベント {good_before + 1}〜{seq} のいずれかが書き換えられています"
                f"（チェックポイント {seq} の署名済みハッシュと一致しません）",
                "tampered",
            )
        good_before = seq
    # A checkpoint is published outside only after its row committed: one the file has and
    # the database lacks was deleted from the append-only table.
    db_seqs = {seq for seq, _, _ in from_db}
    deleted = sorted({seq for seq, _, _ in from_file} - db_seqs)
    if deleted:
        return result(
            False,
            count,
            deleted[0],
            f"チェックポイント {deleted[0]} がデータベースから削除されています"
            "（データベース外のファイルには残っています）",
            "tampered",
        )

    outcome = result(True, count, None, None)
    outcome.last_signed_seq = last_signed
    outcome.last_signed_at = signed_at.get(last_signed)
    outcome.unsigned = last_seq - last_signed
    problem = _unsigned_problem(outcome, first_unsigned_ts, policy, now or utcnow())
    if problem:
        outcome.ok, outcome.kind, outcome.problem = False, "unsigned", problem
        outcome.first_bad_seq = last_signed + 1
    return outcome


def _unsigned_problem(
    outcome: VerifyResult,
    first_unsigned_ts: dt.datetime | None,
    policy: SigningPolicy,
    now: dt.datetime,
) -> str | None:
    """Why the signed part of a fitting chain is too small, in Japanese; None if it is not."""
    if outcome.unsigned <= 0:
        return None
    if outcome.checkpoints == 0:
        return (
            f"署名付きチェックポイントが1件もありません（イベント {outcome.unsigned} 件のどれも"
            "署名で保護されておらず、書き換えられても検出できません）"
        )
    if outcome.unsigned > policy.max_unsigned:
        return (
            f"チェックポイント {outcome.last_signed_seq} より後の {outcome.unsigned} 件が"
            f"署名されていません（上限 {policy.max_unsigned} 件）"
        )
    if first_unsigned_ts is not None:
        if first_unsigned_ts.tzinfo is None:
            first_unsigned_ts = first_unsigned_ts.replace(tzinfo=dt.UTC)
        minutes = (now - first_unsigned_ts).total_seconds() / 60
        if minutes > policy.max_unsigned_minutes:
            return (
                f"イベント {outcome.last_signed_seq + 1} 以降が {int(minutes)} 分間署名されて"
                f"いません（上限 {policy.max_unsigned_minutes:g} 分）"
            )
    return None
