"""What the letters and mails promise is true of this deployment: who sees a submission and
when (the client's staff do use the numbers, every viewing recorded), what becomes of the ID
images (the setting decides), a date in every reminder and deficiency notice."""

from __future__ import annotations

import pytest

from app.collection import campaigns, letter_texts, receipts
from app.models import Delivery, DeliveryKind, LetterKind


@pytest.mark.parametrize("keep", [False, True])
def test_the_handling_sentence_says_who_sees_what_and_follows_the_image_setting(app, keep):
    app.config["COLLECTION_KEEP_ID_IMAGES"] = keep
    text = campaigns.common_values(app.config)["取扱い"]
    client, operator = app.config["CLIENT_NAME"], app.config["OPERATOR_NAME"]
    assert f"確認を行う{operator}の担当者" in text
    assert f"{client}の担当者が法令で定められた事務" in text
    assert "番号を見た記録はすべて残ります" in text
    # Nobody is promised that the client never sees the numbers.
    assert "第三者" not in text and "触れることはありません" not in text
    if keep:
        assert "暗号化したまま保管" in text and "確認が終わると削除します" not in text
    else:
        assert "確認が終わると削除します" in text


def test_every_default_letter_that_asks_for_the_number_says_who_sees_it():
    for kind in (LetterKind.REQUEST_EMAIL, LetterKind.KIT_GUIDE):
        assert "{取扱い}" in letter_texts.DEFAULT_LETTERS[kind][1], kind
    # The client may edit the texts: the placeholder is known to the letter check.
    subject, body = letter_texts.DEFAULT_LETTERS[LetterKind.REQUEST_EMAIL]
    assert campaigns.check_letter(LetterKind.REQUEST_EMAIL, subject, body)


def test_reminders_and_deficiency_notices_name_a_date():
    for kind in (
        LetterKind.REMINDER_EMAIL,
        LetterKind.REMINDER_LETTER,
        LetterKind.DEFICIENCY_EMAIL,
        LetterKind.DEFICIENCY_LETTER,
    ):
        assert "{期限}までに" in letter_texts.DEFAULT_LETTERS[kind][1], kind
    for kind in (LetterKind.REMINDER_EMAIL, LetterKind.REMINDER_LETTER):
        assert (
            "この日を過ぎてもご提出が確認できない場合に限り"
            in letter_texts.DEFAULT_LETTERS[kind][1]
        )


def test_the_receipt_mail_says_who_sees_the_submission(app, session, submitted):
    req = submitted["req"]
    delivery = Delivery(request_id=req.id, kind=DeliveryKind.RECEIPT, seq=1)
    subject, body = receipts.letter(session, app.config, delivery, req)
    assert "受け付けました" in subject
    assert campaigns.common_values(app.config)["取扱い"] in body
    assert "{" not in body
