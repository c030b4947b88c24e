"""Uploads: type by magic bytes, bomb limit before decoding, EXIF gone, refusals explained."""

import io

import pytest
from PIL import Image

from app.collection import uploads
from tests.public_form.conftest import heic, jpeg, pdf, png, png_bomb

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}


def test_jpeg_is_reencoded_without_exif_or_gps():
    original = jpeg(gps=True)
    assert b"Exif" in original and Image.open(io.BytesIO(original)).getexif().get(0x8825)
    doc = uploads.process(original, **LIMITS)
    assert doc.media_type == "image/jpeg"
    cleaned = Image.open(io.BytesIO(doc.data))
    assert cleaned.format == "JPEG" and cleaned.size == (1200, 800)
    assert not cleaned.getexif() and "exif" not in cleaned.info
    assert b"TestPhone" not in doc.data


def test_orientation_is_applied_before_exif_is_dropped():
    image = Image.new("RGB", (400, 200), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° CW when shown
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    doc = uploads.process(out.getvalue(), **LIMITS)
    assert (doc.width, doc.height) == (200, 400)


def test_png_and_heic_become_jpeg():
    for data in (png(), heic()):
        doc = uploads.process(data, **LIMITS)
        assert doc.media_type == "image/jpeg" and doc.data[:3] == b"\xff\xd8\xff"


def test_large_photo_is_scaled_to_a_readable_size():
    doc = uploads.process(jpeg(size=(6000, 4000)), **LIMITS)
    assert max(doc.width, doc.height) <= uploads.MAX_EDGE


def test_pdf_is_decided_by_magic_bytes_not_by_its_name():
    # The name never reaches uploads.process: only the bytes decide.
    doc = uploads.process(pdf(), **LIMITS)
    assert doc.media_type == "application/pdf" and doc.data == pdf()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "対応していない形式です"),
        (b"GIF89a" + b"\x00" * 100, "対応していない形式です"),
        (b"PK\x03\x04" + b"\x00" * 100, "対応していない形式です"),
        (b"", "空のファイル"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "画像を読み込めません"),
        (pdf(b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> "), "スクリプト"),
        (pdf(b"/AA << /O << /S /Launch >> >> "), "スクリプト"),
        (pdf()[:-20], "壊れている"),
    ],
)
def test_disguised_broken_and_active_files_are_refused(data, message):
    with pytest.raises(uploads.UploadRejected, match=message):
        uploads.process(data, **LIMITS)


def test_decompression_bomb_is_refused_without_decoding():
    bomb = png_bomb()
    assert len(bomb) < 200_000  # tiny on disk, 900 million pixels when decoded
    with pytest.raises(uploads.UploadRejected, match="画素数が多すぎます"):
        uploads.process(bomb, **LIMITS)


def test_oversized_file_is_refused():
    with pytest.raises(uploads.UploadRejected, match="大きすぎます"):
        uploads.process(b"\xff\xd8\xff" + b"0" * 2048, max_bytes=1024, max_pixels=1000)


def test_a_file_over_the_limit_is_refused_with_its_real_size():
    """The form reads only limit + 1 bytes of a big file; the message states the real size,
    in the decimal MB a phone shows, rounded up, and the limit rounded down."""
    head = b"\xff\xd8\xff" + b"0" * (10_000_001 - 3)
    with pytest.raises(uploads.UploadRejected) as refused:
        uploads.process(head, max_bytes=10_000_000, max_pixels=1000, size=11_000_000)
    assert "（11.0 MB、上限 10 MB）" in str(refused.value)
    assert uploads.size_text(10_000_001) == "10.1 MB"  # never reads as the limit itself
    assert uploads.limit_text(10 * 1024 * 1024) == "10.4 MB"  # never more than allowed
    assert uploads.limit_text(25_000_000) == "25 MB"


def test_polyglot_trailer_is_dropped():
    html = b"<html><script>alert(1)</script></html>"
    doc = uploads.process(jpeg() + html, **LIMITS)
    assert html not in doc.data


def test_jpeg_comment_is_dropped():
    # A COM segment can carry anything (a place name, a script): the re-encoded file has none.
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(out, "JPEG", comment=b"Shibuya 35.66N 139.70E")
    doc = uploads.process(out.getvalue(), **LIMITS)
    assert b"Shibuya" not in doc.data
    assert "comment" not in Image.open(io.BytesIO(doc.data)).info


def test_phone_photo_is_decoded_at_reduced_scale_but_stays_legible():
    # A 12-megapixel phone photo (4032×3024) is decoded at half scale by libjpeg: the long
    # side stays at least MIN_EDGE (an ID card must remain readable) and at most MAX_EDGE.
    doc = uploads.process(jpeg(size=(4032, 3024), gps=True), **LIMITS)
    assert (doc.width, doc.height) == (2016, 1512)
    assert uploads.MIN_EDGE <= max(doc.width, doc.height) <= uploads.MAX_EDGE
    portrait = uploads.process(jpeg(size=(3024, 4032)), **LIMITS)
    assert (portrait.width, portrait.height) == (1512, 2016)


def test_photo_just_above_the_floor_is_kept_at_full_size():
    # 2500 px: halving would give 1250, below MIN_EDGE, so it is decoded in full.
    doc = uploads.process(jpeg(size=(2500, 1800)), **LIMITS)
    assert (doc.width, doc.height) == (2500, 1800)


def test_photo_that_cannot_be_halved_is_resized_to_the_maximum():
    # 3500 px: halving would give 1750 (below MIN_EDGE), so it is decoded in full and then
    # resized to MAX_EDGE.
    doc = uploads.process(jpeg(size=(3500, 2000)), **LIMITS)
    assert (doc.width, doc.height) == (uploads.MAX_EDGE, 1714)


def test_a_cut_off_photo_is_refused_even_after_weasyprint_loosened_pillow():
    """WeasyPrint turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process when it is
    imported; the portal imports it for every PDF. A truncated upload must still be refused."""
    import weasyprint  # noqa: F401  - the import is the point: it flips the global
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # as WeasyPrint leaves it
    data = jpeg()
    with pytest.raises(uploads.UploadRejected, match="画像を読み込めません"):
        uploads.process(data[: len(data) // 3], max_bytes=10_000_000, max_pixels=50_000_000)


# -- PDFs: parsed, every object walked, names decoded ---------------------------------------------
def _pdf_with_object_stream(catalog_extra: bytes) -> bytes:
    """A PDF 1.5 whose catalog lives compressed inside an object stream (no name of it is
    visible in the raw bytes), with a cross-reference stream, as many scanners write."""
    import zlib

    catalog = b"<< /Type /Catalog /Pages 1 0 R " + catalog_extra + b">>"
    objstm_body = b"3 0 " + catalog
    packed = zlib.compress(objstm_body)
    body = b"%PDF-1.5\n"
    offsets = {}

    def add(number: int, obj: bytes) -> None:
        nonlocal body
        offsets[number] = len(body)
        body += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"

    add(1, b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>")
    add(2, b"<< /Type /Page /Parent 1 0 R /MediaBox [0 0 200 200] >>")
    add(
        4,
        f"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length {len(packed)} >>\n".encode()
        + b"stream\n"
        + packed
        + b"\nendstream",
    )
    offsets[5] = len(body)
    rows = [b"\x00\x00\x00\x00\x00\xff\xff"]
    rows.append(b"\x01" + offsets[1].to_bytes(4, "big") + b"\x00\x00")
    rows.append(b"\x01" + offsets[2].to_bytes(4, "big") + b"\x00\x00")
    rows.append(b"\x02" + (4).to_bytes(4, "big") + b"\x00\x00")
    rows.append(b"\x01" + offsets[4].to_bytes(4, "big") + b"\x00\x00")
    rows.append(b"\x01" + offsets[5].to_bytes(4, "big") + b"\x00\x00")
    xref = b"".join(rows)
    body += (
        f"5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 3 0 R /Length {len(xref)} >>\n".encode()
        + b"stream\n"
        + xref
        + b"\nendstream\nendobj\n"
        + f"startxref\n{offsets[5]}\n%%EOF\n".encode()
    )
    return body


def _incremental(original: bytes, catalog: bytes) -> bytes:
    """``original`` with an incremental update that replaces object 1 (the catalog)."""
    offset = len(original)
    previous = int(original.rsplit(b"startxref", 1)[1].split()[0])
    update = b"1 0 obj\n" + catalog + b"\nendobj\n"
    xref = offset + len(update)
    return (
        original
        + update
        + f"xref\n1 1\n{offset:010d} 00000 n \n".encode()
        + f"trailer << /Size 4 /Root 1 0 R /Prev {previous} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )


def test_a_scanners_pdf_with_object_streams_is_accepted():
    data = _pdf_with_object_stream(b"")
    doc = uploads.process(data, **LIMITS)
    assert doc.media_type == "application/pdf" and doc.data == data


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (pdf(b"/Open#41ction << /S /Java#53cript /J#53 (app.alert(1)) >> "), "/OpenAction"),
        (pdf(b"/#41A << /O << /S /Launch /F (cmd.exe) >> >> "), "/AA"),
        (
            pdf(b"/Annots [<< /Subtype /Link /A << /S /#55RI /URI (https://x.example) >> >>] "),
            "/URI",
        ),
        (pdf(b"/Annots [<< /Subtype /Widget /A << /S /SubmitForm /F (https://x) >> >>] "), ""),
        (pdf(b"/Annots [<< /A << /S /ImportData /F (x.fdf) >> >>] "), "/ImportData"),
        (pdf(b"/Annots [<< /A << /S /GoToR /F (other.pdf) /D [0 /Fit] >> >>] "), "/GoToR"),
        (pdf(b"/Names << /Embedded#46iles << /Names [(a) << /Type /Filespec >>] >> >> "), ""),
        (pdf(b"/RichMedia << >> "), "/RichMedia"),
        (pdf(b"/AcroForm << /XFA [(template) 4 0 R] >> "), "/XFA"),
        (_pdf_with_object_stream(b"/Open#41ction << /S /JavaScript /JS (x) >> "), "/OpenAction"),
        (_pdf_with_object_stream(b"/Names << /JavaScript << >> >> "), "/JavaScript"),
        (_incremental(pdf(), b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JS >> >>"), ""),
        (
            _incremental(
                pdf(b"/AA << /O << /S /JavaScript /JS (x) >> >> "),
                b"<< /Type /Catalog /Pages 2 0 R >>",
            ),
            "",
        ),
    ],
    ids=[
        "hex-escaped-openaction-javascript",
        "hex-escaped-aa-launch",
        "uri-link",
        "submitform",
        "importdata",
        "gotor",
        "embedded-files",
        "richmedia",
        "xfa",
        "openaction-inside-object-stream",
        "javascript-name-tree-inside-object-stream",
        "added-by-incremental-update",
        "hidden-in-a-replaced-revision",
    ],
)
def test_an_active_pdf_is_refused_whatever_its_spelling_or_hiding_place(data, found):
    with pytest.raises(uploads.ActiveContentRejected, match="スクリプト") as caught:
        uploads.process(data, **LIMITS)
    assert caught.value.found and found in f"/{caught.value.found}"
    assert "受け付けられません" in str(caught.value)


def test_a_pdf_that_does_not_parse_or_is_encrypted_is_refused():
    with pytest.raises(uploads.UploadRejected, match="PDF を読み込めません"):
        uploads.process(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF\n", **LIMITS)
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(uploads.ActiveContentRejected, match="暗号化"):
        uploads.process(out.getvalue(), **LIMITS)


def test_pdf_names_are_decoded_as_a_reader_decodes_them():
    assert uploads.decode_pdf_names(b"/Java#53cript /Open#41ction (#41) /A#2fB") == (
        b"/JavaScript /OpenAction (#41) /A/B"
    )
