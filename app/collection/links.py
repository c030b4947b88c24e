"""Campaign links whose token can be printed again, yet is never stored.

A kit's QR code, the e-mail, every reminder and a deficiency letter must all carry the *same*
link, possibly rendered days apart by different jobs; but the database keeps only the token's
SHA-256 (``app.collection.requests``). So a campaign request's token is derived, not drawn:

    token = base64url(HMAC-SHA256(link key, "mnv-link|v1|" || request id)[:24])

The link key lives in the key ring (``extra.link_token``), beside the KEKs; the public form
never has it. Whoever holds the key ring can recompute any link, but can also decrypt every
number, so nothing is lost; without it a token is as unguessable as a random one (192 bits).
A replaced request gets a new id and therefore a new token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from app.collection import requests
from app.models import CollectionRequest

SECRET_NAME = "link_token"  # noqa: S105  # nosec B105  # the key-ring entry name, not a secret
_TOKEN_BYTES = 24


class LinkUnavailable(RuntimeError):
    """The link cannot be produced: no link key, or a request issued by hand."""


def ensure_key(keyring) -> bool:
    """Create the link key once (``mynumber init``); True when created."""
    if keyring.get_secret(SECRET_NAME) is not None:
        return False
    keyring.set_secret(
        SECRET_NAME, {"key": base64.b64encode(secrets.token_bytes(32)).decode("ascii")}
    )
    return True


def _key(keyring) -> bytes:
    entry = keyring.get_secret(SECRET_NAME)
    if entry is None:
        keyring.reload()  # another process may have created it since we loaded the ring
        entry = keyring.get_secret(SECRET_NAME)
    if entry is None:
        raise LinkUnavailable(
            "リンク用の鍵が鍵リングにありません（`mynumber init` を実行してください）"
        )
    return base64.b64decode(entry["key"])


def token_for(keyring, request_id: uuid.UUID) -> str:
    mac = hmac.new(_key(keyring), b"mnv-link|v1|" + request_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:_TOKEN_BYTES]).decode("ascii").rstrip("=")


def assign(keyring, req: CollectionRequest) -> None:
    """Replace the random token ``create_request`` drew by the derived one (hash only)."""
    req.token_hash = requests.token_hash(token_for(keyring, req.id))


def url_for(keyring, base_url: str, req: CollectionRequest) -> str:
    """The subject's link; checks that the stored hash really belongs to the derived token
    (a request issued by hand has a random token that only its issuer ever saw)."""
    token = token_for(keyring, req.id)
    if not hmac.compare_digest(requests.token_hash(token), req.token_hash):
        raise LinkUnavailable("この依頼のリンクは再発行できません（手動で発行されたリンクです）")
    return requests.request_url(base_url, token)
