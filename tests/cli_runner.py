"""Run ``mynumber`` as its own process, started by fork from the test process.

A fresh interpreter spends ~2.5 s of CPU importing Flask-AppBuilder, SQLAlchemy and the
application before the command even starts, and the suite runs the command some 200 times.
A forked child starts with those modules loaded but is otherwise a separate process, as an
operator's shell would start: only the environment it is given, an empty context (no app
of the test's pushed), its own app, key ring and database connections, its own exit code;
stdout and stderr come back through pipes (never a temporary file).
``MYNUMBER_TEST_CLI=exec`` runs a fresh interpreter instead.

Tests that kill a running command (tests/faults) start a real interpreter with Popen.
"""

from __future__ import annotations

import contextvars
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 300):
    """``mynumber ARGS`` with ENV as its whole environment: a CompletedProcess (text)."""
    argv = [str(a) for a in args]
    if os.environ.get("MYNUMBER_TEST_CLI") == "exec":
        return subprocess.run(
            [sys.executable, "-c", "from app.cli import main; main()", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        os.close(out_r)
        os.close(err_r)
        _child(argv, env, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    readers = [threading.Thread(target=_drain, args=(fd, chunks[fd])) for fd in chunks]
    for reader in readers:
        reader.start()
    returncode = _wait(pid, timeout, argv)
    for reader in readers:
        reader.join()
    stdout = b"".join(chunks[out_r]).decode("utf-8", "replace")
    stderr = b"".join(chunks[err_r]).decode("utf-8", "replace")
    return subprocess.CompletedProcess(["mynumber", *argv], returncode, stdout, stderr)


def _child(argv: list[str], env: dict[str, str], out_w: int, err_w: int) -> None:
    code = 1
    try:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.close(out_w)
        os.close(err_w)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
        os.environ.clear()
        os.environ.update(env)
        os.chdir(ROOT)
        # pytest's log handlers came along with the fork; the command sets up its own.
        logging.getLogger().handlers.clear()
        from app.cli import main

        code = contextvars.Context().run(_main, main, argv)
    except BaseException:  # noqa: BLE001 - whatever escapes is what a shell would see
        traceback.print_exc()
        code = 1
    finally:
        try:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _main(main, argv: list[str]) -> int:
    """The command in an empty context: the test's app context is not the command's."""
    try:
        main(argv)
        return 0
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)  # what the interpreter does with a message
        return 1


def _drain(fd: int, into: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as stream:
        while chunk := stream.read(65536):
            into.append(chunk)


def _wait(pid: int, timeout: float, argv: list[str]) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise subprocess.TimeoutExpired(["mynumber", *argv], timeout)
        time.sleep(0.01)
