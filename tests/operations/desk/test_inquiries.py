"""Inquiries from the public form and from the portal: 受付 → 対応中 → 回答済 → 完了, each
step in the history and the audit log; a My Number in a body or a response is refused."""

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from app.access import policy
from app.core.actor import Actor
from app.core.jptime import JST
from app.core.mynumber import make_valid
from app.models import AuditEvent, Inquiry, InquiryAction, InquiryStatus
from app.operations import desk
from tests.support import actor, leaks, post_form

NUMBER = make_valid("12345678901")
GROUPED = f"{NUMBER[:4]}-{NUMBER[4:8]}-{NUMBER[8:]}"
_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def form_client(instance, app):
    import public_form

    return public_form.create_app(instance).test_client()


def form_post(client, url: str, data: dict):
    token = _FORM_CSRF.search(client.get(url).get_data(as_text=True)).group(1)
    return client.post(url, data={**data, "csrf_token": token})


def audit_actions(session, inquiry_id: int) -> list[tuple[str, dict]]:
    events = session.execute(
        select(AuditEvent).where(AuditEvent.object_type == "inquiry").order_by(AuditEvent.seq)
    ).scalars()
    return [
        (e.action, json.loads(e.details))
        for e in events
        if str(inquiry_id) in json.loads(e.object_ids or "[]")
        or inquiry_id in json.loads(e.object_ids or "[]")
    ]


def test_public_form_inquiry_through_its_whole_life(
    app, session, form_client, client, make_user, login
):
    page = form_client.get("/contact").get_data(as_text=True)
    assert "10:00〜17:00" in page and ("受付時間内です" in page or "から受け付けます" in page)
    response = form_post(
        form_client,
        "/contact",
        {
            "name": "山田 太郎",
            "contact": "taro@example.jp",
            "category": "documents",
            "body": "通知カードの住所が古いのですが使えますか",
        },
    )
    assert "お問い合わせを受け付けました" in response.get_data(as_text=True)
    item = session.execute(select(Inquiry)).scalar_one()
    assert (item.source, item.status) == ("subject", InquiryStatus.RECEIVED)

    # The operator works it through the portal.
    operator, secret = make_user("Operator")
    login(operator.username, totp_secret=secret)
    listing = client.get("/inquiryview/list/")
    assert listing.status_code == 200 and "山田 太郎" in listing.get_data(as_text=True)
    show = f"/inquiryview/{item.id}"
    assert client.get(show).status_code == 200
    post_form(client, f"{show}/assign", {"assignee_id": operator.id}, token_from=show)
    post_form(client, f"{show}/respond", {"response": "古い住所でも使えます。"}, token_from=show)
    post_form(client, f"{show}/close", {"note": "電話でも説明済み"}, token_from=show)

    session.expire_all()
    item = session.get(Inquiry, item.id)
    assert item.status == InquiryStatus.CLOSED
    assert item.assignee_id == operator.id and item.response == "古い住所でも使えます。"
    assert item.received_at <= item.first_response_at <= item.closed_at
    steps = [(a.action, a.from_status, a.to_status, a.actor_name) for a in item.actions]
    assert steps == [
        ("receive", None, "received", "public-form"),
        ("assign", "received", "in_progress", operator.username),
        ("respond", "in_progress", "answered", operator.username),
        # The subject gave an e-mail address: the answer went to it, once.
        ("mail", "answered", "answered", "job:mail"),
        ("close", "answered", "closed", operator.username),
    ]
    events = audit_actions(session, item.id)
    assert [a for a, _ in events] == [
        "inquiry.receive",
        "inquiry.assign",
        "inquiry.respond",
        "inquiry.mail",
        "inquiry.close",
    ]
    assert events[4][1] == {"from": "answered", "to": "closed", "source": "subject"}
    history = client.get(show).get_data(as_text=True)
    assert "対応履歴" in history and "完了" in history


def test_client_files_from_the_portal_and_sees_only_its_own(app, session, client, make_user, login):
    staff, secret = make_user("ClientStaff")
    other, _ = make_user("ClientStaff")
    mine = desk.file_from_portal(
        session,
        _actor(staff, "ClientStaff"),
        category="collection",
        body="督促の予定を教えてください",
    )
    theirs = desk.file_from_portal(
        session, _actor(other, "ClientStaff"), category="report", body="他の担当者の問合せ"
    )
    operator, _ = make_user("Operator")
    desk.respond(session, _actor(operator, "Operator"), mine.id, "来週月曜に送付します。")

    login(staff.username, totp_secret=secret)
    listing = client.get("/my-inquiries/").get_data(as_text=True)
    assert "回答済" in listing
    page = client.get(f"/my-inquiries/{mine.id}").get_data(as_text=True)
    assert "来週月曜に送付します。" in page
    assert client.get(f"/my-inquiries/{theirs.id}").status_code == 404
    assert "他の担当者の問合せ" not in listing

    response = post_form(
        client, "/my-inquiries/new", {"category": "other", "body": "請求書の宛名を変えたい"}
    )
    assert response.status_code == 302
    filed = session.execute(
        select(Inquiry).where(Inquiry.body == "請求書の宛名を変えたい")
    ).scalar_one()
    assert (filed.source, filed.filed_by_id, filed.status) == ("client", staff.id, "received")
    # ClientStaff cannot work the desk; the desk list is the Operators'.
    assert client.get("/inquiryview/list/").status_code in (302, 403)


def _actor(user, role: str) -> Actor:
    return Actor(name=user.username, user_id=user.id, roles=(role,), mfa=True, roster_approved=True)


@pytest.mark.parametrize(
    "text", [NUMBER, GROUPED, f"番号は {NUMBER[:4]} {NUMBER[4:8]} {NUMBER[8:]} です"]
)
def test_a_number_in_a_body_is_refused_on_the_form_and_the_portal(
    app, session, form_client, client, make_user, login, text
):
    response = form_post(
        form_client,
        "/contact",
        {"name": "山田 太郎", "contact": "taro@example.jp", "category": "other", "body": text},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "お問い合わせ内容に個人番号と思われる12桁の数字が含まれています" in page
    assert NUMBER not in page and GROUPED not in page

    staff, secret = make_user("ClientStaff")
    login(staff.username, totp_secret=secret)
    response = post_form(client, "/my-inquiries/new", {"category": "other", "body": text})
    assert response.status_code == 422
    assert "個人番号と思われる12桁の数字が含まれています" in response.get_data(as_text=True)
    assert session.execute(select(Inquiry)).first() is None
    assert leaks(app, [NUMBER]) == []


def test_a_number_in_a_response_is_refused_and_nothing_changes(session, make_user):
    staff, _ = make_user("ClientStaff")
    operator, _ = make_user("Operator")
    item = desk.file_from_portal(
        session, _actor(staff, "ClientStaff"), category="other", body="質問"
    )
    with pytest.raises(desk.DeskError) as info:
        desk.respond(session, _actor(operator, "Operator"), item.id, f"番号は{GROUPED}です")
    assert str(info.value).startswith("回答に個人番号")
    session.rollback()
    item = session.get(Inquiry, item.id)
    assert item.status == "received" and item.response is None


def test_who_may_do_what(session, make_user):
    staff, _ = make_user("ClientStaff")
    item = desk.file_from_portal(
        session, _actor(staff, "ClientStaff"), category="other", body="質問"
    )
    with pytest.raises(policy.PermissionDenied):
        desk.respond(session, _actor(staff, "ClientStaff"), item.id, "自分で回答")
    with pytest.raises(policy.PermissionDenied, match="システム管理者"):
        desk.desk_list(session, actor("SystemAdmin", user_id=1))
    with pytest.raises(policy.PermissionDenied):
        desk.file_from_portal(session, actor("Operator"), category="other", body="x")
    with pytest.raises(policy.PermissionDenied, match="名簿"):
        desk.respond(session, actor("Operator", roster=False), item.id, "回答")


def test_status_rules(session, make_user):
    staff, _ = make_user("ClientStaff")
    operator, _ = make_user("Operator")
    op = _actor(operator, "Operator")
    item = desk.file_from_portal(
        session, _actor(staff, "ClientStaff"), category="other", body="質問"
    )
    with pytest.raises(desk.DeskError, match="再対応"):
        desk.reopen(session, op, item.id)
    desk.respond(session, op, item.id, "一次回答")
    first = session.get(Inquiry, item.id).first_response_at
    desk.reopen(session, op, item.id)
    desk.respond(session, op, item.id, "追加の回答")
    assert session.get(Inquiry, item.id).first_response_at == first  # the first answer counts
    desk.close(session, op, item.id)
    with pytest.raises(desk.DeskError, match="変更できません"):
        desk.respond(session, op, item.id, "完了後の回答")
    with pytest.raises(desk.DeskError, match="担当者"):
        other = desk.file_from_portal(
            session, _actor(staff, "ClientStaff"), category="other", body="別件"
        )
        desk.assign(session, op, other.id, staff.id)  # not an Operator
    actions = (
        session.execute(select(InquiryAction.action).where(InquiryAction.inquiry_id == item.id))
        .scalars()
        .all()
    )
    assert actions == ["receive", "respond", "reopen", "respond", "close"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2026, 12, 28, 18, 0, tzinfo=JST), "窓口は 1月4日（月）10:00 から受け付けます"),
        (
            dt.datetime(2026, 11, 21, 11, 0, tzinfo=JST),
            "窓口は 11月24日（火）10:00 から受け付けます",
        ),
        (dt.datetime(2026, 11, 27, 11, 0, tzinfo=JST), "ただいま窓口の受付時間内です"),
    ],
)
def test_contact_page_shows_the_hours_and_when_the_desk_reopens(instance, app, moment, expected):
    from flask import render_template

    import public_form

    form_app = public_form.create_app(instance)
    with form_app.test_request_context("/contact"):
        html = render_template(
            "public/contact.html",
            errors={},
            values={},
            categories={},
            desk_state=desk.state(moment),
        )
    assert expected in html
    assert "平日（月〜金）10:00〜17:00（土日祝日・12月29日〜1月3日を除く）" in html


@pytest.mark.parametrize("field", ["name", "contact"])
def test_a_public_inquirys_name_and_contact_are_one_line(session, field):
    values = {
        "name": "問合 太郎",
        "contact": "taro@example.jp",
        "category": desk.SUBJECT_CATEGORIES[0],
        "body": "一行目\n二行目",  # the body may have lines
        field: "taro@example.jp\r\nBcc: all@attacker.example",
    }
    with pytest.raises(desk.DeskError, match="改行は使えません") as caught:
        desk.receive_public(session, actor(), **values)
    assert caught.value.field == field
