"""The prompt, from the argument or the invocation's stdin."""

import click

from oaicli.core.errors import InputError


def read_prompt(invocation, prompt: str | None, allow_empty: bool = False) -> str | None:
    """The argument, or stdin when it is `-` or piped; with both, stdin is appended after a blank line."""
    piped = None
    if prompt == "-" or not invocation.stdin_tty:
        piped = _read_stdin(invocation.stdin)
    if prompt == "-":
        prompt = None
    check_utf8(prompt, "The prompt argument")
    parts = [part for part in (prompt, piped.strip("\n") if piped else None) if part]
    text = "\n\n".join(parts)
    if not text.strip():
        if allow_empty:
            return None
        raise click.UsageError("No prompt: give it as an argument, or pipe it on stdin.")
    return text


def _read_stdin(stream) -> str:
    try:
        text = stream.read()
    except UnicodeDecodeError as exc:  # a UTF-8 locale decodes strictly
        raise InputError(f"Standard input is not valid UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                         f"offset {exc.start}).", "Pipe text, not binary data; convert it with iconv.") from exc
    check_utf8(text, "Standard input")
    return text


def check_utf8(text: str | None, what: str) -> None:
    """Python hands bytes it cannot decode (argv; stdin in a C locale) on as lone surrogates, which fail
    only when the request is encoded: refuse them here, naming the text."""
    if not text:
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 text (at character {exc.start + 1}).",
                         "Pass UTF-8 text; convert it with iconv.") from exc
