"""Nothing leaves for a subject while the links would not reach the form or the letters would
carry placeholders: sending a campaign, re-sending and making a print batch refuse (audited,
in Japanese, naming what is missing) until who-we-are is set and the form answers."""

from __future__ import annotations

import json
import socket

import pytest
from sqlalchemy import select

from app.collection import dunning, kits, mailings, readiness
from app.models import AuditEvent, Delivery, Reminder
from app.platform import formcheck
from tests import support
from tests.collection import flows
from tests.collection.conftest import Jobs


@pytest.fixture
def served_form(form_app):
    """The real public form on a free loopback port (its health endpoint included)."""
    with support.served(form_app) as url:
        yield url


def _dead_url() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _refusals(session, action: str) -> list[dict]:
    events = session.execute(
        select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == "denied")
    ).scalars()
    return [json.loads(e.details) for e in events]


def test_the_form_answers_its_health_endpoint(form_app, served_form):
    body = form_app.test_client().get("/healthz").get_json()
    assert body == {"status": "ok", "service": formcheck.SERVICE}
    assert formcheck.problem(served_form, 3) is None
    assert formcheck.problem(served_form + "/", 3) is None


def test_a_form_url_that_does_not_answer_is_named(app):
    dead = _dead_url()
    assert f"MYNUMBER_PUBLIC_FORM_URL: {dead}" in formcheck.problem(dead, 1)
    assert "http:// または https://" in formcheck.problem("127.0.0.1:8001", 1)
    assert formcheck.problem("", 1).startswith(
        "提出フォームのURL（MYNUMBER_PUBLIC_FORM_URL: 未設定）"
    )
    # Something answers on that port, but it is not the form (the portal, say).
    with support.served(app) as portal:
        answer = formcheck.problem(portal, 3)
        assert "提出フォームではありません" in answer or "提出フォームが応答しません" in answer


def test_sending_refuses_while_the_form_does_not_answer_then_sends(
    app, session, staff, operators, served_form
):
    campaign, _ = flows.campaign_with_targets(app, staff)
    app.config.update(FORM_CHECK_TIMEOUT=2, PUBLIC_FORM_URL=_dead_url())
    with pytest.raises(mailings.MailingError) as info:
        mailings.dispatch(session, operators[0], campaign)
    assert "提出フォームのURL" in str(info.value) and "接続できません" in str(info.value)
    assert session.execute(select(Delivery)).first() is None  # nothing promised
    [refusal] = _refusals(session, "campaign.dispatch")
    assert refusal == {
        "reason": "not_ready",
        "missing": [],
        "invalid": [],
        "form_unreachable": True,
    }

    app.config["PUBLIC_FORM_URL"] = served_form
    result = mailings.dispatch(session, operators[0], campaign)
    assert len(result.emails) == 1


def test_print_batches_refuse_while_the_form_does_not_answer(
    app, session, staff, operators, served_form
):
    campaign, _ = flows.campaign_with_targets(app, staff)
    mailings.dispatch(session, operators[0], campaign)
    app.config.update(FORM_CHECK_TIMEOUT=2, PUBLIC_FORM_URL=_dead_url())
    with pytest.raises(kits.KitError, match="提出フォームのURL"):
        kits.create_batch(session, operators[0], campaign)
    assert _refusals(session, "print.batch_create")
    app.config["PUBLIC_FORM_URL"] = served_form
    assert kits.create_batch(session, operators[0], campaign).item_count == 1


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("CLIENT_NAME", "発注者名（MYNUMBER_CLIENT_NAME）"),
        ("OPERATOR_NAME", "受注者名（MYNUMBER_OPERATOR_NAME）"),
        ("MAIL_FROM", "送信元メールアドレス（MYNUMBER_MAIL_FROM）"),
        ("DESK_PHONE", "問い合わせ窓口の電話番号（MYNUMBER_DESK_PHONE）"),
        ("DESK_EMAIL", "問い合わせ窓口のメールアドレス（MYNUMBER_DESK_EMAIL）"),
    ],
)
def test_sending_and_printing_refuse_while_who_we_are_is_missing(
    app, session, staff, operators, key, label
):
    campaign, _ = flows.campaign_with_targets(app, staff)
    app.config[key] = ""
    with pytest.raises(mailings.MailingError) as info:
        mailings.dispatch(session, operators[0], campaign)
    assert label in str(info.value) and "mynumber init" in str(info.value)
    with pytest.raises(kits.KitError, match=label.replace("（", r"\（").replace("）", r"\）")):
        kits.create_batch(session, operators[0], campaign)
    assert _refusals(session, "campaign.dispatch")[0]["missing"] == [key]
    assert _refusals(session, "print.batch_create")[0]["missing"] == [key]


def test_a_queued_mail_is_not_sent_with_an_empty_sender(app, session, staff, operators):
    """Set after the campaign was sent, then removed: the job gives up with the reason and
    the operator re-sends once it is set again (never a mail from nobody)."""
    campaign, _ = flows.campaign_with_targets(app, staff)
    result = mailings.dispatch(session, operators[0], campaign)
    app.config["MAIL_FROM"] = ""
    keyring = app.extensions["mynumber_keyring"]
    assert mailings.send(session, keyring, result.emails[0]) == "gave_up"
    delivery = session.get(Delivery, result.emails[0])
    assert "送信元メールアドレス" in delivery.last_error


def test_ready_when_everything_is_set(app, served_form):
    app.config.update(FORM_CHECK_TIMEOUT=2, PUBLIC_FORM_URL=served_form)
    assert readiness.problems(app.config) == []


def test_a_placeholder_from_the_environment_is_refused_too(app, session, staff, operators):
    """An old unit file still saying 0120-000-000: nothing is sent with it."""
    campaign, _ = flows.campaign_with_targets(app, staff)
    app.config["DESK_PHONE"] = "0120-000-000"
    with pytest.raises(mailings.MailingError, match="「0120-000-000」は仮の値です"):
        mailings.dispatch(session, operators[0], campaign)
    assert _refusals(session, "campaign.dispatch")[0]["invalid"] == ["DESK_PHONE"]


def test_no_reminder_goes_out_while_the_form_does_not_answer(
    app, session, staff, operators, served_form
):
    """The daily dunning run reminds nobody (audited) rather than mail a dead link; the next
    run, once the form answers, reminds them."""
    campaign, _ = flows.campaign_with_targets(app, staff)
    flows.dispatch(campaign, operators[0], Jobs("inline", app))  # the e-mail is sent
    late = dunning.add_business_days(campaign.deadline, 1)
    app.config.update(FORM_CHECK_TIMEOUT=2, PUBLIC_FORM_URL=_dead_url())
    refused = dunning.run(session, today=late)
    assert refused.reminded == 0 and "提出フォームのURL" in str(refused)
    assert session.execute(select(Reminder)).first() is None
    assert _refusals(session, "dunning.run")
    app.config["PUBLIC_FORM_URL"] = served_form
    assert dunning.run(session, today=late).reminded == 1


def test_the_operator_reads_why_on_the_campaign_page(app, session, client, make_user, login, staff):
    campaign, _ = flows.campaign_with_targets(app, staff, assign_operators=False)
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    support.assign_operator(session, campaign, user.id)
    app.config.update(FORM_CHECK_TIMEOUT=2, PUBLIC_FORM_URL=_dead_url(), DESK_EMAIL="")
    page_url = f"/campaigns/{campaign.id}"
    response = support.post_form(
        client, f"{page_url}/dispatch", {}, token_from=page_url, follow_redirects=True
    )
    html = response.get_data(as_text=True)
    assert "送付・印刷できません。" in html
    assert "問い合わせ窓口のメールアドレス（MYNUMBER_DESK_EMAIL）" in html
    assert f"MYNUMBER_PUBLIC_FORM_URL: {app.config['PUBLIC_FORM_URL']}" in html
    assert session.execute(select(Delivery)).first() is None
