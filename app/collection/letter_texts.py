"""The default wording of the letters and e-mails to subjects, and the one sentence that says
who sees what they submit, and when.

A promise in a letter has to be true of this deployment: ClientStaff users reveal and export
numbers (with a purpose, audited), so "no one at the client sees it" would be false. The
``{取扱い}`` placeholder says it exactly — the operator's staff on the roster see the
submission to check it, the client's staff use the number for the legal purposes only, every
viewing is recorded — and what happens to the ID images follows the setting
``COLLECTION_KEEP_ID_IMAGES``. Reminders and deficiency notices name a date
(``{期限}``): the dunning run never reminds again before that date has passed
(``app.collection.dunning``), and a deficiency sets a new one (``app.collection.decisions``).
"""

from __future__ import annotations

from app.models import LetterKind


def handling(config) -> str:
    """Who sees a submission and when, and what becomes of the ID images (``{取扱い}``)."""
    images = (
        "確認書類の画像は、確認の後も{発注者}の規程により暗号化したまま保管し、"
        "保管期間が過ぎると削除します。"
        if config.get("COLLECTION_KEEP_ID_IMAGES")
        else "確認書類の画像は、確認が終わると削除します。"
    )
    text = (
        "ご提出の内容は暗号化して保管します。提出された番号と確認書類を見るのは、確認を行う"
        "{受注者}の担当者（{発注者}が承認した名簿の者に限ります）です。確認の後、個人番号は"
        "{発注者}の担当者が法令で定められた事務（源泉徴収票の作成など）のためにだけ使い、"
        "番号を見た記録はすべて残ります。" + images
    )
    return text.replace("{発注者}", config["CLIENT_NAME"]).replace(
        "{受注者}", config["OPERATOR_NAME"]
    )


DEFAULT_LETTERS: dict[str, tuple[str, str]] = {
    LetterKind.REQUEST_EMAIL: (
        "【{発注者}】マイナンバー（個人番号）ご提出のお願い",
        "{氏名} 様\n\n"
        "{発注者}では、法令で定められた事務のため、マイナンバー（個人番号）のご提出をお願い"
        "しております。収集は{発注者}から委託を受けた{受注者}が行います。\n\n"
        "下記のリンクを開き、生年月日を入力してから、画面の案内に沿ってご提出ください。\n"
        "{リンク}\n\n"
        "提出期限: {期限}\n\n"
        "{取扱い}\n\n"
        "このリンクはあなた専用です。他の人に転送しないでください。\n"
        "このメールに個人番号を書いて返信しないでください。\n\n"
        "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）",
    ),
    LetterKind.KIT_GUIDE: (
        "マイナンバー（個人番号）ご提出のお願い",
        "{氏名} 様\n\n"
        "{発注者}では、法令で定められた事務のため、マイナンバー（個人番号）のご提出をお願い"
        "しております。収集は{発注者}から委託を受けた{受注者}が行います。\n\n"
        "次のどちらかの方法で、{期限}までにご提出ください。\n"
        "① スマートフォン等で同封の QR コードを読み取り、Web から提出する\n"
        "② 同封の申請用紙に記入し、確認書類の写しを貼って、返信用封筒で返送する\n\n"
        "{取扱い}\n\n"
        "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）",
    ),
    LetterKind.REMINDER_EMAIL: (
        "【{発注者}】マイナンバーご提出のお願い（再送）",
        "{氏名} 様\n\n"
        "先日お願いしたマイナンバー（個人番号）のご提出が、まだ確認できておりません。"
        "お手数ですが、{期限}までに下記のリンクからご提出ください。\n"
        "{リンク}\n\n"
        "この日を過ぎてもご提出が確認できない場合に限り、あらためてご連絡します。\n"
        "既にご提出済みの場合は、行き違いですのでご容赦ください。\n"
        "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）",
    ),
    LetterKind.REMINDER_LETTER: (
        "マイナンバーご提出のお願い（再送）",
        "{氏名} 様\n\n"
        "先日お送りしたマイナンバー（個人番号）のご提出のお願いについて、まだご提出が確認"
        "できておりません。お手数ですが、{期限}までに、QR コードから Web で、または申請用紙"
        "を返信用封筒で返送してご提出ください。\n\n"
        "この日を過ぎてもご提出が確認できない場合に限り、あらためてご連絡します。\n"
        "既にご提出済みの場合は、行き違いですのでご容赦ください。\n"
        "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）",
    ),
    LetterKind.DEFICIENCY_EMAIL: (
        "【{発注者}】ご提出内容の確認のお願い",
        "{氏名} 様\n\n"
        "ご提出いただいた内容を確認したところ、次の点に不備がありました。\n\n"
        "{不備内容}\n\n"
        "お手数ですが、{期限}までに、下記のリンクから、該当する項目だけを提出し直してください"
        "（ほかの項目はお預かりしたままです）。\n"
        "{リンク}\n\n"
        "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）",
    ),
    LetterKind.DEFICIENCY_LETTER: (
        "ご提出内容の確認のお願い",
        "{氏名} 様\n\n"
        "ご提出いただいた内容を確認したところ、次の点に不備がありました。\n\n"
        "{不備内容}\n\n"
        "お手数ですが、{期限}までに、QR コードから Web で、または同封の申請用紙と返信用封筒で、"
        "該当する項目だけを提出し直してください（ほかの項目はお預かりしたままです）。\n"
        "お問い合わせ: 電話 {窓口電話} ／ {窓口メール}（{受付時間}）",
    ),
}

# The purpose printed on a collection request when the client gives none (the usual HR uses).
DEFAULT_PURPOSE = (
    "給与所得・退職所得の源泉徴収票作成事務、健康保険・厚生年金保険届出事務、"
    "雇用保険届出事務、国民年金第3号被保険者の届出事務"
)
