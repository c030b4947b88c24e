"""Getting in: the token, the birth date, lockout, expiry, used links, the session, headers."""

import datetime as dt
import json
import time

import pytest
from sqlalchemy import select

from app.collection import requests
from app.core.actor import Actor
from app.models import AuditEvent, CollectionRequest, utcnow
from tests import support
from tests.public_form.conftest import BIRTH, Subject


def test_token_is_long_random_and_only_its_hash_is_stored(app, session, household):
    token = household["token"]
    assert len(token) >= 22  # ≥128 bits of URL-safe base64
    req = session.get(CollectionRequest, household["req"].id)
    assert req.token_hash == requests.token_hash(token) and len(req.token_hash) == 32
    assert not any(token.encode() in data for _, data in support.written_bytes(app))


def test_nothing_about_the_subject_before_both_factors(household, subject):
    pages = [subject.enter(household["token"]), subject.get("/verify")]
    pages.append(subject.verify(dt.date(1990, 5, 5)))
    for response in pages:
        html = response.get_data(as_text=True)
        assert "山田" not in html and "花子" not in html
    for url in ("/consent", "/household", "/confirm", "/status", "/decline"):
        response = subject.get(url)
        assert response.status_code == 401 and "山田" not in response.get_data(as_text=True)


def test_guessed_tokens_get_a_clear_page_then_a_rate_limit(instance, app, household):
    import public_form

    limited = public_form.create_app(
        {**instance, "RATELIMIT_ENABLED": True, "INTAKE_RATE_LIMIT_TOKEN_LOOKUP": "5 per minute"}
    )
    client = limited.test_client()
    for i in range(5):
        response = client.get(f"/r/{requests.new_token()}")
        assert response.status_code == 404
        assert "リンクが正しくありません" in response.get_data(as_text=True)
    response = client.get(f"/r/{requests.new_token()}")
    assert response.status_code == 429
    assert "アクセスが集中しています" in response.get_data(as_text=True)
    # Even the right token is refused from that address for now: guessing cannot be mixed in.
    assert client.get(f"/r/{household['token']}").status_code == 429


def test_birth_date_lockout_after_five_and_whom_to_call(session, household, subject):
    subject.enter(household["token"])
    for remaining in (4, 3, 2, 1):
        response = subject.verify(dt.date(1985, 1, 3))
        assert response.status_code == 422
        assert f"あと{remaining}回誤るとロックされます" in response.get_data(as_text=True)
    response = subject.verify(dt.date(1985, 1, 3))
    assert response.status_code == 423
    page = response.get_data(as_text=True)
    assert "ロック" in page and "03-5555-0100" in page and "10:00〜17:00" in page
    # Locked means locked: the right date no longer works, even in a new session.
    fresh = Subject(subject.client.application.test_client())
    assert fresh.enter(household["token"]).status_code == 423
    req = session.get(CollectionRequest, household["req"].id)
    session.refresh(req)
    assert req.failed_attempts == 5 and req.locked_at is not None
    events = (
        session.execute(
            select(AuditEvent).where(AuditEvent.action.in_(["intake.auth", "intake.locked"]))
        )
        .scalars()
        .all()
    )
    assert [e.outcome for e in events] == ["failure"] * 5 + ["denied"]
    assert json.loads(events[4].details) == {"failed_attempts": 5}


def test_unlock_by_an_operator_lets_the_subject_in(session, household, subject, operator):
    subject.enter(household["token"])
    for _ in range(5):
        subject.verify(dt.date(2000, 1, 1))
    req = session.get(CollectionRequest, household["req"].id)
    session.refresh(req)
    requests.unlock(session, operator, req)
    session.commit()
    fresh = Subject(subject.client.application.test_client())
    assert fresh.login(household["token"]).status_code == 200


def test_a_correct_date_resets_the_counter(session, household, subject):
    subject.enter(household["token"])
    for _ in range(4):
        subject.verify(dt.date(1985, 1, 3))
    subject.login(household["token"])
    req = session.get(CollectionRequest, household["req"].id)
    session.refresh(req)
    assert req.failed_attempts == 0


def test_expired_link_gets_a_clear_page(session, household, subject):
    req = session.get(CollectionRequest, household["req"].id)
    req.expires_at = utcnow() - dt.timedelta(minutes=1)
    session.commit()
    response = subject.get(f"/r/{household['token']}")
    assert response.status_code == 410
    assert "有効期限が切れています" in response.get_data(as_text=True)


def test_used_or_replaced_link_gets_a_clear_page(session, household, subject):
    # A new link for the same household makes the old one unusable.
    _req, new_token = requests.create_request(
        session, Actor.system("test"), household["head"], purpose_text="再発行"
    )
    session.commit()
    response = subject.get(f"/r/{household['token']}")
    assert response.status_code == 410
    assert "このリンクは使用できません" in response.get_data(as_text=True)
    assert subject.get(f"/r/{new_token}").status_code == 302


def test_a_submitted_link_cannot_submit_again(session, external, subject):
    ref = str(external["head"].id)
    from tests.public_form.conftest import NUMBER_SELF

    subject.login(external["token"])
    subject.consent()
    subject.number(ref, NUMBER_SELF)
    subject.card(ref)
    assert subject.submit().headers["Location"].endswith("/done")
    again = Subject(subject.client.application.test_client())
    assert again.login(external["token"]).request.path == "/status"
    for url in ("/consent", f"/p/{ref}/number", "/confirm"):
        assert again.get(url).headers["Location"].endswith("/status")
    again.get("/contact")  # a page with a form: a valid CSRF token for this session
    assert again.post("/submit").headers["Location"].endswith("/status")


def test_session_is_bound_to_the_token_and_short_lived(form_app, session, household, external):
    subject = Subject(form_app.test_client())
    subject.login(household["token"])
    # Another link opened in the same browser replaces the binding entirely.
    subject.get(f"/r/{external['token']}")
    assert subject.get("/consent").status_code == 401
    # A session older than INTAKE_SESSION_MINUTES is over.
    subject.login(household["token"])
    with subject.client.session_transaction() as s:
        s["auth_at"] = time.time() - form_app.config["INTAKE_SESSION_MINUTES"] * 60 - 1
    assert subject.get("/consent").status_code == 401
    # A session pointing at another request (tampering is impossible: the cookie is signed,
    # but a stale binding after a re-issue is not) is refused.
    subject.login(household["token"])
    with subject.client.session_transaction() as s:
        s["bind"] = "00" * 32
    assert subject.get("/consent").status_code == 401


def test_headers_on_every_page(household, subject):
    for response in (subject.get("/"), subject.enter(household["token"]), subject.get("/contact")):
        assert response.headers["Cache-Control"] == "no-store"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "http" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_csrf_is_required(household, subject):
    subject.enter(household["token"])
    response = subject.client.post("/verify", data={"year": "1985", "month": "1", "day": "2"})
    assert response.status_code == 400
    assert "画面の有効期限が切れました" in response.get_data(as_text=True)


def test_oversized_request_gets_a_japanese_page(instance, app, household):
    import io

    import public_form

    small = public_form.create_app({**instance, "INTAKE_MAX_REQUEST_BYTES": 200_000})
    subject = Subject(small.test_client())
    subject.login(household["token"])
    subject.consent()
    ref = str(household["head"].id)
    response = subject.post(
        f"/p/{ref}/documents",
        {
            "combination": "card",
            "card_front": (io.BytesIO(b"\xff\xd8\xff" + b"0" * 300_000), "a.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "ファイルが大きすぎます" in response.get_data(as_text=True)


@pytest.mark.parametrize("bad", [("", "1", "2"), ("1985", "2", "30"), ("x", "1", "1")])
def test_birth_date_input_errors_name_the_field(household, subject, bad):
    subject.enter(household["token"])
    response = subject.post("/verify", dict(zip(("year", "month", "day"), bad, strict=True)))
    assert response.status_code == 422
    assert "生年月日:" in response.get_data(as_text=True)


def test_birth_is_the_right_factor(household):
    assert household["head"].birth_date == BIRTH
