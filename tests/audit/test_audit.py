"""The audit chain: every edit, deletion or reordering is found; writes fail closed."""

import pytest
from sqlalchemy import select, text

from app.audit import checkpoints, trail, verifier
from app.audit.trail import AuditUnavailable
from app.core.actor import Actor
from app.models import AuditChainHead, AuditEvent
from tests.cli_runner import run_cli


def _events(session, count):
    for i in range(count):
        trail.record(
            session,
            Actor(name=f"user{i}", user_id=i),
            "test.event",
            object_type="person",
            object_ids=[f"id-{i}"],
            details={"i": i},
        )
    session.commit()


def _public_key(app):
    return verifier.load_public_key(app.extensions["mynumber_keyring"].audit_public_key_pem())


def _drop_append_only_guard(session):
    """What an attacker with DBA rights would do first."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER audit_event_append_only ON audit_event"))
    else:
        session.execute(text("DROP TRIGGER audit_event_no_update"))
        session.execute(text("DROP TRIGGER audit_event_no_delete"))
    session.commit()


def test_intact_chain_verifies_with_the_public_key_alone(session, app):
    _events(session, 10)
    cp = checkpoints.checkpoint(
        session,
        app.extensions["mynumber_keyring"].audit_signing_key(),
        app.config["AUDIT_CHECKPOINT_FILE"],
    )
    session.commit()
    result = verifier.verify(session, _public_key(app), app.config["AUDIT_CHECKPOINT_FILE"])
    assert result.ok, result.problem
    assert result.events == cp.seq
    # The first one is `mynumber init`'s; each is in the table and in the file.
    assert result.checkpoints == 2 and result.in_database == 2 and result.in_file == 2
    assert result.last_signed_seq == cp.seq and result.unsigned == 0


def test_the_database_refuses_updates_and_deletes(session):
    _events(session, 2)
    with pytest.raises(Exception):
        session.execute(text("UPDATE audit_event SET action = 'x' WHERE seq = 1"))
        session.commit()
    session.rollback()
    with pytest.raises(Exception):
        session.execute(text("DELETE FROM audit_event WHERE seq = 1"))
        session.commit()
    session.rollback()


def test_edit_is_detected_at_that_event(session, app):
    _events(session, 6)
    _drop_append_only_guard(session)
    session.execute(text("UPDATE audit_event SET actor_name = 'someone-else' WHERE seq = 4"))
    session.commit()
    result = verifier.verify(session, _public_key(app))
    assert not result.ok and result.first_bad_seq == 4


def test_deletion_is_detected(session, app):
    _events(session, 6)
    _drop_append_only_guard(session)
    session.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    session.commit()
    result = verifier.verify(session, _public_key(app))
    assert not result.ok and result.first_bad_seq == 4


def test_swapping_two_events_is_detected(session, app):
    _events(session, 6)
    _drop_append_only_guard(session)
    session.execute(text("UPDATE audit_event SET seq = -1 WHERE seq = 2"))
    session.execute(text("UPDATE audit_event SET seq = 2 WHERE seq = 5"))
    session.execute(text("UPDATE audit_event SET seq = 5 WHERE seq = -1"))
    session.commit()
    result = verifier.verify(session, _public_key(app))
    assert not result.ok and result.first_bad_seq == 2


def test_truncating_the_tail_is_caught_by_the_checkpoint_file(session, app):
    _events(session, 5)
    keyring = app.extensions["mynumber_keyring"]
    checkpoints.checkpoint(
        session, keyring.audit_signing_key(), app.config["AUDIT_CHECKPOINT_FILE"]
    )
    session.commit()
    _drop_append_only_guard(session)
    # The attacker removes the tail, the head row and the in-database checkpoint.
    session.execute(
        text("DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_checkpoint")
        if session.get_bind().dialect.name == "postgresql"
        else text("DROP TRIGGER audit_checkpoint_no_delete")
    )
    session.execute(text("DELETE FROM audit_event WHERE seq >= 5"))
    session.execute(text("DELETE FROM audit_checkpoint"))
    last = session.execute(select(AuditEvent).where(AuditEvent.seq == 4)).scalar_one()
    session.execute(text("UPDATE audit_chain_head SET seq = 4, hash = :h"), {"h": last.hash})
    session.commit()
    # The database alone no longer vouches for itself: with its checkpoints gone, nothing is
    # signed, and that fails too.
    alone = verifier.verify(session, _public_key(app))
    assert not alone.ok and alone.kind == "unsigned" and "チェックポイント" in alone.problem
    result = verifier.verify(session, _public_key(app), app.config["AUDIT_CHECKPOINT_FILE"])
    assert not result.ok and result.first_bad_seq == 5


def test_forged_checkpoint_signature_is_refused(session, app, tmp_path):
    _events(session, 3)
    head = session.get(AuditChainHead, 1)
    forged = tmp_path / "cp.jsonl"
    forged.write_text(
        f'{{"seq": {head.seq}, "hash": "{head.hash}", "signature": "'
        + "A" * 86
        + '==", "signed_at": "x"}\n'
    )
    result = verifier.verify(session, _public_key(app), forged)
    assert not result.ok and "署名" in result.problem


def test_recording_fails_closed_when_the_table_is_unwritable(session):
    session.execute(text("DROP TABLE audit_event"))
    session.commit()
    with pytest.raises(AuditUnavailable) as info:
        trail.record(session, Actor(name="x"), "test.event", commit=True)
    assert "実行されませんでした" in str(info.value)


def test_cli_verify_exit_codes(session, app, instance):
    _events(session, 4)
    env_home = instance["MYNUMBER_HOME"]
    cmd = ["audit", "verify"]
    env = {
        "MYNUMBER_HOME": env_home,
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
        "PATH": "/usr/bin:/bin",
    }
    ok = run_cli(cmd, env, 120)
    assert ok.returncode == 0, ok.stderr
    assert "完全" in ok.stdout
    _drop_append_only_guard(session)
    session.execute(text("UPDATE audit_event SET details = '{\"i\": 99}' WHERE seq = 3"))
    session.commit()
    bad = run_cli(cmd, env, 120)
    assert bad.returncode == 1
    assert "イベント 3" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_concurrent_writers_keep_one_unbroken_chain(app, session):
    """Eight threads appending at once (as a threaded server does) never fork the chain."""
    import threading

    from sqlalchemy.orm import Session as OrmSession

    from app.models import db

    engine = db.engine
    errors = []

    def writer(n):
        try:
            for i in range(15):
                with OrmSession(engine) as own:
                    trail.record(
                        own, Actor(name=f"t{n}"), "test.concurrent", details={"i": i}, commit=True
                    )
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    session.expire_all()
    result = verifier.verify(session, _public_key(app))
    assert result.ok, result.problem
    count = (
        session.execute(select(AuditEvent).where(AuditEvent.action == "test.concurrent"))
        .scalars()
        .all()
    )
    assert len(count) == 120
