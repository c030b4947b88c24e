"""One enqueue(): inline without Redis, on a real RQ worker with it; ids only."""

import uuid
from pathlib import Path

import pytest

from app.platform.queue import UnsafeJobArgument, check_args, enqueue, queue
from tests.jobs.job_functions import always_fails, write_marker
from tests.support import drain_queue


def test_inline_without_redis(app):
    assert app.config["REDIS_URL"] is None
    assert enqueue(write_marker, "inline") == "done"
    assert (Path(app.config["MYNUMBER_HOME"]) / "ran-inline").exists()
    assert enqueue(write_marker, "inline") == "already"  # idempotent


def test_on_a_real_redis_with_a_real_worker(rq_app):
    job = enqueue(write_marker, "rq-run")
    assert job.args == ("rq-run",)
    assert not (Path(rq_app.config["MYNUMBER_HOME"]) / "ran-rq-run").exists()
    drain_queue(queue())
    job.refresh()
    assert job.is_finished and job.return_value() == "done"
    assert (Path(rq_app.config["MYNUMBER_HOME"]) / "ran-rq-run").exists()


def test_failures_are_visible_and_scheduled_for_retry(rq_app):
    job = enqueue(always_fails, "x")
    drain_queue(queue())
    job.refresh()
    assert job.retries_left == 2  # one attempt used, retried later by the scheduler
    assert job.get_status() in ("scheduled", "failed")


@pytest.mark.parametrize(
    "bad",
    ["123456789018", "山田 太郎", "a" * 200, "x y", {"n": 1}, ["1"], b"bytes", "id-123456789018"],
)
def test_personal_data_is_refused_as_a_job_argument(bad):
    with pytest.raises(UnsafeJobArgument):
        check_args((bad,))


def test_ids_are_accepted():
    pid = uuid.uuid4()
    assert check_args((pid, 42, "campaign-7", "2026-11")) == (str(pid), 42, "campaign-7", "2026-11")


def test_a_uuid_whose_last_group_is_twelve_digits_is_still_an_id():
    value = "2bbb154d-dd5a-4f43-b716-641274534258"  # seen in CI: 1 UUID in ~280 looks like this
    assert check_args((value,)) == (value,)
    assert check_args((uuid.UUID(value),)) == (value,)


@pytest.mark.parametrize("bad", ["641274534258", "2bbb154ddd5a4f43b716641274534258"])
def test_twelve_digits_outside_a_canonical_uuid_are_refused(bad):
    with pytest.raises(UnsafeJobArgument):
        check_args((bad,))


def test_nothing_in_redis_holds_personal_data(rq_app, redis_url):
    from redis import Redis

    enqueue(write_marker, "inspect")
    conn = Redis.from_url(redis_url)
    for key in conn.scan_iter(f"rq:*{rq_app.config['JOB_QUEUE']}*"):
        assert b"123456789018" not in key


@pytest.mark.parametrize("bad", ["1234-5678-9018", "1234.5678.9018", "id:1234_5678_9018"])
def test_a_number_with_separators_is_refused_as_a_job_argument(bad):
    # Each matches the identifier shape (letters, digits, - _ . :): only the detector sees it.
    with pytest.raises(UnsafeJobArgument):
        check_args((bad,))
