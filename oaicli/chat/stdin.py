"""The prompt, from the argument or the invocation's stdin."""

import click


def read_prompt(invocation, prompt: str | None, allow_empty: bool = False) -> str | None:
    """The argument, or stdin when it is `-` or piped; with both, stdin is appended after a blank line."""
    piped = None
    if prompt == "-" or not invocation.stdin_tty:
        piped = invocation.stdin.read()
    if prompt == "-":
        prompt = None
    parts = [part for part in (prompt, piped.strip("\n") if piped else None) if part]
    text = "\n\n".join(parts)
    if not text.strip():
        if allow_empty:
            return None
        raise click.UsageError("No prompt: give it as an argument, or pipe it on stdin.")
    return text
