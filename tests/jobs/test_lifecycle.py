"""The storage lifecycle jobs as the worker runs them: the weekly retention review, the daily
backup, and the end of a disposal made in the portal."""

import datetime as dt
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import select

from app.jobs import worker
from app.jobs.lifecycle import daily_backup, finish_disposal, retention_review
from app.lifecycle import backup, disposal
from app.models import AuditEvent, Person
from app.vault import sealed
from tests.lifecycle.helpers import approved_request, population, user_actor


def test_both_jobs_are_on_the_schedule():
    names = {item.name: item.cron for item in worker.load_schedule()}
    assert names["retention-review"] == "0 0 * * 1"  # Monday 09:00 JST
    assert names["daily-backup"] == "0 18 * * *"  # 03:00 JST


def test_retention_review_counts_and_tells_the_client_without_names(session, vault, app, make_user):
    crowd = population(session, vault, n=3)
    session.get(Person, crowd[0].id).ended_on = dt.date(2012, 3, 31)
    session.get(Person, crowd[1].id).ended_on = dt.date.today()
    session.commit()
    make_user("ClientStaff")
    result = retention_review()
    assert result["due"] == 1 and result["changed"] == 3 and result["no_date"] == 1
    assert session.get(Person, crowd[0].id).delete_after == dt.date(2020, 1, 11)
    mails = list(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
    assert len(mails) == 1
    body = message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    text = body.get_body().get_content()
    assert "1 名" in text and crowd[0].name not in text and crowd[0].code not in text
    assert session.get(Person, crowd[0].id).status == "active"  # nothing deleted
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "retention.reviewed")
    ).scalar_one()
    assert retention_review()["changed"] == 0  # idempotent


def test_daily_backup_keeps_the_newest_and_seals_the_key_ring(session, vault, app, tmp_path):
    population(session, vault, n=1)
    private_text, public_text = sealed.generate_recipient()
    (tmp_path / "recovery.pub").write_text(public_text)
    app.config["RECOVERY_PUBLIC_KEY"] = str(tmp_path / "recovery.pub")
    app.config["BACKUP_KEEP"] = 2
    folder = Path(app.config["BACKUP_DIR"])
    for _ in range(3):
        daily_backup()
    assert len(list(folder.glob(f"*{backup.BACKUP_SUFFIX}"))) == 2
    keyrings = sorted(folder.glob(f"*{backup.KEYRING_SUFFIX}"))
    assert len(keyrings) == 2
    with open(keyrings[-1], "rb") as handle:
        header, chunks = sealed.open_stream(
            handle,
            sealed.from_recipient(sealed.load_private(private_text)),
            purpose="keyring",
        )
        assert b"index_key" in b"".join(chunks)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())


def test_finish_disposal_compacts_and_backs_up_the_key_ring(
    session, vault, app, make_user, tmp_path
):
    crowd = population(session, vault, n=2)
    _, public_text = sealed.generate_recipient()
    (tmp_path / "recovery.pub").write_text(public_text)
    app.config["RECOVERY_PUBLIC_KEY"] = str(tmp_path / "recovery.pub")
    req, operator, _ = approved_request(session, vault, make_user, [crowd[0].id])
    result = disposal.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        req.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
        compact=False,
    )
    request_id = str(result.request.id)
    session.commit()
    assert finish_disposal(request_id) == "compacted"
    assert list(Path(app.config["BACKUP_DIR"]).glob(f"*{backup.KEYRING_SUFFIX}"))
