"""Embedded mode (`mynumber run`, no Redis): the outbox goes out within seconds without anyone
running `mynumber outbox dispatch`, and the portal's banner says what waits and the real
reason (never Redis when Redis is not configured)."""

from __future__ import annotations

import time

from app.core.actor import Actor
from app.jobs import worker
from app.operations import desk
from app.platform import outbox


def _promise_a_mail(session, make_user) -> None:
    """A desk answer to a subject: its mail is promised in the outbox, not handed over."""
    item = desk.receive_public(
        session,
        Actor.system("public-form"),
        name="山田 太郎",
        contact="taro@example.jp",
        category="how_to",
        body="提出方法を教えてください",
    )
    user, _ = make_user("Operator")
    operator = Actor(
        name=user.username, user_id=user.id, roles=("Operator",), mfa=True, roster_approved=True
    )
    desk.respond(session, operator, item.id, "案内のリンクから提出できます。")


def test_run_sends_the_outbox_within_seconds(app, session, make_user, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    _promise_a_mail(session, make_user)
    waiting = outbox.waiting(session, app.config, app.extensions)
    assert waiting.total == 1
    assert waiting.by_kind == [("お問い合わせへの回答メール", 1)]
    assert "送信処理が動いていません" in waiting.reason and "Redis" not in waiting.fix

    stop = worker.start_embedded(app, interval=0.2)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            session.rollback()  # a fresh look at the rows the dispatcher thread updates
            if outbox.waiting(session, app.config, app.extensions) is None:
                break
            time.sleep(0.1)
    finally:
        stop.set()
    assert outbox.waiting(session, app.config, app.extensions) is None
    [message] = smtp_server.messages
    assert message["To"] == "taro@example.jp"


def test_the_banner_names_the_waiting_work_and_the_real_reason(
    app, session, make_user, client, login
):
    _promise_a_mail(session, make_user)
    # This process runs the embedded dispatcher (as `mynumber run` does), between two ticks.
    app.extensions[outbox.DISPATCHER_EXTENSION] = outbox.DispatcherBeat(interval=3)
    operator, secret = make_user("Operator")
    login(operator.username, totp_secret=secret)
    page = client.get("/mailings/").get_data(as_text=True)
    assert "送出を待っている処理が 1 件あります（お問い合わせへの回答メール 1 件" in page
    assert "3 秒ごとに自動で送出されます" in page and "Redis" not in page

    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # configured: then Redis is the reason
    waiting = outbox.waiting(session, app.config, app.extensions)
    assert "Redis" in waiting.reason and "mynumber worker" in waiting.fix
