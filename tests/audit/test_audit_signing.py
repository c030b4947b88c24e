"""The audit log signs itself: checkpoints by count and by time, published outside the
database (file with fsync, syslog), bounded waits on the chain head, and `verify` refusing
an unsigned log."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.audit import checkpoints, signing, trail, verifier
from app.audit.checkpoints import SigningPolicy
from app.audit.trail import AuditUnavailable
from app.core.actor import Actor
from app.models import AuditCheckpoint, AuditEvent, db


def _events(session, count, action="test.event"):
    for i in range(count):
        trail.record(session, Actor(name=f"user{i}", user_id=i), action, details={"i": i})
        session.commit()


def _checkpoint_seqs(session) -> list[int]:
    session.expire_all()
    return list(
        session.execute(select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq)).scalars()
    )


def _file_seqs(app) -> list[int]:
    path = Path(app.config["AUDIT_CHECKPOINT_FILE"])
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line)["seq"] for line in lines if line.strip()]


def _head(session) -> int:
    session.expire_all()
    return session.execute(text("SELECT seq FROM audit_chain_head WHERE id = 1")).scalar_one()


def _public_key(app):
    return verifier.load_public_key(app.extensions["mynumber_keyring"].audit_public_key_pem())


def _sign_now(app, session):
    """Bring the log to a freshly signed state, so each test starts from a known point."""
    keyring = app.extensions["mynumber_keyring"]
    policy = SigningPolicy.from_config(app.config)
    cp = checkpoints.checkpoint(session, keyring.audit_signing_key(), policy.file, policy.syslog)
    session.commit()
    return cp


def test_initialise_signs_the_first_event(session, app):
    """A fresh instance is signed from the start: `audit verify` needs a checkpoint."""
    assert _checkpoint_seqs(session) == [_head(session)]
    assert _file_seqs(app) == [_head(session)]
    result = verifier.verify(session, _public_key(app), app.config["AUDIT_CHECKPOINT_FILE"])
    assert result.ok and result.unsigned == 0 and result.last_signed_seq == _head(session)


def test_a_checkpoint_is_taken_every_n_events_without_anyone_asking(session, app):
    app.config["AUDIT_CHECKPOINT_EVERY"] = 5
    start = _sign_now(app, session).seq
    _events(session, 4)
    assert _checkpoint_seqs(session)[-1] == start  # four unsigned: not yet
    _events(session, 1)
    assert _checkpoint_seqs(session)[-1] == start + 5 == _head(session)
    assert _file_seqs(app)[-1] == start + 5  # and outside the database
    _events(session, 11)
    assert _checkpoint_seqs(session)[-2:] == [start + 10, start + 15]
    result = verifier.verify(session, _public_key(app), app.config["AUDIT_CHECKPOINT_FILE"])
    assert result.ok, result.problem
    assert result.unsigned == 1


def test_a_checkpoint_is_taken_after_some_minutes_while_events_arrive(session, app):
    app.config["AUDIT_CHECKPOINT_MINUTES"] = 5
    start = _sign_now(app, session).seq
    _events(session, 2)
    found = signing.sign_now(app)
    assert found.taken is None and found.last_signed_seq == start  # signed a moment ago
    app.config["AUDIT_CHECKPOINT_MINUTES"] = 0
    found = signing.sign_now(app)
    assert found.taken is not None and found.taken.seq == start + 2
    assert signing.sign_now(app).taken is None  # nothing new: nothing to sign
    assert _file_seqs(app)[-1] == start + 2


def test_the_worker_runs_the_time_rule_every_minute(session, app):
    from app.jobs import worker

    item = worker.find("audit-checkpoint")
    assert item.cron == "* * * * *"
    app.config["AUDIT_CHECKPOINT_MINUTES"] = 0
    start = _sign_now(app, session).seq
    _events(session, 1)
    assert item.func() == f"チェックポイントを作成しました: イベント {start + 1}"
    assert "署名は最新です" in item.func()


def test_mynumber_run_signs_in_a_background_thread(session, app):
    """Embedded mode: the form's events (no key ring there) are signed by the portal's thread."""
    app.config["AUDIT_CHECKPOINT_MINUTES"] = 0
    start = _sign_now(app, session).seq
    with Session(db.engine) as form_like:  # no app context: what the public form does
        trail.record(form_like, Actor(name="public-form"), "intake.submitted", commit=True)
    stop = signing.start_signer(app, interval=0.2)
    try:
        deadline = time.monotonic() + 20
        while _checkpoint_seqs(session)[-1] == start and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
    assert _checkpoint_seqs(session)[-1] == start + 1


def test_each_checkpoint_is_appended_to_the_file_with_fsync_and_0600(session, app, monkeypatch):
    path = Path(app.config["AUDIT_CHECKPOINT_FILE"])
    path.unlink()
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    _events(session, 1)
    cp = _sign_now(app, session)
    assert synced, "the checkpoint line was not fsynced"
    assert path.stat().st_mode & 0o777 == 0o600
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    assert line["seq"] == cp.seq and line["hash"] == cp.hash and line["signature"] == cp.signature


def test_an_uncommitted_checkpoint_never_reaches_the_file(session, app):
    before = _file_seqs(app)
    _events(session, 1)
    keyring = app.extensions["mynumber_keyring"]
    trail.record(session, Actor(name="x"), "test.event")
    checkpoints.checkpoint(
        session, keyring.audit_signing_key(), app.config["AUDIT_CHECKPOINT_FILE"]
    )
    session.rollback()
    assert _file_seqs(app) == before


def test_each_checkpoint_is_sent_to_syslog(session, app):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    try:
        app.config["AUDIT_SYSLOG"] = f"udp://127.0.0.1:{receiver.getsockname()[1]}"
        app.config["AUDIT_CHECKPOINT_EVERY"] = 3
        _events(session, 3)  # the count rule signs, and sends
        message = receiver.recvfrom(65536)[0].decode("utf-8").rstrip("\x00")
    finally:
        receiver.close()
    cp = session.get(AuditCheckpoint, _checkpoint_seqs(session)[-1])
    assert message.startswith("<38>mynumber-vault: audit checkpoint ")  # auth.info
    payload = json.loads(message.split("audit checkpoint ", 1)[1])
    assert payload == json.loads(
        Path(app.config["AUDIT_CHECKPOINT_FILE"]).read_text().splitlines()[-1]
    )
    assert payload["seq"] == cp.seq and payload["signature"] == cp.signature


def test_concurrent_checkpointers_take_one_checkpoint_between_them(session, app):
    _sign_now(app, session)
    _events(session, 3)
    policy = SigningPolicy(every=1, file=app.config["AUDIT_CHECKPOINT_FILE"])
    key = app.extensions["mynumber_keyring"].audit_signing_key()
    engine = db.engine
    before_db, before_file = len(_checkpoint_seqs(session)), len(_file_seqs(app))
    results, errors = [], []

    def signer():
        try:
            with Session(engine) as own:
                results.append(checkpoints.checkpoint_if_due(own, key, policy, by_time=False))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=signer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(1 for r in results if r.taken is not None) == 1
    assert len(_checkpoint_seqs(session)) == before_db + 1
    assert len(_file_seqs(app)) == before_file + 1


def test_the_signer_refuses_to_sign_a_tail_rewritten_behind_the_last_checkpoint(session, app):
    """Whoever holds the database deletes the newest checkpoints and rewrites what they
    covered: the next automatic checkpoint would lend the rewrite a genuine signature."""
    app.config["AUDIT_CHECKPOINT_EVERY"] = 4
    _events(session, 8)  # signed at +4 and +8 (database and file)
    signed = _checkpoint_seqs(session)
    _drop_guards(session)
    victim = signed[-1] - 2
    session.execute(text("DELETE FROM audit_checkpoint WHERE seq > :s"), {"s": signed[0]})
    _rewrite_from(session, victim, "someone-else")
    key = app.extensions["mynumber_keyring"].audit_signing_key()
    with Session(db.engine) as own, pytest.raises(checkpoints.AuditChainBroken):
        checkpoints.checkpoint_if_due(
            own, key, SigningPolicy.from_config(app.config), by_time=False
        )
    assert _checkpoint_seqs(session)[-1] == signed[0]


def test_verify_fails_when_the_unsigned_tail_is_too_long_or_too_old(session, app):
    _sign_now(app, session)
    app.config["AUDIT_CHECKPOINT_EVERY"] = 10_000  # nobody signs during this test
    _events(session, 5)
    public_key, file = _public_key(app), app.config["AUDIT_CHECKPOINT_FILE"]
    ok = verifier.verify(session, public_key, file, SigningPolicy(max_unsigned=5))
    assert ok.ok and ok.unsigned == 5
    long = verifier.verify(session, public_key, file, SigningPolicy(max_unsigned=4))
    assert not long.ok and long.kind == "unsigned"
    assert "5 件が署名されていません（上限 4 件）" in long.problem
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)
    old = verifier.verify(session, public_key, file, SigningPolicy(max_unsigned_minutes=30), later)
    assert not old.ok and old.kind == "unsigned" and "上限 30 分" in old.problem
    assert old.first_bad_seq == ok.last_signed_seq + 1


def test_verify_fails_when_nothing_is_signed(session, app):
    _drop_guards(session)
    session.execute(text("DELETE FROM audit_checkpoint"))
    session.commit()
    result = verifier.verify(session, _public_key(app))
    assert not result.ok and result.kind == "unsigned" and result.checkpoints == 0
    assert "署名付きチェックポイントが1件もありません" in result.problem


def test_a_checkpoint_missing_from_the_outside_file_is_reported(session, app):
    Path(app.config["AUDIT_CHECKPOINT_FILE"]).write_text("")
    _events(session, 1)
    cp = _sign_now(app, session)
    result = verifier.verify(session, _public_key(app), app.config["AUDIT_CHECKPOINT_FILE"])
    assert result.ok  # the signatures in the database still hold
    assert any("ファイルにありません" in note for note in result.problems)
    assert result.in_file == 1 and result.in_database == len(_checkpoint_seqs(session))
    assert cp.seq == result.last_signed_seq


def test_a_checkpoint_deleted_from_the_database_is_caught_by_the_file(session, app):
    _events(session, 1)
    seq = _sign_now(app, session).seq
    _events(session, 1)
    _drop_guards(session)
    session.execute(text("DELETE FROM audit_checkpoint WHERE seq = :s"), {"s": seq})
    session.commit()
    result = verifier.verify(session, _public_key(app), app.config["AUDIT_CHECKPOINT_FILE"])
    assert not result.ok and result.kind == "tampered" and result.first_bad_seq == seq
    assert f"チェックポイント {seq} がデータベースから削除されています" in result.problem


def test_a_held_chain_head_refuses_recording_after_the_timeout(session, app, instance, backend):
    app.config["AUDIT_LOCK_TIMEOUT_SECONDS"] = 1
    with hold_chain_head(instance, backend):
        started = time.monotonic()
        with pytest.raises(AuditUnavailable) as info:
            trail.record(session, Actor(name="x"), "test.event", commit=True)
        waited = time.monotonic() - started
    assert 0.8 <= waited < 6, waited
    assert "ロックされたまま" in str(info.value) and "1 秒" in str(info.value)
    # Released: recording works again, and the chain is whole.
    trail.record(session, Actor(name="x"), "test.event", commit=True)
    assert verifier.verify(session, _public_key(app)).ok


def test_the_lock_timeout_applies_to_the_head_only(session, app, backend):
    """The bounded wait is put back after the head is locked: the rest of the transaction
    keeps the database's own setting."""
    trail.record(session, Actor(name="x"), "test.event")
    if backend == "postgres":
        setting = session.execute(text("SHOW lock_timeout")).scalar_one()
        assert setting == "0"
    else:
        assert session.execute(text("PRAGMA busy_timeout")).scalar_one() == 10000
    session.commit()


# -- helpers shared with the hostile tests ---------------------------------------------------
def _drop_guards(session):
    """What someone holding the database does first: drop the append-only triggers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER audit_event_append_only ON audit_event"))
        session.execute(text("DROP TRIGGER audit_checkpoint_append_only ON audit_checkpoint"))
    else:
        for name in (
            "audit_event_no_update",
            "audit_event_no_delete",
            "audit_checkpoint_no_delete",
        ):
            session.execute(text(f"DROP TRIGGER {name}"))
    session.commit()


def _rewrite_from(session, seq: int, actor_name: str) -> None:
    """Change event ``seq``'s actor and recompute every hash after it, and the head."""
    session.expire_all()
    events = list(
        session.execute(
            select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq)
        ).scalars()
    )
    prev = events[0].prev_hash
    events[0].actor_name = actor_name
    for event in events:
        event.prev_hash = prev
        event.hash = trail.chain_hash(prev, event)
        prev = event.hash
    session.flush()
    session.execute(text("UPDATE audit_chain_head SET hash = :h WHERE id = 1"), {"h": prev})
    session.commit()


class hold_chain_head:  # noqa: N801 - used as a context manager, reads like one
    """A second connection holding the chain head's lock, as a stuck or hostile session would."""

    def __init__(self, instance: dict, backend: str):
        self.instance, self.backend = instance, backend

    def __enter__(self):
        uri = self.instance["SQLALCHEMY_DATABASE_URI"]
        if self.backend == "postgres":
            import psycopg

            self.conn = psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://"))
            self.conn.execute("SELECT seq FROM audit_chain_head WHERE id = 1 FOR UPDATE")
        else:
            self.conn = sqlite3.connect(uri.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("UPDATE audit_chain_head SET seq = seq WHERE id = 1")
        return self

    def __exit__(self, *exc):
        self.conn.rollback() if self.backend == "postgres" else self.conn.execute("ROLLBACK")
        self.conn.close()
