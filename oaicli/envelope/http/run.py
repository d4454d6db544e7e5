"""Listening and stopping: bind the socket, run uvicorn, shut down gracefully on SIGTERM or Ctrl-C."""

import os
import signal
import socket
import sys
import threading

import uvicorn

from oaicli.core.errors import ExitCode, OaicliError


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

    def __init__(self, config):
        super().__init__(config)
        self.stopped_by: int | None = None

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
            self.force_exit = True
            return
        self.stopped_by = sig
        self.should_exit = True
        after_echo = "\n" if sig == signal.SIGINT and sys.stderr.isatty() else ""  # the terminal echoed ^C
        print(f"{after_echo}Stopping: finishing the answers in flight (send the signal again to stop at once)...",
              file=sys.stderr, flush=True)


def run(app, sock: socket.socket, *, shutdown_timeout: float, verbose: int, close, busy) -> int:
    """Serve until a signal; `close()` then stops any late answer from being saved.

    Workers still waiting on the upstream API after the graceful timeout (or a second signal) are
    abandoned by exiting at once: nothing they hold can be saved any more, and each save is one
    SQLite transaction, so no session is left half-written."""
    config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose > 0,
                            log_config=_log_config(), timeout_graceful_shutdown=shutdown_timeout, lifespan="on",
                            server_header=False, date_header=False)
    server = _Server(config)
    server.run(sockets=[sock])
    close()
    code = ExitCode.INTERRUPTED if server.stopped_by == signal.SIGINT else ExitCode.OK
    if busy():
        print("Stopped; answers still in flight were not saved.", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(code)
    print("Stopped.", file=sys.stderr, flush=True)
    return code


def _log_config() -> dict:
    """uvicorn's logging, with the access log on stderr too: stdout carries only results (none here)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG
    config = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    return config
