"""削除証明書 (deletion certificate, spec 5.3-5): a PDF and a CSV per executed disposal.

Both carry the same facts: certificate number, 発行日, client, operator and its responsible
person (責任者, ``OPERATOR_RESPONSIBLE``), kind and scope, count, method, date and time, the
requester, approver and executor by the names the client knows (roster name, department and
title, or 「コマンド操作（root）」 for the server's shell, kept at each step), the audit events
of the request, the approval and the execution (sequence numbers and the chain hash of the
last one, which an auditor can check against the log), and the people disposed by 職員番号 /
委員番号 (扶養者コード for a dependent) and name as they were at execution, so that the client
can reconcile the certificate with its own records. Never a number. The CSV also gives each
person's internal id, which the audit events name. Every download is audited before the file
is made. Times are JST.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import names, policy
from app.audit import trail
from app.core import jptime
from app.core.actor import Actor
from app.lifecycle import disposal, holders
from app.models import DisposalItem, DisposalKind, DisposalRequest, DisposalStatus, PersonKind
from app.platform import csvio
from app.platform.pdf import render_pdf
from app.vault.envelopes import Vault

VIEW = "DeletionCertificate"
# Beyond this many people the PDF lists counts and the SHA-256 of the id list; the CSV
# always lists every person.
PDF_ID_LIMIT = 3000


class CertificateError(ValueError):
    """No certificate for this request (not executed, not found)."""


NOT_RECORDED = "（記録なし）"


@dataclass(frozen=True)
class DisposedPerson:
    """One person of the certificate, as the client's records name them."""

    person_id: str
    kind: str
    code: str | None
    name: str | None

    @property
    def kind_label(self) -> str:
        return PersonKind.LABELS.get(self.kind, self.kind)

    @property
    def cells(self) -> list[str]:
        return [self.code or NOT_RECORDED, self.name or NOT_RECORDED, self.kind_label]


def who(display: str | None, account: str | None) -> str:
    """A person who acted, by the name kept at that step; a request recorded before names
    were kept falls back to the shell's label or the account name."""
    if display:
        return display
    if not account:
        return ""
    return names.process_label(account) or account


@dataclass
class Certificate:
    request: DisposalRequest
    client: str
    operator: str
    person_ids: list[str]
    by_kind: dict[str, int]
    ids_sha256: str | None
    people: list[DisposedPerson] = field(default_factory=list)
    responsible: str = ""
    issued_on: dt.date | None = None

    @property
    def issued_text(self) -> str:
        return (self.issued_on or jptime.today_jst()).strftime("%Y年%m月%d日")

    @property
    def rows(self) -> list[tuple[str, str]]:
        """The certificate's facts as (label, value), shared by the PDF and the CSV."""
        r = self.request
        jst = jptime.format_jst
        rows = [
            ("証明書番号", r.certificate_no or ""),
            ("発行日", self.issued_text),
            ("日時の表記", "日本時間（JST、UTC+9）"),
            ("発注者", self.client),
            ("受注者", self.operator),
            ("責任者", self.responsible or "（未設定）"),
            ("廃棄の種類", r.kind_label),
            ("対象範囲", r.scope_label),
        ]
        if r.kind == DisposalKind.MATERIAL:
            rows += [
                ("資料の内容", r.material_description or ""),
                ("数量", r.quantity or ""),
                ("廃棄の方法", r.method or ""),
                ("実施日", r.performed_on.strftime("%Y/%m/%d") if r.performed_on else ""),
                ("処理業者の証明書等", r.contractor_ref or ""),
            ]
        else:
            breakdown = "、".join(
                f"{PersonKind.LABELS.get(k, k)} {n}名" for k, n in sorted(self.by_kind.items())
            )
            rows += [
                (
                    "廃棄した人数",
                    f"{r.person_count or 0}名" + (f"（{breakdown}）" if breakdown else ""),
                ),
                ("削除した個人番号の記録", f"{r.numbers_deleted or 0}件"),
                ("破棄したデータ鍵", f"{r.keys_destroyed or 0}件"),
                ("廃棄の方法", r.method or ""),
                (
                    "データベース領域の整理",
                    jst(r.compacted_at, True) if r.compacted_at else "未完了",
                ),
                *key_closure_rows(r),
            ]
        rows += [
            ("理由", r.reason),
            (
                "申請者",
                f"{who(r.requested_by_display, r.requested_by_name)}"
                f"（{jst(r.requested_at, True)}）",
            ),
            (
                "承認者（発注者）",
                f"{who(r.decided_by_display, r.decided_by_name)}（{jst(r.decided_at, True)}）",
            ),
            ("実行者", who(r.executed_by_display, r.executed_by_name)),
            ("実行日時", jst(r.executed_at, True)),
            ("監査ログ: 申請", f"#{r.request_seq}" if r.request_seq else ""),
            ("監査ログ: 承認", f"#{r.decision_seq}" if r.decision_seq else ""),
            ("監査ログ: 実行", f"#{r.exec_first_seq} 〜 #{r.exec_last_seq}"),
            ("チェーンハッシュ（実行の最後のイベント）", r.exec_last_hash or ""),
        ]
        if self.ids_sha256:
            rows.append(("対象人物IDの SHA-256（昇順・改行区切り）", self.ids_sha256))
        return rows


def key_closure_rows(r: DisposalRequest) -> list[tuple[str, str]]:
    """The key closure (``app.lifecycle.key_closure.close_keys``): when the older KEKs were
    destroyed, which versions, and which backup files that made unreadable or destroyed
    (names, no data)."""
    if not r.person_count:
        return []
    if r.keys_closed_at is None or not r.key_closure:
        return [("鍵の更新と旧 KEK の破棄", "未完了（古いバックアップはまだ復元できる状態です）")]
    closure = json.loads(r.key_closure)

    def names(key: str) -> str:
        files = closure.get(key) or []
        return f"{len(files)}件" + (f"（{'、'.join(files)}）" if files else "")

    return [
        ("鍵の更新と旧 KEK の破棄", jptime.format_jst(r.keys_closed_at, True)),
        ("現在の KEK バージョン", str(closure.get("kek_version", ""))),
        (
            "破棄した KEK のバージョン",
            "、".join(str(v) for v in closure.get("retired_kek_versions", [])) or "なし",
        ),
        ("復元できなくなったデータベースのバックアップ", names("unreadable_backups")),
        ("破棄した鍵リングのバックアップ", names("destroyed_keyring_backups")),
    ]


def load(
    session: Session,
    vault: Vault,
    request_id,
    client: str,
    operator: str,
    *,
    responsible: str = "",
    issued_on: dt.date | None = None,
) -> Certificate:
    """The certificate of an executed disposal; ``issued_on`` is the 発行日 (today in JST
    unless given)."""
    req = session.get(DisposalRequest, request_id)
    if req is None or req.status != DisposalStatus.EXECUTED:
        raise CertificateError("実行済みの廃棄が見つかりません（削除証明書は実行後に発行されます）")
    items = session.execute(
        select(DisposalItem)
        .where(DisposalItem.request_id == req.id, DisposalItem.disposed_at.is_not(None))
        .order_by(DisposalItem.person_id)
    ).scalars()
    people = []
    for item in items:
        kept = disposal.open_identity(vault, item)
        people.append(
            DisposedPerson(
                str(item.person_id), item.person_kind, kept.get("code"), kept.get("name")
            )
        )
    people.sort(key=lambda p: (p.code is None, p.code or "", p.person_id))
    ids = sorted(p.person_id for p in people)
    by_kind: dict[str, int] = {}
    for p in people:
        by_kind[p.kind] = by_kind.get(p.kind, 0) + 1
    return Certificate(
        req,
        client,
        operator,
        ids,
        by_kind,
        holders.ids_digest(ids) if ids else None,
        people=people,
        responsible=responsible,
        issued_on=issued_on or jptime.today_jst(),
    )


PEOPLE_HEADER = ["職員番号・委員番号（扶養親族は扶養者コード）", "氏名（廃棄時点）", "区分"]


def to_csv(cert: Certificate) -> bytes:
    """UTF-8 with BOM through the product's one CSV writer: a value (a requester's name, a
    reason) that starts like a formula is neutralised as in every other CSV."""
    rows = [
        ["項目", "値"],
        *([label, "" if value is None else str(value)] for label, value in cert.rows),
    ]
    rows += [
        [],
        ["廃棄した人"],
        [*PEOPLE_HEADER, "人物ID（監査ログとの照合用）"],
        *([*p.cells, p.person_id] for p in cert.people),
    ]
    return csvio.csv_bytes(["削除証明書"], rows)


def to_pdf(cert: Certificate) -> bytes:
    return render_pdf(
        "pdf/deletion_certificate.html",
        cert=cert,
        rows=cert.rows,
        people=cert.people if len(cert.people) <= PDF_ID_LIMIT else None,
        people_header=PEOPLE_HEADER,
    )


def download(
    session: Session,
    vault: Vault,
    actor: Actor,
    request_id,
    fmt: str,
    *,
    client: str,
    operator: str,
    responsible: str = "",
) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of the certificate; the download is audited first."""
    policy.require(actor, "can_download", VIEW)
    if fmt not in ("pdf", "csv"):
        raise CertificateError("形式は pdf か csv を指定してください")
    cert = load(session, vault, request_id, client, operator, responsible=responsible)
    trail.record(
        session,
        actor,
        "certificate.download",
        object_type="disposal_request",
        object_ids=[cert.request.id],
        details={"format": fmt, "certificate_no": cert.request.certificate_no},
        commit=True,
    )
    cert = load(session, vault, request_id, client, operator, responsible=responsible)
    name = f"削除証明書_{cert.request.certificate_no}.{fmt}"
    if fmt == "csv":
        return name, to_csv(cert), "text/csv; charset=utf-8"
    return name, to_pdf(cert), "application/pdf"
