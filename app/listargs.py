"""Sorting arguments of Flask-AppBuilder's list screens, checked before FAB sees them.

FAB reads ``_oc_<View>=<column>`` from the query string and hands the column to SQLAlchemy,
which refuses an unknown one only when it compiles the query: a hand-made URL (or a probe
with SQL in it) then ends in a 500. Nothing was ever injectable, but a refusal must be a
clear 400, not a system error; an unknown column is refused here instead.
"""

from __future__ import annotations

from flask import abort, current_app, request


def check_order_args() -> None:
    """400 when a list screen is asked to sort by a column it does not offer."""
    for arg, column in request.args.items():
        if not arg.startswith("_oc_"):
            continue
        name = arg[len("_oc_") :]
        appbuilder = current_app.appbuilder
        view = next((v for v in appbuilder.baseviews if type(v).__name__ == name), None)
        allowed = getattr(view, "order_columns", None) or []
        if column not in allowed:
            abort(400)
