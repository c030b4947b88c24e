"""The logging filter masks any 12-digit run, even inside arguments and tracebacks."""

import logging

from app.core.logsafe import MaskNumbersFilter, scrub


def test_scrub_masks_every_spelling():
    assert "123456789018" not in scrub("番号 123456789018 です")
    assert "9018" not in scrub("1234-5678-9018")
    assert "９０１８" not in scrub("１２３４５６７８９０１８")
    assert scrub("職員番号 1234567") == "職員番号 1234567"  # shorter runs stay
    assert scrub("1234567890123") == "1234567890123"  # no 12 digits of it pass the check digit
    assert "9018" not in scrub("ref 9-1234-5678-9018")  # a number inside a longer run
    for sep in ("−", "ー", ".", "/", "  ", "．", "／"):
        assert scrub(f"purpose 1234{sep}5678{sep}9018 x") == "purpose ************ x"


def test_filter_masks_args_and_exceptions(tmp_path):
    logger = logging.getLogger("mnv-test-logsafe")
    path = tmp_path / "out.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.addFilter(MaskNumbersFilter())
    logger.addHandler(handler)
    try:
        logger.warning("value=%s", "123456789018")
        try:
            raise ValueError("bad 1234 5678 9018")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = path.read_text(encoding="utf-8")
    assert "9018" not in text
    assert "************" in text
    assert "ValueError" in text
