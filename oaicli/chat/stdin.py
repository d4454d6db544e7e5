"""The prompt from the argument or stdin, and whether stdin is a terminal."""

import sys

import click


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_prompt(prompt: str | None, allow_empty: bool = False) -> str | None:
    """The argument, or stdin when it is `-` or piped; with both, stdin is appended after a blank line."""
    piped = None
    if prompt == "-" or not stdin_is_terminal():
        piped = sys.stdin.read()
    if prompt == "-":
        prompt = None
    parts = [part for part in (prompt, piped.strip("\n") if piped else None) if part]
    text = "\n\n".join(parts)
    if not text.strip():
        if allow_empty:
            return None
        raise click.UsageError("No prompt: give it as an argument, or pipe it on stdin.")
    return text
