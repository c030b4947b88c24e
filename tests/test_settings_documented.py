"""The README's settings table names every setting a deployment can give: each environment
variable ``app/settings.py`` reads appears in it (a new setting without a line fails here)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_environment_variable_is_in_the_readme():
    source = (ROOT / "app" / "settings.py").read_text(encoding="utf-8")
    names = set(re.findall(r'(?:environ\.get|_bool|setting)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    names |= set(re.findall(r'\("[A-Z_]+", "(MYNUMBER_[A-Z_]+)", "', source))  # IDENTITY
    names |= {"MYNUMBER_ADMIN_PASSWORD"}  # read by `mynumber init`
    assert len(names) > 60
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert missing == []
