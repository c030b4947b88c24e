"""A submitted number already stored for someone else, found when the case is opened.

Before this, the operator learned it only on pressing 受理 (``registry.DuplicateNumber``),
after checking every document. Now the case page flags it at once: the blind index is looked
up for each submitted number (nothing is decrypted, the index key stays with the provider),
and a number held by another person, or given twice in the same submission, is marked on
that subject with what to do. Accepting is refused while a flag stands
(``verification.check_checklist``).

Whose number it is, is never shown — not to the operator, whose case is this request only,
and never to the subject (the deficiency reason ``number_registered`` says only that the
number could not be accepted). The audit event ``intake.number_held_elsewhere`` records the
holder's person id, so the client's staff can investigate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import trail
from app.collection.terms import DEFICIENCY_CODES
from app.core import mynumber
from app.core.actor import Actor
from app.models import CollectionRequest, MyNumberRecord

HELD_ELSEWHERE = (
    "この個人番号は、既に別の人物の番号として登録されています（誰の番号かは表示しません）。"
    "このままでは受理できません。不備「{reason}」で提出者に確認するか、発注者に確認してください"
)
# The deficiency reason the operator is pointed to, by its first sentence as the form shows it.
REASON_LABEL = DEFICIENCY_CODES["number_registered"][0].split("。")[0]
GIVEN_TWICE = "この提出の中で、{other} と同じ個人番号が入力されています。受理できません"


class Submitted(Protocol):
    ref: str
    role: str
    number: str | None
    flag: str | None

    def display_name(self) -> str: ...


def flag(
    session: Session,
    vault,
    actor: Actor,
    req: CollectionRequest,
    subjects: Iterable[Submitted],
) -> int:
    """Set ``flag`` on every subject whose number cannot be accepted; returns how many.

    A listed person's own stored number is no conflict (a resubmission of the same number);
    an added dependent is a new person, so any holder is someone else."""
    seen: dict[str, Submitted] = {}
    holders: dict[str, str] = {}
    flagged = 0
    for s in subjects:
        s.flag = None
        if not s.number:
            continue
        try:
            number = mynumber.normalize(s.number)
        except mynumber.InvalidMyNumber:
            continue  # the form checked it; a paper entry with a typo is the operator's call
        first = seen.setdefault(number, s)
        if first is not s:
            s.flag = GIVEN_TWICE.format(other=first.display_name())
            flagged += 1
            continue
        holder = session.execute(
            select(MyNumberRecord.person_id).where(
                MyNumberRecord.blind_index == vault.blind_index(number),
                MyNumberRecord.status == "active",
            )
        ).scalar_one_or_none()
        if holder is not None and (s.role == "added" or str(holder) != s.ref):
            s.flag = HELD_ELSEWHERE.format(reason=REASON_LABEL)
            holders[s.ref] = str(holder)
            flagged += 1
    if holders:
        trail.record(
            session,
            actor,
            "intake.number_held_elsewhere",
            object_type="collection_request",
            object_ids=[req.id, *sorted(set(holders.values()))],
            details={"refs": sorted(holders)},
            commit=True,
        )
    return flagged
