"""Target list uploads as a job: the portal answers at once and shows a progress bar.

The upload is audited and stored sealed under a KEK-derived key (``TargetUpload.payload``);
only its id goes to the job (``app.platform.queue`` refuses anything else), so the list's
names never touch Redis, a temp file or the job's arguments. The job acts as the uploading
user (the identity recorded at upload, with the roles the account holds when the job
runs) and runs ``targets.load`` unchanged: one pass, every
problem with its row and field, nothing loaded when anything is wrong, the same audit events.
It reports the check's progress on its outbox row (``outbox.report_progress``); its findings
(every problem, or the counts) are sealed on the row for the result page, and the file is
dropped in the same commit. Finished uploads are purged after a day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.audit.trail import AuditUnavailable
from app.collection import campaigns, targets
from app.core.actor import Actor
from app.models import (
    TARGET_UPLOAD,
    TARGET_UPLOAD_RESULT,
    Campaign,
    TargetUpload,
    VaultUser,
    utcnow,
)
from app.platform import outbox
from app.vault.envelopes import Vault, VaultError, hold_kek

LOAD_TARGETS = "app.jobs.collection.load_target_upload"  # the job, by name
KEPT = dt.timedelta(days=1)
UNEXPECTED = "予期しないエラーで処理できませんでした。もう一度アップロードしてください"


class UploadNotFound(LookupError):
    """No such upload for this user (or it was purged)."""


def create(
    session: Session, vault: Vault, actor: Actor, campaign: Campaign, data: bytes, dry_run: bool
) -> TargetUpload:
    """Accept a file for checking (and loading unless ``dry_run``): audited first, sealed,
    the job promised in the same transaction. Committed; the caller hands the job over with
    ``outbox.dispatch_soon([key(upload)])``."""
    targets.require_upload(session, actor, campaign)
    _purge(session)
    hold_kek(session)  # sealed under the current KEK: no rotation until committed
    upload = TargetUpload(
        id=uuid.uuid4(),
        campaign_id=campaign.id,
        user_id=actor.user_id,
        actor=json.dumps(dataclasses.asdict(actor), ensure_ascii=False),
        dry_run=bool(dry_run),
        status="queued",
        size_bytes=len(data),
        created_at=utcnow(),
    )
    upload.payload = vault.seal_system(TARGET_UPLOAD.purpose, TARGET_UPLOAD.aad(id=upload.id), data)
    session.add(upload)
    trail.record(
        session,
        actor,
        "campaign.targets_upload",
        object_type="campaign",
        object_ids=[campaign.id, str(upload.id)],
        details={"bytes": len(data), "dry_run": bool(dry_run)},
    )
    outbox.add(session, LOAD_TARGETS, upload.id)
    session.commit()
    return upload


def key(upload: TargetUpload) -> str:
    """The outbox key of the upload's job (its progress lives there)."""
    return outbox.key_for(LOAD_TARGETS, upload.id)


def run(session: Session, vault: Vault, keyring, upload_id: str) -> str:
    """The job: check (and load) the sealed file as the uploading user. Idempotent: a
    finished upload is left as it is; one interrupted mid-way runs again from the start
    (the load is one transaction, so nothing of it was kept)."""
    upload = session.get(TargetUpload, uuid.UUID(str(upload_id)))
    if upload is None:
        return "missing"
    if upload.status not in TargetUpload.RUNNING:
        return upload.status
    upload.status = "running"
    session.commit()
    job_key = key(upload)
    try:
        data = vault.open_system(
            TARGET_UPLOAD.purpose, TARGET_UPLOAD.aad(id=upload.id), upload.payload or b""
        )
    except VaultError:
        return _finish(session, vault, upload.id, "failed", {"error": UNEXPECTED}, job_key)
    actor = _uploader_now(session, upload)
    campaign = session.get(Campaign, upload.campaign_id)

    def progress(done: int, total: int) -> None:
        # One step more than the lines: the bar reaches 100% only once the load committed.
        outbox.report_progress(session, job_key, done, total + 1)

    try:
        parsed, result = targets.load(
            session,
            vault,
            keyring,
            actor,
            campaign,
            data,
            dry_run=upload.dry_run,
            on_progress=progress,
        )
    except targets.TargetFileError as exc:
        session.rollback()
        return _finish(session, vault, upload.id, "refused", {"problems": exc.problems}, job_key)
    except (policy.PermissionDenied, AuditUnavailable, campaigns.CampaignError) as exc:
        session.rollback()
        return _finish(session, vault, upload.id, "failed", {"error": str(exc)}, job_key)
    except Exception:
        session.rollback()
        _finish(session, vault, upload.id, "failed", {"error": UNEXPECTED}, job_key)
        raise
    found = {"rows": parsed.rows, "households": len(parsed.households)}
    found["encoding"] = parsed.encoding
    if result is None:
        return _finish(session, vault, upload.id, "checked", found, job_key)
    found["loaded"] = dataclasses.asdict(result)
    # The people and requests commit together with the finding: all or nothing.
    return _finish(session, vault, upload.id, "loaded", found, job_key)


def _uploader_now(session: Session, upload: TargetUpload) -> Actor:
    """The uploader as the audit trail names them (name, address, agent at upload time), with
    the roles and roster approval they hold *now*: an account switched off or stripped of
    its role while the job waited is refused (and the refusal audited) like at the screen."""
    fields = json.loads(upload.actor)
    user = session.get(VaultUser, upload.user_id) if upload.user_id is not None else None
    if user is None or not user.active:
        return Actor(**(fields | {"roles": (), "roster_approved": False}))
    entry = user.roster_entry
    return Actor(
        **(
            fields
            | {
                "roles": tuple(sorted(r.name for r in user.roles)),
                "roster_entry_id": user.roster_entry_id,
                "roster_approved": bool(entry and entry.is_approved),
            }
        )
    )


def _finish(
    session: Session, vault: Vault, upload_id: uuid.UUID, status: str, found: dict, job_key: str
) -> str:
    upload = session.get(TargetUpload, upload_id)
    hold_kek(session)
    upload.status = status
    upload.payload = None  # the file is not kept once read
    upload.result = vault.seal_system(
        TARGET_UPLOAD_RESULT.purpose,
        TARGET_UPLOAD_RESULT.aad(id=upload.id),
        json.dumps(found, ensure_ascii=False).encode(),
    )
    upload.finished_at = utcnow()
    session.commit()
    outbox.report_progress(session, job_key, 1, 1)
    return status


def find(session: Session, actor: Actor, upload_id: str) -> TargetUpload:
    """The upload, for the user who made it only."""
    try:
        upload = session.get(TargetUpload, uuid.UUID(str(upload_id)))
    except ValueError:
        upload = None
    if upload is None or upload.user_id is None or upload.user_id != actor.user_id:
        raise UploadNotFound("この対象者リストの処理は見つかりません")
    return upload


def findings(vault: Vault, upload: TargetUpload) -> dict:
    """What the job found: ``problems`` (refused), ``error`` (failed), or the counts."""
    if upload.result is None:
        return {}
    plain = vault.open_system(
        TARGET_UPLOAD_RESULT.purpose, TARGET_UPLOAD_RESULT.aad(id=upload.id), upload.result
    )
    return json.loads(plain)


def _purge(session: Session) -> None:
    """Uploads older than a day go, finished or not (an abandoned one keeps no file)."""
    cutoff = utcnow() - KEPT
    session.execute(
        delete(TargetUpload).where(
            or_(TargetUpload.finished_at < cutoff, TargetUpload.created_at < cutoff)
        ),
        execution_options={"synchronize_session": False},
    )
