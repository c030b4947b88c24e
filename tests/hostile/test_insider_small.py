"""Insider attacks on the small seams: an active PDF slipped into an upload, a document
that could be fetched outside the audited opening, a return archive not made by the
operator, a mail header broken by CR/LF, files readable by anyone on the host, and an
unknown list action. Each ends in a clear Japanese refusal and an audit event."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.access.policy import CLIENT_STAFF, OPERATOR, ShellActor
from app.collection import campaigns, paper
from app.lifecycle import returns
from app.models import CampaignKind, Delivery, DeliveryStatus, PaperPart, Person, SubmissionPart
from app.vault import sealed
from tests import support
from tests.cli_runner import ROOT
from tests.collection import flows
from tests.collection.conftest import FORM_URL, RETURN_ADDRESS, future_business_day, jobs  # noqa: F401
from tests.hostile.conftest import assert_clear_refusal, audit_events, count
from tests.public_form.conftest import NUMBER_SELF, jpeg, pdf
from tests.support import add_kit_postage_rates


def _submit_with_pdf(subject, external, front: bytes):
    ref = str(external["head"].id)
    subject.login(external["token"])
    subject.consent()
    subject.number(ref, NUMBER_SELF)
    subject.parts_before = count(SubmissionPart)
    response = subject.documents(
        ref, "card", {"card_front": (front, "front.pdf"), "card_back": (jpeg(), "back.jpg")}
    )
    return ref, response


# -- a document is shown in the audited opening, never downloaded --------------------------------
def test_a_pdf_is_shown_as_page_images_in_the_opening_never_as_a_download(
    client, make_user, portal_login, subject, external, session
):
    _ref, response = _submit_with_pdf(subject, external, pdf())
    assert response.status_code == 302
    assert subject.submit().headers["Location"].endswith("/done")
    user, secret = make_user(OPERATOR)
    # Assigned by the client's staff and claimed in the queue: only then opened.
    support.give_case(
        session, external["req"], support.actor(OPERATOR, user_id=user.id, name=user.username)
    )
    portal_login(user.username, secret)
    page = client.get("/intake/").get_data(as_text=True)
    opened = support.post_form(
        client,
        re.search(r'action="(/intake/[^"]+/open)"', page).group(1),
        {"purpose": "受付内容の確認"},
        token_from="/intake/",
    ).get_data(as_text=True)
    # The PDF's page and the JPEG back, both as images inside the page the opening rendered.
    assert opened.count('src="data:image/jpeg;base64,') == 2
    assert "（PDF・1 ページ）" in opened
    assert "/intake/document/" not in opened and "ダウンロード" not in opened
    part = (
        session.execute(select(SubmissionPart).where(SubmissionPart.part == "document"))
        .scalars()
        .first()
    )
    assert client.get(f"/intake/document/{part.id}").status_code == 404
    # One audited opening showed everything.
    assert [e.actor_name for e in audit_events("intake.open")] == [user.username]


# -- an unknown list action ---------------------------------------------------------------------
def test_an_unknown_list_action_is_a_clear_400_and_is_audited(client, make_user, login):
    user, secret = make_user("Auditor")
    login(user.username, totp_secret=secret)
    listing = client.get("/auditlogview/list/")
    assert listing.status_code == 200
    by_get = client.get("/auditlogview/action/export_everything/1")
    assert_clear_refusal(by_get, "この画面にはその操作はありません", status=400)
    by_post = support.post_form(
        client,
        "/auditlogview/action_post",
        {"action": "delete_all", "rowid": "1"},
        token_from="/resetmypassword/form",
    )
    assert_clear_refusal(by_post, "この画面にはその操作はありません", status=400)
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


# -- mail headers ------------------------------------------------------------------------------
def _collection_settings(app, session) -> None:
    """What tests/collection sets for every test there (its fixture is autouse: not imported)."""
    app.config.update(
        OPERATOR_POSTAL_CODE="100-0005",
        OPERATOR_ADDRESS=RETURN_ADDRESS,
        PUBLIC_FORM_URL=FORM_URL,
        CLIENT_NAME="見本機構",
        OPERATOR_NAME="見本BPO株式会社",
    )
    add_kit_postage_rates(session, app)
    session.commit()


def test_a_subject_with_a_line_break_is_refused_when_the_template_is_saved(
    app, session, client, make_user, login, staff
):
    _collection_settings(app, session)
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="件名の改行",
        kind="employee",
        deadline=future_business_day(),
        purpose_text="給与所得の源泉徴収票作成事務",
    )
    session.commit()
    user, secret = make_user(CLIENT_STAFF)
    login(user.username, totp_secret=secret)
    letters = f"/campaigns/{campaign.id}/letters"
    response = support.post_form(
        client,
        letters,
        {
            "kind": "request_email",
            "subject": "ご提出のお願い\r\nBcc: everyone@attacker.example",
            "body": "{氏名} 様\n{リンク}",
        },
    )
    assert_clear_refusal(response, "件名・表題: 改行は使えません", status=422)
    session.expire_all()
    assert "attacker" not in campaigns.letter(session, campaign.id, "request_email")[0]


def test_a_stored_address_with_a_line_break_fails_the_delivery_not_sticks_in_sending(
    app,
    session,
    staff,
    operators,
    jobs,  # noqa: F811 - the fixture imported above
):
    _collection_settings(app, session)
    app.config["SMTP_URL"] = None  # the outbox folder: what would have been sent is visible
    campaign, _ = flows.campaign_with_targets(app, staff)
    # An address written before the input checks existed, or straight into the database.
    person = session.execute(select(Person).where(Person.email.is_not(None))).scalars().one()
    person.email = "taro@example.jp\r\nBcc: everyone@attacker.example"
    session.commit()
    flows.dispatch(campaign, operators[0], jobs)
    session.expire_all()
    delivery = session.execute(select(Delivery).where(Delivery.channel == "email")).scalar_one()
    assert delivery.status == DeliveryStatus.GAVE_UP  # 送信失敗（要対応）, never 送信中
    assert (
        delivery.last_error
        == "メールを作成しません。宛先: 改行は使えません（1行で入力してください）"
    )
    [event] = audit_events("mail.refused", "denied")
    assert str(delivery.id) in event.object_ids
    outbox = Path(app.config["OUTBOX_DIR"])
    assert not any(b"attacker" in p.read_bytes() for p in outbox.glob("*.eml"))


def test_a_user_address_with_a_line_break_is_refused_on_the_user_screen(
    app, session, client, make_user, login
):
    target, _ = make_user(OPERATOR)
    admin, secret = make_user("SystemAdmin", roster=None)
    login(admin.username, totp_secret=secret)
    edit = f"/users/edit/{target.id}"
    page = client.get(edit)
    assert page.status_code == 200
    response = support.post_form(
        client,
        edit,
        {
            "first_name": target.first_name,
            "last_name": target.last_name,
            "username": target.username,
            "email": "op@example.jp\r\nBcc: all@attacker.example",
            "active": "y",
            "roles": [str(r.id) for r in target.roles],
        },
    )
    assert_clear_refusal(response, "メールアドレス: 改行は使えません")
    session.expire_all()
    assert "attacker" not in session.get(type(target), target.id).email


# -- the return archive: only the operator's ---------------------------------------------------
def _zip_with_manifest(rows: str) -> bytes:
    """A return archive's content as a forger would make it: CSV plus a matching manifest."""
    import hashlib
    import io
    import zipfile

    data = rows.encode("utf-8-sig")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("people_staff.csv", data)
        manifest = {
            "format": "mnv-return-archive-v1",
            "files": [{"path": "people_staff.csv", "sha256": hashlib.sha256(data).hexdigest()}],
        }
        zf.writestr("manifest.json", json.dumps(manifest))
    return out.getvalue()


def _seal(path: Path, recipient, content: bytes, signer=None) -> None:
    with path.open("wb") as handle:
        writer = sealed.SealedWriter(
            handle,
            "return-archive",
            sealed.to_recipient(recipient),
            {"client": "見本市役所"},
            signer,
        )
        writer.write(content)
        writer.close()


def _splice(genuine: Path, path: Path, recipient, content: bytes) -> None:
    """Keep the operator's genuine signed header; wrap a key of one's own to the client's
    public key (no secret) and seal one's own content under it."""
    import secrets as secrets_mod
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = genuine.read_bytes()
    (size,) = struct.unpack(">I", raw[8:12])
    header_bytes = raw[12 : 12 + size]
    digest = sealed.hashlib.sha256(sealed.MAGIC + header_bytes).digest()
    key = secrets_mod.token_bytes(32)
    blob = sealed._suite(recipient.kem).encrypt(key, recipient.key, info=sealed._hpke_info(digest))
    chunk = AESGCM(key).encrypt(sealed._nonce(0, True), content, digest)
    path.write_bytes(
        raw[: 12 + size]
        + struct.pack(">I", len(blob))
        + blob
        + struct.pack(">I", len(chunk))
        + chunk
    )


def test_the_client_opens_only_an_archive_the_operator_signed(
    session, vault, app, tmp_path, capsys
):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    client = tmp_path / "client"
    assert sealed.main(["keygen", "--out", str(client)]) == 0
    recipient = sealed.load_public((tmp_path / "client.pub").read_text())
    operator_pem = tmp_path / "operator.pem"
    operator_pem.write_bytes(vault.keys.audit_public_key_pem())
    genuine = tmp_path / "genuine.mnva"
    returns.export_archive(
        session,
        vault,
        ShellActor(name="cli:test"),
        genuine,
        recipient,
        "契約終了に伴う返却",
        client_name="見本市役所",
        audit_public_pem=vault.keys.audit_public_key_pem(),
        checkpoint_file=app.config["AUDIT_CHECKPOINT_FILE"],
    )
    forged_rows = "氏名,個人番号\n偽 太郎,123456789018\n"
    unsigned, other_signer, spliced = (tmp_path / f"{n}.mnva" for n in ("u", "o", "s"))
    _seal(unsigned, recipient, _zip_with_manifest(forged_rows))
    _seal(
        other_signer,
        recipient,
        _zip_with_manifest(forged_rows),
        ed25519.Ed25519PrivateKey.generate().sign,
    )
    _splice(genuine, spliced, recipient, _zip_with_manifest(forged_rows))
    tampered = tmp_path / "t.mnva"
    data = bytearray(genuine.read_bytes())
    data[data.index(b'"client":"') + 11] ^= 0x01  # the public header, after signing
    tampered.write_bytes(bytes(data))

    def open_(archive: Path, out: str) -> tuple[int, str]:
        capsys.readouterr()
        code = sealed.main(
            [
                "open",
                str(archive),
                "--key",
                f"{client}.key",
                "--operator-key",
                str(operator_pem),
                "--out",
                str(tmp_path / out),
            ]
        )
        return code, capsys.readouterr().err

    expected = {
        unsigned: "発行元の署名がありません",
        other_signer: "発行元の署名を確認できません",
        spliced: "ファイル鍵が署名された内容と一致しません",
        tampered: "発行元の署名を確認できません",
    }
    for archive, phrase in expected.items():
        code, err = open_(archive, archive.stem)
        assert code == 1 and err.startswith("エラー: ") and phrase in err, (archive.stem, err)
        assert not any((tmp_path / archive.stem).glob("*.csv"))
    code, err = open_(genuine, "ok")
    assert code == 0, err
    assert (tmp_path / "ok" / "manifest.json").exists()
    # Without the pinned key the tool does not open anything at all.
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        sealed.main(["open", str(genuine), "--key", f"{client}.key", "--out", str(tmp_path / "x")])
    assert stopped.value.code == 2
    assert "エラー: 次の指定が必要です: --operator-key" in capsys.readouterr().err
    # The operator's export is audited (the refusals happen on the client's machine, offline).
    assert audit_events("return.exported")


# -- an active PDF among the uploads -------------------------------------------------------------
HEX_ESCAPED_SCRIPT = pdf(b"/Open#41ction << /S /Java#53cript /J#53 (app.alert(1)) >> ")


def test_a_hex_escaped_script_pdf_is_refused_on_the_public_form_and_audited(
    subject, external, session
):
    _ref, response = _submit_with_pdf(subject, external, HEX_ESCAPED_SCRIPT)
    html = assert_clear_refusal(response, "マイナンバーカード（表面）: ", status=422)
    assert "開いたときの自動動作: /OpenAction" in html and "受け付けられません" in html
    assert count(SubmissionPart) == subject.parts_before  # the number only, no document
    [event] = audit_events("upload.refused", "denied")
    assert json.loads(event.details) == {"reason": "pdf_active_content", "found": "/OpenAction"}
    assert str(external["req"].id) in event.object_ids


def test_a_hex_escaped_script_pdf_is_refused_as_a_paper_scan_and_audited(
    app, session, staff, operators
):
    _collection_settings(app, session)
    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    req = flows.request_of("X2001")
    item = paper.receive_envelope(
        session,
        operators[0],
        request_code=req.request_code,
        received_on=campaigns.jptime.today_jst().isoformat(),
        tracking=None,
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_RETURN_METHOD"],
    )
    with pytest.raises(paper.PaperError, match="スキャン画像: この PDF には") as caught:
        paper.add_scan(
            session,
            app.extensions["mynumber_keyring"],
            operators[0],
            item,
            str(req.person_id),
            "card_front",
            pdf(b"/Names << /Embedded#46iles << >> >> "),
        )
    assert "添付ファイル: /EmbeddedFiles" in str(caught.value)
    assert count(PaperPart) == 0
    [event] = audit_events("upload.refused", "denied")
    assert event.actor_name == operators[0].name
    assert json.loads(event.details)["found"] == "/EmbeddedFiles"
