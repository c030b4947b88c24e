"""The key provider that keeps the KEKs inside an HSM, through PKCS#11 (python-pkcs11).

Objects in the token, all secret keys with ``CKA_TOKEN``, ``CKA_SENSITIVE`` and
``CKA_EXTRACTABLE = false`` (no one, this code included, can read them out), each found by
its label and a random ``CKA_ID`` the ring file records:

- ``<prefix>-kek-<version>``: one AES-256 KEK per version (encrypt/decrypt only);
- ``<prefix>-mac``: the HMAC-SHA256 key from which each MAC purpose's key is derived (the
  blind index's among them), sign/verify only;
- ``<prefix>-ring``: an AES-256 key that seals the secret parts of the ring file (the audit
  signing key and the named secrets: intake key, link key, canary list), so that the file
  alone, or its backup, opens nothing.

The ring file (``MYNUMBER_KEYRING``) keeps what needs no HSM: the versions and their labels,
each version's *working key* wrapped by its KEK, the shred list, the retired list.

**Working keys** (as KMS data-key caching does): each KEK version has a random 256-bit
working key, generated when the version is, wrapped inside the token under that KEK with
AES-256-GCM and stored wrapped in the ring file. A process that needs it asks the token to
unwrap it once and keeps it in memory for ``MYNUMBER_PKCS11_WORKING_KEY_TTL`` seconds (600
by default; 0: never kept, one token call per wrap or unwrap); the data keys of that version
are wrapped and unwrapped in the process under it. Likewise each MAC purpose's key is
derived by the token (an HMAC under ``<prefix>-mac``) and kept for the same time. Both are
dropped when the ring file changes (a rotation or retirement anywhere), when they expire and
when the process ends; they are never written anywhere. Retiring a KEK destroys the token
object, after which its working key can never be unwrapped again: every data key it wrapped,
in the database and in every backup, is gone with it. Why at all: one token call per person
(~30 µs on SoftHSM, far more over a network HSM) would make an import of a million people
several times slower (bench/hsm.py measures it).

One logged-in session per token and process, shared by every provider object of that token
and serialised by a lock (the library is initialised without its own locking). After a fork
(gunicorn, RQ) the child initialises the library again before its first call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.mechanisms import GCMParams

from app.vault import aead
from app.vault.keyring import (
    KeyRingError,
    RingFile,
    purpose_label,
    token_kek_fingerprint,
)

DEFAULT_PREFIX = "mnv"
DEFAULT_WORKING_KEY_TTL = 600.0

# A session or object handle that the token no longer knows (the HSM restarted, the network
# module reconnected): open a new session, find the keys again and try once more.
_STALE = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.TokenNotPresent,
    p11.UserNotLoggedIn,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
)
# What a token answers to a ciphertext or tag that does not verify (vendors differ).
_BAD_DATA = (
    p11.EncryptedDataInvalid,
    p11.EncryptedDataLenRange,
    p11.GeneralError,
    p11.FunctionFailed,
    p11.DataInvalid,
    p11.DataLenRange,
)

_libraries_lock = threading.Lock()
_libraries: dict[str, _Library] = {}


class _Library:
    """One PKCS#11 module in this process: its lock, its logged-in sessions, its pid."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.lock = threading.RLock()
        self.lib: Any = None
        self.pid = 0
        self.sessions: dict[str, Any] = {}
        self.objects: dict[tuple[str, str, bytes], Any] = {}

    def _ready(self) -> Any:
        if self.lib is None:
            try:
                self.lib = pkcs11.lib(self.module)
            except (OSError, p11.PKCS11Error) as exc:
                raise KeyRingError(
                    f"PKCS#11 モジュールを読み込めません: {self.module}（{type(exc).__name__}）"
                ) from exc
            self.pid = os.getpid()
        elif self.pid != os.getpid():
            # A forked child inherits the parent's library state but not its sessions: the
            # standard asks the child to initialise the library again before using it.
            self.lib.reinitialize()
            self.pid = os.getpid()
            self.sessions, self.objects = {}, {}
        return self.lib

    def reset(self) -> None:
        """Initialise the library again (its configuration may have changed: tests point
        SoftHSM at another token folder) and forget every session and object handle."""
        with self.lock:
            if self.lib is not None:
                self.lib.reinitialize()
                self.pid = os.getpid()
            self.sessions, self.objects = {}, {}

    def session(self, token_label: str, pin: Callable[[], str | None]) -> Any:
        found = self.sessions.get(token_label)
        if found is not None and self.pid == os.getpid():
            return found
        lib = self._ready()
        try:
            token = lib.get_token(token_label=token_label)
        except (p11.NoSuchToken, p11.MultipleTokensReturned) as exc:
            raise KeyRingError(
                f"HSM のトークン「{token_label}」が見つかりません（または複数あります）"
            ) from exc
        try:
            session = token.open(rw=True, user_pin=pin())
        except p11.UserAlreadyLoggedIn:
            session = token.open(rw=True)  # another provider object of this process logged in
        except p11.PinIncorrect as exc:
            raise KeyRingError(f"HSM のトークン「{token_label}」の PIN が違います") from exc
        except p11.PKCS11Error as exc:
            raise KeyRingError(
                f"HSM のトークン「{token_label}」を開けません（{type(exc).__name__}）"
            ) from exc
        self.sessions[token_label] = session
        return session

    def forget(self, token_label: str) -> None:
        self.sessions.pop(token_label, None)
        self.objects = {k: v for k, v in self.objects.items() if k[0] != token_label}


def library(module: str) -> _Library:
    with _libraries_lock:
        found = _libraries.get(module)
        if found is None:
            found = _libraries[module] = _Library(module)
        return found


def reset_library(module: str) -> None:
    """Initialise a PKCS#11 module again in this process (its configuration changed)."""
    library(module).reset()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


class Pkcs11KeyRing(RingFile):
    """KEKs and the MAC key inside a PKCS#11 token; the rest of the ring in its file."""

    provider = "pkcs11"

    def __init__(
        self,
        path: str | Path,
        module: str,
        token_label: str,
        pin: Callable[[], str | None],
        prefix: str = DEFAULT_PREFIX,
        working_key_ttl: float = DEFAULT_WORKING_KEY_TTL,
    ) -> None:
        super().__init__(path)
        self.module = module
        self.token_label = token_label
        self.prefix = prefix
        self.working_key_ttl = float(working_key_ttl)
        self._pin = pin
        self._working: dict[int, tuple[AESGCM, float]] = {}
        self._macs: dict[str, tuple[hmac.HMAC, float]] = {}

    # -- the token ----------------------------------------------------------------------
    def _run(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work(session)`` under the library's lock, on a fresh session once if the
        token lost the one we had."""
        lib = library(self.module)
        with lib.lock:
            for attempt in (1, 2):
                session = lib.session(self.token_label, self._pin)
                try:
                    return work(session)
                except _STALE:
                    lib.forget(self.token_label)
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _object(self, session: Any, entry: dict) -> Any:
        lib = library(self.module)
        key = (self.token_label, entry["label"], bytes.fromhex(entry["id"]))
        found = lib.objects.get(key)
        if found is None:
            try:
                found = session.get_key(
                    object_class=ObjectClass.SECRET_KEY, label=key[1], id=key[2]
                )
            except p11.NoSuchKey as exc:
                raise KeyRingError(
                    f"HSM に鍵「{entry['label']}」がありません（破棄済み、または別のトークン）"
                ) from exc
            lib.objects[key] = found
        return found

    def _labels(self, session: Any) -> set[str]:
        """Labels of every secret key of ours (``<prefix>-…``) in the token."""
        return {
            str(o.label)
            for o in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
            if str(o.label).startswith(self.prefix + "-")
        }

    def _generate(self, session: Any, label: str, key_type: KeyType, uses: MechanismFlag) -> dict:
        object_id = secrets.token_bytes(16)
        session.generate_key(
            key_type,
            256,
            id=object_id,
            label=label,
            store=True,
            capabilities=uses,
            template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.MODIFIABLE: False,
            },
        )
        return {"label": label, "id": object_id.hex()}

    def _generate_kek(self, session: Any, version: int) -> dict:
        label = f"{self.prefix}-kek-{version}"
        for stale in session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
        ):
            # Made by a rotation that stopped before the ring file named it: nothing was
            # ever wrapped under it, and the file is what says which keys exist.
            stale.destroy()
        entry = self._generate(
            session, label, KeyType.AES, MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
        )
        working = secrets.token_bytes(32)
        kek = self._object(session, entry)
        entry["working_key"] = _b64(
            self._token_seal(kek, version, self._working_aad(version), working)
        )
        return entry

    @staticmethod
    def _token_seal(key: Any, version: int, aad: bytes, plaintext: bytes) -> bytes:
        """AES-256-GCM inside the token, in a format-2 envelope (header in the AAD)."""
        header = aead.pack_header(version, secrets.token_bytes(aead.NONCE_SIZE))
        body = key.encrypt(
            plaintext,
            mechanism=Mechanism.AES_GCM,
            mechanism_param=GCMParams(header[7:], header + aad, 128),
        )
        return header + bytes(body)

    @staticmethod
    def _token_open(key: Any, aad: bytes, blob: bytes, version: int) -> bytes:
        env = aead.parse_envelope(blob)
        if env.format_version != aead.FORMAT_2 or env.key_version != version:
            raise aead.EnvelopeError(
                "暗号文の鍵バージョンが一致しません（改ざん、または鍵の不一致）"
            )
        try:
            return bytes(
                key.decrypt(
                    env.ciphertext,
                    mechanism=Mechanism.AES_GCM,
                    mechanism_param=GCMParams(env.nonce, env.header + aad, 128),
                )
            )
        except _BAD_DATA:
            raise aead.EnvelopeError("HSM で復号できません（改ざん、または鍵の不一致）") from None

    def _working_aad(self, version: int) -> bytes:
        return f"mnv:hsm-working-key:{self.prefix}:{version}".encode()

    def _ring_aad(self) -> bytes:
        return f"mnv:hsm-ring:{self.prefix}".encode()

    # -- the ring file ------------------------------------------------------------------
    _SECRET_SECTIONS = ("audit_signing_key", "extra")

    def _decode(self, stored: dict) -> dict:
        data = {k: v for k, v in stored.items() if k != "sealed"}

        def open_sealed(session: Any) -> bytes:
            key = self._object(session, stored["ring_key"])
            return self._token_open(key, self._ring_aad(), _unb64(stored["sealed"]), 0)

        try:
            data.update(json.loads(self._run(open_sealed)))
        except aead.EnvelopeError as exc:
            raise KeyRingError(
                "鍵リングの秘密部分を HSM で開けません（改ざん、または別の HSM）"
            ) from exc
        return data

    def _encode(self, data: dict) -> dict:
        stored = {k: v for k, v in data.items() if k not in self._SECRET_SECTIONS}
        secret = json.dumps({k: data[k] for k in self._SECRET_SECTIONS if k in data}).encode()

        def seal(session: Any) -> bytes:
            key = self._object(session, data["ring_key"])
            return self._token_seal(key, 0, self._ring_aad(), secret)

        stored["sealed"] = _b64(self._run(seal))
        return stored

    def _forget(self) -> None:
        self._working = {}
        self._macs = {}

    def _prepare_install(self, stored: dict) -> dict:
        """A ring file restored from its backup names token objects: the MAC and ring keys
        and the current KEK must be there (else it is another token's ring); an older KEK
        the token no longer holds was retired since, and is dropped (and listed as retired)."""
        for name in ("keks", "mac_key", "ring_key", "sealed", "current_kek"):
            if name not in stored:
                raise KeyRingError("鍵リングの形式が不明です")
        if stored.get("token_label") != self.token_label or stored.get("prefix") != self.prefix:
            raise KeyRingError(
                f"この鍵リングは HSM のトークン「{stored.get('token_label')}」"
                f"（ラベル接頭辞 {stored.get('prefix')}）のものです"
            )

        def present(session: Any, entry: dict) -> bool:
            try:
                self._object(session, entry)
            except KeyRingError:
                return False
            return True

        def check(session: Any) -> tuple[list[str], list[str]]:
            required = [stored["mac_key"], stored["ring_key"]]
            required.append(
                stored["keks"].get(str(stored["current_kek"])) or {"label": "?", "id": ""}
            )
            missing = [e["label"] for e in required if not present(session, e)]
            gone = [v for v, e in stored["keks"].items() if not present(session, e)]
            return missing, gone

        missing, gone = self._run(check)
        if missing:
            raise KeyRingError(
                "この鍵リングが指す鍵が HSM にありません（" + "、".join(missing) + "）。"
                "別のトークンか、廃棄より前の鍵リングです"
            )
        known = {int(r["version"]) for r in stored.get("retired", [])}
        for version in gone:
            entry = stored["keks"].pop(version)
            if int(version) not in known:
                stored.setdefault("retired", []).append(
                    {
                        "version": int(version),
                        "fingerprint": token_kek_fingerprint(
                            entry["label"], bytes.fromhex(entry["id"])
                        ),
                    }
                )
        return stored

    def create(self) -> None:
        """Make the KEK (version 1), the MAC key and the ring key in the token, and the ring
        file. Refused if the file exists, or if the token already holds keys of this prefix
        (they belong to another ring file: restore that one from its backup instead)."""
        self._refuse_existing()

        def make(session: Any) -> dict:
            taken = self._labels(session)
            if taken:
                raise KeyRingError(
                    f"HSM のトークン「{self.token_label}」には既に接頭辞「{self.prefix}」の鍵が"
                    f"あります（{'、'.join(sorted(taken))}）。その鍵リングのバックアップを"
                    "復元するか、別の接頭辞（MYNUMBER_PKCS11_KEY_PREFIX）を使ってください"
                )
            return {
                "mac_key": self._generate(
                    session,
                    f"{self.prefix}-mac",
                    KeyType.GENERIC_SECRET,
                    MechanismFlag.SIGN | MechanismFlag.VERIFY,
                ),
                "ring_key": self._generate(
                    session,
                    f"{self.prefix}-ring",
                    KeyType.AES,
                    MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                ),
                "keks": {"1": self._generate_kek(session, 1)},
            }

        made = self._run(make)
        data = self._new_common()
        data.update(made)
        data.update(
            provider=self.provider,
            token_label=self.token_label,
            prefix=self.prefix,
            current_kek=1,
            extra={},
        )
        with self._lock:
            self._write(data)

    def destroy(self) -> None:
        """Contract end: destroy every key of this ring in the token, then the file."""
        data = self._load() if self.path.exists() else None

        def destroy_objects(session: Any) -> None:
            entries = []
            if data is not None:
                entries = [data["mac_key"], data["ring_key"], *data["keks"].values()]
            for entry in entries:
                try:
                    self._object(session, entry).destroy()
                except KeyRingError:
                    continue  # already gone
            library(self.module).objects.clear()

        self._run(destroy_objects)
        super().destroy()

    # -- KEKs ---------------------------------------------------------------------------
    def _key_aead(self, data: dict, version: int) -> AESGCM:
        """The working key of KEK ``version``: unwrapped by the token on first use, then
        kept for ``working_key_ttl`` seconds (see the module's docstring)."""
        found = self._working.get(version)
        now = time.monotonic()
        if found is not None and found[1] > now:
            return found[0]
        entry = data["keks"].get(str(version))
        if entry is None:
            raise self._unknown(version)

        def unwrap(session: Any) -> bytes:
            kek = self._object(session, entry)
            return self._token_open(
                kek, self._working_aad(version), _unb64(entry["working_key"]), version
            )

        try:
            key = AESGCM(self._run(unwrap))
        except aead.EnvelopeError as exc:
            raise KeyRingError(f"KEK バージョン {version} の作業鍵を HSM で開けません") from exc
        if self.working_key_ttl > 0:
            self._working[version] = (key, now + self.working_key_ttl)
        return key

    def _check_unwrap(self, blob: bytes) -> None:
        if aead.header_format(blob[:3]) == aead.FORMAT_1:
            raise aead.EnvelopeError("HSM の鍵リングに形式 1 の暗号文はありません")

    def add_kek_version(self) -> int:
        with self._lock:
            data = self._change()
            version = max(int(v) for v in data["keks"]) + 1
            data["keks"][str(version)] = self._run(lambda s: self._generate_kek(s, version))
            data["current_kek"] = version
            self._write(data)
            return version

    def retire_kek_version(self, version: int) -> None:
        """Destroy an old KEK inside the token, then drop it from the ring file (keeping its
        fingerprint in ``retired``). The token object goes first: if the process stops
        between the two, the file names a KEK that no longer exists (harmless: nothing
        depended on it), never the other way round, where a ring-file backup and the token
        would still open what this retirement was meant to close."""
        with self._lock:
            data = self._change()
            self._check_retirable(data, version)
            entry = data["keks"][str(version)]

            def destroy(session: Any) -> None:
                try:
                    self._object(session, entry).destroy()
                except KeyRingError:
                    pass  # destroyed by an earlier attempt that stopped before the file
                library(self.module).objects.clear()

            self._run(destroy)
            fingerprint = token_kek_fingerprint(entry["label"], bytes.fromhex(entry["id"]))
            del data["keks"][str(version)]
            data.setdefault("retired", []).append({"version": version, "fingerprint": fingerprint})
            self._write(data)

    # -- MACs ---------------------------------------------------------------------------
    def derive(self, purpose: str) -> bytes:
        """HMAC-SHA256 of the purpose's label under the MAC key, inside the token."""
        return self._derive(self._load(), purpose)

    def _derive(self, data: dict, purpose: str) -> bytes:
        def sign(session: Any) -> bytes:
            key = self._object(session, data["mac_key"])
            return bytes(key.sign(purpose_label(purpose), mechanism=Mechanism.SHA256_HMAC))

        return self._run(sign)

    def _mac_state(self, data: dict, purpose: str) -> hmac.HMAC:
        found = self._macs.get(purpose)
        now = time.monotonic()
        if found is not None and found[1] > now:
            return found[0]
        state = hmac.new(self._derive(data, "mac:" + purpose), digestmod=hashlib.sha256)
        if self.working_key_ttl > 0:
            self._macs[purpose] = (state, now + self.working_key_ttl)
        return state


def read_pin(pin: str | None, pin_file: str | None) -> Callable[[], str | None]:
    """The token PIN, read when a session is opened: from a file (mode 0600 or 0400, one
    line) if one is named (the file is re-read at each login, so it can be replaced), else
    as given in the environment."""

    def load() -> str | None:
        if pin_file:
            path = Path(pin_file)
            try:
                mode = path.stat().st_mode & 0o777
                if mode & 0o077:
                    raise KeyRingError(
                        f"PIN ファイルの権限が広すぎます（{oct(mode)}）: {path} を 0600 にしてください"
                    )
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise KeyRingError(f"PIN ファイルを読み込めません: {path}") from exc
        return pin

    return load
