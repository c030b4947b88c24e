"""Sealed files: one streaming, authenticated encryption format for backups, key-ring backups
and the return archive, plus the recipient keys they are sealed to.

This module depends on the standard library and ``cryptography`` (>= 50) only, so the client
can run it alone to create a key pair and open a return archive::

    python3 sealed.py keygen --out client          # client.key (0600) and client.pub
    python3 sealed.py open ARCHIVE --key client.key --operator-key operator.pem --out DIR

(installed as ``mynumber-archive``; ``mynumber open-archive`` does the same).

Format (all integers big endian)::

    b"MNVSEAL1"                       magic, 8 bytes
    u32 n | header (n bytes, UTF-8 JSON, sorted keys): purpose, created_at, chunk_size,
            wrap (how the file key is wrapped), meta (purpose-specific, public), and when
            signed: key_commitment (SHA-256 of a label and the file key) and sig (Ed25519
            over the canonical header without sig)
    u32 m | wrapped file key (m bytes)
    chunks: u32 k | AES-256-GCM ciphertext+tag (k bytes)

A fresh random 256-bit file key encrypts the chunks (STREAM construction): the nonce of chunk
``i`` is ``i`` as 11 bytes followed by 1 for the last chunk and 0 otherwise, and every chunk's
AAD is ``SHA-256(magic || header)``. So a changed header, a reordered, dropped or added chunk,
and a truncated file all fail to decrypt. The file key is wrapped either

- with RFC 9180 HPKE to a recipient public key (``wrap.type = "hpke"``): the post-quantum
  hybrid ML-KEM-768 + X25519 by default (a My Number is meant for life; what is sealed today
  must stay secret against tomorrow's computers), or plain X25519 when the recipient gave a
  standard X25519 PEM key (``openssl genpkey -algorithm X25519``); HKDF-SHA256, AES-256-GCM;
  the HPKE ``info`` is ``b"mnv-seal-v1|" + SHA-256(magic || header)``; or
- under a key derived from the vault's KEK (``wrap.type = "kek"``, database backups): see
  ``app.lifecycle.backup``.

Recipient key files are small JSON documents (``format`` ``mnv-recipient-public-v1`` /
``mnv-recipient-private-v1``) holding the raw key parts in base64.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import struct
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"MNVSEAL1"
BACKUP_SUFFIX = ".mnvbak"  # a database backup, its file key wrapped by a KEK
KEYRING_SUFFIX = ".mnvkeys"  # a key-ring backup, sealed to the recovery key
DEFAULT_CHUNK = 256 * 1024
MAX_CHUNK = 16 * 1024 * 1024
MAX_HEADER = 1024 * 1024
TAG = 16
_U32 = struct.Struct(">I")

KEM_HYBRID = "MLKEM768_X25519"
KEM_X25519 = "X25519"
PUBLIC_FORMAT = "mnv-recipient-public-v1"
PRIVATE_FORMAT = "mnv-recipient-private-v1"

PURPOSE_LABELS = {
    "backup": "データベースのバックアップ",
    "keyring": "鍵リングのバックアップ",
    "return-archive": "返却データ",
}


class SealedError(ValueError):
    """The file is not a sealed file we wrote, was altered or truncated, or the key is wrong.
    The message is Japanese and never contains the file's content."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


# -- recipient keys ------------------------------------------------------------------------
@dataclass(frozen=True)
class RecipientPublic:
    kem: str
    key: object  # hpke.MLKEM768X25519PublicKey or x25519.X25519PublicKey
    raw: bytes  # canonical public bytes, for the fingerprint

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.kem.encode("ascii") + b"\0" + self.raw).hexdigest()

    def text(self) -> str:
        """The public key file's content (JSON for the hybrid key, PEM for plain X25519)."""
        if self.kem == KEM_X25519:
            return self.key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii")
        return (
            json.dumps(
                {
                    "format": PUBLIC_FORMAT,
                    "kem": self.kem,
                    "mlkem768": _b64(self.raw[:-32]),
                    "x25519": _b64(self.raw[-32:]),
                    "fingerprint": self.fingerprint,
                },
                indent=1,
            )
            + "\n"
        )


@dataclass(frozen=True)
class RecipientPrivate:
    kem: str
    key: object
    public: RecipientPublic


def _hpke():
    return hpke


def _hybrid_public(mlkem_pub: mlkem.MLKEM768PublicKey, x_pub: x25519.X25519PublicKey):
    hpke = _hpke()
    key = hpke.MLKEM768X25519PublicKey(mlkem_pub, x_pub)
    raw = mlkem_pub.public_bytes_raw() + x_pub.public_bytes_raw()
    return RecipientPublic(KEM_HYBRID, key, raw)


def generate_recipient() -> tuple[str, str]:
    """A new hybrid (ML-KEM-768 + X25519) key pair: (private file text, public file text)."""
    m_priv = mlkem.MLKEM768PrivateKey.generate()
    x_priv = x25519.X25519PrivateKey.generate()
    public = _hybrid_public(m_priv.public_key(), x_priv.public_key())
    private_text = (
        json.dumps(
            {
                "format": PRIVATE_FORMAT,
                "kem": KEM_HYBRID,
                "mlkem768_seed": _b64(m_priv.private_bytes_raw()),
                "x25519": _b64(x_priv.private_bytes_raw()),
                "fingerprint": public.fingerprint,
            },
            indent=1,
        )
        + "\n"
    )
    return private_text, public.text()


def load_public(data: str | bytes) -> RecipientPublic:
    """Read a recipient public key: our JSON file, or a standard X25519 public key in PEM."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, TypeError) as exc:
            raise SealedError("公開鍵（PEM）を読み込めません") from exc
        if not isinstance(key, x25519.X25519PublicKey):
            raise SealedError(
                "公開鍵は X25519 またはハイブリッド鍵（ML-KEM-768 + X25519）にしてください"
            )
        return RecipientPublic(KEM_X25519, key, key.public_bytes_raw())
    try:
        doc = json.loads(text)
        if doc.get("format") != PUBLIC_FORMAT or doc.get("kem") != KEM_HYBRID:
            raise ValueError
        m_pub = mlkem.MLKEM768PublicKey.from_public_bytes(_unb64(doc["mlkem768"]))
        x_pub = x25519.X25519PublicKey.from_public_bytes(_unb64(doc["x25519"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SealedError(
            "公開鍵ファイルの形式が不明です（mynumber-archive keygen で作った .pub、"
            "または X25519 の PEM 公開鍵を指定してください）"
        ) from exc
    return _hybrid_public(m_pub, x_pub)


def load_private(data: str | bytes) -> RecipientPrivate:
    """Read a recipient private key: our JSON file, or a standard X25519 private key in PEM."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError) as exc:
            raise SealedError("秘密鍵（PEM）を読み込めません") from exc
        if not isinstance(key, x25519.X25519PrivateKey):
            raise SealedError("秘密鍵が X25519 ではありません")
        pub = key.public_key()
        return RecipientPrivate(
            KEM_X25519, key, RecipientPublic(KEM_X25519, pub, pub.public_bytes_raw())
        )
    try:
        doc = json.loads(text)
        if doc.get("format") != PRIVATE_FORMAT or doc.get("kem") != KEM_HYBRID:
            raise ValueError
        m_priv = mlkem.MLKEM768PrivateKey.from_seed_bytes(_unb64(doc["mlkem768_seed"]))
        x_priv = x25519.X25519PrivateKey.from_private_bytes(_unb64(doc["x25519"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SealedError("秘密鍵ファイルの形式が不明です") from exc
    hpke = _hpke()
    return RecipientPrivate(
        KEM_HYBRID,
        hpke.MLKEM768X25519PrivateKey(m_priv, x_priv),
        _hybrid_public(m_priv.public_key(), x_priv.public_key()),
    )


def _suite(kem: str):
    hpke = _hpke()
    kems = {KEM_HYBRID: hpke.KEM.MLKEM768_X25519, KEM_X25519: hpke.KEM.X25519}
    if kem not in kems:
        raise SealedError(f"未対応の鍵方式です: {kem}")
    return hpke.Suite(kems[kem], hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


# -- key wrapping ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Wrapper:
    """How a file key is wrapped: ``descriptor`` goes into the header, ``wrap`` and ``unwrap``
    turn (file key, header digest) into the stored blob and back."""

    descriptor: dict
    wrap: Callable[[bytes, bytes], bytes] | None = None
    unwrap: Callable[[bytes, bytes], bytes] | None = None


def _hpke_info(digest: bytes) -> bytes:
    return b"mnv-seal-v1|" + digest


def to_recipient(public: RecipientPublic) -> Wrapper:
    suite = _suite(public.kem)
    return Wrapper(
        {
            "type": "hpke",
            "kem": public.kem,
            "kdf": "HKDF_SHA256",
            "aead": "AES_256_GCM",
            "recipient": public.fingerprint,
        },
        wrap=lambda key, digest: suite.encrypt(key, public.key, info=_hpke_info(digest)),
    )


def from_recipient(private: RecipientPrivate) -> Callable[[dict, bytes, bytes], bytes]:
    """An unwrapper for ``open_stream``: checks the header names this recipient."""

    def unwrap(wrap: dict, blob: bytes, digest: bytes) -> bytes:
        if wrap.get("type") != "hpke":
            raise SealedError("このファイルは受取人の公開鍵で暗号化されていません")
        if wrap.get("recipient") != private.public.fingerprint:
            raise SealedError(
                "このファイルは別の鍵あての暗号化です（公開鍵の指紋 "
                f"{str(wrap.get('recipient'))[:16]}… と秘密鍵が一致しません）"
            )
        try:
            return _suite(wrap.get("kem", "")).decrypt(blob, private.key, info=_hpke_info(digest))
        except (InvalidTag, ValueError) as exc:
            raise SealedError("ファイル鍵を復号できません（改ざんまたは鍵の不一致）") from exc

    return unwrap


# -- writing -------------------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def key_commitment(key: bytes) -> bytes:
    """A one-way commitment to a file key, kept in the signed header."""
    return hashlib.sha256(b"mnv-seal-v1-key-commitment|" + key).digest()


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class SealedWriter(io.RawIOBase):
    """A write-only, non-seekable stream that seals everything written to it into ``out``.

    Plaintext is held in memory one chunk at a time and never touches a file. ``close()``
    writes the last chunk; a writer that is not closed leaves a file that fails to open.
    """

    def __init__(
        self,
        out: BinaryIO,
        purpose: str,
        wrapper: Wrapper,
        meta: dict | None = None,
        signer: Callable[[bytes], bytes] | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__()
        self._out = out
        self._chunk_size = chunk_size
        key = secrets.token_bytes(32)
        header = {
            "format": 1,
            "purpose": purpose,
            "created_at": _now(),
            "chunk_size": chunk_size,
            "wrap": wrapper.descriptor,
            "meta": meta or {},
        }
        if signer is not None:
            # The signature covers the file key too (by its commitment): without it, anyone
            # holding the recipient's public key could keep a genuine signed header and wrap a
            # key of their own for chunks of their own.
            header["key_commitment"] = _b64(key_commitment(key))
            header["sig"] = _b64(signer(canonical(header)))
        self.header = header
        header_bytes = canonical(header)
        self.digest = hashlib.sha256(MAGIC + header_bytes).digest()
        blob = wrapper.wrap(key, self.digest)
        self._aead = AESGCM(key)
        self._buffer = bytearray()
        self._index = 0
        self.bytes_in = 0
        out.write(MAGIC + _U32.pack(len(header_bytes)) + header_bytes)
        out.write(_U32.pack(len(blob)) + blob)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("closed")
        view = memoryview(data).cast("B")
        self._buffer += view
        self.bytes_in += len(view)
        while len(self._buffer) > self._chunk_size:
            self._emit(bytes(self._buffer[: self._chunk_size]), last=False)
            del self._buffer[: self._chunk_size]
        return len(view)

    def _emit(self, plaintext: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index, last), plaintext, self.digest)
        self._out.write(_U32.pack(len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._out.flush()
        super().close()


# -- reading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    fields: dict
    digest: bytes
    blob: bytes

    @property
    def purpose(self) -> str:
        return self.fields.get("purpose", "")

    @property
    def meta(self) -> dict:
        return self.fields.get("meta", {})

    @property
    def wrap(self) -> dict:
        return self.fields.get("wrap", {})


def _read_exact(inp: BinaryIO, size: int, what: str) -> bytes:
    data = inp.read(size)
    if data is None or len(data) != size:
        raise SealedError(f"ファイルが途中で切れています（{what}）")
    return data


def read_header(inp: BinaryIO) -> Header:
    if inp.read(len(MAGIC)) != MAGIC:
        raise SealedError("MyNumber Vault の暗号化ファイルではありません")
    (size,) = _U32.unpack(_read_exact(inp, 4, "ヘッダー"))
    if size > MAX_HEADER:
        raise SealedError("ヘッダーが大きすぎます")
    header_bytes = _read_exact(inp, size, "ヘッダー")
    try:
        fields = json.loads(header_bytes.decode("utf-8"))
    except ValueError as exc:
        raise SealedError("ヘッダーを読み込めません") from exc
    if fields.get("format") != 1:
        raise SealedError("暗号化ファイルの形式バージョンに対応していません")
    (blob_size,) = _U32.unpack(_read_exact(inp, 4, "鍵"))
    if blob_size > 64 * 1024:
        raise SealedError("ファイル鍵の長さが不正です")
    blob = _read_exact(inp, blob_size, "鍵")
    return Header(fields, hashlib.sha256(MAGIC + header_bytes).digest(), blob)


def iter_plaintext(inp: BinaryIO, header: Header, key: bytes) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk; raise SealedError on any alteration or truncation.
    A caller that streams the output elsewhere must discard it if this raises."""
    aead = AESGCM(key)
    limit = min(int(header.fields.get("chunk_size", DEFAULT_CHUNK)), MAX_CHUNK) + TAG
    index = 0
    while True:
        size_bytes = inp.read(4)
        if not size_bytes:
            raise SealedError("ファイルが途中で切れています（最後の区画がありません）")
        if len(size_bytes) != 4:
            raise SealedError("ファイルが途中で切れています")
        (size,) = _U32.unpack(size_bytes)
        if size > limit or size < TAG:
            raise SealedError("区画の長さが不正です")
        sealed = _read_exact(inp, size, "区画")
        plaintext = None
        for last in (False, True):
            try:
                plaintext = aead.decrypt(_nonce(index, last), sealed, header.digest)
            except InvalidTag:
                continue
            break
        if plaintext is None:
            raise SealedError(
                f"区画 {index} を復号できません（改ざん・順序の入れ替え・鍵の不一致）"
            )
        yield plaintext
        index += 1
        if last:
            if inp.read(1):
                raise SealedError("最後の区画の後に余分なデータがあります")
            return


def open_stream(
    inp: BinaryIO,
    unwrap: Callable[[dict, bytes, bytes], bytes],
    purpose: str | None = None,
    signer_key: ed25519.Ed25519PublicKey | None = None,
) -> tuple[Header, Iterator[bytes]]:
    """The header and the plaintext chunks. With ``signer_key``, the header must carry that
    key's signature and the unwrapped file key must be the one the signature commits to:
    a file sealed by anyone else is refused before a byte of it is decrypted."""
    header = read_header(inp)
    if purpose and header.purpose != purpose:
        raise SealedError(
            f"ファイルの種類が違います（{PURPOSE_LABELS.get(header.purpose, header.purpose)}）"
        )
    if signer_key is not None:
        require_signature(header, signer_key)
    key = unwrap(header.wrap, header.blob, header.digest)
    if signer_key is not None and not secrets.compare_digest(
        key_commitment(key), _unb64(header.fields["key_commitment"])
    ):
        raise SealedError(
            "ファイル鍵が署名された内容と一致しません（署名付きのヘッダーに別の内容が"
            "つなぎ合わされています）。開かずに、発行元に確認してください"
        )
    return header, iter_plaintext(inp, header, key)


def verify_signature(header: Header, public_key: ed25519.Ed25519PublicKey) -> bool:
    fields = dict(header.fields)
    sig = fields.pop("sig", None)
    if not sig:
        return False
    try:
        public_key.verify(_unb64(sig), canonical(fields))
    except Exception:  # noqa: BLE001 - any failure means "not signed by this key"
        return False
    return True


def load_signer_key(data: bytes) -> ed25519.Ed25519PublicKey:
    """The issuer's (operator's) Ed25519 public key in PEM, as ``mynumber keys
    operator-public-key`` exports it."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SealedError("発行元の公開鍵（PEM）を読み込めません") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SealedError("発行元の公開鍵が Ed25519 ではありません")
    return key


def signer_fingerprint(key: ed25519.Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, in hex: what the operator reads out to the client."""
    return hashlib.sha256(key.public_bytes_raw()).hexdigest()


def require_signature(header: Header, key: ed25519.Ed25519PublicKey) -> None:
    """Refuse a header that is unsigned, signed by another key, altered after signing, or
    signed without the file-key commitment (a file written before it existed)."""
    if not header.fields.get("sig"):
        raise SealedError(
            "このファイルには発行元の署名がありません。開かずに、発行元に確認してください"
        )
    if not verify_signature(header, key):
        raise SealedError(
            "発行元の署名を確認できません（指定した公開鍵（指紋 "
            f"{signer_fingerprint(key)[:16]}…）の署名ではないか、ファイルが改ざんされています）。"
            "開かずに、発行元に確認してください"
        )
    try:
        if len(_unb64(str(header.fields.get("key_commitment", "")))) != 32:
            raise ValueError
    except ValueError as exc:
        raise SealedError(
            "このファイルの署名はファイル鍵を含まない古い形式です。発行元に作り直しを依頼してください"
        ) from exc


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def write_private_file(path: str | Path, text: str) -> None:
    """Create a private key file readable by its owner only; refuse to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


# -- the return archive, client side -----------------------------------------------------------
ARCHIVE_MANIFEST = "manifest.json"


@dataclass
class OpenResult:
    folder: Path
    files: list[str]
    manifest: dict
    header: Header


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise SealedError(f"アーカイブ内のファイル名が不正です: {name}")
    return path


def open_archive(
    archive: str | Path,
    private: RecipientPrivate,
    out_dir: str | Path,
    *,
    operator_key: ed25519.Ed25519PublicKey,
) -> OpenResult:
    """Decrypt a return archive into ``out_dir`` and check every file against the manifest's
    SHA-256 sums. Nothing is left behind when a check fails (the folder is the client's).

    ``operator_key`` is the operator's public key the client pinned (received when the
    contract began, not from the archive or the portal): only an archive the operator's
    instance signed is opened, so a file someone else sealed to the client's public key —
    which is no secret — cannot pass for the returned data."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    zip_path = out / ".mnv-archive.zip.part"
    written: list[Path] = []
    try:
        with open(archive, "rb") as inp, open(zip_path, "wb") as sink:
            os.chmod(zip_path, 0o600)
            header, chunks = open_stream(
                inp, from_recipient(private), purpose="return-archive", signer_key=operator_key
            )
            for chunk in chunks:
                sink.write(chunk)
        with zipfile.ZipFile(zip_path) as zf:
            try:
                manifest = json.loads(zf.read(ARCHIVE_MANIFEST).decode("utf-8"))
            except KeyError as exc:
                raise SealedError("アーカイブに manifest.json がありません") from exc
            expected = {item["path"]: item for item in manifest.get("files", [])}
            names = [n for n in zf.namelist() if not n.endswith("/")]
            problems = []
            for name in names:
                rel = _safe_member(name)
                target = out.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with zf.open(name) as src, open(target, "wb") as dst:
                    written.append(target)
                    for block in iter(lambda src=src: src.read(1024 * 1024), b""):
                        digest.update(block)
                        dst.write(block)
                if name == ARCHIVE_MANIFEST:
                    continue
                item = expected.pop(name, None)
                if item is None:
                    problems.append(f"{name}（マニフェストにありません）")
                elif item.get("sha256") != digest.hexdigest():
                    problems.append(f"{name}（SHA-256 が一致しません）")
            problems += [f"{name}（アーカイブにありません）" for name in expected]
            if problems:
                raise SealedError(
                    "マニフェストと一致しないファイルがあります: " + "、".join(problems)
                )
        return OpenResult(out, sorted(str(p.relative_to(out)) for p in written), manifest, header)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        zip_path.unlink(missing_ok=True)


class _Parser(argparse.ArgumentParser):
    """argparse whose refusal of a command line is a Japanese line naming the option."""

    def error(self, message: str) -> NoReturn:
        missing = message.partition("the following arguments are required: ")[2]
        text = (
            f"次の指定が必要です: {missing}" if missing else f"指定が正しくありません（{message}）"
        )
        self.print_usage(sys.stderr)
        self.exit(2, f"エラー: {text}\n")


def main(argv: list[str] | None = None) -> int:
    """``mynumber-archive``: the client's tool (key pair, open and check a return archive)."""
    parser = _Parser(
        prog="mynumber-archive", description="MyNumber Vault の返却データを開くためのツール"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="受取用の鍵ペアを作る（.key は自分だけが保管）")
    keygen.add_argument("--out", required=True, help="出力ファイル名の接頭辞（例: client）")
    opener = sub.add_parser("open", help="返却データを復号し、SHA-256 を照合して展開する")
    opener.add_argument("archive")
    opener.add_argument("--key", required=True, help="受取用の秘密鍵（keygen の .key）")
    opener.add_argument("--out", required=True, help="展開先フォルダ")
    opener.add_argument(
        "--operator-key",
        required=True,
        help="発行元（受託者）の署名用公開鍵（契約時に受け取った PEM。指紋を確認済みのもの）",
    )
    info = sub.add_parser("info", help="暗号化ファイルのヘッダー（公開情報）を表示する")
    info.add_argument("file")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            private_text, public_text = generate_recipient()
            write_private_file(f"{args.out}.key", private_text)
            Path(f"{args.out}.pub").write_text(public_text, encoding="utf-8")
            fingerprint = load_public(public_text).fingerprint
            print(f"鍵ペアを作成しました: {args.out}.key（秘密鍵・0600）、{args.out}.pub（公開鍵）")
            print(f"公開鍵の指紋: {fingerprint}")
        elif args.command == "open":
            with open(args.key, "rb") as handle:
                private = load_private(handle.read(64 * 1024))
            with open(args.operator_key, "rb") as handle:
                operator_key = load_signer_key(handle.read(64 * 1024))
            result = open_archive(args.archive, private, args.out, operator_key=operator_key)
            print(
                f"発行元の署名を確認しました（公開鍵の指紋 {signer_fingerprint(operator_key)}）。"
                f"返却データを展開し、{len(result.manifest.get('files', []))} 件のファイルの "
                f"SHA-256 がマニフェストと一致することを確認しました: {result.folder}"
            )
        else:
            with open(args.file, "rb") as handle:
                header = read_header(handle)
            print(json.dumps(header.fields, ensure_ascii=False, indent=1))
    except (SealedError, OSError, zipfile.BadZipFile) as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
