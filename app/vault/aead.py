"""The envelope's bytes and AES-256-GCM over them: what every key provider and the vault share.

An envelope is ``b"MV"`` | format (1 byte) | key version (4 bytes, big endian) | nonce (12
bytes) | ciphertext+tag. The key version is the KEK version for a wrapped key and the DEK
version for a field.

- **Format 2** (everything written now): the 19-byte header is part of the AAD, before the
  caller's own AAD. A changed format, key version or nonce byte fails like any other changed
  byte, without each reader having to remember to compare the version it expected.
- **Format 1** (written before): the header is outside the AAD. Still read, so that nothing
  stored has to be rewritten at once; a reader that knows which key version it holds passes
  it and an altered version field is refused (``unseal(..., key_version=...)``).
  ``mynumber keys rotate`` rewrites every envelope under a KEK (wrapped data keys and
  system-sealed secrets) as format 2.

Kept apart from ``app.vault.envelopes`` so that the key providers (``keyring``, ``hsm``) and
the vault use one implementation without importing each other.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"MV"
FORMAT_1 = 1
FORMAT_2 = 2
FORMAT_VERSION = FORMAT_2  # what seal() writes
READABLE_FORMATS = frozenset({FORMAT_1, FORMAT_2})
_HEADER = struct.Struct(">2sBI12s")  # magic, format, key version, nonce
HEADER_SIZE = _HEADER.size
NONCE_SIZE = 12
TAG_SIZE = 16
_PREFIXES = frozenset(MAGIC + bytes([f]) for f in READABLE_FORMATS)


class VaultError(RuntimeError):
    """Base class: the message is Japanese and never contains plaintext."""


class EnvelopeError(VaultError):
    """The bytes are not an envelope we wrote, or they were altered or moved."""


@dataclass(frozen=True)
class Envelope:
    format_version: int
    key_version: int
    nonce: bytes
    ciphertext: bytes
    header: bytes


def pack_header(key_version: int, nonce: bytes, fmt: int = FORMAT_VERSION) -> bytes:
    return _HEADER.pack(MAGIC, fmt, key_version, nonce)


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
    if fmt not in READABLE_FORMATS:
        raise EnvelopeError(f"暗号文の形式バージョン {fmt} には対応していません")
    return Envelope(fmt, key_version, nonce, blob[HEADER_SIZE:], blob[:HEADER_SIZE])


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
    if magic != MAGIC or fmt not in READABLE_FORMATS:
        return None
    return key_version


def header_format(prefix: bytes | None) -> int | None:
    """The format byte of an envelope (1 or 2), or ``None`` for bytes that are not one."""
    if prefix is None or len(prefix) < 3 or bytes(prefix[:3]) not in _PREFIXES:
        return None
    return prefix[2]


def aad_for(env: Envelope, aad: bytes) -> bytes:
    """The AAD an envelope was sealed with: its header first in format 2, none in format 1."""
    return env.header + aad if env.format_version == FORMAT_2 else aad


def seal_with(aead: AESGCM, key_version: int, aad: bytes, plaintext: bytes) -> bytes:
    """Seal under a ready AES-GCM object (format 2, random 96-bit nonce)."""
    header = pack_header(key_version, os.urandom(NONCE_SIZE))
    return header + aead.encrypt(header[7:], plaintext, header + aad)


def open_with(aead: AESGCM, aad: bytes, blob: bytes, key_version: int | None = None) -> bytes:
    """Open an envelope (format 1 or 2) under a ready AES-GCM object; a wrong key, a wrong
    AAD or any altered byte raises EnvelopeError."""
    env = parse_envelope(blob)
    if key_version is not None and env.key_version != key_version:
        raise EnvelopeError("暗号文の鍵バージョンが一致しません（改ざん、または鍵の不一致）")
    try:
        return aead.decrypt(env.nonce, env.ciphertext, aad_for(env, aad))
    except InvalidTag:
        raise EnvelopeError(
            "暗号文を復号できません（改ざん、別の行・列への移動、または鍵の不一致）"
        ) from None


def seal(key: bytes, key_version: int, aad: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM with a random 96-bit nonce, in a format-2 envelope."""
    return seal_with(AESGCM(key), key_version, aad, plaintext)


def unseal(key: bytes, aad: bytes, blob: bytes, key_version: int | None = None) -> bytes:
    """Decrypt an envelope; a wrong key, wrong AAD or any altered byte raises EnvelopeError.

    Format 1 leaves the header outside the AAD, so a caller that knows which key version it
    holds passes ``key_version``: an altered version field is then refused in both formats."""
    return open_with(AESGCM(key), aad, blob, key_version)
