"""The vault: envelope encryption bound to its place, blind index, rotation, shredding,
with either key provider."""

import datetime as dt
import os
import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.models import DataKey, MyNumberRecord, Person, PersonKind
from app.people import registry
from app.vault.envelopes import EnvelopeError, ShreddedError, parse_envelope, seal, unseal
from app.vault.keyring import FileKeyRing, KeyRingError

NUMBER_A = "123456789018"

# Every test here runs with the file key ring and with the PKCS#11 provider (SoftHSM2).
pytestmark = pytest.mark.usefixtures("key_provider")


def valid(first_eleven: str) -> str:
    from app.core.mynumber import make_valid

    return make_valid(first_eleven)


def _person(session, vault, name="山田 太郎", number=None, address=None):
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name=name,
        code=uuid.uuid4().hex[:6],
        birth_date=dt.date(1985, 1, 2),
        address=address,
    )
    if number:
        registry.register_number(session, vault, person, number, "manual")
    session.commit()
    return person


def _decrypt_number(session, vault, record):
    return vault.decrypt_for(
        session, record.person_id, "my_number_record", "ciphertext", record.id, record.ciphertext
    )


def test_round_trip_number_and_address(session, vault):
    person = _person(session, vault, number=NUMBER_A, address="東京都千代田区1-1")
    record = registry.active_record(session, person.id)
    assert record.ciphertext[:2] == b"MV"
    assert NUMBER_A.encode() not in record.ciphertext
    assert _decrypt_number(session, vault, record) == NUMBER_A
    assert registry.decrypt_address(session, vault, person) == "東京都千代田区1-1"


def test_ciphertext_moved_to_another_row_fails(session, vault):
    a = _person(session, vault, number=NUMBER_A)
    b = _person(session, vault, name="佐藤 花子", number=valid("98765432109"))
    rec_a = registry.active_record(session, a.id)
    rec_b = registry.active_record(session, b.id)
    # Same person, different row: copy A's ciphertext into a second record of A.
    with pytest.raises(EnvelopeError):
        vault.decrypt_for(
            session, a.id, "my_number_record", "ciphertext", rec_b.id, rec_a.ciphertext
        )
    # Another person's row entirely (different DEK and row id).
    session.execute(
        update(MyNumberRecord)
        .where(MyNumberRecord.id == rec_b.id)
        .values(ciphertext=rec_a.ciphertext)
    )
    session.commit()
    session.expire_all()
    with pytest.raises(EnvelopeError):
        _decrypt_number(session, vault, session.get(MyNumberRecord, rec_b.id))


def test_ciphertext_moved_to_another_column_fails(session, vault):
    person = _person(session, vault, number=NUMBER_A, address="大阪府大阪市")
    record = registry.active_record(session, person.id)
    # The number's ciphertext pasted into the address column of the same person.
    with pytest.raises(EnvelopeError):
        vault.decrypt_for(session, person.id, "person", "address_enc", person.id, record.ciphertext)


def test_tampered_byte_fails(session, vault):
    person = _person(session, vault, number=NUMBER_A)
    record = registry.active_record(session, person.id)
    broken = bytearray(record.ciphertext)
    broken[-1] ^= 1
    with pytest.raises(EnvelopeError):
        vault.decrypt_for(
            session, person.id, "my_number_record", "ciphertext", record.id, bytes(broken)
        )


def test_shredded_person_is_unreadable_for_good(session, vault, app):
    person = _person(session, vault, number=NUMBER_A)
    record = registry.active_record(session, person.id)
    key_row = session.execute(select(DataKey).where(DataKey.person_id == person.id)).scalar_one()
    saved_wrapped = (key_row.id, key_row.person_id, key_row.kek_version, key_row.wrapped)
    vault.shred(session, [person.id])
    session.commit()
    with pytest.raises(ShreddedError):
        _decrypt_number(session, vault, record)
    # Even if an old copy of the wrapped key is put back (a restore), the key ring refuses it.
    session.add(
        DataKey(
            id=saved_wrapped[0],
            person_id=saved_wrapped[1],
            kek_version=saved_wrapped[2],
            wrapped=saved_wrapped[3],
        )
    )
    session.commit()
    with pytest.raises(ShreddedError):
        _decrypt_number(session, vault, record)
    assert vault.apply_shred_list(session) == 1
    session.commit()
    assert session.execute(select(DataKey).where(DataKey.person_id == person.id)).first() is None


def test_rotation_keeps_everything_readable_under_the_new_kek(session, vault):
    persons = [
        _person(session, vault, name=f"社員{i}", number=valid(f"1111111{i:04d}")) for i in range(5)
    ]
    from app.lifecycle.keyops import rotate
    from tests.support import actor

    version, count = rotate(session, vault, actor("SystemAdmin"))
    assert version == 2 and count == 5
    rows = session.execute(select(DataKey)).scalars().all()
    assert {r.kek_version for r in rows} == {2}
    assert {parse_envelope(r.wrapped).key_version for r in rows} == {2}
    for i, person in enumerate(persons):
        record = registry.active_record(session, person.id)
        assert _decrypt_number(session, vault, record) == valid(f"1111111{i:04d}")
    # New people get wrapped by the new KEK too.
    new = _person(session, vault, number=valid("22222222222"))
    row = session.execute(select(DataKey).where(DataKey.person_id == new.id)).scalar_one()
    assert row.kek_version == 2


def test_blind_index_is_keyed_and_unique_among_active_numbers(session, vault):
    a = _person(session, vault, number=NUMBER_A)
    assert vault.blind_index(NUMBER_A) != __import__("hashlib").sha256(NUMBER_A.encode()).digest()
    b = _person(session, vault, name="別人")
    with pytest.raises(registry.DuplicateNumber):
        registry.register_number(session, vault, b, NUMBER_A, "manual")
    session.rollback()
    # The database itself refuses a second active row with the same index.
    record = registry.active_record(session, a.id)
    session.add(
        MyNumberRecord(
            id=uuid.uuid4(),
            person_id=b.id,
            ciphertext=b"MVx" * 20,
            blind_index=record.blind_index,
            last4="9018",
            source="manual",
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_reissued_number_supersedes_the_old_one(session, vault):
    person = _person(session, vault, number=NUMBER_A)
    new_number = valid("55555555555")
    registry.register_number(session, vault, person, new_number, "manual")
    session.commit()
    rows = (
        session.execute(select(MyNumberRecord).where(MyNumberRecord.person_id == person.id))
        .scalars()
        .all()
    )
    assert sorted(r.status for r in rows) == ["active", "superseded"]
    old = next(r for r in rows if r.status == "superseded")
    assert _decrypt_number(session, vault, old) == NUMBER_A  # kept, still encrypted
    assert registry.find_by_number(session, vault, new_number).id == person.id
    assert registry.find_by_number(session, vault, NUMBER_A) is None


def test_envelope_parser_refuses_garbage():
    key = os.urandom(32)
    blob = seal(key, 7, b"aad", b"x")
    assert parse_envelope(blob).key_version == 7
    assert unseal(key, b"aad", blob) == b"x"
    for bad in (b"", b"MV", b"XX" + blob[2:], blob[:2] + b"\x09" + blob[3:], blob[:20]):
        with pytest.raises(EnvelopeError):
            unseal(key, b"aad", bad)


def test_keyring_refuses_loose_permissions_and_overwrite(tmp_path):
    ring = FileKeyRing(tmp_path / "keyring.json")
    ring.create()
    assert (tmp_path / "keyring.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyRingError):
        ring.create()
    os.chmod(tmp_path / "keyring.json", 0o644)
    with pytest.raises(KeyRingError) as info:
        FileKeyRing(tmp_path / "keyring.json").current_kek_version()
    assert "0600" in str(info.value)


def test_no_plaintext_reaches_the_database(session, vault, app):
    from tests.support import leaks

    _person(session, vault, number=NUMBER_A, address="東京都港区芝公園4-2-8")
    session.commit()
    assert leaks(app, [NUMBER_A]) == []
    assert not any(
        "芝公園".encode() in data
        for _, data in __import__("tests.support", fromlist=["written_bytes"]).written_bytes(app)
    )


def test_the_person_table_has_no_number_column(session):
    columns = {c.name for c in Person.__table__.columns}
    assert not {"number", "my_number", "mynumber"} & columns
