"""Disposal: who may request and approve, what execution destroys, and what it leaves."""

import json

import pytest
from sqlalchemy import func, select

from app.access import policy
from app.lifecycle import disposal, holders
from app.lifecycle.return_contents import iter_people
from app.models import (
    AuditEvent,
    DisposalItem,
    DisposalRequest,
    MyNumberRecord,
    Person,
)
from app.people import registry
from app.vault.envelopes import ShreddedError
from app.vault.keyring import FileKeyRing
from tests.lifecycle.helpers import (
    approved_request,
    dispose,
    export_rows,
    population,
    totp_now,
    traces_left,
    user_actor,
)
from tests.support import actor, leaks


def _request(session, make_user, ids, role="Operator"):
    requester, _ = make_user(role)
    req = disposal.request_disposal(
        session, user_actor(requester, role), scope="people", reason="保存期間満了", person_ids=ids
    )
    return req, requester


def _denials(session, action):
    return (
        session.execute(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == "denied")
        )
        .scalars()
        .all()
    )


def test_the_requester_cannot_approve_their_own_request(session, vault, make_user):
    crowd = population(session, vault, n=2)
    staff, secret = make_user("ClientStaff")
    req = disposal.request_disposal(
        session,
        user_actor(staff, "ClientStaff"),
        scope="people",
        reason="本人からの依頼",
        person_ids=[crowd[0].id],
    )
    with pytest.raises(disposal.DisposalError, match="自分が申請した"):
        disposal.decide(
            session, vault, user_actor(staff, "ClientStaff"), req.id, True, totp_now(secret)
        )
    assert session.get(DisposalRequest, req.id).status == "pending"
    assert len(_denials(session, "disposal.approved")) == 1


def test_approval_without_totp_is_refused(session, vault, make_user):
    crowd = population(session, vault, n=2)
    req, _ = _request(session, make_user, [crowd[0].id])
    staff, secret = make_user("ClientStaff")
    # Signed in without the second factor: the policy drops the ClientStaff role.
    with pytest.raises(policy.PermissionDenied, match="二要素認証"):
        disposal.decide(
            session,
            vault,
            user_actor(staff, "ClientStaff", mfa=False),
            req.id,
            True,
            totp_now(secret),
        )
    # Signed in with TOTP, but no fresh code (or a wrong one) for this approval.
    with pytest.raises(policy.PermissionDenied, match="確認コード"):
        disposal.decide(session, vault, user_actor(staff, "ClientStaff"), req.id, True, "")
    wrong = f"{(int(totp_now(secret)) + 500000) % 1000000:06d}"
    with pytest.raises(policy.PermissionDenied, match="正しくありません"):
        disposal.decide(session, vault, user_actor(staff, "ClientStaff"), req.id, True, wrong)
    assert session.get(DisposalRequest, req.id).status == "pending"
    assert len(_denials(session, "disposal.approved")) == 3


@pytest.mark.parametrize("role", ["Operator", "Auditor", "SystemAdmin"])
def test_only_client_staff_approves(session, vault, make_user, role):
    crowd = population(session, vault, n=1)
    req, _ = _request(session, make_user, [crowd[0].id])
    user, secret = make_user(role)
    with pytest.raises(policy.PermissionDenied):
        disposal.decide(
            session, vault, user_actor(user, role), req.id, True, totp_now(secret or "A" * 32)
        )


def test_requests_need_a_reason_and_people_and_cannot_be_run_unapproved(
    session, vault, make_user, app
):
    crowd = population(session, vault, n=2)
    operator, _ = make_user("Operator")
    who = user_actor(operator, "Operator")
    with pytest.raises(disposal.DisposalError, match="理由"):
        disposal.request_disposal(
            session, who, scope="people", reason=" ", person_ids=[crowd[0].id]
        )
    with pytest.raises(disposal.DisposalError, match="1名以上"):
        disposal.request_disposal(session, who, scope="people", reason="x", person_ids=[])
    with pytest.raises(disposal.DisposalError, match="資料の内容"):
        disposal.request_disposal(session, who, scope="material", reason="x")
    with pytest.raises(disposal.DisposalError, match="削除予定日を過ぎた人物はいません"):
        disposal.request_disposal(session, who, scope="due", reason="x")
    with pytest.raises(policy.PermissionDenied):
        disposal.request_disposal(
            session, actor("Auditor"), scope="people", reason="x", person_ids=[crowd[0].id]
        )
    req = disposal.request_disposal(
        session, who, scope="people", reason="x", person_ids=[crowd[0].id]
    )
    with pytest.raises(disposal.DisposalError, match="承認した申請のみ"):
        disposal.execute(session, vault, who, req.id, app.config["DISPOSAL_JOURNAL_FILE"])
    assert session.get(Person, crowd[0].id).status == "active"


def test_codes_resolve_to_people(session, vault):
    crowd = population(session, vault, n=3)
    ids = disposal.resolve_codes(session, f"{crowd[0].code}-00\n\n{crowd[2].code}\n")
    assert ids == [crowd[0].id, crowd[2].id]
    with pytest.raises(disposal.DisposalError, match="2行目: 該当する人物が見つかりません"):
        disposal.resolve_codes(session, f"{crowd[0].code}\nZZZ-99")


def test_disposing_3_of_10_leaves_the_other_7_intact_and_no_trace_of_the_3(
    session, vault, make_user, app
):
    crowd = population(session, vault, n=10)
    gone, kept = crowd[:3], crowd[3:]
    import datetime as dt

    from app.models import NameChange

    old_name = "旧姓試験" + gone[0].name[-2:]
    session.add(
        NameChange(
            person_id=gone[0].id,
            old_name=old_name,
            new_name=gone[0].name,
            changed_on=dt.date(2020, 4, 1),
            recorded_by="test",
        )
    )
    session.commit()
    gone[0].traces.append(old_name.encode())
    before_other_ciphertexts = {
        s.id: bytes(
            session.execute(
                select(MyNumberRecord.ciphertext).where(MyNumberRecord.person_id == s.id)
            ).scalar_one()
        )
        for s in kept
    }
    assert traces_left(app, gone)  # the search finds them before

    req = dispose(session, vault, app, make_user, [s.id for s in gone])
    session.expire_all()

    # The 3: tombstones only, keys destroyed (in the key ring, outside the database, too).
    for someone in gone:
        person = session.get(Person, someone.id)
        assert person.status == "disposed" and person.name == holders.DISPOSED_NAME
        assert person.name_kana is None and person.birth_date is None and person.code is None
        assert person.address_enc is None and person.email is None
        assert registry.active_record(session, someone.id) is None
    assert req.person_count == 3 and req.keys_destroyed == 3 and req.numbers_deleted == 3
    assert session.execute(select(func.count(NameChange.id))).scalar_one() == 0
    shredded = FileKeyRing(app.config["KEYRING_PATH"]).shredded()
    assert len(shredded) >= 3
    assert traces_left(app, gone) == []
    assert leaks(app, [s.number for s in gone]) == []

    # The 7: untouched, and still exportable (the client's layout export) ...
    staff = export_rows(session, vault)["staff"]
    assert sorted(r[0] for r in staff) == sorted(s.code for s in kept)
    assert sorted(r[5] for r in staff) == sorted(s.number for s in kept)
    # ... with their addresses still decryptable.
    exported = {d.person.id: d for d in iter_people(session, vault)}
    assert set(exported) == {s.id for s in kept}
    for someone in kept:
        data = exported[someone.id]
        assert data.number == someone.number and data.address == someone.address
        assert data.person.name == someone.name
        ciphertext = session.execute(
            select(MyNumberRecord.ciphertext).where(MyNumberRecord.person_id == someone.id)
        ).scalar_one()
        assert bytes(ciphertext) == before_other_ciphertexts[someone.id]

    # Audited: request, approval, execution range with the chain hash; ids only, no names.
    events = session.execute(
        select(AuditEvent).where(
            AuditEvent.seq >= req.exec_first_seq, AuditEvent.seq <= req.exec_last_seq
        )
    ).scalars()
    actions = [e.action for e in events]
    assert actions[0] == "disposal.execute" and actions[-1] == "disposal.executed"
    assert "disposal.people_disposed" in actions
    last = session.get(AuditEvent, req.exec_last_seq)
    assert last.hash == req.exec_last_hash
    disposed_event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "disposal.people_disposed")
    ).scalar_one()
    assert set(json.loads(disposed_event.object_ids)) == {str(s.id) for s in gone}
    all_audit = " ".join(
        f"{e.details} {e.purpose}" for e in session.execute(select(AuditEvent)).scalars()
    )
    assert not any(s.name in all_audit for s in gone)


def test_execution_is_idempotent_and_a_crash_is_finished_by_reapply(
    session, vault, make_user, app, monkeypatch
):
    crowd = population(session, vault, n=4)
    req, operator, _ = approved_request(session, vault, make_user, [crowd[0].id, crowd[1].id])
    journal = app.config["DISPOSAL_JOURNAL_FILE"]

    # The database transaction fails after the key ring recorded the disposal.
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(holders, "dispose_people", boom)
    with pytest.raises(RuntimeError):
        disposal.execute(session, vault, user_actor(operator, "Operator"), req.id, journal)
    monkeypatch.undo()
    session.expire_all()
    assert session.get(DisposalRequest, req.id).status == "approved"
    assert session.get(Person, crowd[0].id).status == "active"  # the DB rolled back, but:
    record = registry.active_record(session, crowd[0].id)
    with pytest.raises(ShreddedError):  # the data is already unreadable (the safe direction)
        vault.decrypt_for(
            session, crowd[0].id, "my_number_record", "ciphertext", record.id, record.ciphertext
        )
    failure = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "disposal.execute", AuditEvent.outcome == "failure"
        )
    ).scalar_one()
    assert "RuntimeError" in failure.details

    # Running it again completes it; a third run changes nothing.
    done = disposal.execute(session, vault, user_actor(operator, "Operator"), req.id, journal)
    assert done.request.status == "executed" and done.request.person_count == 2
    again = disposal.execute(session, vault, user_actor(operator, "Operator"), req.id, journal)
    assert again.already_done
    assert session.get(Person, crowd[2].id).status == "active"


def test_due_scope_is_fixed_at_request_time_and_all_means_everyone_at_execution(
    session, vault, make_user, app
):
    import datetime as dt

    from app.lifecycle import retention

    crowd = population(session, vault, n=4)
    for someone in crowd[:2]:
        session.get(Person, someone.id).ended_on = dt.date(2010, 3, 31)
    session.commit()
    retention.recompute(session)
    session.commit()
    req, operator, _ = approved_request(session, vault, make_user, [], scope="due")
    assert req.planned_count == 2
    items = session.execute(select(DisposalItem.person_id).where(DisposalItem.request_id == req.id))
    assert set(items.scalars()) == {crowd[0].id, crowd[1].id}
    disposal.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        req.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    everyone, operator, _ = approved_request(session, vault, make_user, [], scope="all")
    late = population(session, vault, n=1, prefix="Z")  # registered after the request
    result = disposal.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        everyone.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    assert result.request.person_count == 3
    assert session.get(Person, late[0].id).status == "disposed"
    assert (
        session.execute(select(func.count(Person.id)).where(Person.status == "active")).scalar_one()
        == 0
    )


def test_materials_follow_request_approval_and_record(session, vault, make_user):
    import datetime as dt

    from app.core import jptime

    operator, _ = make_user("Operator")
    staff, secret = make_user("ClientStaff")
    req = disposal.request_disposal(
        session,
        user_actor(operator, "Operator"),
        scope="material",
        reason="本人確認書類の写し（紙）の保存期間満了",
        material_description="2025年度 提出書類の原本",
        quantity="段ボール3箱",
    )
    with pytest.raises(disposal.DisposalError, match="承認した申請のみ"):
        disposal.record_material_disposal(
            session,
            user_actor(operator, "Operator"),
            req.id,
            method=disposal.MATERIAL_METHODS[1],
            performed_on=jptime.today_jst(),
        )
    disposal.decide(
        session, vault, user_actor(staff, "ClientStaff"), req.id, True, totp_now(secret)
    )
    with pytest.raises(disposal.DisposalError, match="承認日以降"):
        disposal.record_material_disposal(
            session,
            user_actor(operator, "Operator"),
            req.id,
            method=disposal.MATERIAL_METHODS[1],
            performed_on=jptime.today_jst() - dt.timedelta(days=3),
        )
    done = disposal.record_material_disposal(
        session,
        user_actor(operator, "Operator"),
        req.id,
        method=disposal.MATERIAL_METHODS[1],
        performed_on=jptime.today_jst(),
        contractor_ref="溶解証明書 No.123",
    )
    assert done.status == "executed" and done.certificate_no.startswith("DC-")
    assert session.get(AuditEvent, done.exec_last_seq).action == "disposal.material_recorded"


def test_the_command_line_is_trusted_by_type_not_by_name(session, vault, make_user, app):
    from app.access.policy import ShellActor
    from app.core.actor import Actor

    crowd = population(session, vault, n=1)
    req, _, _ = approved_request(session, vault, make_user, [crowd[0].id])
    journal = app.config["DISPOSAL_JOURNAL_FILE"]
    with pytest.raises(policy.PermissionDenied):
        disposal.execute(session, vault, Actor(name="cli:root"), req.id, journal)
    with pytest.raises(policy.PermissionDenied):  # the shell never requests or approves
        disposal.request_disposal(session, ShellActor(name="cli:root"), scope="all", reason="x")
    done = disposal.execute(session, vault, ShellActor(name="cli:root"), req.id, journal)
    assert done.request.executed_by_name == "cli:root"


def test_a_dependent_removed_from_the_household_is_still_stored_until_disposed(
    session, vault, make_user, app
):
    """Record keeping keeps a removed dependent's records (status ``removed``) until disposal: the
    retention dates, the scopes and "everyone" must reach them."""
    import datetime as dt

    from app.lifecycle import retention
    from app.models import PersonKind
    from app.people import records

    head = registry.add_person(session, vault, kind="employee", name="世帯主", code="H1")
    child = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name="外れた子",
        household_head=head,
        dependent_seq=1,
    )
    registry.register_number(session, vault, child, "123456789018", "manual")
    session.commit()
    staff, _ = make_user("ClientStaff")
    records.remove_dependent(
        session,
        user_actor(staff, "ClientStaff"),
        child.id,
        {"ended_on": "2015/03/31", "reason": "就職"},
    )
    session.commit()
    assert session.get(Person, child.id).status == "removed"
    retention.recompute(session)
    session.commit()
    assert session.get(Person, child.id).delete_after == dt.date(2023, 1, 11)
    assert child.id in retention.due_ids(session)
    req, operator, _ = approved_request(session, vault, make_user, [], scope="all")
    result = disposal.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        req.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    assert result.request.person_count == 2
    assert session.get(Person, child.id).status == "disposed"
    assert session.execute(select(func.count(MyNumberRecord.id))).scalar_one() == 0


def test_a_number_in_any_text_of_a_material_disposal_is_refused_naming_the_field(
    app, session, vault, make_user
):
    from app.core import jptime

    operator, _ = make_user("Operator")
    staff, secret = make_user("ClientStaff")
    who = user_actor(operator, "Operator")
    dotted = "1234.5678.9018"
    for kwargs, label in (
        ({"reason": f"番号 {dotted}"}, "廃棄の理由"),
        ({"material_description": f"原本 {dotted}"}, "対象の説明"),
        ({"quantity": f"{dotted} 箱"}, "数量"),
    ):
        values = {"reason": "保存期間満了", "material_description": "原本", **kwargs}
        with pytest.raises(disposal.DisposalError, match=f"^{label}に個人番号と思われる"):
            disposal.request_disposal(session, who, scope="material", **values)
    req = disposal.request_disposal(
        session, who, scope="material", reason="保存期間満了", material_description="原本"
    )
    with pytest.raises(disposal.DisposalError, match="^コメントに個人番号"):
        disposal.decide(
            session, vault, user_actor(staff, "ClientStaff"), req.id, False, note=dotted
        )
    disposal.decide(
        session, vault, user_actor(staff, "ClientStaff"), req.id, True, totp_now(secret)
    )
    with pytest.raises(disposal.DisposalError, match="^備考に個人番号"):
        disposal.record_material_disposal(
            session,
            who,
            req.id,
            method=disposal.MATERIAL_METHODS[1],
            performed_on=jptime.today_jst(),
            note=f"立会 {dotted}",
        )
    assert leaks(app, [dotted.replace(".", "")]) == []
    assert not any(dotted in (e.details or "") for e in session.query(AuditEvent))
