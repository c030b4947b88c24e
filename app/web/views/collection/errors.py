"""The refusals of the collection services, which every collection screen shows as a message
above the page instead of an error page."""

from __future__ import annotations

from flask import flash

from app.access import assignments, policy
from app.audit.trail import AuditUnavailable
from app.collection import campaigns, kits, links, mailings, paper, terms, verification
from app.models import db
from app.vault.sealing import IntakeKeyError, SealError

USER_ERRORS = (
    assignments.AssignmentError,
    campaigns.CampaignError,
    mailings.MailingError,
    kits.KitError,
    paper.PaperError,
    verification.VerificationError,
    terms.IntakeError,
    policy.PermissionDenied,
    AuditUnavailable,
    links.LinkUnavailable,
    IntakeKeyError,
    SealError,
)


def fail(exc: Exception) -> None:
    """Undo what the refused step began and say why, in the service's words."""
    db.session.rollback()
    flash(str(exc), "danger")


def whole_number(value: str | None, label: str) -> int | None:
    """A count or an amount typed into a form (empty: None), or a Japanese refusal naming the
    field."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise campaigns.CampaignError(f"{label}: 整数で入力してください") from None
    if number < 0:
        raise campaigns.CampaignError(f"{label}: 0以上で入力してください")
    return number
