"""The blocking half of one envelope request, run in a worker thread (of the HTTP process, or of a
worker process with --processes).

The envelope's own driver (`envelope.LineRunner.answer`: the store's session lock, the turn's steps,
one shrink-and-retry on context_length_exceeded, finish) does the work, so `chat --envelope`
and `serve` answer alike. This adds the HTTP side's needs: which request a written line belongs to,
the upstream time and error (for Server-Timing and the 502/504 choice), and no saving once shutdown
gave up on an answer."""

import itertools
import threading
import time

import httpx

from oaicli.core.errors import OaicliError
from oaicli.envelope.engine import Codes, LineRunner
from oaicli.envelope.upstream import Upstream


class Stopping(OaicliError):
    """The server stopped waiting for this answer during shutdown: it was not saved."""


class GatedStore:
    """The store, except that no exchange is saved after `close()`; a save already started completes
    (it is one transaction) before `close()` returns."""

    def __init__(self, store):
        self._store = store
        self._gate = threading.Lock()
        self._closed = False
        self.on_refused = lambda error: None

    def __getattr__(self, name):
        return getattr(self._store, name)

    def add_exchange(self, *args, **kwargs):
        with self._gate:
            if self._closed:
                error = Stopping("The server is shutting down; the answer was not saved.",
                                 "Send the question again after the restart.")
                self.on_refused(error)
                raise error
            return self._store.add_exchange(*args, **kwargs)

    def close_gate(self) -> None:
        with self._gate:
            self._closed = True


class Exchanger:
    def __init__(self, engine, clients: list, notice=None, api: str = "chat"):
        """`engine`: the Envelope (stream=False); a streaming twin is made from it for SSE requests.
        `clients`: ApiClients; each worker thread keeps to one of them (see build.py for why several).
        `api`: chat, responses or auto (envelope/upstream.py)."""
        self.store = GatedStore(engine.store)
        self.store.on_refused = lambda error: setattr(self._local, "error", error)
        plain = engine.with_store(self.store)
        streaming = plain.with_store(self.store)
        streaming.stream = True
        self.parser = plain
        self._upstreams = [Upstream(client, api, notice) for client in clients]
        self._next_upstream = itertools.count()
        self._local = threading.local()
        self._counter = threading.Lock()
        self.active = 0  # answers being worked on in threads, whatever became of their HTTP requests
        self._runners = {False: LineRunner(plain, self, self._write, notice=notice),
                         True: LineRunner(streaming, self, self._write, notice=notice)}

    def close(self) -> None:
        self.store.close_gate()

    def run(self, parsed, on_delta=None) -> tuple[dict, int, float]:
        """Answer one parsed request: (response, its HTTP status, seconds spent upstream)."""
        local = self._local
        local.result, local.error, local.upstream = None, None, 0.0
        local.on_delta, local.in_delta = on_delta, False
        with self._counter:
            self.active += 1
        try:
            self._runners[on_delta is not None].answer(parsed)
        finally:
            with self._counter:
                self.active -= 1
        return local.result, status_for(local.result, local.error), local.upstream

    def _write(self, line: dict) -> None:
        local = self._local
        if local.in_delta:
            local.on_delta(line)
        else:
            local.result = line

    def perform(self, step, on_text=None):
        """A step of the envelope's turn on this thread's Upstream; answer deltas go to the HTTP stream."""
        local = self._local
        upstream = getattr(local, "upstream_client", None)
        if upstream is None:
            upstream = local.upstream_client = self._upstreams[next(self._next_upstream) % len(self._upstreams)]
        started = time.perf_counter()
        try:
            if on_text is None:
                return upstream.perform(step)
            return upstream.perform(step, lambda text: self._delta(text, on_text))
        except Exception as error:
            local.error = error
            raise
        finally:
            local.upstream += time.perf_counter() - started

    def _delta(self, text: str, on_text) -> None:
        local = self._local
        local.in_delta = True
        try:
            on_text(text)
        finally:
            local.in_delta = False


def status_for(response: dict, error: Exception | None) -> int:
    """The HTTP status of an envelope response: 400 for a bad request, 502/504 upstream, 500 for a bug."""
    code = response.get("code", Codes.INTERNAL)
    if code == Codes.OK:
        return 200
    if isinstance(error, Stopping):
        return 503
    if 1000 <= code < 2000 or code == Codes.CONTEXT_TOO_LONG:
        return 400
    if code in (Codes.UPSTREAM_REJECTED, Codes.UPSTREAM_FAILED, Codes.UPSTREAM_AUTH):
        return 504 if _timed_out(error) else 502
    return 500


def _timed_out(error: Exception | None) -> bool:
    status = getattr(error, "status", None)
    return status in (408, 504) or isinstance(getattr(error, "__cause__", None), httpx.TimeoutException)
