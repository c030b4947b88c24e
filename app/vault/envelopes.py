"""Envelope encryption, blind index, rotation and crypto-shredding.

Key hierarchy: KEK ring (outside the database, behind a ``KeyProvider``: ``app.vault.keyring``
or an HSM, ``app.vault.hsm``) → one random 256-bit data key (DEK) per person, stored wrapped
by the current KEK (``KeyProvider.wrap``: AES-256-GCM, AAD = the envelope header + person id)
→ every encrypted field of that person under the DEK with AES-256-GCM, AAD binding the header,
table, column and row id, so a ciphertext copied to another row or column fails to decrypt.

The envelope's bytes are described in ``app.vault.aead`` (format 2 authenticates its header;
format 1 is still read). Destroying a person's DEK makes every copy of their data unreadable.
This module never sees a KEK: it asks the provider to wrap and unwrap.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.orm import Session

from app.models import DataKey, utcnow
from app.vault.aead import (  # noqa: F401  # the envelope API, re-exported for callers
    FORMAT_1,
    FORMAT_2,
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    TAG_SIZE,
    Envelope,
    EnvelopeError,
    VaultError,
    header_format,
    header_key_version,
    parse_envelope,
    seal,
    seal_with,
    unseal,
)
from app.vault.keyring import KeyProvider

BLIND_INDEX = "blind-index"  # the MAC purpose of the number's blind index
# A system blob (format 2) starts with the content key wrapped by the provider: a fixed
# length (a 32-byte key in an envelope), then the content sealed under that key.
_WRAPPED_CONTENT_KEY = HEADER_SIZE + 32 + TAG_SIZE


class ShreddedError(VaultError):
    """The person's data key was destroyed: the data cannot be recovered by anyone."""


def field_aad(table: str, column: str, row_id: object) -> bytes:
    """The AAD that pins a field ciphertext to its table, column and row."""
    return f"mnv:field:{table}:{column}:{row_id}".encode()


def dek_aad(person_id: object, kek_version: int | None = None) -> bytes:
    """The AAD that pins a wrapped DEK to its person. Format 2 (``kek_version`` None): the
    KEK version is bound by the header, which is in the AAD; format 1 named it here."""
    if kek_version is None:
        return f"mnv:dek:{person_id}".encode()
    return f"mnv:dek:{person_id}:{kek_version}".encode()


def dek_aad_for(wrapped: bytes, person_id: object, kek_version: int) -> bytes:
    """The AAD a stored wrapped DEK was sealed with, by its format."""
    if header_format(wrapped[:3]) == FORMAT_1:
        return dek_aad(person_id, kek_version)
    return dek_aad(person_id)


def system_aad(purpose: str, aad: str) -> bytes:
    """The AAD of a system secret's content key: its purpose and the caller's binding."""
    return f"mnv:system:{purpose}:{aad}".encode()


# -- who may change the key ring while keys are being wrapped -------------------------------
# A transaction that wraps new data keys reads the current KEK and commits the wrapped keys
# later: milliseconds later for a person added in the portal, minutes later for a bulk import.
# A rotation in between would miss those uncommitted keys (they would stay under the old KEK),
# a retirement would make them unreadable for good. So such a transaction holds this lock,
# shared, from before it reads the KEK until it commits (``hold_kek``), and rotation and
# retirement take it exclusively first (``change_kek``, app.lifecycle.keyops), waiting for those
# transactions. PostgreSQL: an advisory lock of the transaction. SQLite: its single write
# lock, which an import takes before it reads the KEK and a retirement before it counts what
# depends on one (a single person's key, written a moment after its KEK is read, is not
# covered there).
KEK_LOCK = 0x6D6E764B  # "mnvK": this application's own advisory lock number


def hold_kek(session: Session) -> None:
    """Keep rotation and retirement waiting until this transaction ends; call it before the
    current KEK is read to wrap a new key."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": KEK_LOCK})


def change_kek(session: Session, *, fresh_transaction: bool = False) -> None:
    """Wait for every transaction that holds the KEK (``hold_kek``) and keep new ones out
    until this transaction ends. On SQLite the transaction's first write waits instead;
    ``fresh_transaction`` (right after a commit) takes the write lock now, before any read."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": KEK_LOCK})
    elif fresh_transaction:
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


class Vault:
    """The one place that turns keys into plaintext and back."""

    def __init__(self, keys: KeyProvider) -> None:
        self.keys = keys
        # Called with (session, person_id) before a person's field is decrypted: the canary
        # tripwire (app.audit.canary.on_decrypt), set by the app factory.
        self.on_decrypt = None

    # -- data keys ----------------------------------------------------------------------
    def new_data_key(self, person_id: uuid.UUID) -> tuple[bytes, DataKey]:
        """A fresh DEK for a person and its wrapped row (not yet added to a session). The
        caller's transaction holds the KEK first (``hold_kek``): the row is stored later."""
        dek = secrets.token_bytes(32)
        version, wrapped = self.keys.wrap(dek, dek_aad(person_id))
        row = DataKey(
            id=uuid.uuid4(), person_id=person_id, version=1, kek_version=version, wrapped=wrapped
        )
        return dek, row

    def unwrap(self, row: DataKey) -> bytes:
        """The plaintext DEK of a stored row, unless it was shredded."""
        if str(row.id) in self.keys.shredded():
            raise ShreddedError("この人物のデータ鍵は破棄済みです（復元できません）")
        env = parse_envelope(row.wrapped)
        if env.key_version != row.kek_version:
            raise EnvelopeError("データ鍵の KEK バージョンが一致しません")
        return self.keys.unwrap(
            env.key_version, row.wrapped, dek_aad_for(row.wrapped, row.person_id, row.kek_version)
        )

    def data_key_row(self, session: Session, person_id: uuid.UUID) -> DataKey:
        row = session.execute(
            select(DataKey).where(DataKey.person_id == person_id)
        ).scalar_one_or_none()
        if row is None:
            raise ShreddedError("この人物のデータ鍵がありません（破棄済み、または未登録）")
        return row

    def ensure_data_key(self, session: Session, person_id: uuid.UUID) -> tuple[bytes, DataKey]:
        """The person's DEK, creating and adding it to the session on first use."""
        row = session.execute(
            select(DataKey).where(DataKey.person_id == person_id)
        ).scalar_one_or_none()
        if row is None:
            hold_kek(session)
            dek, row = self.new_data_key(person_id)
            session.add(row)
            return dek, row
        return self.unwrap(row), row

    # -- fields -------------------------------------------------------------------------
    @staticmethod
    def encrypt_field(
        dek: bytes, dek_version: int, table: str, column: str, row_id: object, plaintext: str
    ) -> bytes:
        return seal(dek, dek_version, field_aad(table, column, row_id), plaintext.encode("utf-8"))

    @staticmethod
    def decrypt_field(
        dek: bytes,
        table: str,
        column: str,
        row_id: object,
        blob: bytes,
        dek_version: int | None = None,
    ) -> str:
        return unseal(dek, field_aad(table, column, row_id), blob, dek_version).decode("utf-8")

    def encrypt_for(
        self,
        session: Session,
        person_id: uuid.UUID,
        table: str,
        column: str,
        row_id: object,
        plaintext: str,
    ) -> bytes:
        """Encrypt a field of a person under that person's DEK (created if needed)."""
        dek, row = self.ensure_data_key(session, person_id)
        return self.encrypt_field(dek, row.version, table, column, row_id, plaintext)

    def decrypt_for(
        self,
        session: Session,
        person_id: uuid.UUID,
        table: str,
        column: str,
        row_id: object,
        blob: bytes,
    ) -> str:
        """Decrypt a field of a person; raises ShreddedError after disposal."""
        row = self.data_key_row(session, person_id)
        if self.on_decrypt is not None:
            self.on_decrypt(session, person_id)
        return self.decrypt_field(self.unwrap(row), table, column, row_id, blob, row.version)

    # -- blind index --------------------------------------------------------------------
    def blind_index(self, normalized_number: str) -> bytes:
        """HMAC-SHA256 of the normalised 12 digits under the blind index's own key (kept by
        the provider, never in the database)."""
        return self.keys.mac(BLIND_INDEX, normalized_number.encode("ascii"))

    # -- system secrets (TOTP seeds, print files, tickets, backup file keys) -------------
    def seal_system(self, purpose: str, aad: str, plaintext: bytes) -> bytes:
        """Encrypt an operational secret under the current KEK: a fresh content key seals
        the plaintext, and the provider wraps the content key (format 2). The blob starts
        with the wrapped key's envelope, so its first bytes name the KEK version."""
        content_key = secrets.token_bytes(32)
        binding = system_aad(purpose, aad)
        version, wrapped = self.keys.wrap(content_key, binding)
        return wrapped + seal_with(AESGCM(content_key), version, binding, plaintext)

    def open_system(self, purpose: str, aad: str, blob: bytes) -> bytes:
        env = parse_envelope(blob)
        if env.key_version not in self.keys.kek_versions():
            # An altered version field must fail like any other altered byte, not as a
            # key-ring error that callers do not expect from a ciphertext.
            raise EnvelopeError(
                "暗号文の鍵バージョンが鍵リングにありません（改ざん、または鍵の不一致）"
            )
        blob = bytes(blob)
        if env.format_version == FORMAT_1:
            legacy = getattr(self.keys, "open_format1_system", None)
            if legacy is None:
                raise EnvelopeError("この鍵の保管方式では形式 1 の暗号文を開けません")
            return legacy(purpose, aad.encode(), blob)
        if len(blob) < _WRAPPED_CONTENT_KEY + HEADER_SIZE + TAG_SIZE:
            raise EnvelopeError("暗号文が短すぎます")
        binding = system_aad(purpose, aad)
        content_key = self.keys.unwrap(env.key_version, blob[:_WRAPPED_CONTENT_KEY], binding)
        return unseal(content_key, binding, blob[_WRAPPED_CONTENT_KEY:], env.key_version)

    def reseal_system(self, purpose: str, aad: str, blob: bytes) -> bytes:
        """The same secret sealed again under the current KEK, in format 2 (rotation, before
        an old KEK is retired); the plaintext exists only inside this call."""
        return self.seal_system(purpose, aad, self.open_system(purpose, aad, blob))

    # -- key operations -----------------------------------------------------------------
    def rewrap_all(self, session: Session, batch_size: int = 1000) -> int:
        """Re-wrap every DEK that is not under the current KEK, or still in format 1, under
        the current KEK in format 2 (after ``add_kek_version``). No bulk re-encryption: the
        fields stay as they are, only the small wrapped keys change."""
        version = self.keys.current_kek_version()
        count = 0
        stale = (
            select(DataKey)
            .where(
                or_(
                    DataKey.kek_version != version,
                    func.substr(DataKey.wrapped, 3, 1) == bytes([FORMAT_1]),
                )
            )
            .limit(batch_size)
        )
        while True:
            rows = session.execute(stale).scalars().all()
            if not rows:
                break
            for row in rows:
                dek = self.unwrap(row)
                row.kek_version, row.wrapped = self.keys.wrap(dek, dek_aad(row.person_id))
                row.rewrapped_at = utcnow()
                count += 1
            session.flush()
        return count

    def shred(
        self, session: Session, person_ids: Iterable[uuid.UUID], batch_size: int = 1000
    ) -> list[str]:
        """Destroy the DEKs of these people: first in the key ring's shred list (which no
        database restore can roll back), then the rows themselves. The ids are handled in
        batches (bound-parameter limits) but the key ring is written once."""
        ids = list(person_ids)
        if not ids:
            return []
        batches = [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]
        key_ids: list[str] = []
        for batch in batches:
            rows = session.execute(select(DataKey.id).where(DataKey.person_id.in_(batch)))
            key_ids += [str(i) for i in rows.scalars()]
        self.keys.record_shredded(key_ids)
        for batch in batches:
            session.execute(delete(DataKey).where(DataKey.person_id.in_(batch)))
        return key_ids

    def apply_shred_list(self, session: Session) -> int:
        """Delete any DEK row the key ring says was destroyed (after a restore, at start)."""
        shredded = self.keys.shredded()
        if not shredded:
            return 0
        present = [
            row_id
            for row_id in session.execute(select(DataKey.id)).scalars()
            if str(row_id) in shredded
        ]
        for start in range(0, len(present), 1000):
            session.execute(delete(DataKey).where(DataKey.id.in_(present[start : start + 1000])))
        return len(present)
