"""Which key provider holds the KEKs, from the settings (``MYNUMBER_KEY_PROVIDER``).

- ``file`` (the default, embedded mode): ``FileKeyRing``, the ring file under
  ``MYNUMBER_HOME``;
- ``pkcs11``: ``Pkcs11KeyRing``, KEKs and the MAC key inside an HSM token reached through a
  PKCS#11 module (``MYNUMBER_PKCS11_MODULE``, ``…_TOKEN_LABEL``, ``…_PIN_FILE`` or ``…_PIN``).

Both implement ``app.vault.keyring.KeyProvider`` and keep the rest of the ring (audit
signing key, shred list, named secrets) in ``MYNUMBER_KEYRING``.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.vault.hsm import Pkcs11KeyRing, read_pin
from app.vault.keyring import FileKeyRing, KeyRingError, RingFile

PROVIDERS = ("file", "pkcs11")


def open_provider(config: Mapping) -> RingFile:
    """The key provider the settings name; a setting that is missing is said in Japanese."""
    kind = config.get("KEY_PROVIDER") or "file"
    if kind == "file":
        return FileKeyRing(config["KEYRING_PATH"])
    if kind != "pkcs11":
        raise KeyRingError(
            f"MYNUMBER_KEY_PROVIDER の値「{kind}」は使えません（file または pkcs11）"
        )
    missing = [
        name
        for name, key in (
            ("MYNUMBER_PKCS11_MODULE", "PKCS11_MODULE"),
            ("MYNUMBER_PKCS11_TOKEN_LABEL", "PKCS11_TOKEN_LABEL"),
        )
        if not config.get(key)
    ]
    if not config.get("PKCS11_PIN_FILE") and not config.get("PKCS11_PIN"):
        missing.append("MYNUMBER_PKCS11_PIN_FILE（または MYNUMBER_PKCS11_PIN）")
    if missing:
        raise KeyRingError("HSM（PKCS#11）の設定が足りません: " + "、".join(missing))
    return Pkcs11KeyRing(
        config["KEYRING_PATH"],
        module=config["PKCS11_MODULE"],
        token_label=config["PKCS11_TOKEN_LABEL"],
        pin=read_pin(config.get("PKCS11_PIN"), config.get("PKCS11_PIN_FILE")),
        prefix=config.get("PKCS11_KEY_PREFIX") or "mnv",
        working_key_ttl=float(config.get("PKCS11_WORKING_KEY_TTL", 600)),
    )
