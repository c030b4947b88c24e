"""Lookup by number at scale: the blind-index search against a plaintext unique-index lookup.

    .venv/bin/python bench/lookup.py                      # 1,000,000 people, 2,000 lookups
    .venv/bin/python bench/lookup.py --rows 200000 --lookups 1000

On a fresh PostgreSQL database and a fresh instance (``mynumber init``), N people are loaded by
the importer (``app.io.imports.import_csv``, the code path of ``mynumber import``: real data
keys, real blind indexes) from a synthetic staff CSV; the same CSV goes by ``COPY`` into a
plaintext table with a unique index on the number (``bench_plain``), the physical baseline.

Then, in one process and one database session, for the same sample of numbers in random
order, each lookup is timed in turn:

- **plaintext row**: ``SELECT * FROM bench_plain WHERE number = :n`` — the CSV row of the
  number through its unique index, nothing else;
- **plaintext → person**: the same ``Person`` as ours, by the same ORM statement shape, through
  a plaintext number column with a unique index (``bench_plain_person``: every number of the
  file, the sampled ones with their person's id) — the design without the blind index;
- **ours**: ``app.people.registry.find_by_number`` — normalise the number, its HMAC blind index,
  the person through the active-number index (what 照合 by number and the portal's search run
  before the audit event and the result list) — returning the ``Person``;
- **before**: the lookup as it was until this benchmark (the number's record with the status as
  a bound parameter, then the person by a lazy load: two statements).

It prints p50 and p99 of each and the ratio of ours to plaintext → person (target: within
1.5×), to the bare row, and of the lookup before. Not a test: timings depend on the machine;
the README records them. The plan and the statement count are tested
(tests/people/test_lookup_plan.py).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.import_export import admin_url, child, generate  # noqa: E402


def load_plain(db_url: str, csv_path: Path) -> None:
    """The plaintext baseline: the same CSV, unique index on the number, analysed."""
    import psycopg

    with psycopg.connect(admin_url(db_url)) as conn:
        conn.execute(
            "CREATE TABLE bench_plain (code text, name text, kubun text, dependent_code text,"
            " birth_date text, number text)"
        )
        with (
            conn.cursor().copy(
                "COPY bench_plain FROM STDIN (FORMAT csv, HEADER true, ENCODING 'UTF8')"
            ) as copy,
            csv_path.open("rb") as source,
        ):
            source.read(3)  # the BOM
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        conn.execute("CREATE UNIQUE INDEX bench_plain_number ON bench_plain (number)")
        conn.commit()
    with psycopg.connect(admin_url(db_url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def sample_numbers(csv_path: Path, count: int, seed: int) -> list[str]:
    with csv_path.open(encoding="utf-8-sig") as source:
        next(source)
        numbers = [line.rstrip("\r\n").rsplit(",", 1)[1] for line in source]
    return random.Random(seed).sample(numbers, min(count, len(numbers)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _plain_person_table(session, numbers: list[str], vault) -> object:
    """``bench_plain_person``: every number of the file in plaintext with a unique index, and
    for the sampled ones their person's id (found once, untimed, through the blind index).
    Queried with the same ORM statement shape as ours, so the comparison is the index alone."""
    from sqlalchemy import Column, MetaData, String, Table, Uuid, text

    from app.people import registry

    table = Table(
        "bench_plain_person",
        MetaData(),
        Column("number", String, nullable=False),
        Column("person_id", Uuid),
    )
    session.execute(text("CREATE TABLE bench_plain_person (number text NOT NULL, person_id uuid)"))
    session.execute(text("INSERT INTO bench_plain_person SELECT number, NULL FROM bench_plain"))
    session.execute(
        text("CREATE UNIQUE INDEX bench_plain_person_number ON bench_plain_person (number)")
    )
    for number in numbers:
        person = registry.find_by_number(session, vault, number)
        session.execute(table.update().where(table.c.number == number).values(person_id=person.id))
    session.commit()
    return table


def measure(env: dict, numbers: list[str], warmup: int, profile: int = 0) -> dict:
    """The three lookups in this process, interleaved, in one session; seconds per lookup.
    Every lookup runs in a transaction of its own (as in a request), its BEGIN included."""
    for key, value in env.items():
        os.environ[key] = value
    from sqlalchemy import bindparam, select, text

    from app.core import mynumber
    from app.models import MyNumberRecord, Person, db
    from app.people import registry
    from app.web.factory import create_app

    app = create_app({"RATELIMIT_ENABLED": False})
    row_sql = text("SELECT * FROM bench_plain WHERE number = :n")
    times: dict[str, list[float]] = {"row": [], "plain": [], "ours": [], "before": []}
    profiler = cProfile.Profile() if profile else None
    with app.app_context():
        vault = app.extensions["mynumber_vault"]
        session = db.session
        table = _plain_person_table(session, numbers, vault)
        with admin_connection(env["DATABASE_URL"]) as conn:
            conn.execute("VACUUM ANALYZE bench_plain_person")
        plain_sql = (
            select(Person)
            .join(table, table.c.person_id == Person.id)
            .where(table.c.number == bindparam("n"))
        )

        def before(number: str):
            """The lookup as it was: the record by blind index and status (both bound), then
            the person by a second, lazy load — two statements."""
            index = vault.blind_index(mynumber.normalize(number))
            record = session.execute(
                select(MyNumberRecord).where(
                    MyNumberRecord.blind_index == index, MyNumberRecord.status == "active"
                )
            ).scalar_one_or_none()
            return record.person if record else None

        kinds = ("row", "plain", "ours", "before")
        for i, number in enumerate(numbers):
            order = kinds[i % 4 :] + kinds[: i % 4]  # rotate: none always goes first
            for kind in order:
                session.rollback()
                session.expunge_all()
                started = time.perf_counter()
                if kind == "row":
                    found = session.execute(row_sql, {"n": number}).one()
                elif kind == "plain":
                    found = session.execute(plain_sql, {"n": number}).scalar_one()
                elif kind == "before":
                    found = before(number)
                elif profiler is not None and i >= warmup:
                    found = profiler.runcall(registry.find_by_number, session, vault, number)
                else:
                    found = registry.find_by_number(session, vault, number)
                elapsed = time.perf_counter() - started
                assert found is not None, kind
                if i >= warmup:
                    times[kind].append(elapsed)
        session.rollback()
        count = session.execute(text("SELECT count(*) FROM person")).scalar_one()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
    return {**times, "people": count}


def admin_connection(db_url: str):
    import psycopg

    return psycopg.connect(admin_url(db_url), autocommit=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server URL (a scratch database is created and dropped)",
    )
    args = parser.parse_args()
    import psycopg

    name = f"mnv_lookup_{uuid.uuid4().hex[:10]}"
    db_url = f"{args.database_url.rsplit('/', 1)[0]}/{name}"
    work = Path(tempfile.mkdtemp(prefix="mnv-lookup-"))
    with psycopg.connect(admin_url(args.database_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": str(work / "instance"),
        "DATABASE_URL": db_url,
        "MYNUMBER_ADMIN_PASSWORD": "Bench-Passw0rd!",
    }
    try:
        subprocess.run(
            [sys.executable, "-c", "from app.cli import main; main()", "init"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        csv_path = work / "staff.csv"
        started = time.perf_counter()
        generate(csv_path, args.rows, args.seed)
        load_plain(db_url, csv_path)
        child("import", csv_path, env)
        with psycopg.connect(admin_url(db_url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"loaded {args.rows:,} people in {time.perf_counter() - started:.0f} s", flush=True)
        numbers = sample_numbers(csv_path, args.lookups + args.warmup, args.seed)
        csv_path.unlink()
        result = measure(env, numbers, args.warmup, args.profile)
        for q in (0.5, 0.99):
            r, p, o, b = (percentile(result[k], q) for k in ("row", "plain", "ours", "before"))
            print(
                f"p{round(q * 100)}: plaintext row {r * 1e6:6.0f} µs | plaintext → person "
                f"{p * 1e6:6.0f} µs | blind index → person {o * 1e6:6.0f} µs | ratio "
                f"{o / p:.2f}x (to the bare row {o / r:.2f}x) | the two-statement lookup "
                f"before {b * 1e6:6.0f} µs ({b / p:.2f}x)"
            )
        print(
            f"{result['people']:,} people, {len(result['ours']):,} lookups of each "
            f"(after {args.warmup} warm-up); machine: {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)  # synthetic data only, but leave nothing
        with psycopg.connect(admin_url(args.database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
