"""``mynumber canary …``: register, list and remove canary people (the tripwire).

A canary is stored like any other person; which people are canaries only the key ring knows.
"""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli import common
from app.models import db
from app.people import canaries, registry

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
    try:
        birth = dt.date.fromisoformat(birth_date)
    except ValueError:
        raise click.ClickException("生年月日: YYYY-MM-DD の形式で指定してください") from None
    person = canaries.add(
        db.session,
        common.vault(),
        common.shell_actor(),
        label=label,
        name=name,
        birth_date=birth,
        kind=kind,
        code=code,
        name_kana=kana,
        number=number,
    )
    click.echo(
        f"カナリア {label} を登録しました（{registry.masked_number(db.session, person.id)}）。"
        "この人物の検索・照合・表示・出力・返却・復号はすべて警告されます。"
    )
    if not current_app.config.get("SECURITY_CONTACT"):
        click.echo("注意: MYNUMBER_SECURITY_CONTACT が未設定のため警告メールは送られません")


@canary_group.command("list")
def canary_list() -> None:
    """登録済みのカナリアを表示する。"""
    rows = canaries.listing(db.session, common.vault())
    if not rows:
        click.echo("カナリアは登録されていません")
    for row in rows:
        click.echo(f"{row.label}\t{row.person_id or '-'}\t{row.name or '-'}\t{row.masked}")


@canary_group.command("remove")
@click.argument("label")
def canary_remove(label: str) -> None:
    """カナリアの監視をやめ、架空の記録を破棄する（データ鍵を破棄）。"""
    canaries.remove(db.session, common.vault(), common.shell_actor(), label)
    click.echo(f"カナリア {label} を削除しました")
