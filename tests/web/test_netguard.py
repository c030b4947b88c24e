"""The admin portal's network allow-list: checked before anything else, a Japanese 403 that is
audited, X-Forwarded-For believed only from the configured proxies."""

import ipaddress
import json
import logging

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from app.web import netguard

TRUSTED = netguard.parse_networks("127.0.0.1/32, 10.9.0.0/16", "TRUSTED_PROXIES")


@pytest.fixture
def portal(instance):
    """Build the portal with the allow-list set (each test its own settings)."""
    from app.models import db
    from app.web.factory import create_app

    built = []

    def build(**settings):
        application = create_app({**instance, **settings})
        built.append(application)
        return application

    yield build
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def refusals(application):
    from app.models import db

    with application.app_context():
        return [
            e
            for e in db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "access.refused")
            ).scalars()
        ]


def test_empty_allows_everyone(portal):
    application = portal(ADMIN_ALLOWED_NETWORKS="")
    response = application.test_client().get("/login/", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 200


def test_outside_the_list_gets_an_audited_japanese_403_before_anything_else(portal):
    application = portal(ADMIN_ALLOWED_NETWORKS="10.0.0.0/8")
    client = application.test_client()
    for path in ("/login/", "/", "/peopleview/list/", "/static/does-not-matter.css"):
        response = client.get(path, environ_base={"REMOTE_ADDR": "203.0.113.7"})
        assert response.status_code == 403, path
        page = response.get_data(as_text=True)
        assert "このネットワークからは管理画面を利用できません" in page
        assert "Set-Cookie" not in response.headers  # no session was started
    response = client.post(
        "/login/",
        data={"username": "admin", "password": "x"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert response.status_code == 403  # refused before CSRF or the sign-in ran
    events = refusals(application)
    assert len(events) == 5
    assert {e.ip for e in events} == {"203.0.113.7"}
    assert json.loads(events[0].details)["reason"] == "network_not_allowed"
    assert {e.outcome for e in events} == {"denied"}


def test_a_number_typed_into_a_refused_url_or_user_agent_is_not_stored(portal):
    """Anything may be typed into a URL or sent as a user agent from outside: the refusal is
    audited with every 12-digit run masked."""
    application = portal(ADMIN_ALLOWED_NETWORKS="10.0.0.0/8")
    response = application.test_client().get(
        "/people/1234-5678-9018",
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
        headers={"User-Agent": "probe/123456789018"},
    )
    assert response.status_code == 403
    (event,) = refusals(application)
    assert json.loads(event.details)["path"] == "/people/************"
    assert event.user_agent == "probe/************"


def test_inside_the_list_is_served(portal):
    application = portal(ADMIN_ALLOWED_NETWORKS="10.0.0.0/8,127.0.0.1/32")
    client = application.test_client()
    assert client.get("/login/", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/login/", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert refusals(application) == []


def test_forwarded_for_from_an_untrusted_peer_is_ignored(portal):
    application = portal(ADMIN_ALLOWED_NETWORKS="10.0.0.0/8", TRUSTED_PROXIES="127.0.0.1/32")
    response = application.test_client().get(
        "/login/",
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
        headers={"X-Forwarded-For": "10.1.2.3"},
    )
    assert response.status_code == 403


def test_forwarded_for_from_a_trusted_proxy_names_the_client(portal):
    application = portal(ADMIN_ALLOWED_NETWORKS="10.0.0.0/8", TRUSTED_PROXIES="127.0.0.1/32")
    client = application.test_client()
    inside = client.get(
        "/login/",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "10.1.2.3"},
    )
    assert inside.status_code == 200
    # A client that writes its own X-Forwarded-For only adds entries to the left.
    spoofed = client.get(
        "/login/",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "10.1.2.3, 198.51.100.4"},
    )
    assert spoofed.status_code == 403
    [event] = refusals(application)
    assert event.ip == "198.51.100.4"  # the audit names the real client, not the proxy


def test_a_bad_setting_stops_the_start(portal):
    with pytest.raises(netguard.NetworkSettingError, match="ADMIN_ALLOWED_NETWORKS"):
        portal(ADMIN_ALLOWED_NETWORKS="10.0.0.0/8, intranet")


def test_production_without_a_list_warns_at_start(portal, caplog):
    with caplog.at_level(logging.WARNING, logger="app.web.netguard"):
        portal(ADMIN_ALLOWED_NETWORKS="", PRODUCTION=True)
    assert "ADMIN_ALLOWED_NETWORKS が未設定です" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.web.netguard"):
        portal(ADMIN_ALLOWED_NETWORKS="10.0.0.0/8", PRODUCTION=True)
    assert "未設定" not in caplog.text


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        ("203.0.113.7", "10.0.0.1", "203.0.113.7"),  # untrusted peer: header ignored
        ("127.0.0.1", "198.51.100.4", "198.51.100.4"),
        ("127.0.0.1", "198.51.100.4, 10.9.1.1", "198.51.100.4"),  # two proxies
        ("127.0.0.1", "10.1.1.1, 198.51.100.4", "198.51.100.4"),  # left part is a claim
        ("127.0.0.1", "not-an-ip", None),
        ("127.0.0.1", "10.9.1.1", "10.9.1.1"),  # only proxies: the left-most is all we have
        ("::1", None, "::1"),
    ],
)
def test_client_address(peer, forwarded, client):
    assert netguard.client_address(peer, forwarded, TRUSTED) == client


def test_within():
    nets = netguard.parse_networks("10.0.0.0/8,2001:db8::/32", "X")
    assert netguard.within(ipaddress.ip_address("10.200.0.1"), nets)
    assert netguard.within(ipaddress.ip_address("2001:db8::5"), nets)
    assert not netguard.within(ipaddress.ip_address("11.0.0.1"), nets)
    assert not netguard.within(None, nets)


def test_the_public_form_sees_the_client_behind_a_trusted_proxy(instance):
    import public_form
    from app.models import db

    form = public_form.create_app({**instance, "TRUSTED_PROXIES": "127.0.0.1/32"})
    seen = []

    @form.before_request
    def capture():
        from flask import request

        seen.append(request.remote_addr)

    client = form.test_client()
    client.get(
        "/", environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers={"X-Forwarded-For": "198.51.100.4"}
    )
    client.get(
        "/",
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
        headers={"X-Forwarded-For": "198.51.100.4"},
    )
    assert seen == ["198.51.100.4", "203.0.113.9"]
    with form.app_context():
        db.engine.dispose()
