"""The audit chain: append-only events, SHA-256 hash chain, Ed25519-signed checkpoints.

``hash = SHA-256(prev_hash || canonical event)``. Editing, deleting or reordering any event
breaks the chain at that event; truncating the tail is caught against a checkpoint kept outside
the database (the checkpoint file, the monthly report). An auditor verifies with the public
key alone: the chain needs no secret, the checkpoints only the public half of the signing key.

Fail closed: ``record`` raises ``AuditUnavailable`` when the event cannot be written, and the
callers perform the access only after it returned.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app import logsafe, mynumber
from app.models import AuditChainHead, AuditCheckpoint, AuditEvent, utcnow

log = logging.getLogger(__name__)

PURPOSE_MAX = 500

GENESIS = "0" * 64
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


@dataclass(frozen=True)
class Actor:
    """Who acts: a portal user, the CLI, a job or the public form."""

    name: str
    user_id: int | None = None
    roles: tuple[str, ...] = ()
    roster_entry_id: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    mfa: bool = False
    roster_approved: bool = False

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(name=name)


@dataclass
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)


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
        # The UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) first, so two
        # appenders can never both read the same head; it hands back the new sequence number
        # and the previous hash itself (RETURNING: no second statement to read them, issue 4).
        # "fetch" keeps a head already in this session in step with what the database says.
        head = session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == 1)
            .values(seq=AuditChainHead.seq + 1)
            .returning(AuditChainHead.seq, AuditChainHead.hash)
            .execution_options(synchronize_session="fetch")
        ).one_or_none()
        if head is None:
            raise AuditUnavailable("監査ログが初期化されていません")
        # A second line of defence for the free text that comes from outside (a refused
        # request's purpose, a browser's user agent): no number is ever stored (the one
        # detector, app.mynumber.find_numbers).
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
        if commit:
            session.commit()
        return event
    except AuditUnavailable:
        session.rollback()
        raise
    except SQLAlchemyError as exc:
        session.rollback()
        log.error("audit event could not be written: %s", type(exc).__name__)
        raise AuditUnavailable(
            "監査ログを書き込めないため、この操作は実行されませんでした"
        ) from exc


# -- checkpoints --------------------------------------------------------------------------
def _checkpoint_message(seq: int, hash_: str) -> bytes:
    return f"mynumber-vault audit checkpoint v1|{seq}|{hash_}".encode("ascii")


def checkpoint(
    session: Session, signing_key: ed25519.Ed25519PrivateKey, file: str | Path | None
) -> AuditCheckpoint | None:
    """Sign the current head; store it and append it to the file kept outside the database."""
    head = session.get(AuditChainHead, 1)
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
    if file:
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(
                json.dumps(
                    {
                        "seq": cp.seq,
                        "hash": cp.hash,
                        "signed_at": _ts(cp.signed_at),
                        "signature": cp.signature,
                    }
                )
                + "\n"
            )
    return cp


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
def verify(
    session: Session,
    public_key: ed25519.Ed25519PublicKey | None = None,
    checkpoint_file: str | Path | None = None,
) -> VerifyResult:
    """Recompute the whole chain; report the first event that does not fit.

    Needs no secret: the hashes are keyless and the checkpoints are checked with the public
    key. Streams the events so a long log does not fill memory.
    """
    checkpoints = [
        (cp.seq, cp.hash, cp.signature)
        for cp in session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)).scalars()
    ]
    if checkpoint_file and Path(checkpoint_file).exists():
        for line in Path(checkpoint_file).read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                checkpoints.append((int(item["seq"]), item["hash"], item["signature"]))
    for seq, hash_, sig in checkpoints:
        if public_key is not None and not _signature_ok(public_key, seq, hash_, sig):
            return VerifyResult(
                False, 0, seq, f"チェックポイント {seq} の署名が検証できません", len(checkpoints)
            )
    # Only the hashes a checkpoint vouches for are kept, so memory stays flat.
    wanted = {seq for seq, _, _ in checkpoints}
    hashes: dict[int, str] = {}

    expected_seq = 1
    prev = GENESIS
    count = 0
    query = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000)
    for event in session.execute(query).scalars():
        count += 1
        if event.seq != expected_seq:
            return VerifyResult(
                False,
                count,
                event.seq,
                f"イベント {expected_seq} が欠落しています（次は {event.seq}）",
            )
        if event.prev_hash != prev:
            return VerifyResult(
                False, count, event.seq, f"イベント {event.seq} の直前ハッシュが一致しません"
            )
        if chain_hash(prev, event) != event.hash:
            return VerifyResult(
                False, count, event.seq, f"イベント {event.seq} の内容が改ざんされています"
            )
        prev = event.hash
        if event.seq in wanted:
            hashes[event.seq] = event.hash
        expected_seq += 1
        session.expunge(event)
    last_seq = expected_seq - 1

    head = session.get(AuditChainHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != prev):
        return VerifyResult(
            False,
            count,
            last_seq + 1,
            f"末尾のイベントが削除されています（記録上の最終 {head.seq}、実在 {last_seq}）",
        )
    for seq, hash_, _ in checkpoints:
        if seq > last_seq:
            return VerifyResult(
                False,
                count,
                last_seq + 1,
                f"チェックポイント {seq} 以前のイベントが削除されています（実在 {last_seq} まで）",
                len(checkpoints),
            )
        if hashes.get(seq) != hash_:
            return VerifyResult(
                False,
                count,
                seq,
                f"イベント {seq} がチェックポイントと一致しません",
                len(checkpoints),
            )
    return VerifyResult(True, count, checkpoints=len(checkpoints))
