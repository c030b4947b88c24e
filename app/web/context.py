"""What a portal view takes from the request it serves: the vault, the key ring, the row its
URL names.

``create_app`` builds the vault and the key ring once and keeps them on the app; every screen
and the sign-in take them from here, so that where they live is written once and a view says
what it uses.
"""

from __future__ import annotations

from flask import abort, current_app

from app.models import db
from app.vault.envelopes import Vault
from app.vault.keyring import FileKeyRing


def vault() -> Vault:
    """The vault: decrypts and encrypts personal data (every use is audited by the service)."""
    return current_app.extensions["mynumber_vault"]


def keyring() -> FileKeyRing:
    """The key ring: the intake key, link and audit signing keys, named secrets."""
    return current_app.extensions["mynumber_keyring"]


def row_or_404(model, key, convert=int):
    """The row a URL names (its key converted by ``convert``), or 404: a malformed key is as
    unknown as a missing row."""
    try:
        item = db.session.get(model, convert(key))
    except (ValueError, TypeError):
        abort(404)
    if item is None:
        abort(404)
    return item
