"""Hostile requests against the admin portal: roles reaching for each other's screens, ids
that are not theirs, forms posted without a CSRF token, and markup or SQL in form fields and
query strings. Each refusal is a Japanese page (never a traceback or a 500), changes nothing,
and — when a signed-in user is refused — leaves an ``access.denied`` audit event."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from sqlalchemy import select

from app.access import policy
from app.access.policy import ShellActor
from app.io import exports, imports, layouts
from app.models import Campaign, ExportItem, Person
from app.people import registry

# The return address and fee table that issuing a request needs (autouse in this module).
from tests.collection.conftest import collection_config  # noqa: F401
from tests.hostile.conftest import assert_clear_refusal, audit_events, count
from tests.io.helpers import STAFF_HEADER, csv_bytes, staff_rows
from tests.support import actor, csrf_token, post_form


@pytest.fixture
def stored(session, vault):
    """Four households (eight people with numbers), imported as the server's shell would."""
    rows = staff_rows(4, dependents=1, seed=901)
    report = imports.import_csv(
        session,
        vault,
        ShellActor(name="cli:hostile"),
        io.BytesIO(csv_bytes(STAFF_HEADER, rows)),
        layouts.get(session, "staff"),
    )
    assert report.committed
    return session.execute(select(Person).order_by(Person.code)).scalars().all()


def _denied_routes() -> list[str]:
    return [json.loads(e.details)["route"] for e in audit_events("access.denied", "denied")]


# role, method, url: a screen of another role. Each is refused with 403 and audited.
ESCALATIONS = [
    ("Operator", "GET", "/io/export/"),  # ClientStaff only: numbers leave the system
    ("Operator", "GET", "/io/match/"),
    ("Operator", "GET", "/records/new"),
    ("Operator", "GET", "/keys/"),
    ("Operator", "GET", "/users/list/"),
    ("Operator", "GET", "/io/import/"),  # ClientStaff only: an import tells what is stored
    ("ClientStaff", "GET", "/verification/"),
    ("ClientStaff", "GET", "/paper/"),
    ("ClientStaff", "GET", "/intake/"),
    ("Auditor", "GET", "/io/export/"),
    ("Auditor", "GET", "/people/"),
    ("Auditor", "GET", "/campaigns/"),
    ("SystemAdmin", "GET", "/people/"),  # a SystemAdmin never sees a person
    ("SystemAdmin", "GET", "/io/export/"),
    ("SystemAdmin", "GET", "/intake/"),
    ("SystemAdmin", "GET", "/campaigns/"),
    ("SystemAdmin", "GET", "/disposal/"),
]


@pytest.mark.parametrize(
    ("role", "method", "url"), ESCALATIONS, ids=[f"{r}-{u}" for r, _m, u in ESCALATIONS]
)
def test_a_role_reaching_for_another_roles_screen_is_refused_and_audited(
    client, signed_in, role, method, url
):
    user = signed_in(role)
    response = client.open(url, method=method)
    assert_clear_refusal(response, "この操作を行う権限がありません", status=403)
    events = audit_events("access.denied", "denied")
    assert events and events[-1].actor_id == user.id
    details = json.loads(events[-1].details)
    assert details["reason"] == "forbidden" and details["method"] == method
    assert details["route"] == url  # the route's pattern (these routes have no parameters)


def test_a_system_admin_who_also_holds_client_staff_still_cannot_reveal(
    app, client, make_user, login, session, stored
):
    """Separation of duties: adding a personal-data role to a SystemAdmin widens nothing."""
    user, secret = make_user("SystemAdmin")
    user.roles.append(app.appbuilder.sm.find_role("ClientStaff"))
    session.commit()
    login(user.username, totp_secret=secret)
    pid = stored[0].id
    token = csrf_token(client, "/keys/")  # a page of the portal a SystemAdmin may open
    response = client.post(f"/people/{pid}/reveal", data={"purpose": "確認", "csrf_token": token})
    assert_clear_refusal(response, status=403)
    assert "/people/<string:pid>/reveal" in _denied_routes()
    assert not audit_events("number.reveal", "success")


@pytest.mark.parametrize("role", ["SystemAdmin", "Auditor"])
def test_reveal_by_a_role_without_it_is_refused_and_audited_at_the_service(
    session, vault, stored, role
):
    with pytest.raises(policy.PermissionDenied):
        registry.reveal(session, vault, actor(role), stored[0].id, "確認")
    denied = audit_events("number.reveal", "denied")
    assert denied and str(stored[0].id) in denied[-1].object_ids


@pytest.mark.parametrize("role", ["Auditor", "Operator", "SystemAdmin"])
def test_export_by_a_role_without_it_is_refused_audited_and_writes_no_manifest(
    session, vault, stored, role
):
    out = io.BytesIO()
    with pytest.raises(policy.PermissionDenied):
        exports.export_csv(
            session, vault, actor(role), layouts.get(session, "staff"), out, "年末調整"
        )
    assert out.getvalue() == b""
    assert audit_events("numbers.export", "denied")
    assert count(ExportItem) == 0


def test_an_operator_cannot_reveal_a_person_whose_case_they_do_not_work(client, signed_in, stored):
    """IDOR: the person's id is in the URL; knowing it is not enough."""
    signed_in("Operator")
    pid = stored[3].id
    response = post_form(
        client, f"/people/{pid}/reveal", {"purpose": "確認"}, token_from="/people/"
    )
    html = assert_clear_refusal(response, "担当している案件の対象者のみ", status=200)
    assert "****-****-" in html
    denied = audit_events("number.reveal", "denied")
    assert denied and str(pid) in denied[-1].object_ids
    assert not audit_events("number.reveal", "success")


@pytest.mark.parametrize(
    "pid",
    [str(uuid.uuid4()), "not-a-uuid", "' OR '1'='1", "..%2F..%2Fkeyring.json", "1" * 12],
    ids=["unknown-uuid", "garbage", "sql", "traversal", "twelve-digits"],
)
def test_a_person_url_with_a_forged_id_is_a_japanese_404(client, signed_in, stored, pid):
    signed_in("ClientStaff")
    response = client.get(f"/people/{pid}")
    assert_clear_refusal(response, status=404)
    assert not audit_events("people.view")


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/people/", {"name": "見本"}),
        ("/io/export/", {"layout": "1", "encoding": "", "purpose": "年末調整"}),
        ("/campaigns/create", {"name": "偽造", "kind": "employee", "deadline": "2099-01-05"}),
    ],
    ids=["search", "export", "campaign-create"],
)
def test_a_client_staff_post_without_the_csrf_token_is_refused_and_audited(
    client, signed_in, stored, url, data
):
    signed_in("ClientStaff")
    response = client.post(url, data=data)
    assert_clear_refusal(response, status=400)
    assert count(Campaign) == 0 and count(ExportItem) == 0
    assert not audit_events("numbers.export") and not audit_events("people.search")
    reasons = [json.loads(e.details)["reason"] for e in audit_events("access.denied")]
    assert reasons == ["csrf"]


def test_a_reveal_without_the_csrf_token_decrypts_nothing(client, signed_in, stored):
    signed_in("ClientStaff")
    response = client.post(f"/people/{stored[0].id}/reveal", data={"purpose": "確認"})
    assert_clear_refusal(response, status=400)
    assert not audit_events("number.reveal")


def test_key_rotation_without_the_csrf_token_changes_no_key(app, client, signed_in):
    keyring = app.extensions["mynumber_keyring"]
    before = keyring.kek_versions()
    signed_in("SystemAdmin")
    response = client.post("/keys/rotate", data={})
    assert_clear_refusal(response, status=400)
    assert keyring.kek_versions() == before


@pytest.mark.parametrize(
    "name",
    ["' OR '1'='1", "%' OR 1=1 --", "見本'; DROP TABLE person; --", "\\", "_%"],
    ids=["or-true", "like-wildcard-or", "drop", "backslash", "wildcards"],
)
def test_sql_in_the_search_form_finds_nobody_and_breaks_nothing(client, signed_in, stored, name):
    signed_in("ClientStaff")
    # A name search answers at its GET address (Back works); the text is only ever data.
    response = post_form(client, "/people/", {"name": name}, follow_redirects=True)
    html = assert_clear_refusal(response, status=200)
    assert not any(p.name in html for p in stored)
    assert count(Person) == len(stored)


@pytest.mark.parametrize(
    "url",
    [
        "/people/?name=<script>alert(1)</script>",
        "/auditlogview/list/?_flt_0_action=<script>alert(1)</script>",
        "/auditlogview/list/?_oc_AuditLogView=seq);DROP TABLE audit_event;--&_od_AuditLogView=asc",
        "/auditlogview/list/?_oc_NoSuchView=x&_od_NoSuchView=desc",
        "/auditlogview/list/?psize_AuditLogView=100000000&page_AuditLogView=-1",
        "/auditlogview/list/?page_AuditLogView=1;DROP TABLE audit_event",
        "/auditlogview/list/?psize_AuditLogView=0",
        "/campaigns/<script>alert(1)</script>",
        "/nowhere/<img src=x onerror=alert(1)>",
    ],
    ids=[
        "search-query",
        "fab-filter",
        "fab-order-sql",
        "fab-order-unknown-view",
        "fab-page-size",
        "fab-page-sql",
        "fab-page-size-zero",
        "campaign-id",
        "404",
    ],
)
def test_markup_and_sql_in_query_strings_are_never_reflected_raw(client, signed_in, url):
    signed_in("Auditor")
    response = client.get(url)
    html = assert_clear_refusal(response)
    assert "<script>alert(1)" not in html and "<img src=x" not in html


def test_a_campaign_name_with_markup_is_escaped_in_the_list(client, signed_in):
    signed_in("ClientStaff")
    name = '"><script>alert("c")</script>'
    from tests.collection.conftest import future_business_day

    post_form(
        client,
        "/campaigns/create",
        {
            "name": name,
            "kind": "employee",
            "deadline": future_business_day().isoformat(),
            "purpose_text": "源泉徴収票作成事務",
        },
        token_from="/campaigns/",
    )
    assert count(Campaign) == 1
    html = client.get("/campaigns/").get_data(as_text=True)
    assert '<script>alert("c")' not in html
    assert "&lt;script&gt;alert(" in html


def test_targets_posted_to_a_closed_or_unknown_campaign_load_nobody(
    session, staff, client, signed_in
):
    """IDOR on campaigns: the id in the URL decides nothing by itself. A closed campaign
    refuses targets with the reason; an id that does not exist is a Japanese 404."""
    from app.collection import campaigns
    from tests.collection.conftest import EMPLOYEE_CSV, future_business_day

    closed = campaigns.create_campaign(
        session,
        staff,
        name="終了済み",
        kind="employee",
        deadline=future_business_day(),
        purpose_text="源泉徴収票作成事務",
    )
    closed.status = "closed"
    session.commit()
    signed_in("ClientStaff")
    for cid, status, phrase in (
        (closed.id, 422, "行 1: キャンペーン: 終了したキャンペーンには追加できません"),
        (closed.id + 1000, 404, "お探しのページは見つかりません"),
        ("1 OR 1=1", 404, "お探しのページは見つかりません"),
    ):
        token = csrf_token(client, "/campaigns/")
        response = client.post(
            f"/campaigns/{cid}/targets",
            data={"file": (io.BytesIO(EMPLOYEE_CSV.encode()), "t.csv"), "csrf_token": token},
            content_type="multipart/form-data",
        )
        assert_clear_refusal(response, phrase, status=status)
    assert count(Person) == 0


def test_ordinary_sorting_and_paging_still_work(client, signed_in):
    signed_in("Auditor")
    for url in (
        "/auditlogview/list/?_oc_AuditLogView=seq&_od_AuditLogView=desc",
        "/auditlogview/list/?page_AuditLogView=0&psize_AuditLogView=25",
    ):
        assert client.get(url).status_code == 200, url


def test_refused_events_never_hold_what_was_typed_in_the_url(client, signed_in):
    """The audit keeps the route's pattern, never the path: a URL can carry a number."""
    signed_in("Auditor")
    client.get("/people/123456789018")
    client.get("/people/?q=123456789018")
    rows = audit_events("access.denied")
    assert len(rows) == 2
    assert all("123456789018" not in (e.details + e.object_ids) for e in rows)
