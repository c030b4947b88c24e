"""A process killed with SIGKILL in the middle of its transaction leaves the database as it
was or fully done, never half-way, and running the command again completes it.

- Import: ``mynumber import`` of a large file, killed while it writes its batches.
- Disposal: ``mynumber disposal execute``, killed inside its transaction (after the key ring
  and the journal recorded the disposal, before the commit): the people are still in the
  database, but their data keys are on the shred list, so nothing of them can be decrypted;
  the re-run completes the disposal.

No hook in the application: the tests watch from outside (the command's progress output,
the disposal journal, the database's own write lock) and kill at that moment.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.access.policy import ShellActor
from app.io import imports, layouts
from app.models import AuditEvent, DataKey, DisposalRequest, MyNumberRecord, Person
from app.vault.envelopes import ShreddedError
from tests.io.helpers import STAFF_HEADER, csv_bytes, numbers, staff_rows, stream
from tests.lifecycle.helpers import approved_request

ROOT = Path(__file__).resolve().parents[2]
PERSON_TABLES = ("person", "data_key", "my_number_record", "name_change", "export_item")


def _env(instance) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
    }


def _mynumber(instance, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env=_env(instance),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )


def _run(instance, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env=_env(instance),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def _counts(instance) -> dict[str, int]:
    """Committed rows, read from outside the application."""
    url = instance["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                for t in PERSON_TABLES
            }
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in PERSON_TABLES
        }


def _kill(proc: subprocess.Popen) -> None:
    assert proc.poll() is None, "the command finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_killed_import_leaves_no_person_and_no_partial_row_then_reruns(instance, tmp_path):
    first = tmp_path / "first.csv"
    first.write_bytes(csv_bytes(STAFF_HEADER, staff_rows(5, dependents=1, seed=73)))
    assert _run(instance, "import", str(first), "--layout", "staff").returncode == 0
    before = _counts(instance)
    assert before["person"] == before["data_key"] == before["my_number_record"] == 10
    big = tmp_path / "big.csv"
    rows = [
        [f"K{i:06d}", f"見本 {i}", "本人", f"K{i:06d}-00", "1970/01/01", n]
        for i, n in enumerate(numbers(6000, seed=81))
    ]
    big.write_bytes(csv_bytes(STAFF_HEADER, rows))
    proc = _mynumber(instance, "import", str(big), "--layout", "staff")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or "取り込み中" in line:  # the first batch is being written
                break
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _counts(instance) == before  # no new people, keys or numbers, nothing half-way
    verify = _run(instance, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    # Nothing half-done blocks the next import (locks, unique index entries, WAL frames).
    again = _run(instance, "import", str(big), "--layout", "staff")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    done = _counts(instance)
    assert done["person"] == done["data_key"] == done["my_number_record"] == len(rows) + 10
    _assert_no_leak(instance, [row[5] for row in rows[::500]])


def _assert_no_leak(instance, sample: list[str]) -> None:
    """No plaintext number anywhere the killed and the re-run import wrote."""
    from app.models import db
    from app.web.factory import create_app
    from tests.support import leaks

    app = create_app(instance)
    try:
        assert leaks(app, sample) == []
    finally:
        with app.app_context():
            db.engine.dispose()


def _population(session, vault, households: int) -> list:
    """Employees and dependents through the real import (fast: COPY / executemany)."""
    data = csv_bytes(STAFF_HEADER, staff_rows(households, dependents=1, seed=83))
    report = imports.import_csv(
        session,
        vault,
        ShellActor(name="cli:test"),
        stream(data),
        layouts.get(session, "staff"),
    )
    assert report.committed, report.problems[:3]
    return list(session.execute(select(Person.id)).scalars())


def _write_lock_held(instance) -> bool:
    """True while another process holds the database's write lock mid-transaction."""
    url = instance["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'data_key' AND l.mode = 'RowExclusiveLock' "
                "AND l.pid <> pg_backend_pid()"
            ).fetchone()[0]
        )


def _journal_names(app, request_id) -> bool:
    path = Path(app.config["DISPOSAL_JOURNAL_FILE"])
    if not path.exists():
        return False
    return any(
        json.loads(line).get("request") == str(request_id)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )


def test_killed_disposal_is_unchanged_or_done_and_keys_shredded_are_unreadable(
    app, session, vault, instance, make_user
):
    ids = _population(session, vault, households=800)
    req, _operator, _staff = approved_request(session, vault, make_user, ids, scope="all")
    session.commit()
    before = _counts(instance)
    records = session.execute(select(MyNumberRecord)).scalars().all()
    sample = records[:: max(1, len(records) // 20)]

    sample_people = [r.person_id for r in sample]
    watched = session.execute(
        select(DataKey.id).where(DataKey.person_id == sample_people[-1])
    ).scalar_one()
    request_id = req.id
    session.commit()
    session.close()  # hold no transaction: compaction waits for older ones to end
    proc = _mynumber(instance, "disposal", "execute", str(request_id))
    try:
        deadline = time.monotonic() + 120
        caught = False
        while time.monotonic() < deadline and proc.poll() is None:
            # Inside the transaction: the disposal is written outside the database (journal,
            # key ring's shred list) and the process holds the database's write lock.
            vault.keys.reload()
            if (
                str(watched) in vault.keys.shredded()
                and _journal_names(app, request_id)
                and _write_lock_held(instance)
            ):
                caught = True
                break
            time.sleep(0.01)
        assert caught, proc.stderr.read() if proc.poll() is not None else "never caught"
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()

    session.rollback()
    session.expire_all()
    after = _counts(instance)
    state = session.get(DisposalRequest, request_id).status
    if state == "approved":
        # Unchanged in the database, nothing half-way …
        assert after == before
        assert (
            session.execute(
                select(AuditEvent.action).where(AuditEvent.action == "disposal.executed")
            ).first()
            is None
        )
        # … but the keys were shredded first: nothing of these people can be read any more.
        vault.keys.reload()
        shredded = vault.keys.shredded()
        for person_id in sample_people:
            key = session.execute(
                select(DataKey).where(DataKey.person_id == person_id)
            ).scalar_one()
            assert str(key.id) in shredded
            with pytest.raises(ShreddedError):
                vault.unwrap(key)
    else:
        assert state == "executed"
        assert after["data_key"] == 0 and after["my_number_record"] == 0

    # Running it again completes the disposal; the chain still verifies.
    session.commit()
    session.close()
    again = _run(instance, "disposal", "execute", str(request_id))
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    session.expire_all()
    assert session.get(DisposalRequest, request_id).status == "executed"
    final = _counts(instance)
    assert final["data_key"] == 0 and final["my_number_record"] == 0
    assert final["person"] == before["person"]  # id-only tombstones
    verify = _run(instance, "audit", "verify")
    assert verify.returncode == 0, verify.stderr


def test_a_disposal_killed_in_its_key_closure_is_closed_by_the_next_init(
    app, session, vault, instance, make_user, tmp_path
):
    """``mynumber disposal execute`` killed once its key closure has put a new KEK in the ring
    (rotating, retiring or destroying old key-ring backups): the disposal stands, and the
    next ``mynumber init`` finishes the closure — one current KEK, every older one retired,
    the backup from before unreadable, the audit chain intact."""
    from app.access.policy import ShellActor as Shell
    from app.lifecycle import backup

    ids = _population(session, vault, households=400)
    old = tmp_path / "before.mnvbak"
    backup.create_backup(session, vault, Shell(name="cli:test"), old)
    req, _operator, _staff = approved_request(session, vault, make_user, ids[:2])
    request_id = req.id
    session.commit()
    session.close()
    ring = Path(vault.keys.path)
    proc = _mynumber(instance, "disposal", "execute", str(request_id))
    try:
        deadline = time.monotonic() + 120
        caught = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                current = json.loads(ring.read_text(encoding="utf-8"))["current_kek"]
            except (OSError, ValueError):
                current = 1
            if current > 1:  # the closure has begun: a new KEK is in the ring
                caught = True
                break
            time.sleep(0.005)
        assert caught, proc.stderr.read() if proc.poll() is not None else "never caught"
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()

    session.expire_all()
    req = session.get(DisposalRequest, request_id)
    assert req.status == "executed" and req.keys_closed_at is None
    again = _run(instance, "init")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    session.expire_all()
    req = session.get(DisposalRequest, request_id)
    assert req.keys_closed_at is not None
    vault.keys.reload()
    versions = vault.keys.kek_versions()
    assert len(versions) == 1 and versions[0] >= 2
    closure = json.loads(req.key_closure)
    assert closure["retired_kek_versions"] == list(range(1, versions[0]))
    assert old.name in closure["unreadable_backups"]
    with pytest.raises(backup.BackupError, match="廃棄に伴い破棄済み"):
        backup.refuse_retired_backup(vault.keys, old)
    # Every person still stored opens under the one KEK left.
    for key in session.execute(select(DataKey)).scalars():
        vault.unwrap(key)
    verify = _run(instance, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
