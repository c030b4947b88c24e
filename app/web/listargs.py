"""Sorting and paging arguments of Flask-AppBuilder's list screens, checked before FAB sees
them.

FAB reads ``_oc_<View>=<column>``, ``page_<View>=<n>`` and ``psize_<View>=<n>`` from the query
string and hands them to SQLAlchemy: an unknown column fails only when the query compiles, and
a negative page becomes a negative OFFSET that PostgreSQL refuses. A hand-made URL (or a probe
with SQL in it) then ends in a 500. Nothing was ever injectable, but a refusal must be a clear
400, not a system error; such arguments are refused here instead.
"""

from __future__ import annotations

from flask import abort, current_app, request
from werkzeug.exceptions import BadRequest

MAX_PAGE_SIZE = 1000


def _whole(value: str, low: int, high: int) -> bool:
    return value.isascii() and value.isdigit() and low <= int(value) <= high


def check_list_args() -> None:
    """400 for a sort column a list screen does not offer, or a page or page size that is not
    a sensible whole number."""
    for arg, value in request.args.items():
        if arg.startswith("_oc_"):
            name = arg[len("_oc_") :]
            view = next(
                (v for v in current_app.appbuilder.baseviews if type(v).__name__ == name), None
            )
            if value not in (getattr(view, "order_columns", None) or []):
                abort(400)
        elif arg.startswith("page_") and not _whole(value, 0, 10**9):
            abort(400)
        elif arg.startswith("psize_") and not _whole(value, 1, MAX_PAGE_SIZE):
            abort(400)


class UnknownAction(BadRequest):
    """A list or show action that the screen does not have (a hand-made URL or form)."""

    japanese = "この画面にはその操作はありません。画面を読み込み直してから操作してください。"


def check_action_name() -> None:
    """400 for an action name the screen does not offer.

    FAB's ``/action/<name>/<pk>`` and ``/action_post`` look the name up in the view's actions
    and call ``.func`` on the result without checking it: an unknown name (every name, on a
    screen without actions) is an ``AttributeError`` and a 500."""
    endpoint = request.endpoint or ""
    if not endpoint.endswith((".action", ".action_post")):
        return
    view = getattr(current_app.view_functions.get(endpoint), "__self__", None)
    if endpoint.endswith(".action"):
        name = (request.view_args or {}).get("name")
    else:
        name = request.form.get("action")
    if view is None or name not in (getattr(view, "actions", None) or {}):
        raise UnknownAction()
