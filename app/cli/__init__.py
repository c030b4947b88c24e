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

from app.audit import checkpoints as audit_checkpoints
from app.audit import trail, verifier
from app.collection import campaigns
from app.core import logsafe
from app.core.actor import Actor
from app.models import db


def cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return Actor.system(f"cli:{user}")


def usage_message(exc: click.UsageError) -> str:
    """A mistyped command line in Japanese, naming the option (click's own text is English)."""
    if isinstance(exc, click.NoSuchOption):
        return f"{exc.option_name} というオプションはありません"
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return f"{exc.param.get_error_hint(exc.ctx)} を指定してください"
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        hint = exc.param.get_error_hint(exc.ctx)
        if isinstance(exc.param.type, click.types.IntParamType):
            return f"{hint} は整数で指定してください"
        return f"{hint} の値が正しくありません（{exc.message}）"
    return f"コマンドの指定が正しくありません（{exc.message}）"


class SafeGroup(AppGroup):
    """Turns any exception into one Japanese line on stderr: exit status 2 for a mistyped
    command line, 1 for everything else."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except click.UsageError as exc:
            click.echo(f"エラー: {usage_message(exc)}", err=True)
            if exc.ctx is not None:
                click.echo(f"（使い方: {exc.ctx.command_path} --help）", err=True)
            sys.exit(exc.exit_code)
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

    from app.platform.instance import initialise
    from app.settings import password_complexity

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
    if result.created_admin:
        click.echo("admin は初回ログインで認証アプリ（二要素認証 TOTP）を登録します")


@mynumber_group.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--admin-port", default=8000, show_default=True, type=int)
@click.option("--form-port", default=8001, show_default=True, type=int)
def run_command(host: str, admin_port: int, form_port: int) -> None:
    """管理ポータル（8000）と提出フォーム（8001）を起動する（組み込みモード）。"""
    from werkzeug.serving import make_server

    import public_form

    admin_app = current_app._get_current_object()
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
    from app.audit import signing

    signer = signing.start_signer(admin_app)
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        signer.set()
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
    """ハッシュチェーンと署名付きチェックポイントを検証する。改ざんや署名のない末尾が
    上限を超えていれば終了コード 1。"""
    key_path = public_key or Path(current_app.config["AUDIT_PUBLIC_KEY_FILE"])
    if not key_path.exists():
        raise click.ClickException(f"公開鍵ファイルがありません: {key_path}")
    key = verifier.load_public_key(key_path.read_bytes())
    cp_file = checkpoints or Path(current_app.config["AUDIT_CHECKPOINT_FILE"])
    result = verifier.verify(
        db.session, key, cp_file, audit_checkpoints.SigningPolicy.from_config(current_app.config)
    )
    for note in result.problems:
        click.echo(f"注意: {note}", err=True)
    if result.ok:
        click.echo(
            f"監査ログは完全です: イベント {result.events} 件、署名付きチェックポイント "
            f"{result.checkpoints} 件（データベース {result.in_database} 件・ファイル "
            f"{result.in_file} 件）を検証しました。署名済みはイベント {result.last_signed_seq} "
            f"まで、未署名 {result.unsigned} 件"
        )
        return
    if result.kind == "unsigned":
        click.echo(f"監査ログを完全とは確認できません: {result.problem}", err=True)
    else:
        click.echo(
            f"監査ログの改ざんを検出しました: 最初の不整合はイベント {result.first_bad_seq}"
            f"（{result.problem}）",
            err=True,
        )
    sys.exit(1)


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """今すぐ現在のチェーン末尾に署名し、データベース外のファイル（と syslog）にも追記する。
    通常は自動で作成される（AUDIT_CHECKPOINT_EVERY 件ごと・数分ごと）。"""
    keyring = current_app.extensions["mynumber_keyring"]
    # Committed first: only a committed chain is signed and published outside.
    trail.record(db.session, cli_actor(), "audit.checkpoint", commit=True)
    policy = audit_checkpoints.SigningPolicy.from_config(current_app.config)
    cp = audit_checkpoints.checkpoint(
        db.session, keyring.audit_signing_key(), policy.file, policy.syslog
    )
    db.session.commit()
    click.echo(f"チェックポイントを作成しました: イベント {cp.seq}")


@mynumber_group.group("keys")
def keys_group() -> None:
    """鍵の操作。"""


@keys_group.command("rotate")
def keys_rotate() -> None:
    """新しい KEK を作り、全データ鍵を再ラップする（データの再暗号化は不要）。"""
    from app.lifecycle.keyops import rotate

    version, count = rotate(db.session, current_app.extensions["mynumber_vault"], cli_actor())
    click.echo(f"KEK をバージョン {version} に更新し、{count} 件のデータ鍵を再ラップしました")


@keys_group.command("list")
def keys_list() -> None:
    """KEK の各バージョンと、それに依存するデータ・バックアップの件数を表示する（鍵は表示しない）。"""
    from app.lifecycle.keyops import usage

    found = usage(db.session, current_app.extensions["mynumber_vault"], _backup_dir())
    for item in found:
        mark = "現在" if item.current else "旧"
        click.echo(
            f"KEK バージョン {item.version}（{mark}）: {item.describe_database()}、"
            f"バックアップ {len(item.backups)} 件"
        )
    old = [i for i in found if not i.current and not i.in_database]
    if old:
        click.echo(
            "廃棄できる旧 KEK: "
            + "、".join(
                f"{i.version}（バックアップが復元不能になるため --yes が必要）"
                if i.backups
                else str(i.version)
                for i in old
            )
            + "（mynumber keys retire --version N）"
        )


@keys_group.command("retire")
@click.option("--version", "version", required=True, type=int, help="廃棄する KEK のバージョン")
@click.option(
    "--yes",
    is_flag=True,
    help="この KEK で暗号化されたバックアップが復元できなくなることに同意する",
)
def keys_retire(version: int, yes: bool) -> None:
    """旧 KEK を鍵リングから消去する（rotate の後。元に戻せない）。"""
    from app.lifecycle.keyops import BackupsWouldBeLost, RetireRefused, retire

    try:
        result = retire(
            db.session,
            current_app.extensions["mynumber_vault"],
            cli_actor(),
            version,
            backup_dir=_backup_dir(),
            accept_unrestorable=yes,
        )
    except BackupsWouldBeLost as exc:
        click.echo(
            f"KEK バージョン {version} を廃棄すると、次のバックアップが復元できなくなります:"
        )
        for name in exc.files:
            click.echo(f"  {name}")
        raise click.ClickException(str(exc)) from None
    except RetireRefused as exc:
        raise click.ClickException(str(exc)) from None
    from app.lifecycle import journal

    # Remembered outside the ring too: `keys restore` of an older key-ring backup drops it.
    journal.record_retired_outside(
        current_app.extensions["mynumber_keyring"], current_app.config["DISPOSAL_JOURNAL_FILE"]
    )
    click.echo(f"KEK バージョン {result.version} を鍵リングから消去しました")
    if result.unrestorable_backups:
        click.echo(
            f"次のバックアップ {len(result.unrestorable_backups)} 件はこの鍵リングでは"
            "復元できなくなりました（不要なら削除してください）:"
        )
        for name in result.unrestorable_backups:
            click.echo(f"  {name}")
    click.echo(
        "以前の鍵リングのバックアップ（.mnvkeys）にはこの KEK が残っています。"
        "廃棄を完全にするには、それらも破棄し、mynumber keys backup で取り直してください"
    )


def _backup_dir():
    return current_app.config.get("BACKUP_DIR")


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
    from app.access import roster

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


@mynumber_group.group("account")
def account_group() -> None:
    """個人番号を扱うアカウント（ポータルでは発注者担当者の承認を経て作成）。"""


@account_group.command("add")
@click.option("--username", required=True, help="ユーザー名")
@click.option("--first-name", required=True, help="名")
@click.option("--last-name", required=True, help="姓")
@click.option("--email", required=True, help="メールアドレス")
@click.option(
    "--role", required=True, type=click.Choice(["ClientStaff", "Operator"]), help="ロール"
)
@click.option("--roster-entry", required=True, type=int, help="紐付ける情報取扱者名簿の ID")
@click.option(
    "--approved-by",
    required=True,
    help="このアカウントを書面で承認した発注者側の担当者（氏名・役職）",
)
def account_add(
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    role: str,
    roster_entry: int,
    approved_by: str,
) -> None:
    """最初の発注者担当者など、書面で承認されたアカウントの作成（初期パスワードを一度だけ表示）。

    ポータルにまだ承認できる発注者担当者がいないときのためのもので、以後のアカウントは
    ユーザー画面から申請し、発注者担当者が承認します。"""
    from app.access import accounts

    try:
        user, password = accounts.add_preapproved(
            db.session,
            shell_actor(),
            username=username,
            first_name=first_name,
            last_name=last_name,
            email=email,
            role=role,
            roster_entry_id=roster_entry,
            approved_by=approved_by,
        )
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"アカウントを作成しました: {user.username}（{role}、名簿 ID {roster_entry}）")
    click.echo(
        f"初期パスワード（この一度だけ表示。本人に直接渡してください。初回ログインで変更し、"
        f"二要素認証を登録します）: {password}"
    )


@mynumber_group.command("worker")
@click.option("--burst", is_flag=True, help="キューが空になったら終了する（RQ）")
@click.option(
    "--cron/--no-cron",
    default=True,
    show_default=True,
    help="定期ジョブのスケジューラも動かす（複数のワーカーでは1台だけ --cron に）",
)
def worker_command(burst: bool, cron: bool) -> None:
    """ジョブを処理する（REDIS_URL があれば RQ ワーカーとスケジューラ、なければ定期ジョブを内部で実行）。"""
    from app.jobs import worker

    url = current_app.config.get("REDIS_URL")
    if url:
        name = current_app.config.get("JOB_QUEUE") or worker.QUEUE
        click.echo(f"RQ ワーカーを起動します（キュー {name}）")
        worker.run_rq(url, queue_name=name, burst=burst, with_cron=cron)
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


DEFAULT_PURPOSE = campaigns.DEFAULT_PURPOSE


@request_group.command("create")
@click.option("--person", "person_id", required=True, help="人物ID（役職員または外部委員等）")
@click.option(
    "--purpose", default=DEFAULT_PURPOSE, show_default=False, help="利用目的（発注者の文言）"
)
@click.option("--days", default=None, type=int, help="有効日数（省略時は設定値）")
def request_create(person_id: str, purpose: str, days: int | None) -> None:
    """提出フォームのリンクを発行する。リンク（トークン）はこの一度だけ表示される。"""
    import uuid

    from app.collection import intake
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


# -- storage lifecycle (docs/lifecycle.md) ---------------------------------------------------
def _vault():
    return current_app.extensions["mynumber_vault"]


def _reapply_disposals() -> None:
    """Disposals recorded outside the database are re-applied before anything is served."""
    from app.lifecycle import journal, key_closure

    result = journal.reapply(
        db.session, _vault(), shell_actor(), current_app.config["DISPOSAL_JOURNAL_FILE"]
    )
    if result.changed:
        click.echo(
            f"廃棄済みの {result.people} 名・データ鍵 {result.data_keys} 件がデータベースに"
            "残っていたため、廃棄を再適用しました"
        )
    try:  # a key closure a crash interrupted is finished before anything is served
        _echo_closure(key_closure.after_disposal(shell_actor()))
    except key_closure.KeyClosureError as exc:
        click.echo(str(exc), err=True)


def _find_request(ref: str):
    """A disposal request by its id or the first hex digits of it (as the portal shows)."""
    import uuid as uuid_mod

    from sqlalchemy import select

    from app.models import DisposalRequest

    text = ref.strip().lower().replace("-", "")
    if len(text) < 6 or any(c not in "0123456789abcdef" for c in text):
        raise click.ClickException("申請IDは16進数で6桁以上を指定してください")
    if len(text) == 32:
        found = db.session.get(DisposalRequest, uuid_mod.UUID(text))
        matches = [found] if found else []
    else:
        matches = [
            r
            for r in db.session.execute(select(DisposalRequest)).scalars()
            if r.id.hex.startswith(text)
        ]
    if len(matches) != 1:
        raise click.ClickException(
            f"廃棄申請 {ref} が見つかりません"
            if not matches
            else f"申請ID {ref} に複数が該当します"
        )
    return matches[0]


def _read_key(path: Path, what: str) -> bytes:
    """A key file's bytes (the parser refuses what is not a key, in Japanese)."""
    try:
        with path.open("rb") as handle:
            return handle.read(64 * 1024)
    except OSError as exc:
        raise click.ClickException(f"{what}を読み込めません: {path}") from exc


@mynumber_group.command("backup")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="出力ファイル"
)
def backup_command(out: Path) -> None:
    """データベースの暗号化バックアップを作る（鍵リングは keys backup で別に保管）。"""
    from app.lifecycle import backup

    record = backup.create_backup(
        db.session, _vault(), shell_actor(), out, client_name=current_app.config["CLIENT_NAME"]
    )
    click.echo(
        f"バックアップを作成しました: {out}（{record.size_bytes} バイト、SHA-256 {record.sha256}）"
    )


@mynumber_group.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
def restore_command(source: Path) -> None:
    """バックアップを空のデータベースに復元し、記録済みの廃棄を再適用する。"""
    from flask_migrate import upgrade

    from app.lifecycle import backup

    directory = current_app.extensions["migrate"].directory
    result = backup.restore(
        db.session,
        _vault(),
        shell_actor(),
        source,
        journal=current_app.config["DISPOSAL_JOURNAL_FILE"],
        upgrade=lambda: upgrade(directory=directory),
        checkpoint_file=current_app.config["AUDIT_CHECKPOINT_FILE"],
    )
    click.echo(
        f"バックアップ（{result.created_at} 作成、監査イベント {result.audit_seq} まで）を復元しました。"
        f"廃棄の再適用: {result.reapplied_people} 名、データ鍵 {result.reapplied_keys} 件"
    )


@mynumber_group.command("backups")
@click.option("--prune", "keep", type=int, default=None, help="最新の N 世代を残して古いものを削除")
def backups_command(keep: int | None) -> None:
    """バックアップ保存先のファイルを一覧表示する（--prune で世代管理）。"""
    from app.lifecycle import backup

    folder = Path(current_app.config["BACKUP_DIR"])
    if keep is not None:
        removed = backup.prune(db.session, shell_actor(), folder, keep, backup.BACKUP_SUFFIX)
        removed += backup.prune(db.session, shell_actor(), folder, keep, backup.KEYRING_SUFFIX)
        click.echo(f"{len(removed)} 件の古いバックアップを削除しました")
    files = sorted(folder.glob("*.mnv*")) if folder.exists() else []
    for path in files:
        click.echo(f"{path.name}\t{path.stat().st_size}")
    click.echo(f"保存先: {folder}（{len(files)} 件）")


@keys_group.command("backup")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--recipient-key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="運用者の復旧用公開鍵（mynumber keys keygen の .pub）",
)
def keys_backup(out: Path, recipient_key: Path) -> None:
    """鍵リングを復旧用公開鍵あてに暗号化して書き出す（HPKE: ML-KEM-768 + X25519）。"""
    from app.lifecycle import backup
    from app.vault import sealed

    recipient = sealed.load_public(_read_key(recipient_key, "公開鍵"))
    digest = backup.backup_keyring(
        db.session, current_app.extensions["mynumber_keyring"], shell_actor(), out, recipient
    )
    click.echo(
        f"鍵リングのバックアップを作成しました: {out}（宛先の指紋 {recipient.fingerprint[:16]}…、"
        f"SHA-256 {digest}）"
    )


@keys_group.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="復旧用の秘密鍵",
)
def keys_restore(source: Path, key_file: Path) -> None:
    """鍵リングをバックアップから戻す（鍵リングがない場合のみ）。廃棄の記録は統合される。"""
    from app.lifecycle import backup
    from app.vault import sealed

    private = sealed.load_private(_read_key(key_file, "秘密鍵"))
    meta = backup.restore_keyring(
        source,
        private,
        current_app.extensions["mynumber_keyring"],
        current_app.config["DISPOSAL_JOURNAL_FILE"],
    )
    click.echo(
        f"鍵リングを復元しました（{meta.get('created_at')} 作成、KEK {meta.get('kek_versions')}）。"
        "続けて mynumber restore でデータベースを復元してください"
    )


@keys_group.command("destroy")
@click.option("--client", "client_name", required=True, help="確認のため発注者名を入力")
def keys_destroy(client_name: str) -> None:
    """契約終了の最後に鍵リングとバックアップを破棄する（全員の廃棄後のみ。元に戻せない）。"""
    from app.lifecycle import backup

    if client_name != current_app.config["CLIENT_NAME"]:
        raise click.ClickException("発注者名が設定（MYNUMBER_CLIENT_NAME）と一致しません")
    removed = backup.destroy_keyring(
        db.session,
        current_app.extensions["mynumber_keyring"],
        shell_actor(),
        current_app.config["BACKUP_DIR"],
        current_app.config["AUDIT_CHECKPOINT_FILE"],
    )
    click.echo(
        f"鍵リングを破棄し、バックアップ {len(removed)} 件を削除しました。別の場所にある鍵リングの"
        "バックアップと復旧用秘密鍵も破棄してください"
    )


@keys_group.command("keygen")
@click.option("--out", required=True, help="出力ファイル名の接頭辞（.key と .pub を作る）")
def keys_keygen(out: str) -> None:
    """受取用・復旧用の鍵ペアを作る（ML-KEM-768 + X25519）。秘密鍵はオフラインで保管する。"""
    from app.vault import sealed

    private_text, public_text = sealed.generate_recipient()
    sealed.write_private_file(f"{out}.key", private_text)
    Path(f"{out}.pub").write_text(public_text, encoding="utf-8")
    click.echo(
        f"鍵ペアを作成しました: {out}.key（0600）、{out}.pub"
        f"（指紋 {sealed.load_public(public_text).fingerprint}）"
    )


@keys_group.command("operator-public-key")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="PEM の出力先（省略時は表示）"
)
def keys_operator_public_key(out: Path | None) -> None:
    """返却データの署名を確かめる公開鍵（PEM）と指紋。契約開始時に発注者へ渡し、指紋を読み合わせる。"""
    from app.vault import sealed

    keyring = current_app.extensions["mynumber_keyring"]
    pem = keyring.audit_public_key_pem()
    fingerprint = sealed.signer_fingerprint(sealed.load_signer_key(pem))
    trail.record(
        db.session,
        cli_actor(),
        "keys.operator_public_key",
        details={"fingerprint": fingerprint, "file": out.name if out else None},
    )
    db.session.commit()
    if out:
        out.write_bytes(pem)
        click.echo(f"発行元の公開鍵を書き出しました: {out}")
    else:
        click.echo(pem.decode("ascii"), nl=False)
    click.echo(f"公開鍵の指紋（SHA-256）: {fingerprint}")


@mynumber_group.command("return-export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="出力ファイル")
@click.option(
    "--recipient-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="発注者が提供した公開鍵",
)
@click.option("--purpose", default="契約終了に伴う返却（仕様書 5.3-4）", show_default=True)
@click.option(
    "--verify",
    "verify_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="作成済みの返却データを現在のデータと照合する（復号しない）",
)
def return_export(
    out: Path | None, recipient_key: Path | None, purpose: str, verify_file: Path | None
) -> None:
    """保管している全データを発注者の公開鍵あてに暗号化して書き出す（--verify で照合）。"""
    from app.lifecycle import returns
    from app.vault import sealed

    keyring = current_app.extensions["mynumber_keyring"]
    if verify_file:
        result = returns.verify_archive(
            db.session, _vault(), verify_file, keyring.audit_signing_key().public_key()
        )
        if result.ok:
            fp = result.meta.get("fingerprint", {})
            click.echo(
                f"返却データは現在のデータと一致します（保管中 {fp.get('active')} 名、"
                f"個人番号の記録 {fp.get('numbers')} 件、署名を確認済み）"
            )
            return
        click.echo(
            "返却データが現在のデータと一致しません: " + "／".join(result.problems), err=True
        )
        sys.exit(1)
    if not out or not recipient_key:
        raise click.ClickException("--out と --recipient-key を指定してください（照合は --verify）")
    recipient = sealed.load_public(_read_key(recipient_key, "公開鍵"))
    result = returns.export_archive(
        db.session,
        _vault(),
        shell_actor(),
        out,
        recipient,
        purpose,
        client_name=current_app.config["CLIENT_NAME"],
        audit_public_pem=keyring.audit_public_key_pem(),
        checkpoint_file=current_app.config["AUDIT_CHECKPOINT_FILE"],
    )
    click.echo(
        f"返却データを作成しました: {out}（{result.counts.get('people', 0)} 名、個人番号の記録 "
        f"{result.counts.get('numbers', 0)} 件、SHA-256 {result.sha256}）"
    )


@mynumber_group.command("open-archive")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--operator-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="発行元の公開鍵（PEM）。省略時はこのインスタンスの鍵",
)
def open_archive_command(
    archive: Path, key_file: Path, out: Path, operator_key: Path | None
) -> None:
    """返却データの発行元の署名を確かめ、秘密鍵で復号して展開し、SHA-256 をマニフェストと照合する。"""
    from app.vault import sealed

    signer = sealed.load_signer_key(
        _read_key(operator_key, "発行元の公開鍵")
        if operator_key
        else current_app.extensions["mynumber_keyring"].audit_public_key_pem()
    )
    private = sealed.load_private(_read_key(key_file, "秘密鍵"))
    result = sealed.open_archive(archive, private, out, operator_key=signer)
    click.echo(
        f"展開し、{len(result.manifest.get('files', []))} 件の SHA-256 を確認しました: {out}"
    )


@mynumber_group.group("retention")
def retention_group() -> None:
    """保管期間（削除予定日）。"""


@retention_group.command("recompute")
def retention_recompute() -> None:
    """全員の削除予定日をルールから計算し直す。"""
    from app.audit import trail as audit_mod
    from app.lifecycle import retention

    changed = retention.recompute(db.session)
    audit_mod.record(
        db.session, shell_actor(), "retention.recomputed", details={"changed": changed}
    )
    db.session.commit()
    counts = retention.counts(db.session)
    click.echo(
        f"{changed} 名の削除予定日を更新しました（期限到来 {counts['due']} 名、"
        f"保管中 {counts['active']} 名）"
    )


@retention_group.command("rules")
def retention_rules() -> None:
    """保管期間のルールを表示する。"""
    from app.lifecycle import retention

    for rule in retention.load_rules(db.session).values():
        click.echo(f"{rule.kind}: {rule.describe()}（{rule.label}）")


@retention_group.command("set-rule")
@click.option("--kind", required=True, type=click.Choice(["employee", "dependent", "external"]))
@click.option(
    "--anchor", required=True, type=click.Choice(["ended_on", "jan10_after", "jan31_after"])
)
@click.option("--years", required=True, type=int)
@click.option("--label", required=True, help="根拠の説明（証明書・画面に表示）")
def retention_set_rule(kind: str, anchor: str, years: int, label: str) -> None:
    """保管期間のルールを変更し、削除予定日を計算し直す（監査ログに記録）。"""
    from app.lifecycle import retention

    try:
        changed = retention.set_rule(db.session, shell_actor(), kind, anchor, years, label)
    except retention.RetentionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"ルールを変更しました（{changed} 名の削除予定日を更新）")


@mynumber_group.group("disposal")
def disposal_group() -> None:
    """廃棄（申請・承認はポータルで行う）。"""


@disposal_group.command("list")
def disposal_list() -> None:
    """廃棄申請の一覧（人物名は表示しない）。"""
    from sqlalchemy import select

    from app.models import DisposalRequest

    rows = db.session.execute(
        select(DisposalRequest).order_by(DisposalRequest.requested_at)
    ).scalars()
    for r in rows:
        click.echo(
            f"{r.short_id}\t{r.status_label}\t{r.kind_label}\t{r.scope_label}\t"
            f"{r.person_count if r.person_count is not None else r.planned_count} 名\t"
            f"{r.certificate_no or ''}"
        )


@disposal_group.command("execute")
@click.argument("request_ref")
def disposal_execute(request_ref: str) -> None:
    """承認済みの廃棄を実行する（暗号化消去・データ削除・領域の整理）。"""
    from app.lifecycle import disposal, key_closure

    req = _find_request(request_ref)
    try:
        result = disposal.execute(
            db.session, _vault(), shell_actor(), req.id, current_app.config["DISPOSAL_JOURNAL_FILE"]
        )
    except disposal.DisposalError as exc:
        raise click.ClickException(str(exc)) from None
    if result.already_done:
        click.echo(f"この廃棄は実行済みです（証明書番号 {result.request.certificate_no}）")
    else:
        click.echo(
            f"{result.request.person_count} 名を廃棄しました"
            f"（証明書番号 {result.request.certificate_no}）"
        )
    try:  # the key closure; resumed here when an earlier run was interrupted
        _echo_closure(key_closure.after_disposal(shell_actor()))
    except key_closure.KeyClosureError as exc:
        raise click.ClickException(str(exc)) from None
    if result.compaction_error:
        click.echo(result.compaction_error, err=True)
        sys.exit(1)


def _echo_closure(closure) -> None:
    """What a disposal's key closure made unreadable, destroyed and wrote (names only)."""
    if closure is None:
        return
    click.echo(
        f"KEK をバージョン {closure.kek_version} に更新し、旧 KEK "
        f"（{'、'.join(map(str, closure.retired)) or 'なし'}）を破棄しました"
    )
    for title, files in (
        ("復元できなくなったバックアップ", closure.unreadable_backups),
        ("破棄した鍵リングのバックアップ", closure.destroyed_keyring_backups),
    ):
        if files:
            click.echo(f"{title} {len(files)} 件（別の場所の写しも破棄してください）:")
            for name in files:
                click.echo(f"  {name}")
    if closure.fresh_backup:
        click.echo(f"新しいバックアップ: {closure.fresh_backup}")
    if closure.fresh_keyring_backup:
        click.echo(f"新しい鍵リングのバックアップ: {closure.fresh_keyring_backup}")
    for warning in closure.warnings:
        click.echo(warning, err=True)


@disposal_group.command("compact")
def disposal_compact() -> None:
    """廃棄後のデータベース領域を整理する（SQLite: WAL の切り詰め / PostgreSQL: VACUUM FULL）。"""
    from app.audit import trail as audit_mod
    from app.lifecycle import holders

    audit_mod.record(db.session, shell_actor(), "disposal.storage_compacted", commit=True)
    detail = holders.compact_storage(db.session, holders.touched_tables())
    click.echo(f"データベース領域を整理しました: {detail}")


@disposal_group.command("certificate")
@click.argument("request_ref")
@click.option(
    "--format", "fmt", type=click.Choice(["pdf", "csv"]), default="pdf", show_default=True
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def disposal_certificate(request_ref: str, fmt: str, out: Path) -> None:
    """削除証明書（PDF / CSV）を書き出す。"""
    from app.lifecycle import certificate

    req = _find_request(request_ref)
    try:
        _, data, _ = certificate.download(
            db.session,
            shell_actor(),
            req.id,
            fmt,
            client=current_app.config["CLIENT_NAME"],
            operator=current_app.config["OPERATOR_NAME"],
        )
    except certificate.CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    out.write_bytes(data)
    click.echo(f"削除証明書を書き出しました: {out}")


def main(argv: list[str] | None = None) -> None:
    """Console script entry point: ``mynumber <command>``."""
    from app import settings
    from app.web.factory import create_app

    settings.private_umask()  # before click writes any --out file the command was given
    info = ScriptInfo(create_app=lambda: create_app())
    try:
        mynumber_group.main(args=argv, prog_name="mynumber", obj=info)
    except SystemExit:
        raise
    except Exception as exc:  # app creation failures (bad DATABASE_URL etc.)
        click.echo(f"エラー: {logsafe.scrub(str(exc)) or type(exc).__name__}", err=True)
        sys.exit(1)


# -- CSV import, export and demo data (issue 3) ----------------------------------------------
def shell_actor():
    """The command line as a ``ShellActor``: may import and export (see ``app.access.policy``)."""
    from app.access.policy import ShellActor

    return ShellActor(name=cli_actor().name)


@mynumber_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layout", "layout_name", required=True, help="様式名（例: staff、external）")
@click.option(
    "--encoding",
    type=click.Choice(["auto", "utf-8", "cp932"]),
    default="auto",
    show_default=True,
    help="文字コード（auto は UTF-8／BOM 付き UTF-8／CP932 を判定）",
)
@click.option("--dry-run", is_flag=True, help="検査だけ行い、取り込まない")
def import_command(file: Path, layout_name: str, encoding: str, dry_run: bool) -> None:
    """収集済みの個人番号を CSV から取り込む。1件でも問題があれば何も取り込まない（終了コード 1）。"""
    from app.io import imports, layouts

    layout = layouts.get(db.session, layout_name)

    def progress(rows: int, writing: bool) -> None:
        click.echo(f"… {rows} 行を{'取り込み中' if writing else '検査中'}", err=True)

    with file.open("rb") as stream:
        report = imports.import_csv(
            db.session,
            current_app.extensions["mynumber_vault"],
            shell_actor(),
            stream,
            layout,
            encoding=encoding,
            dry_run=dry_run,
            filename=file.name,
            progress=progress,
        )
    for problem in report.problems:
        click.echo(str(problem), err=True)
    if not report.ok:
        if report.problem_count > len(report.problems):
            click.echo(f"（ほか {report.problem_count - len(report.problems)} 件）", err=True)
        click.echo(f"エラー: {report.summary()}", err=True)
        sys.exit(1)
    click.echo(report.summary())


@mynumber_group.command("export")
@click.option("--layout", "layout_name", required=True, help="様式名（例: staff、external）")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="出力先ファイル（既にあるファイルは上書きしない。権限 0600 で作成）",
)
@click.option("--purpose", required=True, help="利用目的（監査ログに記録される）")
@click.option(
    "--encoding",
    type=click.Choice(["utf-8-sig", "cp932"]),
    default=None,
    help="文字コード（省略時は様式の設定）",
)
def export_command(layout_name: str, out_path: Path, purpose: str, encoding: str | None) -> None:
    """様式の対象者全員を、個人番号を含めて CSV に出力する（監査ログに記録）。"""
    import os

    from app.io import exports, layouts

    layout = layouts.get(db.session, layout_name)
    try:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"出力先が既にあります（上書きしません）: {out_path}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            result = exports.export_csv(
                db.session,
                current_app.extensions["mynumber_vault"],
                shell_actor(),
                layout,
                out,
                purpose,
                encoding=encoding,
            )
    except BaseException:
        out_path.unlink(missing_ok=True)  # never leave half a file of numbers behind
        raise
    click.echo(
        f"{result.count} 人を出力しました: {out_path}（{result.encoding}、監査ログの出力 ID "
        f"{result.export_id}）"
    )


@mynumber_group.command("demo")
@click.option("--households", default=300, show_default=True, help="役職員の世帯数")
@click.option("--externals", default=200, show_default=True, help="外部委員等の人数")
@click.option("--seed", default=2026, show_default=True, help="乱数の種（同じ種なら同じデータ）")
@click.option("--users/--no-users", default=True, show_default=True, help="デモ用の利用者も作る")
def demo_command(households: int, externals: int, seed: int, users: bool) -> None:
    """架空のデモデータ（見本 太郎 など）を取込処理で登録する。2回目は登録済みとしてスキップ。"""
    from app.io import demo

    reports = demo.load(
        db.session,
        current_app.extensions["mynumber_vault"],
        shell_actor(),
        households,
        externals,
        seed,
    )
    for name, report in reports:
        click.echo(f"{name}: {report.summary()}")
    if users:
        for username, role, password in demo.ensure_users(current_app._get_current_object()):
            if password:
                click.echo(
                    f"デモ利用者 {username}（{role}）の初期パスワード（この一度だけ表示）: {password}"
                )
            else:
                click.echo(f"デモ利用者 {username}（{role}）は作成済みです")


# -- collection operations (issue 5) --------------------------------------------------------
def cli_operator() -> Actor:
    """The server account acting as the operator for collection commands. It holds the key
    ring anyway (see the module docstring); what it does is audited as ``cli:<os user>``.
    Paper keying and verification are not offered here: they need two different people."""
    from app.access.policy import OPERATOR

    return Actor(name=cli_actor().name, roles=(OPERATOR,), mfa=True, roster_approved=True)


def _campaign(campaign_id: str):
    from app.models import Campaign

    if not campaign_id.isdigit():
        raise click.ClickException(f"キャンペーンIDは数字です: {campaign_id}")
    campaign = db.session.get(Campaign, int(campaign_id))
    if campaign is None:
        raise click.ClickException(f"キャンペーンが見つかりません: {campaign_id}")
    return campaign


@mynumber_group.group("campaign")
def campaign_group() -> None:
    """収集キャンペーン（対象者リスト・送付・印刷・状態）。"""


@campaign_group.command("create")
@click.option("--name", required=True, help="名称")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["employee", "external"]),
    help="対象（役職員／外部委員等）",
)
@click.option("--deadline", required=True, help="提出期限（2026-04-30、令和8年4月30日 など）")
@click.option("--month", default=None, help="対象月 YYYY-MM（外部委員等は必須）")
@click.option("--purpose", default=DEFAULT_PURPOSE, help="利用目的（発注者の文言）")
@click.option("--four-eyes/--no-four-eyes", default=None, help="受理を別の担当者が承認する")
def campaign_create(
    name: str, kind: str, deadline: str, month: str | None, purpose: str, four_eyes: bool | None
) -> None:
    """キャンペーンを作成する（文言は既定の案内文で作成し、ポータルで編集できる）。"""
    from app.collection import campaigns

    try:
        campaign = campaigns.create_campaign(
            db.session,
            shell_actor(),  # the client's order entered on the server, not an Operator's
            name=name,
            kind=kind,
            deadline=deadline,
            purpose_text=purpose,
            month=month,
            four_eyes=four_eyes,
        )
    except campaigns.CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(
        f"キャンペーンを作成しました: ID {campaign.id}（提出期限 {campaign.deadline:%Y-%m-%d}）"
    )


@campaign_group.command("template")
@click.option("--kind", required=True, type=click.Choice(["employee", "external"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def campaign_template(kind: str, out: Path) -> None:
    """対象者リストの CSV テンプレート（見出し行、UTF-8 BOM 付き）を書き出す。"""
    from app.collection import targets

    if out.exists():
        raise click.ClickException(f"ファイルが既にあります: {out}")
    out.write_bytes(targets.template_csv(kind))
    click.echo(f"テンプレートを書き出しました: {out}")


@campaign_group.command("targets")
@click.argument("campaign_id")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="検査だけして登録しない")
def campaign_targets(campaign_id: str, file: Path, dry_run: bool) -> None:
    """対象者リスト（CSV）を検査して登録する。問題が1つでもあれば何も登録せず、全件を表示する。"""
    from app.collection import targets

    campaign = _campaign(campaign_id)
    if not file.is_file():
        raise click.ClickException(f"ファイルが見つかりません: {file}")
    try:
        parsed, result = targets.load(
            db.session,
            current_app.extensions["mynumber_vault"],
            current_app.extensions["mynumber_keyring"],
            shell_actor(),
            campaign,
            file.read_bytes(),
            dry_run=dry_run,
        )
    except targets.TargetFileError as exc:
        db.session.rollback()
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"エラー: {len(exc.problems)} 件の問題があるため登録しませんでした", err=True)
        sys.exit(1)
    if result is None:
        click.echo(
            f"問題はありません（{parsed.rows} 行、文字コード {parsed.encoding}）。登録していません"
        )
        return
    db.session.commit()
    click.echo(
        f"登録しました: 依頼 {result.requests_issued} 件（メール {result.emails}、郵送 "
        f"{result.posts}）、新規 {result.people_created} 人、既存 {result.people_matched} 人、"
        f"依頼済みのため省略 {result.skipped_already_requested} 件"
    )
    if result.contact_differs:
        click.echo(
            f"登録済みの連絡先と異なる項目 {len(result.contact_differs)} 件（登録済みの連絡先の"
            "まま送付します。変わった場合は人物情報を訂正してください）:",
            err=True,
        )
        for line in result.contact_differs:
            click.echo(f"  {line}", err=True)


@campaign_group.command("send")
@click.argument("campaign_id")
def campaign_send(campaign_id: str) -> None:
    """未送付の依頼を送付する（メールはジョブで送信、郵送は印刷バッチへ）。"""
    from app.collection import mailings
    from app.platform import outbox

    campaign = _campaign(campaign_id)
    try:
        result = mailings.dispatch(db.session, cli_operator(), campaign)
    except mailings.MailingError as exc:
        raise click.ClickException(str(exc)) from None
    outbox.after_commit(db.session, mailings.outbox_keys(result.emails))  # issue 8
    click.echo(
        f"メール {len(result.emails)} 件を送信キューに入れました。郵送 {result.posts} 件は印刷待ちです"
    )


@campaign_group.command("print")
@click.argument("campaign_id")
def campaign_print(campaign_id: str) -> None:
    """印刷待ちの郵送物（収集キット・督促状・不備のお知らせ）で印刷バッチを作る。"""
    from app.collection import kits
    from app.jobs.collection import render_print_batch
    from app.models import PrintBatch
    from app.platform import outbox

    campaign = _campaign(campaign_id)
    try:
        batch = kits.create_batch(db.session, cli_operator(), campaign)
    except kits.KitError as exc:
        raise click.ClickException(str(exc)) from None
    outbox.after_commit(db.session, [outbox.key_for(render_print_batch, batch.id)])  # issue 8
    batch = db.session.get(PrintBatch, batch.id)
    state = batch.status if batch.status in ("ready", "failed") else "キューに投入"
    click.echo(
        f"印刷バッチ {batch.id}（{batch.item_count} 通）: {state}。ダウンロードはポータルの「送付・印刷」から"
    )


@campaign_group.command("status")
@click.argument("campaign_id")
@click.option(
    "--csv",
    "csv_out",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="依頼ごとの状態を CSV（番号なし、UTF-8 BOM 付き）に書き出す",
)
def campaign_status(campaign_id: str, csv_out: Path | None) -> None:
    """状態別の件数を表示する。"""
    from app.collection import campaigns
    from app.models import Stage

    campaign = _campaign(campaign_id)
    counts = campaigns.counts(db.session, campaign.id)
    click.echo(f"{campaign.name}（提出期限 {campaign.deadline:%Y-%m-%d}）")
    click.echo("  ".join(f"{Stage.LABELS[k]} {v}" for k, v in counts.items() if v) or "依頼なし")
    if csv_out is not None:
        if csv_out.exists():
            raise click.ClickException(f"ファイルが既にあります: {csv_out}")
        csv_out.write_bytes(campaigns.status_csv(db.session, cli_operator(), campaign))
        click.echo(f"CSV を書き出しました: {csv_out}")


@mynumber_group.group("mail")
def mail_group() -> None:
    """メールの送信記録。"""


@mail_group.command("bounce")
@click.argument("message_id")
@click.option("--reason", default="", help="不達の理由（メールサーバの通知の要旨）")
def mail_bounce(message_id: str, reason: str) -> None:
    """送信後に届いた不達通知を Message-ID で記録する（再送・郵送への切替はポータルで）。"""
    from app.collection import mailings

    try:
        delivery = mailings.record_bounce(
            db.session, cli_operator(), message_id=message_id, reason=reason
        )
    except mailings.MailingError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"不達を記録しました: 送付 {delivery.id}")


# -- issue 8: the transactional outbox -------------------------------------------------------
@mynumber_group.group("outbox")
def outbox_group() -> None:
    """アウトボックス（操作が約束したジョブ・メールの送出待ち）。"""


@outbox_group.command("status")
def outbox_status() -> None:
    """状態ごとの件数と、最も古い送出待ちを表示する。"""
    from app.models import OutboxState
    from app.platform import outbox

    counts = outbox.counts(db.session)
    click.echo("  ".join(f"{OutboxState.LABELS[k]} {v}" for k, v in counts.items()))
    oldest = outbox.oldest_pending(db.session)
    if oldest is not None:
        click.echo(
            f"最も古い送出待ち: {oldest.created_at:%Y-%m-%d %H:%M} UTC {oldest.last_error or ''}"
        )


@outbox_group.command("dispatch")
def outbox_dispatch() -> None:
    """送出待ちを今すぐジョブキューへ渡す（組み込みモードではその場で実行する）。"""
    from app.platform import outbox

    report = outbox.dispatch(db.session)
    click.echo(str(report))
    for reason in sorted(set(report.errors)):
        click.echo(reason, err=True)


# -- サービス利用マニュアル (issue 8) -------------------------------------------------------------
@mynumber_group.group("manual")
def manual_group() -> None:
    """サービス利用マニュアル（docs/manual の Markdown と画面写真から PDF を作る）。"""


@manual_group.command("build")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="出力する PDF")
@click.option(
    "--source",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="章（NN-*.md）と img/ のあるフォルダ（省略時は docs/manual）",
)
def manual_build(out: Path, source: Path | None) -> None:
    """マニュアルの PDF を作る（画面写真は make manual がテスト実行中に撮影する）。"""
    from app.operations import manual

    try:
        manual.build_pdf(out, source or manual.MANUAL_DIR)
    except manual.ManualError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"マニュアルを書き出しました: {out}")


# -- monthly usage report (issue 7, item 3) ---------------------------------------------------
@mynumber_group.group("report")
def report_group() -> None:
    """利用実績報告書。"""


@report_group.command("monthly")
@click.option("--month", required=True, help="対象月 YYYY-MM（例: 2026-10）")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--encoding", type=click.Choice(["utf-8-sig", "cp932"]), default="utf-8-sig", show_default=True
)
@click.option(
    "--send", is_flag=True, help="設定された送信先（MYNUMBER_REPORT_RECIPIENTS）へメールする"
)
def report_monthly(month: str, out: Path, csv_out: Path | None, encoding: str, send: bool) -> None:
    """報告書を作成して PDF（と CSV）に書き出す。--send でメール送信（再送を含む）。"""
    from app.operations.reports import delivery, monthly

    try:
        monthly.parse_month(month)
        settings = {
            "client": current_app.config["CLIENT_NAME"],
            "operator": current_app.config["OPERATOR_NAME"],
        }
        actor = shell_actor()
        delivery.generate(db.session, actor, month, **settings)
        _, pdf, _ = delivery.download(db.session, actor, month, "pdf")
        out.write_bytes(pdf)
        click.echo(f"利用実績報告書（{monthly.month_label(month)}分）を書き出しました: {out}")
        if csv_out is not None:
            _, data, _ = delivery.download(db.session, actor, month, "csv", encoding)
            csv_out.write_bytes(data)
            click.echo(f"CSV を書き出しました: {csv_out}")
        if send:
            sent = delivery.send(
                db.session,
                actor,
                month,
                recipients=list(current_app.config.get("REPORT_RECIPIENTS") or []),
                **settings,
            )
            if sent.status != "sent":
                raise click.ClickException(f"メールを送信できませんでした: {sent.error}")
            click.echo(f"メールで送信しました: {sent.recipients}")
    except monthly.ReportError as exc:
        raise click.ClickException(str(exc)) from None


# -- proof of safety (issue 8): canary numbers and least-privilege database roles -------------
from app.cli.security import canary_group, db_group  # noqa: E402

mynumber_group.add_command(canary_group)
mynumber_group.add_command(db_group)
