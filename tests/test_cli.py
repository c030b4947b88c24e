"""The `mynumber` command: init twice, key rotation, verification, one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import run_cli


def run(args, env_extra, timeout=180):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env_extra}
    return run_cli(args, env, timeout)


def _env(instance):
    return {
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
    }


def test_init_on_a_fresh_home_then_again(tmp_path, backend, instance):
    home = tmp_path / "fresh"
    env = {"MYNUMBER_HOME": str(home)}
    if backend == "postgres":
        env["DATABASE_URL"] = instance["SQLALCHEMY_DATABASE_URI"]  # an initialised copy: fine
    first = run(["init"], env)
    assert first.returncode == 0, first.stderr
    if backend == "sqlite":
        assert "初期パスワード" in first.stdout
    assert (home / "keyring.json").stat().st_mode & 0o777 == 0o600
    assert home.stat().st_mode & 0o777 == 0o700
    second = run(["init"], env)
    assert second.returncode == 0, second.stderr
    assert "初期パスワード" not in second.stdout  # admin exists: nothing printed again
    verify = run(["audit", "verify"], env)
    assert verify.returncode == 0, verify.stderr


def test_keys_rotate_and_checkpoint(instance):
    env = _env(instance)
    rotated = run(["keys", "rotate"], env)
    assert rotated.returncode == 0, rotated.stderr
    assert "バージョン 2" in rotated.stdout
    cp = run(["audit", "checkpoint"], env)
    assert cp.returncode == 0, cp.stderr
    assert run(["audit", "verify"], env).returncode == 0
    assert Path(instance["MYNUMBER_HOME"], "audit_checkpoints.jsonl").exists()


def test_errors_are_one_japanese_line_without_traceback(tmp_path):
    bad_db = run(
        ["audit", "verify"],
        {
            "MYNUMBER_HOME": str(tmp_path / "none"),
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x",
        },
    )
    assert bad_db.returncode == 1
    assert "Traceback" not in bad_db.stderr
    assert bad_db.stderr.strip().startswith("エラー")
    weak = run(["init", "--admin-password", "short"], {"MYNUMBER_HOME": str(tmp_path / "w")})
    assert weak.returncode != 0 and "12文字以上" in weak.stderr
    assert "Traceback" not in weak.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_reachable_through_flask_too(instance):
    env = {**_env(instance), "FLASK_APP": "app"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "mynumber", "audit", "verify"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
