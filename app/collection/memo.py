"""What one transaction already read about a request, kept for that transaction only.

A form request asks "who is in this request, what has been stored" several times (to find the
person, to check the ref, to compute the next step, to check the size). The answers are kept
in ``session.info`` and kept in step with the writes made through ``app.collection.parts``
and ``app.collection.drafts``; anything else that could change them clears them: commit,
rollback, any ORM DELETE/UPDATE statement, any flush of a part, a submission or a person.
Plain metadata only: never a sealed byte, never a number.

The clearing is done by SQLAlchemy session listeners, which the app factories install with
``install()``. Until they are installed nothing is remembered (every read goes to the
database): a memo nobody clears would answer with what the database no longer holds.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.models import CollectionRequest, Person, Submission, SubmissionPart

_MEMO = "mnv_intake_memo"

# The memo's entries, each a dict keyed by draft or request id.
PARTS = "parts"  # draft id → the metadata of its stored parts
PARTS_READ = "parts_read"  # draft ids whose parts were read from the database, not written since
RECEIVED_ADDED = "received_added"  # request id → dependents added in received submissions
LISTED = "listed"  # request id → (the person's kind, the listed subjects)

_installed = False


def install() -> None:
    """Clear the memo whenever what it remembers may have changed (idempotent). The portal and
    the public form call this from their app factories."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_commit", _forget_at_transaction_end)
    event.listen(Session, "after_rollback", _forget_at_transaction_end)
    event.listen(Session, "after_soft_rollback", _forget_at_soft_rollback)
    event.listen(Session, "do_orm_execute", _forget_on_bulk_write)
    event.listen(Session, "after_flush", _forget_on_flush)
    _installed = True


def of(session: Session) -> dict:
    """The memo of the session's current transaction; a throw-away dict (nothing is kept)
    while the listeners that keep it true are not installed."""
    if not _installed:
        return {}
    return session.info.setdefault(_MEMO, {})


def forget(session: Session) -> None:
    """Drop everything remembered for this transaction."""
    session.info.pop(_MEMO, None)


def _forget_parts(memo: dict) -> None:
    memo.pop(PARTS, None)
    memo.pop(PARTS_READ, None)
    memo.pop(RECEIVED_ADDED, None)


def _forget_at_transaction_end(session: Session) -> None:
    forget(session)


def _forget_at_soft_rollback(session: Session, _previous) -> None:
    forget(session)


def _forget_on_bulk_write(state) -> None:
    if not state.is_select:
        memo = state.session.info.get(_MEMO)
        if memo:
            _forget_parts(memo)


def _forget_on_flush(session: Session, _context) -> None:
    memo = session.info.get(_MEMO)
    if not memo:
        return
    changed = {type(o) for o in (*session.new, *session.dirty, *session.deleted)}
    if SubmissionPart in changed:
        _forget_parts(memo)
    if Submission in changed:
        memo.pop(RECEIVED_ADDED, None)
    if Person in changed or CollectionRequest in changed:
        memo.pop(LISTED, None)
