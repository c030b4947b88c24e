"""The return archive: sealed to the client's key, opened by the client's tool, equal to the
export, checked against the live data without decrypting anything."""

import csv
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from sqlalchemy import select

from app.access import policy
from app.access.policy import ShellActor
from app.lifecycle import disposal, returns
from app.models import AuditEvent, Person
from app.people import registry
from app.vault import sealed
from tests.lifecycle.helpers import dispose, export_rows, population, totp_now, user_actor
from tests.support import leaks, number_forms

CLI = ShellActor(name="cli:test")


def _keys():
    private_text, public_text = sealed.generate_recipient()
    return sealed.load_private(private_text), sealed.load_public(public_text)


def _export(session, vault, app, out, recipient, who=CLI, purpose="契約終了に伴う返却"):
    return returns.export_archive(
        session,
        vault,
        who,
        out,
        recipient,
        purpose,
        client_name="見本市役所",
        audit_public_pem=vault.keys.audit_public_key_pem(),
        checkpoint_file=app.config["AUDIT_CHECKPOINT_FILE"],
    )


def _read_csv(path):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_archive_opens_with_the_private_key_and_matches_the_export(
    session, vault, app, make_user, tmp_path
):
    crowd = population(session, vault, n=6)
    head = session.get(Person, crowd[0].id)
    child = registry.add_person(
        session, vault, kind="dependent", name="保管試験子", household_head=head, dependent_seq=1
    )
    registry.register_number(session, vault, child, "123456789018", "manual")
    registry.register_number(session, vault, head, "111111111118", "manual")  # supersedes
    session.commit()
    dispose(session, vault, app, make_user, [crowd[5].id])
    expected = export_rows(session, vault)

    private, recipient = _keys()
    out = tmp_path / "return.mnva"
    result = _export(session, vault, app, out, recipient)
    assert result.counts["people"] == 6 and result.counts["numbers"] == 7
    raw = out.read_bytes()
    for someone in crowd:
        assert someone.name.encode() not in raw
        assert not any(form in raw for form in number_forms(someone.number))

    opened = sealed.open_archive(
        out, private, tmp_path / "opened", operator_key=vault.keys.audit_signing_key().public_key()
    )
    folder = opened.folder
    assert opened.manifest["purpose"] == "契約終了に伴う返却"
    for item in opened.manifest["files"]:
        data = (folder / item["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
    rows = _read_csv(folder / "people_staff.csv")
    assert rows[0] == [
        "職員番号",
        "職員氏名",
        "本人区分",
        "扶養者コード",
        "生年月日",
        "マイナンバー",
    ]
    assert sorted(rows[1:]) == expected["staff"]
    assert _read_csv(folder / "people_external.csv") == [
        ["委員番号", "氏名", "氏名カナ"] + ["生年月日", "住所", "マイナンバー"]
    ]
    exports_audited = session.execute(
        select(AuditEvent).where(AuditEvent.action == "numbers.export")
    ).scalars()
    assert any(
        f'"return_archive": "{opened.manifest["archive_id"]}"' in e.details for e in exports_audited
    )
    dependent = next(r for r in rows if r[1] == "保管試験子")
    assert dependent == [
        crowd[0].code,
        "保管試験子",
        "扶養親族",
        f"{crowd[0].code}-01",
        "",
        "123456789018",
    ]
    history = _read_csv(folder / "number_history.csv")
    assert {r[7] for r in history[1:]} >= {crowd[0].number, "111111111118"}
    assert any(r[3] == "変更前（失効）" and r[7] == crowd[0].number for r in history)
    full = {r[0]: r for r in _read_csv(folder / "people_all_fields.csv")[1:]}
    assert full[str(crowd[1].id)][10] == crowd[1].address
    assert full[str(crowd[5].id)][15] == "廃棄済み" and full[str(crowd[5].id)][6] == ""
    items = _read_csv(folder / "disposal_items.csv")
    assert [r[1] for r in items[1:]] == [str(crowd[5].id)]
    # The disposed person as the client knows them, and every time in JST with its offset.
    assert items[1][3:5] == [crowd[5].code, crowd[5].name]
    assert items[1][5].endswith("+09:00")
    assert full[str(crowd[1].id)][16].endswith("+09:00")  # 登録日時
    assert "+09:00" in (folder / "README.txt").read_text(encoding="utf-8")
    audit_rows = _read_csv(folder / "audit_log.csv")
    last = audit_rows[-1]
    assert int(last[0]) == result.audit_seq
    assert session.get(AuditEvent, result.audit_seq).hash == last[-1]
    assert (folder / "audit_public_key.pem").read_bytes() == vault.keys.audit_public_key_pem()
    assert "返却データ" in (folder / "README.txt").read_text(encoding="utf-8")


def test_nothing_in_the_clear_is_written_on_our_side(session, vault, app):
    crowd = population(session, vault, n=3)
    _, recipient = _keys()
    out = app.config["RETURN_DIR"] + "/r.mnva"
    _export(session, vault, app, out, recipient)
    assert leaks(app, [s.number for s in crowd]) == []


def test_verify_checks_the_archive_against_live_data(session, vault, app, make_user, tmp_path):
    crowd = population(session, vault, n=4)
    _, recipient = _keys()
    out = tmp_path / "r.mnva"
    _export(session, vault, app, out, recipient)
    public = vault.keys.audit_signing_key().public_key()
    check = returns.verify_archive(session, vault, out, public)
    assert check.ok and check.signed, check.problems
    assert check.meta["fingerprint"]["active"] == 4

    session.get(Person, crowd[1].id).name = "改名 後子"
    session.commit()
    check = returns.verify_archive(session, vault, out, public)
    assert not check.ok and check.problems == ["人物データの指紋が一致しません"]

    dispose(session, vault, app, make_user, [crowd[2].id])
    check = returns.verify_archive(session, vault, out, public)
    assert "保管中の人数が一致しません（アーカイブ 4、現在 3）" in check.problems

    data = bytearray(out.read_bytes())
    index = data.index(b'"client":"') + 11
    data[index] ^= 0x01  # edit the public header: the signature no longer holds
    forged = tmp_path / "forged.mnva"
    forged.write_bytes(bytes(data))
    check = returns.verify_archive(session, vault, forged, public)
    assert not check.signed


def test_a_wrong_key_or_an_altered_archive_does_not_open(session, vault, app, tmp_path):
    population(session, vault, n=2)
    private, recipient = _keys()
    other, _ = _keys()
    out = tmp_path / "r.mnva"
    _export(session, vault, app, out, recipient)
    with pytest.raises(sealed.SealedError, match="別の鍵あて"):
        sealed.open_archive(
            out, other, tmp_path / "x", operator_key=vault.keys.audit_signing_key().public_key()
        )
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x40
    bad = tmp_path / "bad.mnva"
    bad.write_bytes(bytes(data))
    with pytest.raises(sealed.SealedError, match="復号できません"):
        sealed.open_archive(
            bad, private, tmp_path / "y", operator_key=vault.keys.audit_signing_key().public_key()
        )
    assert not any((tmp_path / "y").iterdir())


def test_a_standard_x25519_key_works_too(session, vault, app, tmp_path):
    """A client may send an X25519 public key made with `openssl genpkey -algorithm X25519`."""
    population(session, vault, n=1)
    key = x25519.X25519PrivateKey.generate()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out = tmp_path / "r.mnva"
    _export(session, vault, app, out, sealed.load_public(public_pem))
    opened = sealed.open_archive(
        out,
        sealed.load_private(private_pem),
        tmp_path / "o",
        operator_key=vault.keys.audit_signing_key().public_key(),
    )
    assert "people_staff.csv" in opened.files


def test_export_is_refused_without_permission_or_purpose_and_audited(
    session, vault, app, make_user, tmp_path
):
    population(session, vault, n=1)
    _, recipient = _keys()
    operator, _ = make_user("Operator")
    with pytest.raises(policy.PermissionDenied):
        _export(
            session, vault, app, tmp_path / "a", recipient, who=user_actor(operator, "Operator")
        )
    with pytest.raises(returns.ReturnError, match="利用目的"):
        _export(session, vault, app, tmp_path / "b", recipient, purpose=" ")
    denied = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "return.export", AuditEvent.outcome == "denied"
        )
    ).scalars()
    assert len(list(denied)) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_portal_request_is_built_by_the_job(session, vault, app, make_user, tmp_path):
    from app.jobs.lifecycle import build_return_archive
    from app.platform.queue import enqueue

    population(session, vault, n=2)
    private, recipient = _keys()
    staff, secret = make_user("ClientStaff")
    who = user_actor(staff, "ClientStaff")
    with pytest.raises(policy.PermissionDenied, match="確認コード"):
        returns.request_archive(session, vault, who, "返却", recipient.text(), "000000")
    with pytest.raises(returns.ReturnError, match="公開鍵"):
        returns.request_archive(session, vault, who, "返却", "not a key", totp_now(secret))
    row = returns.request_archive(session, vault, who, "返却", recipient.text(), totp_now(secret))
    assert row.status == "pending"
    assert enqueue(build_return_archive, row.id) == "ready"
    session.expire_all()
    row = session.get(type(row), row.id)
    assert row.person_count == 2 and row.sha256 == sealed.sha256_file(row.file_name)
    opened = sealed.open_archive(
        row.file_name,
        private,
        tmp_path / "o",
        operator_key=vault.keys.audit_signing_key().public_key(),
    )
    assert json.loads((opened.folder / "manifest.json").read_text())["purpose"] == "返却"
    assert disposal.is_cli(CLI) and not disposal.is_cli(who)
