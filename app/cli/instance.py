"""``mynumber init`` and ``mynumber run``: set an instance up, then serve it.

``initialise`` brings an instance to a usable state: key ring, schema, audit chain, roles,
first SystemAdmin. Safe to run twice: every step checks what exists and only adds what is
missing. The test suite and the benchmarks build their instances with it too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from werkzeug.serving import make_server
from wtforms.validators import ValidationError

import public_form
from app.access import policy
from app.audit import checkpoints, signing, trail
from app.cli import common
from app.cli.lifecycle import echo_closure
from app.collection import links
from app.core.actor import Actor
from app.lifecycle import journal, key_closure
from app.models import db
from app.settings import password_complexity
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
        signing_policy = checkpoints.SigningPolicy.from_config(app.config)
        checkpoints.checkpoint(
            session, keyring.audit_signing_key(), signing_policy.file, signing_policy.syslog
        )
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


@click.command("init")
@with_appcontext
@click.option(
    "--admin-password",
    envvar="MYNUMBER_ADMIN_PASSWORD",
    default=None,
    help="最初のシステム管理者 admin のパスワード（省略時は生成して一度だけ表示）",
)
def init_command(admin_password: str | None) -> None:
    """インスタンスを初期化する（鍵リング・スキーマ・ロール・admin）。2回実行しても安全。"""
    if admin_password:
        try:
            password_complexity(admin_password)
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from None
    result = initialise(common.flask_app(), admin_password)
    home = current_app.config["MYNUMBER_HOME"]
    click.echo(f"インスタンスを初期化しました: {home}")
    if result.created_keyring:
        click.echo(f"鍵リングを作成しました: {current_app.config['KEYRING_PATH']}（0600）")
    if result.admin_password:
        click.echo(
            f"システム管理者 admin の初期パスワード（この一度だけ表示）: {result.admin_password}"
        )
    elif result.created_admin:
        click.echo("システム管理者 admin を作成しました（パスワードは MYNUMBER_ADMIN_PASSWORD）")
    if result.created_admin:
        click.echo("admin は初回ログインで認証アプリ（二要素認証 TOTP）を登録します")


@click.command("run")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--admin-port", default=8000, show_default=True, type=int)
@click.option("--form-port", default=8001, show_default=True, type=int)
def run_command(host: str, admin_port: int, form_port: int) -> None:
    """管理ポータル（8000）と提出フォーム（8001）を起動する（組み込みモード）。"""
    admin_app = common.flask_app()
    # Long jobs (print batches) run in a thread of their own: the page shows their progress.
    admin_app.config["JOBS_IN_BACKGROUND"] = True
    _reapply_disposals()
    form_app = public_form.create_app()
    servers = [
        make_server(host, admin_port, admin_app, threaded=True),
        make_server(host, form_port, form_app, threaded=True),
    ]
    click.echo(f"管理ポータル: http://{host}:{admin_port}/")
    click.echo(f"提出フォーム: http://{host}:{form_port}/")
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    # The audit log signs itself here too (the form's events included): jobs run inline.
    signer = signing.start_signer(admin_app)
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        signer.set()
        for server in servers:
            server.shutdown()


def _reapply_disposals() -> None:
    """Disposals recorded outside the database are re-applied before anything is served."""
    actor = common.shell_actor()
    result = journal.reapply(
        db.session, common.vault(), actor, current_app.config["DISPOSAL_JOURNAL_FILE"]
    )
    if result.changed:
        click.echo(
            f"廃棄済みの {result.people} 名・データ鍵 {result.data_keys} 件がデータベースに"
            "残っていたため、廃棄を再適用しました"
        )
    try:  # a key closure a crash interrupted is finished before anything is served
        echo_closure(key_closure.after_disposal(actor))
    except key_closure.KeyClosureError as exc:
        click.echo(str(exc), err=True)
