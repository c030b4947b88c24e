"""A file the portal hands out: one response shape for every download.

The name is given twice, as browsers need it: ASCII in ``filename`` (non-ASCII dropped, with a
fallback) and the real, Japanese name in ``filename*`` (RFC 6266 / 5987). ``nosniff`` keeps a
browser from reading a PDF or CSV as anything else.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response


def attachment(data: bytes, name: str, mime: str) -> Response:
    """``data`` as a download called ``name`` (``mime`` may carry a charset)."""
    response = Response(data, mimetype=mime.split(";")[0])
    response.headers["Content-Type"] = mime
    ascii_name = name.encode("ascii", "ignore").decode() or "download"
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
