"""``mynumber keys …``: the key ring's KEKs (rotate, list, retire), its backup and restore,
its destruction at the end of the contract, and the operator's own key pairs."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.audit import trail
from app.cli import common
from app.lifecycle import backup, journal, keyops
from app.models import db
from app.vault import sealed


@click.group("keys", cls=AppGroup)
def keys_group() -> None:
    """鍵の操作。"""


@keys_group.command("rotate")
def keys_rotate() -> None:
    """新しい KEK を作り、全データ鍵を再ラップする（データの再暗号化は不要）。"""
    version, count = keyops.rotate(db.session, common.vault(), common.cli_actor())
    click.echo(f"KEK をバージョン {version} に更新し、{count} 件のデータ鍵を再ラップしました")


@keys_group.command("list")
def keys_list() -> None:
    """KEK の各バージョンと、それに依存するデータ・バックアップの件数を表示する（鍵は表示しない）。"""
    found = keyops.usage(db.session, common.vault(), _backup_dir())
    for item in found:
        mark = "現在" if item.current else "旧"
        click.echo(
            f"KEK バージョン {item.version}（{mark}）: {item.describe_database()}、"
            f"バックアップ {len(item.backups)} 件"
        )
    old = [i for i in found if not i.current and not i.in_database]
    if old:
        click.echo(
            "廃棄できる旧 KEK: "
            + "、".join(
                f"{i.version}（バックアップが復元不能になるため --yes が必要）"
                if i.backups
                else str(i.version)
                for i in old
            )
            + "（mynumber keys retire --version N）"
        )


@keys_group.command("retire")
@click.option("--version", "version", required=True, type=int, help="廃棄する KEK のバージョン")
@click.option(
    "--yes",
    is_flag=True,
    help="この KEK で暗号化されたバックアップが復元できなくなることに同意する",
)
def keys_retire(version: int, yes: bool) -> None:
    """旧 KEK を鍵リングから消去する（rotate の後。元に戻せない）。"""
    try:
        result = keyops.retire(
            db.session,
            common.vault(),
            common.cli_actor(),
            version,
            backup_dir=_backup_dir(),
            accept_unrestorable=yes,
        )
    except keyops.BackupsWouldBeLost as exc:
        click.echo(
            f"KEK バージョン {version} を廃棄すると、次のバックアップが復元できなくなります:"
        )
        for name in exc.files:
            click.echo(f"  {name}")
        raise click.ClickException(str(exc)) from None
    except keyops.RetireRefused as exc:
        raise click.ClickException(str(exc)) from None
    # Remembered outside the ring too: `keys restore` of an older key-ring backup drops it.
    journal.record_retired_outside(common.keyring(), current_app.config["DISPOSAL_JOURNAL_FILE"])
    click.echo(f"KEK バージョン {result.version} を鍵リングから消去しました")
    if result.unrestorable_backups:
        click.echo(
            f"次のバックアップ {len(result.unrestorable_backups)} 件はこの鍵リングでは"
            "復元できなくなりました（不要なら削除してください）:"
        )
        for name in result.unrestorable_backups:
            click.echo(f"  {name}")
    click.echo(
        "以前の鍵リングのバックアップ（.mnvkeys）にはこの KEK が残っています。"
        "廃棄を完全にするには、それらも破棄し、mynumber keys backup で取り直してください"
    )


def _backup_dir() -> str | None:
    return current_app.config.get("BACKUP_DIR")


@keys_group.command("backup")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--recipient-key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="運用者の復旧用公開鍵（mynumber keys keygen の .pub）",
)
def keys_backup(out: Path, recipient_key: Path) -> None:
    """鍵リングを復旧用公開鍵あてに暗号化して書き出す（HPKE: ML-KEM-768 + X25519）。"""
    recipient = sealed.load_public(common.read_key(recipient_key, "公開鍵"))
    digest = backup.backup_keyring(
        db.session, common.keyring(), common.shell_actor(), out, recipient
    )
    click.echo(
        f"鍵リングのバックアップを作成しました: {out}（宛先の指紋 {recipient.fingerprint[:16]}…、"
        f"SHA-256 {digest}）"
    )


@keys_group.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="復旧用の秘密鍵",
)
def keys_restore(source: Path, key_file: Path) -> None:
    """鍵リングをバックアップから戻す（鍵リングがない場合のみ）。廃棄の記録は統合される。"""
    private = sealed.load_private(common.read_key(key_file, "秘密鍵"))
    meta = backup.restore_keyring(
        source,
        private,
        common.keyring(),
        current_app.config["DISPOSAL_JOURNAL_FILE"],
    )
    click.echo(
        f"鍵リングを復元しました（{meta.get('created_at')} 作成、KEK {meta.get('kek_versions')}）。"
        "続けて mynumber restore でデータベースを復元してください"
    )


@keys_group.command("destroy")
@click.option("--client", "client_name", required=True, help="確認のため発注者名を入力")
def keys_destroy(client_name: str) -> None:
    """契約終了の最後に鍵リングとバックアップを破棄する（全員の廃棄後のみ。元に戻せない）。"""
    if client_name != current_app.config["CLIENT_NAME"]:
        raise click.ClickException("発注者名が設定（MYNUMBER_CLIENT_NAME）と一致しません")
    removed = backup.destroy_keyring(
        db.session,
        common.keyring(),
        common.shell_actor(),
        current_app.config["BACKUP_DIR"],
        current_app.config["AUDIT_CHECKPOINT_FILE"],
    )
    click.echo(
        f"鍵リングを破棄し、バックアップ {len(removed)} 件を削除しました。別の場所にある鍵リングの"
        "バックアップと復旧用秘密鍵も破棄してください"
    )


@keys_group.command("keygen")
@click.option("--out", required=True, help="出力ファイル名の接頭辞（.key と .pub を作る）")
def keys_keygen(out: str) -> None:
    """受取用・復旧用の鍵ペアを作る（ML-KEM-768 + X25519）。秘密鍵はオフラインで保管する。"""
    private_text, public_text = sealed.generate_recipient()
    sealed.write_private_file(f"{out}.key", private_text)
    Path(f"{out}.pub").write_text(public_text, encoding="utf-8")
    click.echo(
        f"鍵ペアを作成しました: {out}.key（0600）、{out}.pub"
        f"（指紋 {sealed.load_public(public_text).fingerprint}）"
    )


@keys_group.command("operator-public-key")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="PEM の出力先（省略時は表示）"
)
def keys_operator_public_key(out: Path | None) -> None:
    """返却データの署名を確かめる公開鍵（PEM）と指紋。契約開始時に発注者へ渡し、指紋を読み合わせる。"""
    keyring = common.keyring()
    pem = keyring.audit_public_key_pem()
    fingerprint = sealed.signer_fingerprint(sealed.load_signer_key(pem))
    trail.record(
        db.session,
        common.cli_actor(),
        "keys.operator_public_key",
        details={"fingerprint": fingerprint, "file": out.name if out else None},
    )
    db.session.commit()
    if out:
        out.write_bytes(pem)
        click.echo(f"発行元の公開鍵を書き出しました: {out}")
    else:
        click.echo(pem.decode("ascii"), nl=False)
    click.echo(f"公開鍵の指紋（SHA-256）: {fingerprint}")
