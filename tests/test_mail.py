"""Mail: a real SMTP server receives it; the outbox is the embedded fallback; never a number."""

import pytest

from app import mail
from app.mail import Attachment, Mail, MailContainsNumber, MailError


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
