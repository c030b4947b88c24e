"""Import and export at scale, against the physical baseline measured in the same run.

    .venv/bin/python bench/import_export.py                 # 200,000 rows, 3 rounds
    .venv/bin/python bench/import_export.py --rows 1000000 --rounds 1

For each round, on a fresh PostgreSQL database and a fresh instance (key ring, migrations):

1. a synthetic staff CSV of N rows (households of an employee and 0-2 dependents, valid check
   digits, fictional names) is written to a temporary folder (synthetic data only);
2. baseline: plaintext ``COPY FROM`` of that same file into a table with a unique index on the
   number, and ``COPY TO`` of it into a file — what moving these bytes costs at least; and the
   schema floor: ``COPY`` of ready-made (random) ciphertext rows into the vault's three tables,
   rolled back — what the schema itself costs before any parsing or encryption;
3. ``mynumber import`` and ``mynumber export`` do the same work through the same functions the
   CLI calls (``app.io.imports.import_csv``, ``app.io.exports.export_csv``), each in its own process
   so that its peak memory (ru_maxrss) is its own;
4. the crypto floor: what any import or export in Python must do per row at least, with the
   vault's own bulk crypto (``app.io.bulk``) and the ``csv`` module, and nothing else (no check,
   no database) — read a row, make a data key, seal the number, compute its blind index; open
   the key and the number, write the row.

It prints the times, the ratios to the baseline, and the peak memory. Not a test: the numbers
depend on the machine; the README records them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADER = "職員番号,職員氏名,本人区分,扶養者コード,生年月日,マイナンバー"


def generate(path: Path, rows: int, seed: int) -> None:
    """A staff CSV in the default layout: employee, then 0-2 dependents; UTF-8 with BOM."""
    from app.core.mynumber import make_valid

    rng = random.Random(seed)
    firsts = rng.sample(range(10**10, 10**11), rows)
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write(HEADER + "\r\n")
        written = household = 0
        buffer = []
        while written < rows:
            household += 1
            code = f"B{household:07d}"
            members = [("本人", 0)] + [("扶養家族", d) for d in range(1, rng.randint(0, 2) + 1)]
            for kubun, seq in members:
                if written >= rows:
                    break
                name = "見本 太郎" if seq == 0 else f"見本 {'一二'[seq - 1]}子"
                birth = f"{1950 + rng.randrange(70)}/{rng.randrange(1, 13):02d}/{rng.randrange(1, 29):02d}"
                number = make_valid(f"{firsts[written]:011d}")
                buffer.append(
                    f"{code},{name}{household},{kubun},{code}-{seq:02d},{birth},{number}\r\n"
                )
                written += 1
            if len(buffer) > 10000:
                out.write("".join(buffer))
                buffer = []
        out.write("".join(buffer))


def admin_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def baseline(db_url: str, csv_path: Path, out_path: Path) -> tuple[float, float]:
    """Plaintext COPY FROM and COPY TO of the same file, unique index on the number."""
    import psycopg

    with psycopg.connect(admin_url(db_url)) as conn:
        conn.execute(
            "CREATE TABLE bench_plain (code text, name text, kubun text, dependent_code text,"
            " birth_date text, number text)"
        )
        conn.execute("CREATE UNIQUE INDEX bench_plain_number ON bench_plain (number)")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor().copy(
                "COPY bench_plain FROM STDIN (FORMAT csv, HEADER true, ENCODING 'UTF8')"
            ) as copy,
            csv_path.open("rb") as source,
        ):
            source.read(3)  # the BOM
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        copy_in = time.perf_counter() - started
        started = time.perf_counter()
        with (
            conn.cursor().copy("COPY bench_plain TO STDOUT (FORMAT csv, HEADER true)") as copy,
            out_path.open("wb") as sink,
        ):
            sink.write(b"\xef\xbb\xbf")
            for chunk in copy:
                sink.write(chunk)
        copy_out = time.perf_counter() - started
        conn.execute("DROP TABLE bench_plain")
        conn.commit()
    return copy_in, copy_out


def schema_floor(db_url: str, rows: int) -> float:
    """COPY of already-encrypted rows into the three real tables (person, data_key,
    my_number_record: ten indexes, two of them partial and skipped by most imported rows, and
    two foreign-key checks per person), rolled back. What the schema costs per person before
    any Python work: the import's floor on this machine."""
    import datetime as dt

    import psycopg

    from app.io.bulk import (
        KEY_COLUMNS,
        KEY_TYPES,
        PERSON_COLUMNS,
        PERSON_TYPES,
        RECORD_COLUMNS,
        RECORD_TYPES,
    )

    now = dt.datetime.now(dt.UTC)
    birth = dt.date(1980, 4, 1)
    people, keys, records = [], [], []
    for i in range(rows):
        pid = uuid.uuid4()
        people.append(
            (
                pid,
                "employee",
                f"F{i:07d}",
                None,
                0,
                None,
                f"見本 太郎{i}",
                None,
                birth,
                None,
                None,
                None,
                "active",
                now,
                now,
            )
        )
        keys.append((uuid.uuid4(), pid, 1, 1, os.urandom(67), now))
        records.append(
            (uuid.uuid4(), pid, os.urandom(47), os.urandom(32), "0000", "active", "import", now)
        )
    with psycopg.connect(admin_url(db_url)) as conn:
        started = time.perf_counter()
        for table, columns, types, data in (
            ("person", PERSON_COLUMNS, PERSON_TYPES, people),
            ("data_key", KEY_COLUMNS, KEY_TYPES, keys),
            ("my_number_record", RECORD_COLUMNS, RECORD_TYPES, records),
        ):
            with conn.cursor().copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(list(types))
                for row in data:
                    copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


CHILD = r"""
import json, sys, time
from pathlib import Path


def hwm_mb():
    # Peak RSS of this process image (VmHWM). Not ru_maxrss: after fork+exec Linux carries the
    # parent's peak into it, so it would count the benchmark's own memory.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")



def crypto_floor(vault, path):
    # The least any import and export in Python must do per row, with the vault's own bulk
    # crypto (app.io.bulk) and the csv module, timed in batches of 5,000: read the row, make a
    # data key, seal the number, compute its blind index; and open the key and the number and
    # write the row. No check, no database.
    import csv, io, uuid
    from app.io.bulk import Opener, Sealer
    sealer, opener = Sealer(vault), Opener(vault)
    seal, new_key, index = sealer.seal_field, sealer.new_person_key, sealer.blind_index
    person_key, open_field = opener.person_key, opener.open_field
    import_s = export_s = 0.0
    with path.open(encoding="utf-8-sig", newline="") as source:
        reader = csv.reader(source)
        next(reader)
        while True:
            started = time.perf_counter()
            batch = []
            for cells in reader:
                pid, rid = uuid.uuid4(), uuid.uuid4()
                aead, wrapped = new_key(pid)
                number = cells[5]
                batch.append((cells, pid, wrapped, rid,
                              seal(aead, "my_number_record", "ciphertext", rid, number),
                              index(number)))
                if len(batch) == 5000:
                    break
            import_s += time.perf_counter() - started
            if not batch:
                break
            # As the export reads them: ids as text (untimed).
            batch = [(c, str(uuid.uuid4()), str(p), w, str(r), x) for c, p, w, r, x, _ in batch]
            started = time.perf_counter()
            out = io.StringIO()
            write = csv.writer(out).writerow
            for cells, key_id, pid, wrapped, rid, sealed in batch:
                aead = person_key(key_id, pid, sealer.kek_version, wrapped)
                number = open_field(aead, "my_number_record", "ciphertext", rid, sealed)
                write((cells[0], cells[1], cells[2], cells[3], cells[4], number))
            out.getvalue().encode("utf-8")
            export_s += time.perf_counter() - started
    return {"import": import_s, "export": export_s}


from app.web.factory import create_app
from app.cli.common import shell_actor
from app.models import db
mode, path = sys.argv[1], Path(sys.argv[2])
app = create_app({"RATELIMIT_ENABLED": False})
with app.app_context():
    vault = app.extensions["mynumber_vault"]
    from app.io import layouts
    layout = layouts.get(db.session, "staff")
    start_rss = hwm_mb()
    if mode == "floor":
        print(json.dumps(crypto_floor(vault, path)))
        sys.exit(0)
    started = time.perf_counter()
    if mode == "import":
        from app.io import imports
        with path.open("rb") as stream:
            report = imports.import_csv(db.session, vault, shell_actor(), stream, layout,
                                        filename=path.name)
        assert report.committed, report.summary()
        rows = report.created
    else:
        from app.io import exports
        with path.open("xb") as out:
            rows = exports.export_csv(db.session, vault, shell_actor(), layout, out,
                                      "benchmark").count
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rows": rows, "rss_before_mb": start_rss,
                  "peak_rss_mb": hwm_mb()}))
"""


def child(mode: str, path: Path, env: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def one_round(server_url: str, rows: int, seed: int, keep: bool) -> dict:
    import psycopg

    name = f"mnv_bench_{uuid.uuid4().hex[:10]}"
    base = server_url.rsplit("/", 1)[0]
    db_url = f"{base}/{name}"
    work = Path(tempfile.mkdtemp(prefix="mnv-bench-"))
    with psycopg.connect(admin_url(server_url), autocommit=True) as conn:
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
        generate(csv_path, rows, seed)
        copy_in, copy_out = baseline(db_url, csv_path, work / "plain_out.csv")
        floor = schema_floor(db_url, rows)
        with psycopg.connect(admin_url(db_url), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        imported = child("import", csv_path, env)
        with psycopg.connect(admin_url(db_url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        exported = child("export", work / "export.csv", env)
        crypto = child("floor", csv_path, env)
        return {
            "crypto_import": crypto["import"],
            "crypto_export": crypto["export"],
            "rows": rows,
            "copy_in": copy_in,
            "copy_out": copy_out,
            "floor": floor,
            "import": imported["seconds"],
            "export": exported["seconds"],
            "import_peak_mb": imported["peak_rss_mb"],
            "import_start_mb": imported["rss_before_mb"],
            "export_peak_mb": exported["peak_rss_mb"],
            "export_start_mb": exported["rss_before_mb"],
        }
    finally:
        if keep:  # keep the instance (key ring) with the database, not the CSV files
            for leftover in work.glob("*.csv"):
                leftover.unlink()
        else:
            shutil.rmtree(work, ignore_errors=True)  # synthetic data only, but leave nothing
        if not keep:
            with psycopg.connect(admin_url(server_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept: DATABASE_URL={db_url} MYNUMBER_HOME={work / 'instance'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server URL (a database is created and dropped per round)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the last round's database")
    args = parser.parse_args()
    results = []
    for index in range(args.rounds):
        result = one_round(args.database_url, args.rows, args.seed + index, args.keep)
        results.append(result)
        print(
            f"round {index + 1}: {result['rows']:,} rows | COPY FROM {result['copy_in']:.2f}s, "
            f"schema floor {result['floor']:.2f}s ({result['floor'] / result['copy_in']:.1f}x), "
            f"import {result['import']:.2f}s ({result['import'] / result['copy_in']:.1f}x) | "
            f"COPY TO {result['copy_out']:.2f}s, export {result['export']:.2f}s "
            f"({result['export'] / result['copy_out']:.1f}x) | crypto floor import "
            f"{result['crypto_import']:.2f}s ({result['crypto_import'] / result['copy_in']:.1f}x), "
            f"export {result['crypto_export']:.2f}s "
            f"({result['crypto_export'] / result['copy_out']:.1f}x) | peak RSS import "
            f"{result['import_peak_mb']:.0f} MB (at start {result['import_start_mb']:.0f}), "
            f"export {result['export_peak_mb']:.0f} MB (at start {result['export_start_mb']:.0f})",
            flush=True,
        )
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(
        f"median of {len(results)}: import {med['import']:.2f}s vs COPY FROM {med['copy_in']:.2f}s "
        f"= {med['import'] / med['copy_in']:.1f}x (schema floor {med['floor']:.2f}s = "
        f"{med['floor'] / med['copy_in']:.1f}x); export {med['export']:.2f}s vs COPY TO "
        f"{med['copy_out']:.2f}s = {med['export'] / med['copy_out']:.1f}x (crypto floor "
        f"{med['crypto_export'] / med['copy_out']:.1f}x, import's "
        f"{med['crypto_import'] / med['copy_in']:.1f}x); peak RSS import "
        f"{med['import_peak_mb']:.0f} MB, export {med['export_peak_mb']:.0f} MB"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
