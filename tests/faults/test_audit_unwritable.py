"""The audit table cannot be written (a trigger that refuses every insert, on SQLite and
PostgreSQL alike): reveal, export, import and KEK retirement are refused with a clear Japanese
message, and nothing is decrypted, stored or destroyed. Invariant 2: no access without its
audit event first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.access.policy import CLIENT_STAFF
from app.audit.trail import AuditUnavailable
from app.models import AuditEvent, Person
from app.people import registry
from tests import support
from tests.cli_runner import run_cli
from tests.faults.conftest import NUMBER_A, NUMBER_B
from tests.io.helpers import STAFF_HEADER, csv_bytes

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "監査ログを書き込めないため、この操作は実行されませんでした"


def _block_audit(session) -> None:
    """From now on every INSERT into audit_event fails inside the database."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            text(
                "CREATE TRIGGER fault_audit_unwritable BEFORE INSERT ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit_event is not writable'); END"
            )
        )
    else:
        session.execute(
            text(
                "CREATE FUNCTION fault_audit_unwritable() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'audit_event is not writable'; END $$"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER fault_audit_unwritable BEFORE INSERT ON audit_event "
                "FOR EACH ROW EXECUTE FUNCTION fault_audit_unwritable()"
            )
        )
    session.commit()


def _cli(instance, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
    }
    return run_cli(list(args), env, 120)


@pytest.fixture
def stored(session, vault):
    return support.add_employee_with_number(
        session, vault, NUMBER_A, name="監査 太郎", code="A0001"
    )


@pytest.fixture
def unwraps(vault, monkeypatch):
    """Counts every data-key unwrap (the only way to a plaintext number), then delegates."""
    calls: list = []
    original = vault.unwrap

    def counting(row):
        calls.append(row.id)
        return original(row)

    monkeypatch.setattr(vault, "unwrap", counting)
    return calls


def test_reveal_is_refused_and_nothing_is_decrypted(app, session, vault, stored, unwraps):
    staff = support.actor(CLIENT_STAFF)
    assert registry.reveal(session, vault, staff, stored.id, "源泉徴収票") == NUMBER_A
    assert len(unwraps) == 1  # the counter sees a real reveal
    events = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    _block_audit(session)

    with pytest.raises(AuditUnavailable) as refused:
        registry.reveal(session, vault, staff, stored.id, "源泉徴収票")
    assert str(refused.value) == MESSAGE
    assert NUMBER_A not in str(refused.value)
    assert len(unwraps) == 1  # nothing more was decrypted
    assert session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events


def test_export_is_refused_and_no_file_is_written(app, session, instance, stored, tmp_path):
    _block_audit(session)
    out = tmp_path / "export.csv"
    result = _cli(
        instance, "export", "--layout", "staff", "--out", str(out), "--purpose", "源泉徴収票"
    )
    assert result.returncode == 1
    assert MESSAGE in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    assert NUMBER_A not in result.stdout + result.stderr


def test_import_is_refused_and_nothing_is_stored(app, session, instance, tmp_path):
    _block_audit(session)
    src = tmp_path / "staff.csv"
    src.write_bytes(
        csv_bytes(
            STAFF_HEADER, [["E00001", "見本 太郎", "本人", "E00001-00", "1980/04/01", NUMBER_B]]
        )
    )
    result = _cli(instance, "import", str(src), "--layout", "staff")
    assert result.returncode == 1
    assert MESSAGE in result.stderr and "Traceback" not in result.stderr
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 0
    assert support.leaks(app, [NUMBER_B]) == []


def test_key_retirement_is_refused_and_the_old_kek_stays(app, session, vault, stored):
    from app.lifecycle import keyops

    keyops.rotate(session, vault, support.actor("SystemAdmin"))
    old_kek = vault.keys.kek(1)
    _block_audit(session)

    with pytest.raises(AuditUnavailable) as refused:
        keyops.retire(session, vault, support.actor("SystemAdmin"), 1)
    assert str(refused.value) == MESSAGE
    assert vault.keys.kek_versions() == [1, 2]
    vault.keys.reload()
    assert vault.keys.kek(1) == old_kek  # still in the file, not only in memory
