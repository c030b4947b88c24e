"""Before anything leaves for a subject: who we are is set, and the form answers.

A mailed link cannot be recalled and a printed kit cannot be corrected. Sending a campaign
(or re-sending one delivery) and making a print batch therefore first check that

- every who-we-are setting (``app.settings.IDENTITY``: the client's and the operator's names,
  the sender address, the desk's phone and e-mail) is set, so no placeholder is printed;
- the public form answers at ``PUBLIC_FORM_URL`` (``app.platform.formcheck``, a short
  timeout; ``FORM_CHECK_TIMEOUT`` 0 skips it), so every link and QR code reaches it.

A refusal is audited (``outcome=denied``, what was missing, never a value) and returned as a
Japanese message the caller raises as its own error.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.audit import trail
from app.core.actor import Actor
from app.platform import formcheck
from app.settings import IDENTITY, identity_problem, missing_identity


def problems(config, *, form: bool = True) -> list[str]:
    """Everything that stops a send or a print, in Japanese (empty: ready)."""
    found = []
    missing = missing_identity(config)
    if missing:
        found.append(
            "次の設定がありません: "
            + "、".join(missing)
            + "。`mynumber init` で入力するか、環境変数で設定してください"
        )
    # Set, but to a placeholder or a malformed value (an old unit file, a typo).
    wrong = [
        problem
        for key, env, _label in IDENTITY
        if (config.get(key) or "").strip() and (problem := identity_problem(key, config.get(key)))
    ]
    if wrong:
        found.append("設定が正しくありません: " + " ".join(f"{p}。" for p in wrong))
    timeout = float(config.get("FORM_CHECK_TIMEOUT") or 0)
    if form and timeout > 0:
        unreachable = formcheck.problem(config.get("PUBLIC_FORM_URL", ""), timeout)
        if unreachable:
            found.append(unreachable)
    return found


def refusal(
    session: Session,
    actor: Actor,
    config,
    action: str,
    object_type: str,
    object_ids: list,
    *,
    form: bool = True,
) -> str | None:
    """None when ready; else the refusal is audited (committed) and its message returned."""
    found = problems(config, form=form)
    if not found:
        return None
    session.rollback()
    trail.record(
        session,
        actor,
        action,
        object_type=object_type,
        object_ids=object_ids,
        outcome="denied",
        details={
            "reason": "not_ready",
            "missing": [key for key, _env, _label in IDENTITY if not config.get(key)],
            "invalid": [
                key
                for key, _env, _label in IDENTITY
                if config.get(key) and identity_problem(key, config.get(key))
            ],
            "form_unreachable": any(p.startswith("提出フォーム") for p in found),
        },
        commit=True,
    )
    return "送付・印刷できません。" + " ".join(found)
