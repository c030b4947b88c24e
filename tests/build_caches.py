"""Share compiled URL builders and templates across the many apps a test run builds.

Every test builds its own portal (``create_app``), often a public form too, and each build
repeats work whose result depends only on source text:

- werkzeug compiles a builder function for each of ~190 URL rules with ``ast`` and
  ``compile()``: over half of ``create_app``'s CPU time. The generated code depends only on
  the rule's text, host or subdomain, parsed trace and defaults.
- Jinja lexes, parses and compiles every template each new app renders. Jinja's own
  bytecode cache checks each entry against the template's source checksum.

Within one test process each is done once. Production builds its app once per process and
does not use this module.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from werkzeug.routing.rules import Rule

_compiled: dict[tuple, Callable] = {}
_original_compile_builder = Rule._compile_builder
_original_jinja_environment = Flask.create_jinja_environment


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
        builder = _compiled[key] = _original_compile_builder(self, append_unknown)
    return builder


class _ProcessBytecodeCache(BytecodeCache):
    """Compiled templates kept in memory for this process (checked against the source)."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self._store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()


_templates = _ProcessBytecodeCache()


def _jinja_environment_with_shared_bytecode(self: Flask):
    env = _original_jinja_environment(self)
    env.bytecode_cache = _templates
    return env


def install() -> None:
    """Patch werkzeug and Flask for this test process (idempotent)."""
    Rule._compile_builder = _compile_builder_once
    Flask.create_jinja_environment = _jinja_environment_with_shared_bytecode
