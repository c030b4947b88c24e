"""Insider attacks on disposal: no restore of any backup the product made — database backup
× key-ring backup, with or without the disposal journal and the key ring's shred lists —
brings a disposed person's number or name back.

The attack (the operations manual's restore drill): ``keys restore`` of a key-ring backup
taken before a disposal, then ``restore`` of a database backup from before it. Before the
key closure, the old key ring still held the KEK that wrapped the disposed people's data
keys in the old database backup (and sealed their names in it): everything came back, even
from the newest automatic key-ring backup when the disposal ran without a recovery key.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from app.access.policy import ShellActor
from app.jobs.lifecycle import daily_backup
from app.lifecycle import backup, certificate, keyops
from app.models import AuditEvent, DataKey, DisposalRequest, Person, VaultUser, db
from app.vault import sealed
from app.vault.keyring import FileKeyRing
from tests.cli_runner import run_cli
from tests.lifecycle.helpers import (
    approved_request,
    export_rows,
    fresh_target,
    population,
    user_actor,
)
from tests.support import leaks, written_bytes

CLI = ShellActor(name="cli:test")


def _env(instance, recovery_pub: Path | None, uri: str | None = None, home=None) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "MYNUMBER_HOME": str(home or instance["MYNUMBER_HOME"]),
        "DATABASE_URL": uri or instance["SQLALCHEMY_DATABASE_URI"],
    }
    if recovery_pub is not None:
        env["MYNUMBER_RECOVERY_PUBLIC_KEY"] = str(recovery_pub)
    return env


def _names_left(app, gone) -> list[str]:
    """Where a disposed person's name, kana or address is still written (every file of the
    instance, every PostgreSQL row)."""
    hits = []
    for label, data in written_bytes(app):
        for someone in gone:
            for what, text in (("name", someone.name), ("kana", someone.kana)):
                for encoding in ("utf-8", "utf-16-le"):
                    if text.encode(encoding) in data:
                        hits.append(f"{label}: {someone.code} {what}")
            if someone.address.encode() in data:
                hits.append(f"{label}: {someone.code} address")
    return hits


def _strip_outside_records(ring_path: Path) -> None:
    """An insider edits the restored key ring: no shred list, no disposed people, no list of
    retired KEKs. What stays unreadable must stay so by cryptography alone."""
    data = json.loads(ring_path.read_text(encoding="utf-8"))
    for section in ("shredded", "retired"):
        data.pop(section, None)
    data.get("extra", {}).pop("disposed_people", None)
    ring_path.write_text(json.dumps(data), encoding="utf-8")
    ring_path.chmod(0o600)


def _dispose_from_the_command_line(session, vault, make_user, instance, gone, recovery_pub):
    """A request approved by the client, executed as the manual says: ``mynumber disposal
    execute`` (the execution, then the key closure)."""
    req, _operator, staff = approved_request(session, vault, make_user, [s.id for s in gone])
    req_id, staff_id = req.id, staff.id
    session.commit()
    session.close()  # no open transaction: compaction waits for older ones to end
    result = run_cli(["disposal", "execute", req_id.hex], _env(instance, recovery_pub), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "旧 KEK" in result.stdout, result.stdout
    return session.get(DisposalRequest, req_id), session.get(VaultUser, staff_id)


@pytest.mark.parametrize("recovery_key", [True, False], ids=["recovery-key", "no-recovery-key"])
def test_no_pair_of_backups_restores_a_disposed_person(
    session, vault, app, instance, backend, make_user, tmp_path, recovery_key
):
    private_text, public_text = sealed.generate_recipient()
    pub = tmp_path / "recovery.pub"
    pub.write_text(public_text, encoding="utf-8")
    private = sealed.load_private(private_text)
    app.config["RECOVERY_PUBLIC_KEY"] = str(pub)  # configured until the disposal (or always)
    journal = Path(app.config["DISPOSAL_JOURNAL_FILE"])
    crowd = population(session, vault, n=6)
    gone, kept = crowd[:3], crowd[3:]

    # Every kind of backup, before the disposal: manual ones written elsewhere, a rotation
    # that left the old KEK in the ring, then the automatic daily backup (database + ring).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db_files = {"manual-before": elsewhere / "before.mnvbak"}
    ring_files = {"manual-before": elsewhere / "before.mnvkeys"}
    backup.create_backup(session, vault, CLI, db_files["manual-before"])
    backup.backup_keyring(
        session, vault.keys, CLI, ring_files["manual-before"], sealed.load_public(public_text)
    )
    keyops.rotate(session, vault, CLI)
    first = daily_backup()
    db_files["daily-before"], ring_files["daily-before"] = (
        Path(first["backup"]),
        Path(first["keyring"]),
    )
    assert all(p.exists() for p in (*db_files.values(), *ring_files.values()))

    req, staff = _dispose_from_the_command_line(
        session, vault, make_user, instance, gone, pub if recovery_key else None
    )
    if not recovery_key:
        app.config["RECOVERY_PUBLIC_KEY"] = None
    after = daily_backup()
    db_files["daily-after"] = Path(after["backup"])
    if after["keyring"]:
        ring_files["daily-after"] = Path(after["keyring"])
    db.session.expire_all()
    req = db.session.get(DisposalRequest, req.id)
    closure = json.loads(req.key_closure)
    db_files["disposal"] = Path(app.config["BACKUP_DIR"]) / next(
        p.name
        for p in Path(app.config["BACKUP_DIR"]).glob("*.mnvbak")
        if p not in db_files.values()
    )
    fresh_rings = [
        p for p in Path(app.config["BACKUP_DIR"]).glob("*.mnvkeys") if p not in ring_files.values()
    ]
    assert len(fresh_rings) == (1 if recovery_key else 0)
    if fresh_rings:
        ring_files["disposal"] = fresh_rings[0]

    # The key-ring backups from before are gone, and the certificate (PDF and CSV) says so,
    # with the database backups that can no longer be opened and the KEKs destroyed.
    assert not ring_files["manual-before"].exists() and not ring_files["daily-before"].exists()
    assert closure["retired_kek_versions"] == [1, 2] and vault.keys.kek_versions() == [3]
    assert set(closure["destroyed_keyring_backups"]) == {
        ring_files["manual-before"].name,
        ring_files["daily-before"].name,
    }
    assert set(closure["unreadable_backups"]) == {
        db_files["manual-before"].name,
        db_files["daily-before"].name,
    }
    _, csv_bytes, _ = certificate.download(
        db.session,
        vault,
        user_actor(staff, "ClientStaff"),
        req.id,
        "csv",
        client="見本",
        operator="受託",
    )
    text = csv_bytes.decode("utf-8-sig")
    assert "破棄した KEK のバージョン,1、2" in text
    for name in (*closure["destroyed_keyring_backups"], *closure["unreadable_backups"]):
        assert name in text
    closed = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "disposal.keys_closed")
    ).scalar_one()
    assert db_files["manual-before"].name in closed.details
    assert db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "keys.backup_destroyed")
    ).scalar_one()
    expected = export_rows(db.session, vault)
    assert {row[0] for row in expected["staff"]} == {s.code for s in kept}
    live_ring = Path(vault.keys.path)

    # Every key ring an operator can still lay hands on × every database backup, with the
    # journal, and without it and without the ring's own shred lists.
    sources = {"live": None, **{k: v for k, v in ring_files.items() if v.exists()}}
    restored = refused = 0
    newest = None
    for source_name, source in sources.items():
        for outside in ("journal", "nothing"):
            home = tmp_path / f"home-{source_name}-{outside}"
            home.mkdir(mode=0o700)
            if outside == "journal":
                shutil.copy(journal, home / "disposal_journal.jsonl")
            ring = home / "keyring.json"
            if source is None:
                shutil.copy(live_ring, ring)
            else:
                backup.restore_keyring(
                    source, private, FileKeyRing(ring), home / "disposal_journal.jsonl"
                )
            if outside == "nothing":
                _strip_outside_records(ring)
            with ExitStack() as stack:
                target = stack.enter_context(fresh_target(instance, backend, home=home))
                for db_name, db_file in db_files.items():
                    try:
                        backup.restore(
                            db.session,
                            target.extensions["mynumber_vault"],
                            CLI,
                            db_file,
                            journal=target.config["DISPOSAL_JOURNAL_FILE"],
                            upgrade=_upgrade(target),
                        )
                    except backup.BackupError as exc:
                        refused += 1
                        assert db_name.endswith("before"), (source_name, db_name, str(exc))
                        assert "復元できません" in str(exc) or "復号できません" in str(exc)
                        assert backup.database_is_empty(db.engine)
                        continue
                    restored += 1
                    assert not db_name.endswith("before"), (source_name, outside, db_name)
                    where = f"{source_name}/{outside}/{db_name}"
                    assert leaks(target, [s.number for s in gone]) == [], where
                    assert _names_left(target, gone) == [], where
                    statuses = dict(db.session.execute(select(Person.id, Person.status)).all())
                    assert [statuses[s.id] for s in gone] == ["disposed"] * 3, where
                    assert not db.session.execute(
                        select(DataKey).where(DataKey.person_id.in_([s.id for s in gone]))
                    ).first()
                    # The search itself finds what is there: the kept people's names.
                    assert len(_names_left(target, kept)) >= len(kept), where
                    if db_name == "daily-after" and source_name == list(sources)[-1]:
                        newest = export_rows(db.session, target.extensions["mynumber_vault"])
                    # The next database backup needs an empty database again.
                    stack.close()
                    target = stack.enter_context(fresh_target(instance, backend, home=home))
    assert refused == 2 * 2 * len(sources) and restored == 2 * 2 * len(sources)
    # The newest pair brings every kept person back, numbers included.
    assert newest == expected


def _upgrade(target):
    from flask_migrate import upgrade

    directory = target.extensions["migrate"].directory
    return lambda: upgrade(directory=directory)


def test_the_manual_restore_drill_refuses_backups_from_before_a_disposal(
    session, vault, app, instance, backend, make_user, tmp_path
):
    """The drill as the manual describes it, from the command line, with copies an insider
    kept of the backups from before the disposal: the old key ring has its KEK dropped (the
    journal names it), the old database backup cannot be opened; both are plain Japanese
    refusals, and the disposal's key closure is on the audit record."""
    private_text, public_text = sealed.generate_recipient()
    (tmp_path / "recovery.key").write_text(private_text, encoding="utf-8")
    (tmp_path / "recovery.pub").write_text(public_text, encoding="utf-8")
    crowd = population(session, vault, n=3)
    stash = tmp_path / "stash"
    stash.mkdir()
    env = _env(instance, tmp_path / "recovery.pub")
    for args in (
        ["backup", "--out", str(stash / "old.mnvbak")],
        ["keys", "backup", "--out", str(stash / "old.mnvkeys"), "--recipient-key"]
        + [str(tmp_path / "recovery.pub")],
    ):
        assert run_cli(args, env).returncode == 0
    kept_copy = tmp_path / "insider-copy.mnvkeys"
    shutil.copy(stash / "old.mnvkeys", kept_copy)  # taken away before the disposal
    _dispose_from_the_command_line(
        session, vault, make_user, instance, crowd[:1], tmp_path / "recovery.pub"
    )
    assert not (stash / "old.mnvkeys").exists()  # the product destroyed its own file

    drill = tmp_path / "drill"
    drill.mkdir(mode=0o700)
    shutil.copy(app.config["DISPOSAL_JOURNAL_FILE"], drill / "disposal_journal.jsonl")
    if backend == "sqlite":
        uri = f"sqlite:///{drill / 'drill.db'}"
    else:
        from tests import conftest

        name = f"{instance['TEST_PG_DB']}_d"
        conftest._create_test_database(name)
        conftest._created_dbs.append(name)
        uri = conftest._pg_db_url(name)
    drill_env = _env(instance, None, uri=uri, home=drill)
    key_args = ["keys", "restore", str(kept_copy), "--key", str(tmp_path / "recovery.key")]
    result = run_cli(key_args, drill_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "廃棄に伴い破棄済み" in result.stderr and "復元できません" in result.stderr
    assert not (drill / "keyring.json").exists()

    # The drill's key ring is the production one (say, copied): the old database backup is
    # refused all the same.
    shutil.copy(vault.keys.path, drill / "keyring.json")
    result = run_cli(["restore", str(stash / "old.mnvbak")], drill_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "廃棄に伴い破棄済み" in result.stderr, result.stderr
    # On the record: the closure that made them unreadable, naming the files.
    db.session.expire_all()
    closed = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "disposal.keys_closed")
    ).scalar_one()
    assert "old.mnvbak" in closed.details and "old.mnvkeys" in closed.details
