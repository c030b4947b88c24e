"""What goes into the return archive: one function per section, each writing its files.

``app.lifecycle.returns`` opens the sealed ZIP and runs ``SECTIONS`` in order with a
``Context``; each section streams its rows into ZIP entries (``Entry``), decrypting in memory
one data key at a time (``iter_people``), and every entry is hashed as it is written for the
manifest. Inside the archive::

    README.txt                  what is where (Japanese)
    people_<layout>.csv         everyone stored, once per client layout (the client's export)
    people_all_fields.csv       every stored field of every person (address decrypted)
    number_history.csv          every number record, superseded ones included
    name_changes.csv            氏名変更 history
    requests.csv, request_history.csv
                                collection requests (the form's links) and their history
    submission_parts.csv        what the form received, opened with the intake key
    documents/<request>/<part>  the ID documents received (images, PDFs)
    inquiries.csv               questions from the public contact form
    disposals.csv               disposal requests, approvals, executions (certificates)
    disposal_items.csv          each disposal's people: ids, and code and name as at execution
    roster.csv                  情報取扱者名簿
    audit_log.csv               the audit log up to this export, with its hash chain
    audit_public_key.pem        to verify the signed checkpoints (the archive's own signature
                                is checked against the key the client pinned, not this copy)
    audit_checkpoints.jsonl     signed checkpoints kept outside the database
    manifest.json               SHA-256, size and rows of every file above (written by
                                ``app.lifecycle.returns``)

A new table the client should get back gets a section here, added to ``SECTIONS``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import trail
from app.core import jptime
from app.core.actor import Actor
from app.io import exports, layouts
from app.lifecycle import disposal
from app.lifecycle.certificate import who
from app.models import (
    AuditEvent,
    CollectionRequest,
    CollectionRequestStatus,
    DataKey,
    DisposalItem,
    DisposalRequest,
    HandlerRosterEntry,
    Inquiry,
    MyNumberRecord,
    NameChange,
    Person,
    PersonKind,
    Submission,
    SubmissionPart,
)
from app.platform import csvio
from app.vault import sealing
from app.vault.envelopes import Vault, VaultError

BATCH = 1000


# -- CSV entries ------------------------------------------------------------------------------


class Entry:
    """One file inside the archive, hashed as it is written."""

    def __init__(self, zf: zipfile.ZipFile, name: str, manifest: list[dict]) -> None:
        self.name = name
        self._handle = zf.open(name, "w", force_zip64=True)
        self._manifest = manifest
        self._digest = hashlib.sha256()
        self.size = 0
        self.rows = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._digest.update(data)
        self.size += len(data)

    def row(self, cells: list) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(
            [csvio.neutralise("" if c is None else str(c)) for c in cells]
        )
        self.write(buffer.getvalue().encode("utf-8"))
        self.rows += 1

    def close(self) -> None:
        self._handle.close()
        self._manifest.append(
            {"path": self.name, "sha256": self._digest.hexdigest(), "bytes": self.size}
            | ({"rows": self.rows} if self.rows else {})
        )

    def __enter__(self) -> Entry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def csv_entry(ctx: Context, name: str, header: list[str]) -> Entry:
    entry = Entry(ctx.zf, name, ctx.manifest)
    entry.write(b"\xef\xbb\xbf")
    entry.row(header)
    entry.rows = 0
    return entry


@dataclass
class Context:
    session: Session
    vault: Vault
    zf: zipfile.ZipFile
    audit_seq: int
    audit_public_pem: bytes
    checkpoint_file: str | None
    actor: Actor | None = None
    purpose: str = ""
    archive_id: str = ""
    manifest: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)


# -- reading people with their plaintext, one data key at a time ---------------------------------
@dataclass
class PersonData:
    person: Person
    address: str | None
    number: str | None
    records: list[tuple[MyNumberRecord, str | None]]


def by_id(session: Session, query, id_column) -> Iterator[list]:
    """Rows of ``query`` in batches of BATCH, ordered by id and fetched by keyset (``id >
    last``), so memory stays flat however many people the archive holds."""
    last = None
    while True:
        page = query if last is None else query.where(id_column > last)
        batch = list(session.execute(page.order_by(id_column).limit(BATCH)).scalars())
        if not batch:
            return
        last = batch[-1].id
        yield batch


def iter_people(session: Session, vault: Vault, include_disposed: bool = False):
    """Everyone stored (active, and dependents removed from a household), or everyone with the
    tombstones too, decrypted in memory batch by batch (ordered by id)."""
    query = select(Person)
    if not include_disposed:
        query = query.where(Person.status != "disposed")
    for batch in by_id(session, query, Person.id):
        ids = [p.id for p in batch]
        keys = {
            k.person_id: k
            for k in session.execute(select(DataKey).where(DataKey.person_id.in_(ids))).scalars()
        }
        records: dict[uuid.UUID, list[MyNumberRecord]] = {}
        for record in session.execute(
            select(MyNumberRecord)
            .where(MyNumberRecord.person_id.in_(ids))
            .order_by(MyNumberRecord.registered_at)
        ).scalars():
            records.setdefault(record.person_id, []).append(record)
        for person in batch:
            dek = None
            if person.id in keys:
                try:
                    dek = vault.unwrap(keys[person.id])
                except VaultError:
                    dek = None

            def open_(table, column, row_id, blob, dek=dek):
                if dek is None or blob is None:
                    return None
                return vault.decrypt_field(dek, table, column, row_id, blob)

            address = open_("person", "address_enc", person.id, person.address_enc)
            opened = [
                (r, open_("my_number_record", "ciphertext", r.id, r.ciphertext))
                for r in records.get(person.id, [])
            ]
            active = next((n for r, n in opened if r.status == "active"), None)
            yield PersonData(person, address, active, opened)


STATUS_LABELS = {"active": "保管中", "removed": "扶養から削除（保管中）", "disposed": "廃棄済み"}


def iso_date(value) -> str:
    """A date or time in ISO 8601, empty for none: the CSVs and the fingerprint alike. A
    time is given in JST with its offset (2027-01-12T23:59:00+09:00), so that no reader has
    to guess the zone; the audit log keeps the UTC form it is hashed in (``…Z``)."""
    if not value:
        return ""
    if isinstance(value, dt.datetime):
        return jptime.to_jst(value).isoformat(timespec="seconds")
    return value.isoformat()


def person_code(person: Person) -> str:
    return person.dependent_code or person.code or ""


# -- sections ---------------------------------------------------------------------------------
def layout_file_name(layout_name: str) -> str:
    """``people_<layout>.csv``, the layout's name made safe for a file name."""
    safe = re.sub(r"[^0-9A-Za-z_\-\u3040-\u30ff\u4e00-\u9fff]", "_", layout_name)[:80]
    return f"people_{safe or 'layout'}.csv"


def _people(ctx: Context) -> None:
    """Everyone stored, once per client layout, by the client's export (``app.io.exports``): the
    same columns, headers, date format and row order as the client's own exports, each one
    audited as ``numbers.export`` with its manifest."""
    for layout in layouts.list_layouts(ctx.session):
        with Entry(ctx.zf, layout_file_name(layout.name), ctx.manifest) as entry:
            result = exports.export_csv(
                ctx.session,
                ctx.vault,
                ctx.actor,
                layout,
                entry,
                ctx.purpose,
                context={"return_archive": ctx.archive_id},
            )
            entry.rows = result.count
    ctx.counts["people"] = ctx.session.execute(
        select(func.count(Person.id)).where(Person.status != "disposed")
    ).scalar_one()


def _people_all(ctx: Context) -> None:
    header = [
        "人物ID",
        "本人区分",
        "職員番号・委員番号",
        "扶養者コード",
        "扶養者の人物ID",
        "続柄",
        "氏名",
        "カナ",
        "生年月日",
        "郵便番号",
        "住所",
        "メールアドレス",
        "終了日（退職・委嘱終了）",
        "保管の根拠",
        "削除予定日",
        "状態",
        "登録日時",
        "廃棄日時",
        "個人番号",
    ]
    with csv_entry(ctx, "people_all_fields.csv", header) as entry:
        for data in iter_people(ctx.session, ctx.vault, include_disposed=True):
            p = data.person
            entry.row(
                [
                    str(p.id),
                    PersonKind.LABELS.get(p.kind, p.kind),
                    p.code or "",
                    p.dependent_code or "",
                    str(p.household_head_id or ""),
                    p.relation or "",
                    p.name if p.status != "disposed" else "",
                    p.name_kana or "",
                    iso_date(p.birth_date),
                    p.postal_code or "",
                    data.address or "",
                    p.email or "",
                    iso_date(p.ended_on),
                    p.retention_basis or "",
                    iso_date(p.delete_after),
                    STATUS_LABELS.get(p.status, p.status),
                    iso_date(p.created_at),
                    iso_date(p.disposed_at),
                    data.number or "",
                ]
            )


def _numbers(ctx: Context) -> None:
    header = [
        "記録ID",
        "人物ID",
        "扶養者コード・委員番号",
        "状態",
        "取得経路",
        "登録日時",
        "失効日時",
        "個人番号",
    ]
    labels = {"active": "有効", "superseded": "変更前（失効）"}
    count = 0
    with csv_entry(ctx, "number_history.csv", header) as entry:
        for data in iter_people(ctx.session, ctx.vault):
            for record, number in data.records:
                entry.row(
                    [
                        str(record.id),
                        str(record.person_id),
                        person_code(data.person),
                        labels.get(record.status, record.status),
                        record.source,
                        iso_date(record.registered_at),
                        iso_date(record.superseded_at),
                        number or "（復元不能）",
                    ]
                )
                count += 1
    ctx.counts["numbers"] = count


def _disposals(ctx: Context) -> None:
    header = [
        "申請ID",
        "証明書番号",
        "種類",
        "対象範囲",
        "理由",
        "資料の内容",
        "数量",
        "申請者",
        "申請日時",
        "状態",
        "承認者",
        "承認日時",
        "実行者",
        "実行日時",
        "人数",
        "方法",
        "監査ログ（実行の最初）",
        "監査ログ（実行の最後）",
        "チェーンハッシュ",
    ]
    with csv_entry(ctx, "disposals.csv", header) as entry:
        for r in ctx.session.execute(
            select(DisposalRequest).order_by(DisposalRequest.requested_at)
        ).scalars():
            entry.row(
                [
                    str(r.id),
                    r.certificate_no or "",
                    r.kind_label,
                    r.scope_label,
                    r.reason,
                    r.material_description or "",
                    r.quantity or "",
                    who(r.requested_by_display, r.requested_by_name),
                    iso_date(r.requested_at),
                    r.status_label,
                    who(r.decided_by_display, r.decided_by_name),
                    iso_date(r.decided_at),
                    who(r.executed_by_display, r.executed_by_name),
                    iso_date(r.executed_at),
                    r.person_count if r.person_count is not None else "",
                    r.method or "",
                    r.exec_first_seq or "",
                    r.exec_last_seq or "",
                    r.exec_last_hash or "",
                ]
            )
    header = ["申請ID", "人物ID", "本人区分", "職員番号・委員番号（廃棄時点）", "氏名（廃棄時点）"]
    with csv_entry(ctx, "disposal_items.csv", [*header, "廃棄日時"]) as entry:
        for item in ctx.session.execute(
            select(DisposalItem).order_by(DisposalItem.request_id, DisposalItem.id)
        ).scalars():
            kept = disposal.open_identity(ctx.vault, item)
            entry.row(
                [
                    str(item.request_id),
                    str(item.person_id),
                    PersonKind.LABELS.get(item.person_kind, item.person_kind),
                    kept.get("code") or "",
                    kept.get("name") or "",
                    iso_date(item.disposed_at),
                ]
            )


def _roster(ctx: Context) -> None:
    header = ["ID", "氏名", "所属部署", "役職", "国籍", "状態", "承認者", "承認日時"]
    with csv_entry(ctx, "roster.csv", header) as entry:
        for e in ctx.session.execute(
            select(HandlerRosterEntry).order_by(HandlerRosterEntry.id)
        ).scalars():
            entry.row(
                [e.id, e.name, e.department, e.title, e.nationality, e.status]
                + [e.approved_by or "", iso_date(e.approved_at)]
            )


def _audit_log(ctx: Context) -> None:
    columns = list(trail.EVENT_COLUMNS)
    with csv_entry(ctx, "audit_log.csv", columns) as entry:
        query = (
            select(AuditEvent)
            .where(AuditEvent.seq <= ctx.audit_seq)
            .order_by(AuditEvent.seq)
            .execution_options(yield_per=2000)
        )
        for event in ctx.session.execute(query).scalars():
            cells = [getattr(event, c) for c in columns]
            cells[1] = trail.utc_text(event.ts)
            entry.row(cells)
    ctx.counts["audit_events"] = ctx.audit_seq
    with Entry(ctx.zf, "audit_public_key.pem", ctx.manifest) as entry:
        entry.write(ctx.audit_public_pem)
    if ctx.checkpoint_file and Path(ctx.checkpoint_file).exists():
        with Entry(ctx.zf, "audit_checkpoints.jsonl", ctx.manifest) as entry:
            entry.write(Path(ctx.checkpoint_file).read_bytes())


def _name_changes(ctx: Context) -> None:
    header = [
        "人物ID",
        "旧氏名",
        "旧カナ",
        "新氏名",
        "新カナ",
        "変更日",
        "理由",
        "記録日時",
        "記録者",
    ]
    with csv_entry(ctx, "name_changes.csv", header) as entry:
        for c in ctx.session.execute(select(NameChange).order_by(NameChange.id)).scalars():
            entry.row(
                [str(c.person_id), c.old_name, c.old_kana or "", c.new_name, c.new_kana or ""]
                + [iso_date(c.changed_on), c.reason or "", iso_date(c.recorded_at), c.recorded_by]
            )


_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}


def _intake(ctx: Context) -> None:
    """What the public form received: requests and their history, submissions, and
    every sealed part opened with the intake key — numbers, identities of added dependents,
    and the ID documents as files under ``documents/``."""
    session = ctx.session
    secret = ctx.vault.keys.get_secret(sealing.SECRET_NAME)
    key = sealing.private_key(secret) if secret else None
    key_id = secret.get("key_id") if secret else None
    requests = list(
        session.execute(select(CollectionRequest).order_by(CollectionRequest.created_at)).scalars()
    )
    owners = {r.person_id for r in requests}
    codes = dict(session.execute(select(Person.id, Person.code).where(Person.id.in_(owners))).all())
    header = ["依頼ID", "人物ID", "職員番号・委員番号", "状態", "発行日時", "有効期限"]
    header += ["利用目的", "提供しない理由", "提供しない理由（記入）", "発行者"]
    with csv_entry(ctx, "requests.csv", header) as entry:
        for r in requests:
            entry.row(
                [str(r.id), str(r.person_id), codes.get(r.person_id) or "", r.status_label]
                + [iso_date(r.created_at), iso_date(r.expires_at), r.purpose_text]
                + [r.decline_reason or "", r.decline_note or "", r.created_by]
            )
    header = ["依頼ID", "状態", "日時", "実行者", "理由コード", "メモ"]
    with csv_entry(ctx, "request_history.csv", header) as entry:
        for h in session.execute(
            select(CollectionRequestStatus).order_by(CollectionRequestStatus.id)
        ).scalars():
            entry.row(
                [str(h.request_id), h.status, iso_date(h.at), h.actor_name, h.reason_codes]
                + [h.note or ""]
            )
    query = (
        select(SubmissionPart, Submission)
        .join(Submission, Submission.id == SubmissionPart.submission_id)
        .order_by(Submission.request_id, Submission.seq, SubmissionPart.created_at)
    )

    def opened(part: SubmissionPart, sub: Submission) -> bytes | None:
        if key is None or sub.key_id != key_id:
            return None
        info = sealing.part_info(sub.request_id, sub.id, part.id)
        return sealing.open_sealed(key, info, part.sealed)

    # Documents first (one ZIP entry may be open at a time), then the list of every part.
    files: dict[uuid.UUID, str] = {}
    for part, sub in session.execute(query.where(SubmissionPart.part == "document")).all():
        data = opened(part, sub)
        if data is None:
            continue
        path = (
            f"documents/{sub.request_id}/{part.id}{_EXTENSIONS.get(part.media_type or '', '.bin')}"
        )
        with Entry(ctx.zf, path, ctx.manifest) as doc:
            doc.write(data)
        files[part.id] = path
    documents = len(files)
    header = ["部品ID", "提出ID", "依頼ID", "受付番号", "提出の状態", "対象", "種類", "書類の種類"]
    header += ["形式", "ファイル", "個人番号", "氏名", "カナ", "続柄", "生年月日", "備考"]
    with csv_entry(ctx, "submission_parts.csv", header) as entry:
        for part, sub in session.execute(query).all():
            value: dict = {}
            note = ""
            if key is None or sub.key_id != key_id:
                note = "受付用の鍵が鍵リングにないため開封できません"
            elif part.part != "document":
                value = json.loads(opened(part, sub))
                if part.part == "excluded":
                    note = f"対象外: {value.get('reason', '')}"
            entry.row(
                [str(part.id), str(sub.id), str(sub.request_id), sub.receipt_no or "", sub.status]
                + [part.subject_ref, part.part, part.doc_type, part.media_type or ""]
                + [files.get(part.id, ""), value.get("number", ""), value.get("name", "")]
                + [value.get("kana") or "", value.get("relation") or ""]
                + [value.get("birth_date") or "", note]
            )
    ctx.counts["documents"] = documents
    header = ["ID", "受付日時", "氏名", "連絡先", "種別", "内容", "状態", "対応メモ", "対応者"]
    header += ["対応日時", "経路", "担当者", "回答", "初回回答日時", "完了日時"]
    with csv_entry(ctx, "inquiries.csv", header) as entry:
        for q in session.execute(select(Inquiry).order_by(Inquiry.id)).scalars():
            entry.row(
                [q.id, iso_date(q.received_at), q.name, q.contact, q.category, q.body, q.status]
                + [q.staff_note or "", q.handled_by or "", iso_date(q.handled_at)]
                + [q.source_label, q.assignee_name or "", q.response or ""]
                + [iso_date(q.first_response_at), iso_date(q.closed_at)]
            )


README = """MyNumber Vault 返却データ

このアーカイブには、受注者が保管していたマイナンバー等のすべての情報が含まれます。
CSV は UTF-8（BOM 付き）です。= + - @ で始まるセルは、表計算ソフトで数式として扱われない
よう先頭に ' を付けています。日時は日本時間（JST）の ISO 8601 形式で、末尾に時差を付けて
います（例: 2027-01-12T23:59:00+09:00）。audit_log.csv の ts だけは、ハッシュチェーンの
計算に使う UTC の形式（末尾 Z）のままです。

  people_<様式名>.csv     保管中の全員（発注者の出力様式ごと、個人番号を含む）
  people_all_fields.csv   全員の全項目（住所を復号済み、廃棄済みの人物は墓標のみ）
  number_history.csv      個人番号の記録（変更前の番号を含む）
  name_changes.csv        氏名変更の履歴
  disposals.csv           廃棄の申請・承認・実行（削除証明書の内容）
  disposal_items.csv      廃棄ごとの対象者（人物ID、廃棄時点の職員番号・委員番号と氏名）
  roster.csv              情報取扱者名簿
  requests.csv            収集依頼（提出フォームのリンク）
  request_history.csv     収集依頼の状態の履歴
  submission_parts.csv    提出された内容（個人番号・追加した扶養親族・書類の一覧）
  documents/              提出された本人確認書類等の画像・PDF
  inquiries.csv           お問い合わせ
  audit_log.csv           監査ログ（ハッシュチェーン付き）
  audit_public_key.pem    監査チェックポイントの署名検証用の公開鍵
  audit_checkpoints.jsonl 署名付きチェックポイント
  manifest.json           各ファイルの SHA-256・サイズ・行数

個人番号を含むため、展開したファイルは発注者の規程に従って安全に保管し、不要になったら
確実に削除してください。
"""


def _readme(ctx: Context) -> None:
    with Entry(ctx.zf, "README.txt", ctx.manifest) as entry:
        entry.write(README.encode("utf-8"))


# Each section writes its files, in this order.
SECTIONS: list[Callable[[Context], None]] = [
    _readme,
    _people,
    _people_all,
    _numbers,
    _name_changes,
    _intake,
    _disposals,
    _roster,
    _audit_log,
]
