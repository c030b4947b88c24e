"""Keeping the records right (HR staff in the portal): people, households, names, numbers.

- add a person (employee or external member) and add or remove a dependent (扶養の追加・削除);
  the 扶養者コード of the remaining dependents is re-numbered 01, 02, … in their order;
- edit a person (職員番号 / 委員番号, kana, birth date, 続柄, postal code, address);
- record 退職 / 委嘱終了 (the date the retention period starts from);
- 氏名変更 with history (``NameChange``), the person row keeping the current name;
- replace a number the municipality re-issued: the old record stays, encrypted, ``superseded``.

Every value goes through the import's rules (``app.core.fields``); every change is audited in the
same transaction with the names of the fields that changed — never a number, never old or new
values of personal fields. A removed dependent keeps its records (status ``removed``, with the
date) until disposal; it no longer appears in the household, searches or exports.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core import fields as F
from app.core import jptime
from app.core.actor import Actor
from app.models import MyNumberRecord, NameChange, Person, PersonKind, utcnow
from app.people import registry
from app.vault.envelopes import Vault

REMOVED = "removed"
LABELS = {
    "code": "職員番号・委員番号",
    "name": "氏名",
    "name_kana": "氏名カナ",
    "birth_date": "生年月日",
    "relation": "続柄",
    "postal_code": "郵便番号",
    "address": "住所",
    "email": "メールアドレス",
    "number": "個人番号",
    "ended_on": "日付",
    "changed_on": "変更日",
    "reason": "理由",
}


class RecordError(ValueError):
    """Every problem with the input, each as ``項目: 理由`` (Japanese, never a value)."""

    def __init__(self, problems: list[str]):
        super().__init__("、".join(problems))
        self.problems = problems


@dataclass
class _Checker:
    problems: list[str]

    def run(self, key: str, func, raw, *args):
        try:
            return func(raw, *args)
        except F.FieldError as exc:
            self.problems.append(f"{LABELS[key]}: {exc}")
            return None

    def done(self) -> None:
        if self.problems:
            raise RecordError(self.problems)


_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _email(raw: str | None, check: _Checker) -> str | None:
    text = (raw or "").strip()
    if not text:
        return None
    if len(text) > 254 or not _EMAIL.match(text):
        check.problems.append(f"{LABELS['email']}: 形式が正しくありません（例: taro@example.jp）")
        return None
    return text


def _require(actor: Actor) -> None:
    policy.require(actor, "can_edit", "People")


def _reason(raw: str | None, check: _Checker, required: bool = False) -> str | None:
    text = (raw or "").strip()
    if not text:
        if required:
            check.problems.append(f"{LABELS['reason']}: 入力されていません")
        return None
    if len(text) > 200:
        check.problems.append(f"{LABELS['reason']}: 200文字以内で入力してください")
        return None
    try:
        return F.clean_address(text)  # free text: no control characters, no 12-digit runs
    except F.FieldError as exc:
        check.problems.append(f"{LABELS['reason']}: {exc}")
        return None


def get_active(session: Session, person_id: uuid.UUID) -> Person:
    person = session.get(Person, person_id)
    if person is None or person.status != "active":
        raise LookupError("指定された人物は見つかりません")
    return person


def _code_taken(session: Session, kind: str, code: str, but: uuid.UUID | None = None) -> bool:
    kinds = (PersonKind.EXTERNAL,) if kind == PersonKind.EXTERNAL else (PersonKind.EMPLOYEE,)
    query = select(Person.id).where(
        Person.status == "active", Person.kind.in_(kinds), Person.code == code
    )
    if but is not None:
        query = query.where(Person.id != but)
    return session.execute(query).first() is not None


def _new_number(session: Session, vault: Vault, check: _Checker, raw: str | None) -> str | None:
    """The optional number typed for a new person, validated exactly like an imported one; a
    number already stored for someone else is a problem, never a second owner."""
    if not (raw or "").strip():
        return None
    number = check.run("number", F.clean_number, raw)
    if number and registry.find_by_number(session, vault, number) is not None:
        check.problems.append(f"{LABELS['number']}: この個人番号は既に別の人物に登録されています")
    return number


def add_from_form(session: Session, vault: Vault, actor: Actor, kind: str, form: dict) -> Person:
    """A new employee or external member as HR staff typed them: every field checked, the
    person made by ``registry.add_person``, audited, committed. The number is optional
    (collected later)."""
    _require(actor)
    if kind not in (PersonKind.EMPLOYEE, PersonKind.EXTERNAL):
        raise RecordError(["区分: 役職員または外部委員等を選んでください"])
    check = _Checker([])
    code = check.run("code", F.clean_code, form.get("code"))
    name = check.run("name", F.clean_name, form.get("name"))
    kana = check.run("name_kana", F.clean_kana, form.get("name_kana"))
    birth = check.run("birth_date", F.clean_date, form.get("birth_date"))
    postal = check.run("postal_code", F.clean_postal_code, form.get("postal_code"))
    address = check.run("address", F.clean_address, form.get("address"))
    number = _new_number(session, vault, check, form.get("number"))
    if code and _code_taken(session, kind, code):
        check.problems.append(f"{LABELS['code']}: {code} は既に登録されています")
    check.done()
    person = registry.add_person(
        session,
        vault,
        kind=kind,
        name=name,
        code=code,
        name_kana=kana,
        birth_date=birth,
        address=address,
        postal_code=postal,
    )
    if number:
        registry.register_number(session, vault, person, number, "manual")
    trail.record(
        session,
        actor,
        "person.add",
        object_type="person",
        object_ids=[person.id],
        details={
            "kind": kind,
            "fields": sorted(k for k, v in form.items() if (v or "").strip() and k != "number"),
            "number": bool(number),
        },
    )
    session.commit()
    return person


def add_dependent(
    session: Session, vault: Vault, actor: Actor, head_id: uuid.UUID, form: dict
) -> Person:
    """扶養の追加: the next 扶養者コード of the household."""
    _require(actor)
    head = get_active(session, head_id)
    if head.kind != PersonKind.EMPLOYEE:
        raise RecordError(["扶養者: 扶養親族は役職員に追加します"])
    check = _Checker([])
    name = check.run("name", F.clean_name, form.get("name"))
    kana = check.run("name_kana", F.clean_kana, form.get("name_kana"))
    birth = check.run("birth_date", F.clean_date, form.get("birth_date"))
    relation = check.run("relation", F.clean_relation, form.get("relation"))
    number = _new_number(session, vault, check, form.get("number"))
    check.done()
    seqs = [d.dependent_seq for d in head.dependents if d.status == "active"]
    seq = max(seqs, default=0) + 1
    if seq > 99:
        raise RecordError(["扶養者コード: 連番は99までです"])
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name=name,
        name_kana=kana,
        birth_date=birth,
        household_head=head,
        dependent_seq=seq,
        relation=relation,
    )
    if number:
        registry.register_number(session, vault, person, number, "manual")
    trail.record(
        session,
        actor,
        "dependent.add",
        object_type="person",
        object_ids=[person.id, head.id],
        details={"dependent_code": person.dependent_code, "number": bool(number)},
    )
    session.commit()
    return person


def edit_person(
    session: Session, vault: Vault, actor: Actor, person_id: uuid.UUID, form: dict
) -> list[str]:
    """Change what the form holds; returns (and audits) the names of the changed fields.

    Changing an employee's 職員番号 changes the 扶養者コード of the whole household. The name
    changes only through ``change_name`` (with history); the address is replaced only when a
    new one is typed (it is never shown back)."""
    _require(actor)
    person = get_active(session, person_id)
    check = _Checker([])
    changes: dict[str, object] = {}
    if person.kind != PersonKind.DEPENDENT and "code" in form:
        code = check.run("code", F.clean_code, form.get("code"))
        if code and code != person.code:
            if _code_taken(session, person.kind, code, but=person.id):
                check.problems.append(f"{LABELS['code']}: {code} は既に登録されています")
            changes["code"] = code
    if "name_kana" in form:
        kana = check.run("name_kana", F.clean_kana, form.get("name_kana"))
        if kana != person.name_kana and not (kana is None and not person.name_kana):
            changes["name_kana"] = kana
    if "birth_date" in form:
        birth = check.run("birth_date", F.clean_date, form.get("birth_date"))
        if birth and birth != person.birth_date:
            changes["birth_date"] = birth
    if person.kind == PersonKind.DEPENDENT and "relation" in form:
        relation = check.run("relation", F.clean_relation, form.get("relation"))
        if relation != person.relation:
            changes["relation"] = relation
    if "postal_code" in form:
        postal = check.run("postal_code", F.clean_postal_code, form.get("postal_code"))
        if postal != person.postal_code:
            changes["postal_code"] = postal
    if (form.get("address") or "").strip():
        address = check.run("address", F.clean_address, form.get("address"))
        if address:
            changes["address"] = address
    if "email" in form:
        # The client's staff correct a contact a target list reported as different (a list
        # never changes it by itself, app.collection.targets).
        email = _email(form.get("email"), check)
        if email != person.email and not (email is None and not person.email):
            changes["email"] = email
    check.done()
    if not changes:
        return []
    for key, value in changes.items():
        if key == "address":
            person.address_enc = vault.encrypt_for(
                session, person.id, "person", "address_enc", person.id, value
            )
        elif key == "code":
            person.code = value
            for dependent in person.dependents:
                if dependent.status != "disposed":  # a tombstone keeps no code
                    dependent.code = value
        else:
            setattr(person, key, value)
    person.updated_at = utcnow()
    changed = sorted(changes)
    trail.record(
        session,
        actor,
        "person.edit",
        object_type="person",
        object_ids=[person.id],
        details={"fields": changed},
    )
    session.commit()
    return changed


def change_name(
    session: Session,
    actor: Actor,
    person_id: uuid.UUID,
    form: dict,
) -> NameChange:
    """氏名変更: the new name from a date, the old one kept in the history."""
    _require(actor)
    person = get_active(session, person_id)
    check = _Checker([])
    name = check.run("name", F.clean_name, form.get("name"))
    kana = check.run("name_kana", F.clean_kana, form.get("name_kana"))
    changed_on = check.run("changed_on", F.clean_date, form.get("changed_on"), True, True)
    reason = _reason(form.get("reason"), check)
    if name == person.name and kana == person.name_kana:
        check.problems.append(f"{LABELS['name']}: 現在の氏名と同じです")
    check.done()
    entry = NameChange(
        person_id=person.id,
        old_name=person.name,
        old_kana=person.name_kana,
        new_name=name,
        new_kana=kana,
        changed_on=changed_on,
        reason=reason,
        recorded_at=utcnow(),
        recorded_by=actor.name,
    )
    session.add(entry)
    person.name = name
    person.name_kana = kana
    person.updated_at = utcnow()
    session.flush()
    trail.record(
        session,
        actor,
        "person.name_change",
        object_type="person",
        object_ids=[person.id],
        details={"fields": ["name", "name_kana"], "changed_on": changed_on.isoformat()},
    )
    session.commit()
    return entry


def replace_number(
    session: Session,
    vault: Vault,
    actor: Actor,
    person_id: uuid.UUID,
    form: dict,
) -> MyNumberRecord:
    """A re-issued number: the old record is kept encrypted and marked superseded."""
    _require(actor)
    person = get_active(session, person_id)
    check = _Checker([])
    number = check.run("number", F.clean_number, form.get("number"))
    reason = _reason(form.get("reason"), check, required=True)
    check.done()
    current = registry.active_record(session, person.id)
    index = vault.blind_index(number)
    if current is not None and current.blind_index == index:
        raise RecordError([f"{LABELS['number']}: 現在の個人番号と同じです"])
    holder = registry.find_by_number(session, vault, number)
    if holder is not None and holder.id != person.id:
        raise RecordError([f"{LABELS['number']}: この個人番号は既に別の人物に登録されています"])
    record = registry.register_number(session, vault, person, number, "manual")
    trail.record(
        session,
        actor,
        "number.replace" if current is not None else "number.add",
        object_type="person",
        object_ids=[person.id],
        details={
            "reason": reason,
            "superseded_record": str(current.id) if current is not None else None,
            "record": str(record.id),
        },
    )
    session.commit()
    return record


def record_end(session: Session, actor: Actor, person_id: uuid.UUID, form: dict) -> list[uuid.UUID]:
    """退職 / 委嘱終了: the date retention starts from (an employee's dependents with it)."""
    _require(actor)
    person = get_active(session, person_id)
    check = _Checker([])
    ended_on = check.run("ended_on", F.clean_date, form.get("ended_on"), True, True)
    check.done()
    touched = [person]
    if person.kind == PersonKind.EMPLOYEE:
        touched += [d for d in person.dependents if d.status == "active" and d.ended_on is None]
    for item in touched:
        item.ended_on = ended_on
        item.updated_at = utcnow()
    trail.record(
        session,
        actor,
        "person.end",
        object_type="person",
        object_ids=[p.id for p in touched],
        details={"fields": ["ended_on"], "ended_on": ended_on.isoformat()},
    )
    session.commit()
    return [p.id for p in touched]


def remove_dependent(
    session: Session, actor: Actor, dependent_id: uuid.UUID, form: dict
) -> list[tuple[str, str]]:
    """扶養の削除: the dependent leaves the household (records kept until disposal) and the
    remaining dependents are re-numbered. Returns the 扶養者コード changes."""
    _require(actor)
    person = get_active(session, dependent_id)
    if person.kind != PersonKind.DEPENDENT or person.household_head is None:
        raise RecordError(["扶養親族: 扶養親族ではありません"])
    check = _Checker([])
    ended_on = check.run("ended_on", F.clean_date, form.get("ended_on"), True, True)
    reason = _reason(form.get("reason"), check)
    check.done()
    head = person.household_head
    old_code = person.dependent_code
    person.status = REMOVED
    person.ended_on = ended_on
    person.updated_at = utcnow()
    session.flush()
    renumbered = _renumber(head)
    trail.record(
        session,
        actor,
        "dependent.remove",
        object_type="person",
        object_ids=[person.id, head.id],
        details={
            "dependent_code": old_code,
            "ended_on": ended_on.isoformat(),
            "reason": reason,
            "renumbered": renumbered,
        },
    )
    session.commit()
    return renumbered


def renumber(session: Session, actor: Actor, head_id: uuid.UUID) -> list[tuple[str, str]]:
    """Close the gaps in a household's 扶養者コード (01, 02, … in their current order)."""
    _require(actor)
    head = get_active(session, head_id)
    if head.kind != PersonKind.EMPLOYEE:
        raise RecordError(["扶養者: 役職員を指定してください"])
    renumbered = _renumber(head)
    if renumbered:
        trail.record(
            session,
            actor,
            "dependent.renumber",
            object_type="person",
            object_ids=[head.id],
            details={"renumbered": renumbered},
        )
    session.commit()
    return renumbered


def _renumber(head: Person) -> list[tuple[str, str]]:
    active = sorted(
        (d for d in head.dependents if d.status == "active"),
        key=lambda d: (d.dependent_seq, d.created_at or utcnow()),
    )
    changes = []
    for seq, dependent in enumerate(active, start=1):
        if dependent.dependent_seq != seq:
            old = dependent.dependent_code
            dependent.dependent_seq = seq
            dependent.updated_at = utcnow()
            changes.append((old, dependent.dependent_code))
    return changes


def history(session: Session, person_id: uuid.UUID) -> dict:
    """What the records page shows: number records (masked), name changes, removed members."""
    records = session.execute(
        select(MyNumberRecord)
        .where(MyNumberRecord.person_id == person_id)
        .order_by(MyNumberRecord.registered_at)
    ).scalars()
    names = session.execute(
        select(NameChange)
        .where(NameChange.person_id == person_id)
        .order_by(NameChange.changed_on, NameChange.id)
    ).scalars()
    return {"numbers": list(records), "names": list(names)}


def today() -> dt.date:
    return jptime.today_jst()
