"""Two-step portal actions without plaintext at rest.

The import preview must keep the uploaded file until the operator confirms, and bulk 照合
keeps the matched person ids until the download. Both wait in ``io_ticket`` sealed under a
key derived from the KEK ring (``Vault.seal_system``), bound by the AAD to the ticket, the user
and the purpose; a ticket is used once, by the user who made it, within its lifetime, and is
deleted when used or expired (SQLite zeroes deleted content: ``secure_delete``).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.models import IoTicket, utcnow
from app.vault import Vault, VaultError

LIFETIME = dt.timedelta(minutes=30)


class TicketError(LookupError):
    """The ticket is gone, expired, or not yours (Japanese)."""


def _aad(ticket_id: uuid.UUID, user_id: int, purpose: str) -> str:
    return f"mnv:io_ticket:{ticket_id}:{user_id}:{purpose}"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def purge_expired(session: Session) -> None:
    session.execute(delete(IoTicket).where(IoTicket.expires_at < utcnow()))


def create(
    session: Session, vault: Vault, user_id: int, purpose: str, layout_id: int, payload: bytes
) -> uuid.UUID:
    """Seal ``payload`` for this user and purpose; committed, returns the ticket id."""
    purge_expired(session)
    ticket_id = uuid.uuid4()
    now = utcnow()
    session.add(
        IoTicket(
            id=ticket_id,
            purpose=purpose,
            user_id=user_id,
            layout_id=layout_id,
            payload=vault.seal_system("io_ticket", _aad(ticket_id, user_id, purpose), payload),
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    session.commit()
    return ticket_id


def take(
    session: Session, vault: Vault, ticket_id: str, user_id: int, purpose: str
) -> tuple[int, bytes]:
    """Open and delete the ticket (committed): ``(layout_id, payload)``. Used once."""
    try:
        key = uuid.UUID(str(ticket_id))
    except ValueError:
        raise TicketError(
            "確認の期限が切れたか、既に処理されています。最初からやり直してください"
        ) from None
    ticket = session.get(IoTicket, key)
    if (
        ticket is None
        or ticket.user_id != user_id
        or ticket.purpose != purpose
        or _aware(ticket.expires_at) < utcnow()
    ):
        raise TicketError("確認の期限が切れたか、既に処理されています。最初からやり直してください")
    try:
        payload = vault.open_system("io_ticket", _aad(key, user_id, purpose), ticket.payload)
    except VaultError as exc:
        raise TicketError("確認データを復号できません。最初からやり直してください") from exc
    layout_id = ticket.layout_id
    session.delete(ticket)
    session.commit()
    return layout_id, payload
