"""The root command: registers every resource's group and holds the single error boundary."""

import importlib
import os
import signal
import sys

import click

from oaicli import __version__
from oaicli.cli.options import connection_options
from oaicli.core.errors import ExitCode, OaicliError, redact

# Every top-level command, by the dotted path of its object: cli never imports commands (import-linter
# holds it). A module is imported only when its command runs or `oaicli --help` lists it (Click's
# documented lazy group, below); command modules import only click at module level, so that is cheap.
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
    # Until the generated groups take hand-written verbs (extra_commands), these groups hold only those.
    "batches": "oaicli.commands.batches.batches",
    "responses": "oaicli.commands.responses.responses",
    "man": "oaicli.commands.man.man",
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
    """A group whose main() maps every error to one stderr line and a documented exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        code = self._guarded(args, prog_name or "oaicli", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx):
        _unwind_on_sigterm()
        return super().invoke(ctx)

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
            exc.show()
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


def _unwind_on_sigterm() -> None:
    """CI runners stop a cancelled job with SIGTERM, which by default kills Python on the spot. Unwinding
    instead, as Ctrl-C does, lets a download remove its temporary file and a multipart upload cancel
    itself; the exit code is the shell's for a TERM, 143. `serve` installs its own graceful handler over it."""
    def stop(*_signal_and_frame):
        raise SystemExit(ExitCode.TERMINATED)
    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (a command invoked from a test's worker thread)
        pass


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
    cli.main(prog_name="oaicli")
