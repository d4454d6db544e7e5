"""Shared options, defined once as decorators and stacked on the root group and on every command.

Connection options are accepted both before and after the subcommand (`oaicli -v models list`
and `oaicli models list -v`): each occurrence records its value in the root context, and the
subcommand's occurrence, parsed later, wins.
"""

import click

FLAGS_KEY = "oaicli.flags"
FORMATS = ("table", "json", "jsonl")


def _remember(ctx: click.Context, param: click.Parameter, value):
    flags = ctx.find_root().meta.setdefault(FLAGS_KEY, {})
    if param.name == "verbose":
        flags["verbose"] = flags.get("verbose", 0) + (value or 0)
    elif value is not None and value is not False and not (param.multiple and not value):  # 0 is a value
        flags[param.name] = value
    return value


def _shared(*decls, **attrs) -> click.Option:
    """An Option built once; each command that takes it gets a shallow copy (`_copy`, ~0.6 us) instead of
    a freshly built Option (~15 us with Click's decorator path): for the dozen shared options on each of
    ~45 commands that was about 10 ms of every start-up, `--help` included."""
    return click.Option(decls, expose_value=False, callback=_remember, **attrs)


def _copy(param: click.Option) -> click.Option:
    """A shallow copy, so a command may adjust its own (say, the help of its --timeout)."""
    clone = object.__new__(type(param))
    clone.__dict__ = param.__dict__.copy()  # twice as fast as update(); ~500 of these per `oaicli --help`
    return clone


def _attach(params: list[click.Option]):
    """A decorator adding `params`, in order, as stacked @click.option decorators would."""
    def decorate(func):
        for param in map(_copy, reversed(params)):
            if isinstance(func, click.Command):
                func.params.append(param)
            else:
                func.__dict__.setdefault("__click_params__", []).append(param)
        return func
    return decorate


_CONNECTION = [
    _shared("--api-key", metavar="KEY", help="API key (else OPENAI_API_KEY, else the stored key)."),
    _shared("--base-url", metavar="URL", help="API base URL (else OPENAI_BASE_URL; default https://api.openai.com/v1)."),
    _shared("--organization", metavar="ORG", help="Sent as OpenAI-Organization (else OPENAI_ORG_ID)."),
    _shared("--project", metavar="PROJECT", help="Sent as OpenAI-Project (else OPENAI_PROJECT_ID)."),
    _shared("--api-type", type=click.Choice(["openai", "azure"]), help="Azure OpenAI uses deployment paths and the api-key header."),
    _shared("--api-version", metavar="VERSION", help="Azure api-version query parameter."),
    _shared("--profile", metavar="NAME", help="Named profile from the config file (else OAICLI_PROFILE)."),
    _shared("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Request timeout."),
    _shared("--max-retries", type=click.IntRange(min=0), metavar="N", help="Retries for 429, 5xx and network errors (default 2)."),
    _shared("-v", "--verbose", count=True, help="Trace requests on stderr; -vv adds bodies. The key is redacted."),
    _shared("-q", "--quiet", is_flag=True, default=None, help="No progress bars or notices on stderr."),
]
connection_options = _attach(_CONNECTION)

_FORMAT_OPTIONS: dict[tuple[str, ...], click.Option] = {}


def format_option(*extra: str):
    """--format, with any command-specific formats (such as `plain`) added to the usual three."""
    if extra not in _FORMAT_OPTIONS:
        _FORMAT_OPTIONS[extra] = _shared(
            "--format", "format", type=click.Choice(FORMATS + extra),
            help="Output format; default table on a terminal, json otherwise (or OAICLI_FORMAT).")
    return _attach([_FORMAT_OPTIONS[extra]])


list_options = _attach([
    _shared("--limit", type=click.IntRange(min=1), help="Items per page (the API's limit)."),
    _shared("--all", "fetch_all", is_flag=True, default=None, help="Follow pagination to the last page."),
    _shared("--raw", is_flag=True, default=None, help="With --format json, print the API's page object."),
])


yes_option = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")


def flag(name: str, default=None):
    """A value recorded by one of the options above."""
    return click.get_current_context().find_root().meta.get(FLAGS_KEY, {}).get(name, default)


def command(group: click.Group | None, name: str | None = None, formats: tuple[str, ...] = (),
            output: bool = True, **attrs):
    """Register a command with the connection and output options every command takes
    (`output=False` for a command that prints no result, such as `serve`: no --format).

    The command's own options are listed first in --help, the shared ones after them.
    With group None it makes a top-level command (such as `chat`) for COMMANDS in cli.py."""
    def decorate(func):
        make = click.command if group is None else group.command
        func = format_option(*formats)(func) if output else func
        cmd = make(name, **attrs)(connection_options(func))
        cmd.params.sort(key=lambda param: param.callback is _remember)
        return cmd
    return decorate

