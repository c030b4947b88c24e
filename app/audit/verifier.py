"""Verifying the audit log: the chain recomputed, the checkpoints' signatures checked.

Needs no secret: the hashes are keyless and the checkpoints are checked with the public half
of the signing key, so an auditor verifies a copy of the database with the public key alone.
The same code runs behind ``mynumber audit verify`` and the portal's チェーン検証 screen.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import trail
from app.audit.checkpoints import SigningPolicy, checkpoint_message
from app.models import AuditChainHead, AuditCheckpoint, AuditEvent, utcnow


@dataclass
class VerifyResult:
    """What ``verify`` found: whether the log holds, where it first does not, and how much of
    it the signatures cover (shown on the portal and by ``mynumber audit verify``)."""

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


def load_public_key(pem: bytes) -> ed25519.Ed25519PublicKey:
    """The audit public key from its PEM form; anything but Ed25519 is refused."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError("公開鍵が Ed25519 ではありません")
    return key


def signature_ok(public_key: ed25519.Ed25519PublicKey, seq: int, hash_: str, sig: str) -> bool:
    """Whether ``sig`` is the signing key's signature of the checkpoint at ``seq``."""
    try:
        public_key.verify(base64.b64decode(sig), checkpoint_message(seq, hash_))
    except (InvalidSignature, ValueError):
        return False
    return True


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
        if public_key is not None and not signature_ok(public_key, seq, hash_, sig):
            return result(
                False, 0, seq, f"チェックポイント {seq} の署名が検証できません", "tampered"
            )
    # Only the hashes a checkpoint vouches for are kept, so memory stays flat.
    wanted = {seq for seq, _, _ in checkpoints}
    hashes: dict[int, str] = {}
    last_signed = max(wanted, default=0)
    first_unsigned_ts: dt.datetime | None = None

    expected_seq = 1
    prev = trail.GENESIS
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
        if trail.chain_hash(prev, event) != event.hash:
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


def status(result: VerifyResult) -> tuple[str, str]:
    """(level, 署名の状況 headline) for the portal: never 「完全」 unless a signed checkpoint
    covers the chain (an empty log, or one with no checkpoint, is 「署名済みチェックポイントなし」);
    level is ``ok``, ``warning`` or ``bad``."""
    if result.kind == "tampered":
        return "bad", "改ざんを検出"
    if result.checkpoints == 0:
        return "bad", "署名済みチェックポイントなし"
    if result.kind == "unsigned":
        return "bad", "署名されていないイベントが上限を超えています"
    if result.unsigned > 0:
        return "warning", (
            f"完全（イベント 1〜{result.last_signed_seq} は署名済み、最新の {result.unsigned} 件は"
            "次のチェックポイントで署名されます）"
        )
    return "ok", "完全（すべてのイベントが署名済み）"
