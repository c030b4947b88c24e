"""Retention: each person's retention basis and 削除予定日, from rules the client can change.

A rule per kind of person says where counting starts after the person's 終了日 (退職日 /
委嘱終了日, ``Person.ended_on``) and how many years are added; the 削除予定日 is the day after
that period ends. Defaults (migration 0005):

- 役職員: 扶養控除等申告書 are kept 7 years from January 10 of the year after the year of
  leaving (所得税法施行規則 76条の3) → 削除予定日 = 1月11日 of (leaving year + 8);
- 扶養親族: the employee's date; if the dependent left the household earlier, 7 years from the
  January 10 after that, whichever comes first;
- 外部委員等: after the year's 支払調書 (filed by January 31 of the next year) →
  削除予定日 = 2月1日 of the year after 委嘱終了. While more work is expected, no 終了日 is set
  and no date is computed.

Nobody without a 終了日 is ever due. Being due deletes nothing: it lists the person on the
保管期限 screen and in the weekly notice, and disposal still needs an approved request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.audit import trail
from app.core import jptime
from app.core.actor import Actor
from app.models import Person, PersonKind, RetentionRule, utcnow

ANCHORS = {
    "ended_on": "終了日（退職日・委嘱終了日）",
    "jan10_after": "終了年の翌年1月10日",
    "jan31_after": "終了年の翌年1月31日",
}
MAX_YEARS = 30


def stored():
    """Everyone whose data is still kept: active, and dependents removed from a household
    (status ``removed``), who keep their records until disposal."""
    return Person.status != "disposed"


class RetentionError(ValueError):
    """A rule that cannot be saved; the message names the field, in Japanese."""


@dataclass(frozen=True)
class Rule:
    kind: str
    anchor: str
    years: int
    follow_household: bool
    label: str

    def describe(self) -> str:
        years = f"{self.years}年" if self.years else "当日"
        return f"{ANCHORS.get(self.anchor, self.anchor)}から{years}"


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def retention_end(rule: Rule, ended_on: dt.date | None) -> dt.date | None:
    """The last day the person must be kept, or None while they have no 終了日."""
    if ended_on is None:
        return None
    if rule.anchor == "ended_on":
        start = ended_on
    elif rule.anchor == "jan10_after":
        start = dt.date(ended_on.year + 1, 1, 10)
    elif rule.anchor == "jan31_after":
        start = dt.date(ended_on.year + 1, 1, 31)
    else:
        raise RetentionError(f"起算点が不明です: {rule.anchor}")
    return _add_years(start, rule.years)


def delete_after(rule: Rule, ended_on: dt.date | None) -> dt.date | None:
    """削除予定日: the first day the person may be disposed of."""
    end = retention_end(rule, ended_on)
    return end + dt.timedelta(days=1) if end else None


def load_rules(session: Session) -> dict[str, Rule]:
    rules = {
        r.kind: Rule(r.kind, r.anchor, r.years, r.follow_household, r.label)
        for r in session.execute(select(RetentionRule)).scalars()
    }
    missing = set(PersonKind.ALL) - set(rules)
    if missing:
        raise RetentionError("保管期間のルールがありません: " + "、".join(sorted(missing)))
    return rules


def compute(
    rules: dict[str, Rule], kind: str, ended_on: dt.date | None, head_date: dt.date | None
) -> tuple[str, dt.date | None]:
    """(retention basis, 削除予定日) of one person; ``head_date`` is the employee's date."""
    rule = rules[kind]
    own = delete_after(rule, ended_on)
    if kind == PersonKind.DEPENDENT and rule.follow_household:
        candidates = [d for d in (own, head_date) if d is not None]
        return rule.label, min(candidates) if candidates else None
    return rule.label, own


def recompute(session: Session, batch_size: int = 2000) -> int:
    """Bring every stored person's basis and 削除予定日 up to date; returns how many changed.
    Idempotent (the weekly job and every rule change call it); the caller commits."""
    rules = load_rules(session)
    head_dates: dict[uuid.UUID, dt.date | None] = {}
    changes: list[dict] = []
    changed = 0

    def flush() -> None:
        nonlocal changes
        if changes:
            session.execute(update(Person), changes)
            changes = []

    columns = (
        Person.id,
        Person.kind,
        Person.ended_on,
        Person.household_head_id,
        Person.retention_basis,
        Person.delete_after,
    )
    # Employees and external members first, so dependents can follow their employee. Keyset
    # pages (not one open cursor) because the updates go to the table being read.
    for dependents in (False, True):
        kind_filter = (
            Person.kind == PersonKind.DEPENDENT
            if dependents
            else Person.kind != PersonKind.DEPENDENT
        )
        last = None
        while True:
            query = select(*columns).where(stored(), kind_filter)
            if last is not None:
                query = query.where(Person.id > last)
            rows = session.execute(query.order_by(Person.id).limit(batch_size)).all()
            if not rows:
                break
            last = rows[-1].id
            for row in rows:
                head = head_dates.get(row.household_head_id) if dependents else None
                basis, date = compute(rules, row.kind, row.ended_on, head)
                if not dependents and row.kind == PersonKind.EMPLOYEE:
                    head_dates[row.id] = date
                if basis != row.retention_basis or date != row.delete_after:
                    changes.append({"id": row.id, "retention_basis": basis, "delete_after": date})
                    changed += 1
            flush()
    flush()
    return changed


def due_query(today: dt.date | None = None):
    """Stored people whose 削除予定日 has come (today in JST)."""
    today = today or jptime.today_jst()
    return select(Person).where(
        stored(), Person.delete_after.is_not(None), Person.delete_after <= today
    )


def due_ids(session: Session, today: dt.date | None = None) -> list[uuid.UUID]:
    query = due_query(today).with_only_columns(Person.id).order_by(Person.id)
    return list(session.execute(query).scalars())


def counts(session: Session, today: dt.date | None = None, upcoming_days: int = 90) -> dict:
    today = today or jptime.today_jst()

    def count(*where) -> int:
        return session.execute(select(func.count(Person.id)).where(stored(), *where)).scalar_one()

    return {
        "due": count(Person.delete_after.is_not(None), Person.delete_after <= today),
        "upcoming": count(
            Person.delete_after > today,
            Person.delete_after <= today + dt.timedelta(days=upcoming_days),
        ),
        "no_date": count(Person.delete_after.is_(None)),
        "active": count(),
    }


def set_rule(
    session: Session,
    actor: Actor,
    kind: str,
    anchor: str,
    years: int,
    label: str,
    follow_household: bool | None = None,
) -> int:
    """Change a rule (audited first, in the same transaction), then recompute every date."""
    if kind not in PersonKind.ALL:
        raise RetentionError(f"本人区分が不正です: {kind}")
    if anchor not in ANCHORS:
        raise RetentionError(f"起算点が不正です: {anchor}（{', '.join(ANCHORS)} のいずれか）")
    if not 0 <= years <= MAX_YEARS:
        raise RetentionError(f"保存年数は0〜{MAX_YEARS}年で入力してください")
    label = (label or "").strip()
    if not label or len(label) > 200:
        raise RetentionError("根拠（説明）を200文字以内で入力してください")
    rule = session.get(RetentionRule, kind)
    if rule is None:
        raise RetentionError(f"保管期間のルールがありません: {kind}")
    before = {"anchor": rule.anchor, "years": rule.years, "follow": rule.follow_household}
    trail.record(
        session,
        actor,
        "retention.rule_changed",
        object_type="retention_rule",
        object_ids=[kind],
        details={
            "before": before,
            "after": {
                "anchor": anchor,
                "years": years,
                "follow": rule.follow_household if follow_household is None else follow_household,
            },
        },
    )
    rule.anchor, rule.years, rule.label = anchor, years, label
    if follow_household is not None:
        rule.follow_household = follow_household
    rule.updated_at, rule.updated_by = utcnow(), actor.name
    session.flush()
    changed = recompute(session)
    session.commit()
    return changed
