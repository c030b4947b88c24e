"""Where the vault's secrets live: outside the database, behind a provider that never hands
out a key-encryption key.

``KeyProvider`` is what the vault asks of whoever holds the keys: *wrap* a key under the
current KEK, *unwrap* it again, *mac* data for a purpose (the blind index), *derive* a key
for a purpose. No method returns a KEK, so a provider can keep them inside an HSM
(``app.vault.hsm.Pkcs11KeyRing``, PKCS#11) as well as in a file (``FileKeyRing``, below);
``app.vault.custody.open_provider`` picks one from the settings.

Both keep the rest of the ring in a JSON file (mode 0600, written atomically) under
``MYNUMBER_HOME``:
- the Ed25519 key that signs audit checkpoints (its public half is exported for auditors);
- the list of shredded data keys, which a database restore must never roll back;
- the list of retired KEKs (version and fingerprint, never the key), which a restore of an
  older key-ring backup must not bring back (``app.lifecycle.backup.restore_keyring``);
- named secrets other modules own (the intake HPKE key, the link key, the canary list).

``FileKeyRing`` also keeps there the KEK ring (versioned AES-256 keys) and the MAC key
(HMAC-SHA256; the blind index's key is derived from it). The MAC key is as sensitive as a
KEK: with it and the table, the ~10^11 valid numbers can be inverted in hours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.vault import aead

FORMAT = 1


class KeyRingError(RuntimeError):
    """The key ring is missing, unreadable or inconsistent; the vault refuses to work."""


class KeyProvider(Protocol):
    """What the vault needs from whoever holds the keys. Nothing here returns a KEK.

    - ``wrap(plaintext_key, aad)``: seal a key (a person's data key, a file key) under the
      current KEK; returns the KEK version and a format-2 envelope (its header is
      authenticated along with ``aad``).
    - ``unwrap(version, blob, aad)``: the key back; format 1 and 2. A wrong AAD or an altered
      byte raises ``EnvelopeError``; an unknown version ``KeyRingError``.
    - ``mac(purpose, data)``: HMAC-SHA256 under a key kept for that purpose alone (the blind
      index, the paper double-entry check, the return archive's fingerprint).
    - ``derive(purpose)``: a 256-bit key for one purpose, the same in every process and for
      the life of the ring. ``mac`` is built on it: ``mac(p, d) = HMAC(derive("mac:" + p), d)``,
      so that an HSM-backed provider computes the per-row HMACs of an import in the process
      (one HSM call per purpose and process, not one per number). No other caller needs it.
    - ``batch()``: wrap, unwrap and mac against the ring as loaded now, for an import or an
      export (``KeyBatch``), without re-reading the ring file for every row.

    Besides, every provider keeps the rest of the ring: versions, rotation
    (``add_kek_version``), retirement (``retire_kek_version``: the KEK is destroyed), the
    audit signing key, the shred list, named secrets, and ``install``/``destroy``.
    """

    def current_kek_version(self) -> int: ...

    def kek_versions(self) -> list[int]: ...

    def wrap(self, plaintext_key: bytes, aad: bytes) -> tuple[int, bytes]: ...

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes: ...

    def mac(self, purpose: str, data: bytes) -> bytes: ...

    def derive(self, purpose: str) -> bytes: ...

    def batch(self) -> KeyBatch: ...

    def add_kek_version(self) -> int: ...

    def retire_kek_version(self, version: int) -> None: ...

    def retired(self) -> list[dict]: ...

    def audit_signing_key(self) -> ed25519.Ed25519PrivateKey: ...

    def shredded(self) -> set[str]: ...

    def record_shredded(self, data_key_ids: list[str]) -> None: ...


def kek_fingerprint(kek: bytes) -> str:
    """A name for one KEK that says nothing about it (SHA-256 of a 256-bit random key, with
    a domain prefix): how a retired KEK is recognised in an older key-ring backup."""
    return hashlib.sha256(b"mnv:kek-id:" + kek).hexdigest()


def token_kek_fingerprint(label: str, object_id: bytes) -> str:
    """The same for a KEK inside an HSM, which cannot be read: its label and random id."""
    return hashlib.sha256(b"mnv:hsm-kek-id:" + label.encode() + b"|" + object_id).hexdigest()


def ring_kek_fingerprints(data: dict) -> dict[str, str]:
    """``{version: fingerprint}`` of every KEK a ring file (or its backup) names, whichever
    provider wrote it: how a restore recognises the KEKs that were retired since."""
    keks = data.get("keks") or {}
    if data.get("provider", "file") == "pkcs11":
        return {
            v: token_kek_fingerprint(entry["label"], bytes.fromhex(entry["id"]))
            for v, entry in keks.items()
        }
    return {v: kek_fingerprint(_unb64(k)) for v, k in keks.items()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _copy(data: dict) -> dict:
    return json.loads(json.dumps(data))


def purpose_label(purpose: str) -> bytes:
    """What the MAC key signs to derive the key of one purpose (both providers)."""
    return b"mnv:derive:" + purpose.encode("utf-8")


class RingFile:
    """The JSON file every provider keeps (written atomically, mode 0600, re-read when another
    process replaced it) and the duties that do not depend on where the KEKs are."""

    provider = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._data: dict | None = None
        self._stamp: tuple[int, int, int] | None = None

    # -- what a subclass provides -------------------------------------------------------------
    def _decode(self, stored: dict) -> dict:
        """The ring as the provider works with it, from the file's content."""
        return stored

    def _encode(self, data: dict) -> dict:
        """The file's content, from the ring as the provider works with it."""
        return data

    def _forget(self) -> None:
        """Drop whatever the provider cached from the ring it had loaded (keys in use)."""

    def _prepare_install(self, stored: dict) -> dict:
        """Check a ring read from a backup before it is installed; returns what to install."""
        raise NotImplementedError

    # -- life cycle ---------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def _refuse_existing(self) -> None:
        if self.path.exists():
            raise KeyRingError(f"鍵リングは既に存在します: {self.path}")

    def install(self, stored: dict) -> None:
        """Write a key ring restored from its backup; refuses to overwrite an existing one."""
        self._refuse_existing()
        if stored.get("format") != FORMAT:
            raise KeyRingError("鍵リングの形式が不明です")
        if stored.get("provider", "file") != self.provider:
            raise KeyRingError(
                f"この鍵リングは別の鍵の保管方式（{stored.get('provider', 'file')}）のものです"
                f"（設定は {self.provider}: MYNUMBER_KEY_PROVIDER）"
            )
        stored = self._prepare_install(_copy(stored))
        with self._lock:
            self._write(self._decode(stored))

    def _file_stamp(self) -> tuple[int, int, int] | None:
        """Inode, modification time and size: every write replaces the file (new inode)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> dict:
        # Another process (the CLI rotating or retiring a KEK, a disposal) may have replaced
        # the file: a long-running web or worker process must not go on wrapping new data
        # keys under a KEK that is no longer current, or has been retired.
        if self._data is not None and self._file_stamp() != self._stamp:
            with self._lock:
                self._data = None
                self._forget()
        if self._data is None:
            with self._lock:
                self._read()
        return self._data

    def _read(self) -> None:
        if not self.path.exists():
            raise KeyRingError(
                f"鍵リングが見つかりません: {self.path}（`mynumber init` を実行してください）"
            )
        stamp = self._file_stamp()
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyRingError(
                f"鍵リングの権限が広すぎます（{oct(mode)}）: {self.path} を 0600 にしてください"
            )
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyRingError(f"鍵リングを読み込めません: {self.path}") from exc
        if stored.get("format") != FORMAT or stored.get("provider", "file") != self.provider:
            raise KeyRingError("鍵リングの形式が不明です")
        self._forget()
        self._data = self._decode(stored)
        self._stamp = stamp

    def _write(self, data: dict) -> None:
        stored = self._encode(data)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keyring-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(stored, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        # The rename itself is made durable: after a crash the ring is the old or the new
        # file, never a ring that lost a version the database already uses (or still holds
        # one that was retired).
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._forget()
        self._data = data
        self._stamp = self._file_stamp()

    def _change(self) -> dict:
        """A private copy of the ring to change and ``_write`` (under ``self._lock``)."""
        return _copy(self._load())

    def reload(self) -> None:
        """Forget the cached copy (another process rotated or shredded)."""
        with self._lock:
            self._data = None
            self._stamp = None
            self._forget()

    def destroy(self) -> None:
        """Contract end: overwrite the ring file with random bytes, then delete it (see the
        limits in docs/security.md). An HSM-backed provider destroys its token objects first."""
        if self.path.exists():
            size = self.path.stat().st_size
            with open(self.path, "r+b") as handle:
                handle.write(os.urandom(size))
                handle.flush()
                os.fsync(handle.fileno())
            self.path.unlink()
        self.reload()

    # -- KEK versions -------------------------------------------------------------------
    def current_kek_version(self) -> int:
        return int(self._load()["current_kek"])

    def kek_versions(self) -> list[int]:
        return sorted(int(v) for v in self._load()["keks"])

    def retired(self) -> list[dict]:
        """Every KEK retired from this ring: ``{"version", "fingerprint"}`` (no key material)."""
        return list(self._load().get("retired", []))

    def _unknown(self, version: int) -> KeyRingError:
        return KeyRingError(f"KEK バージョン {version} が鍵リングにありません")

    def _check_retirable(self, data: dict, version: int) -> None:
        if int(data["current_kek"]) == version:
            raise KeyRingError(f"KEK バージョン {version} は現在の KEK のため廃棄できません")
        if str(version) not in data["keks"]:
            raise KeyRingError(f"KEK バージョン {version} は鍵リングにありません")

    # -- wrapping and MACs: the provider supplies the keys, this the envelopes ----------------
    def _key_aead(self, data: dict, version: int) -> AESGCM:
        """An AES-GCM object that wraps under KEK ``version`` (or its working key)."""
        raise NotImplementedError

    def _mac_state(self, data: dict, purpose: str) -> hmac.HMAC:
        """A keyed HMAC object for one purpose, copied per call: keying one costs about as
        much again as the HMAC of a 12-digit number (measured for the import)."""
        raise NotImplementedError

    def derive(self, purpose: str) -> bytes:
        raise NotImplementedError

    def wrap(self, plaintext_key: bytes, aad: bytes) -> tuple[int, bytes]:
        data = self._load()  # once per call: re-read if another process changed the ring
        version = int(data["current_kek"])
        return version, aead.seal_with(self._key_aead(data, version), version, aad, plaintext_key)

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        self._check_unwrap(blob)
        return aead.open_with(self._key_aead(self._load(), version), aad, blob, version)

    def _check_unwrap(self, blob: bytes) -> None:
        """Refuse an envelope this provider cannot have written before any key is used."""

    def mac(self, purpose: str, data: bytes) -> bytes:
        state = self._mac_state(self._load(), purpose).copy()
        state.update(data)
        return state.digest()

    def batch(self) -> KeyBatch:
        """The ring as it is now, for one bulk operation (see ``KeyBatch``)."""
        return KeyBatch(self, self._load())

    # -- other secrets ------------------------------------------------------------------
    def audit_signing_key(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(
            _unb64(self._load()["audit_signing_key"])
        )

    def audit_public_key_pem(self) -> bytes:
        return (
            self.audit_signing_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def get_secret(self, name: str) -> dict | None:
        """A named secret section other modules own (e.g. the intake HPKE key pair)."""
        return self._load().get("extra", {}).get(name)

    def set_secret(self, name: str, value: dict) -> None:
        with self._lock:
            data = self._change()
            data.setdefault("extra", {})[name] = value
            self._write(data)

    # -- shredding ----------------------------------------------------------------------
    def shredded(self) -> set[str]:
        return set(self._load().get("shredded", []))

    def record_shredded(self, data_key_ids: list[str]) -> None:
        """Remember destroyed data keys here, where a database restore cannot undo it."""
        if not data_key_ids:
            return
        with self._lock:
            data = self._change()
            known = set(data.get("shredded", []))
            data["shredded"] = sorted(known | {str(i) for i in data_key_ids})
            self._write(data)

    @staticmethod
    def _new_common() -> dict:
        signing = ed25519.Ed25519PrivateKey.generate()
        return {
            "format": FORMAT,
            "audit_signing_key": _b64(signing.private_bytes_raw()),
            "shredded": [],
        }


class FileKeyRing(RingFile):
    """The embedded key provider: KEKs and the MAC key in the ring file itself.

    Wrapping and unwrapping run here, with AES-GCM objects kept per KEK version until the
    file changes; the key bytes never leave this object."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._aeads: dict[int, AESGCM] = {}
        self._macs: dict[str, hmac.HMAC] = {}

    def _forget(self) -> None:
        self._aeads = {}
        self._macs = {}

    def _prepare_install(self, stored: dict) -> dict:
        if "keks" not in stored or "index_key" not in stored:
            raise KeyRingError("鍵リングの形式が不明です")
        return stored

    def create(self) -> None:
        """Make a new key ring; refuses to overwrite one (that would orphan every ciphertext)."""
        self._refuse_existing()
        data = self._new_common()
        data["current_kek"] = 1
        data["keks"] = {"1": _b64(secrets.token_bytes(32))}
        data["index_key"] = _b64(secrets.token_bytes(32))
        self._write(data)

    # -- KEKs ---------------------------------------------------------------------------
    def kek(self, version: int) -> bytes:
        """The raw KEK: for this ring's own use (fingerprints, format-1 system keys) and for
        tests that check what the file holds. Not part of ``KeyProvider``: nothing outside
        ``app.vault`` calls it (tests/vault/test_custody.py checks)."""
        keks = self._load()["keks"]
        if str(version) not in keks:
            raise self._unknown(version)
        return _unb64(keks[str(version)])

    def _key_aead(self, data: dict, version: int) -> AESGCM:
        found = self._aeads.get(version)
        if found is None:
            key = data["keks"].get(str(version))
            if key is None:
                raise self._unknown(version)
            found = self._aeads[version] = AESGCM(_unb64(key))
        return found

    def open_format1_system(self, purpose: str, aad: bytes, blob: bytes) -> bytes:
        """A system secret sealed in format 1, under a key derived from the KEK itself
        (before the vault sealed them with ``wrap``). Only this provider ever wrote those."""
        version = aead.parse_envelope(blob).key_version
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"mnv:system:{purpose}".encode()
        ).derive(self.kek(version))
        return aead.unseal(key, aad, blob)

    def add_kek_version(self) -> int:
        with self._lock:
            data = self._change()
            version = max(int(v) for v in data["keks"]) + 1
            data["keks"][str(version)] = _b64(secrets.token_bytes(32))
            data["current_kek"] = version
            self._write(data)
            return version

    def retire_kek_version(self, version: int) -> None:
        """Destroy an old KEK: the ring file is rewritten (atomically) without it.

        Only ``app.lifecycle.keyops.retire`` calls this, after checking that nothing in the
        database depends on the version any more. A key-ring backup (``.mnvkeys``) made
        earlier still holds it: the ring keeps the version and its fingerprint (``retired``)
        so that restoring such a backup drops it again."""
        with self._lock:
            data = self._change()
            self._check_retirable(data, version)
            fingerprint = kek_fingerprint(_unb64(data["keks"][str(version)]))
            del data["keks"][str(version)]
            data.setdefault("retired", []).append({"version": version, "fingerprint": fingerprint})
            self._write(data)

    # -- MACs ---------------------------------------------------------------------------
    def derive(self, purpose: str) -> bytes:
        """HMAC-SHA256 of the purpose's label under the ring's MAC key (``index_key``)."""
        return self._derive(self._load(), purpose)

    @staticmethod
    def _derive(data: dict, purpose: str) -> bytes:
        return hmac.new(_unb64(data["index_key"]), purpose_label(purpose), hashlib.sha256).digest()

    def _mac_state(self, data: dict, purpose: str) -> hmac.HMAC:
        found = self._macs.get(purpose)
        if found is None:
            found = self._macs[purpose] = hmac.new(
                self._derive(data, "mac:" + purpose), digestmod=hashlib.sha256
            )
        return found


class KeyBatch:
    """Wrap, unwrap and MAC against the ring as it was when the batch began, without
    re-reading the ring file per call (a stat each time was a tenth of an import's row).

    For one bulk operation: an import, which holds the KEK lock (``hold_kek``) for its whole
    transaction so that the current version cannot change under it, or an export, which
    reads a snapshot anyway. The keys stay inside the provider: the batch holds only the
    provider and the ring it loaded."""

    def __init__(self, provider: RingFile, data: dict) -> None:
        self._provider = provider
        self._data = data
        self.version = int(data["current_kek"])

    def wrap(self, plaintext_key: bytes, aad: bytes) -> bytes:
        """A format-2 envelope under ``self.version``."""
        key = self._provider._key_aead(self._data, self.version)
        return aead.seal_with(key, self.version, aad, plaintext_key)

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        self._provider._check_unwrap(blob)
        return aead.open_with(self._provider._key_aead(self._data, version), aad, blob, version)

    def mac(self, purpose: str, data: bytes) -> bytes:
        state = self._provider._mac_state(self._data, purpose).copy()
        state.update(data)
        return state.digest()
