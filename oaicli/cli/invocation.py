"""Builds the Invocation from Click's context: the only module that reads Click's current context and
the flags the shared options gathered at every level of the command line."""

from __future__ import annotations

import functools
import sys
import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from oaicli.core.invocation import Invocation


FLAGS_KEY = "oaicli.flags"
INVOCATION_KEY = "oaicli.invocation"


def current(ctx: click.Context | None = None) -> Invocation:
    """The running command's invocation, built once per command line."""
    # Loaded here, not at the top: --help imports this module (through options) but builds no
    # invocation, and settings + the dataclass cost ~4 ms of every --help.
    from oaicli.core.invocation import Invocation
    from oaicli.core.settings import Settings
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if INVOCATION_KEY not in root.meta:
        invocation = Invocation(Settings(root.meta.get(FLAGS_KEY, {})), _client_factory(root), stdin=sys.stdin,
                                stdout=sys.stdout, stderr=sys.stderr, formats=_formats_of(ctx.command))
        root.meta[INVOCATION_KEY] = invocation
        root.call_on_close(invocation.close)
    return root.meta[INVOCATION_KEY]


def flag(name: str, default=None):
    """A value recorded by one of the shared options (cli/options.py)."""
    return click.get_current_context().find_root().meta.get(FLAGS_KEY, {}).get(name, default)


def with_invocation(callback):
    """Wrap a command's callback so its invocation is built first and is the thread's active one while
    it runs (the output layer reads quiet and the format from it)."""
    @functools.wraps(callback)
    def run(*args, **kwargs):
        from oaicli.core.invocation import activate, active  # see current()
        previous = active()
        activate(current())
        try:
            return callback(*args, **kwargs)
        finally:
            activate(previous)
    return run


def _formats_of(command: click.Command | None) -> tuple[str, ...] | None:
    for param in command.params if command else ():
        if param.name == "format" and isinstance(param.type, click.Choice):
            return tuple(param.type.choices)
    return None


def _client_factory(root: click.Context):
    """Tests inject an httpx transport (and a sleep) through the root context's obj."""
    obj = root.obj if isinstance(root.obj, dict) else {}

    def make(invocation, admin=False):
        from oaicli.api.client import ApiClient  # httpx: loaded only by commands that send a request
        return ApiClient(invocation.settings, transport=obj.get("transport"), sleep=obj.get("sleep", time.sleep),
                         echo=invocation.say, admin=admin)
    return make
