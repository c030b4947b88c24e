"""``mynumber worker`` and ``mynumber job NAME``: process the job queue, or run one scheduled
job now."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.jobs import worker


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="キューが空になったら終了する（RQ）")
@click.option(
    "--cron/--no-cron",
    default=True,
    show_default=True,
    help="定期ジョブのスケジューラも動かす（複数のワーカーでは1台だけ --cron に）",
)
def worker_command(burst: bool, cron: bool) -> None:
    """ジョブを処理する（REDIS_URL があれば RQ ワーカーとスケジューラ、なければ定期ジョブを内部で実行）。"""
    url = current_app.config.get("REDIS_URL")
    if url:
        name = current_app.config.get("JOB_QUEUE") or worker.QUEUE
        click.echo(f"RQ ワーカーを起動します（キュー {name}）")
        worker.run_rq(url, queue_name=name, burst=burst, with_cron=cron)
    else:
        click.echo("組み込みモード: 定期ジョブをこのプロセスで実行します")
        worker.run_inline()


@click.command("job")
@with_appcontext
@click.argument("name")
def job_command(name: str) -> None:
    """定期ジョブを名前で今すぐ実行する（例: dunning）。"""
    try:
        item = worker.find(name)
    except KeyError as exc:
        names = ", ".join(s.name for s in worker.load_schedule()) or "なし"
        raise click.ClickException(f"{exc.args[0]}（登録済み: {names}）") from None
    result = item.func()
    click.echo(f"ジョブ {name} を実行しました: {result}")
