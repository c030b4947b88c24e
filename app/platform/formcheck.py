"""Does the public form answer at the address every link and QR code will carry?

A printed kit cannot be corrected and a mailed link cannot be recalled: before a campaign is
sent or a print batch is made, the portal asks the form's health endpoint (``/healthz``,
served by ``public_form``) at the configured ``PUBLIC_FORM_URL`` with a short timeout. Only
an answer that names the form counts: another service on that port (an old portal, a proxy's
error page) is not the form.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

HEALTH_PATH = "/healthz"
SERVICE = "mynumber-public-form"  # what the form's health endpoint says it is


def health_url(form_url: str) -> str:
    """The health endpoint under the form's base address (a path prefix is kept)."""
    return form_url.rstrip("/") + HEALTH_PATH


def problem(form_url: str, timeout: float) -> str | None:
    """None when the form answers at ``form_url``; else a Japanese reason naming the URL."""
    url = (form_url or "").strip()
    where = f"提出フォームのURL（MYNUMBER_PUBLIC_FORM_URL: {url or '未設定'}）"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{where}が正しくありません。http:// または https:// で始まるURLを設定してください"
    try:
        # The scheme is checked above (http/https only): no file:// or custom opener.
        with urllib.request.urlopen(health_url(url), timeout=timeout) as response:  # noqa: S310  # nosec B310
            raw = response.read(4096)
    except urllib.error.HTTPError as exc:
        return (
            f"{where}で提出フォームが応答しません（HTTP {exc.code}）。"
            "提出フォームが起動しているか、URL とポートが正しいか確認してください"
        )
    except (OSError, ValueError) as exc:
        return (
            f"{where}に接続できません（{type(exc).__name__}）。"
            "提出フォームが起動しているか、URL とポートが正しいか確認してください"
        )
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("service") != SERVICE:
        return f"{where}で応答したのは提出フォームではありません。URL とポートを確認してください"
    return None
