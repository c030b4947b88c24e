"""Shared by the lifecycle tests: a small population, disposals driven through the services,
fresh restore targets, and every byte of the database (raw pages on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
from sqlalchemy import select

from app.core.mynumber import make_valid
from app.lifecycle import disposal
from app.models import DataKey, MyNumberRecord, Person, PersonKind
from app.people import registry
from tests.support import actor


@dataclass
class Someone:
    id: uuid.UUID
    name: str
    kana: str
    code: str
    number: str
    address: str
    traces: list[bytes] = field(default_factory=list)  # ciphertexts, blind index, key


def population(session, vault, n: int = 10, prefix: str = "L") -> list[Someone]:
    """n employees (the last two with a dependent each), all with number and address."""
    out: list[Someone] = []
    for i in range(n):
        code = f"{prefix}{7300 + i}"
        name = f"保管試験{chr(0x4E00 + 37 * i + 11)}{chr(0x4E00 + 53 * i + 7)}"
        kana = "ホカンシケン" + "アイウエオカキクケコサシスセソ"[i] + "タ"
        number = make_valid(f"{(31415926 + 7919 * i) % 10**8:08d}{i:03d}")
        address = f"東京都千代田区試験町{i + 1}-{i + 2}-{i + 3}"
        person = registry.add_person(
            session,
            vault,
            kind=PersonKind.EMPLOYEE,
            name=name,
            name_kana=kana,
            code=code,
            birth_date=dt.date(1970 + i, 1 + i % 12, 1 + i),
            address=address,
            email=f"{code.lower()}@example.jp",
        )
        registry.register_number(session, vault, person, number, "manual")
        out.append(Someone(person.id, name, kana, code, number, address))
    session.commit()
    for someone in out:
        person = session.get(Person, someone.id)
        record = session.execute(
            select(MyNumberRecord).where(MyNumberRecord.person_id == someone.id)
        ).scalar_one()
        key = session.execute(select(DataKey).where(DataKey.person_id == someone.id)).scalar_one()
        someone.traces = [person.address_enc, record.ciphertext, record.blind_index, key.wrapped]
    return out


def user_actor(user, role: str, mfa: bool = True):
    return actor(role, user_id=user.id, name=user.username, mfa=mfa)


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def approved_request(session, vault, make_user, ids, scope="people", **kwargs):
    """A request by an Operator, approved by a ClientStaff user with a fresh TOTP code."""
    operator, _ = make_user("Operator")
    staff, secret = make_user("ClientStaff")
    req = disposal.request_disposal(
        session,
        user_actor(operator, "Operator"),
        scope=scope,
        reason="退職後の保存期間満了",
        person_ids=ids,
        **kwargs,
    )
    disposal.decide(
        session, vault, user_actor(staff, "ClientStaff"), req.id, True, totp_now(secret)
    )
    return req, operator, staff


def dispose(session, vault, app, make_user, ids):
    req, operator, staff = approved_request(session, vault, make_user, ids)
    result = disposal.execute(
        session,
        vault,
        user_actor(operator, "Operator"),
        req.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    assert result.compacted, result.compaction_error
    return result.request


def database_bytes(app) -> list[tuple[str, bytes]]:
    """Every byte of the database: the SQLite file, WAL and shm; on PostgreSQL every page of
    every table, index and TOAST relation as stored, dead row versions included (pageinspect)."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        path = Path(uri.replace("sqlite:///", "", 1))
        return [
            (str(p), p.read_bytes())
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
            if p.exists()
        ]
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(uri).set(drivername="postgresql")
    found = []
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        conn.execute("CHECKPOINT")
        rels = conn.execute(
            "SELECT c.oid::regclass::text, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't', 'm')"
        ).fetchall()
        for name, kind in rels:
            blocks = conn.execute(
                "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int",
                (name,),
            ).fetchone()[0]
            pages = [
                conn.execute("SELECT get_raw_page(%s, %s)", (name, block)).fetchone()[0]
                for block in range(blocks)
            ]
            found.append((f"pg:{name}:{kind}", b"".join(bytes(p) for p in pages)))
    return found


def traces_left(app, gone: list[Someone]) -> list[str]:
    """Where anything of these people can still be found in the database's bytes."""
    hits = []
    for label, data in database_bytes(app):
        for someone in gone:
            needles = {
                "name": someone.name.encode(),
                "kana": someone.kana.encode(),
                "code": someone.code.encode(),
                "number": someone.number.encode(),
                "address": someone.address.encode(),
            }
            for i, blob in enumerate(someone.traces):
                needles[f"ciphertext{i}"] = bytes(blob)
            for what, needle in needles.items():
                if needle and needle in data:
                    hits.append(f"{label}: {someone.code} {what}")
    return hits


def export_rows(session, vault) -> dict[str, list[list[str]]]:
    """What the client's export (``app.io.exports``) writes now, per layout: rows
    without the header, sorted."""
    import csv
    import io

    from app.access.policy import ShellActor
    from app.io import exports, layouts

    out = {}
    for layout in layouts.list_layouts(session):
        buffer = io.BytesIO()
        exports.export_csv(
            session,
            vault,
            ShellActor(name="cli:test"),
            layout,
            buffer,
            "試験",
            encoding="utf-8-sig",
        )
        rows = list(csv.reader(io.StringIO(buffer.getvalue().decode("utf-8-sig"))))
        out[layout.name] = sorted(rows[1:])
    return out


@contextmanager
def fresh_target(instance: dict, backend: str, home: Path | None = None):
    """A second app on an empty database (same key ring unless ``home`` is given): where a
    backup is restored after the original database is lost."""
    from app.models import db
    from app.web.factory import create_app
    from tests import conftest

    overrides = dict(instance)
    if home is not None:
        overrides["MYNUMBER_HOME"] = str(home)
        overrides.pop("KEYRING_PATH", None)
    root = Path(overrides["MYNUMBER_HOME"])
    if backend == "sqlite":
        overrides["SQLALCHEMY_DATABASE_URI"] = (
            f"sqlite:///{root / f'restored-{uuid.uuid4().hex[:6]}.db'}"
        )
    else:
        name = f"{instance['TEST_PG_DB']}_r{uuid.uuid4().hex[:4]}"
        conftest._create_test_database(name)
        conftest._created_dbs.append(name)
        overrides["SQLALCHEMY_DATABASE_URI"] = conftest._pg_db_url(name)
        overrides["TEST_PG_DB"] = name
    target = create_app(overrides)
    with target.app_context():
        try:
            yield target
        finally:
            db.session.remove()
            db.engine.dispose()
