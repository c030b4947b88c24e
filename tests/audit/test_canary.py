"""Canary numbers: every path that touches one raises exactly one alert (audit event + mail to
the security contact), the access itself behaves normally, normal people never trip it, and
nothing in the database tells a canary from a real person."""

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import select

from app.access.policy import ShellActor
from app.audit import canary
from app.cli import mynumber_group
from app.core.mynumber import make_valid
from app.io import exports, layouts, matching
from app.lifecycle import returns
from app.models import AuditEvent, MyNumberRecord, Person
from app.people import canaries, registry
from app.vault import sealed
from tests.io.helpers import STAFF_HEADER, csv_bytes
from tests.support import actor, add_employee_with_number, number_forms, written_bytes

CLI = ShellActor(name="cli:test")
HR = actor("ClientStaff", name="hr")
REAL_NUMBER = make_valid("12345678901")
CANARY_NUMBER = make_valid("98765432101")
CONTACT = "security@example.jp"


@pytest.fixture
def stored(app, session, vault, smtp_server):
    """One real employee and one canary employee, the alert mail going to a real SMTP."""
    app.config["SMTP_URL"] = smtp_server.url
    app.config["SECURITY_CONTACT"] = CONTACT
    real = add_employee_with_number(session, vault, REAL_NUMBER)
    bait = canaries.add(
        session,
        vault,
        CLI,
        label="canary-1",
        name="見本 次郎",
        code="E0002",
        birth_date=dt.date(1979, 7, 7),
        number=CANARY_NUMBER,
    )
    session.info.pop("mnv_canary_alerted", None)
    return real, bait, smtp_server


def alerts(session) -> list[AuditEvent]:
    session.rollback()
    return list(
        session.execute(select(AuditEvent).where(AuditEvent.action == "security.canary"))
        .scalars()
        .all()
    )


def assert_one_alert(session, smtp, path: str) -> None:
    [event] = alerts(session)
    details = json.loads(event.details)
    assert details["path"] == path
    assert details["canaries"] == ["canary-1"]
    assert event.outcome == "alert"
    assert json.loads(event.object_ids or "[]") == []  # the label, never the person's id
    [message] = smtp.messages
    assert message["To"] == CONTACT
    body = message.get_body(("plain",)).get_content()
    assert "canary-1" in body and canary.PATH_LABELS[path] in body
    raw = message.as_bytes()
    assert not any(form in raw for form in number_forms(CANARY_NUMBER))


def test_search_by_number_trips_once_and_still_finds_the_person(session, vault, stored):
    real, bait, smtp = stored
    found = registry.search(session, vault, HR, registry.SearchCriteria(number=CANARY_NUMBER))
    assert [p.id for p in found] == [bait.id]
    assert_one_alert(session, smtp, "search")


def test_reveal_trips_once_and_reveals_normally(session, vault, stored):
    real, bait, smtp = stored
    assert registry.reveal(session, vault, HR, bait.id, "年末調整") == CANARY_NUMBER
    assert_one_alert(session, smtp, "reveal")


def test_bulk_match_trips_once(session, vault, stored):
    real, bait, smtp = stored
    keys = csv_bytes(["職員番号", "生年月日"], [["E0002", "1979/07/07"], ["E0001", "1980/04/01"]])
    result = matching.bulk_match(
        session, HR, io.BytesIO(keys), layouts.get(session, "staff"), "年末調整"
    )
    assert set(result.person_ids) == {real.id, bait.id}
    assert_one_alert(session, smtp, "match")


def test_export_trips_once_and_the_file_is_normal(session, vault, stored):
    real, bait, smtp = stored
    out = io.BytesIO()
    exports.export_csv(session, vault, HR, layouts.get(session, "staff"), out, "年末調整")
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert rows[0] == STAFF_HEADER
    assert sorted(r[-1].replace("-", "") for r in rows[1:]) == sorted([REAL_NUMBER, CANARY_NUMBER])
    assert_one_alert(session, smtp, "export")


def test_return_archive_trips_once(session, vault, stored, app, tmp_path):
    real, bait, smtp = stored
    _, public_text = sealed.generate_recipient()
    returns.export_archive(
        session,
        vault,
        CLI,
        tmp_path / "return.mnva",
        sealed.load_public(public_text),
        "契約終了に伴う返却",
        client_name="見本市役所",
        audit_public_pem=vault.keys.audit_public_key_pem(),
        checkpoint_file=app.config["AUDIT_CHECKPOINT_FILE"],
    )
    assert (tmp_path / "return.mnva").exists()
    assert_one_alert(session, smtp, "return")


def test_a_direct_decryption_trips_once(session, vault, stored):
    real, bait, smtp = stored
    record = registry.active_record(session, bait.id)
    plain = vault.decrypt_for(
        session, bait.id, "my_number_record", "ciphertext", record.id, record.ciphertext
    )
    assert plain == CANARY_NUMBER
    session.commit()
    assert_one_alert(session, smtp, "decrypt")


def test_normal_people_never_trip_it(session, vault, stored, tmp_path):
    real, bait, smtp = stored
    registry.search(session, vault, HR, registry.SearchCriteria(number=REAL_NUMBER))
    registry.search(session, vault, HR, registry.SearchCriteria(code="E0001"))
    assert registry.reveal(session, vault, HR, real.id, "年末調整") == REAL_NUMBER
    keys = csv_bytes(["職員番号", "生年月日"], [["E0001", "1980/04/01"]])
    matching.bulk_match(session, HR, io.BytesIO(keys), layouts.get(session, "staff"), "年末調整")
    exports.export_csv(
        session,
        vault,
        HR,
        layouts.get(session, "staff"),
        io.BytesIO(),
        "年末調整",
        person_ids=[real.id],
    )
    record = registry.active_record(session, real.id)
    vault.decrypt_for(
        session, real.id, "my_number_record", "ciphertext", record.id, record.ciphertext
    )
    assert alerts(session) == []
    assert smtp.messages == []


def test_nothing_in_the_database_tells_a_canary_apart(app, session, vault, stored):
    real, bait, smtp = stored
    for model, key in ((Person, "id"), (MyNumberRecord, "person_id")):
        a = session.execute(select(model).where(getattr(model, key) == real.id)).scalar_one()
        b = session.execute(select(model).where(getattr(model, key) == bait.id)).scalar_one()
        for column in model.__table__.columns:
            filled = (getattr(a, column.key) is None, getattr(b, column.key) is None)
            assert filled[0] == filled[1], column.key
        if model is MyNumberRecord:
            assert a.source == b.source
    [added] = [
        e
        for e in session.execute(
            select(AuditEvent).where(AuditEvent.action == "person.add")
        ).scalars()
        if str(bait.id) in str(e.object_ids)
    ]
    assert "canary" not in str(added.details)
    database = [
        data
        for label, data in written_bytes(app)
        if label.startswith("pg:") or "mynumber.db" in label
    ]
    assert database
    for data in database:
        assert b"canary" not in data.lower()
    assert "canary" in vault.keys.path.read_text()  # the key ring alone knows
    assert vault.keys.path.stat().st_mode & 0o777 == 0o600


def test_cli_adds_lists_and_removes(app, session, vault):
    runner = app.test_cli_runner()
    added = runner.invoke(
        mynumber_group,
        args=[
            "canary",
            "add",
            "--label",
            "honey-1",
            "--name",
            "見本 三郎",
            "--birth-date",
            "1975-01-02",
            "--code",
            "E0777",
        ],
    )
    assert added.exit_code == 0, added.output
    assert "honey-1" in added.output and "****-****-" in added.output
    listed = runner.invoke(mynumber_group, args=["canary", "list"])
    assert "honey-1" in listed.output and "見本 三郎" in listed.output
    session.rollback()
    person = session.execute(select(Person).where(Person.code == "E0777")).scalar_one()
    record = registry.active_record(session, person.id)
    assert record is not None  # a generated number with a valid check digit is stored
    assert canary.labels_of(vault, [person.id]) == {person.id: "honey-1"}
    again = runner.invoke(
        mynumber_group,
        args=[
            "canary",
            "add",
            "--label",
            "honey-1",
            "--name",
            "x",
            "--birth-date",
            "1975-01-02",
        ],
    )
    assert again.exit_code == 1 and "既に使われています" in again.output
    removed = runner.invoke(mynumber_group, args=["canary", "remove", "honey-1"])
    assert removed.exit_code == 0, removed.output
    assert (
        "カナリアは登録されていません"
        in runner.invoke(mynumber_group, args=["canary", "list"]).output
    )
    session.rollback()
    assert session.get(Person, person.id).status == "removed"
    assert registry.active_record(session, person.id) is None


def _refuse_canary_events(session, backend):
    """Make the real database refuse the alert's audit row (a trigger), nothing else."""
    from sqlalchemy import text

    if backend == "sqlite":
        session.execute(
            text(
                "CREATE TRIGGER no_canary BEFORE INSERT ON audit_event "
                "WHEN NEW.action = 'security.canary' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    else:
        session.execute(
            text(
                "CREATE FUNCTION no_canary() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.action = 'security.canary' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER no_canary BEFORE INSERT ON audit_event "
                "FOR EACH ROW EXECUTE FUNCTION no_canary()"
            )
        )
    session.commit()


def test_an_alert_that_cannot_be_audited_stops_the_access(backend, session, vault, stored):
    from app.audit.trail import AuditUnavailable

    real, bait, smtp = stored
    _refuse_canary_events(session, backend)
    with pytest.raises(AuditUnavailable):
        registry.reveal(session, vault, HR, bait.id, "年末調整")
    with pytest.raises(AuditUnavailable):
        exports.export_csv(
            session, vault, HR, layouts.get(session, "staff"), io.BytesIO(), "年末調整"
        )
    # A normal person is not affected.
    assert registry.reveal(session, vault, HR, real.id, "年末調整") == REAL_NUMBER
