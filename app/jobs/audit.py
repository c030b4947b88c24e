"""The audit log's time rule in the worker: a checkpoint once events wait and the last one is
older than ``AUDIT_CHECKPOINT_MINUTES`` (app.audit.signing). Checked every minute; most runs find
nothing to do and take no lock."""

from __future__ import annotations

from flask import current_app

from app.audit import signing
from app.jobs import job, scheduled
from app.models import db


@scheduled("audit-checkpoint", "* * * * *")
@job
def audit_checkpoint() -> str:
    """Sign the audit chain's head when a checkpoint is due."""
    found = signing.sign_if_due(current_app._get_current_object(), db.engine, by_time=True)
    if found is None:
        return "チェックポイントを作成できませんでした（ログを確認してください）"
    if found.taken is None:
        return f"署名は最新です（イベント {found.last_signed_seq} まで署名済み）"
    return f"チェックポイントを作成しました: イベント {found.taken.seq}"
