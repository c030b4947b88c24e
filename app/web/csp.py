"""The Content-Security-Policy of both apps: our own origin only, scripts by nonce.

The public form needs nothing more. The portal adds ``style-src-attr 'unsafe-inline'``
because Flask-AppBuilder's templates still carry ``style=""`` attributes; no inline
``<style>`` element or script is allowed in either.
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

# An uploaded document (a PDF or a photo the subject sent) is shown by the browser from our
# origin: it must never run a script, submit a form or reach anything, whatever is inside.
DOCUMENT = {"sandbox": "", "default-src": "'none'"}


def document_policy(view):
    """Give a view that serves an uploaded document its own sandbox policy.

    Talisman writes the portal's policy on every response *after* the view has returned, so a
    header the view sets itself is overwritten; its per-view options are the one place the
    policy of a single endpoint can be changed (and they cover that endpoint's error pages).
    """
    view.talisman_view_options = {
        "content_security_policy": DOCUMENT,
        "content_security_policy_nonce_in": [],
    }
    return view
