"""People and their numbers: register, search, 照合, reveal.

Views, CLI and jobs all call these functions; none of them decrypts a number by itself. Every
search and every reveal is audited; a reveal's event is committed before the plaintext exists.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import cache

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from app.access import assignments, policy
from app.audit import canary, trail
from app.core import fields as F
from app.core import mynumber
from app.core.actor import Actor
from app.models import MyNumberRecord, Person, PersonKind, utcnow
from app.vault.envelopes import Vault, hold_kek


class DuplicateNumber(ValueError):
    """The number is already the active number of another person."""


@dataclass(frozen=True)
class SearchCriteria:
    code: str | None = None
    name: str | None = None
    kana: str | None = None
    birth_date: dt.date | None = None
    number: str | None = None
    kind: str | None = None

    def fields(self) -> list[str]:
        """The criteria that were given, by name (code, name, kana, birth_date, number, kind)."""
        return [f for f in SEARCH_FIELDS if getattr(self, f)]

    def describe(self) -> dict:
        """What the audit log may say about the search: which fields were given, never a
        value. A number typed into the name or code field (or the number field) would
        otherwise stay in the append-only log for as long as the log lives."""
        return {"fields": self.fields()}

    def number_in_text_field(self) -> str | None:
        """The first free-text criterion (code, name, kana) that holds a number, if any."""
        for name in TEXT_FIELDS:
            if mynumber.contains_number(getattr(self, name)):
                return name
        return None


SEARCH_FIELDS = ("code", "name", "kana", "birth_date", "number", "kind")
TEXT_FIELDS = ("code", "name", "kana")
FIELD_LABELS = {"code": "職員番号・委員番号", "name": "氏名", "kana": "カナ"}


class SearchRefused(ValueError):
    """A search that is not run; the message (Japanese) names the field, never its value."""


def add_person(
    session: Session,
    vault: Vault,
    *,
    kind: str,
    name: str,
    code: str | None = None,
    name_kana: str | None = None,
    birth_date: dt.date | None = None,
    address: str | None = None,
    postal_code: str | None = None,
    email: str | None = None,
    household_head: Person | None = None,
    dependent_seq: int = 0,
    relation: str | None = None,
) -> Person:
    """Create a person with their data key; the address is encrypted under that key."""
    if kind not in PersonKind.ALL:
        raise ValueError(f"本人区分が不正です: {kind}")
    if kind == PersonKind.DEPENDENT and household_head is None:
        raise ValueError("扶養親族には扶養者（役職員）が必要です")
    person = Person(
        id=uuid.uuid4(),
        kind=kind,
        code=code if kind != PersonKind.DEPENDENT else household_head.code,
        name=name,
        name_kana=name_kana,
        birth_date=birth_date,
        postal_code=postal_code,
        email=email,
        household_head_id=household_head.id if household_head else None,
        dependent_seq=dependent_seq,
        relation=relation,
    )
    session.add(person)
    hold_kek(session)  # no rotation or retirement until this key is stored
    dek, key_row = vault.new_data_key(person.id)
    session.add(key_row)
    if address:
        person.address_enc = vault.encrypt_field(
            dek, key_row.version, "person", "address_enc", person.id, address
        )
    session.flush()
    return person


def register_number(
    session: Session, vault: Vault, person: Person, raw_number: str, source: str
) -> MyNumberRecord:
    """Store a person's number: normalised, encrypted under their DEK, blind-indexed.

    A different number for the same person supersedes the old record (kept encrypted);
    the same number again is a no-op; a number held by someone else is refused.
    """
    number = mynumber.normalize(raw_number)
    index = vault.blind_index(number)
    holder = session.execute(
        select(MyNumberRecord).where(
            MyNumberRecord.blind_index == index, MyNumberRecord.status == "active"
        )
    ).scalar_one_or_none()
    if holder is not None:
        if holder.person_id == person.id:
            return holder
        raise DuplicateNumber("この個人番号は既に別の人物に登録されています")
    current = active_record(session, person.id)
    if current is not None:
        current.status = "superseded"
        current.superseded_at = utcnow()
        session.flush()
    dek, key_row = vault.ensure_data_key(session, person.id)
    record = MyNumberRecord(
        id=uuid.uuid4(),
        person_id=person.id,
        blind_index=index,
        last4=number[-4:],
        source=source,
        status="active",
    )
    record.ciphertext = vault.encrypt_field(
        dek, key_row.version, "my_number_record", "ciphertext", record.id, number
    )
    session.add(record)
    session.flush()
    return record


def active_record(session: Session, person_id: uuid.UUID) -> MyNumberRecord | None:
    return session.execute(
        select(MyNumberRecord).where(
            MyNumberRecord.person_id == person_id, MyNumberRecord.status == "active"
        )
    ).scalar_one_or_none()


def masked_number(session: Session, person_id: uuid.UUID) -> str:
    record = active_record(session, person_id)
    return mynumber.mask(record.last4 if record else None)


@cache
def _person_by_blind_index():
    """The person holding an active number, in one statement, through the partial unique index
    ``uq_my_number_active_blind_index``. ``status = 'active'`` is written as a literal: as a
    bound parameter, a prepared (generic) plan could not prove the index's predicate and would
    scan the table. Built once (composing it cost more CPU than the lookup's round trip)."""
    return (
        select(Person)
        .join(MyNumberRecord, MyNumberRecord.person_id == Person.id)
        .where(
            MyNumberRecord.blind_index == bindparam("blind_index"),
            text("my_number_record.status = 'active'"),
        )
    )


def find_by_number(session: Session, vault: Vault, raw_number: str) -> Person | None:
    """Exact lookup through the blind index: nothing is decrypted; one statement."""
    index = vault.blind_index(mynumber.normalize(raw_number))
    return session.execute(_person_by_blind_index(), {"blind_index": index}).scalar_one_or_none()


PAGE_SIZE = 50


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: the people shown and how many matched in all (never capped)."""

    people: list[Person]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """The 1-based position of the first person shown (0 when none)."""
        return (self.page - 1) * self.per_page + 1 if self.people else 0

    @property
    def last(self) -> int:
        return self.first + len(self.people) - 1 if self.people else 0


def search(session: Session, vault: Vault, actor: Actor, criteria: SearchCriteria) -> list[Person]:
    """Every person found (services and tests); the portal pages with ``search_page``."""
    return search_page(session, vault, actor, criteria, per_page=None).people


def search_page(
    session: Session,
    vault: Vault,
    actor: Actor,
    criteria: SearchCriteria,
    page: int = 1,
    per_page: int | None = PAGE_SIZE,
) -> SearchPage:
    """照合 by 職員番号/委員番号 (partial), name, kana (partial), birth date, or the number
    (exact). Names and kana compare as 照合 does (``fields.name_key``/``kana_key``: any width,
    any space, hiragana = katakana); the result is paged with the full count, never cut."""
    policy.require(actor, "can_search", "People")
    _refuse_number_in_text(session, actor, criteria)
    trail.record(
        session,
        actor,
        "people.search",
        object_type="person",
        details={"criteria": criteria.describe()},
        commit=True,
    )
    ids = _matching_ids(session, vault, criteria)
    size = per_page or max(1, len(ids))
    page = max(1, min(page, max(1, -(-len(ids) // size))))
    shown = ids[(page - 1) * size : page * size]
    by_id = {p.id: p for p in session.execute(select(Person).where(Person.id.in_(shown))).scalars()}
    people = [by_id[i] for i in shown if i in by_id]
    canary.trip(session, vault, actor, [p.id for p in people], "search")
    return SearchPage(people=people, total=len(ids), page=page, per_page=size)


def _refuse_number_in_text(session: Session, actor: Actor, criteria: SearchCriteria) -> None:
    """A number typed into a free-text field is refused (and audited), never searched for."""
    misplaced = criteria.number_in_text_field()
    if misplaced is None:
        return
    trail.record(
        session,
        actor,
        "people.search",
        object_type="person",
        outcome="denied",
        details={
            "criteria": criteria.describe(),
            "reason": "number_in_text_field",
            "field": misplaced,
        },
        commit=True,
    )
    raise SearchRefused(
        f"{FIELD_LABELS[misplaced]}に個人番号と思われる12桁の数字が含まれています。"
        "個人番号で検索するときは「個人番号（完全一致）」欄に入力してください。"
    )


def _matching_ids(session: Session, vault: Vault, criteria: SearchCriteria) -> list[uuid.UUID]:
    """The ids of every match in display order. Exact criteria filter in SQL; names and kana
    (stored exactly as written, in any width or script) compare in Python on their keys, over
    the three columns only."""
    query = select(Person.id, Person.name, Person.name_kana).where(Person.status == "active")
    if criteria.number:
        person = find_by_number(session, vault, criteria.number)
        if person is None:
            return []
        query = query.where(Person.id == person.id)
    if criteria.code and F.code_key(criteria.code):
        query = query.where(
            func.upper(Person.code).contains(F.code_key(criteria.code), autoescape=True)
        )
    if criteria.birth_date:
        query = query.where(Person.birth_date == criteria.birth_date)
    if criteria.kind:
        query = query.where(Person.kind == criteria.kind)
    query = query.order_by(Person.code, Person.dependent_seq, Person.name, Person.id)
    name = F.name_key(criteria.name) if criteria.name else ""
    kana = F.kana_key(criteria.kana) if criteria.kana else ""
    found = []
    for pid, person_name, person_kana in session.execute(query):
        if name and name not in F.name_key(person_name):
            continue
        if kana and kana not in F.kana_key(person_kana):
            continue
        found.append(pid)
    return found


def works_case(session: Session, actor: Actor, person_id: uuid.UUID) -> bool:
    """Does this Operator hold an open case of the person's household, claimed in a campaign
    a ClientStaff user assigned them to (``app.access.assignments``)? Opening a submission grants
    nothing by itself: the grant is the client's assignment plus the queue's one claimant."""
    return assignments.works_person(session, actor, person_id)


def check_reveal(session: Session, actor: Actor, person_id: uuid.UUID) -> None:
    """Raise PermissionDenied unless this actor may reveal this person's number now."""
    policy.require(actor, "can_reveal", "People")
    if policy.CLIENT_STAFF in policy.effective_roles(actor):
        return
    if policy.OPERATOR in policy.effective_roles(actor) and works_case(session, actor, person_id):
        return
    raise policy.PermissionDenied(
        "担当している案件の対象者のみ個人番号を表示できます"
        "（発注者担当者が割り当てたキャンペーンで、確認キューで担当中の案件に限ります）"
    )


def reveal(session: Session, vault: Vault, actor: Actor, person_id: uuid.UUID, purpose: str) -> str:
    """Decrypt one number for one stated purpose. The audit event is committed first;
    a refused attempt is audited too."""
    problem = trail.purpose_problem(purpose)
    purpose = (purpose or "").strip()
    try:
        if problem:
            raise policy.PermissionDenied(problem)
        check_reveal(session, actor, person_id)
    except policy.PermissionDenied as exc:
        trail.record(
            session,
            actor,
            "number.reveal",
            object_type="person",
            object_ids=[person_id],
            purpose=purpose or None,
            outcome="denied",
            details={"reason": str(exc)},
            commit=True,
        )
        raise
    record = active_record(session, person_id)
    if record is None:
        raise LookupError("この人物の個人番号は登録されていません")
    trail.record(
        session,
        actor,
        "number.reveal",
        object_type="person",
        object_ids=[person_id],
        purpose=purpose,
        commit=True,
    )
    canary.trip(session, vault, actor, [person_id], "reveal")
    return vault.decrypt_for(
        session, person_id, "my_number_record", "ciphertext", record.id, record.ciphertext
    )


def decrypt_address(session: Session, vault: Vault, person: Person) -> str | None:
    """The address, for staff who may see personal data (kits, returns)."""
    if not person.address_enc:
        return None
    return vault.decrypt_for(
        session, person.id, "person", "address_enc", person.id, person.address_enc
    )
