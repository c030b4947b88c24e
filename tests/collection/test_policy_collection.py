"""Least privilege for the collection work (no database needed)."""

import pytest

from app.access import policy
from tests.support import actor

VIEWS = ("Campaigns", "Mailings", "PaperIntake", "Verification")


def test_collection_views_are_personal_data():
    assert set(VIEWS) <= policy.PERSONAL_DATA_VIEWS
    for menu in (
        policy.MENU_CAMPAIGNS,
        policy.MENU_VERIFICATION,
        policy.MENU_PAPER,
        policy.MENU_MAILINGS,
    ):
        assert menu in policy.PERSONAL_DATA_MENUS


@pytest.mark.parametrize("roles", [("SystemAdmin",), ("SystemAdmin", "Operator"), ("Auditor",)])
def test_no_collection_permission_for_admins_and_auditors(roles):
    granted = policy.permissions(actor(*roles))
    assert not {p for p in granted if p[1] in VIEWS}


def test_the_client_orders_and_follows_but_does_not_collect():
    granted = policy.permissions(actor("ClientStaff"))
    for perm in ("can_list", "can_show", "can_add", "can_upload", "can_letters", "can_export"):
        assert (perm, "Campaigns") in granted
    for perm, view in (
        ("can_send", "Campaigns"),
        ("can_print", "Campaigns"),
        ("can_list", "Verification"),
        ("can_key", "PaperIntake"),
        ("can_list", "Mailings"),
    ):
        assert (perm, view) not in granted


def test_the_operator_collects_only_with_roster_and_totp():
    for perm, view in (
        ("can_send", "Campaigns"),
        ("can_key", "PaperIntake"),
        ("can_decide", "Verification"),
        ("can_post", "Mailings"),
    ):
        assert policy.allows(actor("Operator"), perm, view)
        assert not policy.allows(actor("Operator", roster=False), perm, view)
        assert not policy.allows(actor("Operator", mfa=False), perm, view)


def test_only_the_client_places_an_order_and_names_who_works_it():
    """Campaign creation, target upload and the 担当事務取扱担当者 assignment are the
    client's: an Operator executes orders, never places one or assigns themselves."""
    order = [("can_add", "Campaigns"), ("can_upload", "Campaigns"), ("can_assign", "Campaigns")]
    staff = policy.permissions(actor("ClientStaff"))
    operator = policy.permissions(actor("Operator"))
    for pair in order:
        assert pair in staff
        assert pair not in operator
    # The operator still sees the campaigns and their letters, and does the work.
    for perm in ("can_list", "can_show", "can_letters", "can_send", "can_print"):
        assert (perm, "Campaigns") in operator


def test_the_server_shell_enters_a_clients_order_but_assigns_nobody():
    from app.access.policy import ShellActor

    shell = ShellActor(name="cli:ops")
    assert policy.allows(shell, "can_add", "Campaigns")
    assert policy.allows(shell, "can_upload", "Campaigns")
    assert not policy.allows(shell, "can_assign", "Campaigns")
