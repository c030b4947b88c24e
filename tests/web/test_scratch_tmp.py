import re

from tests.conftest import ADMIN_PASSWORD


def _text(html):
    html = re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    i = html.find('<div class="container">', html.find("</header>"))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[i:]))


def test_scratch(client, make_user, login):
    login("admin", ADMIN_PASSWORD)
    for url in [
        "/users/list/",
        "/users/show/1",
        "/users/add",
        "/users/edit/1",
        "/rosterview/list/",
        "/users/userinfo/",
    ]:
        resp = client.get(url)
        print("==", url, resp.status_code, _text(resp.get_data(as_text=True))[:2500])
        for bad in ("True", "[]", "Public", "__None", "LDAP", "OID", "None", "False"):
            if bad in resp.get_data(as_text=True):
                print(
                    "  !!",
                    bad,
                    [m.start() for m in re.finditer(re.escape(bad), resp.get_data(as_text=True))][
                        :5
                    ],
                )
