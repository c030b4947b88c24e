"""CSV export in the client's layout (spec 5.4-3), for the CLI, the portal and bulk 照合.

The order of things is what makes an export accountable:

1. the permission and a purpose are checked (a refusal is audited too);
2. the manifest — who is in this export — is written to ``export_item`` (append-only);
3. the audit event (purpose, count, SHA-256 of the manifest, the ids themselves when few) is
   committed together with the manifest: fail closed, nothing is decrypted before this;
4. exactly the people of the manifest are read, decrypted one data key at a time, and
   written, with formulas neutralised.

``import`` then ``export`` with the same layout gives the same rows (order aside): the same
cells, dates in the layout's format, numbers as 12 digits.
"""

from __future__ import annotations

import hashlib
import operator
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import String, and_, cast, func, insert, literal, null, select, text
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import canary, trail
from app.core import fields as F
from app.core.actor import Actor
from app.io.bulk import (
    BulkWriter,
    Fetcher,
    Opener,
    collect_young,
    collector_paused,
    is_postgres,
    stream_query,
)
from app.io.layouts import Layout
from app.models import DataKey, ExportItem, MyNumberRecord, Person, PersonKind
from app.platform.csvio import FORMULA_START, CsvWriteError, CsvWriter, neutralise
from app.vault.envelopes import Vault

INLINE_IDS = 1000  # up to this many person ids also go into the audit event itself
BATCH = 5000


@dataclass(frozen=True)
class ExportResult:
    export_id: uuid.UUID
    count: int
    layout: str
    encoding: str
    manifest_sha256: str


class ExportRefused(Exception):
    """A Japanese reason the user may read (no purpose, nobody to export …)."""


def check_purpose(purpose: str | None) -> str:
    problem = trail.purpose_problem(purpose)
    if problem:
        raise ExportRefused(problem)
    return (purpose or "").strip()


def _refuse(session: Session, actor: Actor, action: str, purpose: str | None, reason: str):
    trail.record(
        session,
        actor,
        action,
        object_type="person",
        purpose=(purpose or "").strip() or None,
        outcome="denied",
        details={"reason": reason},
        commit=True,
    )


def manifest_digest(session: Session, export_id: uuid.UUID) -> tuple[int, str]:
    """Count and SHA-256 of an export's person ids, in the file's order, one per line.

    PostgreSQL computes it where the rows are; elsewhere they are streamed. Same digest."""
    if is_postgres(session):
        count, digest = session.execute(
            text(
                "SELECT count(*), encode(sha256(convert_to(coalesce(string_agg("
                "person_id::text || chr(10), '' ORDER BY position), ''), 'UTF8')), 'hex') "
                "FROM export_item WHERE export_id = :export_id"
            ),
            {"export_id": export_id},
        ).one()
        return count, digest
    digest = hashlib.sha256()
    count = 0
    query = (
        select(ExportItem.person_id)
        .where(ExportItem.export_id == export_id)
        .order_by(ExportItem.position)
    )
    for (person_id,) in stream_query(session, query, ["uuid"]):
        digest.update(f"{person_id}\n".encode("ascii"))
        count += 1
    return count, digest.hexdigest()


def manifest_ids(session: Session, export_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.execute(
            select(ExportItem.person_id)
            .where(ExportItem.export_id == export_id)
            .order_by(ExportItem.position)
        ).scalars()
    )


def _write_manifest(
    session: Session,
    export_id: uuid.UUID,
    layout: Layout,
    person_ids: Iterable[uuid.UUID] | None,
) -> None:
    """Who is in the export, in the file's order: 職員番号 then 扶養者コード, or the given order."""
    if person_ids is None:
        # Everyone of the layout's kind, chosen and numbered by the database in one statement.
        position = func.row_number().over(order_by=(Person.code, Person.dependent_seq, Person.id))
        session.execute(
            insert(ExportItem).from_select(
                ["export_id", "person_id", "position"],
                select(literal(export_id, ExportItem.export_id.type), Person.id, position).where(
                    Person.status == "active", Person.kind.in_(layout.person_kinds)
                ),
            )
        )
        return
    wanted: list[uuid.UUID] = list(dict.fromkeys(person_ids))
    # Only active people of the layout's kind can be written in it.
    allowed: set[uuid.UUID] = set()
    for start in range(0, len(wanted), BATCH):
        allowed.update(
            session.execute(
                select(Person.id).where(
                    Person.id.in_(wanted[start : start + BATCH]),
                    Person.status == "active",
                    Person.kind.in_(layout.person_kinds),
                )
            ).scalars()
        )
    rows = [(export_id, pid, n) for n, pid in enumerate((p for p in wanted if p in allowed), 1)]
    BulkWriter(session).write("export_item", rows)


def export_csv(
    session: Session,
    vault: Vault,
    actor: Actor,
    layout: Layout,
    out: BinaryIO,
    purpose: str,
    *,
    encoding: str | None = None,
    person_ids: Iterable[uuid.UUID] | None = None,
    context: dict | None = None,
) -> ExportResult:
    """Write the people of ``layout``'s kind (or exactly ``person_ids``) to ``out``.

    Audited before anything is decrypted; a refusal and a failure are audited too.
    """
    action = "numbers.export"
    try:
        policy.require(actor, "can_export", "Numbers")
        purpose = check_purpose(purpose)
    except (policy.PermissionDenied, ExportRefused) as exc:
        _refuse(session, actor, action, purpose, str(exc))
        raise
    encoding = encoding or layout.encoding
    if encoding not in ("utf-8-sig", "cp932"):
        raise ExportRefused("出力の文字コードは utf-8-sig または cp932 です")

    export_id = uuid.uuid4()
    _write_manifest(session, export_id, layout, person_ids)
    count, digest = manifest_digest(session, export_id)
    inline = manifest_ids(session, export_id) if count <= INLINE_IDS else []
    trail.record(
        session,
        actor,
        action,
        object_type="person",
        object_ids=inline,
        purpose=purpose,
        details={
            "export_id": str(export_id),
            "layout": layout.name,
            "kind": layout.kind,
            "encoding": encoding,
            "count": count,
            "manifest_sha256": digest,
            "ids_in": "object_ids" if inline or count == 0 else "export_item",
            **(context or {}),
        },
        commit=True,
    )
    if canary.configured(vault):
        canary.trip(session, vault, actor, manifest_ids(session, export_id), "export")
    try:
        with collector_paused():
            _write_rows(session, vault, layout, export_id, count, out, encoding)
    except BaseException as exc:
        session.rollback()
        trail.record(
            session,
            actor,
            action,
            object_type="person",
            purpose=purpose,
            outcome="failure",
            details={"export_id": str(export_id), "error": type(exc).__name__},
            commit=True,
        )
        raise
    session.rollback()  # the read transaction; nothing to keep
    return ExportResult(export_id, count, layout.name, encoding, digest)


def _write_rows(
    session: Session,
    vault: Vault,
    layout: Layout,
    export_id: uuid.UUID,
    count: int,
    out: BinaryIO,
    encoding: str,
) -> None:
    want_address = "address" in layout.fields
    want_number = "number" in layout.fields
    record = MyNumberRecord.__table__.alias("r")
    key = DataKey.__table__.alias("k")
    person = Person.__table__.alias("p")
    item = ExportItem.__table__.alias("e")
    query = (
        select(
            cast(person.c.id, String).label("pid"),
            person.c.kind,
            person.c.code,
            person.c.dependent_seq,
            person.c.relation,
            person.c.name,
            person.c.name_kana,
            person.c.birth_date,
            person.c.postal_code,
            person.c.address_enc if want_address else null(),
            person.c.ended_on,
            cast(key.c.id, String),
            key.c.kek_version,
            key.c.wrapped,
            cast(record.c.id, String) if want_number else null(),
            record.c.ciphertext if want_number else null(),
        )
        .select_from(item)
        .join(person, person.c.id == item.c.person_id)
        .outerjoin(key, key.c.person_id == person.c.id)
        .outerjoin(record, and_(record.c.person_id == person.c.id, record.c.status == "active"))
        .where(item.c.export_id == export_id)
        .order_by(item.c.position)
    )
    if is_postgres(session):
        session.execute(text("SET LOCAL jit = off"))  # many small queries: compiling costs more
    opener = Opener(vault)
    writer = CsvWriter(out, encoding, layout.headers)
    pick = operator.itemgetter(*[_SLOTS[f] for f in layout.fields])
    single = len(layout.fields) == 1
    dates = _DateCache(layout.format_date)
    hyphenate = not is_postgres(session)  # SQLite hands UUIDs back as 32 hex digits
    # A formula start, or our own prefix ``'`` (so a stored ``'=…`` keeps its quote when read
    # back): the rare cells that ``neutralise`` must look at; every other cell is written as is.
    suspect = FORMULA_START | {"'"}
    person_key, open_field = opener.person_key, opener.open_field
    batch: list[list[str]] = []
    for row in _in_order(session, query, item.c.position, count):
        (pid, kind, code, seq, relation, name, kana, birth, postal, address_enc, ended_on,
         key_id, kek_version, wrapped, record_id, ciphertext) = row  # fmt: skip
        if hyphenate:
            pid, key_id, record_id = _hyphenated(pid), _hyphenated(key_id), _hyphenated(record_id)
        number = address = ""
        if ciphertext is not None or address_enc is not None:
            if key_id is None:
                raise ExportRefused("データ鍵のない人物が含まれています（破棄済みの可能性）")
            aead = person_key(key_id, pid, kek_version, wrapped)
            if ciphertext is not None:
                number = open_field(aead, "my_number_record", "ciphertext", record_id, ciphertext)
            if address_enc is not None:
                address = open_field(aead, "person", "address_enc", pid, address_enc)
        if kind == PersonKind.EXTERNAL:
            kubun = dependent_code = ""
        else:
            kubun = "本人" if kind == PersonKind.EMPLOYEE else F.KUBUN_DEPENDENT
            dependent_code = f"{code}-{seq:02d}" if code else ""
        values = (
            code or "", name, kana or "", kubun, dependent_code, relation or "",
            dates(birth), postal or "", address, dates(ended_on), number,
        )  # fmt: skip
        cells = [pick(values)] if single else pick(values)
        # Neutralise formulas inline: the writer's per-cell call only for the rare suspects.
        batch.append([neutralise(c) if c[:1] in suspect else c for c in cells])
        if len(batch) >= BATCH:
            writer.write_rows(batch, neutral=False)
            batch = []
            collect_young()
    writer.write_rows(batch, neutral=False)


def _in_order(session: Session, query, position, count: int):
    """The manifest's rows, a slice of positions at a time: each slice is a few index probes
    per person on the server and a bounded list here, so neither side ever sorts or holds the
    whole export. On PostgreSQL the next slice is fetched on a second thread while this one is
    decrypted (the wait for the server releases the GIL); only that thread touches the
    connection meanwhile."""
    fetch = Fetcher(session)
    slices = [
        query.where(position > start, position <= start + BATCH) for start in range(0, count, BATCH)
    ]
    if not fetch.postgres or len(slices) < 2:
        for piece in slices:
            yield from fetch(piece)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="mnv-export") as pool:
        pending = pool.submit(fetch, slices[0])
        for following in [*slices[1:], None]:
            rows = pending.result()
            if following is not None:
                pending = pool.submit(fetch, following)
            yield from rows


# Where each layout field sits in the values tuple built per row in _write_rows.
_SLOTS = {
    "code": 0,
    "name": 1,
    "name_kana": 2,
    "kubun": 3,
    "dependent_code": 4,
    "relation": 5,
    "birth_date": 6,
    "postal_code": 7,
    "address": 8,
    "ended_on": 9,
    "number": 10,
}


class _DateCache(dict):
    """Formatted dates by value: a staff list has far fewer distinct dates than rows."""

    def __init__(self, fmt):
        super().__init__()
        self._fmt = fmt

    def __call__(self, value) -> str:
        if value is None:
            return ""
        text_ = self.get(value)
        if text_ is None:
            text_ = self[value] = self._fmt(value)
        return text_


def _hyphenated(value) -> str | None:
    """The canonical UUID text the AAD uses."""
    if value is None:
        return None
    text_ = str(value)
    return str(uuid.UUID(text_)) if len(text_) == 32 else text_


__all__ = ["CsvWriteError", "ExportRefused", "ExportResult", "export_csv", "manifest_digest"]
