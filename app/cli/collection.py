"""``mynumber request``, ``campaign`` and ``mail``: collection from the shell (links,
campaigns and their target lists, sending, print batches, status, bounces)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli import common
from app.collection import campaigns, kits, mailings, requests, targets, terms
from app.models import Campaign, Person, PrintBatch, Stage, db
from app.platform import outbox


@click.group("request", cls=AppGroup)
def request_group() -> None:
    """収集依頼（提出フォームのリンク）。"""


@request_group.command("create")
@click.option("--person", "person_id", required=True, help="人物ID（役職員または外部委員等）")
@click.option(
    "--purpose",
    default=campaigns.DEFAULT_PURPOSE,
    show_default=False,
    help="利用目的（発注者の文言）",
)
@click.option("--days", default=None, type=int, help="有効日数（省略時は設定値）")
def request_create(person_id: str, purpose: str, days: int | None) -> None:
    """提出フォームのリンクを発行する。リンク（トークン）はこの一度だけ表示される。"""
    try:
        person = db.session.get(Person, uuid.UUID(person_id))
    except ValueError:
        raise click.ClickException(f"人物IDの形式が正しくありません: {person_id}") from None
    if person is None:
        raise click.ClickException(f"人物が見つかりません: {person_id}")
    valid_days = days or current_app.config["INTAKE_VALID_DAYS"]
    try:
        req, token = requests.create_request(
            db.session, common.cli_actor(), person, purpose_text=purpose, valid_days=valid_days
        )
    except terms.IntakeError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"依頼を発行しました: {req.id}（有効期限 {req.expires_at:%Y-%m-%d}）")
    click.echo(requests.request_url(current_app.config["PUBLIC_FORM_URL"], token))


def _campaign(campaign_id: str):
    if not campaign_id.isdigit():
        raise click.ClickException(f"キャンペーンIDは数字です: {campaign_id}")
    campaign = db.session.get(Campaign, int(campaign_id))
    if campaign is None:
        raise click.ClickException(f"キャンペーンが見つかりません: {campaign_id}")
    return campaign


@click.group("campaign", cls=AppGroup)
def campaign_group() -> None:
    """収集キャンペーン（対象者リスト・送付・印刷・状態）。"""


@campaign_group.command("create")
@click.option("--name", required=True, help="名称")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["employee", "external"]),
    help="対象（役職員／外部委員等）",
)
@click.option("--deadline", required=True, help="提出期限（2026-04-30、令和8年4月30日 など）")
@click.option("--month", default=None, help="対象月 YYYY-MM（外部委員等は必須）")
@click.option("--purpose", default=campaigns.DEFAULT_PURPOSE, help="利用目的（発注者の文言）")
@click.option("--four-eyes/--no-four-eyes", default=None, help="受理を別の担当者が承認する")
def campaign_create(
    name: str, kind: str, deadline: str, month: str | None, purpose: str, four_eyes: bool | None
) -> None:
    """キャンペーンを作成する（文言は既定の案内文で作成し、ポータルで編集できる）。"""
    try:
        campaign = campaigns.create_campaign(
            db.session,
            common.shell_actor(),  # the client's order entered on the server, not an Operator's
            name=name,
            kind=kind,
            deadline=deadline,
            purpose_text=purpose,
            month=month,
            four_eyes=four_eyes,
        )
    except campaigns.CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(
        f"キャンペーンを作成しました: ID {campaign.id}（提出期限 {campaign.deadline:%Y-%m-%d}）"
    )


@campaign_group.command("template")
@click.option("--kind", required=True, type=click.Choice(["employee", "external"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def campaign_template(kind: str, out: Path) -> None:
    """対象者リストの CSV テンプレート（見出し行、UTF-8 BOM 付き）を書き出す。"""
    if out.exists():
        raise click.ClickException(f"ファイルが既にあります: {out}")
    out.write_bytes(targets.template_csv(kind))
    click.echo(f"テンプレートを書き出しました: {out}")


@campaign_group.command("targets")
@click.argument("campaign_id")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="検査だけして登録しない")
def campaign_targets(campaign_id: str, file: Path, dry_run: bool) -> None:
    """対象者リスト（CSV）を検査して登録する。問題が1つでもあれば何も登録せず、全件を表示する。"""
    campaign = _campaign(campaign_id)
    if not file.is_file():
        raise click.ClickException(f"ファイルが見つかりません: {file}")
    try:
        parsed, result = targets.load(
            db.session,
            common.vault(),
            common.keyring(),
            common.shell_actor(),
            campaign,
            file.read_bytes(),
            dry_run=dry_run,
        )
    except targets.TargetFileError as exc:
        db.session.rollback()
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"エラー: {len(exc.problems)} 件の問題があるため登録しませんでした", err=True)
        sys.exit(1)
    if result is None:
        click.echo(
            f"問題はありません（{parsed.rows} 行、文字コード {parsed.encoding}）。登録していません"
        )
        return
    db.session.commit()
    click.echo(
        f"登録しました: 依頼 {result.requests_issued} 件（メール {result.emails}、郵送 "
        f"{result.posts}）、新規 {result.people_created} 人、既存 {result.people_matched} 人、"
        f"依頼済みのため省略 {result.skipped_already_requested} 件"
    )
    if result.contact_differs:
        click.echo(
            f"登録済みの連絡先と異なる項目 {len(result.contact_differs)} 件（登録済みの連絡先の"
            "まま送付します。変わった場合は人物情報を訂正してください）:",
            err=True,
        )
        for line in result.contact_differs:
            click.echo(f"  {line}", err=True)


@campaign_group.command("send")
@click.argument("campaign_id")
def campaign_send(campaign_id: str) -> None:
    """未送付の依頼を送付する（メールはジョブで送信、郵送は印刷バッチへ）。"""
    campaign = _campaign(campaign_id)
    try:
        result = mailings.dispatch(db.session, common.cli_operator(), campaign)
    except mailings.MailingError as exc:
        raise click.ClickException(str(exc)) from None
    outbox.after_commit(db.session, mailings.outbox_keys(result.emails))
    click.echo(
        f"メール {len(result.emails)} 件を送信キューに入れました。郵送 {result.posts} 件は印刷待ちです"
    )


@campaign_group.command("print")
@click.argument("campaign_id")
def campaign_print(campaign_id: str) -> None:
    """印刷待ちの郵送物（収集キット・督促状・不備のお知らせ）で印刷バッチを作る。"""
    campaign = _campaign(campaign_id)
    try:
        batch = kits.create_batch(db.session, common.cli_operator(), campaign)
    except kits.KitError as exc:
        raise click.ClickException(str(exc)) from None
    outbox.after_commit(db.session, [outbox.key_for(kits.RENDER_PRINT_BATCH, batch.id)])
    batch = db.session.get(PrintBatch, batch.id)
    state = batch.status if batch.status in ("ready", "failed") else "キューに投入"
    click.echo(
        f"印刷バッチ {batch.id}（{batch.item_count} 通）: {state}。ダウンロードはポータルの「送付・印刷」から"
    )


@campaign_group.command("status")
@click.argument("campaign_id")
@click.option(
    "--csv",
    "csv_out",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="依頼ごとの状態を CSV（番号なし、UTF-8 BOM 付き）に書き出す",
)
def campaign_status(campaign_id: str, csv_out: Path | None) -> None:
    """状態別の件数を表示する。"""
    campaign = _campaign(campaign_id)
    counts = campaigns.counts(db.session, campaign.id)
    click.echo(f"{campaign.name}（提出期限 {campaign.deadline:%Y-%m-%d}）")
    click.echo("  ".join(f"{Stage.LABELS[k]} {v}" for k, v in counts.items() if v) or "依頼なし")
    if csv_out is not None:
        if csv_out.exists():
            raise click.ClickException(f"ファイルが既にあります: {csv_out}")
        csv_out.write_bytes(campaigns.status_csv(db.session, common.cli_operator(), campaign))
        click.echo(f"CSV を書き出しました: {csv_out}")


@click.group("mail", cls=AppGroup)
def mail_group() -> None:
    """メールの送信記録。"""


@mail_group.command("bounce")
@click.argument("message_id")
@click.option("--reason", default="", help="不達の理由（メールサーバの通知の要旨）")
def mail_bounce(message_id: str, reason: str) -> None:
    """送信後に届いた不達通知を Message-ID で記録する（再送・郵送への切替はポータルで）。"""
    try:
        delivery = mailings.record_bounce(
            db.session, common.cli_operator(), message_id=message_id, reason=reason
        )
    except mailings.MailingError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"不達を記録しました: 送付 {delivery.id}")
