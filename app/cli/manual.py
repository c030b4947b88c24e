"""``mynumber manual build``: the service manual as a PDF."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from app.operations import manual


@click.group("manual", cls=AppGroup)
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
    try:
        manual.build_pdf(out, source or manual.MANUAL_DIR)
    except manual.ManualError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"マニュアルを書き出しました: {out}")
