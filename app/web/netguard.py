"""The admin portal's network allow-list, checked before anything else on every request.

``ADMIN_ALLOWED_NETWORKS`` (``MYNUMBER_ADMIN_ALLOWED_NETWORKS``): CIDRs separated by commas,
e.g. ``10.0.0.0/8,127.0.0.1/32``. Empty allows every address (embedded mode); a production
instance (``MYNUMBER_PRODUCTION`` or ``MYNUMBER_HTTPS``) then logs a warning at start-up.

Behind a reverse proxy the peer address is the proxy's. ``X-Forwarded-For`` is believed only
when the peer is one of ``TRUSTED_PROXIES``, and then read from the right: the first address
that is not a trusted proxy is the client (whatever a client wrote further left is its own
claim and is ignored). The address found replaces ``REMOTE_ADDR`` for the rest of the request,
so the audit log and the rate limits see the same client.

A refused request gets a Japanese 403 page and the audit event ``access.refused``; nothing of
the portal (sign-in, sessions, FAB) runs for it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from flask import Flask, render_template, request

from app.audit import trail
from app.core import logsafe
from app.core.actor import Actor
from app.models import db

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworkSettingError(ValueError):
    """A setting that is not a list of networks (Japanese, names the setting)."""


def parse_networks(text: str | None, setting: str) -> list[Network]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks; a bad entry is refused at start-up."""
    out: list[Network] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise NetworkSettingError(
                f"{setting}: 「{item}」はネットワークの指定（例: 10.0.0.0/8）ではありません"
            ) from None
    return out


def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def within(address, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in networks)


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy, then the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    peer = _address(remote_addr)
    if peer is None or not within(peer, trusted) or not forwarded_for:
        return str(peer) if peer is not None else None
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return None  # a malformed hop: nobody can say who the client is
        if not within(address, trusted):
            return str(address)
    return str(_address(hops[0])) if hops else str(peer)


def install_proxy(app: Flask) -> None:
    """The public form: no allow-list, but behind nginx the client's address (for its per-IP
    rate limits and the audit) comes from ``X-Forwarded-For`` of a trusted proxy."""
    trusted = parse_networks(app.config.get("TRUSTED_PROXIES"), "TRUSTED_PROXIES")
    if not trusted:
        return

    def resolve():
        client = client_address(
            request.remote_addr, request.headers.get("X-Forwarded-For"), trusted
        )
        if client:
            request.environ["REMOTE_ADDR"] = request.remote_addr = client

    app.before_request_funcs.setdefault(None, []).insert(0, resolve)


def install(app: Flask) -> None:
    """Register the check as the first ``before_request`` of the portal."""
    allowed = parse_networks(app.config.get("ADMIN_ALLOWED_NETWORKS"), "ADMIN_ALLOWED_NETWORKS")
    trusted = parse_networks(app.config.get("TRUSTED_PROXIES"), "TRUSTED_PROXIES")
    production = app.config.get("PRODUCTION") or app.config.get("MYNUMBER_HTTPS")
    if not allowed and production:
        log.warning(
            "ADMIN_ALLOWED_NETWORKS が未設定です: 管理画面にどのネットワークからも接続できます"
            "（本番では社内ネットワークなどに限定してください）"
        )

    def guard():
        client = client_address(
            request.remote_addr, request.headers.get("X-Forwarded-For"), trusted
        )
        if trusted and client:
            request.environ["REMOTE_ADDR"] = request.remote_addr = client
        if not allowed or within(_address(client), allowed):
            return None
        return _refuse(client)

    app.before_request_funcs.setdefault(None, []).insert(0, guard)


def _refuse(client: str | None):
    """403 in Japanese; audited (a failure to audit is logged: the request is refused anyway)."""
    try:
        trail.record(
            db.session,
            Actor(
                name="anonymous",
                ip=client,
                user_agent=(request.user_agent.string or "")[:300] or None,
            ),
            "access.refused",
            outcome="denied",
            details={
                "reason": "network_not_allowed",
                # Anything may be typed into a URL: no 12-digit run reaches the log.
                "path": logsafe.scrub(request.path[:200]),
                "method": request.method,
            },
            commit=True,
        )
    except Exception as exc:  # noqa: BLE001 - refusing must not depend on the database
        log.error("refused access could not be audited: %s", type(exc).__name__)
    html = render_template(
        "mynumber/error.html",
        code=403,
        message=(
            "このネットワークからは管理画面を利用できません。"
            "社内ネットワークなど許可された場所から接続してください。"
        ),
    )
    return html, 403, {"Cache-Control": "no-store"}
