"""The PostgreSQL store on serve's event loop: the one SQL layer (sql.py) over psycopg's async connections
and AsyncConnectionPool, with no thread.

The envelope engine calls the store with plain calls; serve runs each step of a turn with `step()`, which
runs it in a greenlet of the loop's thread (bridge.py): every statement is awaited on the loop, so a
thousand turns waiting for PostgreSQL cost no thread each. `exclusive()` is the blocking adapter's
(pgstore.py) as an async context manager: the per-session advisory lock, transaction-scoped, on a
connection held for the turn, so it ends with the turn or with the connection (an instance killed
mid-turn releases it at once and leaves nothing uncommitted); the turn's statements run in that
transaction, the question_id claim with them.
"""

import contextlib

import psycopg
from psycopg_pool import AsyncConnectionPool

from oaicli.conversation.bridge import entered, run_awaiting, wait_for
from oaicli.conversation.pgstore import UNCLAIM, PgBase, cannot_open, held_turn, holding, session_lock_key
from oaicli.conversation.sql import POSTGRES, Statements


class _Connection(Statements):
    """Statements on an async connection, called from code running under run_awaiting."""

    def __init__(self, connection: psycopg.AsyncConnection):
        self.connection = connection

    def rows(self, sql: str, args=()) -> list:
        return wait_for(self._rows(POSTGRES.statement(sql), args))

    async def _rows(self, sql: str, args) -> list:
        cursor = await self.connection.execute(sql, args)
        return await cursor.fetchall() if cursor.description else []

    def count(self, sql: str, args=()) -> int:
        return wait_for(self._count(POSTGRES.statement(sql), args))

    async def _count(self, sql: str, args) -> int:
        return (await self.connection.execute(sql, args)).rowcount

    def many(self, sql: str, rows) -> None:
        wait_for(self._many(POSTGRES.statement(sql), list(rows)))

    async def _many(self, sql: str, rows: list) -> None:
        async with self.connection.cursor() as cursor:
            await cursor.executemany(sql, rows)


class AsyncPgStore(PgBase):
    """Sessions and turns in PostgreSQL for one event loop. Its store methods are plain calls, to be made
    inside `step()`; open the pool with `serving()` on the loop first. The schema must be migrated
    already (serve opens the blocking PgStore once at start, which migrates and checks the URL)."""

    statements = _Connection

    def __init__(self, url: str, *, max_connections: int):
        self.url = url
        self.path = None
        # Each turn holds one connection (its lock lives in that connection's transaction), so the pool
        # is as large as the turns answered at once.
        self.pool = AsyncConnectionPool(url, min_size=1, max_size=max(max_connections, 2), open=False,
                                        kwargs={"autocommit": True}, name="oaicli-serve-store")

    @contextlib.asynccontextmanager
    async def serving(self):
        """The pool, open while serve runs on this loop."""
        try:
            await self.pool.open(wait=True, timeout=30)
        except Exception as exc:
            raise cannot_open(self.url, exc) from exc
        try:
            yield self
        finally:
            await self.pool.close()

    def close(self) -> None:
        """Nothing left to close here: the pool is closed on the loop when `serving()` ends."""

    @staticmethod
    async def step(function, *args):
        """function(*args) (the engine's turn, a step at a time) with this store's statements awaited."""
        return await run_awaiting(function, *args)

    def _pooled(self):
        """A pooled connection, in autocommit: a read outside a turn is one statement, one round trip."""
        return entered(self.pool.connection())

    @contextlib.contextmanager
    def _write(self):
        """Inside a turn its transaction (see pgstore.PgStore._write), else a pooled one's own."""
        if held_turn.get() is not None:
            with self._read() as db:
                yield db
            return
        with entered(self.pool.connection()) as connection, entered(connection.transaction()):
            yield _Connection(connection)

    @contextlib.asynccontextmanager
    async def exclusive(self, session_name: str):
        """Hold the session's lock for a turn (see pgstore.PgStore.exclusive): the steps run inside see the
        turn's connection and transaction."""
        async with self.pool.connection() as connection:
            # BEGIN and the lock in one round trip (the key is our own integer, not input).
            await connection.execute(f"BEGIN; SELECT pg_advisory_xact_lock({session_lock_key(session_name)})")
            try:
                with holding(connection) as held:
                    yield
                    if held.unclaim():
                        await connection.execute(UNCLAIM, held.unclaim())
            except BaseException:
                await _rollback(connection)
                raise
            await connection.execute("COMMIT")

    hold = exclusive


async def _rollback(connection: psycopg.AsyncConnection) -> None:
    """End a failed turn; a connection that broke meanwhile is dropped by the pool, its transaction with it."""
    with contextlib.suppress(psycopg.Error):
        await connection.execute("ROLLBACK")
