"""Envelope encryption, blind index, rotation and crypto-shredding.

Key hierarchy: KEK ring (outside the database, ``app.vault.keyring``) → one random 256-bit data key
(DEK) per person, stored wrapped by the current KEK with AES-256-GCM (AAD = person id + KEK
version) → every encrypted field of that person under the DEK with AES-256-GCM, AAD binding
table, column and row id, so a ciphertext copied to another row or column fails to decrypt.

Envelope (bytes): ``b"MV"`` | format version (1 byte) | key version (4 bytes, big endian) |
nonce (12 bytes) | ciphertext+tag. The key version is the KEK version for a wrapped DEK and the
DEK version for a field. Destroying a person's DEK makes every copy of their data unreadable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from app.models import DataKey, utcnow
from app.vault.keyring import FileKeyRing

MAGIC = b"MV"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">2sBI12s")  # magic, format, key version, nonce
HEADER_SIZE = _HEADER.size
TAG_SIZE = 16


class VaultError(RuntimeError):
    """Base class: the message is Japanese and never contains plaintext."""


class EnvelopeError(VaultError):
    """The bytes are not an envelope we wrote, or they were altered or moved."""


class ShreddedError(VaultError):
    """The person's data key was destroyed: the data cannot be recovered by anyone."""


@dataclass(frozen=True)
class Envelope:
    format_version: int
    key_version: int
    nonce: bytes
    ciphertext: bytes


def parse_envelope(blob: bytes) -> Envelope:
    """Split an envelope into its parts, refusing anything malformed before any crypto runs."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise EnvelopeError("暗号文の型が不正です")
    blob = bytes(blob)
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise EnvelopeError("暗号文が短すぎます")
    magic, fmt, key_version, nonce = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise EnvelopeError("暗号文の形式が不明です")
    if fmt != FORMAT_VERSION:
        raise EnvelopeError(f"暗号文の形式バージョン {fmt} には対応していません")
    return Envelope(fmt, key_version, nonce, blob[HEADER_SIZE:])


def header_key_version(prefix: bytes | None) -> int | None:
    """The key version an envelope's header names, from its first ``HEADER_SIZE`` bytes
    alone (no crypto): enough to count what each KEK still protects without reading, or
    decrypting, whole blobs. ``None`` for bytes that are not an envelope of ours."""
    if prefix is None:
        return None
    prefix = bytes(prefix)
    if len(prefix) < HEADER_SIZE:
        return None
    magic, fmt, key_version, _nonce = _HEADER.unpack_from(prefix)
    if magic != MAGIC or fmt != FORMAT_VERSION:
        return None
    return key_version


def seal(key: bytes, key_version: int, aad: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM with a random 96-bit nonce, wrapped in the self-describing envelope."""
    nonce = secrets.token_bytes(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, aad)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, key_version, nonce) + ciphertext


def unseal(key: bytes, aad: bytes, blob: bytes, key_version: int | None = None) -> bytes:
    """Decrypt an envelope; a wrong key, wrong AAD or any altered byte raises EnvelopeError.

    The header is not part of the AAD (format 1), so a caller that knows which key version
    it holds passes ``key_version``: an altered version field is then refused too."""
    env = parse_envelope(blob)
    if key_version is not None and env.key_version != key_version:
        raise EnvelopeError("暗号文の鍵バージョンが一致しません（改ざん、または鍵の不一致）")
    try:
        return AESGCM(key).decrypt(env.nonce, env.ciphertext, aad)
    except InvalidTag as exc:
        raise EnvelopeError(
            "暗号文を復号できません（改ざん、別の行・列への移動、または鍵の不一致）"
        ) from exc


def field_aad(table: str, column: str, row_id: object) -> bytes:
    """The AAD that pins a field ciphertext to its table, column and row."""
    return f"mnv:field:{table}:{column}:{row_id}".encode()


def dek_aad(person_id: object, kek_version: int) -> bytes:
    """The AAD that pins a wrapped DEK to its person and KEK version."""
    return f"mnv:dek:{person_id}:{kek_version}".encode()


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

    def __init__(self, keys: FileKeyRing) -> None:
        self.keys = keys
        # Called with (session, person_id) before a person's field is decrypted: the canary
        # tripwire (app.audit.canary.on_decrypt), set by the app factory.
        self.on_decrypt = None

    # -- data keys ----------------------------------------------------------------------
    def new_data_key(self, person_id: uuid.UUID) -> tuple[bytes, DataKey]:
        """A fresh DEK for a person and its wrapped row (not yet added to a session). The
        caller's transaction holds the KEK first (``hold_kek``): the row is stored later."""
        dek = secrets.token_bytes(32)
        version = self.keys.current_kek_version()
        wrapped = seal(self.keys.kek(version), version, dek_aad(person_id, version), dek)
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
        kek = self.keys.kek(env.key_version)
        return unseal(kek, dek_aad(row.person_id, env.key_version), row.wrapped)

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
        """HMAC-SHA256 of the normalised 12 digits under the index key (never in the DB)."""
        return hmac.new(
            self.keys.index_key(), normalized_number.encode("ascii"), hashlib.sha256
        ).digest()

    # -- system secrets (TOTP seeds) -----------------------------------------------------
    def _system_key(self, version: int, purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"mnv:system:{purpose}".encode()
        ).derive(self.keys.kek(version))

    def seal_system(self, purpose: str, aad: str, plaintext: bytes) -> bytes:
        """Encrypt an operational secret (e.g. a TOTP seed) under a KEK-derived key."""
        version = self.keys.current_kek_version()
        return seal(self._system_key(version, purpose), version, aad.encode(), plaintext)

    def open_system(self, purpose: str, aad: str, blob: bytes) -> bytes:
        env = parse_envelope(blob)
        if env.key_version not in self.keys.kek_versions():
            # An altered version field must fail like any other altered byte, not as a
            # key-ring error that callers do not expect from a ciphertext.
            raise EnvelopeError(
                "暗号文の鍵バージョンが鍵リングにありません（改ざん、または鍵の不一致）"
            )
        return unseal(self._system_key(env.key_version, purpose), aad.encode(), blob)

    def reseal_system(self, purpose: str, aad: str, blob: bytes) -> bytes:
        """The same secret sealed again under the current KEK (rotation, before an old KEK
        is retired); the plaintext exists only inside this call."""
        return self.seal_system(purpose, aad, self.open_system(purpose, aad, blob))

    # -- key operations -----------------------------------------------------------------
    def rewrap_all(self, session: Session, batch_size: int = 1000) -> int:
        """Re-wrap every DEK under the current KEK (after ``add_kek_version``). No bulk
        re-encryption: the fields stay as they are, only the small wrapped keys change."""
        version = self.keys.current_kek_version()
        kek = self.keys.kek(version)
        count = 0
        stale = select(DataKey).where(DataKey.kek_version != version).limit(batch_size)
        while True:
            rows = session.execute(stale).scalars().all()
            if not rows:
                break
            for row in rows:
                dek = self.unwrap(row)
                row.wrapped = seal(kek, version, dek_aad(row.person_id, version), dek)
                row.kek_version = version
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
