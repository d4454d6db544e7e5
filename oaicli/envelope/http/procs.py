"""`serve --processes N`: the answers in N worker processes, each the one-process server's event loop.

The HTTP process keeps everything about order (the context queues of app.py) and sends each request, once
it is its context's turn, to the worker process that owns the context (by hash), so one context's turns
never run in two processes. Each worker runs the single-process answer path (build.build_runner: a store
connection, the envelope, the async upstream client) on its own event loop, with no thread: jobs arrive on
a socket pair as length-prefixed pickle frames; delta lines and one final (response, HTTP status,
upstream seconds) go back. Full serve replicas sharing the store cost the same CPU per answer but cannot
keep one context's arrival order across processes (measured and shown in benchmarks/README.md).

Workers run in a session of their own and ignore SIGINT and SIGTERM: the HTTP process decides when to
stop. A worker that dies is reported, its answers in flight get the envelope's error (never a hang), and
a new one takes its place. `close()` ends the HTTP process's half of each socket pair: a worker stops at
once when its socket ends, saving nothing more (a save is one SQLite transaction, so none is left
half-written).
"""

import asyncio
import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
from pathlib import Path

from oaicli.core import settings as settings_module
from oaicli.core.errors import OaicliError, redact
from oaicli.envelope.engine import Envelope
from oaicli.envelope.http.build import build_runner
from oaicli.envelope.http.run import quiet_collector

HEADER = 4  # bytes of big-endian length before each pickled frame
READY_TIMEOUT = 120  # seconds a starting worker may take to build its engine (imports, tokenizer, store)
PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
WORKER_CODE = ("import sys; sys.path.insert(0, sys.argv[2]); "
               "from oaicli.envelope.http.procs import worker_main; worker_main(int(sys.argv[1]))")


class WorkerStopped(RuntimeError):
    """The worker process answering a context went away before the answer came back."""


class ProcessRunner:
    def __init__(self, processes: int, config: dict):
        # Parsing needs no store or network: a storeless twin of the workers' engine.
        self.parser = Envelope(None, **config["engine"])
        self._closing = False
        self._abandoned = False  # close() found answers in flight
        self._workers = [Worker(config, self) for _ in range(processes)]
        try:
            for worker in self._workers:
                worker.wait_until_ready()
        except BaseException:
            self.stop()
            raise

    async def start(self) -> None:
        """On the loop, before the first request: watch every worker's socket, so a worker that dies even
        while idle is noticed and replaced."""
        for worker in self._workers:
            await worker.link()

    async def run(self, parsed, on_delta=None):
        # A context always goes to the same worker. The context's queue alone would allow any (it lets one
        # request out at a time, and a turn is saved before its answer comes back), but sending each request
        # to the least busy worker measured 15 % more CPU per answer in the workers (benchmarks/README.md).
        worker = self._workers[hash(parsed.context_key) % len(self._workers)]
        try:
            link = await worker.link()
            return await link.answer(parsed, on_delta)
        except Exception as lost:  # the worker went away (or a bug here): still one envelope answer
            return self.parser.fail(parsed, lost), 500, 0.0

    def lost(self, worker: "Worker", link: "Link") -> None:
        """A worker's socket ended: fail its answers in flight now and, unless we are stopping, say so and
        start a new one (at once if the dead one had been answering; one that failed to start is tried
        again only when a request needs it, so a store that cannot be opened does not spin)."""
        link.dead = True
        failed = link.fail_all(self.parser)
        if not self._closing and link is worker.current:
            asyncio.ensure_future(self._replace(worker, link, failed))

    async def _replace(self, worker: "Worker", link: "Link", failed: int) -> None:
        for _ in range(500):  # its socket ends an instant before the process can be reaped
            if link.process.poll() is not None:
                break
            await asyncio.sleep(0.01)
        status = link.process.returncode
        how = f"was killed by signal {-status}" if status and status < 0 else f"exited (status {status})"
        print(redact(f"A worker process (pid {link.process.pid}) {how}; {failed} answer(s) in flight got an "
                     "error and were not saved. Starting a new one."), file=sys.stderr, flush=True)
        if link.started and not self._closing and link is worker.current:
            worker.replace()

    def close(self) -> None:
        """No worker saves anything from now on: each one's socket is ended, so it exits at once (answers
        it was still working on are dropped, unsaved), and this waits until they have. Safe from any thread
        and after the loop has ended."""
        self._closing = True
        self._abandoned = self._abandoned or self.busy()
        for worker in self._workers:
            worker.end()
        for worker in self._workers:
            worker.wait(10)

    def busy(self) -> bool:
        return self._abandoned or any(worker.current.pending for worker in self._workers)

    def stop(self) -> None:
        self._closing = True
        for worker in self._workers:
            worker.end()
            worker.wait(1)
            worker.current.process.kill()
            worker.current.sock.close()


class Link:
    """One worker process and the HTTP process's end of its socket pair, with the jobs sent to it."""

    _numbers = itertools.count()

    def __init__(self, config: dict):
        self.sock, theirs = socket.socketpair()
        # A session of its own: the terminal's Ctrl-C goes to the HTTP process only, even while the worker
        # is still starting (before it could ignore SIGINT), and the HTTP process decides when to stop.
        self.process = subprocess.Popen([sys.executable, "-c", WORKER_CODE, str(theirs.fileno()), PACKAGE_ROOT],
                                        pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        theirs.close()
        send_blocking(self.sock, ("config", config))
        self.frames: Frames | None = None
        self.ready: asyncio.Future | None = None  # set for a restarted worker, until it says it is ready
        self.started = False  # it said it was ready
        self.dead = False  # its socket ended
        self.pending: dict[int, tuple] = {}  # job number -> (future, on_delta, parsed)

    async def answer(self, parsed, on_delta):
        if self.dead:  # it died between being handed out and this request's turn
            raise WorkerStopped("the worker process answering this context stopped")
        number = next(self._numbers)
        future = asyncio.get_running_loop().create_future()
        self.pending[number] = (future, on_delta, parsed)
        self.frames.send(("job", number, parsed, on_delta is not None))
        return await future

    def on_frame(self, message) -> None:
        kind = message[0]
        if kind == "delta":
            entry = self.pending.get(message[1])
            if entry is not None:
                entry[1](message[2])
        elif kind == "final":
            entry = self.pending.pop(message[1], None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(message[2])
        elif self.ready is not None and not self.ready.done():  # a restarted worker: ("ready",) or ("failed", text)
            if kind == "ready":
                self.started = True
                self.ready.set_result(None)
            else:
                self.ready.set_exception(WorkerStopped(f"a new worker process failed to start: {message[1]}"))

    def fail_all(self, parser) -> int:
        pending, self.pending = self.pending, {}
        for future, _, parsed in pending.values():
            if not future.done():
                lost = WorkerStopped("the worker process answering this context stopped; the answer was not saved")
                future.set_result((parser.fail(parsed, lost), 500, 0.0))
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(WorkerStopped("a new worker process exited while starting"))
        return len(pending)


class Worker:
    """The place of one worker process: the current Link, replaced by a new one when its process dies."""

    def __init__(self, config: dict, runner: ProcessRunner):
        self.config = config
        self.runner = runner
        self.current = Link(config)
        self._linking: asyncio.Future | None = None

    def wait_until_ready(self) -> None:
        """At start, before the loop runs: ("ready",) once the worker has built its engine."""
        self.current.sock.settimeout(READY_TIMEOUT)
        try:
            message = receive_blocking(self.current.sock)
        except (EOFError, OSError) as exc:
            message = ("failed", f"it exited or did not answer ({exc})")
        self.current.sock.settimeout(None)
        if message[0] != "ready":
            raise OaicliError(f"A worker process failed to start: {message[1]}",
                              "Check the store (--store) and the settings; the same command without "
                              "--processes shows the error directly.")
        self.current.started = True

    def link(self) -> asyncio.Future:
        """The current Link once it is connected to the loop (and ready, after a restart); awaiting a
        finished future costs nothing, so every request awaits this."""
        if self.current.dead:
            self.replace()
        elif self._linking is None:
            self._linking = self._connect(self.current)
        return self._linking

    def replace(self) -> None:
        """A new worker process in place of the dead one (on the loop)."""
        self.current.sock.close()
        self.current = Link(self.config)
        self.current.ready = asyncio.get_running_loop().create_future()
        self._linking = self._connect(self.current)

    def _connect(self, link: Link) -> asyncio.Future:
        async def connect() -> Link:
            loop = asyncio.get_running_loop()
            _, link.frames = await loop.connect_accepted_socket(
                lambda: Frames(link.on_frame, lambda: self.runner.lost(self, link)), link.sock)
            if link.ready is not None:
                await link.ready
            return link
        linking = asyncio.ensure_future(connect())
        linking.add_done_callback(_retrieved)  # a failed start nobody waited for is not logged as a bug
        return linking

    def end(self) -> None:
        try:
            self.current.sock.shutdown(socket.SHUT_WR)
        except OSError:  # already closed
            pass

    def wait(self, seconds: float) -> None:
        try:
            self.current.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.current.process.kill()
            self.current.process.wait()


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class Frames(asyncio.Protocol):
    """Length-prefixed pickle frames over a stream socket, both ways; a frame calls `on_frame` as soon as
    it is whole, and the end of the stream calls `on_lost`."""

    def __init__(self, on_frame, on_lost):
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.transport = None
        self.buffer = bytearray()
        self.outgoing: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        while len(buffer) - start >= HEADER:
            size = int.from_bytes(buffer[start:start + HEADER], "big")
            end = start + HEADER + size
            if len(buffer) < end:
                break
            self.on_frame(pickle.loads(buffer[start + HEADER:end]))
            start = end
        del buffer[:start]

    def connection_lost(self, exc) -> None:
        self.on_lost()

    def send(self, message) -> None:
        """Frames sent during one step of the loop leave in one write (one system call, one wake-up of the
        other process) at the end of the step."""
        if not self.outgoing:
            self.loop.call_soon(self._flush)
        self.outgoing.append(frame(message))

    def _flush(self) -> None:
        data = b"".join(self.outgoing)
        self.outgoing.clear()
        if not self.transport.is_closing():  # the other process is gone: on_lost has failed what was pending
            self.transport.write(data)


def frame(message) -> bytes:
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return len(payload).to_bytes(HEADER, "big") + payload


def send_blocking(sock: socket.socket, message) -> None:
    sock.sendall(frame(message))


def receive_blocking(sock: socket.socket):
    size = int.from_bytes(_read_exactly(sock, HEADER), "big")
    return pickle.loads(_read_exactly(sock, size))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError("the other process closed its socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def worker_main(fd: int) -> None:
    """A worker process: build the answer path from the config frame, then answer jobs on an event loop
    until the HTTP process ends the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    try:
        _, config = receive_blocking(sock)
        runner, _ = build_runner(settings_module.Settings(config["flags"]), config["engine"], config["workers"],
                                 config["api"], alone=False)
    except EOFError:  # the HTTP process is gone already
        return
    except Exception as exc:
        send_blocking(sock, ("failed", redact(f"{exc.__class__.__name__}: {exc}")))
        return
    send_blocking(sock, ("ready",))
    quiet_collector()  # the one-process server's collector settings: the same answers run on this loop
    asyncio.run(_answer_jobs(sock, runner))


async def _answer_jobs(sock: socket.socket, runner) -> None:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()  # kept referenced while they run

    async def job(number: int, parsed, stream: bool) -> None:
        on_delta = (lambda line: frames.send(("delta", number, line))) if stream else None
        try:
            result = await runner.run(parsed, on_delta)
        except Exception as exc:  # a bug: the request still gets its answer
            result = runner.parser.fail(parsed, exc), 500, 0.0
        frames.send(("final", number, result))

    def on_frame(message) -> None:
        if message[0] == "job":
            task = loop.create_task(job(*message[1:]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def on_lost() -> None:  # the HTTP process is stopping (or gone): save nothing more, stop now
        runner.close()
        os._exit(0)

    async with runner.serving():  # a PostgreSQL store's async pool, open on this loop
        _, frames = await loop.connect_accepted_socket(lambda: Frames(on_frame, on_lost), sock)
        await loop.create_future()  # until on_lost
