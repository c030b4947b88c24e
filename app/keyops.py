"""Key operations (rotation), shared by the CLI and the portal; each is audited first."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import audit
from app.audit import Actor
from app.vault import Vault


def rotate(session: Session, vault: Vault, actor: Actor) -> tuple[int, int]:
    """Add a KEK version and re-wrap every data key under it, in one transaction.

    The audit event is written before the new key exists; if the re-wrap fails, the new KEK
    stays in the ring unused and the next rotation carries on from there.
    """
    audit.record(
        session,
        actor,
        "keys.rotate",
        object_type="kek",
        details={"from_version": vault.keys.current_kek_version()},
    )
    version = vault.keys.add_kek_version()
    count = vault.rewrap_all(session)
    audit.record(
        session,
        actor,
        "keys.rotated",
        object_type="kek",
        object_ids=[version],
        details={"rewrapped": count},
    )
    session.commit()
    return version, count
