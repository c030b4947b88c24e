"""PDF pages as images for the case pages: every page (up to the cap) as a JPEG, made
through pipes with nothing written to disk, and a Japanese reason when a PDF cannot be shown."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image
from pypdf import PdfWriter

from app.platform import pdfpages

pytestmark = pytest.mark.skipif(
    not pdfpages.renderer_available() and not os.environ.get("CI"),
    reason="pdftoppm（poppler-utils）がありません（scripts/system-deps.sh が入れます）",
)


def _pdf(pages: int, size=(595, 842)) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(*size)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_each_page_becomes_a_jpeg_scaled_to_the_cap_and_nothing_touches_the_disk(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where a renderer would spill, if it did
    monkeypatch.chdir(tmp_path)
    rendered = pdfpages.render(_pdf(2))
    assert rendered.total == 2 and len(rendered.images) == 2
    for image in rendered.images:
        with Image.open(io.BytesIO(image)) as page:
            assert page.format == "JPEG" and max(page.size) == pdfpages.MAX_SIDE
            assert page.size[0] < page.size[1]  # A4 portrait stays portrait
    assert list(tmp_path.iterdir()) == []


def test_a_long_document_shows_the_first_pages_and_says_how_many_there_are():
    rendered = pdfpages.render(_pdf(4), max_pages=2)
    assert (rendered.total, len(rendered.images)) == (4, 2)


def test_a_pdf_that_cannot_be_read_says_so_in_japanese():
    with pytest.raises(pdfpages.PdfRenderError, match="PDF を読み取れないため表示できません"):
        pdfpages.render(b"%PDF-1.4\nnot really a pdf")
