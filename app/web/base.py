"""The application without the portal: settings, database, audit signing and the vault.

``app.web.factory.create_app`` builds the portal on top of this. The ``mynumber`` commands that
only move data (``import``, ``export``) run in this app alone: they need no views, no
Flask-AppBuilder security manager and no request hardening, and building those (importing
every view) was a third of the command's start-up.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app import settings
from app.audit import canary, signing
from app.audit.trail import SQLITE_BUSY_TIMEOUT_MS
from app.collection import memo
from app.core import logsafe
from app.io.uploads import InMemoryUploadRequest
from app.models import db
from app.platform import unavailable
from app.vault.custody import open_provider
from app.vault.envelopes import Vault


def _sqlite_synchronous() -> str:
    """SQLite's fsync policy: FULL (the default) syncs every commit.

    The test suite sets ``MYNUMBER_SQLITE_SYNCHRONOUS=OFF``: its thousands of throw-away
    databases need no durability against a power cut, and a killed process (the fault tests)
    loses nothing either way. Any other value means FULL.
    """
    value = os.environ.get("MYNUMBER_SQLITE_SYNCHRONOUS", "FULL").upper()
    return value if value in ("FULL", "NORMAL", "OFF") else "FULL"


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: enforce foreign keys, zero deleted content (secure_delete), WAL for readers."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={_sqlite_synchronous()}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


def create_base_app(overrides: dict | None = None) -> Flask:
    """Settings, the database, the audit log's signing, the key provider and the vault (with
    the canary tripwire on every decryption). ``overrides`` replace settings."""
    settings.private_umask()  # before the first file (database, log, key ring) is created
    app = Flask("app")  # the package's folder holds templates/, static/ and translations/
    app.request_class = InMemoryUploadRequest  # uploaded CSVs never spool to disk
    app.config.update(settings.load(overrides))
    home = Path(app.config["MYNUMBER_HOME"])
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    logsafe.install(app.config["LOG_FILE"])

    db.init_app(app)
    unavailable.close_sessions_quietly(app)  # after init_app, so that it runs first
    signing.install()  # the audit log signs itself after each commit
    memo.install()  # intake reads a request and its parts once per transaction
    keyring = open_provider(app.config)  # the ring file, or an HSM (MYNUMBER_KEY_PROVIDER)
    app.extensions["mynumber_keyring"] = keyring
    app.extensions["mynumber_vault"] = vault = Vault(keyring)
    # Every decryption of a canary raises a security alert (naming the signed-in user when
    # the portal has installed its actor provider).
    vault.on_decrypt = functools.partial(canary.on_decrypt, vault)
    return app
