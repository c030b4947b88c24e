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

from app.core import jptime
from app.models import IO_TICKET, IoTicket, utcnow
from app.vault.envelopes import Vault, VaultError, hold_kek

LIFETIME = dt.timedelta(minutes=30)


class TicketError(LookupError):
    """The ticket is gone, expired, or not yours (Japanese)."""


def purge_expired(session: Session) -> None:
    session.execute(
        delete(IoTicket).where(IoTicket.expires_at < utcnow()),
        execution_options={"synchronize_session": False},
    )


def create(
    session: Session, vault: Vault, user_id: int, purpose: str, layout_id: int, payload: bytes
) -> uuid.UUID:
    """Seal ``payload`` for this user and purpose; committed, returns the ticket id."""
    purge_expired(session)
    hold_kek(session)  # sealed under the current KEK: no rotation until committed
    ticket_id = uuid.uuid4()
    now = utcnow()
    session.add(
        IoTicket(
            id=ticket_id,
            purpose=purpose,
            user_id=user_id,
            layout_id=layout_id,
            payload=vault.seal_system(
                IO_TICKET.purpose,
                IO_TICKET.aad(id=ticket_id, user_id=user_id, purpose=purpose),
                payload,
            ),
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    session.commit()
    return ticket_id


def take(
    session: Session, vault: Vault, ticket_id: str, user_id: int, purpose: str
) -> tuple[int, bytes]:
    """Open and delete the ticket: ``(layout_id, payload)``.

    The DELETE … RETURNING is the claim: of two concurrent confirmations (a double click),
    exactly one gets the row, so a ticket is used once."""
    gone = "確認の期限が切れたか、既に処理されています。最初からやり直してください"
    try:
        key = uuid.UUID(str(ticket_id))
    except ValueError:
        raise TicketError(gone) from None
    claimed = session.execute(
        delete(IoTicket)
        .where(IoTicket.id == key, IoTicket.user_id == user_id, IoTicket.purpose == purpose)
        .returning(IoTicket.layout_id, IoTicket.payload, IoTicket.expires_at),
        execution_options={"synchronize_session": False},
    ).first()
    purge_expired(session)
    session.commit()
    if claimed is None or jptime.aware(claimed.expires_at) < utcnow():
        raise TicketError(gone)
    try:
        payload = vault.open_system(
            IO_TICKET.purpose,
            IO_TICKET.aad(id=key, user_id=user_id, purpose=purpose),
            claimed.payload,
        )
    except VaultError as exc:
        raise TicketError("確認データを復号できません。最初からやり直してください") from exc
    return claimed.layout_id, payload
