"""Bulk 照合 (spec 5.4-4): a CSV of keys in, the matching people out (in the client's layout).

Keys are 職員番号 (or 委員番号) + 生年月日, or 氏名 + 生年月日, one per row, with a header naming
them. A key matches when exactly one stored person of the layout's kind has it; no match and
more than one (twins share an employee number and a birth date) are listed for the user, never
guessed. Names compare after NFKC and without spaces (``見本　太郎`` = ``見本 太郎``), but 異体字
stay distinct: 髙 is not 高.

Matching reads no number: it finds person ids. The numbers are written afterwards by
``app.io.exports.export_csv`` for exactly those ids, audited with the purpose like any export.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import canary, trail
from app.core import fields as F
from app.core import jptime, logsafe
from app.core.actor import Actor
from app.io.layouts import Layout
from app.models import Person
from app.platform.csvio import CsvFormatError, CsvReader, is_blank, unneutralise

BATCH = 1000
MAX_KEYS = 100_000
CODE_HEADERS = ("職員番号", "委員番号", "職員番号・委員番号")
NAME_HEADERS = ("氏名", "職員氏名")
BIRTH_HEADERS = ("生年月日",)


@dataclass(frozen=True)
class Unmatched:
    line: int
    key: str
    reason: str

    def __str__(self) -> str:
        return f"行 {self.line}: {self.key}: {self.reason}"


@dataclass
class MatchResult:
    layout: str
    by: str = ""  # "code" or "name"
    keys: int = 0
    person_ids: list[uuid.UUID] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    ambiguous: list[Unmatched] = field(default_factory=list)
    invalid: list[Unmatched] = field(default_factory=list)

    def counts(self) -> dict:
        return {
            "layout": self.layout,
            "by": self.by,
            "keys": self.keys,
            "matched": len(self.person_ids),
            "unmatched": len(self.unmatched),
            "ambiguous": len(self.ambiguous),
            "invalid": len(self.invalid),
        }


class MatchError(ValueError):
    """The key file cannot be used (Japanese)."""


def name_key(name: str) -> str:
    """How names compare in 照合 (and in the people search): NFKC, no spaces; 異体字 untouched."""
    return F.name_key(name)


def _header(cells: list[str]) -> tuple[str, int, int]:
    labels = [c.strip() for c in cells]
    birth = next((labels.index(h) for h in BIRTH_HEADERS if h in labels), None)
    code = next((labels.index(h) for h in CODE_HEADERS if h in labels), None)
    name = next((labels.index(h) for h in NAME_HEADERS if h in labels), None)
    if birth is None or (code is None and name is None):
        raise MatchError(
            "行 1: 見出し: 「職員番号,生年月日」または「氏名,生年月日」の見出し行が必要です"
        )
    if code is not None:
        return "code", code, birth
    return "name", name, birth


def bulk_match(
    session: Session,
    actor: Actor,
    stream: BinaryIO,
    layout: Layout,
    purpose: str,
    *,
    encoding: str = "auto",
) -> MatchResult:
    """Find the person of each key; audited (counts and purpose, never a key's value)."""
    policy.require(actor, "can_match", "Numbers")
    problem = trail.purpose_problem(purpose)
    if problem:
        raise MatchError(problem)
    purpose = purpose.strip()
    result = MatchResult(layout=layout.name)
    today = jptime.today_jst()
    try:
        reader = CsvReader(stream, encoding)
        rows = iter(reader)
        first = next(rows, None)
        if first is None:
            raise MatchError("行 1: ファイル: 見出し行がありません")
        by, key_at, birth_at = _header(first[1])
        result.by = by
        width = len(first[1])
        pending: list[tuple[int, str, dt.date, str]] = []
        seen: set[uuid.UUID] = set()
        for line, cells in rows:
            if is_blank(cells):
                continue
            result.keys += 1
            if result.keys > MAX_KEYS:
                raise MatchError(f"キーは1回に{MAX_KEYS:,}行までです")
            key = _parse_key(result, line, cells, width, by, key_at, birth_at, today)
            if key is not None:
                pending.append(key)
            if len(pending) >= BATCH:
                _resolve(session, layout, by, pending, result, seen)
                pending = []
        _resolve(session, layout, by, pending, result, seen)
    except CsvFormatError as exc:
        raise MatchError(str(exc)) from None
    trail.record(
        session,
        actor,
        "numbers.match",
        object_type="person",
        purpose=purpose,
        details=result.counts(),
        commit=True,
    )
    canary.trip(session, None, actor, result.person_ids, "match")
    return result


def _parse_key(
    result: MatchResult,
    line: int,
    cells: list[str],
    width: int,
    by: str,
    key_at: int,
    birth_at: int,
    today: dt.date,
) -> tuple[int, str, dt.date, str] | None:
    if len(cells) != width:
        result.invalid.append(Unmatched(line, "列数", f"見出しと列数が違います（{len(cells)}列）"))
        return None
    raw_key = unneutralise(cells[key_at])
    try:
        key = F.clean_code(raw_key) if by == "code" else F.clean_name(raw_key)
    except F.FieldError as exc:
        label = "職員番号・委員番号" if by == "code" else "氏名"
        result.invalid.append(Unmatched(line, label, str(exc)))
        return None
    try:
        birth = F.clean_date(unneutralise(cells[birth_at]), today=today)
    except F.FieldError as exc:
        result.invalid.append(Unmatched(line, "生年月日", str(exc)))
        return None
    shown = f"{'職員番号・委員番号' if by == 'code' else '氏名'} {logsafe.scrub(key)} / 生年月日 {birth:%Y/%m/%d}"
    return line, key, birth, shown


def _resolve(
    session: Session,
    layout: Layout,
    by: str,
    keys: list[tuple[int, str, dt.date, str]],
    result: MatchResult,
    seen: set[uuid.UUID],
) -> None:
    """One query per batch of keys; group candidates in memory."""
    if not keys:
        return
    query = select(Person.id, Person.code, Person.name, Person.birth_date).where(
        Person.status == "active", Person.kind.in_(layout.person_kinds)
    )
    if by == "code":
        query = query.where(Person.code.in_({k[1] for k in keys}))
    else:
        query = query.where(Person.birth_date.in_({k[2] for k in keys}))
    candidates: dict[tuple[str, dt.date], list[uuid.UUID]] = {}
    for pid, code, name, birth in session.execute(query):
        token = code if by == "code" else name_key(name)
        candidates.setdefault((token, birth), []).append(pid)
    for line, key, birth, shown in keys:
        token = key if by == "code" else name_key(key)
        found = candidates.get((token, birth), [])
        if not found:
            result.unmatched.append(Unmatched(line, shown, "該当する人物がいません"))
        elif len(found) > 1:
            result.ambiguous.append(
                Unmatched(line, shown, f"{len(found)} 人が該当します（特定できません）")
            )
        elif found[0] not in seen:
            seen.add(found[0])
            result.person_ids.append(found[0])
