"""PDFs: Japanese text with the font embedded, QR codes that decode, nothing fetched."""

import io

import pytest
from flask import render_template_string

from app.platform import pdf
from tests.conftest import pdf_text


def _render(app, body: str) -> bytes:
    html = render_template_string(
        '{% extends "pdf/base.html" %}{% block body %}' + body + "{% endblock %}"
    )
    return pdf.html_to_pdf(html)


def test_japanese_text_is_extractable_and_the_font_embedded(app, needs_pdf):
    data = _render(app, "<h1>削除証明書</h1><p>見本 太郎 様（髙橋・𠮷田）</p>")
    text = pdf_text(data)
    assert "削除証明書" in text and "見本" in text and "髙橋" in text
    from pypdf import PdfReader

    fonts = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            descriptor = (
                font.get_object().get("/FontDescriptor")
                or font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            )
            fonts.append(descriptor.get_object())
    assert any("/FontFile2" in f or "/FontFile3" in f for f in fonts)


def test_qr_code_decodes_to_its_text(app, needs_pdf):
    import zxingcpp
    from PIL import Image

    uri = pdf.qr_data_uri("https://form.example.jp/r/abc123")
    import base64

    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    [result] = zxingcpp.read_barcodes(image)
    assert result.text == "https://form.example.jp/r/abc123"


@pytest.mark.parametrize(
    "src", ["file:///etc/passwd", "http://127.0.0.1:1/x.png", "https://example.com/x.css"]
)
def test_templates_cannot_fetch_files_or_urls(app, needs_pdf, src):
    with pytest.raises(Exception) as info:
        pdf.data_only_fetcher()(src)
    assert "not allowed" in str(info.value) or "protocol" in str(info.value).lower()
    data = _render(app, f'<p>本文</p><img src="{src}">')
    assert "本文" in pdf_text(data)  # rendered without the resource
