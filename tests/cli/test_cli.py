"""The `mynumber` command: init twice, key rotation and retirement, verification, one-line
errors."""

import json
import os
import uuid
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
        # An empty database of its own: the fresh key ring signs the log from its first event
        # (a database already signed by another instance's key would rightly fail to verify).
        from tests import conftest

        name = f"{instance['TEST_PG_DB']}_f{uuid.uuid4().hex[:4]}"
        conftest._create_test_database(name)
        conftest._created_dbs.append(name)
        env["DATABASE_URL"] = conftest._pg_db_url(name)
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
    signed = run(["audit", "verify"], env)
    assert signed.returncode == 0 and "監査ログは完全です" in signed.stdout
    assert Path(instance["MYNUMBER_HOME"], "audit_checkpoints.jsonl").exists()


def test_keys_list_then_retire_after_rotate(instance):
    env = _env(instance)
    ring = Path(instance["MYNUMBER_HOME"], "keyring.json")
    old_kek = json.loads(ring.read_text())["keks"]["1"]
    refused = run(["keys", "retire", "--version", "1"], env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        "エラー: KEK バージョン 1 は現在の KEK のため廃棄できません"
        "（先に mynumber keys rotate で新しい KEK を作ってください）"
    )
    assert run(["keys", "rotate"], env).returncode == 0
    listed = run(["keys", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "KEK バージョン 1（旧）: なし、バックアップ 0 件" in listed.stdout
    assert "KEK バージョン 2（現在）" in listed.stdout
    assert "廃棄できる旧 KEK: 1" in listed.stdout
    assert old_kek not in listed.stdout + listed.stderr
    retired = run(["keys", "retire", "--version", "1"], env)
    assert retired.returncode == 0, retired.stderr
    assert "KEK バージョン 1 を鍵リングから消去しました" in retired.stdout
    assert ".mnvkeys" in retired.stdout  # older key-ring backups still hold it
    assert old_kek not in ring.read_text()
    # The journal names it (by fingerprint only): `keys restore` of an older ring drops it.
    journal = Path(instance["MYNUMBER_HOME"], "disposal_journal.jsonl").read_text()
    assert '"version": 1' in journal and old_kek not in journal
    again = run(["keys", "retire", "--version", "1"], env)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1
    assert "KEK バージョン 1 は鍵リングにありません" in again.stderr
    assert run(["audit", "verify"], env).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "retire", "--version", "abc"], "エラー: '--version' は整数で指定してください"),
        (["keys", "retire"], "エラー: '--version' を指定してください"),
        (
            ["keys", "retire", "--version", "1", "--force"],
            "エラー: --force というオプションはありません",
        ),
    ],
)
def test_a_mistyped_command_line_gets_a_japanese_line_and_changes_nothing(instance, args, message):
    """click's own errors are English: the command line's mistakes are said in Japanese,
    with where to find the usage, exit status 2 (a usage error), and the ring untouched."""
    env = _env(instance)
    ring = Path(instance["MYNUMBER_HOME"], "keyring.json")
    before = ring.read_bytes()
    result = run(args, env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [message, "（使い方: mynumber keys retire --help）"]
    assert ring.read_bytes() == before


def test_keys_retire_names_the_backups_it_would_make_unrestorable_and_needs_yes(instance):
    env = _env(instance)
    backups = Path(instance["MYNUMBER_HOME"], "backups")
    made = run(["backup", "--out", str(backups / "old.mnvbak")], env)
    assert made.returncode == 0, made.stderr
    assert run(["keys", "rotate"], env).returncode == 0
    listed = run(["keys", "list"], env).stdout
    assert (
        "バックアップ 1 件" in listed
        and "1（バックアップが復元不能になるため --yes が必要）" in listed
    )
    refused = run(["keys", "retire", "--version", "1"], env)
    assert refused.returncode == 1
    assert "old.mnvbak" in refused.stdout  # what will become unrestorable
    assert "--yes" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    done = run(["keys", "retire", "--version", "1", "--yes"], env)
    assert done.returncode == 0, done.stderr
    assert "old.mnvbak" in done.stdout and "復元できなくなりました" in done.stdout


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


def test_account_add_is_the_paper_approved_first_account(instance):
    """The first ClientStaff comes from the shell, on a roster entry, with the client's paper
    approval named; the one-time password is printed once; a shared entry is refused."""
    env = _env(instance)
    added = run(
        [
            "roster",
            "add",
            "--name",
            "最初 担当",
            "--department",
            "人事部",
            "--title",
            "課長",
            "--nationality",
            "日本",
            "--approved-by",
            "発注者 人事部長",
        ],
        env,
    )
    assert added.returncode == 0, added.stderr
    entry_id = added.stdout.split("ID ")[1].split()[0]
    args = [
        "account",
        "add",
        "--username",
        "first-staff",
        "--first-name",
        "最初",
        "--last-name",
        "担当",
        "--email",
        "first@example.jp",
        "--role",
        "ClientStaff",
        "--roster-entry",
        entry_id,
        "--approved-by",
        "発注者 人事部長（書面 2026-12-01）",
    ]
    result = run(args, env)
    assert result.returncode == 0, result.stderr
    assert "初期パスワード（この一度だけ表示" in result.stdout
    again = run([*args[:2], "--username", "second-staff", *args[4:]], env)
    assert again.returncode == 1 and "既に別のアカウント（first-staff）" in again.stderr
