"""The root command: registers every resource's group and holds the single error boundary."""

import gc
import importlib
import os
import sys

import click

from oaicli import __version__
from oaicli.cli.options import connection_options
from oaicli.core.errors import ExitCode, OaicliError, redact

# (module, attribute) of every top-level command; its name is the attribute with `-` for `_` (or give
# it as a third item). A module is imported only when its command is used (LazyCommands, below), and
# command modules import only click at module level, so even `oaicli --help`, which lists all, is cheap.
COMMANDS = [
    ("oaicli.commands.models", "models"),
    ("oaicli.commands.keys", "keys"),
    ("oaicli.commands.config", "config"),
    ("oaicli.commands.sessions", "sessions"),
    ("oaicli.commands.chat", "chat"),
    ("oaicli.commands.complete", "complete"),
    ("oaicli.commands.edit", "edit"),
    ("oaicli.commands.image", "image"),
    ("oaicli.commands.embed", "embed"),
    ("oaicli.commands.audio", "audio"),
    ("oaicli.commands.moderate", "moderate"),
    ("oaicli.commands.files", "files"),
    ("oaicli.commands.fine_tunes", "fine_tunes"),
    ("oaicli.commands.serve", "serve"),
]


class RootGroup(click.Group):
    """A group whose main() maps every error to one stderr line and a documented exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        code = self._guarded(args, prog_name or "oaicli", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx):
        gc.enable()  # see run()
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
                raise
            click.echo(exc.one_line(), err=True)
            return exc.exit_code
        except BrokenPipeError:
            _silence_stdout()
            return ExitCode.FAILURE
        except Exception as exc:  # a bug: still one line, never the key
            if os.environ.get("OAICLI_DEBUG"):
                raise
            click.echo(redact(f"Error: unexpected {exc.__class__.__name__}: {exc}. "
                              "Run again with OAICLI_DEBUG=1 for a traceback."), err=True)
            return ExitCode.FAILURE


def _help_width(max_width: int) -> int:
    """Click's help width rule, without `shutil.get_terminal_size`: importing shutil (and with it bz2,
    lzma and zlib) costs about 2 ms of every `--help`."""
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
    itself; the exit code is the shell's for a TERM, 143. `serve` installs its own graceful handler over it.
    The root invokes this before a subcommand parses its --help, so it uses the C module: `signal`
    builds enums for ~0.7 ms of every start-up."""
    import _signal

    def stop(*_signal_and_frame):
        raise SystemExit(ExitCode.TERMINATED)
    try:
        _signal.signal(_signal.SIGTERM, stop)
    except ValueError:  # not the main thread (a command invoked from a test's worker thread)
        pass


def _silence_stdout() -> None:
    """The reader of a pipe went away (`oaicli ... | head`); stop Python complaining at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


class LazyCommands(dict):
    """The root's name -> command table. A command's module is imported the first time the command is
    looked up, so `oaicli models list` (and its --help) imports models alone; `oaicli --help`, which
    lists every command with its summary, imports them all. The name is the attribute with `_` as `-`
    (fine_tunes -> fine-tunes), or a third item in the COMMANDS entry; tests/cli/test_docs.py checks it."""

    def __init__(self, entries):
        super().__init__()
        self.where = {}
        for module_name, attribute, *name in entries:
            key = name[0] if name else attribute.replace("_", "-")
            self.where[key] = (module_name, attribute)
            super().__setitem__(key, None)

    def __getitem__(self, name):
        command = super().__getitem__(name)
        if command is None:
            module_name, attribute = self.where[name]
            command = getattr(importlib.import_module(module_name), attribute)
            super().__setitem__(name, command)
        return command

    def get(self, name, default=None):
        return self[name] if name in self else default

    def values(self):
        return [self[name] for name in self]

    def items(self):
        return [(name, self[name]) for name in self]


def _register() -> None:
    cli.commands = LazyCommands(COMMANDS)


_register()


def run() -> None:
    """The console script and `python -m oaicli`.

    Start-up builds a few thousand long-lived objects (commands, options) and no garbage cycles, so the
    cycle collector only costs time until the command runs (about 2 ms of `oaicli --help`): it is off
    until RootGroup.invoke. `--help` and usage errors exit before that."""
    gc.disable()
    cli.main(prog_name="oaicli")
