"""Who is in a request: the person, the dependents on record, the dependents the subject added,
and which of their parts the request takes in this round.

A subject reference (``ref``) is the person's UUID as text for people listed in the request, or
``"new1"``, ``"new2"``… for dependents the subject added (their identity is sealed). The web
form, paper intake, the status page, opening and the operator's decisions all ask this.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collection import memo, parts
from app.models import (
    CollectionRequest,
    Person,
    PersonKind,
    RequestStatus,
    Submission,
    SubmissionPart,
    SubmissionStatus,
)

MAX_ADDED = 10  # dependents a subject may add on one form (more: the desk helps)


@dataclass(frozen=True)
class Subject:
    ref: str
    role: str  # self | dependent | added
    name: str | None
    relation: str | None
    birth_date: dt.date | None

    @property
    def needs_identity_document(self) -> bool:
        """身元確認 is for the subject who submits; dependents need 番号確認 only."""
        return self.role == "self"

    def display_name(self) -> str:
        """The name on record; an added dependent's name is sealed, so it is told apart by its
        place in the order added and its relation (「追加した扶養親族 2人目（子）」)."""
        if self.name:
            return self.name
        return f"{self.added_label()}（{self.relation or '続柄未入力'}）"

    def added_label(self) -> str:
        """「追加した扶養親族 N人目」 for ``newN`` (without the relation)."""
        n = self.ref[3:] if self.ref.startswith("new") else ""
        return f"追加した扶養親族 {n}人目" if n.isdigit() else "追加した扶養親族"


def _listed(session: Session, req: CollectionRequest) -> tuple[str | None, list[Subject]]:
    """(the person's kind, the listed subjects), read once per transaction."""
    known = memo.of(session).get(memo.LISTED, {}).get(req.id)
    if known is not None:
        return known
    person = req.person  # loaded with the request by the form (one query)
    if person is None:
        return None, []
    out = [Subject(str(person.id), "self", person.name, None, person.birth_date)]
    if person.kind == PersonKind.EMPLOYEE:
        # A query of its own rather than ``person.dependents``: reached through the request,
        # that lazy load would not carry the form's column limits (app.platform.dbroles).
        dependents = session.execute(
            select(Person)
            .where(Person.household_head_id == person.id)
            .order_by(Person.dependent_seq)
        ).scalars()
        for dep in dependents:
            if dep.status == "active" and dep.kind == PersonKind.DEPENDENT:
                out.append(
                    Subject(str(dep.id), "dependent", dep.name, dep.relation, dep.birth_date)
                )
    result = (person.kind, out)
    memo.of(session).setdefault(memo.LISTED, {})[req.id] = result
    return result


def listed_subjects(session: Session, req: CollectionRequest) -> list[Subject]:
    """The person and, for an employee, the dependents on record when the form is used."""
    return list(_listed(session, req)[1])


def is_employee_request(session: Session, req: CollectionRequest) -> bool:
    return _listed(session, req)[0] == PersonKind.EMPLOYEE


def _received_added(session: Session, req: CollectionRequest) -> dict[str, str | None]:
    """Dependents added in earlier (received) submissions: ref → relation."""
    known = memo.of(session).get(memo.RECEIVED_ADDED, {}).get(req.id)
    if known is not None:
        return known
    added: dict[str, str | None] = {}
    sub_ids = [s.id for s in req.submissions if s.status == SubmissionStatus.RECEIVED]
    if sub_ids:
        rows = session.execute(
            select(SubmissionPart.subject_ref, SubmissionPart.doc_type).where(
                SubmissionPart.submission_id.in_(sub_ids), SubmissionPart.part == "identity"
            )
        ).all()
        for ref, relation in rows:
            added[ref] = relation or None
    memo.of(session).setdefault(memo.RECEIVED_ADDED, {})[req.id] = added
    return added


def in_request(session: Session, req: CollectionRequest, draft: Submission | None) -> list[Subject]:
    """Listed people plus dependents added in this draft or in earlier submissions."""
    out = listed_subjects(session, req)
    added = dict(_received_added(session, req))
    if draft is not None:
        for row in parts.stored(session, draft):
            if row.part == "identity":
                added[row.subject_ref] = row.doc_type or None
    for ref in sorted(added, key=lambda r: int(r[3:]) if r[3:].isdigit() else 0):
        out.append(Subject(ref, "added", None, added[ref], None))
    return out


def next_added_ref(found: list[Subject]) -> str | None:
    """The ref for one more added dependent (``new1``, ``new2``…), or None when ``MAX_ADDED``
    were added already."""
    existing = [s.ref for s in found if s.role == "added"]
    if len(existing) >= MAX_ADDED:
        return None
    numbers = [int(r[3:]) for r in existing if r[3:].isdigit()]
    return f"new{max(numbers, default=0) + 1}"


def part_is_open(req: CollectionRequest, ref: str, part: str) -> bool:
    """Issued: everything is open. Deficient: only what the operator reopened (and new
    dependents' parts when the household part was reopened)."""
    if req.status == RequestStatus.ISSUED:
        return True
    if req.status != RequestStatus.DEFICIENT:
        return False
    return any(i["ref"] == ref and i["part"] == part for i in req.reopened_items)
