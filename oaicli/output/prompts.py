"""Questions to the user, asked only on a terminal."""

import sys

import click

from oaicli.core.errors import ExitCode, OaicliError
from oaicli.core.invocation import active, is_terminal


def confirm_or_abort(question: str, assume_yes: bool) -> None:
    """Ask on a terminal unless --yes. In a script (stdin not a terminal) there is nobody to ask, and a
    destructive command must not go ahead by accident: it is refused (exit 2) unless --yes was given."""
    if assume_yes:
        return
    invocation = active()
    if not (invocation.stdin_tty if invocation else is_terminal(sys.stdin)):
        raise OaicliError(f"{question} Not done: stdin is not a terminal, so nobody can confirm.",
                          "Pass --yes to go ahead without asking.", exit_code=ExitCode.USAGE)
    click.confirm(question, abort=True, err=True)
