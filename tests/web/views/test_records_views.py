"""人物の管理 screens: add, household, number replacement; no number echoed back."""

import re

from sqlalchemy import select

from app.models import Person
from app.people import registry
from tests.io.helpers import numbers
from tests.support import leaks, post_form

N = numbers(3, seed=61)


def signed_in(make_user, login, role, **kwargs):
    user, secret = make_user(role, **kwargs)
    login(user.username, totp_secret=secret)


def test_client_staff_keeps_a_household(app, client, make_user, login, session, vault):
    signed_in(make_user, login, "ClientStaff")
    response = post_form(
        client,
        "/records/new?kind=employee",
        {
            "code": "E1",
            "name": "見本 太郎",
            "name_kana": "ミホン タロウ",
            "birth_date": "1980/04/01",
            "postal_code": "",
            "address": "",
            "number": N[0],
        },
        token_from="/records/new",
    )
    assert response.status_code == 302
    pid = response.headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/records/{pid}").get_data(as_text=True)
    assert "見本 太郎" in page and "****-****-" + N[0][-4:] in page and N[0] not in page
    post_form(
        client,
        f"/records/{pid}/dependents",
        {
            "name": "見本 一郎",
            "name_kana": "",
            "relation": "子",
            "birth_date": "2010/01/01",
            "number": N[1],
        },
        token_from=f"/records/{pid}",
    )
    bad = post_form(
        client,
        f"/records/{pid}/number",
        {"number": N[2][:11] + "A", "reason": "再発行"},
        token_from=f"/records/{pid}",
        follow_redirects=True,
    )
    assert "個人番号: 個人番号に数字以外の文字が含まれています" in bad.get_data(as_text=True)
    post_form(
        client,
        f"/records/{pid}/number",
        {"number": N[2], "reason": "再発行"},
        token_from=f"/records/{pid}",
    )
    page = client.get(f"/records/{pid}").get_data(as_text=True)
    assert "E1-01" in page and "変更前" in page and "現在の番号" in page
    assert not any(n in page for n in N)
    session.expire_all()
    head = session.get(Person, __import__("uuid").UUID(pid))
    assert registry.find_by_number(session, vault, N[2]).id == head.id
    assert leaks(app, N) == []
    link = client.get(f"/people/{pid}").get_data(as_text=True)
    assert re.search(r"/records/" + pid, link)


def test_operator_cannot_keep_records(client, make_user, login, session):
    signed_in(make_user, login, "Operator")
    assert client.get("/records/new").status_code == 403
    response = client.post(
        "/records/new", data={"code": "E1", "name": "x", "birth_date": "1980/01/01"}
    )
    assert response.status_code in (400, 403)
    assert session.execute(select(Person)).first() is None
