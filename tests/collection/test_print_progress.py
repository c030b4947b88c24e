"""印刷バッチ作成 as a job with a progress bar: the job reports on its outbox row (inline or in
an RQ worker); the page answers at once in the embedded run and follows the job to the end."""

import re
import time

from sqlalchemy import select

from app.access.policy import OPERATOR
from app.collection import kits, mailings
from app.models import OutboxMessage, PrintBatch
from app.platform import outbox
from tests import support
from tests.collection import flows
from tests.collection.conftest import actor_of
from tests.collection.test_print_batches import THREE_BY_POST


def test_the_print_job_reports_its_progress_where_its_state_lives(
    app, session, staff, operators, jobs, needs_pdf
):
    app.config["PRINT_CHUNK_LETTERS"] = 2
    campaign, _ = flows.campaign_with_targets(app, staff, csv_text=THREE_BY_POST)
    mailings.dispatch(session, operators[0], campaign)
    batch, _ = flows.print_batch(app, campaign, operators[0], jobs)
    session.expire_all()
    job = outbox.progress(session, outbox.key_for(kits.RENDER_PRINT_BATCH, batch.id))
    # Three letters, each counted when its content is ready and when its PDF is laid out.
    assert (job.done, job.total, job.percent) == (6, 6, 100)


def test_progress_of_a_job_not_yet_started_is_zero(session):
    row = outbox.add(session, kits.RENDER_PRINT_BATCH, 999)
    session.commit()
    job = outbox.progress(session, row.key)
    assert (job.state, job.done, job.total, job.percent) == ("pending", None, None, 0)
    outbox.report_progress(session, row.key, 1, 4)
    assert outbox.progress(session, row.key).percent == 25
    assert outbox.progress(session, "no-such-job") is None


def test_the_embedded_run_makes_the_batch_in_the_background_with_a_progress_page(
    app, session, client, make_user, login, staff, needs_pdf
):
    app.config["JOBS_IN_BACKGROUND"] = True  # as `mynumber run` sets it
    campaign, _ = flows.campaign_with_targets(app, staff, csv_text=THREE_BY_POST)
    user, secret = make_user(OPERATOR)
    login(user.username, totp_secret=secret)
    support.assign_operator(session, campaign, user.id)
    page_url = f"/campaigns/{campaign.id}"
    assert (
        support.post_form(client, f"{page_url}/dispatch", {}, token_from=page_url).status_code
        == 302
    )
    response = support.post_form(client, f"{page_url}/print", {}, token_from=page_url)
    assert response.status_code == 302
    progress_url = response.headers["Location"]
    assert re.fullmatch(r"/mailings/batch/\d+/progress", progress_url)
    # Followed like a browser: the page refreshes itself until the job is done (the wait is
    # bounded, not measured: the job may finish before the first look).
    for _ in range(240):
        page = client.get(progress_url)
        if page.status_code == 302:
            break
        html = page.get_data(as_text=True)
        assert 'http-equiv="refresh"' in html and 'role="progressbar"' in html
        time.sleep(0.5)
    assert page.status_code == 302 and page.headers["Location"] == "/mailings/"
    session.expire_all()
    batch = session.execute(select(PrintBatch)).scalar_one()
    assert batch.status == "ready"
    row = session.execute(
        select(OutboxMessage).where(OutboxMessage.task.like("%render_print_batch"))
    ).scalar_one()
    assert row.state == "dispatched" and row.progress_done == row.progress_total == 6
    listing = client.get("/mailings/").get_data(as_text=True)
    assert "（3 通）を作成しました" in listing and "PDF 1（1〜3通目" in listing


def test_a_batch_waiting_for_its_job_shows_a_bar_that_refreshes_itself(
    app, session, client, make_user, login, staff
):
    campaign, _ = flows.campaign_with_targets(app, staff, csv_text=THREE_BY_POST)
    user, secret = make_user(OPERATOR)
    login(user.username, totp_secret=secret)
    support.assign_operator(session, campaign, user.id)
    page_url = f"/campaigns/{campaign.id}"
    support.post_form(client, f"{page_url}/dispatch", {}, token_from=page_url)
    batch = kits.create_batch(session, actor_of(user, OPERATOR), campaign)
    outbox.report_progress(session, outbox.key_for(kits.RENDER_PRINT_BATCH, batch.id), 3, 6)
    html = client.get(f"/mailings/batch/{batch.id}/progress").get_data(as_text=True)
    assert 'http-equiv="refresh"' in html and 'aria-valuenow="50"' in html and "50%" in html
    assert "3 通の印刷ファイル" in html and "閉じても作成は続きます" in html
    listing = client.get("/mailings/").get_data(as_text=True)
    assert f"/mailings/batch/{batch.id}/progress" in listing  # the list leads to the bar
