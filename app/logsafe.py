"""A second line of defence: no 12-digit run ever reaches a log line.

The code never logs a number on purpose; this filter masks any run of 12 digits (with or
without separators, ASCII or full-width) in the message and its arguments, in case a library
or an exception text carries one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re

_TWELVE = re.compile(
    r"(?<![0-9０-９])[0-9０-９]{4}[\s\-－]?[0-9０-９]{4}[\s\-－]?[0-9０-９]{4}(?![0-9０-９])"
)
MASK = "************"


def scrub(text: str) -> str:
    """Replace every 12-digit run in ``text`` by asterisks."""
    return _TWELVE.sub(MASK, text)


class MaskNumbersFilter(logging.Filter):
    """Formats the record once, scrubs it, and freezes the result as the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install(log_file: str | None = None, level: int = logging.INFO) -> None:
    """Attach the filter to every root handler (and a file handler when asked)."""
    root = logging.getLogger()
    root.setLevel(level)
    if log_file and not any(
        isinstance(h, logging.FileHandler) and h.baseFilename == log_file for h in root.handlers
    ):
        # Created 0600 whatever the umask; a log an older version left 0644 is tightened.
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, 0o600)
        os.close(fd)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if not any(isinstance(f, MaskNumbersFilter) for f in handler.filters):
            handler.addFilter(MaskNumbersFilter())


def has_number_like(text: str | None) -> bool:
    """True when ``text`` holds a 12-digit run (a number typed where none belongs)."""
    return bool(text) and _TWELVE.search(text) is not None
