"""A fresh TOTP code for one action, on top of the TOTP at sign-in.

The client's staff confirm the actions that cannot be taken back or that hand everything over
(approving a disposal, asking for the return archive) with a current code, so that a session
left open, or taken over, is not enough on its own.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.access import lockout, policy, totp
from app.core.actor import Actor
from app.models import TOTP_SECRET, VaultUser
from app.vault.envelopes import Vault


def verify_step_up(session: Session, vault: Vault, actor: Actor, code: str | None) -> None:
    """Check a fresh TOTP code for this one action; raises ``PermissionDenied`` (Japanese).

    The same rules as the sign-in code (``app.access.totp``, ``app.access.lockout``): a code of
    a time step already spent (the one typed at sign-in included) is refused, and a wrong or
    replayed code counts as a failed sign-in, so guessing ends in the account lock (which also
    ends every session of the user). A locked account is refused before its code is even
    looked at.
    """
    code = (code or "").strip()
    if not code:
        raise policy.PermissionDenied("確認コード（TOTP）を入力してください")
    user = session.get(VaultUser, actor.user_id) if actor.user_id is not None else None
    if user is None or not user.totp_secret_enc or user.totp_enrolled_at is None:
        raise policy.PermissionDenied("二要素認証（TOTP）が登録されていません")
    if lockout.is_locked(user):
        raise policy.PermissionDenied(lockout.LOCKED_MESSAGE)
    secret = vault.open_system(
        TOTP_SECRET.purpose, TOTP_SECRET.aad(id=user.id), user.totp_secret_enc
    ).decode("ascii")
    outcome = "wrong"
    if code.isdigit() and len(code) == 6:
        outcome = totp.spend_code(session, user, secret, code)
    if outcome == "ok":
        return
    reason = "step_up_totp_replayed" if outcome == "replayed" else "step_up_bad_totp"
    if lockout.register_failure(session, user, actor, reason, action="auth.step_up"):
        raise policy.PermissionDenied(
            "確認コード（TOTP）が正しくありません。"
            + lockout.lock_message()
            + "すべてのログインを終了しました。"
        )
    if outcome == "replayed":
        raise policy.PermissionDenied(
            "この確認コード（TOTP）は既に使用されています（ログイン時のコードを含みます）。"
            "認証アプリに次の確認コードが表示されてから入力してください"
        )
    raise policy.PermissionDenied("確認コード（TOTP）が正しくありません")
