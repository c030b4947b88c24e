"""Disposals and retired KEKs recorded outside the database, and re-applying them.

A restored backup, or a database rolled back by any other means, must never bring a disposed
person back. So before a disposal changes the database, the disposed person ids and data-key
ids are written where no database restore reaches: the key ring (``disposed_people`` and the
shred list) and the disposal journal (one JSON line per disposal, appended and fsynced).
The KEKs a key closure retires are appended to the journal too (by fingerprint), so that a key
ring restored from an older backup drops them again (``app.lifecycle.backup.restore_keyring``).

``reapply`` (at ``mynumber init``, ``mynumber run`` and after ``mynumber restore``) merges the
key ring and the journal and disposes again of anyone the database still holds.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import trail
from app.core.actor import Actor
from app.lifecycle import holders
from app.models import DataKey, Person, utcnow
from app.vault.envelopes import Vault

log = logging.getLogger(__name__)

DISPOSED_SECTION = "disposed_people"  # key-ring section name, not a secret


# -- outside the database ------------------------------------------------------------------
def _journal_lines(path: str | Path | None) -> list[dict]:
    """Every readable line of the journal; an unreadable one is logged (by number, no content)
    and skipped, so one torn write cannot hide every other disposal."""
    if not path or not Path(path).exists():
        return []
    lines = []
    for line_no, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if text.strip():
            try:
                lines.append(json.loads(text))
            except ValueError:
                log.error("disposal journal line %s is unreadable", line_no)
    return lines


def disposed_outside(keys, journal: str | Path | None) -> tuple[set[str], set[str]]:
    """(person ids, data-key ids) disposed according to the key ring and the journal."""
    section = keys.get_secret(DISPOSED_SECTION) or {}
    people = set(section.get("people", []))
    data_keys = set(keys.shredded())
    for line in _journal_lines(journal):
        people |= set(line.get("people", []))
        data_keys |= set(line.get("data_keys", []))
    return people, data_keys


def retired_outside(journal: str | Path | None) -> set[str]:
    """Fingerprints of the KEKs retired by key closures, from the journal: a key ring
    restored from an older backup must not bring them back."""
    found: set[str] = set()
    for line in _journal_lines(journal):
        found |= {str(r["fingerprint"]) for r in line.get("retired_keks", [])}
    return found


def _append_journal(journal: str | Path | None, line: dict) -> None:
    if not journal:
        return
    path = Path(journal)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def record_retired_outside(keys, journal: str | Path | None, requests: Iterable = ()) -> list:
    """Append the ring's retired KEKs (version and fingerprint) to the journal, where a key
    ring restored from an older backup is checked against them; returns them."""
    retired = keys.retired()
    _append_journal(
        journal,
        {
            "at": utcnow().isoformat(),
            "requests": sorted(str(i) for i in requests),
            "retired_keks": retired,
        },
    )
    return retired


def remember_people(keys, person_ids: Iterable[str]) -> None:
    """Add person ids to the key ring's ``disposed_people`` section (written only on a change)."""
    section = keys.get_secret(DISPOSED_SECTION) or {"format": 1, "people": []}
    merged = set(section.get("people", [])) | {str(i) for i in person_ids}
    if len(merged) != len(section.get("people", [])):
        keys.set_secret(DISPOSED_SECTION, {"format": 1, "people": sorted(merged)})


def record_outside(
    keys,
    journal: str | Path | None,
    request_id,
    person_ids: list[uuid.UUID],
    key_ids: list[str],
) -> None:
    """Write the disposal where no database restore reaches: journal line, key ring."""
    _append_journal(
        journal,
        {
            "request": str(request_id),
            "at": utcnow().isoformat(),
            "people": sorted(str(i) for i in person_ids),
            "data_keys": sorted(key_ids),
        },
    )
    remember_people(keys, [str(i) for i in person_ids])
    keys.record_shredded(key_ids)


# -- re-application ------------------------------------------------------------------------------
@dataclass
class Reapplied:
    """How many disposed people and destroyed data keys the database still held."""

    people: int = 0
    data_keys: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.people or self.data_keys)


def reapply(
    session: Session, vault: Vault, actor: Actor, journal: str | Path | None, compact: bool = True
) -> Reapplied:
    """Dispose again of anyone a restored (or rolled-back) database brought back.

    The key ring and the journal are merged first (either may be the older one, e.g. after a
    key ring was restored from its backup); then every destroyed data key still in the
    database is deleted and every disposed person still holding data is purged and scrubbed.
    """
    people, key_ids = disposed_outside(vault.keys, journal)
    if key_ids - vault.keys.shredded():
        vault.keys.record_shredded(sorted(key_ids - vault.keys.shredded()))
    remember_people(vault.keys, people)
    shredded = vault.keys.shredded()
    present_keys = [k for k in session.execute(select(DataKey.id)).scalars() if str(k) in shredded]
    alive: list[uuid.UUID] = []
    wanted = sorted(uuid.UUID(p) for p in people)
    for batch in holders.batches(wanted):
        alive += session.execute(
            select(Person.id).where(Person.id.in_(batch), Person.status != "disposed")
        ).scalars()
    result = Reapplied(people=len(alive), data_keys=len(present_keys))
    if not result.changed:
        return result
    trail.record(
        session,
        actor,
        "disposal.reapplied",
        object_type="person",
        object_ids=alive[: holders.BATCH],
        details={
            "people": len(alive),
            "data_keys": len(present_keys),
            "ids_sha256": holders.ids_digest(alive),
        },
    )
    vault.apply_shred_list(session)
    if alive:
        holders.dispose_people(session, vault, alive)
    session.commit()
    if compact:
        holders.compact_storage(session, holders.touched_tables())
    return result
