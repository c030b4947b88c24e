"""Collection requests: issuing a link, finding the request behind a token, and the second
factor (the birth date) with its lockout.

Issuing a link (admin side, CLI, campaigns)::

    req, token = create_request(session, actor, person, purpose_text=..., valid_days=60)
    url = request_url(base_url, token)      # the token is shown once, only its hash is kept

The subject's entry (the public form)::

    req = lookup(session, token); entry_state(req)        # "ok" | "expired" | "locked" | ...
    verify_birth_date(session, req, date, actor, 5)       # 5 failures lock the request
    unlock(session, actor, req)                           # the desk lifts a lockout
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.collection.history import change_status
from app.collection.terms import INTAKE_VIEW, IntakeError
from app.core import jptime
from app.core.actor import Actor
from app.models import CollectionRequest, Person, PersonKind, RequestStatus, utcnow

TOKEN_BYTES = 24  # 192 bits of randomness; URL-safe base64 gives 32 characters


# -- tokens -------------------------------------------------------------------------------
def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def request_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/r/{token}"


# -- issuing ------------------------------------------------------------------------------
def create_request(
    session: Session,
    actor: Actor,
    person: Person,
    *,
    purpose_text: str,
    valid_days: int = 60,
    expires_at: dt.datetime | None = None,
) -> tuple[CollectionRequest, str]:
    """Issue a link for an employee's household or an external member.

    Returns the request and the token; the token is not stored (only its SHA-256), so the
    caller must put it into the QR code / e-mail now. An earlier open request of the same
    person is cancelled: only the newest link works.
    """
    if person.kind == PersonKind.DEPENDENT:
        raise IntakeError("扶養親族の分は、扶養者（役職員）への依頼に含めて収集します")
    if person.status != "active":
        raise IntakeError("廃棄済みの人物には依頼できません")
    if person.birth_date is None:
        raise IntakeError("生年月日が登録されていない人物には依頼できません（本人確認に使います）")
    # The client's own wording, shown to the subject (a campaign allows 2,000 characters).
    problem = trail.purpose_problem(purpose_text, max_len=2000)
    if problem:
        raise IntakeError(problem, "purpose_text")
    purpose = purpose_text.strip()
    trail.record(
        session,
        actor,
        "intake.request_create",
        object_type="person",
        object_ids=[person.id],
    )
    for old in session.execute(
        select(CollectionRequest).where(
            CollectionRequest.person_id == person.id,
            CollectionRequest.status.in_(RequestStatus.OPEN_FOR_INPUT),
        )
    ).scalars():
        change_status(
            session, old, RequestStatus.CANCELLED, actor, note="新しいリンクの発行により無効"
        )
    token = new_token()
    req = CollectionRequest(
        id=uuid.uuid4(),
        person_id=person.id,
        token_hash=token_hash(token),
        purpose_text=purpose,
        status=RequestStatus.ISSUED,
        expires_at=expires_at or utcnow() + dt.timedelta(days=valid_days),
        failed_attempts=0,
        reopened="[]",
        created_by=actor.name,
    )
    session.add(req)
    session.flush()
    change_status(session, req, RequestStatus.ISSUED, actor)
    session.flush()
    return req, token


# -- the subject's entry ------------------------------------------------------------------
def lookup(session: Session, token: str) -> CollectionRequest | None:
    """The request for a token, by its hash (a constant-size index lookup)."""
    if not token or len(token) > 200:
        return None
    req = session.execute(
        select(CollectionRequest).where(CollectionRequest.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if req is not None and not hmac.compare_digest(req.token_hash, token_hash(token)):
        return None
    return req


def entry_state(req: CollectionRequest, now: dt.datetime | None = None) -> str:
    """``ok``, ``cancelled`` (used or replaced), ``locked`` or ``expired``."""
    now = now or utcnow()
    if req.status == RequestStatus.CANCELLED:
        return "cancelled"
    if req.locked_at is not None:
        return "locked"
    if req.status in RequestStatus.OPEN_FOR_INPUT and jptime.aware(req.expires_at) < now:
        return "expired"
    return "ok"


@dataclass(frozen=True)
class FactorResult:
    ok: bool
    remaining: int
    locked: bool


def verify_birth_date(
    session: Session, req: CollectionRequest, birth_date: dt.date, actor: Actor, max_failures: int
) -> FactorResult:
    """Check the second factor. Every attempt is audited; ``max_failures`` wrong ones lock the
    request until an operator unlocks it. Commits (the counter must survive the request)."""
    if req.locked_at is not None:
        return FactorResult(False, 0, True)
    person = session.get(Person, req.person_id)
    if person is not None and person.birth_date is not None and person.birth_date == birth_date:
        trail.record(
            session, actor, "intake.auth", object_type="collection_request", object_ids=[req.id]
        )
        req.failed_attempts = 0
        session.commit()
        return FactorResult(True, max_failures, False)
    # Atomic increment: parallel guesses cannot share one count.
    session.execute(
        update(CollectionRequest)
        .where(CollectionRequest.id == req.id)
        .values(failed_attempts=CollectionRequest.failed_attempts + 1)
    )
    session.refresh(req)
    trail.record(
        session,
        actor,
        "intake.auth",
        object_type="collection_request",
        object_ids=[req.id],
        outcome="failure",
        details={"failed_attempts": req.failed_attempts},
    )
    locked = req.failed_attempts >= max_failures
    if locked:
        req.locked_at = utcnow()
        trail.record(
            session,
            actor,
            "intake.locked",
            object_type="collection_request",
            object_ids=[req.id],
            outcome="denied",
        )
    session.commit()
    return FactorResult(False, max(0, max_failures - req.failed_attempts), locked)


def unlock(session: Session, actor: Actor, req: CollectionRequest) -> None:
    """Lift a birth-date lockout after the subject called the desk. Audited."""
    policy.require(actor, "can_decide", INTAKE_VIEW)
    trail.record(
        session,
        actor,
        "intake.unlock",
        object_type="collection_request",
        object_ids=[req.id],
        details={"failed_attempts": req.failed_attempts},
    )
    req.failed_attempts = 0
    req.locked_at = None
    session.flush()
