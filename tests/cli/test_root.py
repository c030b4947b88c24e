"""The root of `mynumber`: its table of commands, and loading a group's module only when the
group is invoked (so that `mynumber --help` lists everything without loading the app)."""

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import app.cli
from app.cli import COMMANDS, mynumber_group

ROOT = Path(__file__).resolve().parents[2]

# What a fresh interpreter has loaded after `mynumber ARGS`: the app's modules, and whether the
# portal's heavy dependencies came along.
PROBE = """
import json, sys
from app.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.startswith(("app.", "public_form")))
heavy = sorted(m for m in ("flask_appbuilder", "sqlalchemy") if m in sys.modules)
print(json.dumps({"app": loaded, "heavy": heavy}), file=sys.stderr)
"""


def _loaded_by(*args: str, env: dict | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})},
    )
    return json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("width", [60, 80, 200])
def test_the_listing_from_the_table_is_what_the_commands_themselves_would_show(width):
    """The summaries `mynumber --help` shows come from the table; click, asked to list the
    loaded commands, lays out exactly the same lines (a docstring changed without the table
    fails here)."""
    ctx = click.Context(mynumber_group, terminal_width=width)
    from_table = click.HelpFormatter(width=width)
    mynumber_group.format_commands(ctx, from_table)
    from_commands = click.HelpFormatter(width=width)
    click.Group.format_commands(mynumber_group, ctx, from_commands)  # imports every module
    assert from_table.getvalue() == from_commands.getvalue()
    assert "keys" in from_table.getvalue() and "open-archive" in from_table.getvalue()


def test_every_command_a_module_defines_is_in_the_table_under_its_own_name():
    ctx = click.Context(mynumber_group)
    listed = {}
    for name in mynumber_group.list_commands(ctx):
        command = mynumber_group.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
        listed[name] = command
    defined = set()
    for info in pkgutil.iter_modules(app.cli.__path__):
        module = importlib.import_module(f"app.cli.{info.name}")
        found = [v for v in vars(module).values() if isinstance(v, click.Command)]
        below = {id(c) for g in found if isinstance(g, click.Group) for c in g.commands.values()}
        defined |= {c.name for c in found if id(c) not in below}
    assert defined == set(listed) == set(COMMANDS)


def test_help_loads_no_command_module_and_not_the_app():
    loaded = _loaded_by("--help")
    assert [m for m in loaded["app"] if m.startswith("app.cli.")] == ["app.cli.errors"]
    assert "app.models" not in loaded["app"] and "app.web.factory" not in loaded["app"]
    assert loaded["heavy"] == []


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["outbox", "--help"], ["app.cli.errors", "app.cli.outbox"]),
        (["keys", "retire", "--help"], ["app.cli.common", "app.cli.errors", "app.cli.keys"]),
        (["nosuchcommand"], ["app.cli.errors"]),
    ],
)
def test_a_command_line_loads_only_its_own_groups_module(args, modules):
    """No app is built for usage text or a mistyped command (the factory is never imported)."""
    loaded = _loaded_by(*args)
    assert [m for m in loaded["app"] if m.startswith("app.cli.")] == modules
    assert "app.web.factory" not in loaded["app"]


def test_import_and_export_run_in_the_base_app_and_other_commands_in_the_portal(instance, tmp_path):
    """The data-moving commands build the app without the portal's views (start-up); a
    command that works with accounts or the audit log gets the whole portal app."""
    from tests.io.helpers import STAFF_HEADER, csv_bytes, staff_rows

    env = {
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
    }
    source = tmp_path / "staff.csv"
    source.write_bytes(csv_bytes(STAFF_HEADER, staff_rows(1, dependents=1), "utf-8-sig"))
    for args in (
        ["import", str(source), "--layout", "staff", "--dry-run"],
        ["export", "--layout", "staff", "--out", str(tmp_path / "o.csv"), "--purpose", "確認"],
    ):
        loaded = _loaded_by(*args, env=env)
        assert "app.web.base" in loaded["app"] and "app.io.imports" in loaded["app"], args
        assert not [m for m in loaded["app"] if m.startswith(("app.web.views", "app.web.factory"))]
    loaded = _loaded_by("audit", "checkpoint", env=env)
    assert "app.web.factory" in loaded["app"] and "app.web.views" in loaded["app"]
