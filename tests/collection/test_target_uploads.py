"""対象者リストの登録 as a job: the file waits sealed in the database and only its id reaches the
job (inline or an RQ worker); the job checks the whole file in one pass as the uploader,
reports its progress, and leaves every problem or the counts for the result page. The file
is not kept once read; what was refused loads nobody."""

import io
import json

import pytest
from sqlalchemy import func, select

from app.access.policy import CLIENT_STAFF
from app.collection import campaigns, target_uploads, targets
from app.models import AuditEvent, CollectionRequest, OutboxMessage, Person, TargetUpload
from app.platform import outbox
from tests.collection.conftest import EMPLOYEE_CSV, actor_of, future_business_day

BAD_CSV = EMPLOYEE_CSV.replace("1985/01/02", "1985/02/30").replace("taro@example.jp", "taro@") + (
    "E9999,扶養親族,子,孤立 花子,,2010/01/01,,,,\r\n"
)


def _campaign(session, staff):
    return campaigns.create_campaign(
        session,
        staff,
        name="2026年度 役職員マイナンバー収集",
        kind="employee",
        deadline=future_business_day(),
        purpose_text="給与所得・退職所得の源泉徴収票作成事務",
    )


def _run(app, session, staff, jobs, data: bytes, dry_run: bool = False) -> TargetUpload:
    """Upload as the portal does, hand the job over, let it finish."""
    vault = app.extensions["mynumber_vault"]
    upload = target_uploads.create(session, vault, staff, _campaign(session, staff), data, dry_run)
    outbox.after_commit(session, [target_uploads.key(upload)])
    jobs.drain()
    session.expire_all()
    return session.get(TargetUpload, upload.id)


def _actions(session) -> list[str]:
    return list(session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def test_a_file_with_problems_is_refused_whole_with_every_problem(app, session, staff, jobs):
    upload = _run(app, session, staff, jobs, BAD_CSV.encode("utf-8"))
    assert upload.status == "refused" and upload.payload is None
    found = target_uploads.findings(app.extensions["mynumber_vault"], upload)
    assert found["problems"] == [
        "行 2: 生年月日: 存在しない日付です: 1985/2/30",
        "行 2: メールアドレス: メールアドレスの形式が正しくありません",
        "行 5: 職員番号: 扶養者（本人区分「本人」の行）がこのファイルにありません",
    ]
    assert session.execute(select(func.count()).select_from(CollectionRequest)).scalar_one() == 0
    assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 0
    # Audited first: the upload is recorded before the job refuses it.
    actions = _actions(session)
    assert actions.index("campaign.targets_upload") < actions.index("campaign.targets_rejected")
    job = outbox.progress(session, target_uploads.key(upload))
    assert job.percent == 100


def test_a_good_file_loads_through_the_job_and_only_its_id_travels(app, session, staff, jobs):
    vault = app.extensions["mynumber_vault"]
    campaign = _campaign(session, staff)
    data = EMPLOYEE_CSV.encode("utf-8-sig")
    upload = target_uploads.create(session, vault, staff, campaign, data, False)
    # Waiting for its job: sealed, no name readable in the row; the job's arguments are the id.
    assert upload.status == "queued" and "見本 太郎".encode() not in upload.payload
    row = session.execute(select(OutboxMessage)).scalar_one()
    assert json.loads(row.args) == [str(upload.id)]
    outbox.after_commit(session, [target_uploads.key(upload)])
    jobs.drain()
    session.expire_all()
    upload = session.get(TargetUpload, upload.id)
    assert upload.status == "loaded" and upload.payload is None
    found = target_uploads.findings(vault, upload)
    assert found["loaded"]["requests_issued"] == 2 and found["rows"] == 3
    assert found["loaded"]["emails"] == 1 and found["loaded"]["posts"] == 1
    assert session.execute(select(func.count()).select_from(CollectionRequest)).scalar_one() == 2
    assert "campaign.targets_load" in _actions(session)
    assert jobs.job_arguments() in ([], [(str(upload.id),)])
    assert all("見本".encode() not in value for value in jobs.redis_dump())
    # Run again (a second hand-over): nothing happens twice.
    assert target_uploads.run(session, vault, app.extensions["mynumber_keyring"], upload.id) == (
        "loaded"
    )
    assert session.execute(select(func.count()).select_from(CollectionRequest)).scalar_one() == 2


def test_a_check_only_upload_loads_nobody(app, session, staff, jobs):
    upload = _run(app, session, staff, jobs, EMPLOYEE_CSV.encode("utf-8-sig"), dry_run=True)
    assert upload.status == "checked"
    found = target_uploads.findings(app.extensions["mynumber_vault"], upload)
    assert (found["rows"], found["households"]) == (3, 2)
    assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 0


def test_only_the_uploader_sees_the_result(app, session, staff, make_user, jobs):
    upload = _run(app, session, staff, jobs, EMPLOYEE_CSV.encode("utf-8-sig"))
    assert target_uploads.find(session, staff, str(upload.id)).id == upload.id
    other = actor_of(make_user(CLIENT_STAFF)[0], CLIENT_STAFF)
    for actor, uid in ((other, str(upload.id)), (staff, "not-an-id")):
        with pytest.raises(target_uploads.UploadNotFound):
            target_uploads.find(session, actor, uid)


def test_the_check_tells_its_progress_through_the_file(session):
    rows = "".join(
        f"E{n:04d},本人,,見本 太郎{n},ミホン タロウ,1985/01/02,100-0001,東京都千代田区千代田1-1,,郵送\r\n"
        for n in range(1, 501)
    )
    data = (EMPLOYEE_CSV.split("\r\n")[0] + "\r\n" + rows).encode()
    seen: list[tuple[int, int]] = []
    parsed = targets.validate(
        session, "employee", data, lambda done, total: seen.append((done, total))
    )
    assert parsed.problems == [] and parsed.rows == 500
    assert len(seen) >= 100
    assert all(total == 500 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (500, 500)


def test_the_embedded_run_checks_in_the_background_and_the_page_follows_it(
    app, session, client, make_user, login
):
    import re
    import time

    from tests import support

    app.config["JOBS_IN_BACKGROUND"] = True  # as `mynumber run` sets it
    user, secret = make_user(CLIENT_STAFF)
    assert login(user.username, totp_secret=secret).status_code == 302
    campaign = _campaign(session, actor_of(user, CLIENT_STAFF))
    session.commit()
    page_url = f"/campaigns/{campaign.id}"
    response = support.post_form(
        client,
        f"{page_url}/targets",
        {"file": (io.BytesIO(EMPLOYEE_CSV.encode("utf-8-sig")), "targets.csv")},
        token_from=page_url,
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    result_url = response.headers["Location"]
    assert re.fullmatch(rf"{page_url}/targets/[0-9a-f-]{{36}}", result_url)
    # Followed like a browser (bounded, not measured: the job may finish before the first look).
    for _ in range(240):
        page = client.get(result_url)
        if page.status_code == 302:
            break
        html = page.get_data(as_text=True)
        assert 'http-equiv="refresh"' in html and 'role="progressbar"' in html
        time.sleep(0.5)
    assert page.status_code == 302 and page.headers["Location"] == page_url
    html = client.get(page_url).get_data(as_text=True)
    assert "対象者リストを登録しました: 依頼 2 件（メール 1・郵送 1）" in html
    # Someone else cannot read this upload's page.
    client.get("/logout/")
    other, other_secret = make_user(CLIENT_STAFF)
    login(other.username, totp_secret=other_secret)
    assert client.get(result_url).status_code == 404


def test_an_account_stripped_of_its_role_before_the_job_runs_loads_nobody(
    app, session, make_user, jobs
):
    from app.models import VaultUser

    user = make_user(CLIENT_STAFF)[0]
    staff = actor_of(user, CLIENT_STAFF)
    vault = app.extensions["mynumber_vault"]
    upload = target_uploads.create(
        session, vault, staff, _campaign(session, staff), EMPLOYEE_CSV.encode("utf-8-sig"), False
    )
    account = session.get(VaultUser, user.id)
    account.active = False  # switched off while the job waited
    session.commit()
    outbox.after_commit(session, [target_uploads.key(upload)])
    jobs.drain()
    session.expire_all()
    upload = session.get(TargetUpload, upload.id)
    assert upload.status == "failed" and upload.payload is None
    assert "権限がありません" in target_uploads.findings(vault, upload)["error"]
    assert session.execute(select(func.count()).select_from(CollectionRequest)).scalar_one() == 0
    denied = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "campaign.targets_load", AuditEvent.outcome == "denied"
        )
    ).scalar_one()
    assert denied is not None
