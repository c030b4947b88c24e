"""Uploads stay in memory.

Werkzeug spools a multipart file part larger than 500 KiB to a temporary file on disk. An
uploaded CSV of My Numbers must never touch the disk (the bytes-at-rest rule), so the portal's
request class keeps every file part in memory; ``MAX_CONTENT_LENGTH`` bounds its size.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request


class InMemoryUploadRequest(Request):
    """Flask's request, with file parts in ``BytesIO`` instead of temporary files."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()
