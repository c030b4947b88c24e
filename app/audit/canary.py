"""Canary numbers: fictitious people whose every use raises a security alert.

A canary is stored exactly like any other person (``registry.add_person`` +
``registry.register_number``): no column, flag, code pattern or audit action in the database
tells it apart. Which people are canaries is known only to the key ring (the named secret
``canary``): a random HMAC key and the HMAC-SHA256 tags of the canaries' person ids, each with
the label the security contact will see. A copied database therefore cannot tell a canary from
a real person; whoever searches for, matches, reveals, exports, returns or decrypts one trips
the wire.

A trip writes the audit event ``security.canary`` (fail closed like every audit event: if it
cannot be written the access fails) and mails the security contact (``SECURITY_CONTACT``),
naming the path, the actor, the time and the canary's label, never a number. The access itself
then goes on exactly as for anyone else, so an intruder is not warned. A mail that cannot be
sent is logged and does not stop the access (the audit event is the record).

Limits: the audit event follows the access it was raised by, so someone who can read the
audit table *after* tripping a canary can learn which person it was; that is why the labels,
not person ids, go into the event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.orm import Session

from app.audit import trail
from app.core import jptime
from app.core.actor import Actor, current_actor
from app.models import utcnow
from app.platform import mail
from app.vault.envelopes import Vault

log = logging.getLogger(__name__)

SECRET_NAME = "canary"  # noqa: S105  # nosec B105  # the key-ring entry name, not a secret
ACTION = "security.canary"
# Paths a canary can be touched through (the ``path`` of the audit event and the mail).
PATH_LABELS = {
    "search": "個人の検索（照合）",
    "match": "一括照合",
    "reveal": "個人番号の表示",
    "export": "CSV 出力",
    "return": "返却アーカイブの作成",
    "decrypt": "暗号化データの復号",
}
_SESSION_KEY = "mnv_canary_alerted"


class CanaryError(ValueError):
    """A canary command was given something it cannot use (Japanese, never a number)."""


@dataclass(frozen=True)
class Canary:
    label: str
    person_id: uuid.UUID | None
    name: str | None
    masked: str


# -- the key-ring secret -----------------------------------------------------------------------
def _refresh(vault: Vault) -> None:
    """Another process (``mynumber canary add``) may have changed the key ring: re-read it
    when the file changed, so a running portal knows a new canary without a restart."""
    keys = vault.keys
    path = getattr(keys, "path", None)
    if path is None:
        return
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return
    if getattr(keys, "_mnv_canary_stamp", None) != stamp:
        keys.reload()
        keys._mnv_canary_stamp = stamp


def _secret(vault: Vault) -> dict:
    _refresh(vault)
    return vault.keys.get_secret(SECRET_NAME) or {}


def person_tag(key: bytes, person_id: uuid.UUID | str) -> str:
    return hmac.new(key, f"mnv:canary:{person_id}".encode(), hashlib.sha256).hexdigest()


def read_tags(vault: Vault) -> tuple[bytes, dict[str, str]]:
    secret = _secret(vault)
    if not secret.get("tags"):
        return b"", {}
    return base64.b64decode(secret["key"]), dict(secret["tags"])


def store_tags(vault: Vault, key: bytes, tags: dict[str, str]) -> None:
    vault.keys.set_secret(SECRET_NAME, {"key": base64.b64encode(key).decode("ascii"), "tags": tags})


def configured(vault: Vault) -> bool:
    return bool(read_tags(vault)[1])


def labels_of(vault: Vault, person_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The canaries among these people, with their labels (empty when none is configured)."""
    key, tags = read_tags(vault)
    if not tags:
        return {}
    found = {}
    for pid in person_ids:
        label = tags.get(person_tag(key, pid))
        if label is not None:
            found[pid] = label
    return found


# -- the tripwire ------------------------------------------------------------------------------
def trip(
    session: Session,
    vault: Vault | None,
    actor: Actor,
    person_ids: Iterable[uuid.UUID],
    path: str,
    *,
    commit: bool = True,
) -> trail.AuditEvent | None:
    """Raise the alert if any of ``person_ids`` is a canary; return the event, else None.

    Called by every path that hands out a person or their number, after its own audit event.
    A canary already reported in this session (one request, job or command) is not reported
    again.
    """
    if vault is None:
        vault = current_app.extensions["mynumber_vault"]
    alerted = session.info.setdefault(_SESSION_KEY, set())
    # One access, one alert: a path built on another (the return archive runs the export,
    # a reveal decrypts) does not report the same canary twice in the same session.
    hits = {pid: label for pid, label in labels_of(vault, person_ids).items() if pid not in alerted}
    if not hits:
        return None
    event = trail.record(
        session,
        actor,
        ACTION,
        object_type="canary",
        outcome="alert",
        details={
            "path": path,
            "path_label": PATH_LABELS.get(path, path),
            "canaries": sorted(set(hits.values())),
            "count": len(hits),
        },
        commit=commit,
    )
    alerted.update(hits)  # only once the event is written: a failed alert is retried
    _send_alert(actor, path, sorted(set(hits.values())), event.seq)
    return event


def on_decrypt(vault: Vault, session: Session, person_id: uuid.UUID) -> None:
    """The vault's decrypt hook: a decryption of a canary that no higher path already
    reported in this session (the reveal, the export) raises the alert itself."""
    if not configured(vault):
        return
    trip(session, vault, current_actor(), [person_id], "decrypt", commit=False)


def _send_alert(actor: Actor, path: str, labels: list[str], seq: int) -> None:
    """Mail the security contact. Never the number; never a reason for the access to fail."""
    contact = (current_app.config.get("SECURITY_CONTACT") or "").strip()
    if not contact:
        log.error("canary tripped (audit seq %s) but SECURITY_CONTACT is not set", seq)
        return
    body = "\n".join(
        [
            "カナリア番号（おとりの人物）へのアクセスを検知しました。",
            "不正アクセスまたは内部不正の可能性があります。直ちに確認してください。",
            "",
            f"経路: {PATH_LABELS.get(path, path)}",
            f"カナリア: {'、'.join(labels)}",
            f"操作者: {actor.name}",
            f"IP アドレス: {actor.ip or '不明'}",
            f"日時: {jptime.format_jst_words(utcnow())}",
            f"監査ログの番号: {seq}",
            "",
            "アクセスは通常どおり処理されています（相手に気付かせないため）。",
            "監査ログ（security.canary）と前後のイベントを確認してください。",
        ]
    )
    try:
        mail.send_from_app(
            mail.Mail(
                to=[a.strip() for a in contact.split(",") if a.strip()],
                subject="【MyNumber Vault】セキュリティ警告: カナリア番号へのアクセス",
                body=body,
            )
        )
    except Exception as exc:  # noqa: BLE001 - the audit event is the record; never tip off
        log.error("canary alert mail failed (audit seq %s): %s", seq, type(exc).__name__)
