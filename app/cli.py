"""The ``mynumber`` command (also ``flask --app app mynumber``).

Every command ends with a one-line message and a non-zero exit on error, never a traceback.
CLI actions are audited as ``cli:<os user>``: whoever has a shell on the server also has the
key ring, so the CLI is the operator's own tool, and its use is on the record.
"""

from __future__ import annotations

import getpass
import sys
import threading
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo

from app import audit, logsafe
from app.audit import Actor
from app.models import db


def cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return Actor.system(f"cli:{user}")


class SafeGroup(AppGroup):
    """Turns any exception into one Japanese line on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.UsageError, SystemExit):
            raise
        except click.ClickException as exc:
            click.echo(f"エラー: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # the one place that hides tracebacks from users
            message = logsafe.scrub(str(exc)) or type(exc).__name__
            click.echo(f"エラー: {message}", err=True)
            sys.exit(1)


mynumber_group = SafeGroup("mynumber", help="MyNumber Vault の管理コマンド")


@mynumber_group.command("init")
@click.option(
    "--admin-password",
    envvar="MYNUMBER_ADMIN_PASSWORD",
    default=None,
    help="最初のシステム管理者 admin のパスワード（省略時は生成して一度だけ表示）",
)
def init_command(admin_password: str | None) -> None:
    """インスタンスを初期化する（鍵リング・スキーマ・ロール・admin）。2回実行しても安全。"""
    from wtforms.validators import ValidationError

    from app.instance import initialise
    from config import password_complexity

    if admin_password:
        try:
            password_complexity(admin_password)
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from None
    result = initialise(current_app._get_current_object(), admin_password)
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


@mynumber_group.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--admin-port", default=8000, show_default=True, type=int)
@click.option("--form-port", default=8001, show_default=True, type=int)
def run_command(host: str, admin_port: int, form_port: int) -> None:
    """管理ポータル（8000）と提出フォーム（8001）を起動する（組み込みモード）。"""
    from werkzeug.serving import make_server

    import public_form

    admin_app = current_app._get_current_object()
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
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        for server in servers:
            server.shutdown()


@mynumber_group.group("audit")
def audit_group() -> None:
    """監査ログの検証とチェックポイント。"""


@audit_group.command("verify")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="監査チェックポイントの公開鍵（PEM）。省略時はインスタンスの公開鍵ファイル",
)
@click.option(
    "--checkpoints",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="データベース外に保管したチェックポイントファイル（JSON Lines）",
)
def audit_verify(public_key: Path | None, checkpoints: Path | None) -> None:
    """ハッシュチェーンと署名付きチェックポイントを検証する。改ざんがあれば終了コード 1。"""
    key_path = public_key or Path(current_app.config["AUDIT_PUBLIC_KEY_FILE"])
    if not key_path.exists():
        raise click.ClickException(f"公開鍵ファイルがありません: {key_path}")
    key = audit.load_public_key(key_path.read_bytes())
    cp_file = checkpoints or Path(current_app.config["AUDIT_CHECKPOINT_FILE"])
    result = audit.verify(db.session, key, cp_file)
    if result.ok:
        click.echo(
            f"監査ログは完全です: イベント {result.events} 件、チェックポイント "
            f"{result.checkpoints} 件を検証しました"
        )
        return
    click.echo(
        f"監査ログの改ざんを検出しました: 最初の不整合はイベント {result.first_bad_seq}"
        f"（{result.problem}）",
        err=True,
    )
    sys.exit(1)


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """現在のチェーン末尾に署名し、データベース外のファイルにも追記する。"""
    keyring = current_app.extensions["mynumber_keyring"]
    audit.record(db.session, cli_actor(), "audit.checkpoint")
    cp = audit.checkpoint(
        db.session, keyring.audit_signing_key(), current_app.config["AUDIT_CHECKPOINT_FILE"]
    )
    db.session.commit()
    click.echo(f"チェックポイントを作成しました: イベント {cp.seq}")


@mynumber_group.group("keys")
def keys_group() -> None:
    """鍵の操作。"""


@keys_group.command("rotate")
def keys_rotate() -> None:
    """新しい KEK を作り、全データ鍵を再ラップする（データの再暗号化は不要）。"""
    from app.keyops import rotate

    version, count = rotate(db.session, current_app.extensions["mynumber_vault"], cli_actor())
    click.echo(f"KEK をバージョン {version} に更新し、{count} 件のデータ鍵を再ラップしました")


@mynumber_group.group("roster")
def roster_group() -> None:
    """情報取扱者名簿。"""


@roster_group.command("add")
@click.option("--name", required=True, help="氏名")
@click.option("--department", required=True, help="所属部署")
@click.option("--title", required=True, help="役職")
@click.option("--nationality", required=True, help="国籍")
@click.option(
    "--approved-by",
    required=True,
    help="契約前に名簿を書面で承認した発注者側の担当者（氏名・役職）",
)
def roster_add(name: str, department: str, title: str, nationality: str, approved_by: str) -> None:
    """契約前に発注者が書面で承認した名簿の登録（以後の変更はポータルで申請・承認）。"""
    from app import roster

    try:
        entry = roster.add_preapproved(
            db.session,
            cli_actor(),
            roster.EntryFields(name, department, title, nationality),
            approved_by,
        )
    except roster.RosterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"名簿に登録しました: ID {entry.id} {entry.name}（承認: {entry.approved_by}）")


@mynumber_group.command("worker")
@click.option("--burst", is_flag=True, help="キューが空になったら終了する（RQ）")
def worker_command(burst: bool) -> None:
    """ジョブを処理する（REDIS_URL があれば RQ ワーカーとスケジューラ、なければ定期ジョブを内部で実行）。"""
    from app.jobs import worker

    url = current_app.config.get("REDIS_URL")
    if url:
        name = current_app.config.get("JOB_QUEUE") or worker.QUEUE
        click.echo(f"RQ ワーカーを起動します（キュー {name}）")
        worker.run_rq(url, queue_name=name, burst=burst)
    else:
        click.echo("組み込みモード: 定期ジョブをこのプロセスで実行します")
        worker.run_inline()


@mynumber_group.command("job")
@click.argument("name")
def job_command(name: str) -> None:
    """定期ジョブを名前で今すぐ実行する（例: dunning）。"""
    from app.jobs import worker

    try:
        item = worker.find(name)
    except KeyError as exc:
        names = ", ".join(s.name for s in worker.load_schedule()) or "なし"
        raise click.ClickException(f"{exc.args[0]}（登録済み: {names}）") from None
    result = item.func()
    click.echo(f"ジョブ {name} を実行しました: {result}")


@mynumber_group.group("request")
def request_group() -> None:
    """収集依頼（提出フォームのリンク）。"""


DEFAULT_PURPOSE = (
    "給与所得・退職所得の源泉徴収票作成事務、健康保険・厚生年金保険届出事務、"
    "雇用保険届出事務、国民年金第3号被保険者の届出事務"
)


@request_group.command("create")
@click.option("--person", "person_id", required=True, help="人物ID（役職員または外部委員等）")
@click.option(
    "--purpose", default=DEFAULT_PURPOSE, show_default=False, help="利用目的（発注者の文言）"
)
@click.option("--days", default=None, type=int, help="有効日数（省略時は設定値）")
def request_create(person_id: str, purpose: str, days: int | None) -> None:
    """提出フォームのリンクを発行する。リンク（トークン）はこの一度だけ表示される。"""
    import uuid

    from app import intake
    from app.models import Person

    try:
        person = db.session.get(Person, uuid.UUID(person_id))
    except ValueError:
        raise click.ClickException(f"人物IDの形式が正しくありません: {person_id}") from None
    if person is None:
        raise click.ClickException(f"人物が見つかりません: {person_id}")
    valid_days = days or current_app.config["INTAKE_VALID_DAYS"]
    try:
        req, token = intake.create_request(
            db.session, cli_actor(), person, purpose_text=purpose, valid_days=valid_days
        )
    except intake.IntakeError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"依頼を発行しました: {req.id}（有効期限 {req.expires_at:%Y-%m-%d}）")
    click.echo(intake.request_url(current_app.config["PUBLIC_FORM_URL"], token))


def main(argv: list[str] | None = None) -> None:
    """Console script entry point: ``mynumber <command>``."""
    from app import create_app

    info = ScriptInfo(create_app=lambda: create_app())
    try:
        mynumber_group.main(args=argv, prog_name="mynumber", obj=info)
    except SystemExit:
        raise
    except Exception as exc:  # app creation failures (bad DATABASE_URL etc.)
        click.echo(f"エラー: {logsafe.scrub(str(exc)) or type(exc).__name__}", err=True)
        sys.exit(1)
