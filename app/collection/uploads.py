"""Uploaded identity documents: type by magic bytes, bounded decoding, re-encoding.

- The type is decided by the first bytes, never by the file name or the browser's claim:
  JPEG, PNG, HEIC/HEIF (iPhone photos) and PDF are accepted, everything else is refused.
- Images are decoded with a pixel limit checked from the header *before* decoding (a
  decompression bomb is refused without being expanded), turned upright, scaled down to a
  readable size and re-encoded as a fresh JPEG: EXIF (GPS location, device) and any trailing
  bytes of a polyglot file are gone.
- PDFs are not re-encoded: they are parsed (pypdf), every object is walked (object streams
  included) with names decoded as a PDF reader decodes them (``/Java#53cript`` is
  ``/JavaScript``), and the raw bytes are scanned again after the same decoding (objects an
  incremental update replaced). One script, automatic action, launch, link out, attachment,
  media, XFA form or encryption — or a file that does not parse — and the PDF is refused.

Nothing here writes to disk: the data stays in memory until it is sealed.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from app.audit import trail

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
# What a PDF viewer would run, open, fetch or hide; each name in Japanese for the refusal.
_PDF_FORBIDDEN_NAMES = {
    "JavaScript": "スクリプト",
    "JS": "スクリプト",
    "OpenAction": "開いたときの自動動作",
    "AA": "自動動作",
    "Launch": "外部プログラムの起動",
    "SubmitForm": "フォームの送信",
    "ImportData": "外部データの読み込み",
    "GoToR": "別ファイルへのリンク",
    "GoToE": "埋め込みファイルへのリンク",
    "URI": "外部へのリンク",
    "EmbeddedFile": "添付ファイル",
    "EmbeddedFiles": "添付ファイル",
    "Filespec": "添付ファイル",
    "RichMedia": "埋め込みメディア",
    "Rendition": "埋め込みメディア",
    "Movie": "埋め込みメディア",
    "Sound": "埋め込みメディア",
    "XFA": "XFA フォーム",
    "Encrypt": "暗号化",
}
_PDF_FORBIDDEN = re.compile(
    rb"/(" + b"|".join(n.encode() for n in _PDF_FORBIDDEN_NAMES) + rb")(?![A-Za-z0-9])"
)
_PDF_NAME = re.compile(rb"/[^\x00\t\n\x0c\r /%()<>\[\]{}]*")
_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


class UploadRejected(ValueError):
    """Raised with a Japanese message that names the problem (the caller adds the field)."""


class ActiveContentRejected(UploadRejected):
    """A PDF that carries something a viewer would run or fetch: a hostile file, not a
    mistake, so the caller records it in the audit log (``audit_refusal``)."""

    def __init__(self, message: str, found: str) -> None:
        super().__init__(message)
        self.found = found


def audit_refusal(session, actor, exc: ActiveContentRejected, *, where: str, object_ids) -> None:
    """Record a refused active PDF (who, where, which name was found; never the file)."""
    trail.record(
        session,
        actor,
        "upload.refused",
        object_type=where,
        object_ids=list(object_ids),
        outcome="denied",
        details={"reason": "pdf_active_content", "found": f"/{exc.found}"},
        commit=True,
    )


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


def size_text(n_bytes: int) -> str:
    """A file's size as a phone shows it (decimal MB, one decimal), rounded up: a file over
    the limit never reads as if it were at or under it."""
    return f"{math.ceil(n_bytes / 100_000) / 10:.1f} MB"


def limit_text(n_bytes: int) -> str:
    """A limit in decimal MB, rounded down (``10 MB``, ``10.4 MB``): never more than allowed."""
    tenths = n_bytes // 100_000
    return f"{tenths // 10} MB" if tenths % 10 == 0 else f"{tenths / 10:.1f} MB"


def process(data: bytes, *, max_bytes: int, max_pixels: int, size: int | None = None) -> Document:
    """Check and clean one uploaded file; raise UploadRejected with the reason.

    ``size`` is the file's real length when the caller read only the first ``max_bytes + 1``
    bytes of it (enough to know it is too big): the message states the real size."""
    if not data:
        raise UploadRejected("ファイルが選択されていないか、空のファイルです")
    if len(data) > max_bytes:
        real = max(size or 0, len(data))
        raise UploadRejected(
            f"ファイルが大きすぎます（{size_text(real)}、上限 {limit_text(max_bytes)}）"
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
    found = _forbidden_in_bytes(data) or _forbidden_in_objects(data)
    if found:
        raise ActiveContentRejected(
            "この PDF にはスクリプト・自動動作・リンク・添付ファイル・暗号化などの"
            f"動的な内容（{_PDF_FORBIDDEN_NAMES[found]}: /{found}）が含まれているため"
            "受け付けられません。写真（JPEG）で提出してください",
            found,
        )
    return Document(PDF, data)


def decode_pdf_names(data: bytes) -> bytes:
    """Every name token with its ``#xx`` escapes decoded (PDF 32000-1, 7.3.5), as a reader
    sees it: ``/Open#41ction`` is ``/OpenAction``."""

    def one(name: re.Match) -> bytes:
        return _PDF_NAME_ESCAPE.sub(lambda h: bytes([int(h.group(1), 16)]), name.group(0))

    return _PDF_NAME.sub(one, data)


def _forbidden_in_bytes(data: bytes) -> str | None:
    """The raw file, names decoded: catches what the parser never reaches (an object that an
    incremental update replaced, an object outside the cross-reference table)."""
    match = _PDF_FORBIDDEN.search(decode_pdf_names(data))
    return match.group(1).decode("ascii") if match else None


def _forbidden_in_objects(data: bytes) -> str | None:
    """Parse the PDF and walk every object the cross-reference tables list (those inside
    object streams too), every dictionary key and name value; and the decoded content of
    every object stream (objects an update left behind). A PDF that does not parse, or is
    encrypted, is refused: what cannot be checked is not accepted."""
    # pypdf takes ~150 ms to import: loaded when a PDF arrives, not in every process.
    from pypdf import PdfReader, generic

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return "Encrypt"
        if len(reader.pages) < 1:
            raise ValueError("no page")
        refs = [
            (number, generation) for generation, table in reader.xref.items() for number in table
        ] + [(number, 0) for number in reader.xref_objStm]
        stack: list = [reader.trailer]
        for number, generation in refs:
            stack.append(reader.get_object(generic.IndirectObject(number, generation, reader)))
        seen: set[int] = set()
        while stack:
            item = stack.pop()
            if isinstance(item, generic.IndirectObject) or id(item) in seen:
                continue  # every indirect object is on the stack already
            seen.add(id(item))
            if isinstance(item, generic.NameObject):
                if item[1:] in _PDF_FORBIDDEN_NAMES:
                    return str(item[1:])
            elif isinstance(item, generic.DictionaryObject):
                for key, value in item.items():
                    if key[1:] in _PDF_FORBIDDEN_NAMES:
                        return str(key[1:])
                    stack.append(value)
                if item.get("/Type") == "/ObjStm":
                    found = _forbidden_in_bytes(item.get_data())
                    if found:
                        return found
            elif isinstance(item, generic.ArrayObject):
                stack.extend(item)
    except Exception as exc:  # noqa: BLE001 - any parser failure: the file cannot be checked
        raise UploadRejected(
            "PDF を読み込めません。ファイルが壊れているか、対応していない形式です"
        ) from exc
    return None
