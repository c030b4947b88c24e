"""サービス利用マニュアル: the Markdown chapters in ``docs/manual`` rendered to one PDF.

The chapters are ``docs/manual/NN-*.md`` in file-name order; each begins with one ``# `` title.
Their screenshots (``img/*.png``) are taken from the running app by
``tests/manual/test_screenshots.py`` (``make manual``), so the pictures never drift from the
screens. The PDF follows ``app.platform.pdf``: WeasyPrint with the data:-only fetcher and a Japanese
font, so every image is inlined as a ``data:`` URI and nothing is read from disk or network
while rendering. A missing image is an error naming the file, never a blank box.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from pathlib import Path

import markdown

from app.core import jptime
from app.platform.pdf import html_to_pdf

MANUAL_DIR = Path(__file__).resolve().parents[2] / "docs" / "manual"
TITLE = "MyNumber Vault サービス利用マニュアル"
_IMAGE = re.compile(r"!\[[^\]]*\]\((img/[^)\s]+)\)")
_SRC = re.compile(r'src="(img/[^"]+)"')
_HEADING = re.compile(r'<h([12])(?: id="[^"]*")?>(.*?)</h\1>', re.S)
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

CSS = """
@page { size: A4; margin: 18mm 16mm 20mm;
  @bottom-center { content: counter(page); font-size: 9pt; color: #555; }
  @top-right { content: "MyNumber Vault サービス利用マニュアル"; font-size: 8pt; color: #888; } }
@page cover { @bottom-center { content: none; } @top-right { content: none; } }
html { font-family: "IPAexGothic", "Noto Sans CJK JP", sans-serif; font-size: 10pt;
  line-height: 1.65; color: #222; }
.cover { page: cover; height: 240mm; display: flex; flex-direction: column;
  justify-content: center; text-align: center; break-after: page; }
.cover h1 { font-size: 26pt; border: none; margin: 0 0 8mm; }
.cover .sub { font-size: 13pt; color: #444; }
.cover .meta { margin-top: 30mm; font-size: 10pt; color: #555; }
nav.toc { break-after: page; }
nav.toc h1 { border: none; }
nav.toc ol { list-style: none; padding-left: 0; }
nav.toc li { margin: 1.5mm 0; }
nav.toc li.h2 { padding-left: 8mm; font-size: 9pt; }
nav.toc a { color: #222; text-decoration: none; }
nav.toc a::after { content: leader(". ") target-counter(attr(href), page); }
section.chapter { break-before: page; }
h1 { font-size: 18pt; border-bottom: 2px solid #2a5d9f; padding-bottom: 2mm; color: #1d3f6e; }
h2 { font-size: 13pt; color: #1d3f6e; margin-top: 8mm; break-after: avoid; }
h3 { font-size: 11pt; break-after: avoid; }
img { max-width: 100%; max-height: 150mm; border: 1px solid #bbb; display: block;
  margin: 2mm auto 4mm; }
img[src*="subject-"], img.phone { max-width: 62mm; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0 4mm; font-size: 9pt; }
th, td { border: 1px solid #aaa; padding: 1mm 2mm; vertical-align: top; }
th { background: #eef2f8; }
code { font-family: "IPAexGothic", "Noto Sans CJK JP", monospace; background: #f3f3f3;
  padding: 0 1mm; }
pre { background: #f3f3f3; padding: 2mm 3mm; white-space: pre-wrap; font-size: 8.5pt; }
pre code { padding: 0; }
blockquote { border-left: 3px solid #d9a400; margin: 3mm 0; padding: 1mm 4mm; background: #fff8e1; }
"""


class ManualError(RuntimeError):
    """The manual cannot be built (Japanese message naming the file)."""


def chapters(source: Path = MANUAL_DIR) -> list[Path]:
    """The chapter files in order (``NN-name.md``); README.md is GitHub's index only."""
    found = sorted(source.glob("[0-9][0-9]-*.md"))
    if not found:
        raise ManualError(f"章のファイルがありません: {source}/NN-*.md")
    return found


def chapter_titles(source: Path = MANUAL_DIR) -> list[str]:
    """The ``# `` title of each chapter, in order."""
    titles = []
    for path in chapters(source):
        first = next(
            (line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()), ""
        )
        if not first.startswith("# "):
            raise ManualError(f"{path.name}: 1行目は「# 章の題名」にしてください")
        titles.append(first[2:].strip())
    return titles


def referenced_images(source: Path = MANUAL_DIR) -> list[str]:
    """Every ``img/…`` path the chapters reference (relative to the manual folder), once."""
    seen: dict[str, None] = {}
    for path in chapters(source):
        for match in _IMAGE.finditer(path.read_text(encoding="utf-8")):
            seen.setdefault(match.group(1))
    return list(seen)


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ManualError(f"{path.name}: 画像の形式に対応していません（PNG / JPEG / SVG）")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _inline_images(body: str, source: Path, chapter: str) -> str:
    missing = []

    def replace(match: re.Match) -> str:
        path = source / match.group(1)
        if not path.is_file():
            missing.append(match.group(1))
            return match.group(0)
        return f'src="{_data_uri(path)}"'

    body = _SRC.sub(replace, body)
    if missing:
        raise ManualError(
            f"{chapter}: 画像がありません（make manual で撮影してください）: " + ", ".join(missing)
        )
    return body


def build_html(source: Path = MANUAL_DIR, today: dt.date | None = None) -> str:
    """Cover, table of contents and every chapter as one HTML document, images inlined."""
    today = today or jptime.today_jst()
    sections, toc = [], []
    for number, path in enumerate(chapters(source), 1):
        md = markdown.Markdown(extensions=["tables", "fenced_code", "attr_list", "sane_lists"])
        body = md.convert(path.read_text(encoding="utf-8"))
        counter = {"n": 0}

        def anchor(match: re.Match, number: int = number, counter: dict = counter) -> str:
            counter["n"] += 1
            level, inner = match.group(1), match.group(2)
            ident = f"c{number}-{counter['n']}"
            toc.append((level, ident, re.sub(r"<[^>]+>", "", inner)))
            return f'<h{level} id="{ident}">{inner}</h{level}>'

        body = _HEADING.sub(anchor, body)
        body = _inline_images(body, source, path.name)
        sections.append(f'<section class="chapter" id="chapter-{number}">{body}</section>')
    toc_items = "".join(
        f'<li class="h{level}"><a href="#{ident}">{html.escape(html.unescape(text))}</a></li>'
        for level, ident, text in toc
    )
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        f"<title>{html.escape(TITLE)}</title><style>{CSS}</style></head><body>"
        '<div class="cover"><h1>MyNumber Vault<br>サービス利用マニュアル</h1>'
        '<p class="sub">個人番号（マイナンバー）の収集・保管・利用・返却・廃棄</p>'
        '<p class="sub">発注者担当者・事務取扱担当者・システム管理者・監査担当者・本人向け</p>'
        f'<p class="meta">{today.year}年{today.month}月{today.day}日 版（画面は実際のアプリケーションから自動撮影）</p>'
        "</div>"
        f'<nav class="toc"><h1>目次</h1><ol>{toc_items}</ol></nav>'
        + "".join(sections)
        + "</body></html>"
    )


def build_pdf(out: Path, source: Path = MANUAL_DIR) -> Path:
    """Write the manual PDF (see ``app.platform.pdf.html_to_pdf``: data:-only fetcher, Japanese font)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(html_to_pdf(build_html(source)))
    return out
