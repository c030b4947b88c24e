"""PDF pages as images, in memory: an operator sees a 住民票 in the portal instead of
downloading it to their PC.

poppler's ``pdftoppm`` (poppler-utils, installed by ``scripts/system-deps.sh``) reads the PDF
from its standard input (``-``; poppler keeps stdin in memory) and writes the page image to
its standard output: nothing touches the disk, as invariant 1 requires of a document that
may show a number. It runs as a separate process with a fixed argument list and a timeout, so
a hostile PDF that hangs or crashes the renderer costs that process, not the portal.

Each page is scaled so its longer side is ``MAX_SIDE`` pixels (a huge page size cannot make
a huge bitmap); at most ``MAX_PAGES`` pages are rendered, and the caller says how many more
there were.
"""

from __future__ import annotations

import io
import shutil
import subprocess  # nosec B404  # pdftoppm only, a fixed argument list
from dataclasses import dataclass, field

MAX_PAGES = 6
MAX_SIDE = 1800  # pixels: a 住民票 at A4 is readable zoomed, and stays ~300 KB as JPEG
TIMEOUT_SECONDS = 20


class PdfRenderError(ValueError):
    """A Japanese reason the pages could not be shown (never the document's content)."""


@dataclass
class RenderedPages:
    images: list[bytes] = field(default_factory=list)  # JPEG, one per page
    total: int = 0  # pages in the document (more than ``images`` when capped)


def renderer_available() -> bool:
    return shutil.which("pdftoppm") is not None


def page_count(data: bytes) -> int:
    """Pages in the PDF (pypdf; the upload already parsed it the same way)."""
    # pypdf takes ~150 ms to import: loaded when a PDF is shown, not in every process.
    from pypdf import PdfReader

    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    except Exception as exc:  # noqa: BLE001  # any parse failure is "cannot show it"
        raise PdfRenderError("PDF を読み取れないため表示できません") from exc


def render(data: bytes, max_pages: int = MAX_PAGES) -> RenderedPages:
    """Every page (up to ``max_pages``) as a JPEG, through pipes only."""
    binary = shutil.which("pdftoppm")
    if binary is None:
        raise PdfRenderError(
            "PDF を画像にする pdftoppm（poppler-utils）がありません。"
            "システム管理者に scripts/system-deps.sh の実行を依頼してください"
        )
    out = RenderedPages(total=page_count(data))
    for page in range(1, min(out.total, max_pages) + 1):
        args = [
            binary,
            "-jpeg",
            "-jpegopt",
            "quality=85",
            "-scale-to",
            str(MAX_SIDE),
            "-f",
            str(page),
            "-l",
            str(page),
            "-",  # the PDF from stdin; no output root: the image goes to stdout
        ]
        try:
            done = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments, resolved path, no shell
                args, input=data, capture_output=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise PdfRenderError(f"PDF の {page} ページ目の表示に時間がかかりすぎました") from None
        if done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
            raise PdfRenderError(f"PDF の {page} ページ目を画像にできませんでした")
        out.images.append(done.stdout)
    return out
