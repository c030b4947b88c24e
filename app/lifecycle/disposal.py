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
  row holding their data (``app.lifecycle.holders``), scrubs the personal columns of their
  ``person`` row and keeps it as the tombstone (id, kind, dates; the reason is on the
  request), and writes the audit events whose range and chain hash the certificate quotes.
  Before any database change, the disposed person ids and data-key ids are written **outside
  the database** (``app.lifecycle.journal``), so that a restored backup, or a database rolled
  back by any other means, has the disposal re-applied. If the database transaction fails
  after that, the data is already unreadable (the safe direction) and running the execution
  again completes it: every step is idempotent.
- **Storage.** After the commit, the freed bytes are removed from the database files
  (``finish_storage``, audited; ``app.lifecycle.holders.compact_storage``). Limits: see
  docs/lifecycle.md.
- **Key closure.** A disposal ends with the key closure (``app.lifecycle.key_closure``):
  the KEK is rotated and every older one retired, so that no backup from before can bring the
  disposed people back.

Why the person row is the tombstone (and not a separate table): other tables refer to people
by id, some of them append-only (audit events, export manifests); keeping the row keeps every
such reference valid while the row itself no longer says anything about the person.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.access import accounts, names, policy
from app.audit import trail
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.lifecycle import holders, retention, step_up
from app.lifecycle.journal import record_outside
from app.models import (
    DISPOSED_PERSON,
    DataKey,
    DisposalItem,
    DisposalKind,
    DisposalRequest,
    DisposalScope,
    DisposalStatus,
    Inquiry,
    InquiryAction,
    IoTicket,
    Person,
    PersonKind,
    utcnow,
)
from app.vault.aead import VaultError
from app.vault.envelopes import Vault

log = logging.getLogger(__name__)

VIEW = "Disposal"
FINISH_JOB = "app.jobs.lifecycle.finish_disposal"  # the job, by name (app.platform.queue)
REASON_MAX = 2000
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


def _denied(session: Session, actor: Actor, action: str, ref, reason: str) -> None:
    """A refusal is on the record too: whatever was half done is rolled back, then the
    ``denied`` event is committed."""
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
        for batch in holders.batches(ids):
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
        requested_by_display=names.display_name(session, actor),
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
            "ids_sha256": holders.ids_digest(ids) if ids else None,
        },
    )
    req.request_seq = event.seq
    session.commit()
    return req


def _add_items(session: Session, request_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    for batch in holders.batches(ids):
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
            step_up.verify_step_up(session, vault, actor, totp_code)
    except (policy.PermissionDenied, DisposalError) as exc:
        _denied(session, actor, action, request_id, str(exc))
        raise
    req.status = DisposalStatus.APPROVED if approve else DisposalStatus.REJECTED
    req.decided_by_id = actor.user_id
    req.decided_by_name = actor.name
    req.decided_by_display = names.display_name(session, actor)
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


def _remember_who(
    session: Session, vault: Vault, request_id: uuid.UUID, ids: list[uuid.UUID]
) -> None:
    """Seal each person's 職員番号 / 委員番号 (扶養者コード for a dependent) and name into their
    disposal item before the person row is scrubbed: the certificate names the people as the
    client's records do, and the tombstone no longer can."""
    for batch in holders.batches(ids):
        rows = session.execute(
            select(DisposalItem.id, DisposalItem.person_id, Person)
            .join(Person, Person.id == DisposalItem.person_id)
            .where(DisposalItem.request_id == request_id, DisposalItem.person_id.in_(batch))
        ).all()
        if rows:
            session.execute(
                update(DisposalItem),
                [
                    {
                        "id": item_id,
                        "identity_sealed": seal_identity(vault, item_id, person_id, person),
                    }
                    for item_id, person_id, person in rows
                ],
            )


def seal_identity(vault: Vault, item_id: int, person_id: uuid.UUID, person: Person) -> bytes:
    identity = {"code": person_reference(person), "name": person.name}
    return vault.seal_system(
        DISPOSED_PERSON.purpose,
        DISPOSED_PERSON.aad(id=item_id, person_id=person_id),
        json.dumps(identity, ensure_ascii=False).encode("utf-8"),
    )


def open_identity(vault: Vault, item: DisposalItem) -> dict:
    """{"code", "name"} of a disposed person; empty when nothing was kept (a disposal
    before names were kept) or the key is gone (the key ring destroyed at contract end)."""
    if item.identity_sealed is None:
        return {}
    try:
        data = vault.open_system(
            DISPOSED_PERSON.purpose,
            DISPOSED_PERSON.aad(id=item.id, person_id=item.person_id),
            item.identity_sealed,
        )
    except VaultError:
        return {}
    return json.loads(data.decode("utf-8"))


def person_reference(person: Person) -> str | None:
    """職員番号 or 委員番号; a dependent by the 扶養者コード (職員番号-NN)."""
    if person.kind == PersonKind.DEPENDENT:
        return person.dependent_code or person.code
    return person.code


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
        unknown = holders.unclassified_tables()
        if unknown:
            raise DisposalError(
                "人物を参照するテーブルのうち、廃棄時の扱いが決まっていないものがあるため実行"
                "できません（app/lifecycle/holders.py の HOLDERS に追加してください）: "
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
        for batch in holders.batches(ids):
            key_ids += [
                str(k)
                for k in session.execute(
                    select(DataKey.id).where(DataKey.person_id.in_(batch))
                ).scalars()
            ]
        record_outside(vault.keys, journal, req.id, ids, key_ids)
        _remember_who(session, vault, req.id, ids)
        counts = holders.dispose_people(session, vault, ids)
        if req.scope == DisposalScope.ALL:
            # Contract end: inquiries from the contact form are not linked to people, and go
            # with everything else (the return archive holds them).
            session.execute(delete(InquiryAction))  # the inquiries' history
            counts["inquiry"] = session.execute(delete(Inquiry)).rowcount or 0
            # Import / 照合 steps awaiting confirmation hold sealed uploads of people.
            counts["io_ticket"] = session.execute(delete(IoTicket)).rowcount or 0
        now = utcnow()
        for batch in holders.batches(ids):
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
        req.executed_by_display = names.display_name(session, actor)
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
                "ids_sha256": holders.ids_digest(ids),
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
        detail = holders.compact_storage(session, holders.touched_tables() + extra)
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
    req.executed_by_display = names.display_name(session, actor)
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
