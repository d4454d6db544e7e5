"""`serve --processes N`: the blocking half of each request in N worker processes, past the GIL.

The HTTP process keeps everything about order (the per-context locks) and sends each request, once it
is its context's turn, to the worker process that owns the context (by hash), so one context's turns
never run in two processes. Each worker is the single-process server's engine (build.build: a store
connection, the envelope, the upstream clients, worker threads) behind a pipe: jobs in; delta lines
and one final (response, HTTP status, upstream seconds) out.

Workers ignore SIGINT and SIGTERM (the terminal sends Ctrl-C to the whole process group): the HTTP
process decides when to stop. `close()` shuts every worker's save gate; a worker whose pipe closes
(the HTTP process exited) stops at once, and saves nothing more.
"""

import asyncio
import itertools
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from oaicli.core import settings as settings_module
from oaicli.envelope.engine import Envelope
from oaicli.envelope.http.build import build


class ProcessRunner:
    def __init__(self, processes: int, config: dict):
        context = multiprocessing.get_context("spawn")
        self._workers = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=worker_main, args=(theirs, config), daemon=True)
            process.start()
            theirs.close()
            self._workers.append((process, ours, threading.Lock()))
        # Parsing needs no store or network: a storeless twin of the workers' engine.
        self.parser = Envelope(None, **config["engine"])
        self._pending: dict[int, tuple] = {}
        self._abandoned = False  # close() found answers in flight
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        for _, pipe, _ in self._workers:
            message = pipe.recv()  # ("ready",) once the worker has built its engine, or ("failed", text)
            if message[0] != "ready":
                raise RuntimeError(f"a worker process failed to start: {message[1]}")
        for index, (_, pipe, _) in enumerate(self._workers):
            threading.Thread(target=self._read, args=(index, pipe), daemon=True).start()

    async def run(self, parsed, on_delta=None):
        self._loop = self._loop or asyncio.get_running_loop()
        job = next(self._ids)
        future = self._loop.create_future()
        index = hash(parsed.context_key) % len(self._workers)
        self._pending[job] = (future, on_delta, index)
        _, pipe, lock = self._workers[index]
        try:
            with lock:
                pipe.send(("job", job, parsed, on_delta is not None))
        except OSError:  # that worker is gone (it crashed, or the server is stopping)
            self._pending.pop(job, None)
            lost = RuntimeError("the worker process for this context is not running")
            return self.parser.fail(parsed, lost), 500, 0.0
        return await future

    def _read(self, index: int, pipe) -> None:
        """The reader thread of one worker's pipe: deltas go straight on, finals wake their request."""
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):  # the worker is gone: its requests get an error, not a hang
                break
            if message[0] == "delta":
                self._pending[message[1]][1](message[2])
            elif message[0] == "final":
                future, _, _ = self._pending.pop(message[1])
                self._loop.call_soon_threadsafe(_settle, future, message[2])
        lost = RuntimeError("the worker process answering this context stopped; the answer was not saved")
        for job, (future, _, owner) in list(self._pending.items()):
            if owner == index and self._pending.pop(job, None) is not None:
                self._loop.call_soon_threadsafe(_settle, future, (self.parser.fail(None, lost), 500, 0.0))

    def close(self) -> None:
        """No worker saves anything from now on: each closes its save gate (waiting for a save in
        progress) and exits; answers it was still working on are dropped, unsaved."""
        self._abandoned = self._abandoned or bool(self._pending)
        for _, pipe, lock in self._workers:
            try:
                with lock:
                    pipe.send(("close",))
            except OSError:
                pass
        for process, _, _ in self._workers:
            process.join(10)

    def busy(self) -> bool:
        return self._abandoned or bool(self._pending)

    def stop(self) -> None:
        for process, pipe, _ in self._workers:
            pipe.close()
            process.join(1)
            if process.is_alive():
                process.kill()


def _settle(future: asyncio.Future, result) -> None:
    if not future.done():
        future.set_result(result)


def worker_main(pipe, config: dict) -> None:
    """A worker process: build the engine, then answer jobs on worker threads until told to close."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        exchanger, _ = build(settings_module.Settings(config["flags"]), config["engine"], config["workers"],
                             config.get("api", "chat"))
    except Exception as exc:
        pipe.send(("failed", f"{exc.__class__.__name__}: {exc}"))
        return
    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            pipe.send(message)

    def job(number: int, parsed, stream: bool) -> None:
        on_delta = (lambda line: send(("delta", number, line))) if stream else None
        try:
            result = exchanger.run(parsed, on_delta)
        except Exception as exc:  # a bug: the request still gets its answer
            result = exchanger.parser.fail(parsed, exc), 500, 0.0
        send(("final", number, result))

    pipe.send(("ready",))
    with ThreadPoolExecutor(config["workers"], thread_name_prefix="serve") as pool:
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):  # the HTTP process is gone: save nothing more, stop now
                exchanger.close()
                os._exit(0)
            if message[0] == "job":
                pool.submit(job, *message[1:])
            elif message[0] == "close":
                exchanger.close()
                # Answers still running finish upstream but are not saved; no need to wait for them.
                os._exit(0)
