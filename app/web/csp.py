"""The Content-Security-Policy of both apps: our own origin only, scripts by nonce.

The public form needs nothing more. The portal adds ``style-src-attr 'unsafe-inline'``
because Flask-AppBuilder's templates still carry ``style=""`` attributes; no inline
``<style>`` element or script is allowed in either. An uploaded document is never served
from a URL of its own: the case pages embed its images as ``data:`` (``img-src``), rendered
in the audited opening (``app.web.docimages``).
"""

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

PORTAL = {**STRICT, "style-src-attr": "'unsafe-inline'"}
