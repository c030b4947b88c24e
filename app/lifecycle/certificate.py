"""削除証明書 (deletion certificate, spec 5.3-5): a PDF and a CSV per executed disposal.

Both carry the same facts: client, operator, certificate number, kind and scope, count,
method, date and time, requester, approver, executor, the audit events of the request, the
approval and the execution (sequence numbers and the chain hash of the last one, which an
auditor can check against the log), and the tombstoned person ids (ids only: the certificate
itself holds no personal data). Every download is audited before the file is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core import jptime
from app.core.actor import Actor
from app.lifecycle import holders
from app.models import DisposalItem, DisposalKind, DisposalRequest, DisposalStatus, PersonKind
from app.platform import csvio
from app.platform.pdf import render_pdf

VIEW = "DeletionCertificate"
# Beyond this many people the PDF lists counts and the SHA-256 of the id list; the CSV
# always lists every id.
PDF_ID_LIMIT = 3000


class CertificateError(ValueError):
    """No certificate for this request (not executed, not found)."""


@dataclass
class Certificate:
    request: DisposalRequest
    client: str
    operator: str
    person_ids: list[str]
    by_kind: dict[str, int]
    ids_sha256: str | None

    @property
    def rows(self) -> list[tuple[str, str]]:
        """The certificate's facts as (label, value), shared by the PDF and the CSV."""
        r = self.request
        jst = jptime.format_jst
        rows = [
            ("証明書番号", r.certificate_no or ""),
            ("発注者", self.client),
            ("受注者", self.operator),
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
            ("申請者", f"{r.requested_by_name}（{jst(r.requested_at, True)}）"),
            ("承認者（発注者）", f"{r.decided_by_name or ''}（{jst(r.decided_at, True)}）"),
            ("実行者", f"{r.executed_by_name or ''}"),
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


def load(session: Session, request_id, client: str, operator: str) -> Certificate:
    req = session.get(DisposalRequest, request_id)
    if req is None or req.status != DisposalStatus.EXECUTED:
        raise CertificateError("実行済みの廃棄が見つかりません（削除証明書は実行後に発行されます）")
    items = session.execute(
        select(DisposalItem.person_id, DisposalItem.person_kind)
        .where(DisposalItem.request_id == req.id, DisposalItem.disposed_at.is_not(None))
        .order_by(DisposalItem.person_id)
    ).all()
    ids = sorted(str(pid) for pid, _ in items)
    by_kind: dict[str, int] = {}
    for _, kind in items:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    return Certificate(
        req, client, operator, ids, by_kind, holders.ids_digest(ids) if ids else None
    )


def to_csv(cert: Certificate) -> bytes:
    """UTF-8 with BOM through the product's one CSV writer: a value (a requester's name, a
    reason) that starts like a formula is neutralised as in every other CSV."""
    rows = [
        ["項目", "値"],
        *([label, "" if value is None else str(value)] for label, value in cert.rows),
    ]
    rows += [[], ["廃棄した人物ID"], *([pid] for pid in cert.person_ids)]
    return csvio.csv_bytes(["削除証明書"], rows)


def to_pdf(cert: Certificate) -> bytes:
    return render_pdf(
        "pdf/deletion_certificate.html",
        cert=cert,
        rows=cert.rows,
        ids=cert.person_ids if len(cert.person_ids) <= PDF_ID_LIMIT else None,
        issued=jptime.format_jst(cert.request.executed_at, True),
    )


def download(
    session: Session,
    actor: Actor,
    request_id,
    fmt: str,
    *,
    client: str,
    operator: str,
) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of the certificate; the download is audited first."""
    policy.require(actor, "can_download", VIEW)
    if fmt not in ("pdf", "csv"):
        raise CertificateError("形式は pdf か csv を指定してください")
    cert = load(session, request_id, client, operator)
    trail.record(
        session,
        actor,
        "certificate.download",
        object_type="disposal_request",
        object_ids=[cert.request.id],
        details={"format": fmt, "certificate_no": cert.request.certificate_no},
        commit=True,
    )
    cert = load(session, request_id, client, operator)
    name = f"削除証明書_{cert.request.certificate_no}.{fmt}"
    if fmt == "csv":
        return name, to_csv(cert), "text/csv; charset=utf-8"
    return name, to_pdf(cert), "application/pdf"
