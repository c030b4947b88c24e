"""``mynumber import``, ``export`` and ``demo``: CSV in and out by layout, and demo data
loaded through the same import."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from app.cli import common
from app.io import demo, exports, imports, layouts
from app.models import db


@click.command("import")
@with_appcontext
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
    layout = layouts.get(db.session, layout_name)

    def progress(rows: int, writing: bool) -> None:
        click.echo(f"… {rows} 行を{'取り込み中' if writing else '検査中'}", err=True)

    with file.open("rb") as stream:
        report = imports.import_csv(
            db.session,
            common.vault(),
            common.shell_actor(),
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


@click.command("export")
@with_appcontext
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
    layout = layouts.get(db.session, layout_name)
    try:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"出力先が既にあります（上書きしません）: {out_path}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            result = exports.export_csv(
                db.session,
                common.vault(),
                common.shell_actor(),
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


@click.command("demo")
@with_appcontext
@click.option("--households", default=300, show_default=True, help="役職員の世帯数")
@click.option("--externals", default=200, show_default=True, help="外部委員等の人数")
@click.option("--seed", default=2026, show_default=True, help="乱数の種（同じ種なら同じデータ）")
@click.option("--users/--no-users", default=True, show_default=True, help="デモ用の利用者も作る")
def demo_command(households: int, externals: int, seed: int, users: bool) -> None:
    """架空のデモデータ（見本 太郎 など）を取込処理で登録する。2回目は登録済みとしてスキップ。"""
    reports = demo.load(
        db.session,
        common.vault(),
        common.shell_actor(),
        households,
        externals,
        seed,
    )
    for name, report in reports:
        click.echo(f"{name}: {report.summary()}")
    if users:
        for username, role, password in demo.ensure_users(common.flask_app()):
            if password:
                click.echo(
                    f"デモ利用者 {username}（{role}）の初期パスワード（この一度だけ表示）: {password}"
                )
            else:
                click.echo(f"デモ利用者 {username}（{role}）は作成済みです")
