"""``mynumber db roles``: the least-privilege PostgreSQL roles (owner, portal, form, auditor)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.models import db
from app.platform import dbroles

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
