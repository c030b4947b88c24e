"""The vault's envelopes in bulk, and batched writes and reads.

``Sealer`` and ``Opener`` produce and open byte for byte what ``app.vault.envelopes`` does (tests check
both ways), but per batch instead of per call: one AES-GCM object per KEK instead of one per
row, one ``os.urandom`` per row for all its random bytes, the HMAC in one C call. A person
still gets their own data key, and every field its own nonce and AAD.

``BulkWriter`` appends rows in the caller's transaction: PostgreSQL's binary ``COPY`` through
the session's own psycopg connection, SQLAlchemy Core ``executemany`` elsewhere.
``stream_query`` reads large results without ORM objects, again by ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import os
import struct
import threading
import uuid
from collections.abc import Iterator, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Select, insert
from sqlalchemy.orm import Session

from app.models import DataKey, ExportItem, MyNumberRecord, Person
from app.vault.envelopes import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    EnvelopeError,
    ShreddedError,
    Vault,
    dek_aad,
    field_aad,
)

_HEADER = struct.Struct(">2sBI12s")
if _HEADER.size != HEADER_SIZE:  # the vault's envelope layout changed: refuse to start
    raise RuntimeError("app.io.bulk: envelope header size differs from app.vault.envelopes")
DEK_VERSION = 1


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
    """New data keys and field ciphertexts for many people, in the vault's envelope format."""

    def __init__(self, vault: Vault):
        self.kek_version = vault.keys.current_kek_version()
        self._kek = AESGCM(vault.keys.kek(self.kek_version))
        # Keyed once: copying a keyed HMAC is about half the cost of keying one per number.
        self._index_mac = hmac.new(vault.keys.index_key(), digestmod="sha256")

    def blind_index(self, number: str) -> bytes:
        """Same HMAC-SHA256 as ``Vault.blind_index``."""
        mac = self._index_mac.copy()
        mac.update(number.encode("ascii"))
        return mac.digest()

    def new_person_key(self, person_id: uuid.UUID) -> tuple[AESGCM, bytes]:
        """A fresh DEK (as an AES-GCM object) and its wrapped form for the ``data_key`` row."""
        randomness = os.urandom(44)
        dek, nonce = randomness[:32], randomness[32:]
        wrapped = _HEADER.pack(MAGIC, FORMAT_VERSION, self.kek_version, nonce) + self._kek.encrypt(
            nonce, dek, dek_aad(person_id, self.kek_version)
        )
        return AESGCM(dek), wrapped

    @staticmethod
    def seal_field(aead: AESGCM, table: str, column: str, row_id: object, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return _HEADER.pack(MAGIC, FORMAT_VERSION, DEK_VERSION, nonce) + aead.encrypt(
            nonce, plaintext.encode("utf-8"), field_aad(table, column, row_id)
        )


class Opener:
    """Unwrap data keys and open fields for many rows; refuses shredded keys."""

    _PREFIX = MAGIC + bytes([FORMAT_VERSION])

    def __init__(self, vault: Vault):
        self._keys = vault.keys
        self._keks: dict[int, AESGCM] = {}
        self._shredded = vault.keys.shredded()

    def _kek(self, version: int) -> AESGCM:
        aead = self._keks.get(version)
        if aead is None:
            aead = self._keks[version] = AESGCM(self._keys.kek(version))
        return aead

    @classmethod
    def _split(cls, blob: bytes) -> tuple[int, bytes, bytes]:
        """Key version, nonce, ciphertext: the same checks as ``app.vault.envelopes.parse_envelope``."""
        if len(blob) < HEADER_SIZE + 16 or blob[:3] != cls._PREFIX:
            raise EnvelopeError("暗号文の形式が不明です")
        return int.from_bytes(blob[3:7], "big"), blob[7:HEADER_SIZE], blob[HEADER_SIZE:]

    def person_key(self, key_id: str, person_id: str, kek_version: int, wrapped: bytes) -> AESGCM:
        if key_id in self._shredded:
            raise ShreddedError("この人物のデータ鍵は破棄済みです（復元できません）")
        version, nonce, body = self._split(wrapped)
        if version != kek_version:
            raise EnvelopeError("データ鍵の KEK バージョンが一致しません")
        kek = self._keks.get(version) or self._kek(version)
        try:
            return AESGCM(kek.decrypt(nonce, body, dek_aad(person_id, version)))
        except InvalidTag:
            raise EnvelopeError("データ鍵を復号できません") from None

    def open_field(self, aead: AESGCM, table: str, column: str, row_id: str, blob: bytes) -> str:
        version, nonce, body = self._split(blob)
        if version != DEK_VERSION:  # the header is outside the AAD: checked as the vault does
            raise EnvelopeError("暗号文の鍵バージョンが一致しません（改ざん、または鍵の不一致）")
        try:
            return aead.decrypt(nonce, body, field_aad(table, column, row_id)).decode("utf-8")
        except InvalidTag:
            raise EnvelopeError(
                "暗号文を復号できません（改ざん、別の行・列への移動、または鍵の不一致）"
            ) from None


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
