"""Mail: a real SMTP server receives it; the outbox is the embedded fallback; never a number."""

import pytest

from app.core import fields
from app.platform import mail
from app.platform.mail import Attachment, Mail, MailContainsNumber, MailError


def test_sent_over_smtp_to_a_real_server(smtp_server, tmp_path):
    message_id = mail.send(
        Mail(
            ["taro@example.jp"],
            "マイナンバーご提出のお願い",
            "見本 太郎 様\nこちらから: https://x/r/abc",
            [Attachment("案内.pdf", b"%PDF-1.7 test")],
        ),
        smtp_url=smtp_server.url,
        sender="vault@example.jp",
        outbox=tmp_path,
    )
    assert message_id
    [received] = smtp_server.messages
    assert received["Subject"] == "マイナンバーご提出のお願い"
    assert "見本 太郎 様" in received.get_body(("plain",)).get_content()
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "案内.pdf"
    assert list(tmp_path.iterdir()) == []


def test_outbox_when_no_smtp(tmp_path):
    mail.send(
        Mail(["a@example.jp"], "件名", "本文"),
        smtp_url=None,
        sender="v@example.jp",
        outbox=tmp_path / "outbox",
    )
    [path] = list((tmp_path / "outbox").iterdir())
    assert path.suffix == ".eml" and path.stat().st_mode & 0o777 == 0o600
    assert "本文".encode() in path.read_bytes() or b"utf-8" in path.read_bytes()


@pytest.mark.parametrize(
    "text",
    [
        "番号は 123456789018 です",
        "1234-5678-9018",
        "１２３４ ５６７８ ９０１８",
        "ref 99123456789018",
        "1234−5678−9018",
        "1234ー5678ー9018",
        "1234.5678.9018",
        "1234/5678/9018",
        "1234  5678  9018",
    ],
)
def test_a_valid_number_in_the_text_stops_the_mail(tmp_path, text):
    with pytest.raises(MailContainsNumber):
        mail.send(
            Mail(["a@example.jp"], "件名", text),
            smtp_url=None,
            sender="v@example.jp",
            outbox=tmp_path,
        )
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("to", "filename"),
    [(["u.1234-5678-9018@example.jp"], "a.pdf"), (["a@example.jp"], "1234.5678.9018.pdf")],
)
def test_a_number_in_a_recipient_or_an_attachment_name_stops_the_mail(tmp_path, to, filename):
    with pytest.raises(MailContainsNumber, match="宛先・添付ファイル名"):
        mail.send(
            Mail(to, "件名", "本文", [mail.Attachment(filename, b"%PDF")]),
            smtp_url=None,
            sender="v@example.jp",
            outbox=tmp_path,
        )


def test_invalid_twelve_digit_runs_do_not_block(tmp_path):
    assert not mail.contains_my_number("追跡番号 123456789012")  # wrong check digit


def test_unreachable_smtp_is_a_clear_error(tmp_path):
    with pytest.raises(MailError) as info:
        mail.send(
            Mail(["a@example.jp"], "件名", "本文"),
            smtp_url="smtp://127.0.0.1:1",
            sender="v@example.jp",
            outbox=tmp_path,
        )
    assert "送信できませんでした" in str(info.value)


@pytest.mark.parametrize(
    ("to", "subject", "sender", "reason"),
    [
        (["taro@example.jp\r\nBcc: all@attacker.example"], "件名", "v@example.jp", "宛先: 改行"),
        (["taro@example.jp"], "件名\nBcc: all@attacker.example", "v@example.jp", "件名: 改行"),
        (["taro@example.jp"], "件名\u2028二行目", "v@example.jp", "件名: 改行"),
        (["taro@example.jp"], "件名", "v@example.jp\r\nReply-To: x@y", "差出人: 改行"),
        (["taro@example.jp"], "件名\x00", "v@example.jp", "件名: 制御文字"),
        (["taro@example.jp\u202e"], "件名", "v@example.jp", "宛先: 制御文字"),
    ],
    ids=["crlf-to", "lf-subject", "line-separator-subject", "crlf-from", "nul", "bidi-to"],
)
def test_a_header_with_a_line_break_or_control_is_never_built(
    tmp_path, smtp_server, to, subject, sender, reason
):
    for smtp_url in (None, smtp_server.url):
        with pytest.raises(mail.MailHeaderRefused, match=reason):
            mail.send(Mail(to, subject, "本文"), smtp_url=smtp_url, sender=sender, outbox=tmp_path)
    assert list(tmp_path.iterdir()) == [] and smtp_server.messages == []


def test_header_problem_names_the_field_and_accepts_ordinary_text():
    assert fields.header_problem("件名", "【見本機構】ご提出のお願い（再送）") is None
    assert fields.header_problem("宛先", "taro+1@example.jp") is None
    assert (
        fields.header_problem("件名", "a\tb")
        == "件名: 制御文字は使えません（1行で入力してください）"
    )
    assert fields.header_reason("a\r\nb") == "改行は使えません（1行で入力してください）"


def test_a_mail_setting_with_a_line_break_stops_the_start(monkeypatch, tmp_path):
    from app import settings

    monkeypatch.setenv("MYNUMBER_MAIL_FROM", "vault@example.jp\r\nBcc: all@attacker.example")
    with pytest.raises(ValueError, match="設定 MYNUMBER_MAIL_FROM: 改行は使えません"):
        settings.load({"MYNUMBER_HOME": str(tmp_path)})
    monkeypatch.setenv("MYNUMBER_MAIL_FROM", "vault@example.jp")
    monkeypatch.setenv("MYNUMBER_REPORT_RECIPIENTS", "a@example.jp, b@example.jp\nBcc: x@y")
    with pytest.raises(ValueError, match="設定 MYNUMBER_REPORT_RECIPIENTS: 改行"):
        settings.load({"MYNUMBER_HOME": str(tmp_path)})
