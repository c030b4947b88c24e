"""Helpers the tests share: form posts with CSRF, actors, and the bytes-at-rest search."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.actor import Actor

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    html = client.get(url).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def post_form(client, url: str, data: dict, token_from: str | None = None, **kwargs):
    """POST like a browser: fetch the page first for its CSRF token."""
    token = csrf_token(client, token_from or url)
    return client.post(url, data={**data, "csrf_token": token}, **kwargs)


def actor(
    *roles: str,
    mfa: bool = True,
    roster: bool = True,
    user_id: int | None = None,
    name: str = "tester",
) -> Actor:
    return Actor(name=name, user_id=user_id, roles=tuple(roles), mfa=mfa, roster_approved=roster)


def number_forms(number: str) -> list[bytes]:
    """Every way a number could have been written down: plain, grouped, full-width, UTF-16."""
    grouped = f"{number[:4]} {number[4:8]} {number[8:]}"
    hyphen = f"{number[:4]}-{number[4:8]}-{number[8:]}"
    wide = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    forms = [number, grouped, hyphen, wide]
    out = []
    for text in forms:
        out.append(text.encode("utf-8"))
        out.append(text.encode("utf-16-le"))
    return out


def written_bytes(app) -> list[tuple[str, bytes]]:
    """Everything the instance wrote: every file under MYNUMBER_HOME (database, WAL, key
    ring, logs, outbox) and, on PostgreSQL, every table's rows as COPY text and binary."""
    found: list[tuple[str, bytes]] = []
    home = Path(app.config["MYNUMBER_HOME"])
    for path in sorted(home.rglob("*")):
        if path.is_file():
            found.append((str(path), path.read_bytes()))
    pg_name = app.config.get("TEST_PG_DB")
    if pg_name:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            tables = [
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ]
            for table in tables:
                for fmt in ("TEXT", "BINARY"):
                    chunks = []
                    with conn.cursor().copy(
                        f'COPY (SELECT * FROM "{table}") TO STDOUT WITH (FORMAT {fmt})'
                    ) as copy:
                        for data in copy:
                            chunks.append(bytes(data))
                    found.append((f"pg:{table}:{fmt}", b"".join(chunks)))
    return found


def leaks(app, numbers: list[str]) -> list[str]:
    """Where any of the numbers appear in anything written: should always be empty."""
    hits = []
    for label, data in written_bytes(app):
        for number in numbers:
            for form in number_forms(number):
                if form in data:
                    hits.append(f"{label}: {number[-4:]}")
    return hits


def add_employee_with_number(
    session, vault, number: str, *, name: str = "見本 太郎", code: str = "E0001"
):
    """An employee (born 1980-04-01) with ``number`` stored, committed: the smallest person
    whose number can be revealed, exported, rotated and disposed of."""
    import datetime as dt

    from app.models import PersonKind
    from app.people import registry

    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name=name,
        code=code,
        birth_date=dt.date(1980, 4, 1),
    )
    registry.register_number(session, vault, person, number, "manual")
    session.commit()
    return person


SAMPLE_NUMBER = "123456789018"


def add_household(session, vault, dependent_name: str = "見本 花子", relation: str = "配偶者"):
    """見本 太郎 (E0001, number SAMPLE_NUMBER) and one dependent without a number: the smallest
    household that exercises search, 扶養者コード and masking."""
    import datetime as dt

    from app.models import PersonKind
    from app.people import registry

    head = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name="見本 太郎",
        name_kana="ミホン タロウ",
        code="E0001",
        birth_date=dt.date(1980, 4, 1),
    )
    dependent = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name=dependent_name,
        household_head=head,
        dependent_seq=1,
        relation=relation,
        birth_date=dt.date(1982, 5, 6),
    )
    registry.register_number(session, vault, head, SAMPLE_NUMBER, "manual")
    session.commit()
    return head, dependent


def add_kit_postage_rates(session, app, created_by: str = "test") -> None:
    """The carrier's fees for the kit's send and return methods (250 and 370 yen from 2020):
    the figures every hand-computed postage total in the tests starts from."""
    import datetime as dt

    from app.models import PostageRate

    for method, price in (
        (app.config["KIT_SEND_METHOD"], 250),
        (app.config["KIT_RETURN_METHOD"], 370),
    ):
        session.add(
            PostageRate(
                carrier=app.config["KIT_CARRIER"],
                method=method,
                price_yen=price,
                effective_from=dt.date(2020, 1, 1),
                created_by=created_by,
            )
        )


def unused_totp_code(app, username: str, secret: str) -> str:
    """A TOTP code the portal will accept for this user now: of a time step later than the
    last one the user spent (a code of a spent step is refused as a replay), and no earlier
    than the current step, so it stays valid for at least one step. Waits, at most about one
    step (30 s), when the user has already spent the next one too."""
    import time

    import pyotp
    from sqlalchemy import select

    from app.models import VaultUser, db

    with app.app_context(), db.engine.connect() as connection:
        last = connection.execute(
            select(VaultUser.__table__.c.totp_last_step).where(
                VaultUser.__table__.c.username == username
            )
        ).scalar()
    totp = pyotp.TOTP(secret)
    while True:
        now = totp.timecode(time.time())
        step = max(now, (last if last is not None else -1) + 1)
        if step <= now + 1:
            return totp.generate_otp(step)
        time.sleep(totp.interval - time.time() % totp.interval + 0.05)


def browser_sign_in(page, portal: str, username: str, password: str, totp_secret: str) -> None:
    """Password, then the TOTP code, as a person does in the portal's two sign-in pages."""
    import pyotp

    page.goto(f"{portal}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit], input[type=submit]")
    page.fill("input[name=code]", pyotp.TOTP(totp_secret).now())
    with page.expect_navigation():
        page.click("button[type=submit]")


def assign_operator(session, campaign, operator_user_id: int, staff_name: str = "client-staff"):
    """A ClientStaff user assigns the Operator to the campaign (app.access.assignments), committed."""
    from app.access import assignments

    staff = actor("ClientStaff", name=staff_name)
    assignments.assign(session, staff, campaign, operator_user_id)
    session.commit()


def client_campaign(session, purpose_text: str = "給与所得の源泉徴収票作成事務"):
    """A campaign a ClientStaff user ordered (employee kind, deadline in 40 days), committed."""
    import datetime as dt

    from app.collection import campaigns
    from app.models import CampaignKind

    campaign = campaigns.create_campaign(
        session,
        actor("ClientStaff", name="client-staff"),
        name="テスト用キャンペーン",
        kind=CampaignKind.EMPLOYEE,
        deadline=dt.date.today() + dt.timedelta(days=40),
        purpose_text=purpose_text,
    )
    session.commit()
    return campaign


def give_case(session, req, operator):
    """Let the Operator ``operator`` (an Actor with a user_id) work a submitted request the
    way the portal requires (app.access.assignments): the request belongs to a campaign the client's
    staff ordered (a hand-issued link is put into one), a ClientStaff user assigns the
    Operator to it, and the Operator claims it in the verification queue. Returns the case."""
    from app.collection import verification
    from app.models import Campaign

    if req.campaign_id is None:
        req.campaign_id = client_campaign(session, req.purpose_text).id
        session.commit()
    assign_operator(session, session.get(Campaign, req.campaign_id), operator.user_id)
    return verification.claim(session, operator, req.id)


def hold_case(session, person, operator, purpose_text: str = "給与所得の源泉徴収票作成事務"):
    """Give the Operator ``operator`` (an Actor with a user_id) the case of ``person``'s
    household: a request in a campaign the client ordered is submitted (an empty received
    submission stands in for the form) and handed over by ``give_case``. Returns (campaign,
    request, case)."""
    from app.collection import requests
    from app.models import Campaign

    campaign = client_campaign(session, purpose_text)
    head = person.household_head or person
    req, _token = requests.create_request(
        session, Actor.system("test"), head, purpose_text=purpose_text
    )
    req.campaign_id = campaign.id
    mark_received(session, req)
    case = give_case(session, req, operator)
    return session.get(Campaign, campaign.id), req, case


def add_free_roster_entry(session, name: str = "新任 次郎"):
    """An approved roster entry no account uses yet, committed: what a new account links to."""
    from app.models import HandlerRosterEntry, utcnow

    entry = HandlerRosterEntry(
        name=name,
        department="人事部",
        title="係員",
        nationality="日本",
        status="approved",
        approved_by="発注者 人事部長",
        approved_at=utcnow(),
    )
    session.add(entry)
    session.commit()
    return entry


def drain_queue(queue) -> None:
    """Run every job waiting on ``queue`` in this process (a real RQ worker in burst mode).

    Without RQ's pub/sub command channel: a burst drain takes no commands, and the listener
    thread RQ starts for them blocks up to 60 s in its read; its teardown then waited that
    long whenever two test processes drained at the same time (seen as 60-180 s tests)."""
    from rq import SimpleWorker

    class BurstWorker(SimpleWorker):
        def subscribe(self) -> None:
            return None

    BurstWorker([queue], connection=queue.connection).work(burst=True)


def mark_received(session, req):
    """Mark the request submitted with a received (empty) submission, committed: enough for
    the verification queue and a claim, which never look inside. Returns the request."""
    from app.models import RequestStatus, Submission, SubmissionStatus, utcnow

    req.status = RequestStatus.SUBMITTED
    session.add(
        Submission(
            request_id=req.id,
            seq=1,
            kind="web",
            status=SubmissionStatus.RECEIVED,
            format_version=1,
            key_id="test",
            received_at=utcnow(),
        )
    )
    session.commit()
    return req


@contextmanager
def served(wsgi_app) -> Iterator[str]:
    """``wsgi_app`` over real HTTP on a free loopback port, in a thread, for a browser or a
    health check; yields its base URL and stops the server on the way out."""
    from werkzeug.serving import make_server  # only the browser tests serve

    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
