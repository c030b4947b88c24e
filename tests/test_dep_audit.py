"""The dependency check of `make scan`: a known vulnerability fails with the list; an
unreachable vulnerability database is a clear skip, never a silent pass."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "dep_audit.py"
spec = importlib.util.spec_from_file_location("dep_audit", SCRIPT)
dep_audit = importlib.util.module_from_spec(spec)
sys.modules["dep_audit"] = dep_audit  # dataclasses look their module up there
spec.loader.exec_module(dep_audit)


def test_a_known_vulnerability_fails_with_the_list():
    report = {
        "dependencies": [
            {"name": "flask", "version": "3.1.0", "vulns": []},
            {
                "name": "jinja2",
                "version": "3.1.2",
                "vulns": [
                    {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": []},
                ],
            },
        ],
        "fixes": [],
    }
    outcome = dep_audit.judge(report)
    assert outcome.code == 1
    assert any(
        "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95" in line and "3.1.3" in line for line in outcome.lines
    )


def test_every_package_unknown_means_the_database_was_not_reached():
    report = {
        "dependencies": [
            {
                "name": "flask",
                "skip_reason": "Dependency not found on PyPI and could not be audited",
            },
            {"name": "rq", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ]
    }
    outcome = dep_audit.judge(report)
    assert outcome.code == 0
    assert "接続できないため" in outcome.lines[0] and "省略" in outcome.lines[0]


def test_a_clean_answer_counts_what_was_checked():
    report = {
        "dependencies": [
            {"name": "flask", "version": "3.1.0", "vulns": []},
            {"name": "private-pkg", "skip_reason": "not on PyPI"},
        ]
    }
    outcome = dep_audit.judge(report)
    assert outcome.code == 0
    assert outcome.lines == [
        "依存パッケージ 1 件に既知の脆弱性はありません、照会できなかったもの 1 件"
    ]


def test_the_real_run_passes_or_skips_with_a_message():
    outcome = dep_audit.run(sys.executable, timeout=240)
    assert outcome.code == 0, outcome.lines
    assert outcome.lines and (
        "既知の脆弱性はありません" in outcome.lines[0] or "省略" in outcome.lines[0]
    )
