"""Fault-suite fixtures: services of the test's own (a Redis on a free port, a private
PostgreSQL cluster in a temporary folder) that a test may stop and start without touching
the shared ones, and a subject who submits the public form end to end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from app.collection import requests
from app.core.actor import Actor
from app.core.mynumber import make_valid
from app.models import PersonKind
from app.people import registry
from tests.public_form.conftest import BIRTH, PURPOSE, form_app  # noqa: F401 (fixture)

CI = os.environ.get("CI") == "true"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def missing(reason: str) -> None:
    """Skip with the reason; fail under CI=true (as tests/conftest.py does)."""
    if CI:
        pytest.fail(f"CI=true では必須です: {reason}")
    pytest.skip(reason)


class PrivateRedis:
    """A redis-server of this test only, on a free port: stopping it harms nobody."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = folder
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server がありません")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from redis import Redis

        deadline = time.monotonic() + 10
        while True:
            try:
                Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def external_subject(session, vault):
    """An external member with an e-mail address and an issued link."""
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.EXTERNAL,
        name="佐藤 一郎",
        code=f"X{uuid.uuid4().hex[:5]}",
        birth_date=BIRTH,
        email="sato@example.jp",
    )
    req, token = requests.create_request(
        session, Actor.system("test"), person, purpose_text=PURPOSE
    )
    session.commit()
    return {"person": person, "req": req, "token": token}


def submit_alone(subject, person, number: str) -> str:
    """Walk the form as an external member: both factors, consent, number, card, submit.
    Returns the receipt page."""
    ref = str(person.id)
    subject.login(subject.token)
    subject.consent()
    assert subject.number(ref, number).status_code == 302
    assert subject.card(ref).status_code == 302
    response = subject.submit()
    assert response.headers["Location"].endswith("/done"), response.get_data(as_text=True)
    return subject.get("/done").get_data(as_text=True)


NUMBER_A = make_valid("31415926535")
NUMBER_B = make_valid("27182818284")


class PrivatePostgres:
    """A PostgreSQL cluster of this test only (initdb in a temporary folder, a free port):
    restarting it never disturbs the shared server or another engineer's tests."""

    def __init__(self, bin_dir: Path, folder: Path) -> None:
        self.bin = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.server_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust")
        (self.data / "postgresql.auto.conf").write_text(
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.folder}'\nfsync = off\n"
            "full_page_writes = off\nmax_connections = 40\n",
            encoding="utf-8",
        )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def private_postgres():
    import glob
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        missing("PostgreSQL のサーバープログラム（/usr/lib/postgresql/*/bin/initdb）がありません")
    folder = Path(tempfile.mkdtemp(prefix="mnv-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    folder.chmod(0o700)
    server = PrivatePostgres(Path(found[-1]).parent, folder)
    try:
        server.init()
        server.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        missing(f"専用の PostgreSQL を起動できません: {exc.stderr!r}"[:300])
    yield server
    try:
        server.stop("immediate")
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(folder, ignore_errors=True)
