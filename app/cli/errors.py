"""One Japanese line instead of a traceback: how every ``mynumber`` failure is reported.

click's own messages are English, and a traceback can carry values from the data. The
operator gets one line on stderr and an exit status: 2 for a mistyped command line, the
status a command's own refusal carries, 1 for anything else. Kept apart from the commands
so that the root group can use it without loading any of them.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from app.core import logsafe


def usage_message(exc: click.UsageError) -> str:
    """A mistyped command line in Japanese, naming the option (click's own text is English)."""
    if isinstance(exc, click.NoSuchOption):
        return f"{exc.option_name} というオプションはありません"
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return f"{exc.param.get_error_hint(exc.ctx)} を指定してください"
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        hint = exc.param.get_error_hint(exc.ctx)
        if isinstance(exc.param.type, click.types.IntParamType):
            return f"{hint} は整数で指定してください"
        return f"{hint} の値が正しくありません（{exc.message}）"
    return f"コマンドの指定が正しくありません（{exc.message}）"


def exit_with(exc: Exception) -> NoReturn:
    """Say what went wrong on one line on stderr and end the process with its status."""
    if isinstance(exc, click.UsageError):
        click.echo(f"エラー: {usage_message(exc)}", err=True)
        if exc.ctx is not None:
            click.echo(f"（使い方: {exc.ctx.command_path} --help）", err=True)
        sys.exit(exc.exit_code)
    if isinstance(exc, click.ClickException):
        click.echo(f"エラー: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    # Anything else may quote data (a driver's error names the values it choked on): scrubbed.
    message = logsafe.scrub(str(exc)) or type(exc).__name__
    click.echo(f"エラー: {message}", err=True)
    sys.exit(1)
