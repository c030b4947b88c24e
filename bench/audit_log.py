"""Audit log benchmark: the 監査ログ screen's filtered page and the CSV of a large log.

    .venv/bin/python bench/audit_log.py [--events 50000] [--postgres]

1. builds a scratch instance (embedded SQLite, or its own PostgreSQL database with
   ``--postgres``: DATABASE_URL or the local server);
2. appends N events through ``trail.record`` (chained and hashed as in production), spread
   over 30 days, a quarter of them by each role;
3. times ``browse.page`` (the count and the first page) unfiltered, for one JST day, for one
   role, and for a day and a role; then ``browse.build_csv`` for one day and for everything,
   and prints the CSV's bytes per event and events per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLES = ("Operator", "ClientStaff", "Auditor", "SystemAdmin")
START = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=30)


def _timed(label: str, run, baseline: float | None = None) -> float:
    start = time.perf_counter()
    result = run()
    took = time.perf_counter() - start
    ratio = f", {took / baseline:.2f}× the unfiltered page" if baseline else ""
    print(f"{label}: {took * 1000:.0f} ms{ratio} ({result})")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()

    from app.audit import browse, trail
    from app.cli.instance import initialise
    from app.core.actor import Actor
    from app.models import db
    from app.web.factory import create_app

    home = Path(tempfile.mkdtemp(prefix="mnv-bench-"))
    overrides = {"MYNUMBER_HOME": str(home), "RATELIMIT_ENABLED": False, "REDIS_URL": None}
    db_name = server = None
    if args.postgres:
        import psycopg

        from bench.public_form_load import _pg_server

        server = _pg_server()
        db_name = f"mnv_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db_name}"')
        overrides["SQLALCHEMY_DATABASE_URI"] = (
            server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + "/"
            + db_name
        )
    app = create_app(overrides)
    initialise(app, "Bench-Passw0rd!")
    try:
        with app.test_request_context():
            session = db.session
            step = SPAN / args.events
            start = time.perf_counter()
            for i in range(args.events):
                when = START + step * i
                trail.utcnow = lambda when=when: when
                actor = Actor(name=f"user{i % 40}", user_id=i % 40, roles=(ROLES[i % 4],))
                trail.record(session, actor, "people.view", object_type="person", object_ids=[i])
                if i % 1000 == 999:
                    session.commit()
            session.commit()
            took = time.perf_counter() - start
            print(f"appended {args.events} events in {took:.1f} s ({args.events / took:.0f}/s)")

            def page(query: dict) -> str:
                f, errors = browse.parse_filter(query)
                assert not errors, errors
                p = browse.page(session, f)
                return f"{p.total} events, {len(p.events)} on the page"

            day = {"from": "2026/11/15", "to": "2026/11/15"}
            base = _timed("page, unfiltered", lambda: page({}))
            _timed("page, one JST day", lambda: page(day), base)
            _timed("page, one role", lambda: page({"role": "Operator"}), base)
            _timed("page, one day and one role", lambda: page({**day, "role": "Auditor"}), base)

            def csv(query: dict) -> str:
                f, _ = browse.parse_filter(query)
                data, rows = browse.build_csv(session, f)
                return f"{rows} events, {len(data) / 1e6:.1f} MB, {len(data) / max(rows, 1):.0f} B/event"

            one = _timed("CSV, one JST day", lambda: csv(day))
            everything = _timed("CSV, everything", lambda: csv({}))
            print(
                f"CSV: {args.events / everything:.0f} events/s; one day took {one / everything:.2f}× all"
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if db_name:
            import psycopg

            with app.app_context():
                db.engine.dispose()
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')


if __name__ == "__main__":
    main()
