"""PDFs with WeasyPrint: our own templates only, Japanese font embedded, nothing fetched.

The URL fetcher refuses every URL but ``data:`` (QR codes and charts are inlined), so a
template can never read a local file or reach the network. Text is set in IPAexGothic
(Debian ``fonts-ipaexfont``) or Noto Sans CJK JP; WeasyPrint embeds the subset it uses.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess  # nosec B404  # fc-list only, a fixed argument list

import segno
from flask import render_template

JAPANESE_FONTS = ("IPAexGothic", "IPAexMincho", "Noto Sans CJK JP")


class PdfUnavailable(RuntimeError):
    """WeasyPrint's system libraries or a Japanese font are missing."""


def data_only_fetcher():
    """WeasyPrint's own fetcher restricted to inline ``data:`` URLs: no files, no network."""
    from weasyprint.urls import URLFetcher  # WeasyPrint (Pango): only processes that print

    return URLFetcher(allowed_protocols={"data"}, timeout=1, allow_redirects=False)


def japanese_font_installed() -> bool:
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return False
    listing = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments, resolved path, no shell
        [fc_list, ":lang=ja", "family"], capture_output=True, text=True, check=False
    ).stdout
    return any(font in listing for font in JAPANESE_FONTS)


def html_to_pdf(html: str) -> bytes:
    try:
        from weasyprint import HTML  # loads Pango; a missing library is reported below
    except OSError as exc:  # Pango missing
        raise PdfUnavailable("PDF の作成に必要なライブラリ（Pango）がありません") from exc
    if not japanese_font_installed():
        raise PdfUnavailable("日本語フォント（fonts-ipaexfont）がインストールされていません")
    return HTML(string=html, url_fetcher=data_only_fetcher(), base_url=None).write_pdf()


def render_pdf(template: str, **context) -> bytes:
    """Render one of our Jinja templates (app/templates/pdf/…) to PDF bytes."""
    return html_to_pdf(render_template(template, **context))


def qr_data_uri(text: str, scale: int = 4) -> str:
    """A QR code as an inline PNG data URI (segno), for templates."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=scale, border=2)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
