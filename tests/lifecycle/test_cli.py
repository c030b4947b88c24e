"""The lifecycle commands as an operator runs them: one line out, one Japanese line on error."""

import uuid

import pytest

from app.models import Person
from app.vault import sealed
from tests import conftest
from tests.cli.test_cli import run
from tests.lifecycle.helpers import approved_request, population


def _env(instance, uri=None):
    return {
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": uri or instance["SQLALCHEMY_DATABASE_URI"],
    }


def _empty_database(instance, backend, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'restored.db'}"
    name = f"{instance['TEST_PG_DB']}_c{uuid.uuid4().hex[:4]}"
    conftest._create_test_database(name)
    conftest._created_dbs.append(name)
    return conftest._pg_db_url(name)


def _ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _refused(result, text):
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("エラー") and text in line and "\n" not in line, line


def test_backup_restore_and_key_backup_from_the_command_line(
    session, vault, instance, backend, tmp_path
):
    population(session, vault, n=3)
    session.commit()
    env = _env(instance)
    file = tmp_path / "b.mnvbak"
    assert "バックアップを作成しました" in _ok(run(["backup", "--out", str(file)], env))
    _refused(run(["backup", "--out", str(file)], env), "既にあります")
    _refused(run(["restore", str(file)], env), "空ではありません")
    target = _empty_database(instance, backend, tmp_path)
    out = _ok(run(["restore", str(file)], _env(instance, target)))
    assert "復元しました" in out and "再適用: 0 名" in out
    assert _ok(run(["audit", "verify"], _env(instance, target)))

    prefix = tmp_path / "recovery"
    assert "指紋" in _ok(run(["keys", "keygen", "--out", str(prefix)], env))
    assert (tmp_path / "recovery.key").stat().st_mode & 0o777 == 0o600
    keys_file = tmp_path / "k.mnvkeys"
    args = ["keys", "backup", "--out", str(keys_file), "--recipient-key", f"{prefix}.pub"]
    assert "鍵リングのバックアップを作成しました" in _ok(run(args, env))
    _refused(run(["keys", "restore", str(keys_file), "--key", f"{prefix}.key"], env), "既に存在")
    _refused(
        run(["keys", "backup", "--out", str(tmp_path / "x"), "--recipient-key", str(file)], env),
        "公開鍵ファイルの形式が不明",
    )


def test_a_restore_sets_newer_checkpoints_aside_and_the_log_signs_on(
    session, vault, instance, backend, tmp_path
):
    """A restore drill days after the backup: the checkpoint file outside the database already
    vouches for events the backup does not hold. Kept as it was (renamed, as evidence of what
    the restore left behind) and named in the restore's audit event, it no longer stands in
    front of the restored chain, which is signed and verifies again."""
    from pathlib import Path

    population(session, vault, n=2)
    session.commit()
    env = _env(instance)
    file = tmp_path / "b.mnvbak"
    _ok(run(["backup", "--out", str(file)], env))
    _ok(run(["audit", "verify"], env))  # an event the backup does not hold
    _ok(run(["audit", "checkpoint"], env))  # ... signed: the file is now ahead of the backup
    home = Path(instance["MYNUMBER_HOME"])
    before = (home / "audit_checkpoints.jsonl").read_bytes()
    target = _empty_database(instance, backend, tmp_path)
    _ok(run(["restore", str(file)], _env(instance, target)))
    aside = list(home.glob("audit_checkpoints.before-restore-*.jsonl"))
    assert len(aside) == 1 and aside[0].read_bytes() == before
    assert aside[0].stat().st_mode & 0o777 == 0o600
    _ok(run(["audit", "checkpoint"], _env(instance, target)))
    assert "完全" in _ok(run(["audit", "verify"], _env(instance, target)))


def test_return_export_verify_and_open_from_the_command_line(session, vault, instance, tmp_path):
    crowd = population(session, vault, n=2)
    env = _env(instance)
    client = tmp_path / "client"
    from app.vault.sealed import main as archive_main

    assert archive_main(["keygen", "--out", str(client)]) == 0
    archive = tmp_path / "return.mnva"
    args = ["return-export", "--out", str(archive), "--recipient-key", f"{client}.pub"]
    assert "返却データを作成しました" in _ok(run(args, env))
    assert "一致します" in _ok(run(["return-export", "--verify", str(archive)], env))
    folder = tmp_path / "opened"
    args = ["open-archive", str(archive), "--key", f"{client}.key", "--out", str(folder)]
    assert "SHA-256 を確認しました" in _ok(run(args, env))
    assert crowd[0].number in (folder / "people_staff.csv").read_text(encoding="utf-8-sig")
    # The client's own tool gives the same result without the instance, given the operator's
    # public key (handed over when the contract began).
    operator = tmp_path / "operator.pem"
    exported = _ok(run(["keys", "operator-public-key", "--out", str(operator)], env))
    assert "公開鍵の指紋（SHA-256）: " in exported
    opened = ["open", str(archive), "--key", f"{client}.key", "--out", str(tmp_path / "o2")]
    assert archive_main([*opened, "--operator-key", str(operator)]) == 0
    wrong = ["open", str(archive), "--key", str(archive), "--out", str(tmp_path / "o3")]
    assert archive_main([*wrong, "--operator-key", str(operator)]) == 1

    session.get(Person, crowd[1].id).name = "変更後"
    session.commit()
    differs = run(["return-export", "--verify", str(archive)], env)
    assert differs.returncode == 1 and "人物データの指紋が一致しません" in differs.stderr
    _refused(run(["return-export", "--out", str(tmp_path / "y")], env), "--recipient-key")


def test_disposal_execute_and_certificate_from_the_command_line(
    session, vault, instance, make_user, tmp_path
):
    crowd = population(session, vault, n=3)
    req, _, _ = approved_request(session, vault, make_user, [crowd[0].id])
    short, name, ref = req.short_id, crowd[0].name, req.id.hex[:8]
    # Our own open transaction would hold the old row versions: compaction waits for it.
    session.commit()
    env = _env(instance)
    listing = _ok(run(["disposal", "list"], env))
    assert short in listing and "承認済み" in listing and name not in listing
    out = _ok(run(["disposal", "execute", ref], env))
    assert "1 名を廃棄しました" in out
    assert "実行済み" in _ok(run(["disposal", "execute", ref], env))
    cert = tmp_path / "c.csv"
    args = ["disposal", "certificate", ref, "--format", "csv", "--out", str(cert)]
    _ok(run(args, env))
    assert str(crowd[0].id) in cert.read_text(encoding="utf-8-sig")
    _refused(run(["disposal", "execute", "zz"], env), "16進数")
    _refused(run(["disposal", "execute", "abcdef12"], env), "見つかりません")
    assert sealed.MAGIC  # the module is importable without the app


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_retention_commands(instance, session, vault):
    population(session, vault, n=1)
    env = _env(instance)
    assert "employee" in _ok(run(["retention", "rules"], env))
    out = _ok(
        run(
            ["retention", "set-rule", "--kind", "external", "--anchor", "ended_on"]
            + ["--years", "1", "--label", "委嘱終了から1年"],
            env,
        )
    )
    assert "ルールを変更しました" in out
    _refused(
        run(
            ["retention", "set-rule", "--kind", "external", "--anchor", "ended_on"]
            + ["--years", "99", "--label", "x"],
            env,
        ),
        "0〜30年",
    )
    assert "削除予定日を更新しました" in _ok(run(["retention", "recompute"], env))
