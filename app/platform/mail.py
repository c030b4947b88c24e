"""Outgoing mail: SMTP when ``SMTP_URL`` is set, else ``.eml`` files in the outbox.

``SMTP_URL``: ``smtp://[user:password@]host[:port]`` (add ``?starttls=1`` for STARTTLS) or
``smtps://…`` for implicit TLS. A last guard refuses to send any text that contains a valid
12-digit My Number: mails carry names and links, never numbers.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from flask import current_app

from app.core import mynumber
from app.core.fields import header_problem

FALLBACK_SENDER = "mynumber-vault@localhost"


class MailContainsNumber(ValueError):
    """The message text contains something that is a valid My Number."""


class MailHeaderRefused(ValueError):
    """An address, name or subject holds a line break or another control character: a header
    built from it could gain lines (Bcc:, a second body). Refused before anything is sent."""


class MailError(RuntimeError):
    """SMTP refused or could not be reached; the caller records it and retries."""


@dataclass
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


@dataclass
class Mail:
    to: list[str]
    subject: str
    body: str
    attachments: list[Attachment] = field(default_factory=list)


def contains_my_number(text: str) -> bool:
    """True if ``text`` holds a My Number however it is written (``mynumber.contains_number``)."""
    return mynumber.contains_number(text)


def build(mail: Mail, sender: str) -> EmailMessage:
    if contains_my_number(mail.subject) or contains_my_number(mail.body):
        raise MailContainsNumber("メール本文に個人番号と思われる数字が含まれているため送信しません")
    for label, value in [("差出人", sender), ("件名", mail.subject)] + [
        ("宛先", address) for address in mail.to
    ]:
        problem = header_problem(label, value)
        if problem:
            raise MailHeaderRefused(f"メールを作成しません。{problem}")
    if any(map(contains_my_number, [*mail.to, *(a.filename for a in mail.attachments)])):
        raise MailContainsNumber(
            "宛先・添付ファイル名に個人番号と思われる数字が含まれているため送信しません"
        )
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.split("@")[-1] or "localhost")
    message.set_content(mail.body, charset="utf-8")
    for item in mail.attachments:
        message.add_attachment(
            item.content, maintype=item.maintype, subtype=item.subtype, filename=item.filename
        )
    return message


def send(mail: Mail, *, smtp_url: str | None, sender: str, outbox: str | Path) -> str:
    """Send (or write to the outbox) and return the Message-ID."""
    message = build(mail, sender)
    if not smtp_url:
        folder = Path(outbox)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{uuid.uuid4().hex}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        return message["Message-ID"]
    url = urlparse(smtp_url)
    options = parse_qs(url.query)
    try:
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                url.hostname, url.port or 465, timeout=30, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(url.hostname, url.port or 25, timeout=30)
        with client:
            if options.get("starttls", ["0"])[0] in {"1", "true", "yes"}:
                client.starttls(context=ssl.create_default_context())
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"メールを送信できませんでした（{type(exc).__name__}）") from exc
    return message["Message-ID"]


def send_from_app(mail: Mail) -> str:
    """``send`` with the current app's settings."""
    cfg = current_app.config
    # Mail to subjects is refused before it gets here while MAIL_FROM is unset
    # (app.collection.readiness); the staff's own mails (reports, alerts) still go out.
    sender = cfg.get("MAIL_FROM") or FALLBACK_SENDER
    return send(mail, smtp_url=cfg.get("SMTP_URL"), sender=sender, outbox=cfg["OUTBOX_DIR"])
