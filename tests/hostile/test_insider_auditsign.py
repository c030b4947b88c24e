"""Insiders against the audit log itself.

Whoever holds the database (a DBA, a copy of the files) can drop the append-only triggers,
rewrite events and recompute every hash after them: the chain alone then looks whole. Only a
signature over a point of the chain tells, so the log signs itself (no one has to remember
``mynumber audit checkpoint``) into the database and a file outside it, and ``audit verify``
refuses a log that is not signed. Whoever holds the chain head's lock cannot make every
audited request hang: the wait is bounded and the action refused with a Japanese 503.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.audit import signing
from app.models import AuditCheckpoint, AuditEvent
from app.people import registry
from tests.audit.test_audit_signing import _drop_guards, _rewrite_from, hold_chain_head
from tests.cli_runner import run_cli
from tests.hostile.conftest import assert_clear_refusal, audit_events
from tests.support import SAMPLE_NUMBER, actor, add_employee_with_number, csrf_token, post_form


def _cli_env(instance) -> dict:
    return {
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
        "PATH": "/usr/bin:/bin",
    }


def _verify(instance, *extra: str):
    result = run_cli(["audit", "verify", *extra], _cli_env(instance), 120)
    assert "Traceback" not in result.stderr
    return result


def _checkpoints(session) -> list[int]:
    session.expire_all()
    return list(
        session.execute(select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq)).scalars()
    )


def _signed_in(make_user, login, role):
    user, secret = make_user(role)
    login(user.username, totp_secret=secret)
    return user


@pytest.fixture
def reveals(app, session, vault):
    """A person revealed five times by one ClientStaff member, checkpoints every 4 events:
    the log an insider would like to change. Returns the reveal events' sequence numbers."""
    app.config["AUDIT_CHECKPOINT_EVERY"] = 4
    person = add_employee_with_number(session, vault, SAMPLE_NUMBER)
    staff = actor("ClientStaff", name="staff-a", user_id=901)
    for _ in range(5):
        registry.reveal(session, vault, staff, person.id, "年末調整")
    return [e.seq for e in audit_events("number.reveal")]


def test_a_database_copy_with_a_rewritten_reveal_fails_audit_verify_at_its_checkpoint(
    app, session, instance, reveals, make_user, login, client
):
    # Signed without anyone running `mynumber audit checkpoint`.
    signed = _checkpoints(session)
    victim = reveals[1]
    covering = min(seq for seq in signed if seq >= victim)
    before = max(seq for seq in signed if seq < victim)
    assert _verify(instance).returncode == 0
    _signed_in(make_user, login, "Auditor")

    # The insider drops the triggers, says someone else revealed the number and recomputes
    # every hash after it (and the head): the chain alone fits again.
    _drop_guards(session)
    _rewrite_from(session, victim, "someone-else")

    bad = _verify(instance)
    assert bad.returncode == 1, bad.stdout
    line = bad.stderr.strip()
    assert line.startswith("監査ログの改ざんを検出しました")
    assert f"イベント {before + 1}〜{covering}" in line
    assert f"チェックポイント {covering} の署名済みハッシュと一致しません" in line

    # The Auditor's screen says the same, and the check itself is on the record.
    page = assert_clear_refusal(client.get("/audit-verify/"), "改ざんを検出しました", status=200)
    assert "監査ログは完全です" not in page and f"チェックポイント {covering}" in page
    event = audit_events("audit.verify")[-1]
    assert event.outcome == "failure"
    assert json.loads(event.details)["first_bad"] == before + 1
    # No automatic checkpoint lends the rewritten chain a genuine signature.
    assert _checkpoints(session)[-1] == signed[-1]


def test_deleting_the_database_checkpoints_too_is_caught_by_the_file_outside_it(
    app, session, instance, reveals, tmp_path
):
    signed = _checkpoints(session)
    victim = reveals[3]
    covering = min(seq for seq in signed if seq >= victim)
    _drop_guards(session)
    session.execute(text("DELETE FROM audit_checkpoint"))
    session.commit()
    _rewrite_from(session, victim, "someone-else")

    bad = _verify(instance)  # the file outside the database still holds the signatures
    assert bad.returncode == 1
    assert f"チェックポイント {covering} の署名済みハッシュと一致しません" in bad.stderr

    # The copy verified without that file: nothing signed, refused too (it used to be "完全").
    alone = _verify(instance, "--checkpoints", str(tmp_path / "none.jsonl"))
    assert alone.returncode == 1 and "完全" not in alone.stdout
    assert alone.stderr.strip() == (
        "監査ログを完全とは確認できません: 署名付きチェックポイントが1件もありません"
        f"（イベント {_head(session)} 件のどれも署名で保護されておらず、書き換えられても"
        "検出できません）"
    )


def test_an_instance_with_events_but_no_checkpoint_fails_audit_verify(
    app, session, instance, make_user, login, client
):
    """An instance whose log was never signed (or whose signatures were removed, database
    and file): its chain may have been rewritten from the first event on."""
    _signed_in(make_user, login, "Auditor")
    _drop_guards(session)
    session.execute(text("DELETE FROM audit_checkpoint"))
    session.commit()
    Path(app.config["AUDIT_CHECKPOINT_FILE"]).unlink()

    bad = _verify(instance)
    assert bad.returncode == 1 and "完全" not in bad.stdout
    assert "署名付きチェックポイントが1件もありません" in bad.stderr

    page = assert_clear_refusal(client.get("/audit-verify/"), "完全とは確認できません")
    assert "監査ログは完全です" not in page and "1件もありません" in page
    event = audit_events("audit.verify")[-1]
    assert event.outcome == "failure" and json.loads(event.details)["kind"] == "unsigned"
    # The worker's next run signs the log again (from the first event: the chain fits).
    assert signing.sign_now(app).taken is not None
    assert _verify(instance).returncode == 0


def test_a_lock_held_on_the_chain_head_refuses_a_reveal_instead_of_hanging(
    app, session, vault, instance, backend, make_user, login, client
):
    app.config["AUDIT_LOCK_TIMEOUT_SECONDS"] = 1
    person = add_employee_with_number(session, vault, SAMPLE_NUMBER)
    _signed_in(make_user, login, "ClientStaff")
    url = f"/people/{person.id}"
    token = csrf_token(client, url)
    before = len(audit_events("number.reveal"))
    with hold_chain_head(instance, backend):
        started = time.monotonic()
        response = client.post(f"{url}/reveal", data={"purpose": "年末調整", "csrf_token": token})
        waited = time.monotonic() - started
    assert waited < 8, waited
    html = assert_clear_refusal(response, "ロックされたまま", "実行されませんでした")
    assert "1234 5678 9018" not in html and SAMPLE_NUMBER not in html
    assert len(audit_events("number.reveal")) == before  # no event, no number
    # Released: the same reveal works and is on the record.
    ok = post_form(client, f"{url}/reveal", {"purpose": "年末調整"}, token_from=url)
    assert "1234 5678 9018" in ok.get_data(as_text=True)
    assert len(audit_events("number.reveal")) == before + 1


def test_a_lock_held_on_the_chain_head_answers_a_japanese_503(
    app, session, instance, backend, make_user, login, client
):
    """Any audited page the views do not answer themselves: the central handler's 503."""
    app.config["AUDIT_LOCK_TIMEOUT_SECONDS"] = 1
    _signed_in(make_user, login, "Auditor")
    before = len(audit_events("audit.verify"))
    with hold_chain_head(instance, backend):
        started = time.monotonic()
        response = client.get("/audit-verify/")
        waited = time.monotonic() - started
    assert waited < 8, waited
    assert_clear_refusal(response, "監査ログに記録できないため", status=503)
    assert response.headers["Retry-After"]
    assert len(audit_events("audit.verify")) == before  # refused: nothing done unrecorded
    log_text = Path(app.config["LOG_FILE"]).read_text(encoding="utf-8")
    assert "audit unavailable on /audit-verify/: action refused" in log_text


def _head(session) -> int:
    session.expire_all()
    return session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).scalars().first()


def test_a_lock_held_on_the_chain_head_gives_the_public_form_a_japanese_503(
    form_app, subject, household, instance, backend
):
    """The public form records its own events (second factor, submission): the same bound."""
    form_app.config["AUDIT_LOCK_TIMEOUT_SECONDS"] = 1
    subject.enter(household["token"])
    before = len(audit_events("intake.auth"))
    with hold_chain_head(instance, backend):
        started = time.monotonic()
        response = subject.verify()
        waited = time.monotonic() - started
    assert waited < 8, waited
    assert_clear_refusal(response, "この操作は保存されていません", status=503)
    assert len(audit_events("intake.auth")) == before
    assert subject.verify().status_code == 302  # released: the same step goes through
