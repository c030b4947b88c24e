"""Where the vault's secrets live: outside the database, behind a small provider interface.

The embedded provider keeps them in ``keyring.json`` (mode 0600) under ``MYNUMBER_HOME``. A
production deployment replaces it with a KMS or Vault-transit provider that implements the same
``KeyProvider`` protocol; nothing else in the code reads key material directly.

Held here:
- the KEK ring (versioned AES-256 key-encryption keys) that wraps every person's data key;
- the blind-index key (HMAC-SHA256), as sensitive as a KEK: with it and the table, the ~10^11
  valid numbers can be inverted in hours;
- the Ed25519 key that signs audit checkpoints (its public half is exported for auditors);
- the list of shredded data keys, which a database restore must never roll back;
- the list of retired KEKs (version and fingerprint, never the key), which a restore of an
  older key-ring backup must not bring back (``app.lifecycle.backup.restore_keyring``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

FORMAT = 1


class KeyRingError(RuntimeError):
    """The key ring is missing, unreadable or inconsistent; the vault refuses to work."""


class KeyProvider(Protocol):
    """What the vault needs from whoever holds the keys."""

    def current_kek_version(self) -> int: ...

    def kek(self, version: int) -> bytes: ...

    def kek_versions(self) -> list[int]: ...

    def add_kek_version(self) -> int: ...

    def retire_kek_version(self, version: int) -> None: ...

    def index_key(self) -> bytes: ...

    def audit_signing_key(self) -> ed25519.Ed25519PrivateKey: ...

    def shredded(self) -> set[str]: ...

    def record_shredded(self, data_key_ids: list[str]) -> None: ...


def kek_fingerprint(kek: bytes) -> str:
    """A name for one KEK that says nothing about it (SHA-256 of a 256-bit random key, with
    a domain prefix): how a retired KEK is recognised in an older key-ring backup."""
    return hashlib.sha256(b"mnv:kek-id:" + kek).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


class FileKeyRing:
    """The embedded key provider: one JSON file, written atomically with mode 0600."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict | None = None
        self._stamp: tuple[int, int, int] | None = None

    # -- life cycle ---------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        """Make a new key ring; refuses to overwrite one (that would orphan every ciphertext)."""
        if self.path.exists():
            raise KeyRingError(f"鍵リングは既に存在します: {self.path}")
        signing = ed25519.Ed25519PrivateKey.generate()
        data = {
            "format": FORMAT,
            "current_kek": 1,
            "keks": {"1": _b64(secrets.token_bytes(32))},
            "index_key": _b64(secrets.token_bytes(32)),
            "audit_signing_key": _b64(signing.private_bytes_raw()),
            "shredded": [],
        }
        self._write(data)

    def install(self, data: dict) -> None:
        """Write a key ring restored from its backup; refuses to overwrite an existing one."""
        if self.path.exists():
            raise KeyRingError(f"鍵リングは既に存在します: {self.path}")
        if data.get("format") != FORMAT or "keks" not in data or "index_key" not in data:
            raise KeyRingError("鍵リングの形式が不明です")
        with self._lock:
            self._write(json.loads(json.dumps(data)))

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
            self._data = None
        if self._data is None:
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
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise KeyRingError(f"鍵リングを読み込めません: {self.path}") from exc
            if data.get("format") != FORMAT:
                raise KeyRingError("鍵リングの形式が不明です")
            self._data = data
            self._stamp = stamp
        return self._data

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keyring-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
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
        self._data = data
        self._stamp = self._file_stamp()

    def reload(self) -> None:
        """Forget the cached copy (another process rotated or shredded)."""
        with self._lock:
            self._data = None
            self._stamp = None

    # -- KEKs ---------------------------------------------------------------------------
    def current_kek_version(self) -> int:
        return int(self._load()["current_kek"])

    def kek(self, version: int) -> bytes:
        keks = self._load()["keks"]
        if str(version) not in keks:
            raise KeyRingError(f"KEK バージョン {version} が鍵リングにありません")
        return _unb64(keks[str(version)])

    def kek_versions(self) -> list[int]:
        return sorted(int(v) for v in self._load()["keks"])

    def add_kek_version(self) -> int:
        with self._lock:
            data = json.loads(json.dumps(self._load()))
            version = max(int(v) for v in data["keks"]) + 1
            data["keks"][str(version)] = _b64(secrets.token_bytes(32))
            data["current_kek"] = version
            self._write(data)
            return version

    def retire_kek_version(self, version: int) -> None:
        """Destroy an old KEK: the ring file is rewritten (atomically) without it.

        Only ``app.lifecycle.keyops.retire`` calls this, after checking that nothing in the database
        depends on the version any more. A key-ring backup (``.mnvkeys``) made earlier
        still holds it: the ring keeps the version and its fingerprint (``retired``) so that
        restoring such a backup drops it again."""
        with self._lock:
            data = json.loads(json.dumps(self._load()))
            if int(data["current_kek"]) == version:
                raise KeyRingError(f"KEK バージョン {version} は現在の KEK のため廃棄できません")
            if str(version) not in data["keks"]:
                raise KeyRingError(f"KEK バージョン {version} は鍵リングにありません")
            fingerprint = kek_fingerprint(_unb64(data["keks"][str(version)]))
            del data["keks"][str(version)]
            data.setdefault("retired", []).append({"version": version, "fingerprint": fingerprint})
            self._write(data)

    def retired(self) -> list[dict]:
        """Every KEK retired from this ring: ``{"version", "fingerprint"}`` (no key material)."""
        return list(self._load().get("retired", []))

    # -- other secrets ------------------------------------------------------------------
    def index_key(self) -> bytes:
        return _unb64(self._load()["index_key"])

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

    # -- extra named secrets (intake keys and the like) -----------------------------------
    def get_secret(self, name: str) -> dict | None:
        """A named secret section other modules own (e.g. the intake HPKE key pair)."""
        return self._load().get("extra", {}).get(name)

    def set_secret(self, name: str, value: dict) -> None:
        with self._lock:
            data = json.loads(json.dumps(self._load()))
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
            data = json.loads(json.dumps(self._load()))
            known = set(data.get("shredded", []))
            data["shredded"] = sorted(known | {str(i) for i in data_key_ids})
            self._write(data)
