"""Initialise an instance: key ring, schema, audit chain, roles, first SystemAdmin.

Safe to run twice: every step checks what exists and only adds what is missing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask_migrate import upgrade

from app.access import policy
from app.audit import checkpoints, trail
from app.core.actor import Actor
from app.models import db
from app.vault import sealing


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
    tighten(home, public={Path(app.config["INTAKE_PUBLIC_KEY_FILE"]).resolve()})
    created_keyring = False
    if not keyring.exists():
        keyring.create()
        created_keyring = True
    Path(app.config["OUTBOX_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    Path(app.config["AUDIT_PUBLIC_KEY_FILE"]).write_bytes(keyring.audit_public_key_pem())
    created_intake_key = ensure_intake_key(app)
    from app.collection import links

    links.ensure_key(keyring)

    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        session = db.session
        trail.ensure_head(session)
        sm = app.appbuilder.sm
        for role in (*policy.ROLES, "Public"):
            if sm.find_role(role) is None:
                sm.add_role(role)
        vault = app.extensions["mynumber_vault"]
        removed = vault.apply_shred_list(session)
        from app.lifecycle import journal, key_closure

        # Disposals recorded outside the database win over whatever the database says.
        reapplied = journal.reapply(
            session, vault, Actor.system("mynumber init"), app.config["DISPOSAL_JOURNAL_FILE"]
        )
        # A disposal's key closure a crash interrupted is finished (audited; on failure the
        # next init / run tries again, the disposal itself stands).
        try:
            key_closure.after_disposal(Actor.system("mynumber init"))
        except key_closure.KeyClosureError:
            session.rollback()

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
        trail.record(
            session,
            Actor.system("mynumber init"),
            "system.init",
            details={
                "created_keyring": created_keyring,
                "created_admin": created_admin,
                "shredded_keys_removed": removed + reapplied.data_keys,
                "disposals_reapplied": reapplied.people,
                "created_intake_key": created_intake_key,
            },
        )
        session.commit()
        # Signed from the first event on: `audit verify` refuses a log without a checkpoint.
        signing = checkpoints.SigningPolicy.from_config(app.config)
        checkpoints.checkpoint(session, keyring.audit_signing_key(), signing.file, signing.syslog)
        session.commit()
    return InitResult(created_keyring, created_admin, generated)


def tighten(home: Path, public: set[Path]) -> list[Path]:
    """Make every file under ``home`` 0600 and every folder 0700 (an instance created before
    the process set its umask, or a file copied in by hand). ``public`` files (the intake
    public key the form host reads) stay as they are. Returns the paths it changed."""
    changed = []
    for path in sorted(home.rglob("*")):
        if path.is_symlink() or path.resolve() in public:
            continue
        wanted = 0o700 if path.is_dir() else 0o600
        if path.stat().st_mode & 0o777 != wanted:
            with contextlib.suppress(PermissionError):  # not ours: left to the administrator
                path.chmod(wanted)
                changed.append(path)
    return changed


def ensure_intake_key(app: Flask) -> bool:
    """Create the intake HPKE key pair once (private half in the key ring) and export the
    public half to ``INTAKE_PUBLIC_KEY_FILE`` for the public form. True when created."""
    keyring = app.extensions["mynumber_keyring"]
    secret = keyring.get_secret(sealing.SECRET_NAME)
    created = False
    if secret is None:
        secret, _public = sealing.generate()
        keyring.set_secret(sealing.SECRET_NAME, secret)
        created = True
    # Derived from the private half every time: the exported file cannot drift from the ring.
    sealing.write_public_file(
        sealing.public_from_secret(secret), app.config["INTAKE_PUBLIC_KEY_FILE"]
    )
    return created
