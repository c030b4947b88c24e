"""TOTP codes accepted once: the time-step check shared by sign-in and every step-up.

Plain database logic (no request, no view), so that the sign-in screen (``app.web.identity``) and
the actions that ask for a fresh code again (disposal approval, return archive) apply the
very same rule: a code of a time step the user already spent, or of an earlier one, is
refused. Otherwise the code typed at sign-in (seen over a shoulder, kept in a proxy log,
replayed from the unlocked browser) would also pass the step-up, which then proves nothing
the session did not already.
"""

from __future__ import annotations

import hmac
import time
from typing import Literal

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from app.models import VaultUser

Outcome = Literal["ok", "wrong", "replayed"]


def spend_code(
    session: Session, user: VaultUser, secret: str, code: str, at: float | None = None
) -> Outcome:
    """Check a TOTP code and spend its time step: ``"ok"``, ``"wrong"`` or ``"replayed"``.

    pyotp's own ``verify`` does not say which step matched; here the ±1 window is walked by
    hand so the accepted step can be stored. The step is claimed by a conditional UPDATE, so
    two requests racing with one code cannot both win. ``at`` (a Unix time) is for tests; the
    default is now. The caller commits (with the action the code approves).
    """
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(time.time() if at is None else at)
    matched = [
        step
        for step in (now_step - 1, now_step, now_step + 1)
        if hmac.compare_digest(totp.generate_otp(step), str(code))
    ]
    if not matched:
        return "wrong"
    table = VaultUser.__table__
    for step in matched:
        claimed = session.execute(
            update(table)
            .where(table.c.id == user.id)
            .where(or_(table.c.totp_last_step.is_(None), table.c.totp_last_step < step))
            .values(totp_last_step=step)
        )
        if claimed.rowcount == 1:
            session.expire(user, ["totp_last_step"])
            return "ok"
    return "replayed"
