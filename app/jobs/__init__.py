"""Background jobs: one ``enqueue()`` decides between RQ (``REDIS_URL`` set) and inline.

Jobs take ids, never personal data: ``enqueue`` refuses any argument that is not an int, a
UUID or a short identifier, and anything (but a canonical UUID) that contains a run of 12 digits. Job functions are
idempotent (they check the database before acting), so a retry never repeats an effect.

Embedded mode calls the function directly instead of using RQ's synchronous queue: RQ's sync
mode needs Redis anyway and swallows exceptions.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, has_app_context

from app.core import mynumber

log = logging.getLogger(__name__)

QUEUE = "mynumber"
_SAFE = re.compile(r"^[A-Za-z0-9_:.\-]{1,80}$")
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
RETRY_INTERVALS = [30, 120, 600]


class UnsafeJobArgument(ValueError):
    """A job argument that could carry personal data."""


@dataclass(frozen=True)
class Scheduled:
    """A job the worker runs on a cron schedule (UTC), e.g. a daily check at 09:00 JST."""

    name: str
    cron: str
    func: Callable[[], object]


SCHEDULE: list[Scheduled] = []


def scheduled(name: str, cron: str):
    """Register a no-argument job on the worker's schedule (decorator)."""

    def decorate(func):
        SCHEDULE.append(Scheduled(name, cron, func))
        return func

    return decorate


def check_args(args: tuple) -> tuple:
    """Refuse anything but ids: personal data never goes into Redis."""
    for value in args:
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | uuid.UUID) or _is_canonical_uuid(value):
            continue
        if (
            isinstance(value, str)
            and _SAFE.match(value)
            and not _TWELVE_DIGITS.search(value)
            and not mynumber.contains_number(value)  # 1234-5678-9018, 1234.5678.9018
        ):
            continue
        raise UnsafeJobArgument("ジョブの引数には ID のみを渡せます")
    return tuple(str(v) if isinstance(v, uuid.UUID) else v for v in args)


def _is_canonical_uuid(value: object) -> bool:
    """A UUID in its 36-character text form is an id, even when its last group is 12 digits.

    About one random UUID in 280 ends in twelve decimal digits; refusing those made a
    request id fail at random. Only the canonical form passes, so a bare run of digits
    (a number) still does not.
    """
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


_app_for_worker = None


def job(func):
    """Make a function runnable as a job: it gets an app context in an RQ worker process."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        global _app_for_worker
        if _app_for_worker is None:
            from app import create_app

            _app_for_worker = create_app()
        with _app_for_worker.app_context():
            try:
                return func(*args, **kwargs)
            finally:
                from app.models import db

                db.session.remove()

    return wrapper


def redis_connection(url: str | None = None):
    from redis import Redis

    # issue 8: an unreachable Redis costs a request at most 3 s (the outbox keeps the work)
    return Redis.from_url(url or current_app.config["REDIS_URL"], socket_connect_timeout=3)


def queue_name() -> str:
    """The queue's name (``JOB_QUEUE``): separate deployments or test runs never share one."""
    return current_app.config.get("JOB_QUEUE") or QUEUE


def queue(url: str | None = None, name: str | None = None):
    from rq import Queue

    return Queue(name or queue_name(), connection=redis_connection(url))


def enqueue(func: Callable, *args, job_id: str | None = None, retry: bool = True):
    """Run ``func(*args)`` in the background (RQ) or now (embedded mode).

    Returns the RQ job, or the function's result when run inline.
    """
    args = check_args(args)
    url = current_app.config.get("REDIS_URL")
    if not url:
        return func(*args)
    from rq import Retry

    options = {"job_id": job_id} if job_id else {}
    if retry:
        options["retry"] = Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
    return queue(url).enqueue(func, *args, **options)
