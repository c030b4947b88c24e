"""``mynumber canary …`` and ``mynumber db roles``: the tripwire and least-privilege roles.

Registered on the ``mynumber`` group by ``app.cli``; errors become one Japanese line there.
"""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app
from flask.cli import AppGroup

from app.models import db


def _vault():
    return current_app.extensions["mynumber_vault"]


canary_group = AppGroup("canary", help="カナリア番号（おとりの人物）の登録・一覧・削除。")


@canary_group.command("add")
@click.option("--label", required=True, help="警告メールに出る名前（例: canary-1）")
@click.option("--name", required=True, help="架空の氏名（実在の人物と紛れる自然な名前）")
@click.option("--birth-date", required=True, help="生年月日（YYYY-MM-DD）")
@click.option("--kind", type=click.Choice(["employee", "external"]), default="employee")
@click.option("--code", default=None, help="職員番号・委員番号")
@click.option("--kana", default=None, help="氏名カナ")
@click.option(
    "--number",
    default=None,
    envvar="MYNUMBER_CANARY_NUMBER",
    help="個人番号（省略時はチェックデジットの正しい未使用の番号を生成）",
)
def canary_add(
    label: str,
    name: str,
    birth_date: str,
    kind: str,
    code: str | None,
    kana: str | None,
    number: str | None,
) -> None:
    """カナリアを通常の人物と同じ形で登録する（区別は鍵リングだけが知っている）。"""
    from app.cli import shell_actor
    from app.people import canaries

    try:
        birth = dt.date.fromisoformat(birth_date)
    except ValueError:
        raise click.ClickException("生年月日: YYYY-MM-DD の形式で指定してください") from None
    person = canaries.add(
        db.session,
        _vault(),
        shell_actor(),
        label=label,
        name=name,
        birth_date=birth,
        kind=kind,
        code=code,
        name_kana=kana,
        number=number,
    )
    from app.people import registry

    click.echo(
        f"カナリア {label} を登録しました（{registry.masked_number(db.session, person.id)}）。"
        "この人物の検索・照合・表示・出力・返却・復号はすべて警告されます。"
    )
    if not current_app.config.get("SECURITY_CONTACT"):
        click.echo("注意: MYNUMBER_SECURITY_CONTACT が未設定のため警告メールは送られません")


@canary_group.command("list")
def canary_list() -> None:
    """登録済みのカナリアを表示する。"""
    from app.people import canaries

    rows = canaries.listing(db.session, _vault())
    if not rows:
        click.echo("カナリアは登録されていません")
    for row in rows:
        click.echo(f"{row.label}\t{row.person_id or '-'}\t{row.name or '-'}\t{row.masked}")


@canary_group.command("remove")
@click.argument("label")
def canary_remove(label: str) -> None:
    """カナリアの監視をやめ、架空の記録を破棄する（データ鍵を破棄）。"""
    from app.cli import shell_actor
    from app.people import canaries

    canaries.remove(db.session, _vault(), shell_actor(), label)
    click.echo(f"カナリア {label} を削除しました")


db_group = AppGroup("db", help="データベースの管理（PostgreSQL のロール）。")


@db_group.command("roles")
@click.option("--prefix", default="mnv", show_default=True, help="ロール名の接頭辞")
@click.option("--owner-password", envvar="MNV_OWNER_PASSWORD", default=None)
@click.option("--portal-password", envvar="MNV_PORTAL_PASSWORD", default=None)
@click.option("--form-password", envvar="MNV_FORM_PASSWORD", default=None)
@click.option("--auditor-password", envvar="MNV_AUDITOR_PASSWORD", default=None)
def db_roles(
    prefix: str,
    owner_password: str | None,
    portal_password: str | None,
    form_password: str | None,
    auditor_password: str | None,
) -> None:
    """最小権限の PostgreSQL ロール（owner・portal・form・auditor）を作成・更新する。何度実行しても安全。

    DATABASE_URL はロールを作成できる管理者（CREATEROLE）で接続してください。省略した
    パスワードは新しく作るロールにだけ生成し、この一度だけ表示します。
    """
    from app.platform import dbroles

    if db.engine.dialect.name != "postgresql":
        raise click.ClickException(
            "mynumber db roles は PostgreSQL にのみ適用されます（現在のデータベースは "
            f"{db.engine.dialect.name} です。SQLite ではファイルの権限 0600 とディレクトリ 0700 "
            "で保護してください）"
        )
    passwords = {
        "owner": owner_password,
        "portal": portal_password,
        "form": form_password,
        "auditor": auditor_password,
    }
    try:
        with db.engine.begin() as conn:
            result = dbroles.apply(conn, passwords, prefix=prefix)
    except dbroles.RolesError as exc:
        raise click.ClickException(str(exc)) from None
    labels = {
        "owner": "マイグレーション・スキーマ所有",
        "portal": "管理ポータル・ワーカー",
        "form": "公開フォーム",
        "auditor": "監査（読み取り専用）",
    }
    for kind, name in result.names.items():
        state = "作成" if name in result.created else "更新"
        click.echo(f"{name}（{labels[kind]}）: {state}しました")
    for name, password in result.generated.items():
        click.echo(f"{name} のパスワード（この一度だけ表示）: {password}")
