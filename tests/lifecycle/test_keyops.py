"""Key operations: rotation re-seals every KEK-sealed secret, an old KEK is retired only when
nothing needs it any more, and afterwards everything still opens while the old key is gone
from the key ring file."""

from __future__ import annotations

import base64
import io

import pytest
from sqlalchemy import select

from app.access.policy import CLIENT_STAFF, ShellActor
from app.collection import campaigns, kits
from app.core.mynumber import make_valid
from app.io import exports, layouts, tickets
from app.lifecycle import backup, keyops
from app.lifecycle.keyops import BackupsWouldBeLost, RetireRefused
from app.models import (
    PRINT_FILE,
    AuditEvent,
    CampaignKind,
    DataKey,
    PersonKind,
    PrintBatch,
    PrintBatchFile,
    VaultUser,
)
from app.people import registry
from app.vault import sealed
from app.vault.envelopes import header_key_version
from tests.collection.conftest import future_business_day
from tests.support import actor, add_employee_with_number

CLI = ShellActor(name="cli:test")
ADMIN = actor("SystemAdmin", name="admin")
NUMBER = make_valid("12345678901")
PDF = b"%PDF-1.4 letters for the post"


def _stored_person(session, vault):
    return add_employee_with_number(session, vault, NUMBER, name="鍵 太郎", code="K0001")


def _print_file(session, vault) -> PrintBatch:
    """A rendered print batch of one part, sealed under the current KEK as kits seals it."""
    campaign = campaigns.create_campaign(
        session,
        actor(CLIENT_STAFF, name="staff"),
        name="鍵の試験",
        kind=CampaignKind.EMPLOYEE,
        deadline=future_business_day(),
        purpose_text="源泉徴収票作成事務",
        month=None,
    )
    batch = PrintBatch(campaign_id=campaign.id, status="ready", item_count=1, created_by="t")
    session.add(batch)
    session.flush()
    session.add(
        PrintBatchFile(
            batch_id=batch.id,
            part_no=1,
            first_position=1,
            last_position=1,
            pages=1,
            size_bytes=len(PDF),
            sealed=vault.seal_system(
                PRINT_FILE.purpose, PRINT_FILE.aad(batch_id=batch.id, part_no=1), PDF
            ),
        )
    )
    session.commit()
    return batch


def _actions(session) -> list[tuple[str, str]]:
    return [
        (e.action, e.outcome)
        for e in session.execute(
            select(AuditEvent).where(AuditEvent.action.like("keys.%")).order_by(AuditEvent.seq)
        ).scalars()
    ]


def _kek_b64(vault, version: int) -> str:
    return base64.b64encode(vault.keys.kek(version)).decode("ascii")


# -- rotation ----------------------------------------------------------------------------------
def test_rotation_reseals_totp_print_files_and_tickets_under_the_new_kek(session, vault, make_user):
    user, _secret = make_user("Operator")
    batch = _print_file(session, vault)
    ticket = tickets.create(session, vault, user.id, "import", 1, b"payload")
    keyops.rotate(session, vault, ADMIN)
    session.expire_all()
    blobs = [
        session.get(VaultUser, user.id).totp_secret_enc,
        session.execute(select(PrintBatchFile.sealed)).scalar_one(),
        session.execute(select(tickets.IoTicket.payload)).scalar_one(),
    ]
    assert [header_key_version(b) for b in blobs] == [2, 2, 2]
    assert kits.batch_file(session, vault, actor("Operator"), batch, 1) == PDF
    assert tickets.take(session, vault, str(ticket), user.id, "import") == (1, b"payload")
    rotated = session.execute(
        select(AuditEvent).where(AuditEvent.action == "keys.rotated")
    ).scalar_one()
    # The operator's and the golden instance's `admin` (enrolled, as every account must be).
    assert '"TOTP シークレット": 2' in rotated.details


# -- the list ----------------------------------------------------------------------------------
def test_usage_counts_what_each_version_protects_without_key_material(
    session, vault, make_user, tmp_path
):
    _stored_person(session, vault)
    make_user("Operator")
    backup.create_backup(session, vault, CLI, tmp_path / "old.mnvbak")
    vault.keys.add_kek_version()  # a new KEK, nothing moved to it yet
    found = {u.version: u for u in keyops.usage(session, vault, tmp_path)}
    assert set(found) == {1, 2}
    assert not found[1].current and found[2].current
    assert found[1].data_keys == 1 and found[1].sealed["TOTP シークレット"] >= 1
    assert found[1].backups == (str(tmp_path / "old.mnvbak"),)
    assert found[2].in_database == 0 and found[2].backups == ()
    assert _kek_b64(vault, 1) not in repr(found)


# -- refusals ----------------------------------------------------------------------------------
def test_the_current_kek_cannot_be_retired(session, vault):
    with pytest.raises(RetireRefused, match="現在の KEK"):
        keyops.retire(session, vault, ADMIN, 1)
    assert vault.keys.kek_versions() == [1]
    assert _actions(session) == [("keys.retire", "success"), ("keys.retire", "failure")]


def test_an_unknown_kek_cannot_be_retired(session, vault):
    with pytest.raises(RetireRefused, match="バージョン 7 は鍵リングにありません"):
        keyops.retire(session, vault, ADMIN, 7)


def test_a_kek_that_still_wraps_data_cannot_be_retired(session, vault, make_user):
    _stored_person(session, vault)
    make_user("Operator")
    vault.keys.add_kek_version()  # as if a rotation had stopped before re-wrapping
    with pytest.raises(RetireRefused) as refused:
        keyops.retire(session, vault, ADMIN, 1)
    message = str(refused.value)
    assert "データ鍵 1 件" in message and "TOTP シークレット" in message
    assert "mynumber keys rotate" in message
    assert vault.keys.kek_versions() == [1, 2]
    person_id = session.execute(select(DataKey.person_id)).scalar_one()
    assert registry.reveal(session, vault, actor(CLIENT_STAFF), person_id, "確認") == NUMBER


def test_backups_under_the_kek_need_the_operators_yes_then_become_unrestorable(
    session, vault, tmp_path
):
    _stored_person(session, vault)
    old = tmp_path / "before-rotation.mnvbak"
    backup.create_backup(session, vault, CLI, old)
    keyops.rotate(session, vault, ADMIN)
    with pytest.raises(BackupsWouldBeLost) as refused:
        keyops.retire(session, vault, ADMIN, 1, backup_dir=tmp_path)
    assert refused.value.files == [str(old)]
    assert "before-rotation.mnvbak" in str(refused.value) and "--yes" in str(refused.value)
    assert vault.keys.kek_versions() == [1, 2]

    result = keyops.retire(session, vault, ADMIN, 1, backup_dir=tmp_path, accept_unrestorable=True)
    assert result.unrestorable_backups == (str(old),)
    with open(old, "rb") as handle, pytest.raises(sealed.SealedError, match="復号できません"):
        sealed.open_stream(handle, backup.kek_unwrapper(vault), purpose="backup")
    retired = session.execute(
        select(AuditEvent).where(AuditEvent.action == "keys.retired")
    ).scalar_one()
    assert "before-rotation.mnvbak" in retired.details


# -- rotate, retire, and everything still works ------------------------------------------------
def test_after_rotate_and_retire_everything_still_opens_and_the_old_kek_is_gone(
    app, session, vault, make_user, login, client
):
    person = _stored_person(session, vault)
    user, secret = make_user(CLIENT_STAFF)
    batch = _print_file(session, vault)
    old_kek = _kek_b64(vault, 1)
    assert old_kek in vault.keys.path.read_text()

    keyops.rotate(session, vault, ADMIN)
    result = keyops.retire(session, vault, ADMIN, 1)

    assert result.version == 1 and result.unrestorable_backups == ()
    assert vault.keys.kek_versions() == [2]
    assert old_kek not in vault.keys.path.read_text()
    assert vault.keys.path.stat().st_mode & 0o777 == 0o600
    assert list(vault.keys.path.parent.glob(".keyring-*")) == []  # written atomically
    assert _actions(session)[-2:] == [("keys.retire", "success"), ("keys.retired", "success")]
    # reveal, export, the print file, and a sign-in with TOTP
    staff = actor(CLIENT_STAFF)
    assert registry.reveal(session, vault, staff, person.id, "源泉徴収票") == NUMBER
    out = io.BytesIO()
    exports.export_csv(session, vault, staff, layouts.get(session, "staff"), out, "源泉徴収票")
    assert NUMBER in out.getvalue().decode("utf-8-sig")
    assert kits.batch_file(session, vault, actor("Operator"), batch, 1) == PDF
    response = login(user.username, totp_secret=secret)
    assert response.status_code == 302 and not response.headers["Location"].endswith("/totp/")
    assert client.get("/people/").status_code == 200


def test_another_process_sees_the_retired_ring(session, vault, app):
    """A long-running web or worker process re-reads the ring once the file changed."""
    from app.vault.keyring import FileKeyRing

    other = FileKeyRing(vault.keys.path)
    assert other.current_kek_version() == 1
    keyops.rotate(session, vault, ADMIN)
    keyops.retire(session, vault, ADMIN, 1)
    assert other.current_kek_version() == 2 and other.kek_versions() == [2]


class _Gate(io.RawIOBase):
    """A CSV that stops halfway until told to go on: an import caught in the middle."""

    def __init__(self, data: bytes, pause_at: int) -> None:
        import threading

        self.data, self.pos, self.pause_at = data, 0, pause_at
        self.reached, self.go = threading.Event(), threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.pos >= self.pause_at and not self.go.is_set():
            self.reached.set()
            self.go.wait(60)
        end = min(len(self.data), self.pos + len(buffer))
        if self.pos < self.pause_at:
            end = min(end, self.pause_at)
        buffer[: end - self.pos] = self.data[self.pos : end]
        count, self.pos = end - self.pos, end
        return count


def test_a_rotation_waits_for_an_import_still_wrapping_keys_under_the_old_kek(app, session, vault):
    """An import reads the current KEK once, when it starts, and wraps every new data key
    under it until it commits. A rotation started meanwhile waits for it and re-wraps its keys
    too, so the old KEK can be retired and every imported number still opens. (Had the
    rotation gone ahead, those keys would have stayed under the old KEK; retired before the
    import committed, they could never have been opened again.)"""
    import threading

    from sqlalchemy.orm import Session as OrmSession

    from app.io import imports
    from app.models import db
    from tests.io.helpers import STAFF_HEADER, csv_bytes, staff_rows

    rows = staff_rows(imports.BATCH + 100, dependents=0, seed=31)
    data = csv_bytes(STAFF_HEADER, rows)
    gate = _Gate(data, pause_at=len(data) // 2)
    results: dict = {}

    def run(name, work):
        with app.app_context(), OrmSession(db.engine) as own:
            results[name] = work(own)

    importer = threading.Thread(
        target=run,
        args=(
            "import",
            lambda own: imports.import_csv(
                own, vault, CLI, gate, layouts.get(own, "staff"), encoding="utf-8"
            ),
        ),
    )
    importer.start()
    assert gate.reached.wait(30)  # the import has its KEK and is halfway through the file
    rotator = threading.Thread(
        target=run, args=("rotate", lambda own: keyops.rotate(own, vault, ADMIN))
    )
    rotator.start()
    rotator.join(1.0)
    waited = rotator.is_alive()
    gate.go.set()
    importer.join(60)
    rotator.join(60)
    assert waited, "the rotation did not wait for the import"
    assert results["import"].committed and results["import"].created == len(rows)
    assert results["rotate"] == (2, len(rows))  # the imported keys were re-wrapped as well
    keyops.retire(session, vault, ADMIN, 1)
    out = io.BytesIO()
    exports.export_csv(
        session, vault, actor(CLIENT_STAFF), layouts.get(session, "staff"), out, "鍵の確認"
    )
    text = out.getvalue().decode("utf-8-sig")
    assert all(row[5] in text for row in rows)


def test_a_rotation_waits_for_a_person_whose_new_key_is_not_yet_stored(app, session, vault):
    """The same for one person added in the portal: their key is wrapped before the
    transaction commits, and a rotation meanwhile waits, then re-wraps it."""
    import threading

    from sqlalchemy.orm import Session as OrmSession

    from app.models import db

    person = registry.add_person(
        session, vault, kind=PersonKind.EXTERNAL, name="鍵 待子", code="W0001"
    )
    registry.register_number(session, vault, person, NUMBER, "manual")  # flushed, not committed
    results: dict = {}

    def rotate():
        with app.app_context(), OrmSession(db.engine) as own:
            results["rotate"] = keyops.rotate(own, vault, ADMIN)

    rotator = threading.Thread(target=rotate)
    rotator.start()
    rotator.join(1.0)
    waited = rotator.is_alive()
    session.commit()
    rotator.join(60)
    assert waited, "the rotation did not wait for the transaction holding a new key"
    assert results["rotate"] == (2, 1)
    keyops.retire(session, vault, ADMIN, 1)
    record = registry.active_record(session, person.id)
    assert (
        vault.decrypt_for(
            session, person.id, "my_number_record", "ciphertext", record.id, record.ciphertext
        )
        == NUMBER
    )


def test_a_retired_kek_is_remembered_by_fingerprint_only(session, vault):
    """The ring keeps which KEK it retired (so that an older key-ring backup restored later
    drops it again), never the key itself."""
    from app.vault.keyring import kek_fingerprint

    old_kek = _kek_b64(vault, 1)
    keyops.rotate(session, vault, ADMIN)
    keyops.retire(session, vault, ADMIN, 1)
    import base64

    assert vault.keys.retired() == [
        {"version": 1, "fingerprint": kek_fingerprint(base64.b64decode(old_kek))}
    ]
    assert old_kek not in vault.keys.path.read_text()
