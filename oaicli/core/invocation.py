"""The Invocation: what one run of a command hands its engines (settings, a client factory, the streams
with their terminal flags, the output format, quiet/verbose), as httpie's Environment and gh's Factory do.

cli/ builds it from Click's context; engines receive it as an argument, so they run the same from a
worker thread or a test with streams of its own. While a command runs, cli also makes it the active
invocation of that thread (`active()`), which the output layer's module functions read for quiet and
the format; an engine that runs writers on another thread activates its own invocation there.
"""

import contextvars
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from oaicli.core.errors import redact
from oaicli.core.settings import Settings


def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@dataclass
class Invocation:
    settings: Settings
    client_factory: Callable[..., Any]  # (invocation, admin=False) -> api.client.ApiClient (core may not import api)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    formats: tuple[str, ...] | None = None  # the formats this command accepts (None: any)
    _client: Any = None
    _admin_client: Any = None
    _closers: list = field(default_factory=list)
    # While a progress bar is on screen, output.progress sets this to write a line above the bar (the bar
    # cleared, the line written, the bar drawn again): written straight to stderr it would land on the
    # bar's own line, after the bar's text.
    write_above_bar: Callable[[str], None] | None = None

    @property
    def quiet(self) -> bool:
        return bool(self.settings.quiet)

    @property
    def verbose(self) -> int:
        return self.settings.verbose

    @property
    def format(self) -> str | None:
        """The format asked for (flag, OAICLI_FORMAT or profile), unchecked: output/ decides the one used."""
        return self.settings.format

    @property
    def stdin_tty(self) -> bool:
        return is_terminal(self.stdin)

    @property
    def stdout_tty(self) -> bool:
        return is_terminal(self.stdout)

    @property
    def stderr_tty(self) -> bool:
        return is_terminal(self.stderr)

    def client(self):
        """The invocation's API client, made on first use and closed with the invocation."""
        if self._client is None:
            self._client = self.client_factory(self)
            self.call_on_close(self._client.close)
        return self._client

    def admin_client(self):
        """A client that authenticates with the admin key (OPENAI_ADMIN_KEY), for the organization's endpoints."""
        if self._admin_client is None:
            self._admin_client = self.client_factory(self, admin=True)
            self.call_on_close(self._admin_client.close)
        return self._admin_client

    def notice(self, text: str) -> None:
        """Tell the user something on stderr, unless --quiet."""
        if not self.quiet:
            self.say(text)

    def say(self, text: str) -> None:
        """A line on stderr whatever --quiet says (errors, traces, interactive prompts), never with a key
        in it: a server's error text, echoed header or dropped-connection message may quote it."""
        if self.write_above_bar is not None:
            self.write_above_bar(redact(text))
            return
        self.stderr.write(redact(text) + "\n")
        self.stderr.flush()

    def call_on_close(self, close: Callable[[], None]) -> None:
        self._closers.append(close)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


_ACTIVE: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("oaicli.invocation", default=None)


def activate(invocation: Invocation) -> None:
    _ACTIVE.set(invocation)


def active() -> Invocation | None:
    return _ACTIVE.get()
