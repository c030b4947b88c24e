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
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import String, and_, cast, insert, literal, null, select
from sqlalchemy.orm import Session

from app import audit, policy
from app.audit import Actor
from app.io.bulk import BulkWriter, Opener, stream_query
from app.io.csvio import CsvWriteError, CsvWriter
from app.io.layouts import Layout
from app.models import DataKey, ExportItem, MyNumberRecord, Person, PersonKind
from app.vault import Vault

INLINE_IDS = 1000  # up to this many person ids also go into the audit event itself
PURPOSE_MAX = 500
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
    text = (purpose or "").strip()
    if not text:
        raise ExportRefused("利用目的を入力してください")
    if len(text) > PURPOSE_MAX:
        raise ExportRefused(f"利用目的は{PURPOSE_MAX}文字以内で入力してください")
    return text


def _refuse(session: Session, actor: Actor, action: str, purpose: str | None, reason: str):
    audit.record(
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
    """Count and SHA-256 of an export's person ids (sorted, one per line)."""
    digest = hashlib.sha256()
    count = 0
    query = (
        select(ExportItem.person_id)
        .where(ExportItem.export_id == export_id)
        .order_by(ExportItem.person_id)
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
            .order_by(ExportItem.position, ExportItem.person_id)
        ).scalars()
    )


def _write_manifest(
    session: Session,
    export_id: uuid.UUID,
    layout: Layout,
    person_ids: Iterable[uuid.UUID] | None,
) -> None:
    if person_ids is None:
        # Everyone of the layout's kind, chosen by the database in one statement.
        session.execute(
            insert(ExportItem).from_select(
                ["export_id", "person_id", "position"],
                select(literal(export_id, ExportItem.export_id.type), Person.id, null()).where(
                    Person.status == "active", Person.kind.in_(layout.person_kinds)
                ),
            )
        )
        return
    writer = BulkWriter(session)
    seen: set[uuid.UUID] = set()
    rows = []
    for position, person_id in enumerate(person_ids):
        if person_id in seen:
            continue
        seen.add(person_id)
        rows.append((export_id, person_id, position))
    # Only people of the layout's kind can be written in it.
    allowed = set()
    for start in range(0, len(rows), BATCH):
        chunk = [r[1] for r in rows[start : start + BATCH]]
        allowed.update(
            session.execute(
                select(Person.id).where(
                    Person.id.in_(chunk),
                    Person.status == "active",
                    Person.kind.in_(layout.person_kinds),
                )
            ).scalars()
        )
    writer.write("export_item", [r for r in rows if r[1] in allowed])


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
    audit.record(
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
    try:
        _write_rows(session, vault, layout, export_id, out, encoding)
    except BaseException as exc:
        session.rollback()
        audit.record(
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
        .order_by(item.c.position, person.c.code, person.c.dependent_seq, person.c.id)
    )
    types = [
        "text", "text", "text", "int4", "text", "text", "text", "date", "text", "bytea",
        "date", "text", "int4", "bytea", "text", "bytea",
    ]  # fmt: skip
    opener = Opener(vault)
    writer = CsvWriter(out, encoding, layout.headers)
    fmt = layout.format_date
    getters = [_getter(f, fmt) for f in layout.fields]
    batch: list[list[str]] = []
    for row in stream_query(session, query, types):
        (pid, kind, code, seq, relation, name, kana, birth, postal, address_enc, ended_on,
         key_id, kek_version, wrapped, record_id, ciphertext) = row  # fmt: skip
        pid = _uuid_text(pid)
        number = address = ""
        if ciphertext is not None or address_enc is not None:
            if key_id is None:
                raise ExportRefused("データ鍵のない人物が含まれています（破棄済みの可能性）")
            aead = opener.person_key(_uuid_text(key_id), pid, kek_version, wrapped)
            if ciphertext is not None:
                number = opener.open_field(
                    aead, "my_number_record", "ciphertext", _uuid_text(record_id), ciphertext
                )
            if address_enc is not None:
                address = opener.open_field(aead, "person", "address_enc", pid, address_enc)
        values = (kind, code, seq, relation, name, kana, birth, postal, address, ended_on, number)
        batch.append([get(values) for get in getters])
        if len(batch) >= BATCH:
            writer.write_rows(batch)
            batch = []
    writer.write_rows(batch)


def _uuid_text(value) -> str:
    """SQLite stores UUIDs as 32 hex digits; the AAD uses the canonical hyphenated form."""
    text = str(value)
    if len(text) == 32:
        return str(uuid.UUID(text))
    return text


def _getter(field: str, fmt):
    """How one layout column is computed from a row's values (see ``_write_rows``)."""
    if field == "code":
        return lambda v: v[1] or ""
    if field == "name":
        return lambda v: v[4]
    if field == "name_kana":
        return lambda v: v[5] or ""
    if field == "kubun":
        return lambda v: (
            "本人"
            if v[0] == PersonKind.EMPLOYEE
            else "扶養家族"
            if v[0] == PersonKind.DEPENDENT
            else ""
        )
    if field == "dependent_code":
        return lambda v: f"{v[1]}-{v[2]:02d}" if v[0] != PersonKind.EXTERNAL and v[1] else ""
    if field == "relation":
        return lambda v: v[3] or ""
    if field == "birth_date":
        return lambda v: fmt(v[6])
    if field == "postal_code":
        return lambda v: v[7] or ""
    if field == "address":
        return lambda v: v[8]
    if field == "ended_on":
        return lambda v: fmt(v[9])
    if field == "number":
        return lambda v: v[10]
    raise ValueError(f"unknown field {field}")


__all__ = ["CsvWriteError", "ExportRefused", "ExportResult", "export_csv", "manifest_digest"]
