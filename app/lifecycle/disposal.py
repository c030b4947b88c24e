"""Disposal: request → approval by the client → execution → certificate (spec 5.3-5).

- **Request.** An Operator or ClientStaff user asks to dispose of a scope (chosen people,
  people past their 削除予定日, everyone at contract end) with a reason; paper originals and
  other materials (spec 5.3, last paragraph) get the same request as a ``material`` kind.
  The people of the scope are fixed at request time (``disposal_item``), except "everyone",
  which means everyone still stored when it is executed.
- **Approval.** A ClientStaff user other than the requester, signed in with TOTP *and*
  entering a current TOTP code again for this approval. Refusals are audited.
- **Execution** (data): audited first (committed), then one database transaction that
  destroys each person's data key (crypto-shredding: every copy of their number, address and
  images, backups included, becomes unreadable), deletes their number records and every other
  row holding their data (``HOLDERS``), scrubs the personal columns of their ``person`` row and
  keeps it as the tombstone (id, kind, dates; the reason is on the request), and writes the
  audit events whose range and chain hash the certificate quotes. Before any database change,
  the disposed person ids and data-key ids are written **outside the database** — into the key
  ring (``disposed_people`` and the shred list) and appended to the disposal journal — so that
  a restored backup, or a database rolled back by any other means, has the disposal re-applied
  (``reapply``: at ``mynumber init``, ``mynumber run`` and after ``mynumber restore``). If the
  database transaction fails after that, the data is already unreadable (the safe direction)
  and running the execution again completes it: every step is idempotent.
- **Key closure.** Crypto-shredding a data key is final only if no backup still holds that
  key wrapped under a KEK that still exists somewhere: a database backup taken before the
  disposal holds the wrapped key (and the person's name, sealed under the KEK), a key-ring
  backup holds the KEK. So a disposal ends (``close_keys``: after the CLI's execution, in
  the portal's finishing job, and resumed at ``init`` / ``run`` after a crash) by rotating
  the KEK, retiring every older one, destroying every key-ring backup that still holds one,
  and taking a fresh database backup (and key-ring backup, when a recovery key is
  configured). Every database backup from before is then unreadable with any key ring the
  product still has, names included; the certificate lists those files and the retired
  versions. Every step is idempotent; the request records when the closure was done.
- **Storage.** After the commit, the freed bytes are removed from the database files: SQLite
  runs with ``secure_delete`` (deleted content is zeroed) and its WAL is checkpointed and
  truncated; PostgreSQL gets ``VACUUM FULL`` of the touched tables (dead row versions would
  otherwise stay in the table files). Limits: see docs/lifecycle.md.

Why the person row is the tombstone (and not a separate table): other tables refer to people
by id, some of them append-only (audit events, export manifests); keeping the row keeps every
such reference valid while the row itself no longer says anything about the person.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from flask_appbuilder import Model
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.access import accounts, lockout, policy, totp
from app.audit import trail
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.lifecycle import retention
from app.models import (
    TOTP_SECRET,
    CaseAssignment,
    CollectionRequest,
    CollectionRequestStatus,
    DataKey,
    DisposalItem,
    DisposalKind,
    DisposalRequest,
    DisposalScope,
    DisposalStatus,
    Inquiry,
    InquiryAction,
    IoTicket,
    MyNumberRecord,
    NameChange,
    PaperPart,
    Person,
    RetainedDocument,
    Submission,
    SubmissionPart,
    VaultUser,
    utcnow,
)
from app.vault.envelopes import Vault

log = logging.getLogger(__name__)

VIEW = "Disposal"
FINISH_JOB = "app.jobs.lifecycle.finish_disposal"  # the job, by name (app.platform.queue)
BATCH = 1000
REASON_MAX = 2000
DISPOSED_NAME = "（廃棄済み）"
DISPOSED_SECTION = "disposed_people"  # key-ring section name, not a secret
DATA_METHOD = (
    "暗号鍵の消去による復元不能化（各人のデータ鍵を破棄する暗号化消去。バックアップ内の写しも"
    "同じ鍵で暗号化されているため復元できません）＋データ削除（個人番号の暗号文・ブラインド"
    "インデックス・関連データの削除、氏名・カナ・生年月日・住所・連絡先等の消去）"
)
MATERIAL_METHODS = (
    "シュレッダー（クロスカット）による裁断",
    "溶解処理（処理業者に委託）",
    "焼却処理（処理業者に委託）",
    "電子媒体の物理破壊",
    "その他（備考に記載）",
)


class DisposalError(ValueError):
    """A request, decision or execution that cannot be made; Japanese, names the field."""


# -- who may ------------------------------------------------------------------------------
def is_cli(actor: Actor) -> bool:
    """The ``mynumber`` command on the server (``policy.ShellActor``, trusted by type)."""
    return isinstance(actor, policy.ShellActor)


def authorize(actor: Actor, permission: str, view: str = VIEW) -> None:
    """The policy decides, for portal users and the command line alike: the shell may run what
    the client already approved (it holds the key ring anyway), never request or approve."""
    policy.require(actor, permission, view)


def verify_step_up(session: Session, vault: Vault, actor: Actor, code: str | None) -> None:
    """A fresh TOTP code for this one action, on top of the TOTP at sign-in.

    The same rules as the sign-in code (``app.access.totp``, ``app.access.lockout``): a code of a time step
    already spent (the one typed at sign-in included) is refused, and a wrong or replayed code
    counts as a failed sign-in, so guessing ends in the account lock (which also ends every
    session of the user). A locked account is refused before its code is even looked at.
    """
    code = (code or "").strip()
    if not code:
        raise policy.PermissionDenied("確認コード（TOTP）を入力してください")
    user = session.get(VaultUser, actor.user_id) if actor.user_id is not None else None
    if user is None or not user.totp_secret_enc or user.totp_enrolled_at is None:
        raise policy.PermissionDenied("二要素認証（TOTP）が登録されていません")
    if lockout.is_locked(user):
        raise policy.PermissionDenied(lockout.LOCKED_MESSAGE)
    secret = vault.open_system(
        TOTP_SECRET.purpose, TOTP_SECRET.aad(id=user.id), user.totp_secret_enc
    ).decode("ascii")
    outcome = "wrong"
    if code.isdigit() and len(code) == 6:
        outcome = totp.spend_code(session, user, secret, code)
    if outcome == "ok":
        return
    reason = "step_up_totp_replayed" if outcome == "replayed" else "step_up_bad_totp"
    if lockout.register_failure(session, user, actor, reason, action="auth.step_up"):
        raise policy.PermissionDenied(
            "確認コード（TOTP）が正しくありません。"
            + lockout.lock_message()
            + "すべてのログインを終了しました。"
        )
    if outcome == "replayed":
        raise policy.PermissionDenied(
            "この確認コード（TOTP）は既に使用されています（ログイン時のコードを含みます）。"
            "認証アプリに次の確認コードが表示されてから入力してください"
        )
    raise policy.PermissionDenied("確認コード（TOTP）が正しくありません")


def _denied(session: Session, actor: Actor, action: str, ref, reason: str) -> None:
    session.rollback()
    trail.record(
        session,
        actor,
        action,
        object_type="disposal_request",
        object_ids=[ref] if ref else [],
        outcome="denied",
        details={"reason": reason},
        commit=True,
    )


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ids_digest(ids: Iterable) -> str:
    """SHA-256 of the ids, sorted, one per line: what the audit log and certificate quote."""
    digest = hashlib.sha256()
    for value in sorted(str(i) for i in ids):
        digest.update(value.encode("ascii") + b"\n")
    return digest.hexdigest()


# -- what holds a person's data --------------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    """A table with rows of a person's data, and how to remove them for a list of ids;
    ``also``: further tables the purge changes (compacted after the disposal)."""

    table: str
    label: str
    purge: Callable[[Session, list[uuid.UUID]], int]
    also: tuple[str, ...] = ()


def _purge_numbers(session: Session, ids: list[uuid.UUID]) -> int:
    result = session.execute(delete(MyNumberRecord).where(MyNumberRecord.person_id.in_(ids)))
    return result.rowcount or 0


def _purge_cases(session: Session, ids: list[uuid.UUID]) -> int:
    result = session.execute(delete(CaseAssignment).where(CaseAssignment.person_id.in_(ids)))
    return result.rowcount or 0


def _purge_name_changes(session: Session, ids: list[uuid.UUID]) -> int:
    """氏名変更の履歴 (issue 3): the old and new names."""
    result = session.execute(delete(NameChange).where(NameChange.person_id.in_(ids)))
    return result.rowcount or 0


def _purge_intake(session: Session, ids: list[uuid.UUID]) -> int:
    """What the public form received (issue 4). Parts are sealed to the intake key, not to the
    person's data key, so crypto-shredding does not reach them: they are deleted. Every part
    about a disposed person goes; of a request a disposed person owned, every part that is
    not about a person still stored (dependents they added) goes too, and the free text of
    the request and its history is cleared, and its link is locked. The request rows stay as
    the history's skeleton (status and dates, which billing counts), pointing at the
    tombstone."""
    gone = {str(i) for i in ids}
    deleted = session.execute(
        delete(SubmissionPart).where(SubmissionPart.subject_ref.in_(sorted(gone)))
    ).rowcount
    owned = list(
        session.execute(
            select(CollectionRequest.id).where(CollectionRequest.person_id.in_(ids))
        ).scalars()
    )
    if not owned:
        return deleted or 0
    parts = session.execute(
        select(SubmissionPart.id, SubmissionPart.subject_ref)
        .join(Submission, Submission.id == SubmissionPart.submission_id)
        .where(Submission.request_id.in_(owned))
    ).all()
    candidates = {}
    for part_id, ref in parts:
        try:
            candidates[part_id] = uuid.UUID(ref)
        except ValueError:
            candidates[part_id] = None
    people = {c for c in candidates.values() if c is not None}
    stored = set(
        session.execute(
            select(Person.id).where(Person.id.in_(people), retention.stored())
        ).scalars()
    ) - set(ids)
    doomed = [pid for pid, ref in candidates.items() if ref not in stored]
    for batch in _batches(doomed):
        deleted += session.execute(
            delete(SubmissionPart).where(SubmissionPart.id.in_(batch))
        ).rowcount
    session.execute(
        update(CollectionRequest)
        .where(CollectionRequest.id.in_(owned))
        .values(decline_note=None, reopened="[]", locked_at=utcnow())
    )
    session.execute(
        update(CollectionRequestStatus)
        .where(CollectionRequestStatus.request_id.in_(owned))
        .values(note=None)
    )
    return deleted or 0


def _purge_collection(session: Session, ids: list[uuid.UUID]) -> int:
    """Collection work (issue 5): ID images kept after verification (under the person's DEK,
    already unreadable once it is shredded) and the sealed scans and keyings of a paper
    envelope still being processed."""
    deleted = (
        session.execute(
            delete(RetainedDocument).where(RetainedDocument.person_id.in_(ids))
        ).rowcount
        or 0
    )
    refs = sorted(str(i) for i in ids)
    deleted += (
        session.execute(delete(PaperPart).where(PaperPart.subject_ref.in_(refs))).rowcount or 0
    )
    return deleted


# Every table whose rows carry a person's data. A new table that refers to person.id must be
# added here (or to KEEP_TABLES): until it is, execution refuses to run (fail closed).
HOLDERS: list[Holder] = [
    Holder("my_number_record", "個人番号（暗号文・ブラインドインデックス）", _purge_numbers),
    Holder("case_assignment", "担当案件", _purge_cases),
    Holder("name_change", "氏名変更の履歴", _purge_name_changes),
    Holder(
        "collection_request",
        "提出フォームで受け付けた番号・書類の画像・追加した扶養親族（封緘データ）",
        _purge_intake,
        also=("submission_part", "collection_request_status"),
    ),
    Holder(
        "retained_document",
        "保管を続けた本人確認書類の画像と、郵送受付中の封緘データ（スキャン・入力した番号）",
        _purge_collection,
        also=("paper_part",),
    ),
]
# Handled by the execution itself.
HANDLED_TABLES = {
    "person": "人物（個人情報の列を消去し、墓標として残す）",
    "data_key": "データ鍵（暗号化消去）",
}
# Tables that keep a disposed person's id and nothing else about them. (``export_item``, the
# append-only export manifests of issue 3, holds ids without a foreign key, so it is not
# found by the check below; it keeps them by design.)
KEEP_TABLES = {"disposal_item": "廃棄の記録（人物IDのみ）"}


def unclassified_tables() -> list[str]:
    """Tables that refer to person.id but are neither purged nor known to hold ids only."""
    person = Person.__table__
    known = {h.table for h in HOLDERS} | set(HANDLED_TABLES) | set(KEEP_TABLES)
    found = []
    for table in Model.metadata.sorted_tables:
        refers = any(fk.column.table is person for fk in table.foreign_keys)
        if refers and table.name not in known:
            found.append(table.name)
    return found


def touched_tables() -> list[str]:
    tables = ["person", "data_key"]
    for holder in HOLDERS:
        tables += [holder.table, *holder.also]
    return tables


SCRUBBED = {
    "name": DISPOSED_NAME,
    "name_kana": None,
    "code": None,
    "birth_date": None,
    "postal_code": None,
    "address_enc": None,
    "email": None,
    "relation": None,
    "ended_on": None,
    "household_head_id": None,
    "dependent_seq": 0,
    "status": "disposed",
}


def _dispose_people(session: Session, vault: Vault, ids: list[uuid.UUID]) -> dict:
    """Crypto-shred, purge and scrub (the caller has recorded the ids outside the database)."""
    counts = {"data_keys": len(vault.shred(session, ids))}
    now = utcnow()
    for batch in _batches(ids):
        for holder in HOLDERS:
            counts[holder.table] = counts.get(holder.table, 0) + holder.purge(session, batch)
        session.execute(
            update(Person).where(Person.id.in_(batch)).values(**SCRUBBED, disposed_at=now)
        )
    return counts


# -- outside the database ------------------------------------------------------------------
def _journal_lines(path: str | Path | None) -> list[dict]:
    if not path or not Path(path).exists():
        return []
    lines = []
    for line_no, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if text.strip():
            try:
                lines.append(json.loads(text))
            except ValueError:
                log.error("disposal journal line %s is unreadable", line_no)
    return lines


def disposed_outside(keys, journal: str | Path | None) -> tuple[set[str], set[str]]:
    """(person ids, data-key ids) disposed according to the key ring and the journal."""
    section = keys.get_secret(DISPOSED_SECTION) or {}
    people = set(section.get("people", []))
    data_keys = set(keys.shredded())
    for line in _journal_lines(journal):
        people |= set(line.get("people", []))
        data_keys |= set(line.get("data_keys", []))
    return people, data_keys


def retired_outside(journal: str | Path | None) -> set[str]:
    """Fingerprints of the KEKs retired by key closures, from the journal: a key ring
    restored from an older backup must not bring them back."""
    found: set[str] = set()
    for line in _journal_lines(journal):
        found |= {str(r["fingerprint"]) for r in line.get("retired_keks", [])}
    return found


def _append_journal(journal: str | Path | None, line: dict) -> None:
    if not journal:
        return
    path = Path(journal)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def record_retired_outside(keys, journal: str | Path | None, requests: Iterable = ()) -> list:
    """Append the ring's retired KEKs (version and fingerprint) to the journal, where a key
    ring restored from an older backup is checked against them; returns them."""
    retired = keys.retired()
    _append_journal(
        journal,
        {
            "at": utcnow().isoformat(),
            "requests": sorted(str(i) for i in requests),
            "retired_keks": retired,
        },
    )
    return retired


def _remember_people(keys, person_ids: Iterable[str]) -> None:
    section = keys.get_secret(DISPOSED_SECTION) or {"format": 1, "people": []}
    merged = set(section.get("people", [])) | {str(i) for i in person_ids}
    if len(merged) != len(section.get("people", [])):
        keys.set_secret(DISPOSED_SECTION, {"format": 1, "people": sorted(merged)})


def record_outside(
    keys,
    journal: str | Path | None,
    request_id,
    person_ids: list[uuid.UUID],
    key_ids: list[str],
) -> None:
    """Write the disposal where no database restore reaches: journal line, key ring."""
    _append_journal(
        journal,
        {
            "request": str(request_id),
            "at": utcnow().isoformat(),
            "people": sorted(str(i) for i in person_ids),
            "data_keys": sorted(key_ids),
        },
    )
    _remember_people(keys, [str(i) for i in person_ids])
    keys.record_shredded(key_ids)


# -- request --------------------------------------------------------------------------------
def resolve_codes(session: Session, text: str) -> list[uuid.UUID]:
    """Active people by 扶養者コード (``E0001-00``, ``E0001-01``) or 委員番号, one a line."""
    ids: list[uuid.UUID] = []
    for number, raw in enumerate((text or "").splitlines(), 1):
        code = raw.strip()
        if not code:
            continue
        query = select(Person.id).where(Person.status == "active")
        head, sep, seq = code.rpartition("-")
        if sep and seq.isdigit() and len(seq) == 2:
            query = query.where(
                Person.code == head, Person.dependent_seq == int(seq), Person.kind != "external"
            )
        else:
            query = query.where(Person.code == code, Person.dependent_seq == 0)
        found = session.execute(query).scalars().all()
        if len(found) != 1:
            raise DisposalError(
                f"{number}行目: 該当する人物が見つかりません（{code[:50]}）"
                if not found
                else f"{number}行目: 該当する人物が複数います（{code[:50]}）"
            )
        if found[0] not in ids:
            ids.append(found[0])
    return ids


def request_disposal(
    session: Session,
    actor: Actor,
    *,
    scope: str,
    reason: str,
    person_ids: Iterable[uuid.UUID] = (),
    material_description: str | None = None,
    quantity: str | None = None,
) -> DisposalRequest:
    """Record a request; nothing is disposed of until the client approves and it is run."""
    authorize(actor, "can_request")
    reason = (reason or "").strip()
    if not reason:
        raise DisposalError("廃棄の理由を入力してください")
    if len(reason) > REASON_MAX:
        raise DisposalError(f"廃棄の理由は{REASON_MAX}文字以内で入力してください")
    if mynumber.contains_number(reason):
        raise DisposalError(mynumber.number_refusal("廃棄の理由"))
    if mynumber.contains_number(material_description):
        raise DisposalError(mynumber.number_refusal("対象の説明"))
    if scope not in DisposalScope.LABELS:
        raise DisposalError("廃棄の対象範囲が不正です")
    ids: list[uuid.UUID] = []
    kind = DisposalKind.DATA
    description = None
    if scope == DisposalScope.MATERIAL:
        kind = DisposalKind.MATERIAL
        description = (material_description or "").strip()
        if not description:
            raise DisposalError("廃棄する資料の内容を入力してください")
        if len(description) > REASON_MAX:
            raise DisposalError(f"資料の内容は{REASON_MAX}文字以内で入力してください")
        quantity = (quantity or "").strip()[:200] or None
        if mynumber.contains_number(quantity):
            raise DisposalError(mynumber.number_refusal("数量"))
    elif scope == DisposalScope.PEOPLE:
        ids = list(dict.fromkeys(person_ids))
        if not ids:
            raise DisposalError("廃棄する人物を1名以上指定してください")
        active = set()
        for batch in _batches(ids):
            active |= set(
                session.execute(
                    select(Person.id).where(Person.id.in_(batch), retention.stored())
                ).scalars()
            )
        if len(active) != len(ids):
            raise DisposalError("指定した人物の中に、見つからないか既に廃棄済みの人物がいます")
    elif scope == DisposalScope.DUE:
        retention.recompute(session)  # 終了日 may have changed since the weekly review
        ids = retention.due_ids(session)
        if not ids:
            raise DisposalError("削除予定日を過ぎた人物はいません")
    planned = (
        session.execute(select(func.count(Person.id)).where(retention.stored())).scalar_one()
        if scope == DisposalScope.ALL
        else len(ids)
    )
    req = DisposalRequest(
        id=uuid.uuid4(),
        kind=kind,
        scope=scope,
        reason=reason,
        material_description=description,
        quantity=quantity if kind == DisposalKind.MATERIAL else None,
        planned_count=planned,
        requested_by_id=actor.user_id,
        requested_by_name=actor.name,
        status=DisposalStatus.PENDING,
    )
    session.add(req)
    session.flush()
    _add_items(session, req.id, ids)
    event = trail.record(
        session,
        actor,
        "disposal.requested",
        object_type="disposal_request",
        object_ids=[req.id],
        purpose=reason,
        details={
            "kind": kind,
            "scope": scope,
            "count": planned,
            "ids_sha256": ids_digest(ids) if ids else None,
        },
    )
    req.request_seq = event.seq
    session.commit()
    return req


def _add_items(session: Session, request_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    for batch in _batches(ids):
        kinds = dict(
            session.execute(select(Person.id, Person.kind).where(Person.id.in_(batch))).all()
        )
        session.execute(
            insert(DisposalItem),
            [
                {"request_id": request_id, "person_id": pid, "person_kind": kinds[pid]}
                for pid in batch
            ],
        )


# -- decision ---------------------------------------------------------------------------------
def decide(
    session: Session,
    vault: Vault,
    actor: Actor,
    request_id: uuid.UUID,
    approve: bool,
    totp_code: str | None = None,
    note: str | None = None,
) -> DisposalRequest:
    """Approve (with a fresh TOTP code) or reject; never by the requester. Audited either way."""
    action = "disposal.approved" if approve else "disposal.rejected"
    try:
        policy.require(actor, "can_approve", VIEW)
        req = session.get(DisposalRequest, request_id)
        if req is None or req.status != DisposalStatus.PENDING:
            raise DisposalError("承認待ちの廃棄申請が見つかりません")
        if mynumber.contains_number(note):
            raise DisposalError(mynumber.number_refusal("コメント"))
        if actor.user_id is None or actor.user_id == req.requested_by_id:
            raise DisposalError(
                "自分が申請した廃棄は承認・却下できません（申請者以外の発注者担当者が行います）"
            )
        # Nor through an account the requester made, set up or was shown the password of.
        conflict = accounts.approver_conflict(session, actor, req.requested_by_id)
        if conflict is not None:
            raise DisposalError(conflict)
        if approve:
            verify_step_up(session, vault, actor, totp_code)
    except (policy.PermissionDenied, DisposalError) as exc:
        _denied(session, actor, action, request_id, str(exc))
        raise
    req.status = DisposalStatus.APPROVED if approve else DisposalStatus.REJECTED
    req.decided_by_id = actor.user_id
    req.decided_by_name = actor.name
    req.decided_at = utcnow()
    req.decision_note = (note or "").strip()[:1000] or None
    session.flush()
    event = trail.record(
        session,
        actor,
        action,
        object_type="disposal_request",
        object_ids=[req.id],
        details={"kind": req.kind, "scope": req.scope, "count": req.planned_count},
    )
    req.decision_seq = event.seq
    session.commit()
    return req


# -- execution ----------------------------------------------------------------------------------
@dataclass
class Execution:
    request: DisposalRequest
    already_done: bool = False
    compacted: bool = False
    compaction_error: str | None = None
    counts: dict = field(default_factory=dict)


def _scope_ids(session: Session, req: DisposalRequest) -> list[uuid.UUID]:
    if req.scope == DisposalScope.ALL:
        ids = list(
            session.execute(
                select(Person.id).where(retention.stored()).order_by(Person.id)
            ).scalars()
        )
        known = set(
            session.execute(
                select(DisposalItem.person_id).where(DisposalItem.request_id == req.id)
            ).scalars()
        )
        _add_items(session, req.id, [i for i in ids if i not in known])
        return ids
    return list(
        session.execute(
            select(DisposalItem.person_id)
            .join(Person, Person.id == DisposalItem.person_id)
            .where(DisposalItem.request_id == req.id, retention.stored())
            .order_by(DisposalItem.person_id)
        ).scalars()
    )


def certificate_number(req: DisposalRequest) -> str:
    stamp = jptime.to_jst(req.executed_at or utcnow()).strftime("%Y%m%d")
    return f"DC-{stamp}-{req.id.hex[:6].upper()}"


def execute(
    session: Session,
    vault: Vault,
    actor: Actor,
    request_id: uuid.UUID,
    journal: str | Path | None,
    compact: bool = True,
) -> Execution:
    """Carry out an approved data disposal (see the module docstring for the order)."""
    try:
        authorize(actor, "can_execute")
        req = session.get(DisposalRequest, request_id)
        if req is None:
            raise DisposalError("廃棄申請が見つかりません")
        if req.kind != DisposalKind.DATA:
            raise DisposalError("資料の廃棄は「廃棄の記録」で実施内容を登録してください")
        if req.status == DisposalStatus.EXECUTED:
            return Execution(req, already_done=True, compacted=req.compacted_at is not None)
        if req.status != DisposalStatus.APPROVED:
            raise DisposalError("発注者が承認した申請のみ実行できます")
        unknown = unclassified_tables()
        if unknown:
            raise DisposalError(
                "人物を参照するテーブルのうち、廃棄時の扱いが決まっていないものがあるため実行"
                "できません（app/lifecycle/disposal.py の HOLDERS に追加してください）: "
                + "、".join(unknown)
            )
    except (policy.PermissionDenied, DisposalError) as exc:
        _denied(session, actor, "disposal.execute", request_id, str(exc))
        raise
    start = trail.record(
        session,
        actor,
        "disposal.execute",
        object_type="disposal_request",
        object_ids=[request_id],
        details={"scope": req.scope, "planned": req.planned_count},
        commit=True,
    )
    start_seq = start.seq
    try:
        req = session.get(DisposalRequest, request_id)
        ids = _scope_ids(session, req)
        key_ids: list[str] = []
        for batch in _batches(ids):
            key_ids += [
                str(k)
                for k in session.execute(
                    select(DataKey.id).where(DataKey.person_id.in_(batch))
                ).scalars()
            ]
        record_outside(vault.keys, journal, req.id, ids, key_ids)
        counts = _dispose_people(session, vault, ids)
        if req.scope == DisposalScope.ALL:
            # Contract end: inquiries from the contact form are not linked to people, and go
            # with everything else (the return archive holds them).
            session.execute(delete(InquiryAction))  # the inquiries' history (issue 7)
            counts["inquiry"] = session.execute(delete(Inquiry)).rowcount or 0
            # Import / 照合 steps awaiting confirmation hold sealed uploads of people.
            counts["io_ticket"] = session.execute(delete(IoTicket)).rowcount or 0
        now = utcnow()
        for batch in _batches(ids):
            session.execute(
                update(DisposalItem)
                .where(DisposalItem.request_id == req.id, DisposalItem.person_id.in_(batch))
                .values(disposed_at=now)
            )
            trail.record(
                session,
                actor,
                "disposal.people_disposed",
                object_type="person",
                object_ids=batch,
                details={"request": str(req.id), "count": len(batch)},
            )
        req.status = DisposalStatus.EXECUTED
        req.executed_by_id = actor.user_id
        req.executed_by_name = actor.name
        req.executed_at = now
        req.person_count = len(ids)
        req.numbers_deleted = counts.get("my_number_record", 0)
        req.keys_destroyed = counts["data_keys"]
        req.method = DATA_METHOD
        req.certificate_no = certificate_number(req)
        req.kek_version_at_execution = vault.keys.current_kek_version()
        session.flush()
        final = trail.record(
            session,
            actor,
            "disposal.executed",
            object_type="disposal_request",
            object_ids=[req.id],
            details={
                "people": len(ids),
                "ids_sha256": ids_digest(ids),
                "deleted": counts,
                "certificate_no": req.certificate_no,
            },
        )
        req.exec_first_seq = start_seq
        req.exec_last_seq = final.seq
        req.exec_last_hash = final.hash
        session.commit()
    except Exception as exc:
        session.rollback()
        try:
            trail.record(
                session,
                actor,
                "disposal.execute",
                object_type="disposal_request",
                object_ids=[request_id],
                outcome="failure",
                details={"error": type(exc).__name__},
                commit=True,
            )
        except Exception:  # noqa: BLE001 - the original error matters more
            log.error("could not audit the failed disposal %s", request_id)
        raise
    result = Execution(session.get(DisposalRequest, request_id), counts=counts)
    if compact:
        finish_storage(session, actor, result)
    return result


def finish_storage(session: Session, actor: Actor, result: Execution) -> None:
    """Remove the freed bytes from the database files (after the commit), audited."""
    req = result.request
    extra = ["inquiry", "inquiry_action", "io_ticket"] if req.scope == DisposalScope.ALL else []
    try:
        detail = compact_storage(session, touched_tables() + extra)
    except Exception as exc:  # noqa: BLE001 - reported, and `mynumber disposal compact` retries
        session.rollback()
        result.compaction_error = (
            "データは廃棄済みですが、データベース領域の整理が完了していません"
            f"（{type(exc).__name__}）。`mynumber disposal compact` を実行してください"
        )
        trail.record(
            session,
            actor,
            "disposal.storage_compacted",
            object_type="disposal_request",
            object_ids=[req.id],
            outcome="failure",
            details={"error": type(exc).__name__},
            commit=True,
        )
        return
    req = session.get(DisposalRequest, req.id)
    req.compacted_at = utcnow()
    trail.record(
        session,
        actor,
        "disposal.storage_compacted",
        object_type="disposal_request",
        object_ids=[req.id],
        details=detail,
    )
    session.commit()
    result.request = req
    result.compacted = True


def _wait_seconds() -> float:
    from flask import current_app, has_app_context

    if has_app_context():
        return float(current_app.config.get("DISPOSAL_COMPACT_WAIT_SECONDS", 300))
    return 300.0


def compact_storage(session: Session, tables: list[str], wait_seconds: float | None = None) -> dict:
    """SQLite: checkpoint and truncate the WAL (secure_delete already zeroed freed content);
    PostgreSQL: ``VACUUM FULL`` the tables so no dead row version stays in their files."""
    session.commit()  # nothing of ours may hold a lock on those tables
    engine = session.get_bind()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            for _ in range(50):
                busy, frames, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                if not busy:
                    return {"backend": "sqlite", "wal_frames": frames, "checkpointed": done}
                time.sleep(0.2)
        raise RuntimeError("SQLite WAL checkpoint stayed busy")
    allowed = {t.name for t in Model.metadata.sorted_tables}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # VACUUM FULL keeps a dead row version while an older transaction might still need
        # it: a snapshot in this database (a long report, a running pg_dump, autovacuum's
        # ANALYZE), or — measured on PostgreSQL 15 — any transaction holding an xid in *any*
        # database of the server. Wait until all of those that began before now have ended,
        # else the old rows would silently survive the rewrite.
        marker = conn.exec_driver_sql("SELECT pg_current_xact_id()::text::bigint").scalar_one()
        since = conn.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
        deadline = time.monotonic() + (_wait_seconds() if wait_seconds is None else wait_seconds)
        while True:
            oldest = conn.exec_driver_sql(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            ).scalar_one()
            older = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL AND xact_start < %(t)s",
                {"t": since},
            ).scalar_one()
            if oldest > marker and not older:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("an older transaction is still running")
            time.sleep(0.25)
        conn.exec_driver_sql("SET lock_timeout = '60s'")
        for table in tables:
            if table not in allowed:
                raise ValueError(f"unknown table {table}")
            conn.exec_driver_sql(f'VACUUM (FULL, ANALYZE) "{table}"')
    return {"backend": "postgresql", "vacuum_full": tables}


# -- materials --------------------------------------------------------------------------------
def record_material_disposal(
    session: Session,
    actor: Actor,
    request_id: uuid.UUID,
    *,
    method: str,
    performed_on: dt.date | None,
    contractor_ref: str | None = None,
    note: str | None = None,
) -> DisposalRequest:
    """Record that approved paper originals or other materials were destroyed, and how."""
    try:
        authorize(actor, "can_execute")
        req = session.get(DisposalRequest, request_id)
        if req is None or req.kind != DisposalKind.MATERIAL:
            raise DisposalError("資料の廃棄申請が見つかりません")
        if req.status != DisposalStatus.APPROVED:
            raise DisposalError("発注者が承認した申請のみ廃棄を記録できます")
        method = (method or "").strip()
        if not method:
            raise DisposalError("廃棄の方法を入力してください")
        for label, text in (
            ("廃棄の方法", method),
            ("処理業者の証明書番号等", contractor_ref),
            ("備考", note),
        ):
            if mynumber.contains_number(text):
                raise DisposalError(mynumber.number_refusal(label))
        if performed_on is None:
            raise DisposalError("廃棄の実施日を入力してください")
        approved_on = jptime.to_jst(req.decided_at).date()
        if performed_on < approved_on:
            raise DisposalError(
                "実施日は承認日以降の日付を入力してください（承認前の廃棄はできません）"
            )
        if performed_on > jptime.today_jst():
            raise DisposalError("実施日に未来の日付は入力できません")
    except (policy.PermissionDenied, DisposalError) as exc:
        _denied(session, actor, "disposal.material_recorded", request_id, str(exc))
        raise
    note = (note or "").strip()
    req.status = DisposalStatus.EXECUTED
    req.executed_by_id = actor.user_id
    req.executed_by_name = actor.name
    req.executed_at = utcnow()
    req.method = method[:500] + (f"（備考: {note[:500]}）" if note else "")
    req.performed_on = performed_on
    req.contractor_ref = (contractor_ref or "").strip()[:200] or None
    req.person_count = 0
    req.certificate_no = certificate_number(req)
    session.flush()
    event = trail.record(
        session,
        actor,
        "disposal.material_recorded",
        object_type="disposal_request",
        object_ids=[req.id],
        details={
            "performed_on": performed_on.isoformat(),
            "method": req.method,
            "certificate_no": req.certificate_no,
        },
    )
    req.exec_first_seq = req.exec_last_seq = event.seq
    req.exec_last_hash = event.hash
    session.commit()
    return req


# -- re-application ------------------------------------------------------------------------------
@dataclass
class Reapplied:
    people: int = 0
    data_keys: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.people or self.data_keys)


def reapply(
    session: Session, vault: Vault, actor: Actor, journal: str | Path | None, compact: bool = True
) -> Reapplied:
    """Dispose again of anyone a restored (or rolled-back) database brought back.

    The key ring and the journal are merged first (either may be the older one, e.g. after a
    key ring was restored from its backup); then every destroyed data key still in the
    database is deleted and every disposed person still holding data is purged and scrubbed.
    """
    people, key_ids = disposed_outside(vault.keys, journal)
    if key_ids - vault.keys.shredded():
        vault.keys.record_shredded(sorted(key_ids - vault.keys.shredded()))
    _remember_people(vault.keys, people)
    shredded = vault.keys.shredded()
    present_keys = [k for k in session.execute(select(DataKey.id)).scalars() if str(k) in shredded]
    alive: list[uuid.UUID] = []
    wanted = sorted(uuid.UUID(p) for p in people)
    for batch in _batches(wanted):
        alive += session.execute(
            select(Person.id).where(Person.id.in_(batch), Person.status != "disposed")
        ).scalars()
    result = Reapplied(people=len(alive), data_keys=len(present_keys))
    if not result.changed:
        return result
    trail.record(
        session,
        actor,
        "disposal.reapplied",
        object_type="person",
        object_ids=alive[:BATCH],
        details={
            "people": len(alive),
            "data_keys": len(present_keys),
            "ids_sha256": ids_digest(alive),
        },
    )
    vault.apply_shred_list(session)
    if alive:
        _dispose_people(session, vault, alive)
    session.commit()
    if compact:
        compact_storage(session, touched_tables())
    return result


# -- key closure ----------------------------------------------------------------------------------
class KeyClosureError(DisposalError):
    """The people are disposed of, but the keys of older backups are not closed yet."""


@dataclass
class KeyClosure:
    """What a key closure did: the requests it ended, the KEK versions no longer anywhere in
    the product, the database backups that cannot be opened any more, the key-ring backups
    destroyed, and the fresh backups that replace them."""

    requests: list[uuid.UUID]
    kek_version: int
    retired: list[int]
    unreadable_backups: list[str]
    destroyed_keyring_backups: list[str]
    fresh_backup: str | None = None
    fresh_keyring_backup: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """What the request keeps (file names, not paths) for its certificate."""
        return {
            "kek_version": self.kek_version,
            "retired_kek_versions": self.retired,
            "unreadable_backups": sorted(Path(p).name for p in self.unreadable_backups),
            "destroyed_keyring_backups": sorted(
                Path(p).name for p in self.destroyed_keyring_backups
            ),
        }


def pending_closures(session: Session) -> list[DisposalRequest]:
    """Executed data disposals of at least one person whose key closure is not done."""
    return list(
        session.execute(
            select(DisposalRequest)
            .where(
                DisposalRequest.kind == DisposalKind.DATA,
                DisposalRequest.status == DisposalStatus.EXECUTED,
                DisposalRequest.keys_closed_at.is_(None),
                DisposalRequest.person_count > 0,
            )
            .order_by(DisposalRequest.executed_at)
        ).scalars()
    )


def _needs_rotation(session: Session, vault: Vault, pending: list[DisposalRequest]) -> bool:
    """A rotation after the disposal committed is what counts (the disposed data keys were
    gone by then, so the new KEK never wrapped them); resumed after a crash, it is not done
    twice — unless the crash came before it committed (the new KEK is in the ring, but keys
    or secrets are still under an older one): then it is done again. A request executed
    before its version was recorded always gets one."""
    from app.lifecycle.keyops import usage

    known = [r.kek_version_at_execution for r in pending]
    if None in known or vault.keys.current_kek_version() <= max(known):
        return True
    return any(u.in_database for u in usage(session, vault) if not u.current)


def close_keys(
    session: Session,
    vault: Vault,
    actor: Actor,
    *,
    journal: str | Path | None,
    backup_dir: str | Path | None,
    recipient=None,
    client_name: str = "",
) -> KeyClosure | None:
    """End every executed data disposal whose older backups could still bring it back.

    In order, each step idempotent (a crash anywhere is resumed by the next call): audited
    first (``disposal.keys_close``, committed); rotate the KEK (``app.lifecycle.keyops.rotate``:
    every remaining data key and system secret re-wrapped); retire every other version
    (``app.lifecycle.keyops.retire``); write the retired KEKs' fingerprints to the journal (a key ring
    restored from an older backup drops them again); destroy every key-ring backup we know
    of that holds a retired KEK; record the closure on the requests (``disposal.keys_closed``);
    then a fresh database backup, and a fresh key-ring backup when a ``recipient`` (the
    recovery public key) is given. ``None`` when nothing was pending."""
    from app.lifecycle import backup, keyops

    pending = pending_closures(session)
    if not pending:
        return None
    ids = [r.id for r in pending]
    ring = vault.keys
    trail.record(
        session,
        actor,
        "disposal.keys_close",
        object_type="disposal_request",
        object_ids=ids,
        details={"requests": len(ids)},
        commit=True,
    )
    try:
        if _needs_rotation(session, vault, pending):
            keyops.rotate(session, vault, actor)
        current = ring.current_kek_version()
        for version in ring.kek_versions():
            if version != current:
                keyops.retire(
                    session, vault, actor, version, backup_dir=backup_dir, accept_unrestorable=True
                )
        retired = record_retired_outside(ring, journal, ids)
        destroyed = backup.destroy_stale_keyring_backups(session, ring, actor, backup_dir)
        result = KeyClosure(
            requests=ids,
            kek_version=current,
            retired=sorted({int(r["version"]) for r in retired}),
            unreadable_backups=backup.unreadable_backups(session, ring, backup_dir),
            destroyed_keyring_backups=destroyed,
        )
        now = utcnow()
        summary = json.dumps(result.summary(), ensure_ascii=False)
        for req_id in ids:
            req = session.get(DisposalRequest, req_id)
            req.keys_closed_at = now
            req.key_closure = summary
        trail.record(
            session,
            actor,
            "disposal.keys_closed",
            object_type="disposal_request",
            object_ids=ids,
            details=result.summary(),
        )
        session.commit()
    except Exception as exc:
        session.rollback()
        trail.record(
            session,
            actor,
            "disposal.keys_close",
            object_type="disposal_request",
            object_ids=ids,
            outcome="failure",
            details={"error": type(exc).__name__, "reason": str(exc)[:300]},
            commit=True,
        )
        raise KeyClosureError(
            "廃棄は完了していますが、鍵の更新と旧 KEK の破棄（古いバックアップを復元不能にする"
            f"処理）が完了していません（{type(exc).__name__}: {str(exc)[:200]}）。"
            "mynumber disposal execute を再度実行するか、mynumber init / run の起動時に再開されます"
        ) from exc
    _fresh_backups(session, vault, actor, result, backup_dir, recipient, client_name)
    return result


def _fresh_backups(
    session: Session,
    vault: Vault,
    actor: Actor,
    result: KeyClosure,
    backup_dir: str | Path | None,
    recipient,
    client_name: str,
) -> None:
    """The backups that replace the ones the closure made unreadable (each audited by its
    own function); a failure is reported, the closure itself stands."""
    from app.lifecycle import backup

    if not backup_dir:
        result.warnings.append(
            "バックアップ保存先が設定されていないため、新しいバックアップを作成していません"
        )
        return
    name = f"backup-{backup.stamp()}"
    try:
        record = backup.create_backup(
            session,
            vault,
            actor,
            Path(backup_dir) / f"{name}{backup.BACKUP_SUFFIX}",
            kind="disposal",
            client_name=client_name,
        )
        result.fresh_backup = record.file_name
    except Exception as exc:  # noqa: BLE001 - audited by create_backup; reported here
        session.rollback()
        result.warnings.append(
            f"新しいデータベースのバックアップを作成できませんでした（{type(exc).__name__}）。"
            "mynumber backup で作成してください"
        )
    if recipient is None:
        result.warnings.append(
            "復旧用公開鍵（MYNUMBER_RECOVERY_PUBLIC_KEY）が設定されていないため、鍵リングの"
            "バックアップを作成していません。以前の鍵リングのバックアップは破棄されたので、"
            "mynumber keys backup で取り直してください"
        )
        return
    out = Path(backup_dir) / f"keyring-{backup.stamp()}{backup.KEYRING_SUFFIX}"
    try:
        backup.backup_keyring(session, vault.keys, actor, out, recipient, kind="disposal")
        result.fresh_keyring_backup = str(out)
    except Exception as exc:  # noqa: BLE001 - reported; the closure stands
        session.rollback()
        trail.record(
            session,
            actor,
            "keys.backup",
            object_type="keyring",
            outcome="failure",
            details={"error": type(exc).__name__, "after": "disposal"},
            commit=True,
        )
        result.warnings.append(
            f"鍵リングのバックアップを作成できませんでした（{type(exc).__name__}）。"
            "mynumber keys backup で取り直してください"
        )
