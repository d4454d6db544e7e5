"""Shared options, defined once as decorators and stacked on the root group and on every command.

Connection options are accepted both before and after the subcommand (`oaicli -v models list`
and `oaicli models list -v`): each occurrence records its value in the root context, and the
subcommand's occurrence, parsed later, wins.
"""

import time

import click

from oaicli.cli.invocation import FLAGS_KEY, flag, with_invocation

FORMATS = ("table", "json", "jsonl", "yaml")


def _remember(ctx: click.Context, param: click.Parameter, value):
    flags = ctx.find_root().meta.setdefault(FLAGS_KEY, {})
    if param.name == "verbose":
        flags["verbose"] = flags.get("verbose", 0) + (value or 0)
    elif value is not None and value is not False and not (param.multiple and not value):  # 0 is a value
        flags[param.name] = value
    return value


def _shared(*decls, **attrs) -> click.Option:
    """An Option built once; each command that takes it gets a shallow copy (`_copy`), so a command may
    adjust its own (say, the help of its --timeout). Kept because benchmarks/startup.py needs it: a fresh
    Option for each of the dozen shared options on each of 53 commands cost `oaicli --help` 1.53 -> 1.37 x
    `import click` (2.3 ms in-process, more for the whole process); the goal is 1.3 x."""
    return click.Option(decls, expose_value=False, callback=_remember, **attrs)


def _copy(param: click.Option) -> click.Option:
    clone = object.__new__(type(param))
    clone.__dict__ = param.__dict__.copy()
    return clone


def _attach(params: list[click.Option], copy: bool = True):
    """A decorator adding `params`, in order, as stacked @click.option decorators would; `copy=False` for options
    no command adjusts, which every command may then share (Click keeps no state in an Option)."""
    def decorate(func):
        made = map(_copy if copy else (lambda same: same), params)
        if isinstance(func, click.Command):  # a built command lists its params in display order already
            func.params.extend(made)
            return func
        for param in reversed(list(made)):  # Click reverses the decorators' list
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
_SHARED_HELP = {param.name: param.help for param in _CONNECTION}
GLOBAL_OPTIONS = "Global options (before or after the command; described in oaicli --help)"


def split_help(command: click.Command, ctx: click.Context) -> tuple[list, list]:
    """The (declaration, help) records of a command's own options, and of the shared connection options
    it takes unchanged: --help and the man pages both list them from here, own options first. The root
    command describes the shared ones in full (it is where they are documented); a command that rewords
    one for itself (as follow does --timeout) lists it among its own."""
    own, shared = [], []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record:
            is_global = ctx.parent is not None and _SHARED_HELP.get(param.name, object()) == param.help
            (shared if is_global else own).append(record)
    return own, shared


def pack(declarations: list[str], width: int) -> list[str]:
    """Declarations side by side, as many to a line as fit: the short section of global options."""
    lines, line = [], ""
    for declaration in declarations:
        if line and len(line) + 2 + len(declaration) > width:
            lines.append(line)
            line = ""
        line = f"{line}  {declaration}" if line else declaration
    return lines + ([line] if line else [])


class OaicliCommand(click.Command):
    """A command whose --help lists its own options first and the shared ones in one short section."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own, shared = split_help(self, ctx)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if shared:
            with formatter.section(GLOBAL_OPTIONS):
                for line in pack([decl for decl, _ in shared], formatter.width - formatter.current_indent):
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")

_FORMAT_OPTIONS: dict[tuple[str, ...], click.Option] = {}


# The filters every command's output takes (output/writers.py applies them). No command adjusts them, so all
# share the same two objects: copying them for each of the ~370 commands cost `oaicli --help` ~1.5 ms.
_FILTERS = [
    _shared("--jq", metavar="EXPR", help="Filter the JSON result with a jq program (as gh --jq): --jq '.[].id'."),
    _shared("-r", "--raw-output", is_flag=True, default=None,
            help="Print strings without quotes, as jq -r (list commands' --raw is the API's page object)."),
]


def format_option(*extra: str):
    """--format, with any command-specific formats (such as `plain`) added to the usual four, and the filters."""
    if extra not in _FORMAT_OPTIONS:
        _FORMAT_OPTIONS[extra] = _shared("--format", "format", type=click.Choice(FORMATS + extra),
                                         help="Output format; default table on a terminal, json otherwise (or OAICLI_FORMAT).")
    with_format, with_filters = _attach([_FORMAT_OPTIONS[extra]]), _attach(_FILTERS, copy=False)
    return lambda func: with_format(with_filters(func))


list_options = _attach([
    _shared("--limit", type=click.IntRange(min=1), help="Items per page (the API's limit)."),
    _shared("--all", "fetch_all", is_flag=True, default=None, help="Follow pagination to the last page."),
    _shared("--raw", is_flag=True, default=None, help="With --format json, print the API's page object."),
])


class InputFile(click.ParamType):
    """A path to read: checked by core.inputs, so a missing one is exit 4 like every other bad input
    (click.Path(exists=True) makes it a usage error, exit 2); `-` means stdin where allowed."""

    name = "file"

    def __init__(self, what: str = "File", allow_dash: bool = False):
        self.what = what
        self.allow_dash = allow_dash

    def convert(self, value, param, ctx):
        if self.allow_dash and value == "-":
            return value
        from oaicli.core.inputs import input_file
        return str(input_file(value, self.what))


# The conversation store of the commands that keep sessions: --store on sessions and serve; chat, whose
# --store/--no-store is the Responses API's own field, names it --session-store.
_STORE_HELP = ("Conversation store: sqlite:///PATH or postgresql://USER@HOST/DB (else OAICLI_STORE; default "
               "sessions.db in the data folder).")
store_option = _attach([_shared("--store", "store_url", metavar="URL", help=_STORE_HELP)])
session_store_option = _attach([_shared("--session-store", "store_url", metavar="URL", help=_STORE_HELP)])


yes_option = click.option("-y", "--yes", is_flag=True,
                          help="Do not ask for confirmation (needed when stdin is not a terminal, as in scripts).")


def wait_deadline() -> float | None:
    """--timeout given on the command line also bounds waits and follows (exit 8 when it runs out)."""
    limit = flag("timeout")
    return None if limit is None else time.monotonic() + float(limit)


def command(group: click.Group | None, name: str | None = None, formats: tuple[str, ...] = (),
            output: bool = True, **attrs):
    """Register a command with the connection and output options every command takes
    (`output=False` for a command that prints no result, such as `serve`: no --format).

    The command's own options are listed first in --help, the shared ones after them.
    With group None it makes a top-level command (such as `chat`) for LAZY_COMMANDS in cli/root.py."""
    def decorate(func):
        make = click.command if group is None else group.command
        func = format_option(*formats)(func) if output else func
        cmd = make(name, cls=OaicliCommand, **attrs)(connection_options(func))
        cmd.callback = with_invocation(cmd.callback)
        cmd.params.sort(key=lambda param: param.callback is _remember)
        return cmd
    return decorate


def _check_stop(ctx, param, value):
    if len(value) > 4:
        raise click.BadParameter(f"at most 4 stop sequences, got {len(value)}.")
    return value


def _check_logit_bias(ctx, param, values):
    """JSON objects or TOKEN=BIAS pairs (comma-separated or repeated), merged; biases -100..100."""
    merged = {}
    for value in values:
        text = value.strip()
        if text.startswith("{"):
            import json  # only when the option is given: json costs ~1 ms of every --help
            try:
                pairs = json.loads(text)
            except ValueError as exc:
                raise click.BadParameter(f"not valid JSON: {exc}.")
            if not isinstance(pairs, dict):
                raise click.BadParameter("the JSON must be an object of token id to bias.")
            items = list(pairs.items())
        else:
            items = [part.partition("=")[::2] for part in text.split(",") if part.strip()]
        for token, bias in items:
            merged[_token_id(token)] = _bias(token, bias)
    return merged or None


def _token_id(token) -> str:
    token = str(token).strip()
    if not token.isdigit():
        raise click.BadParameter(f"{token!r} is not a token id (an integer); use TOKEN=BIAS or a JSON object.")
    return token


def _bias(token, bias):
    try:
        number = float(bias) if isinstance(bias, str) else bias
    except ValueError:
        raise click.BadParameter(f"bias {bias!r} for token {token} is not a number.")
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not -100 <= number <= 100:
        raise click.BadParameter(f"bias {bias!r} for token {token} must be a number from -100 to 100.")
    return int(number) if float(number).is_integer() else number


def _check_params(ctx, param, values):
    import json  # see _check_logit_bias
    params = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=JSON.")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            raise click.BadParameter(f"the value of {key} is not JSON: {raw!r} (quote strings: {key}='\"text\"').")
    return params


def sampling_options(func):
    """The sampling fields chat and complete share; ranges are checked before any request."""
    for option in reversed([
        click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature, 0 to 2."),
        click.option("--top-p", type=click.FloatRange(0, 1), help="Nucleus sampling, 0 to 1."),
        click.option("-n", "n", type=click.IntRange(min=1), help="How many answers to generate (each labelled)."),
        click.option("--stop", multiple=True, callback=_check_stop, metavar="TEXT",
                     help="A sequence that ends the answer; repeatable, at most 4."),
        click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate."),
        click.option("--presence-penalty", type=click.FloatRange(-2, 2), help="-2 to 2."),
        click.option("--frequency-penalty", type=click.FloatRange(-2, 2), help="-2 to 2."),
        click.option("--logit-bias", multiple=True, callback=_check_logit_bias, metavar="JSON|TOKEN=BIAS",
                     help="Token biases, -100 to 100: a JSON object or TOKEN=BIAS pairs; repeatable."),
        click.option("--user", metavar="ID", help="An end-user id for abuse monitoring."),
        click.option("--seed", type=int, help="Ask for deterministic sampling."),
        click.option("--param", "params", multiple=True, callback=_check_params, metavar="KEY=JSON",
                     help="Any other request field, as JSON (--param logprobs=true); repeatable."),
        click.option("--stream/--no-stream", default=None,
                     help="Print the answer as it arrives (the default), or all at once."),
        click.option("--usage", is_flag=True, help="Print token usage to stderr."),
    ]):
        func = option(func)
    return func
