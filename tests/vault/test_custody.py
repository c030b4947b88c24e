"""Key custody: the providers wrap, unwrap, MAC and derive and never hand out a KEK; the
PKCS#11 provider keeps its keys inside a (SoftHSM2) token; envelope format 2 authenticates
its header, format 1 still opens and rotation upgrades it. The vault, rotation, retirement,
backup/restore and import run here against both providers (``key_provider``)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from app.access.policy import CLIENT_STAFF, ShellActor
from app.core.mynumber import make_valid
from app.io import exports, imports, layouts
from app.lifecycle import backup, keyops
from app.models import DataKey, MyNumberRecord, VaultUser
from app.people import registry
from app.vault import aead, sealed
from app.vault.custody import open_provider
from app.vault.envelopes import (
    HEADER_SIZE,
    EnvelopeError,
    dek_aad,
    field_aad,
    parse_envelope,
)
from app.vault.hsm import Pkcs11KeyRing, library
from app.vault.keyring import FileKeyRing, KeyProvider, KeyRingError
from tests.conftest import SOFTHSM_MODULE, SOFTHSM_PIN, SOFTHSM_TOKEN_LABEL
from tests.io.helpers import STAFF_HEADER, csv_bytes, staff_rows
from tests.support import actor, add_employee_with_number

ROOT = Path(__file__).resolve().parents[2]
CLI = ShellActor(name="cli:test")
ADMIN = actor("SystemAdmin", name="admin")
NUMBER = make_valid("31415926535")


def _hsm_ring(path: Path, **kwargs) -> Pkcs11KeyRing:
    return Pkcs11KeyRing(path, SOFTHSM_MODULE, SOFTHSM_TOKEN_LABEL, lambda: SOFTHSM_PIN, **kwargs)


@pytest.fixture
def ring(key_provider, tmp_path, request):
    """A new, empty key ring of either provider (no database)."""
    if key_provider == "pkcs11":
        request.getfixturevalue("softhsm_token")
        made = _hsm_ring(tmp_path / "ring.json")
    else:
        made = FileKeyRing(tmp_path / "ring.json")
    made.create()
    return made


def _token_labels(ring: Pkcs11KeyRing) -> set[str]:
    return ring._run(ring._labels)


# -- the provider's interface -------------------------------------------------------------------
def test_wrap_and_unwrap_bind_the_aad_and_every_header_byte(ring):
    key = os.urandom(32)
    version, blob = ring.wrap(key, b"mnv:dek:someone")
    assert version == 1 and blob[:3] == b"MV\x02" and key not in blob
    assert ring.unwrap(1, blob, b"mnv:dek:someone") == key
    with pytest.raises(EnvelopeError):
        ring.unwrap(1, blob, b"mnv:dek:someone-else")
    for i in range(HEADER_SIZE):  # magic, format, key version and nonce: all authenticated
        changed = bytearray(blob)
        changed[i] ^= 0x01
        with pytest.raises((EnvelopeError, KeyRingError)):
            ring.unwrap(1, bytes(changed), b"mnv:dek:someone")
    with pytest.raises(KeyRingError, match="バージョン 9"):
        ring.unwrap(9, blob, b"mnv:dek:someone")


def test_mac_is_per_purpose_stable_and_built_on_derive(ring):
    number = b"123456789018"
    index = ring.mac("blind-index", number)
    assert len(index) == 32 and index != hashlib.sha256(number).digest()
    assert index != ring.mac("paper-keying", number)
    # The definition both providers share (so an index key imported into an HSM keeps
    # every blind index): HMAC under the purpose's derived key.
    derived = ring.derive("mac:blind-index")
    assert index == hmac.new(derived, number, hashlib.sha256).digest()
    assert ring.derive("mac:blind-index") == derived != ring.derive("mac:paper-keying")
    # Another object on the same ring (another process) computes the same values.
    twin = type(ring)(ring.path) if isinstance(ring, FileKeyRing) else _hsm_ring(ring.path)
    assert twin.mac("blind-index", number) == index
    batch = twin.batch()
    assert batch.mac("blind-index", number) == index
    assert ring.unwrap(1, batch.wrap(b"k" * 32, b"aad"), b"aad") == b"k" * 32


def test_the_interface_has_no_way_to_a_kek(ring):
    """The protocol returns versions, envelopes, MACs and derived keys; the PKCS#11 provider
    has no way at all to read a KEK (the file ring's ``kek()`` serves its own tests)."""
    offered = {name for name in dir(KeyProvider) if not name.startswith("_")}
    assert {"wrap", "unwrap", "mac", "derive", "batch"} <= offered
    assert not {"kek", "index_key", "keks"} & offered
    public = {name for name in dir(ring) if not name.startswith("_")}
    assert "index_key" not in public
    assert ("kek" in public) == isinstance(ring, FileKeyRing)


def test_rotation_and_retirement_at_the_provider(ring):
    _, old = ring.wrap(b"o" * 32, b"aad")
    assert ring.add_kek_version() == 2 and ring.kek_versions() == [1, 2]
    version, new = ring.wrap(b"n" * 32, b"aad")
    assert version == 2 and aead.header_key_version(new) == 2
    assert ring.unwrap(1, old, b"aad") == b"o" * 32  # the old version still unwraps
    with pytest.raises(KeyRingError, match="現在の KEK"):
        ring.retire_kek_version(2)
    ring.retire_kek_version(1)
    assert ring.kek_versions() == [2] and [r["version"] for r in ring.retired()] == [1]
    with pytest.raises(KeyRingError):
        ring.unwrap(1, old, b"aad")
    assert ring.unwrap(2, new, b"aad") == b"n" * 32
    if isinstance(ring, Pkcs11KeyRing):  # destroyed inside the token, not only forgotten
        assert _token_labels(ring) == {"mnv-kek-2", "mnv-mac", "mnv-ring"}
    else:
        assert ring.kek(2) and "1" not in json.loads(ring.path.read_text())["keks"]


def test_a_ring_backup_restores_the_rest_of_the_ring(ring, tmp_path):
    """What a key-ring backup carries (the ring file) comes back with ``install``: audit
    key, named secrets, shred list; with an HSM, the KEKs stay in the token meanwhile."""
    ring.set_secret("canary", {"tags": ["a"]})
    ring.record_shredded(["key-1"])
    _, blob = ring.wrap(b"k" * 32, b"aad")
    pem = ring.audit_public_key_pem()
    stored = json.loads(ring.path.read_text())
    ring.path.unlink()
    ring.reload()
    other = (
        _hsm_ring(tmp_path / "restored.json")
        if isinstance(ring, Pkcs11KeyRing)
        else FileKeyRing(tmp_path / "restored.json")
    )
    other.install(stored)
    assert other.get_secret("canary") == {"tags": ["a"]} and other.shredded() == {"key-1"}
    assert other.audit_public_key_pem() == pem
    assert other.unwrap(1, blob, b"aad") == b"k" * 32
    with pytest.raises(KeyRingError, match="既に存在"):
        other.install(stored)
    # A backup of an HSM-backed ring is no file ring (and the settings say which one runs).
    foreign = stored if isinstance(ring, Pkcs11KeyRing) else {**stored, "provider": "pkcs11"}
    with pytest.raises(KeyRingError, match="別の鍵の保管方式（pkcs11）"):
        FileKeyRing(tmp_path / "file.json").install(foreign)


# -- the PKCS#11 provider alone -----------------------------------------------------------------
@pytest.fixture
def hsm_ring(softhsm_token, tmp_path) -> Pkcs11KeyRing:
    made = _hsm_ring(tmp_path / "ring.json")
    made.create()
    return made


@pytest.mark.pkcs11
def test_token_keys_are_sensitive_and_never_extractable(hsm_ring):
    from pkcs11 import Attribute, ObjectClass

    def attributes(session):
        return {
            str(o.label): (o[Attribute.SENSITIVE], o[Attribute.EXTRACTABLE], o[Attribute.TOKEN])
            for o in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
        }

    found = hsm_ring._run(attributes)
    assert set(found) == {"mnv-kek-1", "mnv-mac", "mnv-ring"}
    assert set(found.values()) == {(True, False, True)}


@pytest.mark.pkcs11
def test_the_ring_file_alone_opens_nothing(hsm_ring, tmp_path):
    hsm_ring.set_secret("intake_hpke", {"x25519_private": "c2VjcmV0"})
    stored = json.loads(hsm_ring.path.read_text())
    assert not {"audit_signing_key", "extra", "index_key"} & set(stored)
    text = hsm_ring.path.read_text()
    assert "c2VjcmV0" not in text and "intake_hpke" not in text
    assert stored["keks"]["1"]["label"] == "mnv-kek-1" and "working_key" in stored["keks"]["1"]
    # Another token (with keys of the same labels) cannot read it.
    from tests.conftest import SoftHsmToken

    SoftHsmToken.create(tmp_path / "other-token").use()
    stranger = _hsm_ring(tmp_path / "stranger.json")
    stranger.create()
    shutil.copy(hsm_ring.path, tmp_path / "copy.json")
    with pytest.raises(KeyRingError):
        _hsm_ring(tmp_path / "copy.json").audit_signing_key()


@pytest.mark.pkcs11
def test_working_keys_can_be_switched_off_and_values_do_not_change(hsm_ring):
    cold = _hsm_ring(hsm_ring.path, working_key_ttl=0)
    _, blob = cold.wrap(b"w" * 32, b"aad")
    assert hsm_ring.unwrap(1, blob, b"aad") == b"w" * 32
    assert cold.mac("blind-index", b"1") == hsm_ring.mac("blind-index", b"1")
    assert cold._working == {} and cold._macs == {}  # nothing kept between calls


@pytest.mark.pkcs11
def test_a_forked_child_initialises_the_library_again(hsm_ring):
    """gunicorn and RQ fork: the child must not use the parent's PKCS#11 state."""
    _, blob = hsm_ring.wrap(b"f" * 32, b"aad")
    hsm_ring.reload()  # the child has to go to the token itself
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            ok = hsm_ring.unwrap(1, blob, b"aad") == b"f" * 32
            code = 0 if ok and library(SOFTHSM_MODULE).pid == os.getpid() else 2
        finally:
            os._exit(code)
    for _ in range(600):  # never wait for ever on a child stuck in a lock
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish")
    assert os.waitstatus_to_exitcode(status) == 0
    assert hsm_ring.unwrap(1, blob, b"aad") == b"f" * 32  # the parent's session still works


@pytest.mark.pkcs11
def test_the_token_refuses_a_wrong_pin_and_a_second_ring_on_the_same_labels(
    softhsm_token, tmp_path
):
    library(SOFTHSM_MODULE).reset()  # no session left logged in from an earlier test
    wrong = Pkcs11KeyRing(
        tmp_path / "w.json", SOFTHSM_MODULE, SOFTHSM_TOKEN_LABEL, lambda: "not-the-pin"
    )
    with pytest.raises(KeyRingError, match="PIN が違います"):
        wrong.create()
    first = _hsm_ring(tmp_path / "a.json")
    first.create()
    with pytest.raises(KeyRingError, match="既に接頭辞「mnv」の鍵があります"):
        _hsm_ring(tmp_path / "b.json").create()
    second = _hsm_ring(tmp_path / "c.json", prefix="staging")
    second.create()  # another instance on the same token, under its own labels
    assert second.mac("blind-index", b"1") != first.mac("blind-index", b"1")
    missing = Pkcs11KeyRing(tmp_path / "m.json", SOFTHSM_MODULE, "no-such-token", lambda: "x")
    with pytest.raises(KeyRingError, match="no-such-token"):
        missing.create()


@pytest.mark.pkcs11
def test_a_restored_ring_file_forgets_a_kek_destroyed_since(hsm_ring, tmp_path):
    """A ring-file backup from before ``keys retire`` names a KEK the token destroyed since:
    restored, the ring drops it (and lists it as retired) instead of failing on it later."""
    hsm_ring.add_kek_version()
    old_copy = json.loads(hsm_ring.path.read_text())
    hsm_ring.retire_kek_version(1)
    restored = _hsm_ring(tmp_path / "restored.json")
    restored.install(old_copy)
    assert restored.kek_versions() == [2] and [r["version"] for r in restored.retired()] == [1]
    assert restored.retired() == hsm_ring.retired()
    hsm_ring.add_kek_version()
    hsm_ring.retire_kek_version(2)  # the current KEK of the old copy is gone now
    with pytest.raises(KeyRingError, match="mnv-kek-2"):
        _hsm_ring(tmp_path / "again.json").install(old_copy)


@pytest.mark.pkcs11
def test_contract_end_destroys_the_keys_in_the_token(hsm_ring):
    hsm_ring.destroy()
    assert not hsm_ring.path.exists()
    assert _token_labels(hsm_ring) == set()


def test_settings_choose_the_provider_and_say_what_is_missing(tmp_path):
    assert isinstance(open_provider({"KEYRING_PATH": str(tmp_path / "k.json")}), FileKeyRing)
    with pytest.raises(KeyRingError, match="MYNUMBER_PKCS11_MODULE.*PIN"):
        open_provider({"KEY_PROVIDER": "pkcs11", "KEYRING_PATH": str(tmp_path / "k.json")})
    with pytest.raises(KeyRingError, match="file または pkcs11"):
        open_provider({"KEY_PROVIDER": "kms", "KEYRING_PATH": str(tmp_path / "k.json")})
    pin = tmp_path / "pin"
    pin.write_text(SOFTHSM_PIN)
    pin.chmod(0o644)
    provider = open_provider(
        {
            "KEY_PROVIDER": "pkcs11",
            "KEYRING_PATH": str(tmp_path / "k.json"),
            "PKCS11_MODULE": SOFTHSM_MODULE,
            "PKCS11_TOKEN_LABEL": SOFTHSM_TOKEN_LABEL,
            "PKCS11_PIN_FILE": str(pin),
        }
    )
    with pytest.raises(KeyRingError, match="PIN ファイルの権限が広すぎます"):
        provider._pin()


# -- envelope format 2, and format 1 still read -------------------------------------------------
def test_a_flipped_header_byte_fails_in_format_2_but_not_the_old_way_in_format_1():
    key = os.urandom(32)
    blob = aead.seal(key, 1, b"aad", b"secret")
    assert parse_envelope(blob).format_version == 2
    moved = bytearray(blob)
    moved[3:7] = (5).to_bytes(4, "big")  # another key version, nothing else changed
    with pytest.raises(EnvelopeError, match="復号できません"):
        aead.unseal(key, b"aad", bytes(moved))  # no expected version given: the tag says no
    # Format 1 (header outside the AAD) accepted the same change unless told the version.
    nonce = os.urandom(12)
    old = aead.pack_header(1, nonce, fmt=1) + AESGCM(key).encrypt(nonce, b"secret", b"aad")
    assert aead.unseal(key, b"aad", old) == b"secret"
    old_moved = old[:3] + (5).to_bytes(4, "big") + old[7:]
    assert aead.unseal(key, b"aad", old_moved) == b"secret"
    with pytest.raises(EnvelopeError, match="鍵バージョン"):
        aead.unseal(key, b"aad", old_moved, key_version=1)
    # A format-2 blob relabelled as format 1 does not open either way.
    with pytest.raises(EnvelopeError):
        aead.unseal(key, b"aad", blob[:2] + b"\x01" + blob[3:])


def _format_1(key: bytes, version: int, aad: bytes, plaintext: bytes) -> bytes:
    """An envelope as the vault wrote them before format 2 (header outside the AAD)."""
    nonce = os.urandom(12)
    return aead.pack_header(version, nonce, fmt=1) + AESGCM(key).encrypt(nonce, plaintext, aad)


def test_format_1_rows_still_open_and_rotation_upgrades_them(session, vault, make_user):
    """Rows written by the file key ring before format 2: a wrapped data key, a field and a
    TOTP seed (sealed under an HKDF of the KEK, as then). All open; ``keys rotate`` rewrites
    everything under a KEK as format 2; fields under a data key stay as they are (no bulk
    re-encryption) and still open."""
    person = add_employee_with_number(session, vault, NUMBER, name="形式 一郎", code="F0001")
    user, _secret = make_user("Operator")
    kek = vault.keys.kek(1)
    key_row = vault.data_key_row(session, person.id)
    dek = vault.unwrap(key_row)
    key_row.wrapped = _format_1(kek, 1, dek_aad(person.id, 1), dek)
    record = registry.active_record(session, person.id)
    record.ciphertext = _format_1(
        dek, 1, field_aad("my_number_record", "ciphertext", record.id), NUMBER.encode()
    )
    seed = b"JBSWY3DPEHPK3PXP"
    system_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"mnv:system:totp"
    ).derive(kek)
    user.totp_secret_enc = _format_1(system_key, 1, f"user:{user.id}".encode(), seed)
    session.commit()
    session.expire_all()

    def read_all():
        record = registry.active_record(session, person.id)
        number = registry.reveal(session, vault, actor(CLIENT_STAFF), person.id, "確認")
        totp = vault.open_system(
            "totp", f"user:{user.id}", session.get(VaultUser, user.id).totp_secret_enc
        )
        return number, totp, record.ciphertext[2]

    assert read_all() == (NUMBER, seed, 1)
    assert vault.data_key_row(session, person.id).wrapped[2] == 1
    # Re-sealing alone upgrades a format-1 secret even under the current KEK.
    assert keyops.reseal_system_blobs(session, vault)["TOTP シークレット"] == 1
    session.commit()
    assert session.get(VaultUser, user.id).totp_secret_enc[:7] == b"MV\x02\x00\x00\x00\x01"
    keyops.rotate(session, vault, ADMIN)
    session.expire_all()
    assert read_all() == (NUMBER, seed, 1)  # the field: still format 1, still readable
    wrapped = vault.data_key_row(session, person.id).wrapped
    assert wrapped[2] == 2 and aead.header_key_version(wrapped) == 2
    assert session.get(VaultUser, user.id).totp_secret_enc[2] == 2
    keyops.retire(session, vault, ADMIN, 1)
    assert read_all() == (NUMBER, seed, 1)


# -- the vault, rotation, retirement, backups and import on both providers ----------------------
def test_the_vault_round_trip(session, vault, key_provider):
    person = add_employee_with_number(session, vault, NUMBER)
    record = registry.active_record(session, person.id)
    assert record.ciphertext[:3] == b"MV\x02" and NUMBER.encode() not in record.ciphertext
    assert registry.reveal(session, vault, actor(CLIENT_STAFF), person.id, "確認") == NUMBER
    assert registry.find_by_number(session, vault, NUMBER).id == person.id
    assert record.blind_index == vault.blind_index(NUMBER)
    wrapped = vault.data_key_row(session, person.id).wrapped
    tampered = bytearray(wrapped)
    tampered[10] ^= 1  # a nonce byte of the wrapped key's header
    row = DataKey(
        id=uuid.uuid4(), person_id=person.id, version=1, kek_version=1, wrapped=bytes(tampered)
    )
    with pytest.raises(EnvelopeError):
        vault.unwrap(row)
    assert isinstance(vault.keys, Pkcs11KeyRing) == (key_provider == "pkcs11")


def test_rotation_and_retirement(session, vault, make_user, login, key_provider):
    people = [
        add_employee_with_number(session, vault, make_valid(f"2718281{i:04d}"), code=f"R{i}")
        for i in range(3)
    ]
    user, secret = make_user(CLIENT_STAFF)
    assert keyops.rotate(session, vault, ADMIN) == (2, 3)
    keyops.retire(session, vault, ADMIN, 1)
    assert vault.keys.kek_versions() == [2]
    for i, person in enumerate(people):
        assert registry.reveal(
            session, vault, actor(CLIENT_STAFF), person.id, "確認"
        ) == make_valid(f"2718281{i:04d}")
    rows = session.execute(select(DataKey.wrapped)).scalars().all()
    assert {(w[2], aead.header_key_version(w)) for w in rows} == {(2, 2)}
    response = login(user.username, totp_secret=secret)  # the TOTP seed was resealed
    assert response.status_code == 302 and not response.headers["Location"].endswith("/totp/")
    if key_provider == "pkcs11":
        assert "mnv-kek-1" not in _token_labels(vault.keys)


def test_backup_restore_and_key_ring_backup(
    session, vault, app, instance, backend, tmp_path, key_provider
):
    """Database backup, key-ring backup, both lost and restored: every number back."""
    from flask_migrate import upgrade

    from app.models import db
    from tests.lifecycle.helpers import export_rows, fresh_target, population

    population(session, vault, n=4)
    before = export_rows(session, vault)
    private_text, public_text = sealed.generate_recipient()
    keys_file, db_file = tmp_path / "k.mnvkeys", tmp_path / "d.mnvbak"
    backup.backup_keyring(session, vault.keys, CLI, keys_file, sealed.load_public(public_text))
    backup.create_backup(session, vault, CLI, db_file, client_name="見本市役所")
    assert b"index_key" not in keys_file.read_bytes()

    new_home = tmp_path / "new-home"
    new_home.mkdir(mode=0o700)
    overrides = dict(instance)
    if key_provider == "pkcs11":  # the same token: an HSM is not in the ring backup
        shutil.copy(instance["PKCS11_PIN_FILE"], new_home / "hsm.pin")
        overrides["PKCS11_PIN_FILE"] = str(new_home / "hsm.pin")
    with fresh_target(overrides, backend, home=new_home) as target:
        ring = target.extensions["mynumber_keyring"]
        assert type(ring) is type(vault.keys) and not ring.exists()
        backup.restore_keyring(keys_file, sealed.load_private(private_text), ring, None)
        result = backup.restore(
            db.session,
            target.extensions["mynumber_vault"],
            CLI,
            db_file,
            journal=None,
            upgrade=lambda: upgrade(directory=target.extensions["migrate"].directory),
        )
        assert result.reapplied_people == 0
        assert export_rows(db.session, target.extensions["mynumber_vault"]) == before


def test_import_and_export(session, vault, key_provider):
    rows = staff_rows(40, dependents=1, seed=91)
    report = imports.import_csv(
        session,
        vault,
        CLI,
        io.BytesIO(csv_bytes(STAFF_HEADER, rows)),
        layouts.get(session, "staff"),
    )
    assert report.ok and report.committed and report.created == 80, report.problems
    again = imports.import_csv(
        session,
        vault,
        CLI,
        io.BytesIO(csv_bytes(STAFF_HEADER, [[*rows[0][:3], "E09999-00", *rows[0][4:]]])),
        layouts.get(session, "staff"),
    )
    assert not again.committed  # the same number again: the blind index finds it
    indexes = dict(
        session.execute(select(MyNumberRecord.person_id, MyNumberRecord.blind_index)).all()
    )
    found = registry.find_by_number(session, vault, rows[7][5])
    assert found is not None and indexes[found.id] == vault.blind_index(rows[7][5])
    out = io.BytesIO()
    exports.export_csv(
        session, vault, actor(CLIENT_STAFF), layouts.get(session, "staff"), out, "源泉徴収票"
    )
    text = out.getvalue().decode("utf-8-sig")
    assert all(row[5] in text for row in rows)
    wrapped = session.execute(select(DataKey.wrapped)).scalars().all()
    assert {w[:3] for w in wrapped} == {b"MV\x02"}


# -- nothing outside the vault touches key material ----------------------------------------------
def test_no_module_outside_the_vault_reads_a_raw_key():
    """The providers are the only holders of KEKs and the MAC key: no code outside
    ``app/vault`` asks for one (``kek()``, ``index_key``) or reads the ring file's keys."""
    pattern = re.compile(r"\.kek\(|index_key|open_format1_system|_key_aead|\._derive\(")
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        if path.parts[-2] == "vault" and path.parent.parent.name == "app":
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert offenders == []
