"""Running jobs: an RQ worker with its scheduler (retries) and the cron schedule.

``mynumber worker`` with ``REDIS_URL``: an RQ worker (``with_scheduler=True``, needed for
retries) in this process and RQ's CronScheduler for ``SCHEDULE`` in a child process.
Without Redis (embedded mode) the same schedule runs inline in a simple loop.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import multiprocessing
import threading
import time

from croniter import croniter
from flask import Flask
from rq import Worker
from rq.cron import CronScheduler

from app.jobs import SCHEDULE, Scheduled
from app.models import db
from app.platform import outbox
from app.platform.queue import QUEUE, redis_connection

log = logging.getLogger(__name__)

# Modules whose @scheduled jobs make up the schedule (each registers itself on import).
JOB_MODULES: list[str] = [
    "app.jobs.collection",
    "app.jobs.lifecycle",
    "app.jobs.reports",  # the monthly usage report
    "app.jobs.outbox",  # the outbox dispatcher
    "app.jobs.audit",  # the audit log's time-based checkpoints
]


def load_schedule() -> list[Scheduled]:
    for name in JOB_MODULES:
        importlib.import_module(name)
    return list(SCHEDULE)


def find(name: str) -> Scheduled:
    for item in load_schedule():
        if item.name == name:
            return item
    raise KeyError(f"ジョブ {name} はありません")


def _cron_process(redis_url: str, queue_name: str) -> None:
    scheduler = CronScheduler(connection=redis_connection(redis_url))
    for item in load_schedule():
        scheduler.register(item.func, queue_name, cron=item.cron, name=item.name)
    scheduler.start()


def run_rq(
    redis_url: str, queue_name: str = QUEUE, burst: bool = False, with_cron: bool = True
) -> None:
    cron = None
    if with_cron and not burst:
        cron = multiprocessing.Process(
            target=_cron_process, args=(redis_url, queue_name), daemon=True
        )
        cron.start()
    try:
        worker = Worker([queue_name], connection=redis_connection(redis_url))
        worker.work(with_scheduler=True, burst=burst)
    finally:
        if cron is not None:
            cron.terminate()


# Run by ``start_embedded`` itself (the outbox, every few seconds) or by ``mynumber run``'s
# audit signer: not again from the cron table.
EMBEDDED_OWN = frozenset({"outbox", "audit-checkpoint"})


def start_embedded(app: Flask, interval: float) -> threading.Event:
    """Embedded mode (``mynumber run`` without Redis): a daemon thread that hands the outbox
    over every ``interval`` seconds (receipts, campaign mails, print batches go out within
    seconds, nobody runs ``mynumber outbox dispatch``) and runs the cron schedule (dunning,
    mail retries, backups …) when each job's time comes. Its heartbeat
    (``outbox.DispatcherBeat``) lets the portal say whether anything is sending. Returns the
    event that stops it."""
    stop = threading.Event()
    beat = outbox.DispatcherBeat(interval=interval)
    app.extensions[outbox.DISPATCHER_EXTENSION] = beat
    schedule = [item for item in load_schedule() if item.name not in EMBEDDED_OWN]
    start = dt.datetime.now(dt.UTC)
    next_runs = {item.name: croniter(item.cron, start).get_next(dt.datetime) for item in schedule}

    def tick() -> None:
        with app.app_context():
            try:
                outbox.dispatch(db.session)
                now = dt.datetime.now(dt.UTC)
                for item in schedule:
                    if next_runs[item.name] <= now:
                        next_runs[item.name] = croniter(item.cron, now).get_next(dt.datetime)
                        try:
                            item.func()
                        except Exception:  # one failing job must not stop the others
                            db.session.rollback()
                            log.exception("scheduled job %s failed", item.name)
                beat.last_run = dt.datetime.now(dt.UTC)
                beat.last_error = None
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                db.session.rollback()
                beat.last_error = type(exc).__name__
                log.warning("embedded dispatcher: %s", type(exc).__name__)
            finally:
                db.session.remove()

    def loop() -> None:
        tick()
        while not stop.wait(interval):
            tick()

    threading.Thread(target=loop, name="outbox-dispatcher", daemon=True).start()
    return stop


def run_inline(stop_after: float | None = None) -> None:
    """Embedded mode: run each scheduled job when its cron time comes (checked every 30 s)."""
    schedule = load_schedule()
    start = dt.datetime.now(dt.UTC)
    next_runs = {item.name: croniter(item.cron, start).get_next(dt.datetime) for item in schedule}
    while stop_after is None or (dt.datetime.now(dt.UTC) - start).total_seconds() < stop_after:
        now = dt.datetime.now(dt.UTC)
        for item in schedule:
            if next_runs[item.name] <= now:
                try:
                    item.func()
                except Exception:  # one failing job must not stop the others
                    log.exception("scheduled job %s failed", item.name)
                next_runs[item.name] = croniter(item.cron, now).get_next(dt.datetime)
        time.sleep(30)
