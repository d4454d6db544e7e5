"""Listening and stopping: bind the socket, run uvicorn, shut down gracefully on SIGTERM or Ctrl-C."""

import asyncio
import gc
import os
import signal
import socket
import sys
import threading

import uvicorn

from oaicli.core.errors import ExitCode, OaicliError

# The cycle collector's thresholds for serve (CPython's defaults: 700, 10, 10); see quiet_collector.
GC_THRESHOLDS = (100_000, 20, 100)


def bind(host: str, port: int) -> socket.socket:
    """Bind before starting, so a port in use is one clear error line (and port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # without it every response (headers, then body) waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OaicliError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
                          "Choose another --port or --host.") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, but a handled signal ends with our exit code instead of being raised again."""

    def __init__(self, config, *, shutdown_timeout: float, abandon, start=None):
        super().__init__(config)
        self.start = start  # a coroutine function run on the loop before listening (worker processes' links)
        self.stopped_by: int | None = None
        self.shutdown_timeout = shutdown_timeout
        self.abandon = abandon  # answers the requests still in flight with the envelope's 503
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets=None) -> None:
        self.loop = asyncio.get_running_loop()
        if self.start is not None:
            await self.start()
        await super().startup(sockets=sockets)

    async def shutdown(self, sockets=None) -> None:
        await super().shutdown(sockets=sockets)
        if self.force_exit:
            # uvicorn stops waiting at once; give the app the few loop steps it needs to send its 503s
            # (a request cancelled at the loop's end would get nothing), at most a second.
            for _ in range(100):
                if not self.server_state.tasks:
                    break
                await asyncio.sleep(0.01)
            # uvicorn skips the app's shutdown then, and its lifespan task would die with a traceback.
            await self.lifespan.shutdown()

    def _call_in_loop(self, function) -> None:
        """A signal handler interrupts the loop's thread anywhere: hand the work to the loop itself."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(function)

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    def capture_signals(self):  # uvicorn >= 0.29
        import contextlib

        @contextlib.contextmanager
        def captured():
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)
        return captured()

    def _on_signal(self, sig, frame) -> None:
        if self.should_exit:  # a second signal: stop waiting for the answers in flight
            self._call_in_loop(self.abandon)
            self.force_exit = True
            return
        self.stopped_by = sig
        self.should_exit = True
        # Past the timeout our app answers what is left (uvicorn's own timeout, a little later, would
        # cancel the requests and send a plain-text 500 with a traceback in the log).
        self._call_in_loop(lambda: self.loop.call_later(self.shutdown_timeout, self.abandon))
        after_echo = "\n" if sig == signal.SIGINT and sys.stderr.isatty() else ""  # the terminal echoed ^C
        print(f"{after_echo}Stopping: finishing the answers in flight (send the signal again to stop at once)...",
              file=sys.stderr, flush=True)


def run(app, sock: socket.socket, *, shutdown_timeout: float, verbose: int, close, busy, abandon, start=None) -> int:
    """Serve until a signal; `close()` then stops any late answer from being saved.

    Workers still waiting on the upstream API after the graceful timeout (or a second signal) are
    abandoned by exiting at once: nothing they hold can be saved any more, and each save is one
    SQLite transaction, so no session is left half-written."""
    # uvicorn's graceful timeout is only a safety net: at shutdown_timeout the app has answered everything.
    config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose > 0,
                            log_config=_log_config(), timeout_graceful_shutdown=shutdown_timeout + 5,
                            lifespan="on", server_header=False, date_header=False, http=_http_parser())
    server = _Server(config, shutdown_timeout=shutdown_timeout, abandon=abandon, start=start)
    quiet_collector()
    server.run(sockets=[sock])
    close()
    code = ExitCode.INTERRUPTED if server.stopped_by == signal.SIGINT else ExitCode.OK
    if busy():
        print("Stopped; answers still in flight were not saved.", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(code)
    print("Stopped.", file=sys.stderr, flush=True)
    return code


def quiet_collector() -> None:
    """Fewer, shorter pauses of the cycle collector, which stops the loop while it runs: with the default
    thresholds, 100 answers in flight made it collect young objects ~100 times a second and walk every
    object (2 to 100 ms) several times a minute, the largest share of the added p99. Objects made at
    start-up (modules, the engine, the clients) are frozen out of every collection, and a collection waits
    for 100,000 net allocations instead of 700: the answers in flight hold ~35,000 objects, so a lower
    threshold collected (walking them all) every fraction of a second; above it, collections are rare.
    Answers leave no cycles behind (api/async_client.close), so waiting holds no more memory."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _http_parser() -> str:
    """httptools (C) when installed, as the serve extra does; h11 (pure Python) costs more CPU per request."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def _log_config() -> dict:
    """uvicorn's logging, with the access log on stderr too: stdout carries only results (none here)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG
    config = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    return config
