"""Background jobs: the functions the queue (``app.platform.queue``) runs, each taking ids only.

``@job`` gives a function an app context in an RQ worker; ``@scheduled`` puts a no-argument
job on the worker's cron schedule. Job modules are listed in ``app.jobs.worker.JOB_MODULES``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flask import has_app_context

from app.models import db
from app.web.factory import create_app


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


_app_for_worker = None


def job(func):
    """Make a function runnable as a job: it gets an app context in an RQ worker process."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        global _app_for_worker
        if _app_for_worker is None:
            _app_for_worker = create_app()
        with _app_for_worker.app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper
