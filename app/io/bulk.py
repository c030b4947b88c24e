"""The vault's envelopes in bulk, and batched writes and reads.

``Sealer`` and ``Opener`` produce and open what ``app.vault.envelopes`` does (tests check both
ways), with the key provider's wrap and unwrap for the data keys (it keeps its AES-GCM objects
and MAC keys between calls) and the envelope code of ``app.vault.aead`` for the fields. A
person still gets their own data key, and every field its own nonce and AAD.

``BulkWriter`` appends rows in the caller's transaction: PostgreSQL's binary ``COPY`` through
the session's own psycopg connection, SQLAlchemy Core ``executemany`` elsewhere.
``stream_query`` reads large results without ORM objects, again by ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Select, insert
from sqlalchemy.orm import Session

from app.models import DataKey, ExportItem, MyNumberRecord, Person
from app.vault.aead import header_key_version, open_with, seal_with
from app.vault.envelopes import (
    BLIND_INDEX,
    EnvelopeError,
    ShreddedError,
    Vault,
    dek_aad,
    dek_aad_for,
    field_aad,
)

DEK_VERSION = 1
_RAND_A_AND_B = (0xFFF << 64) | ((1 << 62) - 1)  # the random bits of a UUIDv7
_VERSION_7_AND_VARIANT = (0x7 << 76) | (0b10 << 62)


def time_ordered_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    For the rows a bulk import adds to ``data_key`` and ``my_number_record``: their primary
    keys then grow at the right edge of the B-tree instead of landing on random pages, which
    took about a tenth of PostgreSQL's CPU for the COPY (measured: 2.9 → 2.6 s of server CPU
    per 100,000 people). These ids are internal (never in a URL or a file) and the time they
    carry is in the row anyway (``created_at``, ``registered_at``). People's own ids stay
    random."""
    random_bits = int.from_bytes(os.urandom(10), "big") & _RAND_A_AND_B
    return uuid.UUID(int=(time.time_ns() // 1_000_000) << 80 | _VERSION_7_AND_VARIANT | random_bits)


_paused_lock = threading.Lock()
_paused_count = 0  # bulk loops running now
_resume = False  # whether the collector was on when the first of them started


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector for a bulk loop; it resumes when the last one ends.

    Why: a row-by-row loop allocates millions of short-lived objects, and the collector,
    started by allocation counts, scans the whole application's objects again and again to
    find almost nothing: 15-20 % of the import's and the export's CPU time, measured. So the
    application's objects are frozen (never scanned) and the loops collect once per batch
    (``collect_young``), only what they made. Counted, so that concurrent loops (portal
    threads) do not switch it back on under one another.
    """
    global _paused_count, _resume
    with _paused_lock:
        if _paused_count == 0:
            _resume = gc.isenabled()
            gc.disable()
            gc.freeze()  # the application's own objects: never scanned during the loop
        _paused_count += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused_count -= 1
            if _paused_count == 0:
                gc.unfreeze()
                if _resume:
                    gc.enable()


def collect_young() -> None:
    """Free the cycles of the batch just done (driver cursors, results, futures): they can hold
    a batch's buffers, which at a million rows added up to 90 MB while the collector was
    paused. Only what was made since the loop began is scanned (``collector_paused`` froze
    the rest), so this is the cheap part of a collection. Called once per batch."""
    gc.collect()


class Sealer:
    """New data keys and field ciphertexts for many people, in the vault's envelope format.
    The data keys are wrapped by the key provider (a ``KeyBatch``: it never hands out the
    KEK); the import holds the KEK lock (``hold_kek``), so the version stays current."""

    def __init__(self, vault: Vault):
        self._keys = vault.keys.batch()
        self.kek_version = self._keys.version

    def blind_index(self, number: str) -> bytes:
        """Same HMAC-SHA256 as ``Vault.blind_index``."""
        return self._keys.mac(BLIND_INDEX, number.encode("ascii"))

    def new_person_key(self, person_id: uuid.UUID) -> tuple[AESGCM, bytes]:
        """A fresh DEK (as an AES-GCM object) and its wrapped form for the ``data_key`` row."""
        dek = os.urandom(32)
        return AESGCM(dek), self._keys.wrap(dek, dek_aad(person_id))

    @staticmethod
    def seal_field(aead: AESGCM, table: str, column: str, row_id: object, plaintext: str) -> bytes:
        return seal_with(
            aead, DEK_VERSION, field_aad(table, column, row_id), plaintext.encode("utf-8")
        )


class Opener:
    """Unwrap data keys and open fields for many rows; refuses shredded keys."""

    def __init__(self, vault: Vault):
        self._keys = vault.keys.batch()
        self._shredded = vault.keys.shredded()

    def person_key(self, key_id: str, person_id: str, kek_version: int, wrapped: bytes) -> AESGCM:
        if key_id in self._shredded:
            raise ShreddedError("この人物のデータ鍵は破棄済みです（復元できません）")
        version = header_key_version(wrapped)
        if version is None:
            raise EnvelopeError("暗号文の形式が不明です")
        if version != kek_version:
            raise EnvelopeError("データ鍵の KEK バージョンが一致しません")
        aad = dek_aad_for(wrapped, person_id, version)
        try:
            return AESGCM(self._keys.unwrap(version, wrapped, aad))
        except EnvelopeError:
            raise EnvelopeError("データ鍵を復号できません") from None

    @staticmethod
    def open_field(aead: AESGCM, table: str, column: str, row_id: str, blob: bytes) -> str:
        # The DEK version is checked as the vault does (format 1 leaves it outside the AAD).
        return open_with(aead, field_aad(table, column, row_id), blob, DEK_VERSION).decode("utf-8")


# Column lists and PostgreSQL binary COPY types of the tables the import writes.
PERSON_COLUMNS = (
    "id",
    "kind",
    "code",
    "household_head_id",
    "dependent_seq",
    "relation",
    "name",
    "name_kana",
    "birth_date",
    "postal_code",
    "address_enc",
    "ended_on",
    "status",
    "created_at",
    "updated_at",
)
PERSON_TYPES = (
    "uuid",
    "text",
    "text",
    "uuid",
    "int4",
    "text",
    "text",
    "text",
    "date",
    "text",
    "bytea",
    "date",
    "text",
    "timestamptz",
    "timestamptz",
)
KEY_COLUMNS = ("id", "person_id", "version", "kek_version", "wrapped", "created_at")
KEY_TYPES = ("uuid", "uuid", "int4", "int4", "bytea", "timestamptz")
RECORD_COLUMNS = (
    "id",
    "person_id",
    "ciphertext",
    "blind_index",
    "last4",
    "status",
    "source",
    "registered_at",
)
RECORD_TYPES = ("uuid", "uuid", "bytea", "bytea", "text", "text", "text", "timestamptz")
ITEM_COLUMNS = ("export_id", "person_id", "position")  # rows given in this order
ITEM_TYPES = ("uuid", "uuid", "int4")

_TABLES = {
    "person": (Person.__table__, PERSON_COLUMNS, PERSON_TYPES),
    "data_key": (DataKey.__table__, KEY_COLUMNS, KEY_TYPES),
    "my_number_record": (MyNumberRecord.__table__, RECORD_COLUMNS, RECORD_TYPES),
}


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _driver_connection(session: Session):
    """The psycopg connection under the session's current transaction."""
    return session.connection().connection.driver_connection


class BulkWriter:
    """Append rows to a table in the session's current transaction.

    On PostgreSQL the psycopg connection of that transaction is taken once, here, so that a
    worker thread can write through it (a scoped session would give another thread another
    session); the caller guarantees one thread at a time.
    """

    def __init__(self, session: Session):
        self.session = session
        self.postgres = is_postgres(session)
        self._raw = _driver_connection(session) if self.postgres else None

    def write(self, table_name: str, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        if table_name == "export_item":
            table, columns, types = ExportItem.__table__, ITEM_COLUMNS, ITEM_TYPES
        else:
            table, columns, types = _TABLES[table_name]
        if self.postgres:
            statement = f"COPY {table_name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
            with self._raw.cursor() as cursor:
                with cursor.copy(statement) as copy:
                    copy.set_types(list(types))
                    for row in rows:
                        copy.write_row(row)
        else:
            self.session.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])


class Fetcher:
    """All rows of bounded Core SELECTs as tuples. On PostgreSQL straight from the driver
    (binary, parsed in C) without SQLAlchemy's per-row processing, through the connection of
    the session's transaction, taken here once so another thread may use it (one at a time).
    Parameters are rendered as literals: callers pass only values they generated (ids,
    positions, kinds)."""

    def __init__(self, session: Session):
        self.session = session
        self.postgres = is_postgres(session)
        if self.postgres:
            self._dialect = session.get_bind().dialect
            self._raw = _driver_connection(session)

    def __call__(self, query: Select) -> list[tuple]:
        if not self.postgres:
            return [tuple(r) for r in self.session.execute(query)]
        sql = str(query.compile(dialect=self._dialect, compile_kwargs={"literal_binds": True}))
        with self._raw.cursor(binary=True) as cursor:
            cursor.execute(sql)
            return cursor.fetchall()


def stream_query(
    session: Session, query: Select, pg_types: Sequence[str], batch: int = 5000
) -> Iterator[tuple]:
    """Rows of a Core SELECT as tuples, without holding the result in memory.

    On PostgreSQL the statement runs as ``COPY (…) TO STDOUT (FORMAT BINARY)`` (the fastest
    way out of the server); ``pg_types`` names the column types in order. Parameters are
    rendered as literals for COPY, so callers pass only values they generated (ids, kinds).
    """
    if is_postgres(session):
        sql = str(
            query.compile(
                dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
            )
        )
        with _driver_connection(session).cursor() as cursor:
            with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(list(pg_types))
                yield from copy.rows()
        return
    result = session.execute(query.execution_options(yield_per=batch))
    for partition in result.partitions():
        yield from (tuple(r) for r in partition)
