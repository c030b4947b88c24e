"""The desk's answer reaches whoever asked: by e-mail when a subject gave an address (once per
answer, through the outbox), and the screen says plainly when it is not mailed (a phone
number, the client's own inquiries)."""

import pytest
from sqlalchemy import select

from app.core.actor import Actor
from app.models import Inquiry, OutboxMessage
from app.operations import desk
from app.platform import outbox


def _operator(make_user) -> Actor:
    user, _ = make_user("Operator")
    return Actor(
        name=user.username, user_id=user.id, roles=("Operator",), mfa=True, roster_approved=True
    )


def _subject_inquiry(session, contact: str) -> Inquiry:
    return desk.receive_public(
        session,
        Actor.system("public-form"),
        name="山田 太郎",
        contact=contact,
        category="documents",
        body="通知カードの住所が古いのですが使えますか",
    )


def _history(session, item_id: int) -> list[tuple[str, str | None]]:
    session.expire_all()
    return [(a.action, a.note) for a in session.get(Inquiry, item_id).actions]


def test_an_answer_to_an_e_mail_address_is_mailed_once(app, session, make_user, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    item = _subject_inquiry(session, "taro@example.jp")
    operator = _operator(make_user)
    desk.respond(session, operator, item.id, "古い住所のままでも使えます。")
    key = desk.answer_key(session.get(Inquiry, item.id))
    outbox.dispatch(session, keys=[key])
    outbox.dispatch(session, keys=[key])  # a second hand-over sends nothing again
    assert desk.send_answer(session, app.config, item.id, 1) == "already_sent"

    [message] = smtp_server.messages
    assert message["To"] == "taro@example.jp"
    assert message["From"] == app.config["MAIL_FROM"]
    assert message["Subject"] == f"お問い合わせへの回答（受付番号 {item.id}）"
    body = message.get_content()
    assert "山田 太郎 様" in body and "古い住所のままでも使えます。" in body
    assert app.config["DESK_PHONE"] in body and app.config["CLIENT_NAME"] in body
    assert "通知カードの住所" not in body  # the question is not repeated
    assert ("mail", "1 回目の回答") in _history(session, item.id)

    # A second answer (after 再対応) is a second mail.
    desk.reopen(session, operator, item.id)
    desk.respond(session, operator, item.id, "補足: 裏面の記載も確認してください。")
    outbox.dispatch(session, keys=[desk.answer_key(session.get(Inquiry, item.id))])
    assert len(smtp_server.messages) == 2
    assert "補足" in smtp_server.messages[1].get_content()


@pytest.mark.parametrize(
    ("contact", "source", "says"),
    [
        ("090-1234-5678", "subject", "回答はメールでは送られません。電話（090-1234-5678）"),
        (None, "client", "発注者担当者のポータル"),
    ],
)
def test_the_screen_says_when_an_answer_is_not_mailed(
    session, client, make_user, login, contact, source, says
):
    if source == "subject":
        item = _subject_inquiry(session, contact)
    else:
        staff, _ = make_user("ClientStaff")
        item = desk.file_from_portal(
            session,
            Actor(
                name=staff.username,
                user_id=staff.id,
                roles=("ClientStaff",),
                mfa=True,
                roster_approved=True,
            ),
            category="other",
            body="質問",
        )
    operator, secret = make_user("Operator")
    login(operator.username, totp_secret=secret)
    page = client.get(f"/inquiryview/{item.id}").get_data(as_text=True)
    assert says in page
    desk.respond(
        session,
        Actor(
            name=operator.username,
            user_id=operator.id,
            roles=("Operator",),
            mfa=True,
            roster_approved=True,
        ),
        item.id,
        "回答します",
    )
    assert desk.answer_key(session.get(Inquiry, item.id)) is None
    assert session.execute(select(OutboxMessage)).first() is None


def test_a_mailable_answer_says_so_on_the_screen(session, client, make_user, login):
    item = _subject_inquiry(session, "taro@example.jp")
    operator, secret = make_user("Operator")
    login(operator.username, totp_secret=secret)
    page = client.get(f"/inquiryview/{item.id}").get_data(as_text=True)
    assert "お問い合わせの方（taro@example.jp）にメールで送られます" in page


def test_a_failed_or_unconfigured_answer_mail_is_in_the_history(app, session, make_user):
    item = _subject_inquiry(session, "taro@example.jp")
    operator = _operator(make_user)
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"  # nothing listens: refused
    desk.respond(session, operator, item.id, "回答します")
    assert desk.send_answer(session, app.config, item.id, 1) == "failed"
    assert _history(session, item.id)[-1][0] == "mail_failed"

    app.config["DESK_PHONE"] = ""
    assert desk.send_answer(session, app.config, item.id, 1) == "not_configured"
    action, note = _history(session, item.id)[-1]
    assert action == "mail_failed" and "問い合わせ窓口の電話番号" in note
