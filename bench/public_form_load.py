"""Load benchmark of the public form: complete sealed submissions through gunicorn.

    .venv/bin/python bench/public_form_load.py [--duration 60] [--clients 16]

What it does, all on loopback, bounded in time:
1. builds a scratch instance (its own PostgreSQL database from DATABASE_URL or the local
   server; ``--sqlite`` for the embedded file) and issues one link per simulated subject
   (external members, so each flow is one person);
2. starts the form under gunicorn with 2 workers (gthread) on a free port;
3. measures the same server answering a static page (the landing page, no database) for
   ``--static-seconds``;
4. runs ``--clients`` concurrent subjects for ``--duration`` seconds, each doing the whole
   flow as a browser does: link → birth date with the consent → number page → number
   (twice) → documents
   (a 1 MB JPEG photo as 身元確認 + a small PDF 通知カード) → submit → receipt page;
5. counts the received submissions in the database afterwards (zero lost = every flow that
   got a receipt is there, and nothing else is);
6. prints throughput, latency percentiles, the ratio to the static page, and the errors.

The per-IP rate limits (everything, and token look-ups) are raised for the run: every
simulated phone comes from 127.0.0.1. The per-token limit stays as configured. The limits
are counted in Redis by default (``--limiter memory`` for per-process counters), under a key
prefix of this run's own, as production does with more than one worker.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIRTH = (1980, 4, 1)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = re.compile(r"(mnv_form=[^;]+)")


# -- set-up -------------------------------------------------------------------------------
SERVICES = ("postgres", "redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_server() -> str:
    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    return re.sub(r"^postgres(ql)?(\+psycopg2?)?://", "postgresql://", url)


def _pg_exec(sql: str) -> None:
    import psycopg

    with psycopg.connect(_pg_server(), autocommit=True) as conn:
        conn.execute(sql)


def prepare(home: Path, db_url: str, subjects: int) -> list[tuple[str, str]]:
    """A fresh instance with ``subjects`` external members, each with an issued link."""
    import datetime as dt

    from app.cli.instance import initialise
    from app.collection import requests
    from app.core.actor import Actor
    from app.core.mynumber import make_valid  # noqa: F401  (numbers are made per flow)
    from app.models import PersonKind, db
    from app.people import registry
    from app.web.factory import create_app

    overrides = {"MYNUMBER_HOME": str(home), "SQLALCHEMY_DATABASE_URI": db_url}
    app = create_app(overrides)
    initialise(app, "Bench-Passw0rd!")
    links = []
    actor = Actor.system("bench")
    with app.app_context():
        vault = app.extensions["mynumber_vault"]
        for i in range(subjects):
            person = registry.add_person(
                db.session,
                vault,
                kind=PersonKind.EXTERNAL,
                name=f"負荷 試験{i:05d}",
                code=f"B{i:06d}",
                birth_date=dt.date(*BIRTH),
            )
            _req, token = requests.create_request(
                db.session, actor, person, purpose_text="負荷試験のための利用目的"
            )
            links.append((token, str(person.id)))
            if i % 500 == 499:
                db.session.commit()
        db.session.commit()
        db.engine.dispose()
    return links


def _limiter_uri(kind: str) -> str:
    """Redis as production runs it with several workers (one count for all), else memory."""
    if kind == "memory":
        return "memory://"
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    import redis

    redis.Redis.from_url(url).ping()  # fail early, not in the middle of the run
    return url


def count_received(home: Path, db_url: str) -> int:
    from sqlalchemy import func, select

    from app.models import Submission, db
    from app.web.factory import create_app

    app = create_app({"MYNUMBER_HOME": str(home), "SQLALCHEMY_DATABASE_URI": db_url})
    with app.app_context():
        n = db.session.execute(
            select(func.count()).select_from(Submission).where(Submission.status == "received")
        ).scalar_one()
        db.engine.dispose()
    return n


def photo_1mb() -> bytes:
    """A phone-like JPEG of about 1 MB (2000×1500 with sensor-like noise)."""
    from PIL import Image

    image = Image.effect_noise((2000, 1500), 24).convert("RGB")
    for quality in (70, 60, 50, 40):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() <= 1_100_000:
            break
    return out.getvalue()


def small_pdf() -> bytes:
    from tests.public_form.conftest import pdf

    return pdf()


# -- the load generator -------------------------------------------------------------------
@dataclass
class Stats:
    flows: list[float] = field(default_factory=list)
    uploads: list[float] = field(default_factory=list)
    submits: list[float] = field(default_factory=list)
    receipts: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One simulated phone: a keep-alive connection and the form's cookie."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        for value in response.headers.get_all("Set-Cookie") or []:
            match = COOKIE.search(value)
            if match:
                self.cookie = match.group(1)
        return response.status, response.headers.get("Location", ""), data

    def post_form(self, path, fields):
        body = "&".join(f"{k}={urllib_quote(v)}" for k, v in fields.items()).encode()
        return self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )

    def post_multipart(self, path, fields, files):
        boundary = "----mnvbench" + secrets.token_hex(8)
        out = io.BytesIO()
        for k, v in fields.items():
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
            )
            out.write(v.encode() + b"\r\n")
        for name, (filename, ctype, data) in files.items():
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
            )
            out.write(data + b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
        return self.request(
            "POST",
            path,
            out.getvalue(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )


def urllib_quote(value: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(value)


def one_flow(port: int, token: str, ref: str, number: str, photo: bytes, pdf: bytes, stats: Stats):
    c = Client(port)
    start = time.perf_counter()

    def expect(result, status, location=None, what=""):
        code, loc, body = result
        if code != status or (location and not loc.endswith(location)):
            raise RuntimeError(f"{what}: HTTP {code} {loc}")
        return body

    try:
        expect(c.request("GET", f"/r/{token}"), 302, "/verify", "link")
        body = expect(c.request("GET", "/verify"), 200, what="verify page")
        csrf = CSRF.search(body.decode()).group(1)
        y, m, d = BIRTH
        birth = {"year": str(y), "month": str(m), "day": str(d), "agree": "yes"}
        expect(
            c.post_form("/verify", {"csrf_token": csrf, **birth}),
            302,
            f"/p/{ref}/number",
            "birth date and consent",
        )
        body = expect(c.request("GET", f"/p/{ref}/number"), 200, what="number page")
        csrf = CSRF.search(body.decode()).group(1)  # a fresh session after sign-in
        expect(
            c.post_form(
                f"/p/{ref}/number", {"csrf_token": csrf, "number": number, "number_confirm": number}
            ),
            302,
            "/documents",
            "number",
        )
        t = time.perf_counter()
        expect(
            c.post_multipart(
                f"/p/{ref}/documents",
                {
                    "csrf_token": csrf,
                    "combination": "other",
                    "number_doc_type": "notice_card",
                    "identity_doc_type": "license",
                },
                {
                    "number_doc": ("notice.pdf", "application/pdf", pdf),
                    "identity_doc": ("license.jpg", "image/jpeg", photo),
                },
            ),
            302,
            "/confirm",
            "documents",
        )
        upload = time.perf_counter() - t
        t = time.perf_counter()
        expect(c.post_form("/submit", {"csrf_token": csrf}), 302, "/done", "submit")
        submit = time.perf_counter() - t
        body = expect(c.request("GET", "/done"), 200, what="receipt")
        if b"MN-" not in body:
            raise RuntimeError("receipt: no receipt number")
        elapsed = time.perf_counter() - start
        with stats.lock:
            stats.flows.append(elapsed)
            stats.uploads.append(upload)
            stats.submits.append(submit)
            stats.receipts += 1
    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
        with stats.lock:
            stats.errors.append(str(exc)[:200])
    finally:
        c.conn.close()


def run_flows(port, links, clients, duration, photo, pdf) -> tuple[Stats, float]:
    from app.core.mynumber import make_valid

    stats = Stats()
    work: queue.Queue = queue.Queue()
    for i, (token, ref) in enumerate(links):
        work.put((token, ref, make_valid(f"{31000000000 + i:011d}")))
    deadline = time.perf_counter() + duration

    def worker():
        while time.perf_counter() < deadline:
            try:
                token, ref, number = work.get_nowait()
            except queue.Empty:
                return
            one_flow(port, token, ref, number, photo, pdf, stats)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 60)
    return stats, time.perf_counter() - started


def _wait_ready(port: int, workers: int, timeout: float = 120.0) -> None:
    """Until every worker answers: the port opens when the master binds it, seconds before
    the workers have imported the app (on a busy machine, many seconds)."""
    deadline = time.perf_counter() + timeout
    answered = 0
    while time.perf_counter() < deadline:
        try:
            code, _, _ = Client(port).request("GET", "/")
            answered = answered + 1 if code == 200 else 0
        except OSError:
            answered = 0
        if answered >= 4 * workers:
            return
        time.sleep(0.05)
    raise RuntimeError("gunicorn did not start")


def _processes() -> Iterator[tuple[int, str, int, float]]:
    """Every process as (pid, command name, parent pid, user + system CPU seconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, rest = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()  # fields[1] is the parent pid; 11 and 12 utime and stime
        yield (
            int(entry.name),
            head.split("(", 1)[1],
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / ticks,
        )


def _tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (gunicorn's master and workers)."""
    return sum(cpu for p, _, parent, cpu in _processes() if pid in (p, parent))


def _named_cpu_seconds(names: tuple[str, ...]) -> float:
    """CPU of every process whose command name is one of ``names``: the database and Redis
    servers' share of the work, which gunicorn's figure leaves out (on a machine running
    nothing else, all of it is this benchmark's)."""
    return sum(cpu for _, name, _, cpu in _processes() if name in names)


def _machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (/proc/stat, all CPUs)."""
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / ticks, sum(values) / ticks


def run_static(port, clients, seconds) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        nonlocal errors
        c = Client(port)
        local = []
        bad = 0
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            try:
                code, _, _ = c.request("GET", "/")
                if code != 200:
                    bad += 1
                else:
                    local.append(time.perf_counter() - t)
            except Exception:  # noqa: BLE001
                bad += 1
        with lock:
            latencies.extend(local)
            errors += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    return latencies, errors, time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--static-seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--subjects", type=int, default=0, help="links to prepare (auto)")
    parser.add_argument(
        "--sqlite", action="store_true", help="embedded SQLite instead of PostgreSQL"
    )
    parser.add_argument(
        "--limiter",
        choices=("redis", "memory"),
        default="redis",
        help="rate-limit storage: Redis (REDIS_URL or the local server; what production with "
        "several workers needs, and the default) or per-process memory",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    subjects = args.subjects or int(args.duration * 60) + 200  # room for 60 flows/s

    load_before = [round(x, 2) for x in os.getloadavg()]
    home = Path(tempfile.mkdtemp(prefix="mnv-bench-"))
    db_name = None
    if args.sqlite:
        db_url = f"sqlite:///{home / 'mynumber.db'}"
    else:
        db_name = f"mnv_bench_{uuid.uuid4().hex[:10]}"
        _pg_exec(f'CREATE DATABASE "{db_name}"')
        db_url = (
            _pg_server().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{db_name}"
        )
    server = None
    try:
        t = time.perf_counter()
        links = prepare(home, db_url, subjects)
        print(f"prepared {len(links)} links in {time.perf_counter() - t:.1f} s", flush=True)
        photo, pdf = photo_1mb(), small_pdf()
        limiter_uri = _limiter_uri(args.limiter)
        port = _free_port()
        env = {
            **os.environ,
            "MYNUMBER_HOME": str(home),
            "DATABASE_URL": db_url,
            # Every simulated phone comes from 127.0.0.1: lift the per-IP limits for the run
            # (the per-token limit stays as configured).
            "MYNUMBER_INTAKE_RATE_LIMIT_IP": "1000000 per minute",
            "MYNUMBER_INTAKE_RATE_LIMIT_TOKEN_LOOKUP": "1000000 per minute",
            "RATELIMIT_STORAGE_URI": limiter_uri,
            # Keys of this run only, in a Redis others may share (they expire within a minute).
            "RATELIMIT_KEY_PREFIX": f"mnvbench{uuid.uuid4().hex[:8]}",
            "PYTHONPATH": str(ROOT),
        }
        if args.sqlite:
            env.pop("DATABASE_URL")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = subprocess.Popen(
            [
                str(gunicorn),
                "--workers",
                str(args.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(args.threads),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "--timeout",
                "60",
                "public_form:create_app()",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        _wait_ready(port, args.workers)
        static_lat, static_err, static_wall = run_static(port, args.clients, args.static_seconds)
        static_rps = len(static_lat) / static_wall
        server_cpu = _tree_cpu_seconds(server.pid)
        client_cpu = time.process_time()
        services_cpu = _named_cpu_seconds(SERVICES)
        busy, total = _machine_busy()
        stats, wall = run_flows(port, links, args.clients, args.duration, photo, pdf)
        server_cpu = _tree_cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        services_cpu = _named_cpu_seconds(SERVICES) - services_cpu
        busy, total = _machine_busy()[0] - busy, _machine_busy()[1] - total
        all_cpu = server_cpu + client_cpu + services_cpu
        received = count_received(home, db_url)
        throughput = stats.receipts / wall
        result = {
            "clients": args.clients,
            "gunicorn": f"{args.workers} workers × {args.threads} threads (gthread)",
            "limiter": args.limiter,
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "database": "sqlite" if args.sqlite else "postgresql",
            "photo_bytes": len(photo),
            "duration_s": round(wall, 1),
            "submissions_per_s": round(throughput, 1),
            "flow_p50_ms": round(pct(stats.flows, 50) * 1000),
            "flow_p95_ms": round(pct(stats.flows, 95) * 1000),
            "upload_p95_ms": round(pct(stats.uploads, 95) * 1000),
            "submit_p95_ms": round(pct(stats.submits, 95) * 1000),
            # CPU per submission, whatever else the machine runs: gunicorn's processes, and
            # this load generator.
            "server_cpu_ms_per_submission": round(server_cpu * 1000 / stats.receipts, 1)
            if stats.receipts
            else None,
            "client_cpu_ms_per_submission": round(client_cpu * 1000 / stats.receipts, 1)
            if stats.receipts
            else None,
            # PostgreSQL's and Redis's processes (all of them: run it on a quiet machine).
            "services_cpu_ms_per_submission": round(services_cpu * 1000 / stats.receipts, 1)
            if stats.receipts
            else None,
            # How busy the whole machine was during the flows (1.0 = every CPU all the time),
            # and the CPUs that the target of 40 submissions/s would keep busy at this cost.
            "machine_busy": round(busy / total, 2) if total else None,
            "cpus_needed_for_40_per_s": round(40 * all_cpu / stats.receipts, 1)
            if stats.receipts
            else None,
            "static_requests_per_s": round(static_rps, 1),
            "static_p95_ms": round(pct(static_lat, 95) * 1000, 1),
            "static_errors": static_err,
            "ratio_submissions_to_static": round(throughput / static_rps, 4)
            if static_rps
            else None,
            # link, birth date page, birth date + consent, number page, number, documents,
            # submit, receipt
            "http_requests_per_submission": 8,
            "receipts": stats.receipts,
            "received_in_db": received,
            "lost": stats.receipts - received,
            "errors": len(stats.errors),
            "cpus": os.cpu_count(),
        }
        print(json.dumps(result, ensure_ascii=False, indent=1))
        if stats.errors:
            print("first errors:", stats.errors[:5], file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1))
        ok = not stats.errors and received == stats.receipts and static_err == 0
        return 0 if ok else 1
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if db_name:
            try:
                _pg_exec(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001
                print(f"could not drop {db_name}: {exc}", file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
