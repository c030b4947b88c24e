"""In-process profile of one public-form flow: SQL statements and CPU per request.

    .venv/bin/python bench/public_form_profile.py [--flows 5] [--pg] [--cprofile 25]

The load benchmark (``bench/public_form_load.py``) gives wall-clock figures that depend on
whatever else runs on the machine. This script gives the two figures that hardly do, for the
same 8-request flow (link → birth date with the consent → number page → number → documents
with a 1 MB photo → submit → receipt), driven through the real app with Flask's test client:

- SQL statements per request, counted by a ``before_cursor_execute`` listener on the engine;
- CPU milliseconds per request in the server (``time.process_time`` around the WSGI call, so
  the test client's own work of building the multipart body is not counted).

It builds a scratch instance (embedded SQLite by default, ``--pg`` for a scratch PostgreSQL
database from DATABASE_URL or the local server), runs one warm-up flow, then ``--flows``
measured flows and prints the median per step. ``--cprofile N`` also prints the N functions
with the most own CPU time (the profiler counts CPU, not wall time: waits for PostgreSQL and
Redis do not count) over the measured flows. Rate limits stay on (the
per-IP limits lifted as in the load benchmark; counted in Redis as production does, or
``--limiter memory``), so their cost is counted too.

The floor: the same flow's photo work and sealing and nothing else (``floor_flow``: the number
normalised and sealed, both documents cleaned by ``app.collection.uploads`` and sealed, the
manifest sealed; no HTTP, session, CSRF, rate limit, template, audit or database), measured in
the same run; the script prints ours ÷ floor (the target is 1.5×).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.public_form_load import (  # noqa: E402
    BIRTH,
    _limiter_uri,
    _pg_exec,
    _pg_server,
    photo_1mb,
    prepare,
    small_pdf,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

STEPS = (
    "GET /r/<token>",
    "GET /verify",
    "POST /verify",
    "GET number",
    "POST number",
    "POST documents",
    "POST /submit",
    "GET /done",
)


class Meter:
    """WSGI middleware: CPU time and SQL statements of each request, optionally profiled."""

    def __init__(self, wsgi_app, engine) -> None:
        from sqlalchemy import event

        self.wsgi_app = wsgi_app
        self.statements = 0
        self.profiler: cProfile.Profile | None = None
        self.last: tuple[int, float] = (0, 0.0)
        self.trace: list[str] | None = None
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, _conn, _cursor, statement, *_args) -> None:
        self.statements += 1
        if self.trace is not None:
            self.trace.append(" ".join(statement.split())[:160])

    def __call__(self, environ, start_response):
        before = self.statements
        if self.profiler is not None:
            self.profiler.enable()
        cpu = time.process_time()
        try:
            body = b"".join(self.wsgi_app(environ, start_response))
        finally:
            cpu = time.process_time() - cpu
            if self.profiler is not None:
                self.profiler.disable()
        self.last = (self.statements - before, cpu * 1000)
        if self.trace is not None:
            self.trace.append(f"-- {environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return [body]


def one_flow(client, meter: Meter, token: str, ref: str, number: str, photo, pdf) -> list:
    """The flow a browser takes for one person (the load benchmark's): link → birth date and
    consent → number → documents → submit → receipt; returns (statements, cpu ms) per step."""
    out = []

    def step(response, status: int):
        assert response.status_code == status, (len(out), response.status_code)
        out.append(meter.last)
        return response.get_data(as_text=True)

    y, m, d = BIRTH
    step(client.get(f"/r/{token}"), 302)
    csrf = CSRF.search(step(client.get("/verify"), 200)).group(1)
    data = {"csrf_token": csrf, "year": str(y), "month": str(m), "day": str(d), "agree": "yes"}
    step(client.post("/verify", data=data), 302)
    csrf = CSRF.search(step(client.get(f"/p/{ref}/number"), 200)).group(1)  # a fresh session
    step(
        client.post(
            f"/p/{ref}/number",
            data={"csrf_token": csrf, "number": number, "number_confirm": number},
        ),
        302,
    )
    step(
        client.post(
            f"/p/{ref}/documents",
            data={
                "csrf_token": csrf,
                "combination": "other",
                "number_doc_type": "notice_card",
                "identity_doc_type": "license",
                "number_doc": (io.BytesIO(pdf), "notice.pdf"),
                "identity_doc": (io.BytesIO(photo), "license.jpg"),
            },
            content_type="multipart/form-data",
        ),
        302,
    )
    step(client.post("/submit", data={"csrf_token": csrf}), 302)
    body = step(client.get("/done"), 200)
    assert "MN-" in body
    return out


def floor_flow(public_key, number: str, photo: bytes, pdf: bytes, limits: dict) -> float:
    """CPU milliseconds of the flow's irreducible work, nothing else: the number normalised
    and sealed, both documents checked and cleaned (the photo decoded and re-encoded) and
    sealed, their digests, and the manifest over them sealed — the same functions the form
    calls, without HTTP, session, CSRF, rate limits, templates, audit or database."""
    import hashlib

    from app.collection import parts, uploads
    from app.core import mynumber
    from app.vault import sealing

    cpu = time.process_time()
    request_id, submission_id = uuid.uuid4(), uuid.uuid4()
    payloads = [parts.number_payload(mynumber.normalize(number))]
    for data in (pdf, photo):
        payloads.append(
            uploads.process(
                data,
                max_bytes=limits["INTAKE_MAX_FILE_BYTES"],
                max_pixels=limits["INTAKE_MAX_IMAGE_PIXELS"],
            ).data
        )
    digests = []
    for payload in payloads:
        info = sealing.part_info(request_id, submission_id, uuid.uuid4())
        digests.append(hashlib.sha256(sealing.seal(public_key, info, payload)).hexdigest())
    manifest = json.dumps({"parts": digests}, sort_keys=True).encode()
    sealing.seal(public_key, sealing.manifest_info(request_id, submission_id), manifest)
    return (time.process_time() - cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=5, help="measured flows (after 1 warm-up)")
    parser.add_argument("--pg", action="store_true", help="scratch PostgreSQL, not SQLite")
    parser.add_argument("--cprofile", type=int, default=0, help="print the top N functions")
    parser.add_argument(
        "--limiter", choices=("redis", "memory"), default="redis", help="rate-limit storage"
    )
    parser.add_argument("--sort", default="tottime", help="cProfile order (tottime, cumtime)")
    parser.add_argument("--trace", action="store_true", help="print the SQL of the last flow")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mnv-profile-"))
    db_name = None
    if args.pg:
        db_name = f"mnv_prof_{uuid.uuid4().hex[:10]}"
        _pg_exec(f'CREATE DATABASE "{db_name}"')
        db_url = (
            _pg_server().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{db_name}"
        )
    else:
        db_url = f"sqlite:///{home / 'mynumber.db'}"
    try:
        links = prepare(home, db_url, args.flows + 1)
        import public_form
        from app.core.mynumber import make_valid
        from app.models import db

        form = public_form.create_app(
            {
                "MYNUMBER_HOME": str(home),
                "SQLALCHEMY_DATABASE_URI": db_url,
                "RATELIMIT_STORAGE_URI": _limiter_uri(args.limiter),
                "RATELIMIT_KEY_PREFIX": f"mnvprof{uuid.uuid4().hex[:8]}",
                "INTAKE_RATE_LIMIT_IP": "1000000 per minute",
                "INTAKE_RATE_LIMIT_TOKEN_LOOKUP": "1000000 per minute",
            }
        )
        with form.app_context():
            engine = db.engine
        meter = Meter(form.wsgi_app, engine)
        form.wsgi_app = meter
        photo, pdf = photo_1mb(), small_pdf()
        flows = []
        for i, (token, ref) in enumerate(links):
            if i == 1 and args.cprofile:
                meter.profiler = cProfile.Profile(time.process_time)
            if args.trace and i == len(links) - 1:
                meter.trace = []
            client = form.test_client()
            number = make_valid(f"{32000000000 + i:011d}")
            result = one_flow(client, meter, token, ref, number, photo, pdf)
            if i > 0:  # the first flow warms caches (templates, imports, connections)
                flows.append(result)
        with form.app_context():
            db.engine.dispose()
        key = form.extensions["intake_public_key"]
        floor_number = make_valid("32999999999")
        floor_flow(key, floor_number, photo, pdf, form.config)  # warm-up
        floors = [floor_flow(key, floor_number, photo, pdf, form.config) for _ in flows]

        rows = []
        for n, name in enumerate(STEPS):
            stmts = round(statistics.median(f[n][0] for f in flows))
            cpu = statistics.median(f[n][1] for f in flows)
            rows.append({"step": name, "statements": stmts, "cpu_ms": round(cpu, 1)})
        totals = [(sum(s for s, _ in f), sum(c for _, c in f)) for f in flows]
        summary = {
            "database": "postgresql" if args.pg else "sqlite",
            "flows": len(flows),
            "statements_per_flow": round(statistics.median(t[0] for t in totals)),
            "cpu_ms_per_flow": round(statistics.median(t[1] for t in totals), 1),
            "requests_per_flow": len(STEPS),
            "floor_cpu_ms_per_flow": round(statistics.median(floors), 1),
            "photo_bytes": len(photo),
            "steps": rows,
        }
        print(f"{'step':<18}{'SQL':>6}{'CPU ms':>9}")
        for row in rows:
            print(f"{row['step']:<18}{row['statements']:>6}{row['cpu_ms']:>9.1f}")
        print(
            f"{'flow (median)':<18}{summary['statements_per_flow']:>6}"
            f"{summary['cpu_ms_per_flow']:>9.1f}   ({summary['database']}, "
            f"{summary['flows']} flows, photo {len(photo):,} bytes)"
        )
        summary["ratio_to_floor"] = round(
            summary["cpu_ms_per_flow"] / summary["floor_cpu_ms_per_flow"], 2
        )
        print(
            f"floor (photo work + sealing only): {summary['floor_cpu_ms_per_flow']:.1f} ms CPU; "
            f"ours {summary['cpu_ms_per_flow']:.1f} ms = {summary['ratio_to_floor']:.2f}x the "
            f"floor, {len(STEPS)} requests, {summary['statements_per_flow']} statements; "
            f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        if args.cprofile and meter.profiler is not None:
            stream = io.StringIO()
            stats = pstats.Stats(meter.profiler, stream=stream)
            stats.sort_stats(args.sort).print_stats(args.cprofile)
            print(stream.getvalue())
        if meter.trace:
            print("\n".join(meter.trace))
        if args.json:
            args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=1))
        return 0
    finally:
        if db_name:
            try:
                _pg_exec(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001
                print(f"could not drop {db_name}: {exc}", file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
