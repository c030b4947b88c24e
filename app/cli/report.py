"""``mynumber report monthly``: the monthly usage report as PDF and CSV, and by mail."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli import common
from app.models import db
from app.operations.reports import delivery, monthly


@click.group("report", cls=AppGroup)
def report_group() -> None:
    """利用実績報告書。"""


@report_group.command("monthly")
@click.option("--month", required=True, help="対象月 YYYY-MM（例: 2026-10）")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--encoding", type=click.Choice(["utf-8-sig", "cp932"]), default="utf-8-sig", show_default=True
)
@click.option(
    "--invoice",
    "invoice_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="請求書 PDF の書き出し先",
)
@click.option(
    "--correct",
    "reason",
    default=None,
    help="送付済みの月の訂正版（第2版…）を作成する。訂正理由を指定",
)
@click.option(
    "--send", is_flag=True, help="設定された送信先（MYNUMBER_REPORT_RECIPIENTS）へメールする"
)
def report_monthly(
    month: str,
    out: Path,
    csv_out: Path | None,
    invoice_out: Path | None,
    reason: str | None,
    encoding: str,
    send: bool,
) -> None:
    """報告書を作成して PDF（と CSV、請求書）に書き出す。送付済みの月は保管した版を書き出し、
    --correct 理由 で訂正版を作成する。--send でメール送信（再送を含む）。"""
    try:
        monthly.parse_month(month)
        settings = {
            "client": current_app.config["CLIENT_NAME"],
            "operator": current_app.config["OPERATOR_NAME"],
        }
        actor = common.shell_actor()
        row = delivery.ensure(db.session, month)
        if reason or not delivery.is_sent(row):
            row = delivery.generate(db.session, actor, month, correction_reason=reason, **settings)
            what = "作成しました"
        else:
            what = "送付済みの版を書き出しました（訂正は --correct 理由）"
        _, pdf, _ = delivery.download(db.session, actor, month, "pdf")
        out.write_bytes(pdf)
        label = monthly.month_label(month)
        click.echo(f"利用実績報告書（{label}分・第{row.version}版）を{what}: {out}")
        if invoice_out is not None:
            _, data, _ = delivery.download(db.session, actor, month, "invoice")
            invoice_out.write_bytes(data)
            click.echo(f"請求書を書き出しました: {invoice_out}")
        if csv_out is not None:
            _, data, _ = delivery.download(db.session, actor, month, "csv", encoding)
            csv_out.write_bytes(data)
            click.echo(f"CSV を書き出しました: {csv_out}")
        if send:
            sent = delivery.send(
                db.session,
                actor,
                month,
                recipients=list(current_app.config.get("REPORT_RECIPIENTS") or []),
                **settings,
            )
            if sent.status != "sent":
                raise click.ClickException(f"メールを送信できませんでした: {sent.error}")
            click.echo(f"メールで送信しました: {sent.recipients}")
    except monthly.ReportError as exc:
        raise click.ClickException(str(exc)) from None
