"""`mynumber import / export / demo`: exit codes and one-line errors.

A kill mid-import is in tests/faults/test_killed_processes.py."""

import os
import sqlite3
from pathlib import Path

import pytest

from tests.cli_runner import run_cli
from tests.io.helpers import STAFF_HEADER, csv_bytes, numbers, staff_rows

ROOT = Path(__file__).resolve().parents[2]


def env_for(instance):
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
    }


def mynumber(instance, *args, timeout=300):
    return run_cli(list(args), env_for(instance), timeout)


def table_counts(instance):
    """Committed rows, read from outside the application."""
    url = instance["SQLALCHEMY_DATABASE_URI"]
    tables = ("person", "data_key", "my_number_record")
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)


def test_import_then_export(instance, tmp_path):
    rows = staff_rows(3, dependents=1, seed=71)
    src = tmp_path / "staff.csv"
    src.write_bytes(csv_bytes(STAFF_HEADER, rows, "cp932"))
    checked = mynumber(instance, "import", str(src), "--layout", "staff", "--dry-run")
    assert checked.returncode == 0, checked.stderr
    assert "取り込めます: 新規 6 人" in checked.stdout
    assert table_counts(instance) == (0, 0, 0)
    done = mynumber(instance, "import", str(src), "--layout", "staff")
    assert done.returncode == 0, done.stderr
    assert "取り込みました: 新規 6 人" in done.stdout
    out = tmp_path / "out.csv"
    exported = mynumber(
        instance, "export", "--layout", "staff", "--out", str(out), "--purpose", "年末調整"
    )
    assert exported.returncode == 0, exported.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    lines = out.read_bytes().decode("utf-8-sig").splitlines()
    assert sorted(lines[1:]) == sorted(",".join(r) for r in rows)
    again = mynumber(instance, "export", "--layout", "staff", "--out", str(out), "--purpose", "x")
    assert again.returncode == 1 and "上書きしません" in again.stderr
    cp932 = tmp_path / "out932.csv"
    assert (
        mynumber(
            instance,
            "export",
            "--layout",
            "staff",
            "--out",
            str(cp932),
            "--purpose",
            "x",
            "--encoding",
            "cp932",
        ).returncode
        == 0
    )
    assert cp932.read_bytes().decode("cp932").splitlines()[1:] == lines[1:]
    assert mynumber(instance, "audit", "verify").returncode == 0
    no_purpose = mynumber(instance, "export", "--layout", "staff", "--out", str(tmp_path / "x.csv"))
    assert no_purpose.returncode != 0 and not (tmp_path / "x.csv").exists()


def test_import_problems_exit_1_with_every_line_and_no_number(instance, tmp_path):
    n = numbers(3, seed=72)
    rows = [
        ["E1", "見本 太郎", "本人", "E1-00", "1980/04/01", n[0]],
        ["E1", "見本 花子", "扶養家族", "E1-01", "2010/02/30", n[1]],
        [
            "E2",
            "見本 次郎",
            "本人",
            "E2-00",
            "1981/01/01",
            n[2][:11] + str((int(n[2][11]) + 1) % 10),
        ],
    ]
    src = tmp_path / "bad.csv"
    src.write_bytes(csv_bytes(STAFF_HEADER, rows))
    result = mynumber(instance, "import", str(src), "--layout", "staff")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("行 ")]
    assert lines == [
        "行 3: 生年月日: 存在しない日付です",
        "行 4: マイナンバー: 番号の数字がどこか違っています。お手元の書類と見比べて、12桁を入力し直してください",
    ]
    assert "何も取り込んでいません" in result.stderr and "Traceback" not in result.stderr
    assert not any(x[:8] in result.stderr + result.stdout for x in n)
    assert table_counts(instance) == (0, 0, 0)
    unknown = mynumber(instance, "import", str(src), "--layout", "nothing")
    assert unknown.returncode == 1 and "様式「nothing」はありません" in unknown.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_demo_loads_through_the_import_and_twice_is_harmless(instance):
    first = mynumber(instance, "demo", "--households", "20", "--externals", "10")
    assert first.returncode == 0, first.stderr
    assert "外部委員等: 10 行を確認し、取り込みました: 新規 10 人" in first.stdout
    assert first.stdout.count("初期パスワード") == 3
    counts = table_counts(instance)
    assert counts[0] > 30
    second = mynumber(instance, "demo", "--households", "20", "--externals", "10")
    assert (
        second.returncode == 0 and "スキップ 10 人" in second.stdout and "作成済み" in second.stdout
    )
    assert table_counts(instance) == counts
