"""Questions to the user, asked only on a terminal."""

import sys

import click

from oaicli.core.invocation import active, is_terminal


def confirm_or_abort(question: str, assume_yes: bool) -> None:
    """Ask on a terminal unless --yes; in a script (no terminal) there is nobody to ask."""
    invocation = active()
    if assume_yes or not (invocation.stdin_tty if invocation else is_terminal(sys.stdin)):
        return
    click.confirm(question, abort=True, err=True)
