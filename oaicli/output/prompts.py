"""Questions to the user, asked only on a terminal."""

import sys

import click


def confirm_or_abort(question: str, assume_yes: bool) -> None:
    """Ask on a terminal unless --yes; in a script (no terminal) there is nobody to ask."""
    if assume_yes or not sys.stdin.isatty():
        return
    click.confirm(question, abort=True, err=True)
