"""Initialise an instance: key ring, schema, audit chain, roles, first SystemAdmin.

Safe to run twice: every step checks what exists and only adds what is missing.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask_migrate import upgrade

from app import audit, policy
from app.audit import Actor
from app.models import db


@dataclass
class InitResult:
    created_keyring: bool
    created_admin: bool
    admin_password: str | None  # only when generated here, to be printed once


def initialise(app: Flask, admin_password: str | None = None) -> InitResult:
    """Bring an instance to a usable state; the generated password is returned, not stored."""
    keyring = app.extensions["mynumber_keyring"]
    home = Path(app.config["MYNUMBER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)  # the database file, key ring and outbox are for the service account only
    created_keyring = False
    if not keyring.exists():
        keyring.create()
        created_keyring = True
    Path(app.config["OUTBOX_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    Path(app.config["AUDIT_PUBLIC_KEY_FILE"]).write_bytes(keyring.audit_public_key_pem())

    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        session = db.session
        audit.ensure_head(session)
        sm = app.appbuilder.sm
        for role in (*policy.ROLES, "Public"):
            if sm.find_role(role) is None:
                sm.add_role(role)
        vault = app.extensions["mynumber_vault"]
        removed = vault.apply_shred_list(session)
        from app import disposal

        # Disposals recorded outside the database win over whatever the database says.
        reapplied = disposal.reapply(
            session, vault, Actor.system("mynumber init"), app.config["DISPOSAL_JOURNAL_FILE"]
        )

        created_admin = False
        generated = None
        if sm.find_user(username="admin") is None:
            password = admin_password or os.environ.get("MYNUMBER_ADMIN_PASSWORD")
            if not password:
                generated = password = secrets.token_urlsafe(12) + "-Aa1"
            sm.add_user(
                username="admin",
                first_name="システム",
                last_name="管理者",
                email="admin@localhost",
                role=sm.find_role(policy.SYSTEM_ADMIN),
                password=password,
            )
            created_admin = True
        audit.record(
            session,
            Actor.system("mynumber init"),
            "system.init",
            details={
                "created_keyring": created_keyring,
                "created_admin": created_admin,
                "shredded_keys_removed": removed + reapplied.data_keys,
                "disposals_reapplied": reapplied.people,
            },
        )
        session.commit()
    return InitResult(created_keyring, created_admin, generated)
