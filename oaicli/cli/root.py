"""The root command: registers every resource's group and holds the single error boundary."""

import importlib
import os
import sys

import click

from oaicli import __version__
from oaicli.cli import signals
from oaicli.cli.options import connection_options
from oaicli.cli.summaries import SUMMARIES
from oaicli.core.errors import ExitCode, OaicliError, mask_key_like, redact

# Every top-level command, by the dotted path of its object: cli never imports commands (import-linter
# holds it). A module is imported only when its command runs (Click's documented lazy group, below);
# `oaicli --help` lists them from cli/summaries.py, generated with the man pages (`make man`).
LAZY_COMMANDS = {
    "models": "oaicli.commands.models.models",
    "keys": "oaicli.commands.keys.keys",
    "config": "oaicli.commands.config.config",
    "sessions": "oaicli.commands.sessions.sessions",
    "chat": "oaicli.commands.chat.chat",
    "complete": "oaicli.commands.complete.complete",
    "edit": "oaicli.commands.edit.edit",
    "image": "oaicli.commands.image.image",
    "embed": "oaicli.commands.embed.embed",
    "audio": "oaicli.commands.audio.audio",
    "moderate": "oaicli.commands.moderate.moderate",
    "files": "oaicli.commands.files.files",
    "fine-tunes": "oaicli.commands.fine_tunes.fine_tunes",
    "serve": "oaicli.commands.serve.serve",
    "man": "oaicli.commands.man.man",
    "api": "oaicli.commands.api.api",
    "usage": "oaicli.commands.usage.usage",
    "costs": "oaicli.commands.usage.costs",
}

# The generated commands (issue 11): one group per top-level group of the compiled operations table
# (oaicli/api/operations/summaries.py), built by this function when the group is used.
GENERATED_GROUP = "oaicli.commands.generated.commands.generated_group"

# Hand-written verbs that join a generated group: group name -> a module exporting `extra_commands`, a list
# of Click commands added to the generated ones (`oaicli batches submit` beside the generated `batches list`).
# A hand-written verb wins over a generated one of the same name. The module is imported only when its group
# is used.
EXTRA_COMMANDS = {
    "batches": "oaicli.commands.batches",
    "responses": "oaicli.commands.responses",
}

# A generated subtree shown under another name because a hand-written command holds its own: `oaicli chat`
# is the chat command, so the stored chat completions (the table's `chat completions ...`) are
# `oaicli chat-completions list/get/update/delete/messages`. (A hand-written *group* of a generated group's
# name, such as `audio`, instead gains the generated verbs it lacks: `audio voices`, `audio voice-consents`.)
GENERATED_ALIASES = {
    "chat-completions": (("chat", "completions"), "Stored chat completions: list, get, update, delete, messages."),
}


class LazyGroup(click.Group):
    """Click's documented lazy-loading group: subcommands named by import path, loaded on lookup."""

    def __init__(self, *args, lazy_subcommands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._lazy_load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _lazy_load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_subcommands[cmd_name].rsplit(".", 1)
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise ValueError(f"{self.lazy_subcommands[cmd_name]} is not a Click command")
        return command


class RootGroup(LazyGroup):
    """A group whose main() maps every error to one stderr line and a documented exit code, and which lists
    the generated groups from the operations table's small index beside the hand-written commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_generated_summaries()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not (isinstance(command, click.Group) and cmd_name in _generated_summaries()):
            return command
        if cmd_name in GENERATED_ALIASES:
            (group, *words), _summary = GENERATED_ALIASES[cmd_name]
            return _load(GENERATED_GROUP)(group, words=tuple(words), alias=cmd_name)
        if cmd_name not in _generated_names():
            return command
        if command is not None and not isinstance(command, click.Group):
            return command
        # A hand-written group of a generated group's name keeps its help and its verbs, which win.
        extras = list(command.commands.values()) if command is not None else _extra_commands(cmd_name)
        help_text = command.help if command is not None else None
        return _load(GENERATED_GROUP)(cmd_name, extra_commands=extras, help=help_text)

    def format_commands(self, ctx: click.Context, formatter) -> None:
        """Click's listing, except that generated groups are described from the index alone: listing all of
        them must not read a group's own file or build its commands (`oaicli --help` stays within 1.3x
        `import click`)."""
        summaries = _generated_summaries()
        rows = []
        for name in self.list_commands(ctx):
            if name in summaries and name not in self.lazy_subcommands:
                rows.append((name, _shortened(summaries[name], formatter.width - 6 - len(name))))
                continue
            limit = formatter.width - 6 - len(name)
            if name in SUMMARIES:  # a hand-written command, described without importing its module
                rows.append((name, click.Command(name, **SUMMARIES[name]).get_short_help_str(limit)))
                continue
            # Not in the generated summaries yet (a new command before `make man`; the docs test fails then).
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        code = self._guarded(args, prog_name or "oaicli", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx):
        signals.unwind_on_sigterm()
        try:
            return super().invoke(ctx)
        except (OaicliError, click.ClickException) as exc:
            exc.as_json = _errors_as_json(ctx)  # read here: the context is gone when main() reports it
            raise

    def make_context(self, info_name, args, parent=None, **extra):
        # Subcommands' contexts inherit the width, so Click's help formatter never imports shutil.
        if parent is None and "terminal_width" not in extra and click.formatting.FORCED_WIDTH is None:
            extra["terminal_width"] = _help_width(self.context_settings.get("max_content_width", 80))
        return super().make_context(info_name, args, parent, **extra)

    def _guarded(self, args, prog_name, complete_var, extra) -> int:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            return result if isinstance(result, int) else ExitCode.OK
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.ClickException as exc:
            _know_the_keys(sys.argv[1:] if args is None else list(args))
            if getattr(exc, "as_json", False):
                _show_json_error(mask_key_like(exc.format_message()), exc.exit_code,
                                 "usage" if exc.exit_code == 2 else "invalid_input")
            else:
                _show_click_error(exc)
            return exc.exit_code
        except (click.Abort, KeyboardInterrupt) as exc:
            interrupted = isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt)
            # Click already closed the terminal's ^C echo with a newline when it turned the interrupt into Abort.
            prefix = "\n" if isinstance(exc, KeyboardInterrupt) else ""
            click.echo(prefix + "Interrupted." if interrupted else "Aborted.", err=True)
            return ExitCode.INTERRUPTED if interrupted else ExitCode.FAILURE
        except OaicliError as exc:
            if os.environ.get("OAICLI_DEBUG"):
                _print_traceback(exc)
            if getattr(exc, "as_json", False):
                _show_json_error(exc.message, exc.exit_code, getattr(exc, "type", None) or type(exc).__name__,
                                 hint=exc.hint, status=getattr(exc, "status", None), code=getattr(exc, "code", None),
                                 request_id=getattr(exc, "request_id", None))
            else:
                click.echo(exc.one_line(), err=True)
            return exc.exit_code
        except BrokenPipeError:
            _silence_stdout()
            return ExitCode.FAILURE
        except UnicodeError as exc:  # text from an argument, stdin or a file that is not UTF-8
            if os.environ.get("OAICLI_DEBUG"):
                _print_traceback(exc)
            click.echo(_not_utf8_line(exc), err=True)
            return ExitCode.REQUEST
        except Exception as exc:  # a bug: still one line, never the key
            if os.environ.get("OAICLI_DEBUG"):
                _print_traceback(exc)
                return ExitCode.FAILURE
            click.echo(redact(f"Error: unexpected {exc.__class__.__name__}: {exc}. "
                              "Run again with OAICLI_DEBUG=1 for a traceback."), err=True)
            return ExitCode.FAILURE


def _know_the_keys(args: list[str]) -> None:
    """Click's errors quote the command line as typed, before any settings are resolved: a key pasted as
    a stray argument or an option (`--sk-...`) would be printed. Every configured key, and the one typed
    after --api-key, is registered with the redactor first."""
    from oaicli.core import settings
    typed = None
    for at, arg in enumerate(args):
        if arg == "--api-key" and at + 1 < len(args):
            typed = args[at + 1]
        elif arg.startswith("--api-key="):
            typed = arg.split("=", 1)[1]
    settings.register_configured_keys(typed)


def _show_click_error(exc: click.ClickException) -> None:
    """Click's own message (usage line, hint, error), with the known keys and anything shaped like a key masked."""
    import io
    shown = io.StringIO()
    exc.show(file=shown)
    click.echo(mask_key_like(redact(shown.getvalue())), err=True, nl=False)


def _errors_as_json(ctx: click.Context) -> bool:
    """`--format json` on the command line applies to errors too, for a script that reads them from stderr. Only
    the flag: a default format from OAICLI_FORMAT or a profile leaves the one-line errors people read."""
    from oaicli.cli.invocation import FLAGS_KEY
    return ctx.find_root().meta.get(FLAGS_KEY, {}).get("format") == "json"


def _show_json_error(message: str, exit_code: int, kind: str, **details) -> None:
    """One JSON object on stderr: {"error": {message, type, exit_code, and status, code, hint, request_id
    when known}}; redacted like every other error."""
    import json
    error = {"message": message, "type": kind, "exit_code": int(exit_code)}
    error.update({k: v for k, v in details.items() if v is not None})
    click.echo(redact(json.dumps({"error": error}, ensure_ascii=False)), err=True)


def _generated_summaries() -> dict[str, str]:
    """Listed generated groups and aliases -> their one-line summaries: groups left wholly to hand-written
    commands (`models`, `files`) and deprecated ones are not listed (they still run: `oaicli assistants ...`)."""
    from oaicli.api import operations
    groups = operations.index()["groups"]
    listed = {name: entry["summary"] for name, entry in groups.items()
              if not entry.get("handwritten") and not entry.get("deprecated")}
    for alias, ((group, *_words), summary) in GENERATED_ALIASES.items():
        listed.pop(group, None)
        listed[alias] = summary
    return listed


def _generated_names() -> set[str]:
    from oaicli.api import operations
    return set(operations.index()["groups"])


def _extra_commands(group: str) -> list[click.Command]:
    module = EXTRA_COMMANDS.get(group)
    return list(importlib.import_module(module).extra_commands) if module else []


def _load(dotted: str):
    module_name, attribute = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), attribute)


def _shortened(text: str, limit: int) -> str:
    limit = max(limit, 45)
    return text if len(text) <= limit else text[:limit - 3].rsplit(" ", 1)[0] + "..."


def _print_traceback(exc: BaseException) -> None:
    """OAICLI_DEBUG=1: the traceback, printed through the redactor (its messages may quote the key)."""
    import traceback
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    click.echo(redact(text.rstrip("\n")), err=True)


def _not_utf8_line(exc: UnicodeError) -> str:
    """Python hands undecodable bytes of argv (and of stdin in a C locale) on as lone surrogates, which
    fail only when the request is encoded: say which text was wrong, not which codec complained."""
    return redact(f"Error: some text given to oaicli (an argument, standard input or a file) is not valid "
                  f"UTF-8 text ({exc.__class__.__name__}: {exc.reason}). Pass UTF-8 text; convert it with iconv.")


def _help_width(max_width: int) -> int:
    """Click's help width rule, without `shutil.get_terminal_size`: importing shutil (and with it bz2,
    lzma and zlib) cost `oaicli --help` 1.31 -> 1.37 x `import click` (~1.9 ms; benchmarks/startup.py)."""
    try:
        columns = int(os.environ.get("COLUMNS") or 0)
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 80
    return max(min(columns, max_width) - 2, 50)


def _silence_stdout() -> None:
    """The reader of a pipe went away (`oaicli ... | head`); stop Python complaining at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@click.group(cls=RootGroup, lazy_subcommands=LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="oaicli")
@connection_options
def cli():
    """A command-line client for the OpenAI REST API and any server that speaks it.

    Connection options may come before or after the subcommand. Exit codes: 0 success,
    1 failure, 2 usage, 3 missing or refused key, 4 request rejected, 5 server or network
    failure, 6 job failed, 7 job cancelled, 8 timed out, 9 moderation flagged, 130 interrupted,
    143 terminated (SIGTERM).

    \b
    Example:
      export OPENAI_API_KEY=sk-...
      oaicli models list
    """


def run() -> None:
    """The console script and `python -m oaicli`."""
    signals.never_lose_signals()
    cli.main(prog_name="oaicli")
