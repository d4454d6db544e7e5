"""Bad input to a generated command: one line naming the option, exit 4, and nothing is sent."""

import click

# The documented exit code for a request rejected before sending (core's ExitCode.BAD_INPUT once the layout lands).
EXIT_BAD_INPUT = 4


class BadInput(click.BadParameter):
    """A value the spec's table rejects. Click's usage errors print the usage and a hint over three lines and
    exit 2; this one is a single line and exit 4, as every other rejected request in oaicli."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


class MissingInput(BadInput):
    """A field the spec requires, given neither as an option nor in --data."""

    def format_message(self) -> str:
        hint = self.param_hint or (self.param.get_error_hint(self.ctx) if self.param else "a required field")
        return f"Missing {hint}: the API requires it (give it as an option or in --data)."


class ExitFour:
    """Mixed into Click's parameter types so that their own checks (choices, ranges, numbers) exit 4 too."""

    def fail(self, message, param=None, ctx=None):
        raise BadInput(message, ctx=ctx, param=param)


def check_text(value, param_hint: str) -> None:
    """Arguments that are not valid UTF-8 (`$'\\xff'` in a shell) reach Python as lone surrogates, which no
    request can carry: say so, naming the option, instead of failing while encoding."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput(f"{item.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8 text",
                               param_hint=param_hint) from None
