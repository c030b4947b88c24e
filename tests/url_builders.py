"""Reuse werkzeug's compiled URL builders across the many portals a test run builds.

Every test builds its own portal (``create_app``), and werkzeug compiles a builder function
for each of ~200 URL rules with ``ast`` and ``compile()``: over half of ``create_app``'s CPU
time, repeated ~1,500 times a run. The generated code depends only on the rule's text, host
or subdomain, parsed trace and defaults, so one test process compiles each distinct rule once.
Production builds its app once per process and does not use this.
"""

from __future__ import annotations

from collections.abc import Callable

from werkzeug.routing.rules import Rule

_compiled: dict[tuple, Callable] = {}
_original = Rule._compile_builder


def _key(rule: Rule, append_unknown: bool) -> tuple:
    """Everything the generated builder's code depends on."""
    defaults = tuple(sorted((k, repr(v)) for k, v in (rule.defaults or {}).items()))
    return (
        append_unknown,
        rule.rule,
        rule.host,
        rule.subdomain,
        rule.map.host_matching,
        rule.merge_slashes,
        tuple(rule._trace),
        defaults,
    )


def _compile_builder_once(self: Rule, append_unknown: bool = True) -> Callable:
    key = _key(self, append_unknown)
    builder = _compiled.get(key)
    if builder is None:
        builder = _compiled[key] = _original(self, append_unknown)
    return builder


def install() -> None:
    """Patch werkzeug for this test process (idempotent)."""
    Rule._compile_builder = _compile_builder_once
