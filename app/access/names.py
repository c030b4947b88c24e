"""How a person who acted is named on a document the client keeps (the deletion
certificate): by the name on the 情報取扱者名簿 with department and title, never by an
account name or an id, which the client's records do not know.

The command line and jobs have no person behind them in the database: they are named as
what they are (``cli:root`` → 「コマンド操作（root）」), so a reader sees that the server's
shell acted, and under which operating-system account.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.actor import Actor
from app.models import VaultUser


def process_label(name: str) -> str | None:
    """The shell or a job by its audit name; None for anything else."""
    if name.startswith("cli:"):
        return f"コマンド操作（{name[4:] or '不明'}）"
    if name.startswith("job:"):
        return f"自動処理（{name[4:] or '不明'}）"
    return None


def user_label(user: VaultUser) -> str:
    """「氏名（所属 役職）」 from the roster entry, else the account's own name."""
    entry = user.roster_entry
    if entry is not None and entry.name:
        where = " ".join(part for part in (entry.department, entry.title) if part)
        return f"{entry.name}（{where}）" if where else entry.name
    full = f"{user.last_name or ''} {user.first_name or ''}".strip()
    return full or "氏名未登録の利用者"


def display_name(session: Session, actor: Actor) -> str:
    """The name of whoever ``actor`` is, as it stands now (callers keep it: a later roster
    change must not rewrite a document already issued)."""
    label = process_label(actor.name)
    if label is not None:
        return label
    user = session.get(VaultUser, actor.user_id) if actor.user_id is not None else None
    if user is not None:
        return user_label(user)
    return actor.name
