"""What the command modules share: who a command acts as, and the app's vault and key ring.

CLI actions are audited as ``cli:<os user>``: whoever has a shell on the server also has the
key ring, so the CLI is the operator's own tool, and its use is on the record. Commands run
inside the app context ``flask.cli.with_appcontext`` pushes, which is where the app, its
vault and its key ring come from.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from flask import Flask, current_app

from app.access.policy import OPERATOR, ShellActor
from app.core.actor import Actor
from app.vault.envelopes import Vault
from app.vault.keyring import FileKeyRing


def cli_actor() -> Actor:
    """``cli:<os user>``, the name the audit trail records for whoever ran the command."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return Actor.system(f"cli:{user}")


def shell_actor() -> ShellActor:
    """The command line as a ``ShellActor``: may import and export (see ``app.access.policy``)."""
    return ShellActor(name=cli_actor().name)


def cli_operator() -> Actor:
    """The server account acting as the operator for collection commands. It holds the key
    ring anyway (see the module docstring); what it does is audited as ``cli:<os user>``.
    Paper keying and verification are not offered here: they need two different people."""
    return Actor(name=cli_actor().name, roles=(OPERATOR,), mfa=True, roster_approved=True)


def flask_app() -> Flask:
    """The app itself rather than the ``current_app`` proxy: for what keeps or serves it."""
    return current_app._get_current_object()


def vault() -> Vault:
    return current_app.extensions["mynumber_vault"]


def keyring() -> FileKeyRing:
    return current_app.extensions["mynumber_keyring"]


def read_key(path: Path, what: str) -> bytes:
    """A key file's bytes (the parser refuses what is not a key, in Japanese)."""
    try:
        with path.open("rb") as handle:
            return handle.read(64 * 1024)
    except OSError as exc:
        raise click.ClickException(f"{what}を読み込めません: {path}") from exc
