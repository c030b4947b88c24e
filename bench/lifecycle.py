"""Timing of the storage lifecycle on a scratch instance.

    .venv/bin/python bench/lifecycle.py [--people 5000] [--sqlite]

Builds a scratch instance (its own PostgreSQL database from DATABASE_URL or the local server;
``--sqlite`` for the embedded file) with N employees, each with a number and an address,
then measures: the encrypted backup, the restore into an empty database, the return archive
and its verification, and a disposal of a third of the people (execution and compaction
separately). Prints one line per step; nothing is kept afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _pg_url(name: str | None = None) -> str:
    import re

    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    url = re.sub(r"^postgres(ql)?(\+psycopg2?)?://", "postgresql://", url)
    return url if name is None else url.rsplit("/", 1)[0] + "/" + name


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_pg_url(), autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from app.access.policy import ShellActor
    from app.core.mynumber import make_valid
    from app.lifecycle import backup, disposal, holders, returns
    from app.models import DisposalItem, DisposalRequest, PersonKind, db, utcnow
    from app.people import registry
    from app.platform.instance import initialise
    from app.vault import sealed
    from app.web.factory import create_app

    root = Path(tempfile.mkdtemp(prefix="mnv-bench-lifecycle-"))
    created: list[str] = []
    try:
        overrides = {"MYNUMBER_HOME": str(root / "home"), "RATELIMIT_ENABLED": False}
        if args.sqlite:
            overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{root / 'home' / 'mynumber.db'}"
        else:
            name = f"mnv_bench_lc_{uuid.uuid4().hex[:8]}"
            _admin(f'CREATE DATABASE "{name}"')
            created.append(name)
            overrides["SQLALCHEMY_DATABASE_URI"] = _pg_url(name).replace(
                "postgresql://", "postgresql+psycopg://", 1
            )
        app = create_app(overrides)
        initialise(app, "Bench-Passw0rd!")
        cli = ShellActor(name="cli:bench")  # the command line, as `mynumber` runs these
        with app.app_context():
            session, vault = db.session, app.extensions["mynumber_vault"]
            start = time.perf_counter()
            ids = []
            for i in range(args.people):
                person = registry.add_person(
                    session,
                    vault,
                    kind=PersonKind.EMPLOYEE,
                    name=f"試験 {i:06d}",
                    code=f"B{i:06d}",
                    birth_date=dt.date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
                    address=f"東京都千代田区試験町{i}",
                )
                registry.register_number(
                    session, vault, person, make_valid(f"{i + 1:011d}"), "import"
                )
                ids.append(person.id)
                if i % 1000 == 999:
                    session.commit()
            session.commit()
            print(f"setup            {args.people} people in {time.perf_counter() - start:6.1f} s")

            def step(label: str, func):
                began = time.perf_counter()
                result = func()
                print(f"{label:<16} {time.perf_counter() - began:6.2f} s  {result}")
                return result

            file = root / "b.mnvbak"
            step(
                "backup",
                lambda: f"{backup.create_backup(session, vault, cli, file).size_bytes:,} bytes",
            )
            private_text, public_text = sealed.generate_recipient()
            archive = root / "r.mnva"
            step(
                "return-export",
                lambda: (
                    f"{returns.export_archive(session, vault, cli, archive, sealed.load_public(public_text), 'bench', client_name='bench', audit_public_pem=vault.keys.audit_public_key_pem()).size:,} bytes"
                ),
            )
            public = vault.keys.audit_signing_key().public_key()
            step(
                "verify",
                lambda: returns.verify_archive(session, vault, archive, public).ok,
            )
            step(
                "open-archive",
                lambda: len(
                    sealed.open_archive(
                        archive,
                        sealed.load_private(private_text),
                        root / "o",
                        operator_key=public,  # the key the client pinned
                    ).files
                ),
            )
            doomed = ids[: args.people // 3]
            req = DisposalRequest(
                kind="data",
                scope="people",
                reason="bench",
                planned_count=len(doomed),
                requested_by_name="bench",
                status="approved",
                decided_by_name="bench",
                decided_at=utcnow(),
            )
            session.add(req)
            session.flush()
            session.execute(
                DisposalItem.__table__.insert(),
                [{"request_id": req.id, "person_id": p, "person_kind": "employee"} for p in doomed],
            )
            session.commit()
            result = step(
                "dispose",
                lambda: (
                    disposal.execute(
                        session,
                        vault,
                        cli,
                        req.id,
                        app.config["DISPOSAL_JOURNAL_FILE"],
                        compact=False,
                    ).request.person_count
                ),
            )
            step(
                "compact",
                lambda: holders.compact_storage(session, holders.touched_tables())["backend"],
            )
            assert result == len(doomed)
        # Restore the backup (taken before the disposal) into an empty database.
        target = dict(overrides)
        if args.sqlite:
            target["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{root / 'home' / 'restored.db'}"
        else:
            name = f"mnv_bench_lc_{uuid.uuid4().hex[:8]}"
            _admin(f'CREATE DATABASE "{name}"')
            created.append(name)
            target["SQLALCHEMY_DATABASE_URI"] = _pg_url(name).replace(
                "postgresql://", "postgresql+psycopg://", 1
            )
        restored_app = create_app(target)
        with restored_app.app_context():
            directory = restored_app.extensions["migrate"].directory
            began = time.perf_counter()
            restored = backup.restore(
                db.session,
                restored_app.extensions["mynumber_vault"],
                cli,
                file,
                journal=restored_app.config["DISPOSAL_JOURNAL_FILE"],
                upgrade=lambda: upgrade(directory=directory),
            )
            print(
                f"{'restore':<16} {time.perf_counter() - began:6.2f} s  re-applied "
                f"{restored.reapplied_people} disposals"
            )
            db.engine.dispose()
        with app.app_context():
            db.engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for name in created:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
