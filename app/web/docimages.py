"""The images of an opened document as ``data:`` URIs for the case pages.

Documents are shown inside the page that the audited opening rendered, never served from a
URL of their own: no second request can fetch one without that opening, and nothing is
offered as a download (a 住民票 PDF arrives as page images, ``app.collection.opening``).
The portal's CSP allows ``img-src data:`` for exactly this.
"""

from __future__ import annotations

import base64


def data_uris(doc) -> list[str]:
    """One ``data:image/jpeg`` URI per image the operator should see (a photo, or each
    rendered page of a PDF)."""
    return ["data:image/jpeg;base64," + base64.b64encode(i).decode("ascii") for i in doc.images]


def documents(subject) -> list[tuple]:
    """``(document, [data URIs])`` for every document of a subject, for ``_documents.html``."""
    return [(doc, data_uris(doc)) for doc in subject.documents]
