"""The shape of the code, as rules a change cannot quietly break (docs/architecture.md).

- the import-linter contracts in pyproject.toml hold: layers, the public form's forbidden
  modules, no cycle among the modules of any package;
- no import cycle anywhere, counting imports inside functions too;
- imports inside functions are few, each for an optional heavy dependency and saying so;
- no module is longer than a reader can hold (800 lines).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "public_form")
MAX_LINES = 800
MAX_FUNCTION_IMPORTS = 15


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _function_imports(path: Path) -> list[tuple[int, str]]:
    """(line, source) of every import inside a function (a module-level ``try`` or ``if``
    around an optional import is still module level)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found |= {
                inner.lineno
                for inner in ast.walk(node)
                if isinstance(inner, ast.Import | ast.ImportFrom)
            }
    # The reason may sit on the line itself or on the comment line just above it.
    return [(n, lines[n - 2].strip() + " " + lines[n - 1].strip()) for n in sorted(found)]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(ROOT))
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_the_import_contracts_hold():
    """In a process of its own: import-linter configures logging (and would silence the
    application's loggers for every later test in this process)."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, "lint-imports で契約違反が見つかりました:\n" + result.stdout


def test_no_import_cycle_anywhere(graph):
    cycles = [
        scc
        for scc in _strongly_connected(graph)
        if len(scc) > 1 or scc[0] in graph.find_modules_directly_imported_by(scc[0])
    ]
    assert cycles == []


def test_function_level_imports_are_few_and_each_says_why():
    found = [(path, line, text) for path in _sources() for line, text in _function_imports(path)]
    unexplained = [f"{p.relative_to(ROOT)}:{n}: {t}" for p, n, t in found if "#" not in t]
    # (the text is the line above and the import: a reason comment in either counts)
    assert unexplained == [], "関数内の import には理由のコメントが必要です"
    assert len(found) <= MAX_FUNCTION_IMPORTS, [
        f"{p.relative_to(ROOT)}:{n}: {t}" for p, n, t in found
    ]


def test_no_module_is_longer_than_800_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _sources()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (the graph has a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    """The rule above can fail: two modules importing each other are one component."""
    package = tmp_path / "knot"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from knot import b\n")
    (package / "b.py").write_text("from knot import a\n")
    (package / "c.py").write_text("from knot import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    knot = grimp.build_graph("knot", cache_dir=None)
    components = [c for c in _strongly_connected(knot) if len(c) > 1]
    assert components == [["knot.a", "knot.b"]]
