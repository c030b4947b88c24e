"""``mynumber outbox …``: the jobs and mail that actions promised, waiting to be handed over."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.models import OutboxState, db
from app.platform import outbox


@click.group("outbox", cls=AppGroup)
def outbox_group() -> None:
    """アウトボックス（操作が約束したジョブ・メールの送出待ち）。"""


@outbox_group.command("status")
def outbox_status() -> None:
    """状態ごとの件数と、最も古い送出待ちを表示する。"""
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
    report = outbox.dispatch(db.session)
    click.echo(str(report))
    for reason in sorted(set(report.errors)):
        click.echo(reason, err=True)
