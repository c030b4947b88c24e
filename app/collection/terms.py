"""What every step of intake shares: the error it raises, its codes with their Japanese
wording, and the rule for free text.

Requests, drafts, receiving, opening, the operator's decisions, paper intake, mailings and
verification all speak these words. Kept in a module of their own, those modules depend on
this one rather than on each other.
"""

from __future__ import annotations

from app.core import mynumber
from app.core.fields import has_hidden_characters

INTAKE_VIEW = "Intake"  # FAB permission view name (app.access.policy)
RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I

DOC_TYPES = {
    "card_front": "マイナンバーカード（表面）",
    "card_back": "マイナンバーカード（裏面）",
    "notice_card": "通知カード（記載事項に変更がないもの）",
    "juminhyo": "住民票の写し（個人番号の記載があるもの）",
    "license": "運転免許証",
    "passport": "パスポート",
    "residence_card": "在留カード・特別永住者証明書",
    "other_photo_id": "その他の顔写真付き公的身分証明書",
    # Paper route: the scanned application form itself, beside the ID copies.
    "application_form": "申請用紙（郵送で届いたもの）",
}
NUMBER_DOCS = ("notice_card", "juminhyo")
IDENTITY_DOCS = ("license", "passport", "residence_card", "other_photo_id")
COMBINATIONS = {
    "card": "マイナンバーカード（表面・裏面）",
    "other": "通知カードまたは住民票の写し ＋ 顔写真付きの身分証明書",
}

# Reason codes an operator gives for a deficiency, and what each reopens on the form.
DEFICIENCY_CODES: dict[str, tuple[str, tuple[str, ...]]] = {
    "number_mismatch": (
        "入力された個人番号と確認書類の番号が一致しません。番号と書類をもう一度提出してください。",
        ("number", "documents"),
    ),
    "number_invalid": (
        "個人番号を確認できませんでした。番号をもう一度入力してください。",
        ("number",),
    ),
    # The number is stored for someone else (app.collection.duplicates): the subject is told
    # only that it could not be accepted, never that another person holds it.
    "number_registered": (
        "入力された個人番号を受け付けられませんでした。ご本人（扶養親族の方はその方ご自身）の"
        "番号かどうか、番号確認書類と照らし合わせて、番号と書類をもう一度提出してください。",
        ("number", "documents"),
    ),
    "number_doc_unreadable": (
        "番号確認書類の写真が読み取れません。明るい場所で、全体が写るように撮影してください。",
        ("documents",),
    ),
    "identity_doc_unreadable": (
        "身元確認書類の写真が読み取れません。明るい場所で、全体が写るように撮影してください。",
        ("documents",),
    ),
    "identity_doc_expired": (
        "身元確認書類の有効期限が切れています。有効な書類を提出してください。",
        ("documents",),
    ),
    "doc_combination": (
        "確認書類の組み合わせが要件を満たしていません。案内に沿って提出し直してください。",
        ("documents",),
    ),
    "name_mismatch": (
        "書類の氏名・生年月日がご登録の内容と一致しません。最新の書類を提出してください。",
        ("documents",),
    ),
    "notification_letter": (
        "個人番号通知書は番号確認書類として使えません。通知カード・住民票の写し・"
        "マイナンバーカードのいずれかを提出してください。",
        ("documents",),
    ),
}

DECLINE_REASONS = {
    "no_intent": "提供を希望しない",
    "not_target": "対象ではないと考える（退職・扶養から外れた等）",
    "not_available": "番号が分からない・書類が手元にない",
    "other": "その他",
}
EXCLUDE_REASONS = {
    "left_household": "扶養から外れた",
    "deceased": "死亡した",
    "other": "その他",
}


class IntakeError(ValueError):
    """A Japanese message for the subject or the operator; never contains a number."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def free_text(
    value: str | None, label: str, max_len: int, required: bool = False, field: str | None = None
) -> str | None:
    """Trimmed text, or IntakeError naming the field. A number (``mynumber.contains_number``)
    is refused: free text is stored in the clear, so a number typed into it must never get
    that far."""
    text = (value or "").strip()
    if not text:
        if required:
            raise IntakeError(f"{label}: 入力してください", field)
        return None
    if len(text) > max_len:
        raise IntakeError(f"{label}: {max_len}文字以内で入力してください", field)
    # Line breaks and tabs are text; NUL (PostgreSQL refuses it), other control characters,
    # bidi overrides and zero-width characters (which could hide a number from the check
    # below) are not.
    if has_hidden_characters(text.replace("\r", "").replace("\n", "").replace("\t", "")):
        raise IntakeError(f"{label}: 使えない制御文字が含まれています", field)
    if mynumber.contains_number(text):
        raise IntakeError(mynumber.number_refusal(label), field)
    return text
