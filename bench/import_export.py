"""Import and export at scale, against the limit measured in the same run.

    .venv/bin/python bench/import_export.py                 # 264,094 rows, 3 rounds
    .venv/bin/python bench/import_export.py --rows 1000000 --rounds 1

**limit = plaintext COPY of the same rows + the least per-row cryptography of the design.**
For each round, on a fresh PostgreSQL database and a fresh instance (key ring, migrations):

1. a synthetic staff CSV of N rows (households of an employee and 0-2 dependents, valid check
   digits, fictional names) is written to a temporary folder (synthetic data only);
2. plaintext COPY: ``COPY FROM`` of that same file into a table with a unique index on the
   number, and ``COPY TO`` of it into a file; and the schema floor: ``COPY`` of ready-made
   (random) ciphertext rows into the vault's tables, rolled back — what the schema itself
   costs before any parsing or encryption (printed, not part of the limit);
3. the crypto floor: what any import or export in Python must do per row at least, with the
   vault's own bulk crypto (``app.io.bulk``) and the ``csv`` module, and nothing else (no
   check, no database) — read a row, make a data key, wrap it, seal the number, compute its
   blind index; unwrap the key, open the number, write the row;
4. ours: the ``mynumber import`` and ``mynumber export`` commands, each a whole process timed
   from its start to its exit (interpreter start-up, app, audit events, commit), with its peak
   memory (VmHWM).

It prints, per round and as the median of the rounds: COPY, crypto floor, limit, ours and
ours ÷ limit. Not a test: the numbers depend on the machine; the README records them.
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


from app.web.base import create_base_app
app = create_base_app()
with app.app_context():
    print(json.dumps(crypto_floor(app.extensions["mynumber_vault"], Path(sys.argv[1]))))
"""

# The `mynumber` command as an operator runs it, plus a line on stderr at exit with the
# process's peak RSS (VmHWM, this process image's own: ru_maxrss would carry the benchmark's
# peak across fork+exec).
COMMAND = r"""
import atexit, sys
from pathlib import Path


def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(f"VmHWM_MB={int(line.split()[1]) / 1024:.1f}", file=sys.stderr)


atexit.register(hwm)
from app.cli import main
main()
"""


def floor_child(path: Path, env: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"crypto floor failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def command(args: list[str], env: dict) -> tuple[float, float, str]:
    """``mynumber ARGS`` as a whole process: wall seconds, peak RSS in MB, its stdout."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", COMMAND, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"mynumber {args[0]} failed:\n{result.stderr[-3000:]}")
    peak = [line for line in result.stderr.splitlines() if line.startswith("VmHWM_MB=")]
    return seconds, float(peak[-1].split("=")[1]), result.stdout.strip()


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
        import_s, import_mb, said = command(["import", str(csv_path), "--layout", "staff"], env)
        if f"新規 {rows} 人" not in said:
            raise SystemExit(f"import did not create {rows} people: {said}")
        with psycopg.connect(admin_url(db_url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        export_s, export_mb, said = command(
            ["export", "--layout", "staff", "--out", str(work / "export.csv"), "--purpose", "計測"],
            env,
        )
        if f"{rows} 人を出力しました" not in said:
            raise SystemExit(f"export did not write {rows} people: {said}")
        crypto = floor_child(csv_path, env)
        return {
            "rows": rows,
            "copy_in": copy_in,
            "copy_out": copy_out,
            "floor": floor,
            "crypto_import": crypto["import"],
            "crypto_export": crypto["export"],
            "import": import_s,
            "export": export_s,
            "import_peak_mb": import_mb,
            "export_peak_mb": export_mb,
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
    parser.add_argument("--rows", type=int, default=264_094)
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
        print(f"round {index + 1}:", flush=True)
        print(table(result), flush=True)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"median of {len(results)} round(s):")
    print(table(med))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


def table(r: dict) -> str:
    """The README's table: COPY, crypto floor, limit, ours (whole process), ours ÷ limit."""
    lines = [
        f"{r['rows']:,.0f} rows | plaintext COPY | + crypto floor = limit | ours (mynumber, "
        f"whole process) | ours ÷ limit | peak RSS",
    ]
    for name, copy_key in (("import", "copy_in"), ("export", "copy_out")):
        limit = r[copy_key] + r[f"crypto_{name}"]
        lines.append(
            f"{name} | {r[copy_key]:.2f} s | + {r[f'crypto_{name}']:.2f} s = {limit:.2f} s | "
            f"{r[name]:.2f} s | {r[name] / limit:.2f}x | {r[f'{name}_peak_mb']:.0f} MB"
        )
    lines.append(
        f"(schema floor: COPY of ready ciphertext into the vault's tables {r['floor']:.2f} s = "
        f"{r['floor'] / r['copy_in']:.1f}x plaintext COPY FROM)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
