"""Import (and export) with the PKCS#11 key provider against the file key ring, same rows,
same run.

    .venv/bin/python bench/hsm.py                      # 100,000 rows, 3 rounds, PostgreSQL
    .venv/bin/python bench/hsm.py --rows 20000 --sqlite

For each round, a synthetic staff CSV (valid check digits, fictional names; synthetic data
only) is written once, then imported into two fresh instances — one whose KEKs are in the key
ring file, one whose KEKs are in a SoftHSM2 token reached through PKCS#11 (a private token
folder made for the round) — each on its own fresh database, each import in its own process
(``mynumber init`` first, as a deployment would). The order alternates between rounds, so a
machine that slows down or speeds up during the run does not favour one provider. Then both
instances export what they imported, and the crypto floor (``app.io.bulk`` alone, no
database: see bench/import_export.py) is timed with each provider.

Printed: the times and the ratio HSM / file for each round and their median (the target for
the import is ≤ 1.3×). Not a test: the numbers depend on the machine; the README records them.

Why the ratio can be small at all: the HSM provider unwraps a per-process working key per KEK
version and derives the blind index's MAC key once (app/vault/hsm.py); a token call per
person would cost ~30 µs on SoftHSM and far more on a network HSM. ``--working-key-ttl 0``
measures that case (nothing kept: two token calls per person).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
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

from bench.import_export import CHILD, COMMAND, admin_url, generate  # noqa: E402

SOFTHSM_MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL = "mnv-bench"
PIN = "bench-user-pin"


def softhsm_env(folder: Path) -> dict:
    """A private SoftHSM2 token (its own folder and configuration) and the settings that
    point the vault at it; the PIN in a 0600 file, as docs/deployment.md recommends."""
    tokens = folder / "tokens"
    tokens.mkdir(parents=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL]
        + ["--pin", PIN, "--so-pin", PIN + "-so"],
        env=env,
        check=True,
        capture_output=True,
    )
    pin_file = folder / "pin"
    pin_file.write_text(PIN + "\n", encoding="utf-8")
    pin_file.chmod(0o600)
    return {
        "SOFTHSM2_CONF": str(conf),
        "MYNUMBER_KEY_PROVIDER": "pkcs11",
        "MYNUMBER_PKCS11_MODULE": SOFTHSM_MODULE,
        "MYNUMBER_PKCS11_TOKEN_LABEL": TOKEN_LABEL,
        "MYNUMBER_PKCS11_PIN_FILE": str(pin_file),
    }


def run_child(mode: str, path: Path, env: dict) -> dict:
    """One timed step in its own process: the ``mynumber import`` / ``export`` command (wall
    time from start to exit) or the crypto floor; adds the process's CPU time (user + system,
    the whole process: start-up and token login included). On a shared machine wall time
    varies a lot from run to run; the provider's cost is all in the client's CPU."""
    if mode == "floor":
        argv = ["-c", CHILD, str(path)]
    elif mode == "import":
        argv = ["-c", COMMAND, "import", str(path), "--layout", "staff"]
    else:
        argv = ["-c", COMMAND, "export", "--layout", "staff", "--out", str(path)]
        argv += ["--purpose", "計測"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    said = result.stdout.strip().splitlines()[-1]
    if mode == "floor":
        timed = json.loads(said)
    else:
        counted = re.search(r"新規 (\d+) 人" if mode == "import" else r"(\d+) 人を出力", said)
        timed = {"seconds": seconds, "rows": int(counted.group(1)) if counted else said}
    timed["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return timed


class Instance:
    """One initialised instance on a fresh database, with the file ring or the HSM."""

    def __init__(self, provider: str, work: Path, server_url: str | None, extra: dict) -> None:
        self.provider = provider
        self.folder = work / provider
        self.folder.mkdir()
        self.db_name = None
        self.server_url = server_url
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MYNUMBER_HOME": str(self.folder / "instance"),
            "MYNUMBER_ADMIN_PASSWORD": "Bench-Passw0rd!",
            **extra,
        }
        if provider == "pkcs11":
            self.env.update(softhsm_env(self.folder / "softhsm"))
        if server_url:
            import psycopg

            self.db_name = f"mnv_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(admin_url(server_url), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
            self.env["DATABASE_URL"] = f"{server_url.rsplit('/', 1)[0]}/{self.db_name}"
        subprocess.run(
            [sys.executable, "-c", "from app.cli import main; main()", "init"],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )

    def settle(self) -> None:
        """The same starting point for each timed step: statistics fresh, dirty pages written."""
        if self.db_name:
            import psycopg

            with psycopg.connect(admin_url(self.env["DATABASE_URL"]), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                conn.execute("CHECKPOINT")

    def drop(self) -> None:
        if self.db_name:
            import psycopg

            with psycopg.connect(admin_url(self.server_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def one_round(index: int, rows: int, seed: int, server_url: str | None, extra: dict) -> dict:
    work = Path(tempfile.mkdtemp(prefix="mnv-bench-hsm-"))
    instances: list[Instance] = []
    try:
        csv_path = work / "staff.csv"
        generate(csv_path, rows, seed)
        order = ["file", "pkcs11"] if index % 2 == 0 else ["pkcs11", "file"]
        for provider in order:
            instances.append(Instance(provider, work, server_url, extra))
        result: dict = {"rows": rows, "order": "/".join(order)}
        for step in ("import", "export", "floor"):
            for instance in instances:
                instance.settle()
                target = csv_path if step != "export" else instance.folder / "export.csv"
                timed = run_child(step, target, instance.env)
                if step == "floor":
                    result[f"floor_import_{instance.provider}"] = timed["import"]
                    result[f"floor_export_{instance.provider}"] = timed["export"]
                else:
                    result[f"{step}_{instance.provider}"] = timed["seconds"]
                    result[f"{step}_cpu_{instance.provider}"] = timed["cpu"]
                    assert timed["rows"] == rows, timed
        return result
    finally:
        for instance in instances:
            instance.drop()
        shutil.rmtree(work, ignore_errors=True)  # synthetic data only, but leave nothing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--sqlite", action="store_true", help="embedded SQLite, not PostgreSQL")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server URL (two databases are created and dropped per round)",
    )
    parser.add_argument(
        "--working-key-ttl",
        type=float,
        default=None,
        help="MYNUMBER_PKCS11_WORKING_KEY_TTL for the HSM instance (default: the setting's)",
    )
    args = parser.parse_args()
    if not Path(SOFTHSM_MODULE).exists() or shutil.which("softhsm2-util") is None:
        raise SystemExit("SoftHSM2 がありません（apt-get install softhsm2）")
    extra = {}
    if args.working_key_ttl is not None:
        extra["MYNUMBER_PKCS11_WORKING_KEY_TTL"] = str(args.working_key_ttl)
    server = None if args.sqlite else args.database_url
    results = []
    for index in range(args.rounds):
        r = one_round(index, args.rows, args.seed + index, server, extra)
        results.append(r)
        print(
            f"round {index + 1} ({r['order']}): {r['rows']:,} rows | import file "
            f"{r['import_file']:.2f}s, HSM {r['import_pkcs11']:.2f}s "
            f"({r['import_pkcs11'] / r['import_file']:.2f}x) | export file "
            f"{r['export_file']:.2f}s, HSM {r['export_pkcs11']:.2f}s "
            f"({r['export_pkcs11'] / r['export_file']:.2f}x) | crypto floor import "
            f"{r['floor_import_file']:.2f}s vs {r['floor_import_pkcs11']:.2f}s, export "
            f"{r['floor_export_file']:.2f}s vs {r['floor_export_pkcs11']:.2f}s | client CPU "
            f"import {r['import_cpu_file']:.2f}s vs {r['import_cpu_pkcs11']:.2f}s "
            f"({r['import_cpu_pkcs11'] / r['import_cpu_file']:.2f}x), export "
            f"{r['export_cpu_file']:.2f}s vs {r['export_cpu_pkcs11']:.2f}s",
            flush=True,
        )
    ratios = {
        step: statistics.median(r[f"{step}_pkcs11"] / r[f"{step}_file"] for r in results)
        for step in ("import", "export", "floor_import", "floor_export", "import_cpu", "export_cpu")
    }
    median = {
        key: statistics.median(r[key] for r in results)
        for key in results[0]
        if key not in ("rows", "order")
    }
    print(
        f"median of {len(results)} ({'SQLite' if args.sqlite else 'PostgreSQL'}, "
        f"{args.rows:,} rows): import file {median['import_file']:.2f}s, HSM "
        f"{median['import_pkcs11']:.2f}s, ratio {ratios['import']:.2f}x (target ≤ 1.3x); "
        f"export ratio {ratios['export']:.2f}x; crypto floor ratio import "
        f"{ratios['floor_import']:.2f}x, export {ratios['floor_export']:.2f}x; client CPU "
        f"ratio import {ratios['import_cpu']:.2f}x, export {ratios['export_cpu']:.2f}x"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
