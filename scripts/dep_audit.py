"""Known-vulnerability check of the installed virtualenv (``make scan``), with pip-audit.

pip-audit asks a vulnerability database (PyPI's advisory data) about every installed
package. Three outcomes:

- a vulnerability is known → print each (package, version, advisory, fixed versions), exit 1;
- the database answered → print how many packages were checked, exit 0;
- the database could not be reached (no network, a mirror without the advisory API: pip-audit
  then reports every package as "not found" and, misleadingly, "no known vulnerabilities")
  → say so clearly and exit 0: the check is skipped, not passed.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404  # runs pip-audit from this virtualenv, fixed arguments
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SKIPPED = "脆弱性データベースに接続できないため、依存パッケージの脆弱性検査を省略しました"


@dataclass
class Outcome:
    code: int
    lines: list[str] = field(default_factory=list)


def judge(report: dict) -> Outcome:
    """Decide from pip-audit's JSON report (``-f json``)."""
    deps = report.get("dependencies", [])
    found = [d for d in deps if d.get("vulns")]
    if found:
        lines = ["依存パッケージに既知の脆弱性があります:"]
        for dep in found:
            for vuln in dep["vulns"]:
                fixed = ", ".join(vuln.get("fix_versions") or []) or "修正版なし"
                lines.append(
                    f"  {dep['name']} {dep.get('version', '?')}: {vuln['id']}（修正版: {fixed}）"
                )
        return Outcome(1, lines)
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        return Outcome(0, [f"{SKIPPED}（{len(deps)} 件すべてを照会できませんでした）"])
    skipped = len(deps) - len(audited)
    note = f"、照会できなかったもの {skipped} 件" if skipped else ""
    return Outcome(0, [f"依存パッケージ {len(audited)} 件に既知の脆弱性はありません{note}"])


def run(python: str = sys.executable, timeout: int = 300) -> Outcome:
    """Run pip-audit on the environment of ``python`` and judge its report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        try:
            proc = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments, no shell
                [
                    python,
                    "-m",
                    "pip_audit",
                    "--skip-editable",
                    "--progress-spinner",
                    "off",
                    "-f",
                    "json",
                    "-o",
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
        except subprocess.TimeoutExpired:
            return Outcome(0, [f"{SKIPPED}（{timeout} 秒以内に応答がありません）"])
        try:
            report = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            last = (proc.stderr.strip().splitlines() or ["不明なエラー"])[-1][:200]
            if proc.returncode == 0 or "Connection" in proc.stderr or "Timeout" in proc.stderr:
                return Outcome(0, [f"{SKIPPED}（{last}）"])
            return Outcome(2, [f"pip-audit を実行できませんでした: {last}"])
    return judge(report)


def main() -> int:
    outcome = run()
    for line in outcome.lines:
        print(line, file=sys.stderr if outcome.code else sys.stdout)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
