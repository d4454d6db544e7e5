"""What serve's answer path keeps beside the engine: a store that saves nothing once shutdown gave up on the
answers in flight, and the HTTP status of an envelope response (400, 502/504 upstream, 503, 500)."""

import threading

import httpx

from oaicli.core.errors import OaicliError
from oaicli.envelope.engine import Codes


class Stopping(OaicliError):
    """The server stopped waiting for this answer during shutdown: it was not saved."""


class GatedStore:
    """The store, except that no exchange is saved after `close()`; a save already started completes
    (it is one transaction) before `close()` returns."""

    def __init__(self, store, gate=None):
        """`gate`: what a save holds against close_gate(), a thread lock by default."""
        self._store = store
        self._gate = gate if gate is not None else threading.Lock()
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
