"""serve's answer path on the event loop, with no thread: the envelope's turn (Envelope.turn, the same one
`chat --envelope` runs) driven with the async client, on a SQLite store called from the loop.

Measured before (serve-profile in the notes of issue 13): a worker thread per answer and the GIL convoy of
128 threads were most of the added latency. Here a request's turn is a coroutine: the context's order comes
from the app's queues (queues.py), other processes sharing the store are kept out by the session's file
lock, taken without blocking the loop, and the store's statements run on the loop (sub-millisecond with
WAL and synchronous=NORMAL). A PostgreSQL store brings its own `hold` (its advisory lock, on the loop)
and `step` (each step of the turn with its statements awaited): see conversation/pgasync.py."""

import asyncio
import contextlib
import time

from oaicli.envelope.engine import Pending
from oaicli.envelope.http.exchange import GatedStore, status_for
from oaicli.envelope.upstream import AsyncUpstream

FIRST_LOCK_PAUSE = 0.001
LONGEST_LOCK_PAUSE = 0.05


class LoopAnswerer:
    """Answers parsed requests on the loop: (response, HTTP status, seconds upstream)."""

    def __init__(self, engine, client, notice=None, api: str = "chat", turns=None):
        """`engine`: the Envelope (stream=False), a streaming twin is made for SSE requests.
        `client`: an AsyncApiClient; `api`: chat, responses or auto (envelope/upstream.py). `turns`: how a
        turn holds its context and runs its steps; by default the SQLite store's (FileLockedTurns)."""
        # No thread saves here, and a PostgreSQL save awaits inside the turn: a thread lock around it
        # would block the loop, so the gate is a plain flag.
        self.store = GatedStore(engine.store, gate=contextlib.nullcontext())
        self.turns = turns or FileLockedTurns(self.store)
        plain = engine.with_store(self.store)
        streaming = plain.with_store(self.store)
        streaming.stream = True
        self.parser = plain
        self._engines = {False: plain, True: streaming}
        self.upstream = AsyncUpstream(client, api, notice)
        self.client = client
        self.notice = notice
        self.active = 0  # turns being worked on, whatever became of their HTTP requests
        self.dropped = False  # a turn was cancelled unfinished (the loop ended at shutdown)

    async def run(self, parsed, on_delta=None):
        engine = self._engines[on_delta is not None]
        self.active += 1
        upstream, error = 0.0, None
        try:
            async with self.turns.hold(parsed.session_name):
                response, upstream, error = await self._turn(engine, parsed, on_delta)
        except Exception as exc:  # the store failed: still one envelope answer
            response, error = engine.fail(parsed, exc), exc
        except asyncio.CancelledError:
            self.dropped = True
            raise
        finally:
            self.active -= 1
        return response, status_for(response, error), upstream

    async def _turn(self, engine, parsed, on_delta):
        turn = engine.turn(parsed, self.notice)
        upstream, error = 0.0, None
        done, step = await self.turns.step(advance, next, turn)
        while not done:
            started = time.perf_counter()
            try:
                result = await self.upstream.perform(step, _deltas(engine, step, on_delta))
            except Exception as exc:
                error = exc
                upstream += time.perf_counter() - started
                done, step = await self.turns.step(advance, turn.throw, exc)
                continue
            upstream += time.perf_counter() - started
            done, step = await self.turns.step(advance, turn.send, result)
        return step, upstream, error

    def close(self) -> None:
        """No answer is saved from now on (a save in progress completes first)."""
        self.store.close_gate()

    def serving(self):
        """An async context manager for the time serve runs on the loop (a PostgreSQL store's pool)."""
        return self.turns.serving()

    def busy(self) -> bool:
        return self.active > 0 or self.dropped


def advance(function, *args) -> tuple[bool, object]:
    """One step of the envelope's turn (next, send or throw): (False, the next Pending), or (True, the
    response) once the turn returned. StopIteration cannot cross an await, so it ends here."""
    try:
        return False, function(*args)
    except StopIteration as finished:
        return True, finished.value


class FileLockedTurns:
    """The SQLite store's turns: the session's file lock (against other processes) taken without blocking
    the loop; the steps run on the loop as they are (the store's statements take microseconds)."""

    def __init__(self, store):
        self.store = store

    @contextlib.asynccontextmanager
    async def hold(self, session_name: str):
        lock = self.store.file_lock(session_name)
        await _acquire(lock)
        try:
            yield
        finally:
            lock.release()

    @staticmethod
    async def step(function, *args):
        return function(*args)

    @contextlib.asynccontextmanager
    async def serving(self):
        yield self


async def _acquire(lock) -> None:
    """The session's file lock without blocking the loop: almost always free at once; when another process
    (chat --session, another serve) holds it, try again after a pause that doubles up to 50 ms."""
    pause = FIRST_LOCK_PAUSE
    while not lock.acquire(blocking=False):
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_LOCK_PAUSE)


def _deltas(engine, step, on_delta):
    """The answer's pieces as delta lines, for a question step of a streamed request."""
    if on_delta is None or not isinstance(step, Pending):
        return None
    return lambda text: on_delta(engine.delta_line(step, text))
