"""The ``mynumber`` command: the root group, the table of its commands, and ``main``.

Each command group lives in a module of its own under ``app.cli`` and is imported only when
it is invoked (click's lazy loading of subcommands): ``mynumber --help`` lists every command
without loading the application, and a command loads only what it uses. The table keeps the
summary that listing shows; tests/cli/test_root.py holds it to the commands' own help.

Every command ends with a one-line message and a non-zero exit on error, never a traceback
(``app.cli.errors``).
"""

from __future__ import annotations

import importlib

import click
from flask import Flask
from flask.cli import ScriptInfo

from app import settings
from app.cli import errors

# command → ("module:attribute" it is defined as, the summary `mynumber --help` shows for it)
COMMANDS: dict[str, tuple[str, str]] = {
    "account": (
        "app.cli.access:account_group",
        "個人番号を扱うアカウント（ポータルでは発注者担当者の承認を経て作成）。",
    ),
    "audit": ("app.cli.audit:audit_group", "監査ログの検証とチェックポイント。"),
    "backup": (
        "app.cli.lifecycle:backup_command",
        "データベースの暗号化バックアップを作る（鍵リングは keys backup で別に保管）。",
    ),
    "backups": (
        "app.cli.lifecycle:backups_command",
        "バックアップ保存先のファイルを一覧表示する（--prune で世代管理）。",
    ),
    "campaign": (
        "app.cli.collection:campaign_group",
        "収集キャンペーン（対象者リスト・送付・印刷・状態）。",
    ),
    "canary": ("app.cli.canary:canary_group", "カナリア番号（おとりの人物）の登録・一覧・削除。"),
    "db": ("app.cli.database:db_group", "データベースの管理（PostgreSQL のロール）。"),
    "demo": (
        "app.cli.io:demo_command",
        "架空のデモデータ（見本 太郎 など）を取込処理で登録する。2回目は登録済みとしてスキップ。",
    ),
    "disposal": ("app.cli.lifecycle:disposal_group", "廃棄（申請・承認はポータルで行う）。"),
    "export": (
        "app.cli.io:export_command",
        "様式の対象者全員を、個人番号を含めて CSV に出力する（監査ログに記録）。",
    ),
    "import": (
        "app.cli.io:import_command",
        "収集済みの個人番号を CSV から取り込む。1件でも問題があれば何も取り込まない"
        "（終了コード 1）。",
    ),
    "init": (
        "app.cli.instance:init_command",
        "インスタンスを初期化する（鍵リング・スキーマ・ロール・admin）。2回実行しても安全。",
    ),
    "job": ("app.cli.jobs:job_command", "定期ジョブを名前で今すぐ実行する（例: dunning）。"),
    "keys": ("app.cli.keys:keys_group", "鍵の操作。"),
    "mail": ("app.cli.collection:mail_group", "メールの送信記録。"),
    "manual": (
        "app.cli.manual:manual_group",
        "サービス利用マニュアル（docs/manual の Markdown と画面写真から PDF を作る）。",
    ),
    "open-archive": (
        "app.cli.lifecycle:open_archive_command",
        "返却データの発行元の署名を確かめ、秘密鍵で復号して展開し、SHA-256 をマニフェストと"
        "照合する。",
    ),
    "outbox": (
        "app.cli.outbox:outbox_group",
        "アウトボックス（操作が約束したジョブ・メールの送出待ち）。",
    ),
    "report": ("app.cli.report:report_group", "利用実績報告書。"),
    "request": ("app.cli.collection:request_group", "収集依頼（提出フォームのリンク）。"),
    "restore": (
        "app.cli.lifecycle:restore_command",
        "バックアップを空のデータベースに復元し、記録済みの廃棄を再適用する。",
    ),
    "retention": ("app.cli.lifecycle:retention_group", "保管期間（削除予定日）。"),
    "return-export": (
        "app.cli.lifecycle:return_export",
        "保管している全データを発注者の公開鍵あてに暗号化して書き出す（--verify で照合）。",
    ),
    "roster": ("app.cli.access:roster_group", "情報取扱者名簿。"),
    "run": (
        "app.cli.instance:run_command",
        "管理ポータル（8000）と提出フォーム（8001）を起動する（組み込みモード）。",
    ),
    "worker": (
        "app.cli.jobs:worker_command",
        "ジョブを処理する（REDIS_URL があれば RQ ワーカーとスケジューラ、なければ定期ジョブを"
        "内部で実行）。",
    ),
}


# Commands that only move data: they run in the base app (``app.web.base``: settings, database,
# audit signing, the vault) without the portal's views, which would add about half a second
# to their start-up for nothing. Every other command gets the whole portal app.
BASE_APP_COMMANDS = frozenset({"import", "export"})


class MynumberGroup(click.Group):
    """The root group: finds a command in ``COMMANDS`` and imports its module only then, and
    turns any failure below it into one Japanese line (``errors.exit_with``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute = entry[0].split(":")
        if cmd_name in BASE_APP_COMMANDS and isinstance(ctx.obj, ScriptInfo):
            ctx.obj.create_app = create_base_app
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing from the table's summaries, laid out by click as it would lay out the
        commands themselves, without importing any of them."""
        listing = click.Group(
            self.name, commands=[click.Command(name, help=s) for name, (_, s) in COMMANDS.items()]
        )
        listing.format_commands(ctx, formatter)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # the one place that hides tracebacks from users
            errors.exit_with(exc)


mynumber_group = MynumberGroup("mynumber", help="MyNumber Vault の管理コマンド")


def create_app() -> Flask:
    """The admin app a command runs in, built when the command first needs it."""
    # Imported here rather than at the top: the app brings Flask-AppBuilder, SQLAlchemy and
    # every domain package (over a second of start-up), which `mynumber --help`, a group's
    # usage and a mistyped command line never need.
    from app.web.factory import create_app as create_portal

    return create_portal()


def create_base_app() -> Flask:
    """The app without the portal, for ``BASE_APP_COMMANDS``."""
    # Imported here for the reason above: the domain packages are a second of start-up.
    from app.web.base import create_base_app as create_base

    return create_base()


def main(argv: list[str] | None = None) -> None:
    """Console script entry point: ``mynumber <command>``."""
    settings.private_umask()  # before click writes any --out file the command was given
    info = ScriptInfo(create_app=create_app)
    try:
        mynumber_group.main(args=argv, prog_name="mynumber", obj=info)
    except SystemExit:
        raise
    except Exception as exc:  # app creation failures (bad DATABASE_URL etc.)
        errors.exit_with(exc)
