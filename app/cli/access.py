"""``mynumber roster add`` and ``mynumber account add``: what the client approved on paper
before the portal had anyone to approve it (later changes go through the portal)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.access import accounts, roster
from app.cli import common
from app.models import db


@click.group("roster", cls=AppGroup)
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
    try:
        entry = roster.add_preapproved(
            db.session,
            common.cli_actor(),
            roster.EntryFields(name, department, title, nationality),
            approved_by,
        )
    except roster.RosterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"名簿に登録しました: ID {entry.id} {entry.name}（承認: {entry.approved_by}）")


@click.group("account", cls=AppGroup)
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
    try:
        user, password = accounts.add_preapproved(
            db.session,
            common.shell_actor(),
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
