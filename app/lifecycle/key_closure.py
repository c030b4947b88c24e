"""The key closure that ends a data disposal: no older backup can bring the disposed back.

Crypto-shredding a data key is final only if no backup still holds that key wrapped under a
KEK that still exists somewhere: a database backup taken before the disposal holds the wrapped
key (and the person's name, sealed under the KEK), a key-ring backup holds the KEK. So a
disposal ends (``close_keys``: after the CLI's execution, in the portal's finishing job, and
resumed at ``init`` / ``run`` after a crash; ``after_disposal`` runs it with the app's
settings) by rotating the KEK, retiring every older one, destroying every key-ring backup that
still holds one, and taking a fresh database backup (and key-ring backup, when a recovery key
is configured). Every database backup from before is then unreadable with any key ring the
product still has, names included; the certificate lists those files and the retired
versions. Every step is idempotent; the request records when the closure was done.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import trail
from app.core.actor import Actor
from app.lifecycle import backup, keyops
from app.lifecycle.disposal import DisposalError
from app.lifecycle.journal import record_retired_outside
from app.models import DisposalKind, DisposalRequest, DisposalStatus, db, utcnow
from app.vault import sealed
from app.vault.envelopes import Vault


class KeyClosureError(DisposalError):
    """The people are disposed of, but the keys of older backups are not closed yet."""


@dataclass
class KeyClosure:
    """What a key closure did: the requests it ended, the KEK versions no longer anywhere in
    the product, the database backups that cannot be opened any more, the key-ring backups
    destroyed, and the fresh backups that replace them."""

    requests: list[uuid.UUID]
    kek_version: int
    retired: list[int]
    unreadable_backups: list[str]
    destroyed_keyring_backups: list[str]
    fresh_backup: str | None = None
    fresh_keyring_backup: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """What the request keeps (file names, not paths) for its certificate."""
        return {
            "kek_version": self.kek_version,
            "retired_kek_versions": self.retired,
            "unreadable_backups": sorted(Path(p).name for p in self.unreadable_backups),
            "destroyed_keyring_backups": sorted(
                Path(p).name for p in self.destroyed_keyring_backups
            ),
        }


def pending_closures(session: Session) -> list[DisposalRequest]:
    """Executed data disposals of at least one person whose key closure is not done."""
    return list(
        session.execute(
            select(DisposalRequest)
            .where(
                DisposalRequest.kind == DisposalKind.DATA,
                DisposalRequest.status == DisposalStatus.EXECUTED,
                DisposalRequest.keys_closed_at.is_(None),
                DisposalRequest.person_count > 0,
            )
            .order_by(DisposalRequest.executed_at)
        ).scalars()
    )


def _needs_rotation(session: Session, vault: Vault, pending: list[DisposalRequest]) -> bool:
    """A rotation after the disposal committed is what counts (the disposed data keys were
    gone by then, so the new KEK never wrapped them); resumed after a crash, it is not done
    twice — unless the crash came before it committed (the new KEK is in the ring, but keys
    or secrets are still under an older one): then it is done again. A request executed
    before its version was recorded always gets one."""
    known = [r.kek_version_at_execution for r in pending]
    if None in known or vault.keys.current_kek_version() <= max(known):
        return True
    return any(u.in_database for u in keyops.usage(session, vault) if not u.current)


def close_keys(
    session: Session,
    vault: Vault,
    actor: Actor,
    *,
    journal: str | Path | None,
    backup_dir: str | Path | None,
    recipient=None,
    client_name: str = "",
) -> KeyClosure | None:
    """End every executed data disposal whose older backups could still bring it back.

    In order, each step idempotent (a crash anywhere is resumed by the next call): audited
    first (``disposal.keys_close``, committed); rotate the KEK (``keyops.rotate``: every
    remaining data key and system secret re-wrapped); retire every other version
    (``keyops.retire``); write the retired KEKs' fingerprints to the journal (a key ring
    restored from an older backup drops them again); destroy every key-ring backup we know
    of that holds a retired KEK; record the closure on the requests (``disposal.keys_closed``);
    then a fresh database backup, and a fresh key-ring backup when a ``recipient`` (the
    recovery public key) is given. ``None`` when nothing was pending."""
    pending = pending_closures(session)
    if not pending:
        return None
    ids = [r.id for r in pending]
    ring = vault.keys
    trail.record(
        session,
        actor,
        "disposal.keys_close",
        object_type="disposal_request",
        object_ids=ids,
        details={"requests": len(ids)},
        commit=True,
    )
    try:
        if _needs_rotation(session, vault, pending):
            keyops.rotate(session, vault, actor)
        current = ring.current_kek_version()
        for version in ring.kek_versions():
            if version != current:
                keyops.retire(
                    session, vault, actor, version, backup_dir=backup_dir, accept_unrestorable=True
                )
        retired = record_retired_outside(ring, journal, ids)
        destroyed = backup.destroy_stale_keyring_backups(session, ring, actor, backup_dir)
        result = KeyClosure(
            requests=ids,
            kek_version=current,
            retired=sorted({int(r["version"]) for r in retired}),
            unreadable_backups=backup.unreadable_backups(session, ring, backup_dir),
            destroyed_keyring_backups=destroyed,
        )
        now = utcnow()
        summary = json.dumps(result.summary(), ensure_ascii=False)
        for req_id in ids:
            req = session.get(DisposalRequest, req_id)
            req.keys_closed_at = now
            req.key_closure = summary
        trail.record(
            session,
            actor,
            "disposal.keys_closed",
            object_type="disposal_request",
            object_ids=ids,
            details=result.summary(),
        )
        session.commit()
    except Exception as exc:
        session.rollback()
        trail.record(
            session,
            actor,
            "disposal.keys_close",
            object_type="disposal_request",
            object_ids=ids,
            outcome="failure",
            details={"error": type(exc).__name__, "reason": str(exc)[:300]},
            commit=True,
        )
        raise KeyClosureError(
            "廃棄は完了していますが、鍵の更新と旧 KEK の破棄（古いバックアップを復元不能にする"
            f"処理）が完了していません（{type(exc).__name__}: {str(exc)[:200]}）。"
            "mynumber disposal execute を再度実行するか、mynumber init / run の起動時に再開されます"
        ) from exc
    _fresh_backups(session, vault, actor, result, backup_dir, recipient, client_name)
    return result


def _fresh_backups(
    session: Session,
    vault: Vault,
    actor: Actor,
    result: KeyClosure,
    backup_dir: str | Path | None,
    recipient,
    client_name: str,
) -> None:
    """The backups that replace the ones the closure made unreadable (each audited by its
    own function); a failure is reported, the closure itself stands."""
    if not backup_dir:
        result.warnings.append(
            "バックアップ保存先が設定されていないため、新しいバックアップを作成していません"
        )
        return
    name = f"backup-{backup.stamp()}"
    try:
        record = backup.create_backup(
            session,
            vault,
            actor,
            Path(backup_dir) / f"{name}{backup.BACKUP_SUFFIX}",
            kind="disposal",
            client_name=client_name,
        )
        result.fresh_backup = record.file_name
    except Exception as exc:  # noqa: BLE001 - audited by create_backup; reported here
        session.rollback()
        result.warnings.append(
            f"新しいデータベースのバックアップを作成できませんでした（{type(exc).__name__}）。"
            "mynumber backup で作成してください"
        )
    if recipient is None:
        result.warnings.append(
            "復旧用公開鍵（MYNUMBER_RECOVERY_PUBLIC_KEY）が設定されていないため、鍵リングの"
            "バックアップを作成していません。以前の鍵リングのバックアップは破棄されたので、"
            "mynumber keys backup で取り直してください"
        )
        return
    out = Path(backup_dir) / f"keyring-{backup.stamp()}{backup.KEYRING_SUFFIX}"
    try:
        backup.backup_keyring(session, vault.keys, actor, out, recipient, kind="disposal")
        result.fresh_keyring_backup = str(out)
    except Exception as exc:  # noqa: BLE001 - reported; the closure stands
        session.rollback()
        trail.record(
            session,
            actor,
            "keys.backup",
            object_type="keyring",
            outcome="failure",
            details={"error": type(exc).__name__, "after": "disposal"},
            commit=True,
        )
        result.warnings.append(
            f"鍵リングのバックアップを作成できませんでした（{type(exc).__name__}）。"
            "mynumber keys backup で取り直してください"
        )


# -- with the app's settings ------------------------------------------------------------------
def _recovery_recipient():
    """The configured recovery public key, or ``None``."""
    path = current_app.config.get("RECOVERY_PUBLIC_KEY")
    if not path:
        return None
    return sealed.load_public(Path(path).read_text(encoding="utf-8"))


def after_disposal(actor: Actor) -> KeyClosure | None:
    """End every executed data disposal with its key closure (``close_keys``) with the app's
    settings: rotate the KEK, retire the older ones, destroy the key-ring backups that hold
    them, take fresh backups. Called after the CLI's execution, by the portal's finishing job,
    and at ``init`` / ``run`` (which resume a closure a crash interrupted). Raises
    ``KeyClosureError`` (Japanese) when the closure could not be done."""
    cfg = current_app.config
    try:
        recipient = _recovery_recipient()
    except (OSError, sealed.SealedError) as exc:
        recipient = None
        trail.record(
            db.session,
            actor,
            "keys.backup",
            object_type="keyring",
            outcome="failure",
            details={"error": type(exc).__name__, "after": "disposal"},
            commit=True,
        )
    return close_keys(
        db.session,
        current_app.extensions["mynumber_vault"],
        actor,
        journal=cfg["DISPOSAL_JOURNAL_FILE"],
        backup_dir=cfg.get("BACKUP_DIR"),
        recipient=recipient,
        client_name=cfg.get("CLIENT_NAME", ""),
    )
