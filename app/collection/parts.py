"""Sealed parts: what a part holds, sealing it to the intake key, and a draft's stored parts.

The web form and paper intake store the same parts (a number, an added dependent's identity,
an exclusion, a document), sealed the same way and bound to the request, the submission and the
part's own id, so that one verification queue opens both. The payload and the sealing are built
here once; the rows differ only in where they wait (``SubmissionPart`` in a web draft,
``PaperPart`` until an envelope is finished).

A draft's part metadata is read once per transaction (``app.collection.memo``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.collection import memo
from app.models import PaperPart, Submission, SubmissionPart, utcnow
from app.vault import sealing

Row = TypeVar("Row", SubmissionPart, PaperPart)


# -- what a part holds ----------------------------------------------------------------------
def number_payload(number: str) -> bytes:
    """A checked, normalised number (the caller drops its own copy right after)."""
    return json.dumps({"number": number}).encode("ascii")


def identity_payload(name: str, kana: str | None, relation: str, birth_date: dt.date) -> bytes:
    """A dependent the subject added: who they are (only the relation is also in the clear)."""
    return json.dumps(
        {"name": name, "kana": kana, "relation": relation, "birth_date": birth_date.isoformat()},
        ensure_ascii=False,
    ).encode("utf-8")


def excluded_payload(reason: str) -> bytes:
    """A listed dependent who is not to be collected, and why (an ``EXCLUDE_REASONS`` code)."""
    return json.dumps({"reason": reason}).encode("ascii")


def seal(
    row_type: type[Row],
    public_key: sealing.IntakePublicKey,
    request_id: uuid.UUID,
    submission_id: uuid.UUID,
    /,
    *,
    ref: str,
    part: str,
    doc_type: str,
    media_type: str | None,
    plaintext: bytes,
    **columns,
) -> Row:
    """One part sealed to the intake key, bound to its request, submission and part id, as a
    new ``row_type`` (``SubmissionPart`` or ``PaperPart``; ``columns`` are that row's own, a
    web part's ``submission_id`` among them)."""
    part_id = uuid.uuid4()
    sealed = sealing.seal(
        public_key, sealing.part_info(request_id, submission_id, part_id), plaintext
    )
    return row_type(
        id=part_id,
        subject_ref=ref,
        part=part,
        doc_type=doc_type,
        media_type=media_type,
        size_bytes=len(sealed),
        sealed=sealed,
        digest=hashlib.sha256(sealed).hexdigest(),
        created_at=utcnow(),
        **columns,
    )


# -- a draft's stored parts -------------------------------------------------------------------
@dataclass(frozen=True)
class PartRow:
    """Metadata of one stored part (what progress, the size and the manifest need)."""

    id: uuid.UUID
    subject_ref: str
    part: str
    doc_type: str
    media_type: str | None
    size_bytes: int
    digest: str

    @classmethod
    def of(cls, row: SubmissionPart) -> PartRow:
        return cls(
            row.id,
            row.subject_ref,
            row.part,
            row.doc_type,
            row.media_type,
            row.size_bytes,
            row.digest,
        )


def stored(session: Session, draft: Submission, fresh: bool = False) -> list[PartRow]:
    """The metadata of the draft's stored parts (one query per transaction).

    ``fresh``: as the database has them, not as the writes of ``app.collection.drafts`` since
    left them (a read earlier in this transaction with no write since is just as fresh)."""
    remembered = memo.of(session)
    known = remembered.get(memo.PARTS, {}).get(draft.id)
    if known is not None and (not fresh or draft.id in remembered.get(memo.PARTS_READ, ())):
        return known
    rows = [
        PartRow(*row)
        for row in session.execute(
            select(
                SubmissionPart.id,
                SubmissionPart.subject_ref,
                SubmissionPart.part,
                SubmissionPart.doc_type,
                SubmissionPart.media_type,
                SubmissionPart.size_bytes,
                SubmissionPart.digest,
            ).where(SubmissionPart.submission_id == draft.id)
        ).all()
    ]
    remember(session, draft, rows)
    memo.of(session).setdefault(memo.PARTS_READ, set()).add(draft.id)
    return rows


def remember(session: Session, draft: Submission, rows: list[PartRow]) -> None:
    """What the draft holds after a write made here (no query needed to know it)."""
    remembered = memo.of(session)
    remembered.setdefault(memo.PARTS, {})[draft.id] = rows
    remembered.get(memo.PARTS_READ, set()).discard(draft.id)


def drop(
    session: Session,
    draft: Submission,
    ref: str,
    part: str | None = None,
    doc_type: str | None = None,
) -> None:
    """Delete the draft's parts of one subject (optionally of one kind, one slot). No
    statement when this transaction already knows there is nothing to delete."""
    rows = stored(session, draft)

    def hit(row: PartRow) -> bool:
        return (
            row.subject_ref == ref
            and (part is None or row.part == part)
            and (doc_type is None or row.doc_type == doc_type)
        )

    if not any(hit(r) for r in rows):
        return
    where = [SubmissionPart.submission_id == draft.id, SubmissionPart.subject_ref == ref]
    if part is not None:
        where.append(SubmissionPart.part == part)
    if doc_type is not None:
        where.append(SubmissionPart.doc_type == doc_type)
    session.execute(delete(SubmissionPart).where(*where))
    remember(session, draft, [r for r in rows if not hit(r)])


def refresh_size(session: Session, draft: Submission) -> int:
    """The draft's size: the sum of its sealed parts."""
    draft.size_bytes = sum(r.size_bytes for r in stored(session, draft))
    return draft.size_bytes
