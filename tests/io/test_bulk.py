"""Bulk sealing and opening produce and accept exactly the vault's envelopes."""

import datetime as dt
import uuid

import pytest

from app.io.bulk import Opener, Sealer
from app.models import PersonKind
from app.people import registry
from app.vault.envelopes import EnvelopeError, ShreddedError

NUMBER = "123456789018"


def test_sealer_output_opens_with_the_vault(vault):
    sealer = Sealer(vault)
    person_id, record_id = uuid.uuid4(), uuid.uuid4()
    aead, wrapped = sealer.new_person_key(person_id)
    blob = sealer.seal_field(aead, "my_number_record", "ciphertext", record_id, NUMBER)
    from app.models import DataKey

    row = DataKey(
        id=uuid.uuid4(),
        person_id=person_id,
        version=1,
        kek_version=sealer.kek_version,
        wrapped=wrapped,
    )
    dek = vault.unwrap(row)
    assert vault.decrypt_field(dek, "my_number_record", "ciphertext", record_id, blob) == NUMBER
    assert sealer.blind_index(NUMBER) == vault.blind_index(NUMBER)
    with pytest.raises(EnvelopeError):  # bound to its row like any field
        vault.decrypt_field(dek, "my_number_record", "ciphertext", uuid.uuid4(), blob)


def test_opener_reads_what_the_vault_wrote_and_respects_shredding(session, vault):
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.EXTERNAL,
        name="見本 委員",
        code="X1",
        birth_date=dt.date(1970, 1, 1),
        address="東京都千代田区見本町1-1",
    )
    record = registry.register_number(session, vault, person, NUMBER, "manual")
    session.commit()
    key = vault.data_key_row(session, person.id)
    opener = Opener(vault)
    aead = opener.person_key(str(key.id), str(person.id), key.kek_version, key.wrapped)
    assert (
        opener.open_field(aead, "my_number_record", "ciphertext", str(record.id), record.ciphertext)
        == NUMBER
    )
    assert (
        opener.open_field(aead, "person", "address_enc", str(person.id), person.address_enc)
        == "東京都千代田区見本町1-1"
    )
    with pytest.raises(EnvelopeError):
        opener.open_field(aead, "person", "address_enc", str(record.id), person.address_enc)
    altered = record.ciphertext[:3] + (2).to_bytes(4, "big") + record.ciphertext[7:]
    for reader in (
        lambda blob: opener.open_field(
            aead, "my_number_record", "ciphertext", str(record.id), blob
        ),
        lambda blob: vault.decrypt_for(
            session, person.id, "my_number_record", "ciphertext", record.id, blob
        ),
    ):  # the key version in the header (outside the AAD) is checked by both readers
        with pytest.raises(EnvelopeError, match="鍵バージョン"):
            reader(altered)
    with pytest.raises(EnvelopeError):  # another person's id in the AAD
        opener.person_key(str(key.id), str(uuid.uuid4()), key.kek_version, key.wrapped)
    vault.shred(session, [person.id])
    session.commit()
    with pytest.raises(ShreddedError):
        Opener(vault).person_key(str(key.id), str(person.id), key.kek_version, key.wrapped)


def test_the_cycle_collector_is_paused_during_bulk_loops_and_resumes_after_the_last():
    import gc

    from app.io.bulk import collector_paused

    assert gc.isenabled()
    outer = collector_paused()
    outer.__enter__()
    assert not gc.isenabled() and gc.get_freeze_count() > 0
    with pytest.raises(RuntimeError), collector_paused():  # a second loop that fails
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert not gc.isenabled()  # the first loop still runs
    outer.__exit__(None, None, None)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # the application's objects are collectable again


def test_the_cycle_collector_stays_off_if_it_was_off_before():
    import gc

    from app.io.bulk import collector_paused

    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_time_ordered_ids_are_uuid7_and_grow_with_time():
    import time

    from app.io.bulk import time_ordered_id

    first = [time_ordered_id() for _ in range(100)]
    assert {u.version for u in first} == {7}
    assert {u.variant for u in first} == {uuid.RFC_4122}
    assert len(set(first)) == 100  # 74 random bits: never the same id twice
    millis = first[0].int >> 80
    assert abs(millis - time.time_ns() // 1_000_000) < 60_000
    time.sleep(0.002)
    assert time_ordered_id() > max(first)  # a later millisecond sorts after
