"""Japanese all the way: no Flask-AppBuilder leftovers (``True``, ``[]``, ``Public``,
``__None``, English or LDAP/OID help) on the screens users work with, 名字 before 名前, and no
Python ``None`` in a table."""

import datetime as dt
import re

import pytest

from app.models import PostageEntry
from tests.conftest import ADMIN_PASSWORD

LEFTOVERS = re.compile(r">\s*(True|False|None|\[\]|\[[A-Za-z]+\]|Public|__None)\s*<")


def _visible(html: str) -> str:
    return re.sub(r"<script.*?</script>", "", html, flags=re.S)


@pytest.mark.parametrize(
    "url", ["/users/list/", "/users/show/1", "/users/add", "/users/edit/1", "/users/userinfo/"]
)
def test_the_user_screens_read_in_japanese(client, login, url):
    login("admin", ADMIN_PASSWORD)
    html = _visible(client.get(url).get_data(as_text=True))
    assert LEFTOVERS.search(html) is None, LEFTOVERS.search(html)
    for english in ("LDAP", "OID", "The user group", "グループ"):
        assert english not in html, english
    # Japanese names read 名字 then 名前.
    assert html.index("名字（姓）") < html.index("名前（名）")
    # Roles by their Japanese names, in the form's choices as in the list and show screens.
    assert "システム管理者" in html
    for code in ("SystemAdmin", "ClientStaff", "Operator", "Auditor"):
        assert re.search(rf"[>\s、]{code}\b", html) is None, code


def test_the_postage_ledger_shows_empty_cells_not_none(client, make_user, login, session):
    session.add(
        PostageEntry(
            direction="send",
            carrier="日本郵便",
            method="定形郵便",
            cost_yen=110,
            posted_on=dt.date(2026, 4, 1),
            month="2026-04",
            recorded_by="担当",
        )
    )
    session.commit()
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    html = _visible(client.get("/postageentryview/list/").get_data(as_text=True))
    assert "日本郵便" in html and LEFTOVERS.search(html) is None
