"""情報管理体制 (spec 7.5, 7.1): roster exports, the 情報管理体制図, the 取扱状況 register.

- **Roster export**: the approved 情報取扱者名簿 (氏名, 所属部署, 役職, 国籍, 承認日) as PDF or
  CSV (UTF-8 with BOM, or CP932), for the client's staff, auditors and the system
  administrator. Every download is audited before the file is made.
- **情報管理体制図**: a structured text (責任者, 取扱者と役割, 連絡体制) that the operator side
  edits; each edit is a new version that applies only when a ClientStaff user other than its
  author approves it, as roster changes do. Old versions stay as history.
- **取扱状況 register** (``register()``): every data set the system holds, its purpose, the
  responsible person, who has access — derived from ``app.access.policy.ROLE_PERMISSIONS``, never
  typed by hand, so it cannot drift from what the code allows — counts, and its retention
  and deletion status (``app.lifecycle.retention``, ``app.lifecycle.disposal``). Counts and statuses only: no
  name, no number.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import accounts, policy
from app.audit import trail
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.lifecycle import retention
from app.models import (
    AuditEvent,
    BackupRecord,
    CollectionRequest,
    DataKey,
    DisposalRequest,
    ExportItem,
    HandlerRosterEntry,
    HandlingChart,
    Inquiry,
    IoTicket,
    MyNumberRecord,
    PaperPart,
    Person,
    RetainedDocument,
    ReturnArchive,
    SubmissionPart,
    utcnow,
)
from app.platform.csvio import CsvWriter
from app.platform.pdf import render_pdf

ROSTER_VIEW = "Roster"
CHART_VIEW = "HandlingChart"
REGISTER_VIEW = "Register"
# Dates and times in files are JST, and the header says so.
ROSTER_HEADERS = ["氏名", "所属部署", "役職", "国籍", "承認日（JST）"]
ENCODINGS = ("utf-8-sig", "cp932")


class GovernanceError(ValueError):
    """A Japanese message naming the field and the reason."""


def _csv(headers: list[str], rows: list[list[str]], encoding: str) -> bytes:
    if encoding not in ENCODINGS:
        raise GovernanceError("文字コード: utf-8-sig または cp932 を指定してください")
    out = io.BytesIO()
    writer = CsvWriter(out, encoding, headers)
    writer.write_rows(rows)
    return out.getvalue()


def _check_download(actor: Actor, view: str, fmt: str, encoding: str) -> None:
    """Permission, then the two choices a download screen offers, each named in Japanese."""
    policy.require(actor, "can_download", view)
    if fmt not in ("pdf", "csv"):
        raise GovernanceError("形式: pdf か csv を指定してください")
    if fmt == "csv" and encoding not in ENCODINGS:
        raise GovernanceError("文字コード: utf-8-sig または cp932 を指定してください")


def _audit_download(session: Session, actor: Actor, action: str, fmt: str, **details) -> None:
    """Committed before the file is made: no audit event, no file."""
    trail.record(
        session,
        actor,
        action,
        object_type="governance",
        details={"format": fmt, **details},
        commit=True,
    )


# -- the roster -----------------------------------------------------------------------------
def roster_rows(session: Session) -> list[list[str]]:
    """Approved entries only: a pending or revoked entry is not on the roster."""
    entries = session.execute(
        select(HandlerRosterEntry)
        .where(HandlerRosterEntry.status == "approved")
        .order_by(HandlerRosterEntry.department, HandlerRosterEntry.name)
    ).scalars()
    return [
        [
            e.name,
            e.department,
            e.title,
            e.nationality,
            jptime.format_jst(e.approved_at)[:10] if e.approved_at else "",
        ]
        for e in entries
    ]


def roster_export(
    session: Session, actor: Actor, fmt: str, encoding: str = "utf-8-sig", *, client: str = ""
) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of the roster as ``pdf`` or ``csv``; audited first."""
    _check_download(actor, ROSTER_VIEW, fmt, encoding)
    _audit_download(session, actor, "roster.export", fmt, encoding=encoding)
    rows = roster_rows(session)
    name = f"情報取扱者名簿_{jptime.today_jst():%Y%m%d}.{fmt}"
    if fmt == "csv":
        charset = "shift_jis" if encoding == "cp932" else "utf-8"
        return name, _csv(ROSTER_HEADERS, rows, encoding), f"text/csv; charset={charset}"
    data = render_pdf(
        "pdf/roster.html",
        headers=ROSTER_HEADERS,
        rows=rows,
        client=client,
        issued=jptime.format_jst(utcnow()),
        chart=current_chart(session),
    )
    return name, data, "application/pdf"


# -- 情報管理体制図 ---------------------------------------------------------------------------
CHART_FIELDS = {
    "responsible": ("責任者（氏名・役職）", 200),
    "handlers": ("事務取扱担当者と役割（1行に1名: 氏名 / 役割）", 4000),
    "contacts": ("連絡体制（1行に1件）", 4000),
}


@dataclass(frozen=True)
class ChartText:
    responsible: str
    handlers: str
    contacts: str
    note: str = ""

    def cleaned(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for field, (label, limit) in CHART_FIELDS.items():
            values[field] = _clean(getattr(self, field), label, limit, required=True)
        values["note"] = _clean(self.note, "備考", 2000, required=False)
        return values


def _clean(value: str | None, label: str, limit: int, required: bool) -> str | None:
    text = (value or "").replace("\r\n", "\n").strip()
    if not text:
        if required:
            raise GovernanceError(f"{label}: 入力してください")
        return None
    if len(text) > limit:
        raise GovernanceError(f"{label}: {limit}文字以内で入力してください")
    if mynumber.contains_number(text):
        raise GovernanceError(mynumber.number_refusal(label))
    return text


def propose_chart(session: Session, actor: Actor, text: ChartText) -> HandlingChart:
    """A new version, pending until the client approves it. Commits."""
    policy.require(actor, "can_propose", CHART_VIEW)
    chart = HandlingChart(
        **text.cleaned(),
        status="pending",
        proposed_by_id=actor.user_id,
        proposed_by_name=actor.name,
    )
    session.add(chart)
    session.flush()
    trail.record(
        session,
        actor,
        "handling_chart.proposed",
        object_type="handling_chart",
        object_ids=[chart.id],
    )
    session.commit()
    return chart


def decide_chart(session: Session, actor: Actor, chart_id: int, approve: bool) -> HandlingChart:
    """Approve (it becomes the current chart) or reject; never by its author. Commits."""
    policy.require(actor, "can_approve", CHART_VIEW)
    chart = session.get(HandlingChart, chart_id)
    if chart is None or chart.status != "pending":
        raise GovernanceError("承認待ちの体制図が見つかりません")
    if actor.user_id is not None and actor.user_id == chart.proposed_by_id:
        raise GovernanceError("自分が作成した体制図は承認できません")
    reason = accounts.refuse_conflicted_approver(  # nor an account its author set up
        session,
        actor,
        chart.proposed_by_id,
        "handling_chart.approved" if approve else "handling_chart.rejected",
        "handling_chart",
        chart.id,
    )
    if reason is not None:
        raise GovernanceError(reason)
    chart.status = "approved" if approve else "rejected"
    chart.decided_by_id, chart.decided_by_name, chart.decided_at = (
        actor.user_id,
        actor.name,
        utcnow(),
    )
    session.flush()
    trail.record(
        session,
        actor,
        "handling_chart.approved" if approve else "handling_chart.rejected",
        object_type="handling_chart",
        object_ids=[chart.id],
    )
    session.commit()
    return chart


def current_chart(session: Session) -> HandlingChart | None:
    """The newest approved version."""
    return session.execute(
        select(HandlingChart)
        .where(HandlingChart.status == "approved")
        .order_by(HandlingChart.decided_at.desc(), HandlingChart.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def chart_history(session: Session) -> list[HandlingChart]:
    return list(session.execute(select(HandlingChart).order_by(HandlingChart.id.desc())).scalars())


def chart_lines(chart: HandlingChart) -> list[list[str]]:
    """(区分, 内容) rows: one per handler and per contact line."""
    rows = [["責任者", chart.responsible]]
    rows += [
        ["事務取扱担当者", line.strip()] for line in chart.handlers.splitlines() if line.strip()
    ]
    rows += [["連絡体制", line.strip()] for line in chart.contacts.splitlines() if line.strip()]
    if chart.note:
        rows.append(["備考", chart.note])
    rows.append(["承認", f"{chart.decided_by_name} {jptime.format_jst(chart.decided_at)}（JST）"])
    return rows


def chart_export(
    session: Session, actor: Actor, fmt: str, encoding: str = "utf-8-sig", *, client: str = ""
) -> tuple[str, bytes, str]:
    """The current (approved) 情報管理体制図 as ``pdf`` or ``csv``; audited first."""
    _check_download(actor, CHART_VIEW, fmt, encoding)
    chart = current_chart(session)
    if chart is None:
        raise GovernanceError("承認済みの情報管理体制図がありません")
    _audit_download(session, actor, "handling_chart.export", fmt, chart_id=chart.id)
    name = f"情報管理体制図_{jptime.today_jst():%Y%m%d}.{fmt}"
    rows = chart_lines(chart)
    if fmt == "csv":
        charset = "shift_jis" if encoding == "cp932" else "utf-8"
        return name, _csv(["区分", "内容"], rows, encoding), f"text/csv; charset={charset}"
    data = render_pdf(
        "pdf/handling_chart.html",
        chart=chart,
        rows=rows,
        roster=roster_rows(session),
        headers=ROSTER_HEADERS,
        client=client,
        issued=jptime.format_jst(utcnow()),
    )
    return name, data, "application/pdf"


# -- 取扱状況 register -----------------------------------------------------------------------
PERMISSION_LABELS = {
    "can_list": "一覧",
    "can_show": "表示",
    "can_search": "検索",
    "can_reveal": "番号の表示",
    "can_edit": "編集",
    "can_add": "登録",
    "can_import": "取込",
    "can_export": "出力",
    "can_match": "照合",
    "can_open": "開封",
    "can_decide": "判定",
    "can_claim": "担当",
    "can_scan": "スキャン",
    "can_key": "入力",
    "can_finish": "完了",
    "can_return": "返送",
    "can_request": "申請",
    "can_approve": "承認",
    "can_execute": "実行",
    "can_download": "ダウンロード",
    "can_verify": "検証",
    "can_propose": "変更申請",
    "can_rotate": "鍵の更新",
    "can_upload": "アップロード",
    "can_letters": "文面",
    "can_send": "送付",
    "can_print": "印刷",
}


def access_for(views: tuple[str, ...]) -> list[str]:
    """Who may reach a data set, read from the permission table: one line per role (with
    what it may do), after the rules (roster, TOTP, no personal data for a SystemAdmin)."""
    lines = []
    for role in policy.ROLES:
        probe = Actor(name="register", roles=(role,), mfa=True, roster_approved=True)
        granted = sorted(
            {p for p, v in policy.permissions(probe) if v in views and p != "menu_access"}
        )
        if granted:
            what = "・".join(dict.fromkeys(PERMISSION_LABELS.get(p, p) for p in granted))
            lines.append(f"{policy.ROLE_LABELS[role]}（{what}）")
    shell = sorted({p for p, v in policy.SHELL_PERMISSIONS if v in views})
    if shell:
        what = "・".join(PERMISSION_LABELS.get(p, p) for p in shell)
        lines.append(f"サーバーのコマンドライン（{what}）")
    return lines or ["画面からは不可（サーバーのコマンドラインのみ）"]


def _count(session: Session, model, *where) -> int:
    return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


@dataclass(frozen=True)
class DataSet:
    key: str
    name: str
    purpose: str
    views: tuple[str, ...]
    counter: Callable[[Session], str]
    retention: Callable[[Session], str]


@dataclass(frozen=True)
class RegisterRow:
    name: str
    purpose: str
    responsible: str
    access: list[str]
    count: str
    retention: str

    def cells(self) -> list[str]:
        return [
            self.name,
            self.purpose,
            self.responsible,
            " / ".join(self.access),
            self.count,
            self.retention,
        ]


REGISTER_HEADERS = ["データ", "利用目的", "責任者", "アクセスできる者", "件数", "保管・削除の状況"]


def _people_count(session: Session) -> str:
    stored = _count(session, Person, Person.status != "disposed")
    disposed = _count(session, Person, Person.status == "disposed")
    return f"保管 {stored} 名（廃棄済み {disposed} 名）"


def _people_retention(session: Session) -> str:
    c = retention.counts(session)
    return (
        f"削除予定日を経過 {c['due']} 名、90日以内 {c['upcoming']} 名、未設定 {c['no_date']} 名。"
        "廃棄は発注者の承認後に実行（墓標のみ残る）"
    )


def _disposals(session: Session) -> str:
    executed = _count(session, DisposalRequest, DisposalRequest.status == "executed")
    pending = _count(session, DisposalRequest, DisposalRequest.status.in_(("pending", "approved")))
    return f"実行済みの廃棄 {executed} 件、承認待ち・実行待ち {pending} 件"


def _kept(flag: str) -> Callable[[Session], str]:
    def status(session: Session) -> str:
        keep = bool(current_app.config.get(flag)) if has_app_context() else False
        return (
            "確認後も人物のデータ鍵で暗号化して保管（保管する設定）。人物の廃棄時に暗号化消去"
            if keep
            else "確認が終わると削除（保管しない設定）。人物の廃棄時にも削除"
        )

    return status


def _fixed(text: str) -> Callable[[Session], str]:
    return lambda session: text


DATA_SETS: tuple[DataSet, ...] = (
    DataSet(
        "people",
        "人物（役職員・扶養親族・外部委員等の氏名・生年月日等の照合項目）",
        "個人番号関係事務の対象者の特定と照合",
        ("People",),
        _people_count,
        _people_retention,
    ),
    DataSet(
        "numbers",
        "個人番号（暗号化、ブラインドインデックス）",
        "源泉徴収票・支払調書等の個人番号関係事務",
        ("People", "Numbers"),
        lambda s: f"{_count(s, MyNumberRecord)} 件（データ鍵 {_count(s, DataKey)} 件）",
        lambda s: (
            "人物ごとのデータ鍵で暗号化。廃棄時にデータ鍵を破棄（暗号化消去）。" + _disposals(s)
        ),
    ),
    DataSet(
        "id_images",
        "本人確認書類の画像（保管する設定のとき）",
        "番号確認・身元確認の記録",
        ("Verification", "Intake"),
        lambda s: f"{_count(s, RetainedDocument)} 件",
        _kept("COLLECTION_KEEP_ID_IMAGES"),
    ),
    DataSet(
        "submissions",
        "提出フォームの封緘データ（番号・書類の画像）",
        "本人からの収集（Web）",
        ("Intake", "Verification"),
        lambda s: f"{_count(s, SubmissionPart)} 件（依頼 {_count(s, CollectionRequest)} 件）",
        _fixed("受付用の公開鍵で封緘。人物の廃棄時に削除"),
    ),
    DataSet(
        "paper",
        "郵送受付のスキャン画像・入力した番号（封緘）",
        "本人からの収集（郵送）",
        ("PaperIntake", "Verification"),
        lambda s: f"{_count(s, PaperPart)} 件",
        _fixed("確認が終わると削除。紙の原本は廃棄申請（資料）で廃棄を記録"),
    ),
    DataSet(
        "io",
        "CSV取込・一括照合の確認待ちデータ（封緘）と出力の記録",
        "発注者の事務（取込・出力・照合）",
        ("Numbers",),
        lambda s: f"確認待ち {_count(s, IoTicket)} 件、出力記録 {_count(s, ExportItem)} 行",
        _fixed("確認待ちは一度使うと削除。出力記録は人物IDのみ（追記のみ）"),
    ),
    DataSet(
        "returns",
        "返却データ（発注者の鍵で暗号化したアーカイブ）",
        "契約終了時等の返却",
        ("ReturnArchive",),
        lambda s: f"{_count(s, ReturnArchive)} 件",
        _fixed("発注者の公開鍵で暗号化。受注者は復号できない"),
    ),
    DataSet(
        "backups",
        "バックアップ（暗号化）",
        "障害時の復旧",
        ("Backups",),
        lambda s: (
            f"保持中 {_count(s, BackupRecord, BackupRecord.pruned_at.is_(None))} 件"
            f"（削除済み {_count(s, BackupRecord, BackupRecord.pruned_at.is_not(None))} 件）"
        ),
        _fixed("世代数を超えたものから削除。復元しても廃棄済みの人物は戻らない"),
    ),
    DataSet(
        "audit",
        "監査ログ（ハッシュチェーン、署名付きチェックポイント）",
        "アクセス・操作の記録（番号は含まない）",
        ("AuditLog",),
        lambda s: f"{_count(s, AuditEvent)} 件",
        _fixed("追記のみ。削除・変更しない（返却データに含めて返却）"),
    ),
    DataSet(
        "inquiries",
        "お問い合わせ（本人・発注者）",
        "問合せ窓口の対応",
        ("Inquiries", "ClientInquiries"),
        lambda s: f"{_count(s, Inquiry)} 件",
        _fixed("個人番号を含む内容は受け付けない。契約終了時の全件廃棄で削除"),
    ),
    DataSet(
        "roster",
        "情報取扱者名簿・情報管理体制図",
        "取扱者の管理（発注者の承認）",
        ("Roster", "RosterChange", "HandlingChart"),
        lambda s: (
            f"承認済み {_count(s, HandlerRosterEntry, HandlerRosterEntry.status == 'approved')} 名"
            f"（取消 {_count(s, HandlerRosterEntry, HandlerRosterEntry.status == 'revoked')} 名）"
        ),
        _fixed("変更は発注者の承認後に反映。履歴を保管"),
    ),
)


def register(session: Session, actor: Actor) -> list[RegisterRow]:
    """The 取扱状況 register, one row per data set (no name, no number)."""
    policy.require(actor, "can_list", REGISTER_VIEW)
    chart = current_chart(session)
    responsible = chart.responsible if chart else "（情報管理体制図が未承認）"
    return [
        RegisterRow(
            name=d.name,
            purpose=d.purpose,
            responsible=responsible,
            access=access_for(d.views),
            count=d.counter(session),
            retention=d.retention(session),
        )
        for d in DATA_SETS
    ]


def register_export(
    session: Session, actor: Actor, fmt: str, encoding: str = "utf-8-sig", *, client: str = ""
) -> tuple[str, bytes, str]:
    """The register as ``pdf`` or ``csv``; audited first."""
    _check_download(actor, REGISTER_VIEW, fmt, encoding)
    _audit_download(session, actor, "register.export", fmt, encoding=encoding)
    rows = register(session, actor)
    name = f"取扱状況_{jptime.today_jst():%Y%m%d}.{fmt}"
    if fmt == "csv":
        charset = "shift_jis" if encoding == "cp932" else "utf-8"
        data = _csv(REGISTER_HEADERS, [r.cells() for r in rows], encoding)
        return name, data, f"text/csv; charset={charset}"
    data = render_pdf(
        "pdf/register.html",
        headers=REGISTER_HEADERS,
        rows=rows,
        client=client,
        issued=jptime.format_jst(utcnow()),
    )
    return name, data, "application/pdf"
