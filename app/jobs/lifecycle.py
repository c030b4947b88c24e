"""Storage lifecycle jobs: the weekly retention review, the daily backup, the end of a portal
disposal (compaction and key closure) and the return archive the portal asked for.

They take no personal data (they run on ids and counts) and are idempotent: running one twice
recomputes the same dates, writes one more backup and prunes to the same count, finds the
disposal already compacted and closed, or finds the archive ready.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from flask import current_app
from flask_appbuilder.security.sqla.models import Role
from sqlalchemy import select

from app.audit import trail
from app.core.actor import Actor
from app.jobs import job, scheduled
from app.lifecycle import backup, disposal, retention, returns
from app.lifecycle.key_closure import after_disposal
from app.models import DisposalRequest, VaultUser, db
from app.platform.mail import Mail, send_from_app
from app.vault import sealed


def _notice_recipients() -> list[str]:
    """Active ClientStaff and Operator accounts with an e-mail address."""
    users = db.session.execute(
        select(VaultUser).join(VaultUser.roles).where(Role.name.in_(("ClientStaff", "Operator")))
    ).scalars()
    return sorted({u.email for u in users if u.active and u.email})


@scheduled("retention-review", "0 0 * * 1")  # Mondays 09:00 JST
@job
def retention_review() -> dict:
    """Recompute every 削除予定日 and tell the client's staff how many people are due.
    Nothing is deleted: disposal needs an approved request."""
    session = db.session
    actor = Actor.system("job:retention-review")
    changed = retention.recompute(session)
    counts = retention.counts(
        session, upcoming_days=current_app.config.get("RETENTION_UPCOMING_DAYS", 90)
    )
    trail.record(
        session,
        actor,
        "retention.reviewed",
        object_type="person",
        details={"changed": changed, **counts},
    )
    session.commit()
    recipients = _notice_recipients()
    if counts["due"] and recipients:
        send_from_app(
            Mail(
                to=recipients,
                subject="【MyNumber Vault】削除予定日を過ぎた人物がいます",
                body=(
                    f"削除予定日を過ぎた人物が {counts['due']} 名います"
                    f"（{current_app.config.get('RETENTION_UPCOMING_DAYS', 90)}日以内に到来: "
                    f"{counts['upcoming']} 名）。\n"
                    "管理ポータルの「保管・廃棄」→「保管期限」で確認し、廃棄を申請してください。"
                    "廃棄は発注者担当者の承認後に実行されます（自動では削除されません）。\n"
                ),
            )
        )
    return {"changed": changed, **counts}


@scheduled("daily-backup", "0 18 * * *")  # 03:00 JST
@job
def daily_backup() -> dict:
    """An encrypted database backup, the key ring sealed to the recovery key when one is
    configured, and the oldest ones beyond ``BACKUP_KEEP`` deleted."""
    cfg = current_app.config
    session = db.session
    vault = current_app.extensions["mynumber_vault"]
    actor = Actor.system("job:daily-backup")
    folder = Path(cfg["BACKUP_DIR"])
    name = f"backup-{backup.stamp()}"
    record = backup.create_backup(
        session,
        vault,
        actor,
        folder / f"{name}{backup.BACKUP_SUFFIX}",
        kind="scheduled",
        client_name=cfg.get("CLIENT_NAME", ""),
    )
    keys_file = None
    if cfg.get("RECOVERY_PUBLIC_KEY"):
        keys_file = keyring_backup(actor, folder, name)
    removed = backup.prune(session, actor, folder, cfg["BACKUP_KEEP"], backup.BACKUP_SUFFIX)
    removed += backup.prune(session, actor, folder, cfg["BACKUP_KEEP"], backup.KEYRING_SUFFIX)
    return {"backup": record.file_name, "keyring": keys_file, "pruned": removed}


def keyring_backup(actor: Actor, folder: Path, name: str | None = None) -> str:
    """Seal the key ring to the configured recovery key (after backups and disposals)."""
    cfg = current_app.config
    recipient = sealed.load_public(Path(cfg["RECOVERY_PUBLIC_KEY"]).read_text(encoding="utf-8"))
    out = folder / f"{name or 'keyring-' + backup.stamp()}{backup.KEYRING_SUFFIX}"
    backup.backup_keyring(
        db.session, current_app.extensions["mynumber_keyring"], actor, out, recipient
    )
    return str(out)


@job
def build_return_archive(archive_id: str) -> str:
    """Build the return archive a ClientStaff user requested in the portal."""
    cfg = current_app.config
    keyring = current_app.extensions["mynumber_keyring"]
    row = returns.build_requested(
        db.session,
        current_app.extensions["mynumber_vault"],
        uuid.UUID(str(archive_id)),
        cfg["RETURN_DIR"],
        client_name=cfg.get("CLIENT_NAME", ""),
        audit_public_pem=keyring.audit_public_key_pem(),
        checkpoint_file=cfg.get("AUDIT_CHECKPOINT_FILE"),
    )
    return row.status if row else "missing"


@job
def finish_disposal(request_id: str) -> str:
    """After a disposal committed in the portal: remove the freed bytes from the database
    files (this may wait for older transactions to end, so it is not done in the request),
    then the key closure (rotation, retirement, fresh backups)."""
    actor = Actor.system("job:disposal-finish")
    req = db.session.get(DisposalRequest, uuid.UUID(str(request_id)))
    if req is None or req.status != "executed":
        return "missing"
    result = disposal.Execution(req, already_done=True, compacted=req.compacted_at is not None)
    if not result.compacted:
        disposal.finish_storage(db.session, actor, result)
    after_disposal(actor)  # raises (audited): the job is retried, init / run resume it too
    return "compacted" if result.compacted else (result.compaction_error or "failed")
