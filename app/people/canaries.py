"""Canary people: adding, listing and removing the fictitious people the tripwire guards
(``mynumber canary …``). The tripwire itself, and the key-ring secret that alone knows which
people are canaries, are in ``app.audit.canary``."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import canary, trail
from app.core import mynumber
from app.core.actor import Actor
from app.models import MyNumberRecord, Person, PersonKind
from app.people import registry
from app.vault.envelopes import Vault


# -- management (``mynumber canary …``) ---------------------------------------------------------
def random_number(session: Session, vault: Vault) -> str:
    """A valid-looking number (correct check digit) that no stored person holds."""
    for _ in range(100):
        first = str(secrets.randbelow(9) + 1) + "".join(
            str(secrets.randbelow(10)) for _ in range(10)
        )
        number = mynumber.make_valid(first)
        if registry.find_by_number(session, vault, number) is None:
            return number
    raise canary.CanaryError("未使用の番号を作れませんでした")


def add(
    session: Session,
    vault: Vault,
    actor: Actor,
    *,
    label: str,
    name: str,
    birth_date,
    kind: str = PersonKind.EMPLOYEE,
    code: str | None = None,
    name_kana: str | None = None,
    number: str | None = None,
) -> Person:
    """Store a canary as an ordinary person and remember it in the key ring only.

    The audit event is the same ``person.add`` an ordinary registration writes.
    """
    label = (label or "").strip()
    if not label or len(label) > 50 or mynumber.is_valid(label):
        raise canary.CanaryError("ラベル: 1〜50文字で指定してください（番号は使えません）")
    if kind not in (PersonKind.EMPLOYEE, PersonKind.EXTERNAL):
        raise canary.CanaryError("区分: employee または external を指定してください")
    key, tags = canary.read_tags(vault)
    if label in tags.values():
        raise canary.CanaryError(f"ラベル: {label} は既に使われています")
    if number:
        number = mynumber.normalize(number)
        if registry.find_by_number(session, vault, number) is not None:
            raise canary.CanaryError("個人番号: この番号は既に別の人物に登録されています")
    else:
        number = random_number(session, vault)
    person = registry.add_person(
        session, vault, kind=kind, name=name, code=code, name_kana=name_kana, birth_date=birth_date
    )
    registry.register_number(session, vault, person, number, "manual")
    fields = ["birth_date", "code", "name", "name_kana"]
    trail.record(
        session,
        actor,
        "person.add",
        object_type="person",
        object_ids=[person.id],
        details={
            "kind": kind,
            "fields": sorted(f for f in fields if {"code": code, "name_kana": name_kana}.get(f, 1)),
            "number": True,
        },
    )
    session.flush()
    # The key ring first: a canary the database has but the key ring lacks would be an
    # unguarded fake person; the reverse (key ring only) is harmless.
    key = key or secrets.token_bytes(32)
    tags[canary.person_tag(key, person.id)] = label
    canary.store_tags(vault, key, tags)
    session.commit()
    return person


def listing(session: Session, vault: Vault) -> list[canary.Canary]:
    """Every configured canary, found by computing the tag of each stored person."""
    key, tags = canary.read_tags(vault)
    if not tags:
        return []
    found: dict[str, canary.Canary] = {}
    for pid, name in session.execute(select(Person.id, Person.name)):
        label = tags.get(canary.person_tag(key, pid))
        if label is not None:
            found[label] = canary.Canary(label, pid, name, registry.masked_number(session, pid))
    return [
        found.get(label, canary.Canary(label, None, None, "（データベースにありません）"))
        for label in sorted(tags.values())
    ]


def remove(session: Session, vault: Vault, actor: Actor, label: str) -> canary.Canary:
    """Stop guarding a canary and destroy its fictitious record (crypto-shredded)."""
    key, tags = canary.read_tags(vault)
    entry = next((c for c in listing(session, vault) if c.label == label), None)
    if entry is None:
        raise canary.CanaryError(f"ラベル {label} のカナリアはありません")
    if entry.person_id is not None:
        person = session.get(Person, entry.person_id)
        vault.shred(session, [entry.person_id])
        for record in session.execute(
            select(MyNumberRecord).where(MyNumberRecord.person_id == entry.person_id)
        ).scalars():
            session.delete(record)
        person.status = "removed"
        person.address_enc = None
        trail.record(
            session,
            actor,
            "person.remove",
            object_type="person",
            object_ids=[entry.person_id],
            details={"reason": "removed"},
        )
        session.flush()
    canary.store_tags(vault, key, {t: lbl for t, lbl in tags.items() if lbl != label})
    session.commit()
    return entry
