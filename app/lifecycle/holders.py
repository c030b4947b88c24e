"""What holds a person's data, and how a disposal removes it from the database and its files.

A disposal (``app.lifecycle.disposal``) and its re-application after a restore
(``app.lifecycle.journal``) both come down to the same two steps, kept here so that both run
exactly the same code:

- **Purge.** ``HOLDERS`` lists every table whose rows carry a person's data and how to remove
  them; ``dispose_people`` destroys each person's data key (crypto-shredding), purges those
  rows and scrubs the ``person`` row into its tombstone. A new table that refers to
  ``person.id`` must be added to ``HOLDERS`` (or ``KEEP_TABLES``): until it is, execution
  refuses to run (``unclassified_tables``, fail closed).
- **Storage.** After the commit the freed bytes are removed from the database files
  (``compact_storage``): SQLite runs with ``secure_delete`` and its WAL is checkpointed and
  truncated; PostgreSQL gets ``VACUUM FULL`` of the touched tables, once no older transaction
  could still keep the dead row versions alive.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import current_app, has_app_context
from flask_appbuilder import Model
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.lifecycle import retention
from app.models import (
    CaseAssignment,
    CollectionRequest,
    CollectionRequestStatus,
    MyNumberRecord,
    NameChange,
    PaperPart,
    Person,
    RetainedDocument,
    Submission,
    SubmissionPart,
    utcnow,
)
from app.vault.envelopes import Vault

BATCH = 1000
DISPOSED_NAME = "（廃棄済み）"


def batches(items: list, size: int = BATCH) -> Iterable[list]:
    """Slices of at most ``size`` ids: an ``IN`` list stays within every backend's limits."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ids_digest(ids: Iterable) -> str:
    """SHA-256 of the ids, sorted, one per line: what the audit log and certificate quote."""
    digest = hashlib.sha256()
    for value in sorted(str(i) for i in ids):
        digest.update(value.encode("ascii") + b"\n")
    return digest.hexdigest()


# -- what holds a person's data --------------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    """A table with rows of a person's data, and how to remove them for a list of ids;
    ``also``: further tables the purge changes (compacted after the disposal)."""

    table: str
    label: str
    purge: Callable[[Session, list[uuid.UUID]], int]
    also: tuple[str, ...] = ()


def _purge_numbers(session: Session, ids: list[uuid.UUID]) -> int:
    result = session.execute(delete(MyNumberRecord).where(MyNumberRecord.person_id.in_(ids)))
    return result.rowcount or 0


def _purge_cases(session: Session, ids: list[uuid.UUID]) -> int:
    result = session.execute(delete(CaseAssignment).where(CaseAssignment.person_id.in_(ids)))
    return result.rowcount or 0


def _purge_name_changes(session: Session, ids: list[uuid.UUID]) -> int:
    """氏名変更の履歴: the old and new names."""
    result = session.execute(delete(NameChange).where(NameChange.person_id.in_(ids)))
    return result.rowcount or 0


def _purge_intake(session: Session, ids: list[uuid.UUID]) -> int:
    """What the public form received. Parts are sealed to the intake key, not to the
    person's data key, so crypto-shredding does not reach them: they are deleted. Every part
    about a disposed person goes; of a request a disposed person owned, every part that is
    not about a person still stored (dependents they added) goes too, and the free text of
    the request and its history is cleared, and its link is locked. The request rows stay as
    the history's skeleton (status and dates, which billing counts), pointing at the
    tombstone."""
    gone = {str(i) for i in ids}
    deleted = session.execute(
        delete(SubmissionPart).where(SubmissionPart.subject_ref.in_(sorted(gone)))
    ).rowcount
    owned = list(
        session.execute(
            select(CollectionRequest.id).where(CollectionRequest.person_id.in_(ids))
        ).scalars()
    )
    if not owned:
        return deleted or 0
    parts = session.execute(
        select(SubmissionPart.id, SubmissionPart.subject_ref)
        .join(Submission, Submission.id == SubmissionPart.submission_id)
        .where(Submission.request_id.in_(owned))
    ).all()
    candidates = {}
    for part_id, ref in parts:
        try:
            candidates[part_id] = uuid.UUID(ref)
        except ValueError:
            candidates[part_id] = None
    people = {c for c in candidates.values() if c is not None}
    stored = set(
        session.execute(
            select(Person.id).where(Person.id.in_(people), retention.stored())
        ).scalars()
    ) - set(ids)
    doomed = [pid for pid, ref in candidates.items() if ref not in stored]
    for batch in batches(doomed):
        deleted += session.execute(
            delete(SubmissionPart).where(SubmissionPart.id.in_(batch))
        ).rowcount
    session.execute(
        update(CollectionRequest)
        .where(CollectionRequest.id.in_(owned))
        .values(decline_note=None, reopened="[]", locked_at=utcnow())
    )
    session.execute(
        update(CollectionRequestStatus)
        .where(CollectionRequestStatus.request_id.in_(owned))
        .values(note=None)
    )
    return deleted or 0


def _purge_collection(session: Session, ids: list[uuid.UUID]) -> int:
    """Collection work: ID images kept after verification (under the person's DEK,
    already unreadable once it is shredded) and the sealed scans and keyings of a paper
    envelope still being processed."""
    deleted = (
        session.execute(
            delete(RetainedDocument).where(RetainedDocument.person_id.in_(ids))
        ).rowcount
        or 0
    )
    refs = sorted(str(i) for i in ids)
    deleted += (
        session.execute(delete(PaperPart).where(PaperPart.subject_ref.in_(refs))).rowcount or 0
    )
    return deleted


# Every table whose rows carry a person's data. A new table that refers to person.id must be
# added here (or to KEEP_TABLES): until it is, execution refuses to run (fail closed).
HOLDERS: list[Holder] = [
    Holder("my_number_record", "個人番号（暗号文・ブラインドインデックス）", _purge_numbers),
    Holder("case_assignment", "担当案件", _purge_cases),
    Holder("name_change", "氏名変更の履歴", _purge_name_changes),
    Holder(
        "collection_request",
        "提出フォームで受け付けた番号・書類の画像・追加した扶養親族（封緘データ）",
        _purge_intake,
        also=("submission_part", "collection_request_status"),
    ),
    Holder(
        "retained_document",
        "保管を続けた本人確認書類の画像と、郵送受付中の封緘データ（スキャン・入力した番号）",
        _purge_collection,
        also=("paper_part",),
    ),
]
# Handled by the execution itself.
HANDLED_TABLES = {
    "person": "人物（個人情報の列を消去し、墓標として残す）",
    "data_key": "データ鍵（暗号化消去）",
}
# Tables that keep a disposed person's id and nothing readable about them (``disposal_item``
# also keeps the code and name for the certificate, sealed under the KEK). (``export_item``, the
# append-only export manifests, holds ids without a foreign key, so it is not
# found by the check below; it keeps them by design.)
KEEP_TABLES = {"disposal_item": "廃棄の記録（人物ID、削除証明書のための職員番号・氏名は暗号化）"}


def unclassified_tables() -> list[str]:
    """Tables that refer to person.id but are neither purged nor known to hold ids only."""
    person = Person.__table__
    known = {h.table for h in HOLDERS} | set(HANDLED_TABLES) | set(KEEP_TABLES)
    found = []
    for table in Model.metadata.sorted_tables:
        refers = any(fk.column.table is person for fk in table.foreign_keys)
        if refers and table.name not in known:
            found.append(table.name)
    return found


def touched_tables() -> list[str]:
    """Every table a disposal changes: what ``compact_storage`` goes through afterwards."""
    tables = ["person", "data_key"]
    for holder in HOLDERS:
        tables += [holder.table, *holder.also]
    return tables


# The tombstone keeps its kind, dates (the number's first registration among them) and household
# (an id, not personal data): a month's storage counts recomputed after a disposal still find
# the household it belonged to and when its number came.
SCRUBBED = {
    "name": DISPOSED_NAME,
    "name_kana": None,
    "code": None,
    "birth_date": None,
    "postal_code": None,
    "address_enc": None,
    "email": None,
    "relation": None,
    "ended_on": None,
    "dependent_seq": 0,
    "status": "disposed",
}


def dispose_people(session: Session, vault: Vault, ids: list[uuid.UUID]) -> dict:
    """Crypto-shred, purge and scrub (the caller has recorded the ids outside the database)."""
    counts = {"data_keys": len(vault.shred(session, ids))}
    now = utcnow()
    for batch in batches(ids):
        first_registered = (
            select(func.min(MyNumberRecord.registered_at))
            .where(MyNumberRecord.person_id == Person.id)
            .scalar_subquery()
        )
        session.execute(  # before the records go: the tombstone keeps the date, not the number
            update(Person)
            .where(Person.id.in_(batch))
            .values(
                number_registered_at=func.coalesce(first_registered, Person.number_registered_at)
            )
        )
        for holder in HOLDERS:
            counts[holder.table] = counts.get(holder.table, 0) + holder.purge(session, batch)
        session.execute(
            update(Person).where(Person.id.in_(batch)).values(**SCRUBBED, disposed_at=now)
        )
    return counts


# -- storage --------------------------------------------------------------------------------
def _wait_seconds() -> float:
    """How long compaction waits for older transactions (``DISPOSAL_COMPACT_WAIT_SECONDS``);
    outside an app (a script, the benchmarks) the default."""
    if has_app_context():
        return float(current_app.config.get("DISPOSAL_COMPACT_WAIT_SECONDS", 300))
    return 300.0


def compact_storage(session: Session, tables: list[str], wait_seconds: float | None = None) -> dict:
    """SQLite: checkpoint and truncate the WAL (secure_delete already zeroed freed content);
    PostgreSQL: ``VACUUM FULL`` the tables so no dead row version stays in their files."""
    session.commit()  # nothing of ours may hold a lock on those tables
    engine = session.get_bind()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            for _ in range(50):
                busy, frames, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                if not busy:
                    return {"backend": "sqlite", "wal_frames": frames, "checkpointed": done}
                time.sleep(0.2)
        raise RuntimeError("SQLite WAL checkpoint stayed busy")
    allowed = {t.name for t in Model.metadata.sorted_tables}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # VACUUM FULL keeps a dead row version while an older transaction might still need
        # it: a snapshot in this database (a long report, a running pg_dump, autovacuum's
        # ANALYZE), or — measured on PostgreSQL 15 — any transaction holding an xid in *any*
        # database of the server. Wait until all of those that began before now have ended,
        # else the old rows would silently survive the rewrite.
        marker = conn.exec_driver_sql("SELECT pg_current_xact_id()::text::bigint").scalar_one()
        since = conn.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
        deadline = time.monotonic() + (_wait_seconds() if wait_seconds is None else wait_seconds)
        while True:
            oldest = conn.exec_driver_sql(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            ).scalar_one()
            older = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL AND xact_start < %(t)s",
                {"t": since},
            ).scalar_one()
            if oldest > marker and not older:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("an older transaction is still running")
            time.sleep(0.25)
        conn.exec_driver_sql("SET lock_timeout = '60s'")
        for table in tables:
            if table not in allowed:
                raise ValueError(f"unknown table {table}")
            conn.exec_driver_sql(f'VACUUM (FULL, ANALYZE) "{table}"')
    return {"backend": "postgresql", "vacuum_full": tables}
