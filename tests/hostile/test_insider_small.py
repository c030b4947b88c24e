"""Insider attacks on the small seams: an active PDF slipped into an upload, a document
download that would run under the portal's policy, a return archive not made by the
operator, a mail header broken by CR/LF, files readable by anyone on the host, and an
unknown list action. Each ends in a clear Japanese refusal and an audit event."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from app.policy import OPERATOR
from tests import support
from tests.cli_runner import ROOT
from tests.hostile.conftest import assert_clear_refusal, audit_events
from tests.public_form.conftest import NUMBER_SELF, jpeg, pdf


def _submit_with_pdf(subject, external, front: bytes):
    ref = str(external["head"].id)
    subject.login(external["token"])
    subject.consent()
    subject.number(ref, NUMBER_SELF)
    response = subject.documents(
        ref, "card", {"card_front": (front, "front.pdf"), "card_back": (jpeg(), "back.jpg")}
    )
    return ref, response


# -- the document download keeps its own sandbox --------------------------------------------------
def test_a_pdf_download_runs_in_a_sandbox_not_under_the_portal_policy(
    client, make_user, portal_login, subject, external, session
):
    _ref, response = _submit_with_pdf(subject, external, pdf())
    assert response.status_code == 302
    assert subject.submit().headers["Location"].endswith("/done")
    user, secret = make_user(OPERATOR)
    portal_login(user.username, secret)
    page = client.get("/intake/").get_data(as_text=True)
    opened = support.post_form(
        client,
        re.search(r'action="(/intake/[^"]+/open)"', page).group(1),
        {"purpose": "受付内容の確認"},
        token_from="/intake/",
    )
    link = re.search(r'href="(/intake/document/[^"]+)"', opened.get_data(as_text=True)).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    policy = [part.strip() for part in download.headers["Content-Security-Policy"].split(";")]
    assert policy == ["sandbox", "default-src 'none'"]
    assert download.headers.getlist("Content-Security-Policy") == [
        download.headers["Content-Security-Policy"]
    ]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    # The download itself is audited (who fetched which document).
    assert [e.actor_name for e in audit_events("intake.open_document")] == [user.username]
    # The portal's own pages keep the portal policy.
    assert "sandbox" not in client.get("/intake/").headers["Content-Security-Policy"]


# -- an unknown list action ---------------------------------------------------------------------
def test_an_unknown_list_action_is_a_clear_400_and_is_audited(client, make_user, login):
    user, secret = make_user("Auditor")
    login(user.username, totp_secret=secret)
    listing = client.get("/auditlogview/list/")
    assert listing.status_code == 200
    by_get = client.get("/auditlogview/action/export_everything/1")
    assert_clear_refusal(by_get, "その一括操作はありません", status=400)
    by_post = support.post_form(
        client,
        "/auditlogview/action_post",
        {"action": "delete_all", "rowid": "1"},
        token_from="/resetmypassword/form",
    )
    assert_clear_refusal(by_post, "その一括操作はありません", status=400)
    refused = audit_events("access.denied", "denied")
    details = [json.loads(e.details) for e in refused]
    assert [(e.actor_name, d["reason"]) for e, d in zip(refused, details, strict=True)] == [
        (user.username, "unknown_action")
    ] * 2
    assert {d["route"] for d in details} == {
        "/auditlogview/action/<string:name>/<pk>",
        "/auditlogview/action_post",
    }


# -- files on the host ------------------------------------------------------------------------
def _run_from_a_shell(args: list[str], home: Path) -> subprocess.CompletedProcess:
    """``mynumber ARGS`` as an administrator starts it from a login shell (umask 022)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": str(home),
        "MYNUMBER_SQLITE_SYNCHRONOUS": "OFF",
    }
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),
    )


def _modes(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): oct(p.stat().st_mode & 0o777) for p in sorted(home.rglob("*"))
    }


def test_a_local_user_cannot_read_the_instance_files_created_from_a_shell(tmp_path):
    home = tmp_path / "home"
    result = _run_from_a_shell(["init"], home)
    assert result.returncode == 0, result.stderr
    assert _run_from_a_shell(["audit", "verify"], home).returncode == 0
    modes = _modes(home)
    for name in ("mynumber.db", "mynumber.log", "keyring.json", "secret_key"):
        assert name in modes, sorted(modes)
    public = {"intake_public_key.json"}  # the form host's copy of a public key, by design
    loose = {
        name: mode
        for name, mode in modes.items()
        if name not in public and mode != ("0o700" if (home / name).is_dir() else "0o600")
    }
    assert loose == {}


def test_init_tightens_an_instance_an_older_version_left_readable(tmp_path):
    home = tmp_path / "home"
    assert _run_from_a_shell(["init"], home).returncode == 0
    for name in ("mynumber.db", "mynumber.log"):
        (home / name).chmod(0o644)
    (home / "outbox").chmod(0o755)
    assert _run_from_a_shell(["init"], home).returncode == 0
    modes = _modes(home)
    assert (modes["mynumber.db"], modes["mynumber.log"], modes["outbox"]) == (
        "0o600",
        "0o600",
        "0o700",
    )
