"""Sealing submissions to the intake key: RFC 9180 HPKE, post-quantum hybrid.

Suite: ML-KEM-768 + X25519 (``KEM.MLKEM768_X25519``), HKDF-SHA256, AES-256-GCM, base mode.
A My Number is for life, so what is recorded today must stay secret against a future quantum
computer: the hybrid stays safe while either ML-KEM-768 or X25519 holds.

Two halves, deliberately in one module so both sides agree on the format:
- the public half (``IntakePublicKey``, ``seal``) is all the public form ever has;
- the private half (``generate``, ``private_key``, ``open_sealed``) is used only by the admin
  side, with the private key from the key ring (``get_secret(SECRET_NAME)``).

The ``info`` string of every seal binds the format version, the request, the submission and
the part, so a ciphertext moved to another request, submission or part does not open.

cryptography 50 has no serialiser for the hybrid key: its two parts are stored separately
(ML-KEM seed / public bytes, X25519 raw bytes) and the hybrid key is rebuilt from them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

FORMAT_VERSION = 1
KEM_NAME = "MLKEM768_X25519"
SECRET_NAME = "intake_hpke"  # noqa: S105  # nosec B105  # the key-ring entry name, not a secret
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class SealError(ValueError):
    """A sealed blob cannot be opened (wrong key, wrong binding, altered bytes)."""


class IntakeKeyError(RuntimeError):
    """The intake key (public file or private secret) is missing or malformed."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _key_id(mlkem_public: bytes, x25519_public: bytes) -> str:
    """A short fingerprint of the public key, stored with every submission."""
    return hashlib.sha256(b"mnv-intake-key|" + mlkem_public + x25519_public).hexdigest()[:16]


@dataclass(frozen=True)
class IntakePublicKey:
    """The recipient public key the form seals to; carries no secret at all."""

    key_id: str
    key: hpke.MLKEM768X25519PublicKey

    @classmethod
    def from_dict(cls, data: dict) -> IntakePublicKey:
        try:
            if data.get("kem") != KEM_NAME or data.get("format") != FORMAT_VERSION:
                raise IntakeKeyError("受付用公開鍵の形式が不明です")
            mlkem_raw = _unb64(data["mlkem768_public"])
            x_raw = _unb64(data["x25519_public"])
            key = hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(mlkem_raw),
                x25519.X25519PublicKey.from_public_bytes(x_raw),
            )
        except IntakeKeyError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise IntakeKeyError("受付用公開鍵を読み込めません") from exc
        key_id = _key_id(mlkem_raw, x_raw)
        if data.get("key_id") != key_id:
            raise IntakeKeyError("受付用公開鍵の鍵IDが内容と一致しません")
        return cls(key_id, key)

    @classmethod
    def from_file(cls, path: str | Path) -> IntakePublicKey:
        path = Path(path)
        if not path.exists():
            raise IntakeKeyError(
                f"受付用公開鍵ファイルがありません: {path}（`mynumber init` を実行してください）"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IntakeKeyError(f"受付用公開鍵ファイルを読み込めません: {path}") from exc
        return cls.from_dict(data)


def _public_dict(
    mlkem_private: mlkem.MLKEM768PrivateKey, x_private: x25519.X25519PrivateKey
) -> dict:
    mlkem_public = mlkem_private.public_key().public_bytes_raw()
    x_public = x_private.public_key().public_bytes_raw()
    return {
        "format": FORMAT_VERSION,
        "kem": KEM_NAME,
        "key_id": _key_id(mlkem_public, x_public),
        "mlkem768_public": _b64(mlkem_public),
        "x25519_public": _b64(x_public),
    }


def generate() -> tuple[dict, dict]:
    """A new intake key pair: (secret entry for the key ring, public dict for the form)."""
    mlkem_private = mlkem.MLKEM768PrivateKey.generate()
    x_private = x25519.X25519PrivateKey.generate()
    public = _public_dict(mlkem_private, x_private)
    secret = {
        "key_id": public["key_id"],
        "mlkem768_seed": _b64(mlkem_private.private_bytes_raw()),
        "x25519_private": _b64(x_private.private_bytes_raw()),
    }
    return secret, public


def public_from_secret(secret: dict) -> dict:
    """The public dict derived from a key-ring entry (so the exported file cannot drift)."""
    try:
        return _public_dict(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(_unb64(secret["mlkem768_seed"])),
            x25519.X25519PrivateKey.from_private_bytes(_unb64(secret["x25519_private"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IntakeKeyError("受付用秘密鍵を読み込めません") from exc


def write_public_file(public: dict, path: str | Path) -> None:
    """Export the public half for the form app (it may be copied to another host)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(public, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    path.chmod(0o644)


def private_key(secret: dict) -> hpke.MLKEM768X25519PrivateKey:
    """Rebuild the hybrid private key from its key-ring entry (admin side only)."""
    try:
        key = hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(_unb64(secret["mlkem768_seed"])),
            x25519.X25519PrivateKey.from_private_bytes(_unb64(secret["x25519_private"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IntakeKeyError("受付用秘密鍵を読み込めません") from exc
    return key


# -- bindings -----------------------------------------------------------------------------
def part_info(request_id: object, submission_id: object, part_id: object) -> bytes:
    return f"mnv-intake|v{FORMAT_VERSION}|part|{request_id}|{submission_id}|{part_id}".encode()


def manifest_info(request_id: object, submission_id: object) -> bytes:
    return f"mnv-intake|v{FORMAT_VERSION}|manifest|{request_id}|{submission_id}".encode()


# -- seal / open --------------------------------------------------------------------------
def seal(public: IntakePublicKey, info: bytes, plaintext: bytes) -> bytes:
    """Encrypt to the intake public key; only the holder of the private key can open it."""
    return SUITE.encrypt(plaintext, public.key, info=info)


def open_sealed(key: hpke.MLKEM768X25519PrivateKey, info: bytes, blob: bytes) -> bytes:
    """Decrypt a sealed blob; a wrong key, a wrong binding or any altered byte fails."""
    try:
        return SUITE.decrypt(bytes(blob), key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise SealError(
            "封緘データを開封できません（改ざん、別の依頼・提出への移動、または鍵の不一致）"
        ) from exc
