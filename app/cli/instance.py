"""``mynumber init`` and ``mynumber run``: set an instance up, then serve it.

``initialise`` brings an instance to a usable state: key ring, schema, audit chain, roles,
first SystemAdmin. Safe to run twice: every step checks what exists and only adds what is
missing. The test suite and the benchmarks build their instances with it too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
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
from app import settings
from app.access import policy
from app.audit import checkpoints, signing, trail
from app.cli import common
from app.cli.lifecycle import echo_closure
from app.collection import links
from app.core.actor import Actor
from app.jobs import worker
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


def _identity_options(func):
    """``--client-name`` … ``--desk-email``, each also read from its environment variable."""
    for key, env, label in reversed(settings.IDENTITY):
        option = "--" + key.lower().replace("_", "-")
        func = click.option(option, key.lower(), envvar=env, default=None, help=label)(func)
    return func


def ask_identity(home: Path, given: dict[str, str | None], interactive: bool) -> list[str]:
    """Who the instance speaks for: each value given (option or environment), else the one
    stored, else asked for when someone is at the terminal. What was given or typed is
    stored in the instance's settings file. Returns the labels still missing."""
    stored = settings.instance_settings(home)
    chosen: dict[str, str] = {}
    missing = []
    for key, env, label in settings.IDENTITY:
        value = (given.get(key.lower()) or "").strip()
        if value:
            problem = settings.identity_problem(key, value)
            if problem:
                option = "--" + key.lower().replace("_", "-")
                raise click.ClickException(f"{option}（{env}）: {problem}")
            chosen[env] = value
        elif stored.get(env):
            continue
        elif interactive:
            chosen[env] = _ask(key, label)
        else:
            missing.append(f"{label}（{env}）")
    if chosen:
        settings.save_instance_settings(home, chosen)
    return missing


def _at_terminal() -> bool:
    """Someone can answer a prompt (``make run`` in a terminal; not a unit file or a pipe)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, OSError, ValueError):
        return False


ABORTED = (
    "初期化を中止しました。入力した設定は保存していません。続けるには、もう一度 `mynumber init` を"
    "実行してください。"
)


def _ask(key: str, label: str) -> str:
    """Ask until the answer is acceptable, saying why in Japanese (never click's "Error:").

    Ctrl-D / Ctrl-C at the prompt stops ``init`` with a Japanese line and a non-zero exit
    (click would print its English "Aborted!"): nothing typed so far is stored, since the
    answers are saved only once all were given."""
    while True:
        try:
            value = click.prompt(label, prompt_suffix=": ", default="", show_default=False)
        except (click.Abort, EOFError, KeyboardInterrupt):
            click.echo("", err=True)  # the prompt's line was left open
            click.echo(ABORTED, err=True)
            raise SystemExit(1) from None
        problem = settings.identity_problem(key, value)
        if problem is None:
            return value.strip()
        click.echo(f"エラー: {problem}", err=True)


@click.command("init")
@with_appcontext
@click.option(
    "--admin-password",
    envvar="MYNUMBER_ADMIN_PASSWORD",
    default=None,
    help="最初のシステム管理者 admin のパスワード（省略時は生成して一度だけ表示）",
)
@_identity_options
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="未設定の発注者名・受注者名・送信元・窓口を尋ねる（既定: 端末から実行したとき）",
)
def init_command(admin_password: str | None, interactive: bool | None, **identity) -> None:
    """インスタンスを初期化する（鍵リング・スキーマ・ロール・admin）。2回実行しても安全。

    発注者名・受注者名・送信元・問い合わせ窓口を、端末からなら尋ね、オプションか環境変数からも受け取る。
    """
    if admin_password:
        try:
            password_complexity(admin_password)
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from None
    home = Path(current_app.config["MYNUMBER_HOME"])
    if interactive is None:
        interactive = _at_terminal()
    missing = ask_identity(home, identity, interactive)
    result = initialise(common.flask_app(), admin_password)
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
    if missing:
        click.echo(
            "次の設定がないため、送付と印刷はできません: "
            + "、".join(missing)
            + "。`mynumber init` を端末から実行して入力するか、環境変数で設定してください",
            err=True,
        )
    else:
        click.echo(f"発注者・受注者・窓口の設定: {home / settings.INSTANCE_SETTINGS_FILE}")


@click.command("run")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--admin-port", default=8000, show_default=True, type=int)
@click.option("--form-port", default=settings.DEFAULT_FORM_PORT, show_default=True, type=int)
def run_command(host: str, admin_port: int, form_port: int) -> None:
    """管理ポータル（8000）と提出フォーム（8001）を起動する（組み込みモード）。"""
    admin_app = common.flask_app()
    # Long jobs (print batches) run in a thread of their own: the page shows their progress.
    admin_app.config["JOBS_IN_BACKGROUND"] = True
    _reapply_disposals()
    form_url = serve_form_url(admin_app, host, form_port)
    form_app = public_form.create_app()
    servers = [
        make_server(host, admin_port, admin_app, threaded=True),
        make_server(host, form_port, form_app, threaded=True),
    ]
    click.echo(f"管理ポータル: http://{host}:{admin_port}/")
    click.echo(f"提出フォーム: http://{host}:{form_port}/")
    click.echo(f"メールと QR コードのリンク: {form_url}/r/…")
    missing = settings.missing_identity(admin_app.config)
    if missing:
        click.echo(
            "次の設定がないため、送付と印刷はできません: "
            + "、".join(missing)
            + "（`mynumber init` で入力してください）",
            err=True,
        )
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    # The audit log signs itself here too (the form's events included): jobs run inline.
    stops = [signing.start_signer(admin_app)]
    if not admin_app.config.get("REDIS_URL"):
        # Embedded mode: nobody runs a worker, so this process hands the outbox over
        # (receipts, campaign mails) within seconds and runs the daily jobs (dunning).
        interval = admin_app.config["OUTBOX_INTERVAL_SECONDS"]
        stops.append(worker.start_embedded(admin_app, interval))
        click.echo(
            f"送信処理: {interval:g} 秒ごと（組み込みモード）、定期ジョブもこのプロセスで実行"
        )
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        for stop in stops:
            stop.set()
        for server in servers:
            server.shutdown()


def serve_form_url(app: Flask, host: str, form_port: int) -> str:
    """The form's address in links and QR codes: MYNUMBER_PUBLIC_FORM_URL when given, else
    the port served here. Stored in the instance's settings so the instance's other
    processes (``mynumber job dunning``, ``outbox dispatch``) write the same links."""
    if app.config.get("PUBLIC_FORM_URL_GIVEN"):
        return app.config["PUBLIC_FORM_URL"].rstrip("/")
    url = settings.form_url_for_port(host, form_port)
    app.config["PUBLIC_FORM_URL"] = url
    settings.save_instance_settings(
        Path(app.config["MYNUMBER_HOME"]), {"MYNUMBER_PUBLIC_FORM_URL": url}
    )
    return url


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
