"""Who may do what in the storage lifecycle."""

import pytest

from app.access import policy
from tests.support import actor


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (
            "Operator",
            {("can_request", "Disposal"), ("can_execute", "Disposal"), ("can_list", "Retention")},
            {("can_approve", "Disposal"), ("can_export", "ReturnArchive")}
            | {("can_download", "DeletionCertificate")},
        ),
        (
            "ClientStaff",
            {("can_approve", "Disposal"), ("can_export", "ReturnArchive")}
            | {("can_download", "DeletionCertificate")},
            set(),
        ),
        (
            "Auditor",
            {("can_download", "DeletionCertificate"), ("can_list", "DeletionCertificate")},
            {("can_show", "Disposal"), ("can_list", "Retention"), ("can_list", "ReturnArchive")},
        ),
        (
            "SystemAdmin",
            set(),
            {("can_list", "Disposal"), ("can_list", "Retention"), ("can_export", "ReturnArchive")},
        ),
    ],
)
def test_lifecycle_permissions(role, allowed, refused):
    granted = policy.permissions(actor(role))
    assert allowed <= granted
    assert not (refused & granted)


def test_no_lifecycle_personal_view_for_a_system_admin_even_with_client_staff():
    granted = policy.permissions(actor("SystemAdmin", "ClientStaff"))
    assert not {p for p in granted if p[1] in ("Retention", "Disposal", "ReturnArchive")}
    assert ("menu_access", policy.MENU_DISPOSAL) not in granted


def test_approval_needs_totp_and_the_roster():
    for who in (actor("ClientStaff", mfa=False), actor("ClientStaff", roster=False)):
        assert not policy.allows(who, "can_approve", "Disposal")
