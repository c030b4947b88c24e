"""``mynumber audit …``: verify the audit log's chain and signatures, sign its tail now."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.audit import checkpoints, trail, verifier
from app.cli import common
from app.models import db


@click.group("audit", cls=AppGroup)
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
    "checkpoint_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="データベース外に保管したチェックポイントファイル（JSON Lines）",
)
def audit_verify(public_key: Path | None, checkpoint_file: Path | None) -> None:
    """ハッシュチェーンと署名付きチェックポイントを検証する。改ざんや署名のない末尾が
    上限を超えていれば終了コード 1。"""
    key_path = public_key or Path(current_app.config["AUDIT_PUBLIC_KEY_FILE"])
    if not key_path.exists():
        raise click.ClickException(f"公開鍵ファイルがありません: {key_path}")
    key = verifier.load_public_key(key_path.read_bytes())
    cp_file = checkpoint_file or Path(current_app.config["AUDIT_CHECKPOINT_FILE"])
    result = verifier.verify(
        db.session, key, cp_file, checkpoints.SigningPolicy.from_config(current_app.config)
    )
    for note in result.problems:
        click.echo(f"注意: {note}", err=True)
    if result.ok and result.checkpoints == 0:
        # Nothing signed yet (a fresh instance): the chain holds, but 「完全」 would overstate it.
        click.echo(
            f"{verifier.status(result)[1]}: イベント {result.events} 件のハッシュチェーンは"
            "整合していますが、署名付きチェックポイントがまだありません"
        )
        return
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
    keyring = common.keyring()
    # Committed first: only a committed chain is signed and published outside.
    trail.record(db.session, common.cli_actor(), "audit.checkpoint", commit=True)
    policy = checkpoints.SigningPolicy.from_config(current_app.config)
    cp = checkpoints.checkpoint(db.session, keyring.audit_signing_key(), policy.file, policy.syslog)
    db.session.commit()
    click.echo(f"チェックポイントを作成しました: イベント {cp.seq}")
