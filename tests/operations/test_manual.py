"""The manual builder (app/operations/manual.py) on a small folder of its own: chapters in file order,
images inlined as data: URIs (the PDF fetcher allows nothing else), a missing image named,
and the PDF carrying the cover, the table of contents and every chapter title. The real
manual, with the screenshots of the running app, is built in tests/manual."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from app.operations import manual
from tests.conftest import pdf_text


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def source(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "login.png").write_bytes(_png())
    (tmp_path / "02-second.md").write_text(
        "# 第二章 操作\n\n## 手順\n\n1. 押します。\n\n![画面](img/login.png)\n", encoding="utf-8"
    )
    (tmp_path / "01-first.md").write_text(
        "# 第一章 はじめに\n\n| 列 | 値 |\n|---|---|\n| a | b |\n\n![同じ画面](img/login.png)\n",
        encoding="utf-8",
    )
    (tmp_path / "README.md").write_text("# GitHub の目次（PDF には入らない）\n", encoding="utf-8")
    return tmp_path


def test_chapters_are_the_numbered_files_in_order_and_readme_is_not_one(source):
    assert [p.name for p in manual.chapters(source)] == ["01-first.md", "02-second.md"]
    assert manual.chapter_titles(source) == ["第一章 はじめに", "第二章 操作"]
    assert manual.referenced_images(source) == ["img/login.png"]


def test_images_are_inlined_as_data_uris_and_nothing_else_is_referenced(source):
    html = manual.build_html(source)
    assert html.count('src="data:image/png;base64,') == 2
    assert not re.search(r'src="(?!data:)', html)
    assert "<table>" in html  # the tables extension is on
    assert 'href="#c1-1"' in html and 'id="c2-2"' in html  # table of contents → headings


def test_a_missing_image_is_named_and_nothing_is_built(source, tmp_path):
    (source / "img" / "login.png").unlink()
    with pytest.raises(manual.ManualError, match=r"01-first\.md: 画像がありません.*img/login\.png"):
        manual.build_pdf(tmp_path / "out.pdf", source)
    assert not (tmp_path / "out.pdf").exists()


def test_a_chapter_must_start_with_its_title(source):
    (source / "03-untitled.md").write_text("本文だけ\n", encoding="utf-8")
    with pytest.raises(manual.ManualError, match="03-untitled.md: 1行目"):
        manual.chapter_titles(source)


def test_the_pdf_has_the_cover_the_contents_and_every_chapter(source, tmp_path, needs_pdf):
    out = manual.build_pdf(tmp_path / "manual.pdf", source)
    text = re.sub(r"\s+", "", pdf_text(out.read_bytes()))
    for expected in ["サービス利用マニュアル", "目次", "第一章はじめに", "第二章操作", "手順"]:
        assert expected in text


def test_the_command_builds_the_pdf_or_says_in_one_line_which_image_is_missing(
    source, tmp_path, needs_pdf
):
    from tests.cli.test_cli import run

    env = {"MYNUMBER_HOME": str(tmp_path / "home")}
    built = run(["manual", "build", "--source", str(source), "--out", str(tmp_path / "m.pdf")], env)
    assert built.returncode == 0, built.stderr
    assert "マニュアルを書き出しました" in built.stdout
    assert (tmp_path / "m.pdf").read_bytes().startswith(b"%PDF")

    (source / "img" / "login.png").unlink()
    failed = run(
        ["manual", "build", "--source", str(source), "--out", str(tmp_path / "n.pdf")], env
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines() == [
        "エラー: 01-first.md: 画像がありません（make manual で撮影してください）: img/login.png"
    ]
    assert not (tmp_path / "n.pdf").exists()


# -- the real manual: names it uses are the application's -------------------------------------
def _manual_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in manual.chapters())


def test_the_manual_names_every_menu_as_the_portal_shows_it():
    from app.access import policy

    shown_as = {"Security": "セキュリティ"}  # FAB's own category, shown translated
    text = _manual_text()
    menus = {v for k, v in vars(policy).items() if k.startswith("MENU_") and isinstance(v, str)}
    assert menus, "app.access.policy has no MENU_* names"
    missing = sorted(m for m in menus if shown_as.get(m, m) not in text)
    assert missing == [], f"マニュアルにないメニュー名: {missing}"


def test_every_mynumber_command_in_the_manual_exists():
    import click

    from app.cli import mynumber_group

    text = _manual_text()
    commands = re.findall(r"mynumber((?: [a-z][a-z-]*)+)", text)
    assert len(commands) > 20
    unknown = []
    for words in {c.strip() for c in commands}:
        group: click.Command = mynumber_group
        for word in words.split():
            if not isinstance(group, click.Group):
                break  # the rest are arguments
            sub = group.get_command(click.Context(group), word)
            if sub is None:
                unknown.append(words)
                break
            group = sub
    assert unknown == [], f"存在しないコマンド: {sorted(unknown)}"
