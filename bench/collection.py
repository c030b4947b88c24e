"""Collection benchmark: loading a target list and rendering a print batch.

    .venv/bin/python bench/collection.py [--households 2000] [--kits 200] [--postgres]

1. builds a scratch instance (embedded SQLite, or its own PostgreSQL database with
   ``--postgres``: DATABASE_URL or the local server);
2. generates a target CSV of N employee households (one dependent each; half by e-mail,
   half by post) and times ``targets.load`` (validation of the whole file, people with their
   data keys and encrypted addresses, one request per household with its derived link);
3. times a print batch of the first ``--kits`` postal kits (WeasyPrint, one sealed PDF part
   per ``PRINT_CHUNK_LETTERS``) and reports pages and bytes per kit.
Peak memory (ru_maxrss) of the process is printed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _csv(households: int) -> bytes:
    lines = ["職員番号,本人区分,続柄,氏名,氏名カナ,生年月日,郵便番号,住所,メールアドレス,送付方法"]
    for i in range(households):
        code = f"B{i:06d}"
        postal = f"{100 + i % 800:03d}-{i % 10000:04d}"
        channel = "メール" if i % 2 else "郵送"
        email = f"user{i}@example.jp" if i % 2 else ""
        lines.append(
            f"{code},本人,,見本 太郎{i},ミホン タロウ,1980/04/01,{postal},"
            f"東京都千代田区丸の内1-{i % 50}-{i % 30},{email},{channel}"
        )
        lines.append(f"{code},扶養親族,子,見本 花子{i},ミホン ハナコ,2012/05/06,,,,")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--kits", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()

    from app.cli.instance import initialise
    from app.collection import campaigns, kits, mailings, targets
    from app.core import jptime
    from app.core.actor import Actor
    from app.models import PrintBatch, PrintBatchFile, db
    from app.web.factory import create_app

    home = Path(tempfile.mkdtemp(prefix="mnv-bench-"))
    overrides = {
        "MYNUMBER_HOME": str(home),
        "RATELIMIT_ENABLED": False,
        "REDIS_URL": None,
        "SMTP_URL": None,
        "OPERATOR_POSTAL_CODE": "100-0005",
        "OPERATOR_ADDRESS": "東京都千代田区丸の内一丁目1番1号",
    }
    db_name = None
    if args.postgres:
        import psycopg

        sys.path.insert(0, str(ROOT))
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
    actor = Actor(name="bench", user_id=None, roles=("Operator",), mfa=True, roster_approved=True)
    try:
        with app.test_request_context():
            session = db.session
            campaign = campaigns.create_campaign(
                session,
                actor,
                name="bench",
                kind="employee",
                deadline=jptime.next_business_day(jptime.today_jst() + dt.timedelta(days=14)),
                purpose_text="源泉徴収票作成事務",
            )
            session.commit()
            data = _csv(args.households)
            start = time.perf_counter()
            _parsed, result = targets.load(
                session,
                app.extensions["mynumber_vault"],
                app.extensions["mynumber_keyring"],
                actor,
                campaign,
                data,
            )
            session.commit()
            load_s = time.perf_counter() - start
            print(
                f"targets: {args.households} households ({2 * args.households} rows, "
                f"{len(data) / 1e6:.1f} MB) validated and loaded in {load_s:.1f} s "
                f"({args.households / load_s:.0f} households/s); requests {result.requests_issued}"
            )
            mailings.prepare(session, campaign)
            session.commit()
            pending = kits.pending_letters(session, campaign.id)
            for extra in pending[args.kits :]:
                extra.status = "cancelled"  # keep the batch to --kits letters
            session.commit()
            start = time.perf_counter()
            batch = kits.create_batch(session, actor, campaign)
            state = kits.render_batch(
                session,
                app.extensions["mynumber_vault"],
                app.extensions["mynumber_keyring"],
                batch.id,
                actor,
            )
            render_s = time.perf_counter() - start
            parts = session.query(PrintBatchFile).filter_by(batch_id=batch.id).all()
            pages = sum(p.pages for p in parts)
            size = sum(p.size_bytes for p in parts)
            count = session.get(PrintBatch, batch.id).item_count
            print(
                f"print batch: {count} kits → {len(parts)} part(s), {pages} pages, "
                f"{size / 1e6:.1f} MB in {render_s:.1f} s ({render_s / count * 1000:.0f} ms/kit, "
                f"{size / count / 1e3:.0f} kB/kit), state {state}"
            )
    finally:
        with app.app_context():
            db.engine.dispose()
        if db_name:
            import psycopg

            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(home, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
