"""Who may do what: the permission table and the three rules around it."""

import pytest

from app.access import policy
from tests.support import actor


def test_client_staff_may_reveal_with_roster_and_totp():
    assert policy.allows(actor("ClientStaff"), "can_reveal", "People")


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        (actor("ClientStaff", roster=False), "情報取扱者名簿"),
        (actor("ClientStaff", mfa=False), "二要素認証"),
        (actor("Operator", roster=False), "情報取扱者名簿"),
        (actor("Auditor"), "権限がありません"),
        (actor("SystemAdmin"), "システム管理者"),
        (actor("SystemAdmin", "ClientStaff"), "システム管理者"),
        (actor(), "権限がありません"),
    ],
)
def test_reveal_refused(who, reason):
    with pytest.raises(policy.PermissionDenied) as info:
        policy.require(who, "can_reveal", "People")
    assert reason in str(info.value)


def test_system_admin_keeps_admin_rights_but_no_personal_data_even_with_other_roles():
    both = actor("SystemAdmin", "ClientStaff")
    granted = policy.permissions(both)
    assert ("can_list", "UserDBModelView") in granted
    assert not {p for p in granted if p[1] in policy.PERSONAL_DATA_VIEWS}
    assert ("menu_access", policy.MENU_PEOPLE) not in granted


def test_auditor_reads_audit_and_roster_only():
    granted = policy.permissions(actor("Auditor"))
    assert ("can_verify", "AuditLog") in granted
    assert ("can_list", "Roster") in granted
    assert ("can_add", "Roster") not in granted
    assert not {p for p in granted if p[1] in policy.PERSONAL_DATA_VIEWS}


def test_nobody_but_auditors_reads_the_audit_log():
    for role in ("SystemAdmin", "Operator", "ClientStaff"):
        assert not policy.allows(actor(role), "can_list", "AuditLog")
