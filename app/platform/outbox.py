"""Transactional outbox: the jobs and mails an action promises survive Redis being down.

An action (a subject's submission, an operator sending a campaign, a deficiency notice, a
print batch, a dunning run …) calls ``add()`` in its own transaction: one ``outbox_message``
row holding the job's import path and its ids (checked by ``app.platform.queue.check_args``: never
personal data, never a number), with a key unique per message. The row commits or rolls
back with the action, so a stored submission always carries its promised mail and a
rolled-back one never sends anything.

``dispatch()`` hands pending rows to RQ (or runs them inline in embedded mode) right after
the commit, and again from the scheduled ``outbox`` job (every minute) and ``mynumber
outbox dispatch``. Each row is claimed first with ``UPDATE … SET state='dispatching' WHERE
state='pending'`` in its own committed transaction, so two dispatchers never both hand over
the same row; it is marked ``dispatched`` once RQ accepted it. If Redis refuses, the row
goes back to ``pending`` with a backoff and the rest wait for the next run. A dispatcher
that dies between claim and mark leaves ``dispatching``; after ``STALE_CLAIM_MINUTES`` the
sweep puts it back to ``pending``. The jobs themselves are idempotent (a delivery is claimed
before SMTP, see ``app.collection.mailings``), so even that rare second hand-over sends nothing twice.

In embedded mode (no Redis) a row is run inline; a job that raises is marked dispatched
with the reason, like a failed RQ job: its own records (a failed delivery, print batch or
return archive) show the failure and have their own retry, so nothing loops forever.

A process without the key ring (the public form) never runs jobs inline: it only pushes to
RQ, and in embedded mode leaves the rows to the worker.

A long job (a print batch, a target list upload) reports how far it has got with ``report_progress`` on its own
row, wherever it runs; the portal reads it with ``progress`` for a progress bar. In the
embedded ``run``, ``dispatch_soon`` runs such a job in a thread of its own instead of inside
the request, so the page answers at once and shows the bar.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass, field

from flask import current_app
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.models import db, utcnow
from app.models.outbox import OutboxMessage, OutboxState
from app.platform import queue

log = logging.getLogger(__name__)

STALE_CLAIM_MINUTES = 10
BACKOFF_SECONDS = (15, 60, 300, 900)


class OutboxError(ValueError):
    """The outbox cannot hand a row over."""


@dataclass
class DispatchReport:
    dispatched: int = 0
    deferred: int = 0
    failed: int = 0  # ran inline and raised (embedded mode)
    reclaimed: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"送出 {self.dispatched} 件、保留 {self.deferred} 件、失敗 {self.failed} 件、"
            f"再開 {self.reclaimed} 件"
        )


def key_for(task: queue.Task, *args) -> str:
    """The default unique key: the job's name and its ids (the same work is promised once)."""
    name = queue.task_name(task).rpartition(".")[2]
    return ":".join([name, *(str(a) for a in queue.check_args(args))])[:200]


def add(
    session: Session, task: queue.Task, *args, key: str | None = None, once: bool = False
) -> OutboxMessage:
    """Promise the job ``task`` (its name, or the function) with ``args`` in the caller's
    transaction (no commit). Ids only.

    ``once``: the key names an event that happens once and happens in this transaction (a
    submission being received), so no row can have it yet: no look-up. The key's
    UNIQUE constraint still refuses a duplicate, failing the transaction rather than
    promising twice."""
    safe = queue.check_args(args)
    name = queue.task_name(task)
    queue.check_name(name)  # only app.jobs functions; imported only where the job runs
    key = key or key_for(name, *safe)
    if not once:
        existing = session.execute(
            select(OutboxMessage).where(OutboxMessage.key == key)
        ).scalar_one_or_none()
        if existing is not None:
            return existing
    row = OutboxMessage(
        key=key,
        task=name,
        args=json.dumps(list(safe)),
        state=OutboxState.PENDING,
        attempts=0,
    )
    session.add(row)
    return row


def _can_run_inline() -> bool:
    """Inline only where the key ring is loaded: the public form never runs a job itself."""
    return "mynumber_keyring" in current_app.extensions


def _redis_down(exc: BaseException) -> bool:
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


def _reason(exc: BaseException) -> str:
    if _redis_down(exc):
        return f"ジョブキュー（Redis）に接続できません（{type(exc).__name__}）"
    return f"ジョブを開始できませんでした（{type(exc).__name__}）"


def reclaim_stale(session: Session, now: dt.datetime | None = None) -> int:
    """Rows a dead dispatcher claimed long ago go back to ``pending``."""
    now = now or utcnow()
    count = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.state == OutboxState.DISPATCHING,
            OutboxMessage.claimed_at < now - dt.timedelta(minutes=STALE_CLAIM_MINUTES),
            # A long inline job that still reports progress is alive, however old its claim.
            (OutboxMessage.progress_at.is_(None))
            | (OutboxMessage.progress_at < now - dt.timedelta(minutes=STALE_CLAIM_MINUTES)),
        )
        .values(state=OutboxState.PENDING, claimed_at=None)
    ).rowcount
    session.commit()
    return count


def _claim(session: Session, row_id: int, now: dt.datetime) -> bool:
    claimed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state == OutboxState.PENDING)
        .values(state=OutboxState.DISPATCHING, claimed_at=now, attempts=OutboxMessage.attempts + 1)
    ).rowcount
    session.commit()
    return claimed == 1


def _push(row: OutboxMessage, inline: bool) -> None:
    args = json.loads(row.args)
    if current_app.config.get("REDIS_URL"):
        # RQ picks the job id: outbox ids repeat across instances that share one Redis.
        queue.enqueue(row.task, *args)
    elif inline:
        queue.resolve(row.task)(*args)
    else:
        raise OutboxError("no queue")  # unreachable: dispatch() returns early


def dispatch(
    session: Session,
    *,
    keys: list[str] | None = None,
    limit: int = 500,
    now: dt.datetime | None = None,
) -> DispatchReport:
    """Hand pending rows (all due ones, or just ``keys``) to RQ or run them inline.

    Never raises for a Redis outage: the rows stay pending and the report says why."""
    report = DispatchReport()
    inline = _can_run_inline()
    if not current_app.config.get("REDIS_URL") and not inline:
        return report  # the public form in embedded mode: the worker sends them
    now = now or utcnow()
    if keys is None:
        report.reclaimed = reclaim_stale(session, now)
    elif not keys:
        return report
    query = (
        select(OutboxMessage.id)
        .where(OutboxMessage.state == OutboxState.PENDING)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if keys is None:
        query = query.where(
            (OutboxMessage.next_attempt_at.is_(None)) | (OutboxMessage.next_attempt_at <= now)
        )
    else:
        query = query.where(OutboxMessage.key.in_(keys))
    ids = list(session.execute(query).scalars())
    session.commit()
    for row_id in ids:
        if not _claim(session, row_id, now):
            continue  # another dispatcher has it
        row = session.get(OutboxMessage, row_id)
        ran_inline = inline and not current_app.config.get("REDIS_URL")
        try:
            _push(row, inline)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the row for later
            session.rollback()
            if ran_inline:
                # The job ran and failed, as a failed RQ job would: its own records (a
                # failed delivery, batch or archive) say so and are retried by their owners.
                _finish(session, row_id, f"ジョブが失敗しました（{type(exc).__name__}）")
                report.failed += 1
                report.errors.append("処理を完了できませんでした")
                log.warning("outbox %s: inline job failed: %s", row_id, type(exc).__name__)
                continue
            _defer(session, row_id, exc, now)
            report.deferred += 1
            report.errors.append(_reason(exc))
            log.warning("outbox %s deferred: %s", row_id, type(exc).__name__)
            if _redis_down(exc):
                break  # the others would fail the same way; the next run retries
            continue
        _finish(session, row_id, None)
        report.dispatched += 1
    return report


def _finish(session: Session, row_id: int, error: str | None) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state == OutboxState.DISPATCHING)
        .values(state=OutboxState.DISPATCHED, dispatched_at=utcnow(), last_error=error)
    )
    session.commit()


def _defer(session: Session, row_id: int, exc: BaseException, now: dt.datetime) -> None:
    attempts = session.execute(
        select(OutboxMessage.attempts).where(OutboxMessage.id == row_id)
    ).scalar_one()
    wait = BACKOFF_SECONDS[min(max(attempts, 1) - 1, len(BACKOFF_SECONDS) - 1)]
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id)
        .values(
            state=OutboxState.PENDING,
            claimed_at=None,
            next_attempt_at=now + dt.timedelta(seconds=wait),
            last_error=_reason(exc)[:300],
        )
    )
    session.commit()


def after_commit(session: Session, keys: list[str]) -> DispatchReport:
    """Right after an action committed: try to hand its rows over now. Never raises, so a
    Redis outage never turns a stored action into an error page."""
    try:
        return dispatch(session, keys=keys)
    except Exception as exc:  # noqa: BLE001 - the action is stored; the sweep retries
        session.rollback()
        log.warning("outbox dispatch after commit failed: %s", type(exc).__name__)
        return DispatchReport(errors=[_reason(exc)])


DISPATCHER_EXTENSION = "mynumber_outbox_dispatcher"

# What a waiting row is, in the operator's words (by the job's name).
TASK_LABELS = {
    "send_delivery": "メール（依頼・督促・不備のお知らせ）",
    "send_receipt": "受付のお知らせメール",
    "render_print_batch": "印刷ファイルの作成",
    "load_target_upload": "対象者リストの確認・登録",
    "send_inquiry_answer": "お問い合わせへの回答メール",
}


@dataclass
class DispatcherBeat:
    """The embedded dispatcher of ``mynumber run`` (``app.jobs.worker.start_embedded``), as
    the process that serves the portal knows it."""

    interval: float
    last_run: dt.datetime | None = None
    last_error: str | None = None


@dataclass
class Waiting:
    """What the outbox holds that has not gone out, and why: the portal's banner."""

    total: int
    by_kind: list[tuple[str, int]]
    oldest_at: dt.datetime | None
    reason: str
    fix: str


def waiting(session: Session, config, extensions) -> Waiting | None:
    """None when nothing waits; else counts per kind and the real reason: Redis refusing
    (only when it is configured), a failing job, or no dispatcher in this mode."""
    rows = session.execute(
        select(OutboxMessage.task, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.state != OutboxState.DISPATCHED)
        .group_by(OutboxMessage.task)
    ).all()
    if not rows:
        return None
    by_kind: dict[str, int] = {}
    for task, n, _first in rows:
        label = TASK_LABELS.get(task.rpartition(".")[2], "その他の処理")
        by_kind[label] = by_kind.get(label, 0) + int(n)
    oldest = min(first for _t, _n, first in rows if first is not None)
    last = oldest_pending(session)
    last_error = last.last_error if last is not None else None
    beat = extensions.get(DISPATCHER_EXTENSION)
    if config.get("REDIS_URL"):
        reason = last_error or "ジョブキュー（Redis）への受け渡しを待っています"
        fix = (
            "ジョブキュー（Redis）に接続でき次第、1分以内に自動で送出されます。"
            "続く場合は Redis と `mynumber worker` が動いているか確認してください。"
        )
    elif beat is not None and beat.last_error:
        reason = f"送信処理でエラーが起きています（{beat.last_error}）"
        fix = f"{beat.interval:g} 秒ごとに再試行します。続く場合はログを確認してください。"
    elif beat is not None:
        reason = "送信処理（mynumber run）の順番を待っています"
        fix = f"{beat.interval:g} 秒ごとに自動で送出されます。操作は不要です。"
    else:
        reason = "このプロセスでは送信処理が動いていません（Redis も設定されていません）"
        fix = (
            "`mynumber run` で起動するか、`mynumber worker` を動かしてください"
            "（今すぐ送るには `mynumber outbox dispatch`）。"
        )
    return Waiting(sum(by_kind.values()), sorted(by_kind.items()), oldest, reason, fix)


def counts(session: Session) -> dict[str, int]:
    """Rows per state (for the delivery screen and ``mynumber outbox status``)."""
    rows = session.execute(
        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    ).all()
    result = {state: 0 for state in OutboxState.LABELS}
    result.update({state: int(n) for state, n in rows})
    return result


def oldest_pending(session: Session) -> OutboxMessage | None:
    return session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.state != OutboxState.DISPATCHED)
        .order_by(OutboxMessage.id)
        .limit(1)
    ).scalar_one_or_none()


# -- progress of a long job ------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """How far a promised job has got: ``done`` of ``total`` (``None`` before it reported)."""

    state: str
    done: int | None
    total: int | None
    error: str | None

    @property
    def percent(self) -> int:
        if not self.total:
            return 0
        return max(0, min(100, round(100 * (self.done or 0) / self.total)))


def report_progress(session: Session, key: str, done: int, total: int) -> None:
    """The job behind ``key`` has done ``done`` of ``total`` steps. Committed at once (the
    caller has nothing pending: it reports between its own commits); a job run without a row
    (from the command line) updates nothing."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.key == key)
        .values(progress_done=done, progress_total=total, progress_at=utcnow())
    )
    session.commit()


def progress(session: Session, key: str) -> Progress | None:
    """The state and progress of the job promised under ``key``, or ``None``."""
    row = session.execute(
        select(
            OutboxMessage.state,
            OutboxMessage.progress_done,
            OutboxMessage.progress_total,
            OutboxMessage.last_error,
        ).where(OutboxMessage.key == key)
    ).one_or_none()
    return Progress(*row) if row is not None else None


def dispatch_soon(session: Session, keys: list[str]) -> None:
    """Hand ``keys`` over without making the request wait for them: to RQ when there is one;
    in the embedded ``run`` (``JOBS_IN_BACKGROUND``), inline in a thread of its own with its
    own application context and database session; otherwise inline now (``after_commit``)."""
    app = current_app._get_current_object()
    if app.config.get("REDIS_URL") or not app.config.get("JOBS_IN_BACKGROUND"):
        after_commit(session, keys)
        return

    def work() -> None:
        with app.app_context():  # the thread's own scoped session
            try:
                after_commit(db.session, keys)
            finally:
                db.session.remove()

    threading.Thread(target=work, name="mynumber-job", daemon=True).start()
