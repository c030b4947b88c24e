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

from PIL import Image, ImageOps, UnidentifiedImageError

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
                    # Let libjpeg decode at reduced scale when the photo is much larger
                    # than we keep: faster, and it never allocates the full-size bitmap.
                    image.draft("RGB", (MAX_EDGE, MAX_EDGE))
                image.load()
                upright = ImageOps.exif_transpose(image)
                clean = upright.convert("RGB")
        clean.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.BICUBIC, reducing_gap=2.0)
        out = io.BytesIO()
        # A fresh JPEG: no EXIF, no XMP, no comments, nothing after the image data.
        clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected("画像の画素数が多すぎます（展開すると巨大になる画像です）") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UploadRejected(
            "画像を読み込めません。ファイルが壊れているか、対応していない形式です"
        ) from exc
    return Document(JPEG, out.getvalue(), clean.width, clean.height)


def _check_pdf(data: bytes) -> Document:
    if b"%%EOF" not in data[-2048:]:
        raise UploadRejected("PDF が壊れているか、途中までしかありません")
    if _PDF_FORBIDDEN.search(data):
        raise UploadRejected(
            "この PDF にはスクリプト・添付ファイル・暗号化などが含まれているため受け付けられません。"
            "写真（JPEG）で提出してください"
        )
    return Document(PDF, data)
