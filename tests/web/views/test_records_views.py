"""人物の管理 screens: add, household, number replacement; no number echoed back."""

import re
import uuid

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
    head = session.get(Person, uuid.UUID(pid))
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


def _household(session, vault):
    from tests.support import add_household

    head, child = add_household(session, vault, "見本 花子", "子")
    return str(head.id), str(child.id)


def test_a_refused_dependent_keeps_everything_typed_but_the_number(
    client, make_user, login, session, vault
):
    signed_in(make_user, login, "ClientStaff")
    pid, _ = _household(session, vault)
    response = post_form(
        client,
        f"/records/{pid}/dependents",
        {
            "name": "見本 二郎",
            "name_kana": "ミホン ジロウ",
            "relation": "子",
            "birth_date": "2015/02/30",
            "number": N[1],
        },
        token_from=f"/records/{pid}",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "存在しない日付" in html
    for typed in ("見本 二郎", "ミホン ジロウ", "2015/02/30"):
        assert f'value="{typed}"' in html, typed
    assert N[1] not in html  # a number is never echoed back
    # The other forms on the page are not filled with what was typed here.
    assert html.count('value="見本 二郎"') == 1


def test_the_end_date_is_not_prefilled_and_is_confirmed_first(
    client, make_user, login, session, vault
):
    signed_in(make_user, login, "ClientStaff")
    pid, _ = _household(session, vault)
    page = client.get(f"/records/{pid}").get_data(as_text=True)
    end_form = page[page.index(f'action="/records/{pid}/end"') :]
    field = re.search(r'<input[^>]*name="ended_on"[^>]*>', end_form).group(0)
    assert 'value=""' in field  # never today's date by default
    confirm = post_form(
        client, f"/records/{pid}/end", {"ended_on": "2026/03/31"}, token_from=f"/records/{pid}"
    )
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "退職日を記録しますか" in html and "2026/03/31" in html
    session.expire_all()
    assert session.get(Person, uuid.UUID(pid)).ended_on is None  # not yet
    done = post_form(
        client,
        f"/records/{pid}/end",
        {"ended_on": "2026/03/31", "confirmed": "1"},
        token_from=f"/records/{pid}",
    )
    assert done.status_code == 302
    session.expire_all()
    assert str(session.get(Person, uuid.UUID(pid)).ended_on) == "2026-03-31"


def test_removing_a_dependent_is_confirmed_first(client, make_user, login, session, vault):
    signed_in(make_user, login, "ClientStaff")
    pid, child = _household(session, vault)
    data = {"ended_on": "2026/03/31", "reason": "就職"}
    confirm = post_form(client, f"/records/{child}/remove", data, token_from=f"/records/{pid}")
    html = confirm.get_data(as_text=True)
    assert "扶養から削除しますか" in html and "見本 花子" in html and "就職" in html
    session.expire_all()
    assert session.get(Person, uuid.UUID(child)).status == "active"
    done = post_form(
        client,
        f"/records/{child}/remove",
        {**data, "confirmed": "1"},
        token_from=f"/records/{pid}",
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/records/{pid}")
    session.expire_all()
    assert session.get(Person, uuid.UUID(child)).status == "removed"


def test_source_of_a_number_reads_in_japanese(client, make_user, login, session, vault):
    signed_in(make_user, login, "ClientStaff")
    pid, _ = _household(session, vault)
    page = client.get(f"/records/{pid}").get_data(as_text=True)
    assert "画面で入力" in page and "<td>manual</td>" not in page
