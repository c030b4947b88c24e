"""Uploaded identity documents: type by magic bytes, bounded decoding, re-encoding.

- The type is decided by the first bytes, never by the file name or the browser's claim:
  JPEG, PNG, HEIC/HEIF (iPhone photos) and PDF are accepted, everything else is refused.
- Images are decoded with a pixel limit checked from the header *before* decoding (a
  decompression bomb is refused without being expanded), turned upright, scaled down to a
  readable size and re-encoded as a fresh JPEG: EXIF (GPS location, device) and any trailing
  bytes of a polyglot file are gone.
- PDFs cannot be re-encoded without a PDF library; they are checked for structure and refused
  when they carry scripts, actions, attachments or encryption.

Nothing here writes to disk: the data stays in memory until it is sealed.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF from iPhones; optional so a missing wheel only disables that format
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - the dependency is declared
    HEIF_SUPPORTED = False

JPEG = "image/jpeg"
PNG = "image/png"
HEIF = "image/heif"
PDF = "application/pdf"

MAX_EDGE = 3000  # pixels on the long edge after re-encoding: enough to read a card
# JPEGs are decoded at a reduced scale only as far as this long edge stays: an ID document
# photographed at 2000 px across is still legible (the card fills ~1500 px of it).
MIN_EDGE = 2000
JPEG_QUALITY = 85
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_PDF_FORBIDDEN = re.compile(
    rb"/(JavaScript|JS|Launch|EmbeddedFile|EmbeddedFiles|RichMedia|OpenAction|AA|Encrypt|XFA)\b"
)


class UploadRejected(ValueError):
    """Raised with a Japanese message that names the problem (the caller adds the field)."""


@dataclass(frozen=True)
class Document:
    media_type: str
    data: bytes
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> str | None:
    """The media type from the magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"%PDF-"):
        return PDF
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return HEIF
    return None


def process(data: bytes, *, max_bytes: int, max_pixels: int) -> Document:
    """Check and clean one uploaded file; raise UploadRejected with the reason."""
    if not data:
        raise UploadRejected("ファイルが選択されていないか、空のファイルです")
    if len(data) > max_bytes:
        raise UploadRejected(
            f"ファイルが大きすぎます（{len(data) / 1048576:.1f} MB、上限 {max_bytes // 1048576} MB）"
        )
    kind = sniff(data)
    if kind is None:
        raise UploadRejected(
            "対応していない形式です。JPEG・PNG・HEIC の写真、または PDF を選んでください"
        )
    if kind == HEIF and not HEIF_SUPPORTED:
        raise UploadRejected("HEIC 形式には対応していません。JPEG で撮影し直してください")
    if kind == PDF:
        return _check_pdf(data)
    return _reencode(data, kind, max_pixels)


def _draft_size(width: int, height: int) -> tuple[int, int]:
    """The size to ask libjpeg for: the long side at MIN_EDGE, the short side in proportion.

    ``draft()`` picks the largest of the scales 1/2, 1/4, 1/8 that keeps the image at least
    this big in both directions, so the long side never drops below MIN_EDGE (an ID document
    must stay legible) while a 12-megapixel phone photo is decoded at half size, about four
    times faster and without ever allocating the full bitmap."""
    long_side = max(width, height)
    if long_side <= MIN_EDGE:
        return width, height
    return (
        max(1, -(-width * MIN_EDGE // long_side)),
        max(1, -(-height * MIN_EDGE // long_side)),
    )


def _reencode(data: bytes, kind: str, max_pixels: int) -> Document:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                expected = {JPEG: "JPEG", PNG: "PNG", HEIF: "HEIF"}[kind]
                if image.format != expected:
                    raise UploadRejected("ファイルの中身が画像として正しくありません")
                width, height = image.size
                if width * height > max_pixels or width <= 0 or height <= 0:
                    raise UploadRejected(
                        f"画像の画素数が多すぎます（{width}×{height}）。"
                        "カメラの設定を下げるか、縮小してから選んでください"
                    )
                if image.format == "JPEG":
                    image.draft("RGB", _draft_size(width, height))
                # WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES when it is
                # imported (the portal makes PDFs): a cut-off photo would then be "decoded"
                # with grey filler and stored. Refuse it whatever another module did.
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                image.load()
                # Upright in place: no copy of the bitmap when there is nothing to turn (the
                # usual case); the EXIF itself is never written out below.
                ImageOps.exif_transpose(image, in_place=True)
                clean = image if image.mode == "RGB" else image.convert("RGB")
                if max(clean.size) > MAX_EDGE:
                    clean.thumbnail(
                        (MAX_EDGE, MAX_EDGE), Image.Resampling.BICUBIC, reducing_gap=2.0
                    )
                out = io.BytesIO()
                # A fresh JPEG from the pixels alone: no EXIF, no XMP, no ICC, no comments,
                # nothing after the image data. Not ``optimize``: it doubles the encoding
                # time for about a tenth fewer bytes.
                # Pillow would carry a JPEG comment (COM) over from ``info``: not this one.
                clean.info.clear()
                clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=False, comment=b"")
                size = clean.size
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected("画像の画素数が多すぎます（展開すると巨大になる画像です）") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UploadRejected(
            "画像を読み込めません。ファイルが壊れているか、対応していない形式です"
        ) from exc
    return Document(JPEG, out.getvalue(), size[0], size[1])


def _check_pdf(data: bytes) -> Document:
    if b"%%EOF" not in data[-2048:]:
        raise UploadRejected("PDF が壊れているか、途中までしかありません")
    if _PDF_FORBIDDEN.search(data):
        raise UploadRejected(
            "この PDF にはスクリプト・添付ファイル・暗号化などが含まれているため受け付けられません。"
            "写真（JPEG）で提出してください"
        )
    return Document(PDF, data)
