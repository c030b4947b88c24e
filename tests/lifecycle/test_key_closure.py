"""The key closure that ends a data disposal: resumed after a crash anywhere in it, and a
failure audited and explained."""

import json

import pytest
from sqlalchemy import select

from app.access import policy
from app.lifecycle import backup, certificate, disposal, key_closure, keyops
from app.models import AuditEvent, DisposalRequest
from tests.cli.test_cli import run
from tests.lifecycle.helpers import approved_request, population, user_actor


@pytest.mark.parametrize(
    ("crash_after", "kek_now"),
    [("execution", 2), ("new-kek", 3), ("rotation", 2), ("retirement", 2)],
)
def test_a_key_closure_cut_short_by_a_crash_is_finished_by_init(
    session, vault, app, instance, make_user, tmp_path, crash_after, kek_now
):
    """The disposal committed, then the process died somewhere in its key closure: the next
    ``mynumber init`` finishes it — one rotation, not two (but again if the first one never
    committed); every older KEK retired; the backup from before unreadable and named on the
    certificate."""
    crowd = population(session, vault, n=3)
    shell = policy.ShellActor(name="cli:test")
    old = tmp_path / "old.mnvbak"
    backup.create_backup(session, vault, shell, old)
    req, operator, staff = approved_request(session, vault, make_user, [crowd[0].id])
    req_id, staff_id = req.id, staff.id
    disposal.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        req_id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    rows = dict(certificate.load(session, vault, req_id, "見本", "受託").rows)
    assert rows["鍵の更新と旧 KEK の破棄"].startswith("未完了")
    if crash_after == "new-kek":  # the rotation's new KEK is in the ring, nothing re-wrapped
        vault.keys.add_kek_version()
    if crash_after in ("rotation", "retirement"):
        keyops.rotate(session, vault, shell)
    if crash_after == "retirement":
        keyops.retire(session, vault, shell, 1, accept_unrestorable=True)
    session.commit()
    session.close()

    result = run(
        ["init"],
        {
            "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
            "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
        },
    )
    assert result.returncode == 0, result.stderr
    session.expire_all()
    req = session.get(DisposalRequest, req_id)
    assert req.keys_closed_at is not None
    assert vault.keys.kek_versions() == [kek_now]
    closure = json.loads(req.key_closure)
    retired = list(range(1, kek_now))
    assert closure["retired_kek_versions"] == retired
    assert closure["unreadable_backups"] == [old.name]
    cert = certificate.load(session, vault, req_id, "見本", "受託")
    rows = dict(cert.rows)
    # The disposed person's code and name, sealed under the KEK of the time, were re-sealed
    # before that KEK was retired: the certificate still names them.
    assert [p.cells for p in cert.people] == [[crowd[0].code, crowd[0].name, "役職員"]]
    assert rows["破棄した KEK のバージョン"] == "、".join(map(str, retired))
    assert old.name in rows["復元できなくなったデータベースのバックアップ"]
    with pytest.raises(backup.BackupError, match="廃棄に伴い破棄済み"):
        backup.refuse_retired_backup(vault.keys, old)
    assert staff_id
    # A second init has nothing left to close.
    assert key_closure.pending_closures(session) == []


def test_a_closure_failure_is_audited_and_says_what_to_do(session, vault, app, make_user):
    crowd = population(session, vault, n=2)
    req, operator, _ = approved_request(session, vault, make_user, [crowd[0].id])
    disposal.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        req.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    vault.keys.path.chmod(0o644)  # the key ring is refused: nothing can be rotated
    vault.keys.reload()
    try:
        with pytest.raises(key_closure.KeyClosureError, match="mynumber disposal execute"):
            key_closure.close_keys(
                session,
                vault,
                policy.ShellActor(name="cli:test"),
                journal=app.config["DISPOSAL_JOURNAL_FILE"],
                backup_dir=app.config["BACKUP_DIR"],
            )
    finally:
        vault.keys.path.chmod(0o600)
        vault.keys.reload()
    failed = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "disposal.keys_close", AuditEvent.outcome == "failure"
        )
    ).scalar_one()
    assert "KeyRingError" in failed.details
    assert [r.id for r in key_closure.pending_closures(session)] == [req.id]
