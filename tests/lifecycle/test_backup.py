"""Backups: encrypted snapshots, restore into an empty database, and the guarantee that no
restore — however old the backup — brings a disposed person back."""

import shutil
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from app.access.policy import ShellActor
from app.lifecycle import backup, holders, key_closure, returns
from app.models import AuditEvent, BackupRecord, Person, db
from app.people import registry
from app.vault import sealed
from app.vault.envelopes import ShreddedError
from app.vault.keyring import FileKeyRing
from tests.lifecycle.helpers import (
    dispose,
    export_rows,
    fresh_target,
    population,
    traces_left,
)
from tests.support import number_forms

CLI = ShellActor(name="cli:test")


def _backup(session, vault, path):
    return backup.create_backup(session, vault, CLI, path, client_name="見本市役所")


def _restore(target, source):
    directory = target.extensions["migrate"].directory
    return backup.restore(
        db.session,
        target.extensions["mynumber_vault"],
        CLI,
        source,
        journal=target.config["DISPOSAL_JOURNAL_FILE"],
        upgrade=lambda: upgrade(directory=directory),
    )


def test_round_trip_gives_an_identical_export(session, vault, app, instance, backend, tmp_path):
    crowd = population(session, vault, n=6)
    before = export_rows(session, vault)
    print_before = returns.fingerprint(session, vault, 1)
    file = tmp_path / "b.mnvbak"
    record = _backup(session, vault, file)
    assert record.sha256 == sealed.sha256_file(file) and record.backend in ("sqlite", "postgresql")
    raw = file.read_bytes()
    assert raw.startswith(sealed.MAGIC)
    for someone in crowd:  # the file is sealed: no name, no number, no address in it
        assert someone.name.encode() not in raw and someone.address.encode() not in raw
        assert not any(form in raw for form in number_forms(someone.number))
    with fresh_target(instance, backend) as target:
        result = _restore(target, file)
        assert result.reapplied_people == 0
        tsession = db.session
        tvault = target.extensions["mynumber_vault"]
        assert export_rows(tsession, tvault) == before
        after = returns.fingerprint(tsession, tvault, 1)
        assert after == print_before  # every person field, every ciphertext, the audit chain
        restored = tsession.execute(
            select(AuditEvent).where(AuditEvent.action == "backup.restored")
        ).scalar_one()
        assert restored.actor_name == "cli:test"
        from app.audit import verifier

        assert verifier.verify(tsession).ok


def test_restoring_a_backup_from_before_a_disposal_disposes_again(
    session, vault, app, instance, backend, make_user, tmp_path
):
    crowd = population(session, vault, n=10)
    gone, kept = crowd[:3], crowd[3:]
    file = tmp_path / "before.mnvbak"
    _backup(session, vault, file)
    dispose(session, vault, app, make_user, [s.id for s in gone])
    expected = export_rows(session, vault)

    # The database is lost; the backup from before the disposal is restored.
    with fresh_target(instance, backend) as target:
        result = _restore(target, file)
        assert result.reapplied_people == 3 and result.reapplied_keys == 3
        tsession = db.session
        tvault = target.extensions["mynumber_vault"]
        for someone in gone:
            person = tsession.get(Person, someone.id)
            assert person.status == "disposed" and person.name == holders.DISPOSED_NAME
            assert registry.active_record(tsession, someone.id) is None
            with pytest.raises(ShreddedError):
                tvault.data_key_row(tsession, someone.id)
        assert export_rows(tsession, tvault) == expected
        assert {r[0] for r in expected["staff"]} == {s.code for s in kept}
        assert traces_left(target, gone) == []
        event = tsession.execute(
            select(AuditEvent).where(AuditEvent.action == "disposal.reapplied")
        ).scalar_one()
        assert '"people": 3' in event.details


def test_a_disposed_key_copied_back_by_other_means_is_refused(session, vault, app, make_user):
    """The key ring refuses shredded keys by itself: a database copied back by any other
    means than `mynumber restore` (before `init` re-applies the disposal) still cannot decrypt
    a disposed person's number."""
    from app.models import DataKey

    crowd = population(session, vault, n=2)
    key = session.execute(select(DataKey).where(DataKey.person_id == crowd[0].id)).scalar_one()
    copy = DataKey(
        id=key.id,
        person_id=key.person_id,
        version=1,
        kek_version=key.kek_version,
        wrapped=key.wrapped,
    )
    dispose(session, vault, app, make_user, [crowd[0].id])
    with pytest.raises(ShreddedError):
        vault.unwrap(copy)


def test_restore_refuses_a_database_that_is_not_empty(session, vault, app, tmp_path):
    population(session, vault, n=1)
    file = tmp_path / "b.mnvbak"
    _backup(session, vault, file)
    with pytest.raises(backup.BackupError, match="空ではありません"):
        _restore(app, file)


def test_a_tampered_backup_changes_nothing(session, vault, instance, backend, tmp_path):
    population(session, vault, n=2)
    file = tmp_path / "b.mnvbak"
    _backup(session, vault, file)
    data = bytearray(file.read_bytes())
    data[-40] ^= 0x01
    bad = tmp_path / "bad.mnvbak"
    bad.write_bytes(bytes(data))
    with fresh_target(instance, backend) as target:
        with pytest.raises(backup.BackupError, match="復号できません"):
            _restore(target, bad)
        assert backup.database_is_empty(db.engine)


def test_a_backup_needs_the_same_key_ring(session, vault, instance, backend, tmp_path):
    population(session, vault, n=1)
    file = tmp_path / "b.mnvbak"
    _backup(session, vault, file)
    other = tmp_path / "other-home"
    other.mkdir()
    FileKeyRing(other / "keyring.json").create()
    with fresh_target(instance, backend, home=other) as target:
        with pytest.raises(backup.BackupError, match="鍵リングが違う"):
            _restore(target, file)


def test_key_ring_backup_and_restore_remember_every_disposal(
    session, vault, app, instance, backend, make_user, tmp_path
):
    """Disaster: database and key ring lost. The key ring comes back from a backup taken
    *before* the disposal, the database too; the journal kept outside both still wins."""
    private_text, public_text = sealed.generate_recipient()
    recipient = sealed.load_public(public_text)
    crowd = population(session, vault, n=5)
    keys_file, db_file = tmp_path / "k.mnvkeys", tmp_path / "d.mnvbak"
    backup.backup_keyring(session, vault.keys, CLI, keys_file, recipient)
    _backup(session, vault, db_file)
    dispose(session, vault, app, make_user, [s.id for s in crowd[:2]])

    new_home = tmp_path / "new-home"
    new_home.mkdir(mode=0o700)
    shutil.copy(app.config["DISPOSAL_JOURNAL_FILE"], new_home / "disposal_journal.jsonl")
    ring = FileKeyRing(new_home / "keyring.json")
    meta = backup.restore_keyring(
        keys_file, sealed.load_private(private_text), ring, new_home / "disposal_journal.jsonl"
    )
    assert meta["disposed_people"] == 0  # the backup predates the disposal…
    assert len(ring.shredded()) == 2  # …but the journal was merged in
    assert (new_home / "keyring.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(Exception, match="既に存在"):
        backup.restore_keyring(keys_file, sealed.load_private(private_text), ring, None)
    with fresh_target(instance, backend, home=new_home) as target:
        result = _restore(target, db_file)
        assert result.reapplied_people == 2
        statuses = dict(db.session.execute(select(Person.id, Person.status)).all())
        assert [statuses[s.id] for s in crowd] == ["disposed"] * 2 + ["active"] * 3


def test_wrong_recovery_key_cannot_open_the_key_ring_backup(session, vault, tmp_path):
    _, public_text = sealed.generate_recipient()
    other_private, _ = sealed.generate_recipient()
    keys_file = tmp_path / "k.mnvkeys"
    backup.backup_keyring(session, vault.keys, CLI, keys_file, sealed.load_public(public_text))
    assert b"index_key" not in keys_file.read_bytes()
    with pytest.raises(sealed.SealedError, match="別の鍵あて"):
        backup.restore_keyring(
            keys_file, sealed.load_private(other_private), FileKeyRing(tmp_path / "x.json"), None
        )


def test_prune_keeps_the_newest(session, vault, tmp_path):
    population(session, vault, n=1)
    folder = tmp_path / "backups"
    names = []
    for _ in range(4):
        path = folder / f"backup-{backup.stamp()}{backup.BACKUP_SUFFIX}"
        _backup(session, vault, path)
        names.append(path.name)
    removed = backup.prune(session, CLI, folder, 2)
    assert removed == names[:2]
    assert sorted(p.name for p in folder.iterdir()) == names[2:]
    pruned = session.execute(
        select(BackupRecord).where(BackupRecord.pruned_at.is_not(None))
    ).scalars()
    assert {Path(r.file_name).name for r in pruned} == set(names[:2])


def test_contract_end_destroys_the_key_ring_after_everyone_is_disposed(
    session, vault, app, make_user, tmp_path
):
    from app.lifecycle import disposal as disposal_mod
    from tests.lifecycle.helpers import approved_request, user_actor

    crowd = population(session, vault, n=2)
    folder = Path(app.config["BACKUP_DIR"])
    file = folder / f"backup-{backup.stamp()}{backup.BACKUP_SUFFIX}"
    _backup(session, vault, file)
    with pytest.raises(backup.KeyRingStillNeeded, match="2 名"):
        backup.destroy_keyring(session, vault.keys, CLI, folder)
    req, operator, _ = approved_request(session, vault, make_user, [], scope="all")
    disposal_mod.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        req.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    outside = tmp_path / "copy.mnvbak"
    outside.write_bytes(file.read_bytes())  # a copy someone kept elsewhere
    removed = backup.destroy_keyring(session, vault.keys, CLI, folder)
    assert removed == [file.name] and not file.exists()
    assert not vault.keys.exists()
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "keys.destroyed")
    ).scalar_one()
    assert file.name in event.details
    other = tmp_path / "other"
    other.mkdir()
    ring = FileKeyRing(other / "keyring.json")
    ring.create()
    from app.vault.envelopes import Vault

    with open(outside, "rb") as handle, pytest.raises(sealed.SealedError):
        sealed.open_stream(handle, backup.kek_unwrapper(Vault(ring)), purpose="backup")
    assert crowd


def test_a_key_ring_copied_before_a_disposal_is_refused_once_its_keys_are_closed(
    session, vault, app, make_user, tmp_path
):
    """The key closure destroys the key-ring backup it knows of; a copy kept elsewhere is
    refused by ``keys restore`` (the journal names its KEK as retired); the fresh key-ring
    backup restores, without the retired KEK and remembering it."""
    private_text, public_text = sealed.generate_recipient()
    recipient, private = sealed.load_public(public_text), sealed.load_private(private_text)
    crowd = population(session, vault, n=3)
    keys_file = tmp_path / "k.mnvkeys"
    backup.backup_keyring(session, vault.keys, CLI, keys_file, recipient)
    copy = tmp_path / "copy.mnvkeys"
    shutil.copy(keys_file, copy)
    dispose(session, vault, app, make_user, [crowd[0].id])
    journal = app.config["DISPOSAL_JOURNAL_FILE"]
    closure = key_closure.close_keys(
        session,
        vault,
        CLI,
        journal=journal,
        backup_dir=app.config["BACKUP_DIR"],
        recipient=recipient,
    )
    assert not keys_file.exists() and closure.destroyed_keyring_backups == [str(keys_file)]
    assert closure.retired == [1] and vault.keys.kek_versions() == [2]
    with pytest.raises(backup.BackupError, match="廃棄に伴い破棄済み"):
        backup.restore_keyring(copy, private, FileKeyRing(tmp_path / "a" / "keyring.json"), journal)
    assert not (tmp_path / "a" / "keyring.json").exists()
    ring = FileKeyRing(tmp_path / "b" / "keyring.json")
    backup.restore_keyring(Path(closure.fresh_keyring_backup), private, ring, None)
    assert ring.kek_versions() == [2] and [r["version"] for r in ring.retired()] == [1]
    assert len(ring.shredded()) == 1
