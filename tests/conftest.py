"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

An initialised "golden" instance (schema, key ring, roles, admin) is built once per backend
per run; each test gets a copy: the instance folder copied, and on PostgreSQL a new database
cloned from a template. PostgreSQL is found through ``DATABASE_URL`` (default: the local
server); when it is absent the PostgreSQL half is skipped with a reason, except under
``CI=true``, where an absent service is a failure.

A test that asks for ``key_provider`` runs once with the file key ring and once with the
PKCS#11 provider against a private SoftHSM2 token (``softhsm_token``); the golden instance
is built per database and provider, its token folder copied for each test like its home.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from flask.testing import FlaskClient

from tests import build_caches, support

ADMIN_PASSWORD = "Admin-Passw0rd!"
# The golden instance's `admin` has enrolled this TOTP secret, as at its first sign-in (every
# account needs the second factor); `login("admin", ADMIN_PASSWORD)` uses it.
ADMIN_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER_PASSWORD = "Str0ng-Passw0rd!"
TEST_IDENTITY = {
    "CLIENT_NAME": "見本機構",
    "OPERATOR_NAME": "見本BPO株式会社",
    "MAIL_FROM": "mynumber@bpo.example.jp",
    "DESK_PHONE": "03-5555-0100",
    "DESK_EMAIL": "desk@bpo.example.jp",
}

build_caches.install()

# Test databases need no durability against a power cut (see _create_test_database).
os.environ.setdefault("MYNUMBER_SQLITE_SYNCHRONOUS", "OFF")

# Tests must never write into the developer's own instance.
os.environ.pop("MYNUMBER_HOME", None)


def _pg_server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    return re.sub(r"^postgres(ql)?(\+psycopg2?)?://", "postgresql://", url)


def _pg_available() -> str | None:
    """None when reachable, else the reason."""
    try:
        import psycopg

        with psycopg.connect(_pg_server_url(), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL に接続できません（{_pg_server_url()}）: {type(exc).__name__}"


def _pg_admin(*statements: str) -> None:
    import psycopg

    with psycopg.connect(_pg_server_url(), autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def _create_test_database(name: str, template: str | None = None) -> None:
    """A test database whose commits do not wait for the WAL to reach the disk.

    Tests commit thousands of times and need no durability against a power cut; an fsync per
    commit (several ms on this kind of disk) was a large share of the suite's time. A crash
    test that needs durable commits uses its own private cluster (tests/faults).
    """
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    _pg_admin(create, f'ALTER DATABASE "{name}" SET synchronous_commit = off')


def _pg_db_url(name: str) -> str:
    base = _pg_server_url().rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass
class Golden:
    backend: str
    home: Path
    db_name: str | None
    provider: str = "file"
    token: SoftHsmToken | None = None


# -- SoftHSM2: a private PKCS#11 token per test --------------------------------------------------
SOFTHSM_MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
SOFTHSM_TOKEN_LABEL = "mnv-test"
SOFTHSM_PIN = "test-user-pin-1234"


def _softhsm_missing() -> str | None:
    """None when SoftHSM2 (Debian ``softhsm2``) can serve a token, else the reason."""
    if not Path(SOFTHSM_MODULE).exists():
        return f"SoftHSM2 の PKCS#11 モジュールがありません（{SOFTHSM_MODULE}; apt-get install softhsm2）"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util がありません（apt-get install softhsm2）"
    return None


@dataclass
class SoftHsmToken:
    """A SoftHSM2 token folder of its own, with the configuration file that points at it."""

    folder: Path

    @property
    def conf(self) -> Path:
        return self.folder / "softhsm2.conf"

    @classmethod
    def create(cls, folder: Path, label: str = SOFTHSM_TOKEN_LABEL) -> SoftHsmToken:
        import subprocess

        token = cls(folder)
        token._write_conf()
        env = {**os.environ, "SOFTHSM2_CONF": str(token.conf)}
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label]
            + ["--pin", SOFTHSM_PIN, "--so-pin", SOFTHSM_PIN + "-so"],
            env=env,
            check=True,
            capture_output=True,
        )
        return token

    def copy(self, folder: Path) -> SoftHsmToken:
        """The same token (keys included) in another folder: what it holds can change there
        without touching this one."""
        shutil.copytree(self.folder / "tokens", folder / "tokens")
        token = SoftHsmToken(folder)
        token._write_conf()
        return token

    def _write_conf(self) -> None:
        (self.folder / "tokens").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"directories.tokendir = {self.folder / 'tokens'}\n"
            "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            encoding="utf-8",
        )

    def use(self) -> None:
        """Point this process's SoftHSM at this token. SoftHSM reads its configuration when
        the library is initialised, so the library is initialised again."""
        from app.vault.hsm import reset_library

        os.environ["SOFTHSM2_CONF"] = str(self.conf)
        reset_library(SOFTHSM_MODULE)

    def settings(self, home: Path) -> dict:
        """create_app() settings for the PKCS#11 provider on this token (PIN in a 0600 file)."""
        pin_file = home / "hsm.pin"
        if not pin_file.exists():
            home.mkdir(parents=True, exist_ok=True)
            pin_file.write_text(SOFTHSM_PIN + "\n", encoding="utf-8")
            pin_file.chmod(0o600)
        return {
            "KEY_PROVIDER": "pkcs11",
            "PKCS11_MODULE": SOFTHSM_MODULE,
            "PKCS11_TOKEN_LABEL": SOFTHSM_TOKEN_LABEL,
            "PKCS11_PIN_FILE": str(pin_file),
        }


_RUN = uuid.uuid4().hex[:8]
_goldens: dict[tuple[str, str], Golden] = {}
_created_dbs: list[str] = []


class _Dropper:
    """Drops finished test databases on a background thread.

    PostgreSQL checkpoints on every DROP DATABASE (~0.4 s here, the disk discards every
    freed file); done at the end of the session that is hundreds of checkpoints in a row.
    Dropping each one as its test ends hides most of that cost behind the next tests.
    """

    def __init__(self) -> None:
        import queue
        import threading

        self.queue: queue.Queue = queue.Queue()
        self.dropped: set[str] = set()
        # One thread: concurrent DROPs were measured no faster (they serialise anyway).
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            name = self.queue.get()
            try:
                if name is not None:
                    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    self.dropped.add(name)
            except Exception:  # noqa: BLE001 - best effort; the session end retries
                pass
            finally:
                self.queue.task_done()

    def drop_later(self, name: str) -> None:
        self.queue.put(name)

    def wait(self) -> None:
        self.queue.join()


_dropper: _Dropper | None = None


class _SpareDatabases:
    """Test databases cloned from the golden template ahead of need, on a background thread.

    CREATE DATABASE copies the template through the WAL (~10 MB; 0.2-1 s here, most of it
    waiting on the disk). Made while the previous test runs, a test only takes one. Each
    name is recorded before its database is made, so the session end drops it either way.
    """

    def __init__(self, template: str, ready: int = 2) -> None:
        import queue
        import threading

        self.template = template
        self.queue: queue.Queue = queue.Queue(maxsize=ready)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            name = f"mnv_t_{_RUN}_{uuid.uuid4().hex[:10]}"
            _created_dbs.append(name)
            try:
                _create_test_database(name, self.template)
            except Exception as exc:  # noqa: BLE001 - handed to the test that takes it
                self.queue.put(exc)
                continue
            self.queue.put(name)  # waits while `ready` databases are waiting

    def take(self) -> str:
        item = self.queue.get(timeout=300)
        if isinstance(item, Exception):
            raise item
        return item


_spares: dict[str, _SpareDatabases] = {}


def _drop_later(name: str) -> None:
    global _dropper
    if _dropper is None:
        _dropper = _Dropper()
    _dropper.drop_later(name)


def _build_golden(backend: str, root: Path, provider: str = "file") -> Golden:
    from app.cli.instance import initialise
    from app.web.factory import create_app

    name = backend if provider == "file" else f"{backend}-{provider}"
    home = root / f"golden-{name}"
    overrides = {"MYNUMBER_HOME": str(home), "RATELIMIT_ENABLED": False}
    token = None
    if provider == "pkcs11":
        token = SoftHsmToken.create(root / f"softhsm-{name}")
        token.use()
        overrides.update(token.settings(home))
    db_name = None
    if backend == "postgres":
        db_name = f"mnv_tpl_{_RUN}_{provider}"
        _create_test_database(db_name)
        _created_dbs.append(db_name)
        overrides["SQLALCHEMY_DATABASE_URI"] = _pg_db_url(db_name)
    else:
        overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{home / 'mynumber.db'}"
    app = create_app(overrides)
    initialise(app, ADMIN_PASSWORD)
    enrol_admin_totp(app)
    from app.models import db

    with app.app_context():
        db.engine.dispose()
    return Golden(backend, home, db_name, provider, token)


def enrol_admin_totp(app, secret: str = ADMIN_TOTP_SECRET) -> None:
    """Give the `admin` made by `mynumber init` the TOTP secret it would enrol at first
    sign-in (the enrolment itself is tested in tests/web/test_security.py)."""
    from app.models import VaultUser, db, utcnow

    with app.app_context():
        admin = db.session.execute(db.select(VaultUser).filter_by(username="admin")).scalar_one()
        vault = app.extensions["mynumber_vault"]
        admin.totp_secret_enc = vault.seal_system("totp", f"user:{admin.id}", secret.encode())
        admin.totp_enrolled_at = utcnow()
        db.session.commit()


@pytest.fixture(scope="session")
def _golden_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("goldens")
    yield root
    dropped: set[str] = set()
    if _dropper is not None:
        _dropper.wait()
        dropped = _dropper.dropped
    # What the dropper could not drop (and the templates, last), on one connection.
    left = [name for name in reversed(_created_dbs) if name not in dropped]
    if left:
        try:
            _pg_admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in left))
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass


def pytest_collection_modifyitems(config, items):
    """A test marked ``only_backend("postgres")`` (say, PostgreSQL roles) is not collected for
    the other database at all: a skip there would read, under CI, like a missing service."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("only_backend")
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
        if marker and backend and backend != marker.args[0]:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # The longest tests first, so that with several workers none is left running one of them
    # alone at the end (the stable sort keeps every other test in its file order).
    keep.sort(key=_long_first)
    items[:] = keep


# Tests that take minutes (a browser walking every screen) or tens of seconds (subprocesses
# killed mid-transaction, a private PostgreSQL restarted).
_LONG_FIRST = ("tests/manual/", "tests/faults/", "tests/lifecycle/test_cli.py")


def _long_first(item) -> int:
    return next(
        (i for i, prefix in enumerate(_LONG_FIRST) if item.nodeid.startswith(prefix)),
        len(_LONG_FIRST),
    )


@pytest.fixture(autouse=True)
def _instance_log_handlers_end_with_the_test():
    """``create_app`` attaches a file handler for its instance's log to the root logger
    (``app.core.logsafe.install``): once per process in production, but once per test here. Left
    in place, every later log line of the run was written to every earlier test's log file
    (quadratic: hundreds of files per line by the end of a run)."""
    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and handler not in before:
            root.removeHandler(handler)
            handler.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> str:
    if request.param == "postgres":
        reason = _pg_available()
        if reason:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true では PostgreSQL が必須です: {reason}")
            pytest.skip(reason)
    return request.param


@pytest.fixture(params=["file", pytest.param("pkcs11", marks=pytest.mark.pkcs11)])
def key_provider(request) -> str:
    """Who holds the KEKs: the key ring file, or a SoftHSM2 token through PKCS#11. Only the
    tests that ask for it run twice (the vault, rotation, retirement, backups, import)."""
    if request.param == "pkcs11":
        reason = _softhsm_missing()
        if reason:
            _service_missing(reason)
    return request.param


@pytest.fixture
def instance(backend, _golden_root, tmp_path, request) -> dict:
    """A fresh copy of the initialised golden instance: settings for create_app()."""
    provider = "file"
    if "key_provider" in request.fixturenames:
        provider = request.getfixturevalue("key_provider")
    golden = _goldens.get((backend, provider))
    if golden is None:
        golden = _goldens[(backend, provider)] = _build_golden(backend, _golden_root, provider)
    home = tmp_path / "instance"
    shutil.copytree(golden.home, home)
    conf_before = os.environ.get("SOFTHSM2_CONF")
    token = None
    if golden.token is not None:
        token = golden.token.copy(tmp_path / "softhsm")
        token.use()
    overrides = {
        "MYNUMBER_HOME": str(home),
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        # Jobs run inline unless a test asks for Redis itself (see tests/jobs).
        "REDIS_URL": None,
        "SMTP_URL": None,
        # Who the instance speaks for, as `mynumber init` records it (tests/cli/test_instance.py
        # checks that sending and printing refuse without them).
        **TEST_IDENTITY,
        # Most tests do not serve the public form; those that check its health
        # (tests/collection/test_readiness.py, the `run` end-to-end tests) turn this on.
        "FORM_CHECK_TIMEOUT": 0,
    }
    if backend == "postgres":
        spares = _spares.get(golden.db_name)
        if spares is None:
            spares = _spares[golden.db_name] = _SpareDatabases(golden.db_name)
        name = spares.take()
        overrides["SQLALCHEMY_DATABASE_URI"] = _pg_db_url(name)
        overrides["TEST_PG_DB"] = name
    else:
        overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{home / 'mynumber.db'}"
    if token is not None:
        overrides.update(token.settings(home))
    yield overrides
    if "TEST_PG_DB" in overrides:
        _drop_later(overrides["TEST_PG_DB"])
    if token is not None:
        if conf_before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = conf_before


@pytest.fixture
def softhsm_token(tmp_path) -> SoftHsmToken:
    """A private, empty SoftHSM2 token (label ``mnv-test``) that this process now uses."""
    reason = _softhsm_missing()
    if reason:
        _service_missing(reason)
    before = os.environ.get("SOFTHSM2_CONF")
    token = SoftHsmToken.create(tmp_path / "softhsm-own")
    token.use()
    yield token
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


@pytest.fixture
def app(instance):
    from app.models import db
    from app.web.factory import create_app

    application = create_app(instance)
    ctx = application.app_context()
    ctx.push()
    yield application
    db.session.remove()
    db.engine.dispose()
    ctx.pop()


@pytest.fixture
def session(app):
    from app.models import db

    return db.session


@pytest.fixture
def vault(app):
    return app.extensions["mynumber_vault"]


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (its own ``g`` and database session), as in a
    real server, even though the test itself holds one open for its service calls."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = FreshContextClient
    return app.test_client()


@functools.cache
def _user_password_hash() -> str:
    """USER_PASSWORD hashed once per process, with few PBKDF2 rounds.

    FAB's scrypt costs ~0.15 s of CPU per hash and again per sign-in: over a run, minutes.
    Signing in still runs FAB's real check (the hash names its method); that a password set
    through the portal is stored as scrypt is tested in tests/web/test_security.py.
    """
    from werkzeug.security import generate_password_hash

    return generate_password_hash(USER_PASSWORD, method="pbkdf2:sha256:1000", salt_length=16)


@pytest.fixture
def make_user(app):
    """Create a portal user with a role; Operator/ClientStaff get an approved roster entry
    and an enrolled TOTP secret unless told otherwise. Returns (user, totp_secret)."""
    from app.models import HandlerRosterEntry, VaultUser, db, utcnow

    def factory(
        role: str, username: str | None = None, roster: str | None = "approved", totp: bool = True
    ):
        sm = app.appbuilder.sm
        username = username or f"{role.lower()}-{uuid.uuid4().hex[:6]}"
        user = sm.add_user(
            username=username,
            first_name=role,
            last_name="テスト",
            email=f"{username}@example.jp",
            role=sm.find_role(role),
            hashed_password=_user_password_hash(),
        )
        user = db.session.get(VaultUser, user.id)
        if roster:
            entry = HandlerRosterEntry(
                name=f"{role} 担当",
                department="人事部",
                title="担当",
                nationality="日本",
                status=roster,
                approved_by="発注者 人事部長" if roster == "approved" else None,
                approved_at=utcnow() - dt.timedelta(days=1) if roster == "approved" else None,
            )
            db.session.add(entry)
            db.session.flush()
            user.roster_entry_id = entry.id
        secret = None
        if totp:
            secret = pyotp.random_base32()
            vault = app.extensions["mynumber_vault"]
            user.totp_secret_enc = vault.seal_system("totp", f"user:{user.id}", secret.encode())
            user.totp_enrolled_at = utcnow()
        db.session.commit()
        return user, secret

    return factory


@pytest.fixture
def login(client):
    """Sign a user in through the real login (and TOTP) pages.

    The code entered is one whose time step the user has not used yet (a used one is refused
    as a replay), so a test may sign the same user in again. `admin` uses the golden
    instance's enrolled secret unless told otherwise."""

    def do_login(username: str, password: str = USER_PASSWORD, totp_secret: str | None = None):
        if username == "admin" and totp_secret is None:
            totp_secret = ADMIN_TOTP_SECRET
        response = support.post_form(
            client, "/login/", {"username": username, "password": password}
        )
        if totp_secret and response.headers.get("Location", "").endswith("/totp/"):
            code = support.unused_totp_code(client.application, username, totp_secret)
            response = support.post_form(client, "/totp/", {"code": code})
        return response

    return do_login


def _service_missing(reason: str) -> None:
    """Skip with the reason on a user's machine; fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true では必須のサービスがありません: {reason}")
    pytest.skip(reason)


@pytest.fixture
def redis_url():
    """A reachable Redis (``REDIS_URL`` or the local one)."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        from redis import Redis

        Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        _service_missing(f"Redis に接続できません（{url}）: {type(exc).__name__}")
    return url


@pytest.fixture
def rq_app(app, redis_url):
    """The app switched to Redis, with a queue of its own so parallel runs never meet."""
    app.config["REDIS_URL"] = redis_url
    app.config["JOB_QUEUE"] = f"mnv-test-{uuid.uuid4().hex[:10]}"
    yield app
    from app.platform.queue import queue

    q = queue()
    q.empty()
    q.delete(delete_jobs=True)


@dataclass
class SmtpSink:
    url: str
    messages: list


@pytest.fixture
def smtp_server():
    """A real SMTP server in-process (aiosmtpd) that keeps what it receives."""
    import socket
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
            received.append(message_from_bytes(envelope.original_content, policy=policy.default))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpSink(f"smtp://127.0.0.1:{port}", received)
    controller.stop()


def pdf_text(data: bytes) -> str:
    """All text of a PDF (pypdf), for assertions on Japanese content."""
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def needs_pdf():
    from app.platform.pdf import japanese_font_installed

    try:
        import weasyprint  # noqa: F401
    except OSError as exc:
        _service_missing(f"WeasyPrint のライブラリがありません: {exc}")
    if not japanese_font_installed():
        _service_missing("日本語フォント（fonts-ipaexfont）がありません")
