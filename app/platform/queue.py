"""The job queue: one ``enqueue()`` decides between RQ (``REDIS_URL`` set) and inline.

A job is named by its import path (``app.jobs.collection.send_delivery``): services promise
work by name, so nothing below the jobs layer imports a job function, and RQ imports the
function itself in the worker. Jobs take ids, never personal data: ``check_args`` refuses any
argument that is not an int, a UUID or a short identifier, and anything (but a canonical
UUID) that contains a run of 12 digits. Job functions are idempotent (they check the database
before acting), so a retry never repeats an effect.

Embedded mode calls the function directly instead of using RQ's synchronous queue: RQ's sync
mode needs Redis anyway and swallows exceptions.
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Callable

from flask import current_app
from redis import Redis
from rq import Queue, Retry

from app.core import mynumber

QUEUE = "mynumber"
TASK_PREFIX = "app.jobs."
_SAFE = re.compile(r"^[A-Za-z0-9_:.\-]{1,80}$")
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
RETRY_INTERVALS = [30, 120, 600]

Task = Callable | str


class UnsafeJobArgument(ValueError):
    """A job argument that could carry personal data."""


class UnknownJob(ValueError):
    """A task name that is not a job of ``app.jobs``."""


def task_name(task: Task) -> str:
    """The import path of a job (a function or its name)."""
    return task if isinstance(task, str) else f"{task.__module__}.{task.__qualname__}"


def check_name(name: str) -> str:
    """Only ``app.jobs`` functions may be named: a stored row never imports anything else."""
    if not name.startswith(TASK_PREFIX):
        raise UnknownJob("不明なジョブです")
    return name


def resolve(task: Task) -> Callable:
    """The job function a name stands for (imported here, in the process that runs it)."""
    if callable(task):
        return task
    module, _, name = check_name(task).rpartition(".")
    try:
        func = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UnknownJob(f"ジョブ {task} はありません") from exc
    return func


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


def redis_connection(url: str | None = None) -> Redis:
    # An unreachable Redis costs a request at most 3 s (the outbox keeps the work).
    return Redis.from_url(url or current_app.config["REDIS_URL"], socket_connect_timeout=3)


def queue_name() -> str:
    """The queue's name (``JOB_QUEUE``): separate deployments or test runs never share one."""
    return current_app.config.get("JOB_QUEUE") or QUEUE


def queue(url: str | None = None, name: str | None = None) -> Queue:
    return Queue(name or queue_name(), connection=redis_connection(url))


def enqueue(task: Task, *args, job_id: str | None = None, retry: bool = True):
    """Run the job ``task`` (a function or its name) with ``args``, in the background (RQ) or
    now (embedded mode). Returns the RQ job, or the function's result when run inline.
    """
    args = check_args(args)
    url = current_app.config.get("REDIS_URL")
    if not url:
        return resolve(task)(*args)
    options = {"job_id": job_id} if job_id else {}
    if retry:
        options["retry"] = Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
    return queue(url).enqueue(task, *args, **options)
