"""The client's CSV layouts (spec 5.4-3: 「データ出力の様式は発注者の指示に従う」).

A layout belongs to a kind — ``staff`` (employees and their dependents) or ``external``
(外部委員等) — and lists columns as (field, header label) pairs, plus a date format and an
encoding. The same layout reads an import and writes an export, so a file exported with a
layout imports again with it, row for row.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.models import ExportLayout, IoTicket, PersonKind, utcnow

STAFF = "staff"
EXTERNAL = "external"
KINDS = {STAFF: "役職員・扶養親族", EXTERNAL: "外部委員等"}
# Which people a layout of each kind covers.
PERSON_KINDS = {
    STAFF: (PersonKind.EMPLOYEE, PersonKind.DEPENDENT),
    EXTERNAL: (PersonKind.EXTERNAL,),
}


@dataclass(frozen=True)
class FieldDef:
    key: str
    label: str
    kinds: tuple[str, ...]
    help: str = ""


FIELDS: dict[str, FieldDef] = {
    f.key: f
    for f in (
        FieldDef("code", "職員番号・委員番号", (STAFF, EXTERNAL)),
        FieldDef(
            "name", "氏名", (STAFF, EXTERNAL), "役職員の行は本人、扶養親族の行は扶養親族の氏名"
        ),
        FieldDef("name_kana", "氏名カナ", (STAFF, EXTERNAL)),
        FieldDef("kubun", "本人区分（本人／扶養親族）", (STAFF,)),
        FieldDef("dependent_code", "扶養者コード（職員番号-連番）", (STAFF,)),
        FieldDef("relation", "続柄", (STAFF,)),
        FieldDef("birth_date", "生年月日", (STAFF, EXTERNAL)),
        FieldDef("postal_code", "郵便番号", (STAFF, EXTERNAL)),
        FieldDef("address", "住所", (STAFF, EXTERNAL)),
        FieldDef("ended_on", "退職日・委嘱終了日", (STAFF, EXTERNAL)),
        FieldDef("number", "マイナンバー（個人番号）", (STAFF, EXTERNAL)),
    )
}
# The columns an import needs to create a person of the kind.
REQUIRED_FOR_IMPORT = {
    STAFF: ("code", "name", "dependent_code", "birth_date", "number"),
    EXTERNAL: ("code", "name", "birth_date", "number"),
}

DATE_FORMATS = {
    "slash": "1985/01/02",
    "hyphen": "1985-01-02",
    "compact": "19850102",
    "wareki": "昭和60年1月2日（和暦）",
}
ENCODINGS = {"utf-8-sig": "UTF-8（BOM 付き）", "cp932": "Shift_JIS（CP932, Excel 向け）"}

_LABEL_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f,\"]")
NAME_PATTERN = re.compile(r"[0-9A-Za-z_\-\u3040-\u30ff\u4e00-\u9fff\uff10-\uff5a（）()・ー]{1,50}")


class LayoutError(ValueError):
    """The layout is not usable; ``problems`` lists every reason (Japanese)."""

    def __init__(self, problems: list[str]):
        super().__init__("、".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Layout:
    """A validated layout, detached from the database."""

    name: str
    kind: str
    columns: tuple[tuple[str, str], ...]
    date_format: str = "slash"
    encoding: str = "utf-8-sig"
    id: int | None = None
    builtin: bool = False

    @property
    def headers(self) -> list[str]:
        return [label for _, label in self.columns]

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.columns]

    @property
    def person_kinds(self) -> tuple[str, ...]:
        return PERSON_KINDS[self.kind]

    def label_of(self, field: str) -> str:
        for key, label in self.columns:
            if key == field:
                return label
        return FIELDS[field].label

    def missing_for_import(self) -> list[str]:
        """The fields an import with this layout would lack (empty: importable)."""
        present = set(self.fields)
        return [f for f in REQUIRED_FOR_IMPORT[self.kind] if f not in present]

    def format_date(self, value: dt.date | None) -> str:
        return format_date(value, self.date_format)

    @classmethod
    def from_row(cls, row: ExportLayout) -> Layout:
        return cls(
            name=row.name,
            kind=row.kind,
            columns=tuple((f, h) for f, h in json.loads(row.columns)),
            date_format=row.date_format,
            encoding=row.encoding,
            id=row.id,
            builtin=row.builtin,
        )


def wareki(value: dt.date) -> str:
    """``昭和60年1月2日``; the first year of an era is 元年. Before 明治: the western form."""
    for name, _letters, start in jptime.ERAS:
        if value >= start:
            year = value.year - start.year + 1
            year_text = "元" if year == 1 else str(year)
            return f"{name}{year_text}年{value.month}月{value.day}日"
    return value.strftime("%Y/%m/%d")


def format_date(value: dt.date | None, date_format: str) -> str:
    if value is None:
        return ""
    if date_format == "wareki":
        return wareki(value)
    if date_format == "hyphen":
        return value.isoformat()
    if date_format == "compact":
        return value.strftime("%Y%m%d")
    return value.strftime("%Y/%m/%d")


def validate(
    name: str,
    kind: str,
    columns: list[tuple[str, str]],
    date_format: str,
    encoding: str,
) -> Layout:
    """Every rule a layout must satisfy; raises LayoutError listing all the problems."""
    problems: list[str] = []
    name = (name or "").strip()
    if not NAME_PATTERN.fullmatch(name):
        problems.append("様式名は50文字以内の英数字・かな・漢字で入力してください")
    elif mynumber.contains_number(name):
        problems.append(mynumber.number_refusal("様式名"))
    if kind not in KINDS:
        problems.append("対象（役職員・扶養親族／外部委員等）を選択してください")
    if date_format not in DATE_FORMATS:
        problems.append("日付の形式を選択してください")
    if encoding not in ENCODINGS:
        problems.append("文字コードを選択してください")
    cleaned: list[tuple[str, str]] = []
    seen_fields: set[str] = set()
    seen_labels: set[str] = set()
    for position, (field, label) in enumerate(columns, start=1):
        label = (label or "").strip()
        if not field and not label:
            continue
        if field not in FIELDS:
            problems.append(f"列 {position}: 項目を選択してください")
            continue
        if kind in KINDS and kind not in FIELDS[field].kinds:
            problems.append(
                f"列 {position}: 「{FIELDS[field].label}」はこの対象の様式では使えません"
            )
        if field in seen_fields:
            problems.append(f"列 {position}: 「{FIELDS[field].label}」が重複しています")
        if not label or len(label) > 30:
            problems.append(f"列 {position}: 見出しを30文字以内で入力してください")
        elif _LABEL_FORBIDDEN.search(label) or label[0] in "=+-@'":
            problems.append(
                f"列 {position}: 見出しに使えない文字があります（カンマ、引用符、先頭の = + - @ '）"
            )
        elif mynumber.contains_number(label):
            problems.append(f"列 {position}: {mynumber.number_refusal('見出し')}")
        elif label in seen_labels:
            problems.append(f"列 {position}: 見出し「{label}」が重複しています")
        seen_fields.add(field)
        seen_labels.add(label)
        cleaned.append((field, label))
    if not cleaned:
        problems.append("列を1つ以上指定してください")
    if problems:
        raise LayoutError(problems)
    return Layout(name, kind, tuple(cleaned), date_format, encoding)


def get(session: Session, name: str) -> Layout:
    """The layout called ``name``; LookupError (Japanese) when there is none."""
    row = session.execute(
        select(ExportLayout).where(ExportLayout.name == name)
    ).scalar_one_or_none()
    if row is None:
        names = "、".join(all_names(session)) or "なし"
        raise LookupError(f"様式「{name}」はありません（登録済み: {names}）")
    return Layout.from_row(row)


def get_by_id(session: Session, layout_id: int) -> Layout:
    row = session.get(ExportLayout, layout_id)
    if row is None:
        raise LookupError("指定された様式はありません")
    return Layout.from_row(row)


def all_names(session: Session) -> list[str]:
    return list(session.execute(select(ExportLayout.name).order_by(ExportLayout.name)).scalars())


def list_layouts(session: Session) -> list[Layout]:
    rows = session.execute(select(ExportLayout).order_by(ExportLayout.kind, ExportLayout.name))
    return [Layout.from_row(r) for r in rows.scalars()]


def save(
    session: Session,
    actor: Actor,
    layout: Layout,
    layout_id: int | None = None,
) -> Layout:
    """Create or replace a layout (audited). Names are unique."""
    policy.require(actor, "can_edit", "Layouts")
    clash = session.execute(
        select(func.count())
        .select_from(ExportLayout)
        .where(ExportLayout.name == layout.name, ExportLayout.id != (layout_id or -1))
    ).scalar_one()
    if clash:
        raise LayoutError([f"様式名「{layout.name}」は既に使われています"])
    if layout_id is None:
        row = ExportLayout(name=layout.name, builtin=False, created_at=utcnow())
        session.add(row)
        action = "layout.add"
    else:
        row = session.get(ExportLayout, layout_id)
        if row is None:
            raise LookupError("指定された様式はありません")
        if row.builtin and row.name != layout.name:
            raise LayoutError(["既定の様式の名前は変更できません"])
        action = "layout.edit"
    row.kind = layout.kind
    row.columns = json.dumps([list(c) for c in layout.columns], ensure_ascii=False)
    row.date_format = layout.date_format
    row.encoding = layout.encoding
    row.updated_at = utcnow()
    row.updated_by = actor.name
    session.flush()
    trail.record(
        session,
        actor,
        action,
        object_type="layout",
        object_ids=[row.id],
        details={
            "name": layout.name,
            "kind": layout.kind,
            "columns": [list(c) for c in layout.columns],
            "date_format": layout.date_format,
            "encoding": layout.encoding,
        },
    )
    session.commit()
    return Layout.from_row(row)


def delete(session: Session, actor: Actor, layout_id: int) -> None:
    """Remove a layout the client no longer uses; the two defaults stay."""
    policy.require(actor, "can_edit", "Layouts")
    row = session.get(ExportLayout, layout_id)
    if row is None:
        raise LookupError("指定された様式はありません")
    if row.builtin:
        raise LayoutError(["既定の様式は削除できません（編集はできます）"])
    if session.execute(select(IoTicket.id).where(IoTicket.layout_id == layout_id)).first():
        raise LayoutError(["この様式を使う処理が確認待ちです。しばらくしてから削除してください"])
    trail.record(
        session,
        actor,
        "layout.delete",
        object_type="layout",
        object_ids=[row.id],
        details={"name": row.name},
    )
    session.delete(row)
    session.commit()
