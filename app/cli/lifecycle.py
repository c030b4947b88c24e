"""``mynumber backup``, ``restore``, ``backups``, ``return-export``, ``open-archive``,
``retention …`` and ``disposal …``: keeping, returning and destroying what is stored."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select

from app.audit import trail
from app.cli import common
from app.lifecycle import backup, certificate, disposal, holders, key_closure, retention, returns
from app.models import DisposalRequest, db
from app.vault import sealed


@click.command("backup")
@with_appcontext
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="出力ファイル"
)
def backup_command(out: Path) -> None:
    """データベースの暗号化バックアップを作る（鍵リングは keys backup で別に保管）。"""
    record = backup.create_backup(
        db.session,
        common.vault(),
        common.shell_actor(),
        out,
        client_name=current_app.config["CLIENT_NAME"],
    )
    click.echo(
        f"バックアップを作成しました: {out}（{record.size_bytes} バイト、SHA-256 {record.sha256}）"
    )


@click.command("restore")
@with_appcontext
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
def restore_command(source: Path) -> None:
    """バックアップを空のデータベースに復元し、記録済みの廃棄を再適用する。"""
    directory = current_app.extensions["migrate"].directory
    result = backup.restore(
        db.session,
        common.vault(),
        common.shell_actor(),
        source,
        journal=current_app.config["DISPOSAL_JOURNAL_FILE"],
        upgrade=lambda: upgrade(directory=directory),
        checkpoint_file=current_app.config["AUDIT_CHECKPOINT_FILE"],
    )
    click.echo(
        f"バックアップ（{result.created_at} 作成、監査イベント {result.audit_seq} まで）を復元しました。"
        f"廃棄の再適用: {result.reapplied_people} 名、データ鍵 {result.reapplied_keys} 件"
    )


@click.command("backups")
@with_appcontext
@click.option("--prune", "keep", type=int, default=None, help="最新の N 世代を残して古いものを削除")
def backups_command(keep: int | None) -> None:
    """バックアップ保存先のファイルを一覧表示する（--prune で世代管理）。"""
    folder = Path(current_app.config["BACKUP_DIR"])
    if keep is not None:
        removed = backup.prune(db.session, common.shell_actor(), folder, keep, backup.BACKUP_SUFFIX)
        removed += backup.prune(
            db.session, common.shell_actor(), folder, keep, backup.KEYRING_SUFFIX
        )
        click.echo(f"{len(removed)} 件の古いバックアップを削除しました")
    files = sorted(folder.glob("*.mnv*")) if folder.exists() else []
    for path in files:
        click.echo(f"{path.name}\t{path.stat().st_size}")
    click.echo(f"保存先: {folder}（{len(files)} 件）")


@click.command("return-export")
@with_appcontext
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="出力ファイル")
@click.option(
    "--recipient-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="発注者が提供した公開鍵",
)
@click.option("--purpose", default="契約終了に伴う返却（仕様書 5.3-4）", show_default=True)
@click.option(
    "--verify",
    "verify_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="作成済みの返却データを現在のデータと照合する（復号しない）",
)
def return_export(
    out: Path | None, recipient_key: Path | None, purpose: str, verify_file: Path | None
) -> None:
    """保管している全データを発注者の公開鍵あてに暗号化して書き出す（--verify で照合）。"""
    keyring = common.keyring()
    if verify_file:
        result = returns.verify_archive(
            db.session, common.vault(), verify_file, keyring.audit_signing_key().public_key()
        )
        if result.ok:
            fp = result.meta.get("fingerprint", {})
            click.echo(
                f"返却データは現在のデータと一致します（保管中 {fp.get('active')} 名、"
                f"個人番号の記録 {fp.get('numbers')} 件、署名を確認済み）"
            )
            return
        click.echo(
            "返却データが現在のデータと一致しません: " + "／".join(result.problems), err=True
        )
        sys.exit(1)
    if not out or not recipient_key:
        raise click.ClickException("--out と --recipient-key を指定してください（照合は --verify）")
    recipient = sealed.load_public(common.read_key(recipient_key, "公開鍵"))
    result = returns.export_archive(
        db.session,
        common.vault(),
        common.shell_actor(),
        out,
        recipient,
        purpose,
        client_name=current_app.config["CLIENT_NAME"],
        audit_public_pem=keyring.audit_public_key_pem(),
        checkpoint_file=current_app.config["AUDIT_CHECKPOINT_FILE"],
    )
    click.echo(
        f"返却データを作成しました: {out}（{result.counts.get('people', 0)} 名、個人番号の記録 "
        f"{result.counts.get('numbers', 0)} 件、SHA-256 {result.sha256}）"
    )


@click.command("open-archive")
@with_appcontext
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--operator-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="発行元の公開鍵（PEM）。省略時はこのインスタンスの鍵",
)
def open_archive_command(
    archive: Path, key_file: Path, out: Path, operator_key: Path | None
) -> None:
    """返却データの発行元の署名を確かめ、秘密鍵で復号して展開し、SHA-256 をマニフェストと照合する。"""
    signer = sealed.load_signer_key(
        common.read_key(operator_key, "発行元の公開鍵")
        if operator_key
        else common.keyring().audit_public_key_pem()
    )
    private = sealed.load_private(common.read_key(key_file, "秘密鍵"))
    result = sealed.open_archive(archive, private, out, operator_key=signer)
    click.echo(
        f"展開し、{len(result.manifest.get('files', []))} 件の SHA-256 を確認しました: {out}"
    )


@click.group("retention", cls=AppGroup)
def retention_group() -> None:
    """保管期間（削除予定日）。"""


@retention_group.command("recompute")
def retention_recompute() -> None:
    """全員の削除予定日をルールから計算し直す。"""
    changed = retention.recompute(db.session)
    trail.record(
        db.session, common.shell_actor(), "retention.recomputed", details={"changed": changed}
    )
    db.session.commit()
    counts = retention.counts(db.session)
    click.echo(
        f"{changed} 名の削除予定日を更新しました（期限到来 {counts['due']} 名、"
        f"保管中 {counts['active']} 名）"
    )


@retention_group.command("rules")
def retention_rules() -> None:
    """保管期間のルールを表示する。"""
    for rule in retention.load_rules(db.session).values():
        click.echo(f"{rule.kind}: {rule.describe()}（{rule.label}）")


@retention_group.command("set-rule")
@click.option("--kind", required=True, type=click.Choice(["employee", "dependent", "external"]))
@click.option(
    "--anchor", required=True, type=click.Choice(["ended_on", "jan10_after", "jan31_after"])
)
@click.option("--years", required=True, type=int)
@click.option("--label", required=True, help="根拠の説明（証明書・画面に表示）")
def retention_set_rule(kind: str, anchor: str, years: int, label: str) -> None:
    """保管期間のルールを変更し、削除予定日を計算し直す（監査ログに記録）。"""
    try:
        changed = retention.set_rule(db.session, common.shell_actor(), kind, anchor, years, label)
    except retention.RetentionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"ルールを変更しました（{changed} 名の削除予定日を更新）")


@click.group("disposal", cls=AppGroup)
def disposal_group() -> None:
    """廃棄（申請・承認はポータルで行う）。"""


@disposal_group.command("list")
def disposal_list() -> None:
    """廃棄申請の一覧（人物名は表示しない）。"""
    rows = db.session.execute(
        select(DisposalRequest).order_by(DisposalRequest.requested_at)
    ).scalars()
    for r in rows:
        click.echo(
            f"{r.short_id}\t{r.status_label}\t{r.kind_label}\t{r.scope_label}\t"
            f"{r.person_count if r.person_count is not None else r.planned_count} 名\t"
            f"{r.certificate_no or ''}"
        )


@disposal_group.command("execute")
@click.argument("request_ref")
def disposal_execute(request_ref: str) -> None:
    """承認済みの廃棄を実行する（暗号化消去・データ削除・領域の整理）。"""
    req = _find_request(request_ref)
    try:
        result = disposal.execute(
            db.session,
            common.vault(),
            common.shell_actor(),
            req.id,
            current_app.config["DISPOSAL_JOURNAL_FILE"],
        )
    except disposal.DisposalError as exc:
        raise click.ClickException(str(exc)) from None
    if result.already_done:
        click.echo(f"この廃棄は実行済みです（証明書番号 {result.request.certificate_no}）")
    else:
        click.echo(
            f"{result.request.person_count} 名を廃棄しました"
            f"（証明書番号 {result.request.certificate_no}）"
        )
    try:  # the key closure; resumed here when an earlier run was interrupted
        echo_closure(key_closure.after_disposal(common.shell_actor()))
    except key_closure.KeyClosureError as exc:
        raise click.ClickException(str(exc)) from None
    if result.compaction_error:
        click.echo(result.compaction_error, err=True)
        sys.exit(1)


def echo_closure(closure) -> None:
    """What a disposal's key closure made unreadable, destroyed and wrote (names only)."""
    if closure is None:
        return
    click.echo(
        f"KEK をバージョン {closure.kek_version} に更新し、旧 KEK "
        f"（{'、'.join(map(str, closure.retired)) or 'なし'}）を破棄しました"
    )
    for title, files in (
        ("復元できなくなったバックアップ", closure.unreadable_backups),
        ("破棄した鍵リングのバックアップ", closure.destroyed_keyring_backups),
    ):
        if files:
            click.echo(f"{title} {len(files)} 件（別の場所の写しも破棄してください）:")
            for name in files:
                click.echo(f"  {name}")
    if closure.fresh_backup:
        click.echo(f"新しいバックアップ: {closure.fresh_backup}")
    if closure.fresh_keyring_backup:
        click.echo(f"新しい鍵リングのバックアップ: {closure.fresh_keyring_backup}")
    for warning in closure.warnings:
        click.echo(warning, err=True)


def _find_request(ref: str):
    """A disposal request by its id or the first hex digits of it (as the portal shows)."""
    text = ref.strip().lower().replace("-", "")
    if len(text) < 6 or any(c not in "0123456789abcdef" for c in text):
        raise click.ClickException("申請IDは16進数で6桁以上を指定してください")
    if len(text) == 32:
        found = db.session.get(DisposalRequest, uuid.UUID(text))
        matches = [found] if found else []
    else:
        matches = [
            r
            for r in db.session.execute(select(DisposalRequest)).scalars()
            if r.id.hex.startswith(text)
        ]
    if len(matches) != 1:
        raise click.ClickException(
            f"廃棄申請 {ref} が見つかりません"
            if not matches
            else f"申請ID {ref} に複数が該当します"
        )
    return matches[0]


@disposal_group.command("compact")
def disposal_compact() -> None:
    """廃棄後のデータベース領域を整理する（SQLite: WAL の切り詰め / PostgreSQL: VACUUM FULL）。"""
    trail.record(db.session, common.shell_actor(), "disposal.storage_compacted", commit=True)
    detail = holders.compact_storage(db.session, holders.touched_tables())
    click.echo(f"データベース領域を整理しました: {detail}")


@disposal_group.command("certificate")
@click.argument("request_ref")
@click.option(
    "--format", "fmt", type=click.Choice(["pdf", "csv"]), default="pdf", show_default=True
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def disposal_certificate(request_ref: str, fmt: str, out: Path) -> None:
    """削除証明書（PDF / CSV）を書き出す。"""
    req = _find_request(request_ref)
    try:
        _, data, _ = certificate.download(
            db.session,
            common.vault(),
            common.shell_actor(),
            req.id,
            fmt,
            client=current_app.config["CLIENT_NAME"],
            operator=current_app.config["OPERATOR_NAME"],
            responsible=current_app.config.get("OPERATOR_RESPONSIBLE", ""),
        )
    except certificate.CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    out.write_bytes(data)
    click.echo(f"削除証明書を書き出しました: {out}")
