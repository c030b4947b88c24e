"""Who may import, export, bulk-match, keep records and layouts."""

import dataclasses

import pytest

from app.access import policy
from app.access.policy import ShellActor
from app.core.actor import Actor
from tests.support import actor

CASES = [
    # permission,             Operator, ClientStaff, Auditor, SystemAdmin
    (("can_import", "Numbers"), False, True, False, False),
    (("can_export", "Numbers"), False, True, False, False),
    (("can_match", "Numbers"), False, True, False, False),
    (("can_edit", "People"), False, True, False, False),
    (("can_edit", "Layouts"), True, True, False, False),
    (("can_reveal", "People"), True, True, False, False),
]


@pytest.mark.parametrize(("permission", "operator", "client", "auditor", "admin"), CASES)
def test_permission_table(permission, operator, client, auditor, admin):
    for role, expected in (
        ("Operator", operator),
        ("ClientStaff", client),
        ("Auditor", auditor),
        ("SystemAdmin", admin),
    ):
        assert policy.allows(actor(role), *permission) is expected, (role, permission)


def test_roster_and_totp_still_rule_the_new_permissions():
    assert not policy.allows(actor("ClientStaff", mfa=False), "can_export", "Numbers")
    assert not policy.allows(actor("ClientStaff", roster=False), "can_import", "Numbers")
    with pytest.raises(policy.PermissionDenied, match="システム管理者"):
        policy.require(actor("SystemAdmin", "ClientStaff"), "can_export", "Numbers")
    granted = policy.permissions(actor("SystemAdmin", "ClientStaff"))
    assert not {p for p in granted if p[0] == "menu_access" and p[1] in policy.PERSONAL_DATA_MENUS}


def test_the_shell_is_trusted_by_type_only():
    shell = ShellActor(name="cli:root")
    assert policy.allows(shell, "can_import", "Numbers") and policy.allows(
        shell, "can_export", "Numbers"
    )
    assert not policy.allows(shell, "can_reveal", "People")
    assert not policy.allows(Actor(name="cli:root"), "can_export", "Numbers")
    assert not policy.allows(dataclasses.replace(shell, user_id=7), "can_export", "Numbers")
    assert not policy.allows(
        dataclasses.replace(shell, roles=("SystemAdmin",)), "can_export", "Numbers"
    )


def test_system_admin_is_refused_reveal_of_imported_people(session, vault):
    import io
    import json

    from sqlalchemy import select

    from app.io import imports, layouts
    from app.models import AuditEvent, Person
    from app.people import registry
    from tests.io.helpers import STAFF_HEADER, csv_bytes, staff_rows

    rows = staff_rows(1, 0, seed=81)
    report = imports.import_csv(
        session,
        vault,
        ShellActor(name="cli:t"),
        io.BytesIO(csv_bytes(STAFF_HEADER, rows)),
        layouts.get(session, "staff"),
    )
    assert report.ok
    person = session.execute(select(Person)).scalar_one()
    with pytest.raises(policy.PermissionDenied, match="システム管理者"):
        registry.reveal(session, vault, actor("SystemAdmin"), person.id, "確認")
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "number.reveal")
    ).scalar_one()
    assert event.outcome == "denied" and rows[0][5] not in json.dumps(event.details)
    assert (
        registry.reveal(session, vault, actor("ClientStaff"), person.id, "年末調整") == rows[0][5]
    )
