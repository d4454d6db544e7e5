"""The conversation store in PostgreSQL (psycopg 3 and its pool): the shared SQL layer (sql.py) on
connections that several instances share.

Several `oaicli serve` instances (and `oaicli sessions`, `chat --session`) may use one database at once:
- migrations are numbered as in SQLite and applied once, under a transaction-scoped advisory lock, however
  many instances start together;
- `exclusive(name)` serializes everyone working on one session with a transaction-scoped advisory lock on
  a connection held for the turn: it ends with the transaction, so an instance that dies (or whose
  connection drops) releases it at once, and nothing it had not committed is kept;
- store calls made inside `exclusive` in the same thread (or asyncio task) run in that turn's transaction,
  so the exchange, its question claim and the lock end together (a failed statement fails the whole turn);
- `claim_question` lets a unique key decide which request answers a question_id: a second claimant waits
  for the first one's transaction and then loses (it returns the stored answer), or wins if the first
  rolled back.
This module is the blocking adapter (chat --session, sessions, the stdio envelope); asyncpg.py is serve's,
on its event loop. Both share `Held`, the lock key and the claim statements.
"""

import contextlib
import contextvars
import hashlib
import time

import psycopg
from psycopg_pool import ConnectionPool

from oaicli.conversation.sql import POSTGRES, SqlStore, Statements, StoreError

MIGRATIONS = POSTGRES.migrations()

# Advisory-lock keys: one fixed key for migrating; sessions get a 64-bit hash of their name.
MIGRATION_LOCK = 0x6F61_6963_6C69_0001
LOCK = "SELECT pg_advisory_xact_lock(%s)"
CLAIM = ("INSERT INTO question_claims (session_name, question_id, user_id, claimed_at) VALUES (?, ?, ?, ?) "
         "ON CONFLICT DO NOTHING RETURNING 1")
UNCLAIM = POSTGRES.statement("DELETE FROM question_claims WHERE session_name = ? AND question_id = ? AND user_id = ?")


def session_lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"session:{name}".encode("utf-8")).digest()[:8], "big", signed=True)


class Held:
    """The connection a thread or task holds inside `exclusive`, and what it did there."""

    def __init__(self, connection):
        self.connection = connection
        self.claim = None  # (session_name, question_id, user_id) claimed in this turn
        self.answered = False  # an exchange was saved in this turn

    def unclaim(self) -> tuple | None:
        """The claim to drop when the turn ends without saving an answer (so the question can be asked
        again); a turn that fails rolls its whole transaction back, the claim with it."""
        return self.claim if self.claim is not None and not self.answered else None


held_turn: contextvars.ContextVar = contextvars.ContextVar("oaicli_pg_turn", default=None)


@contextlib.contextmanager
def holding(connection):
    """While `exclusive` holds `connection` for a turn: the store calls of this thread or task see it."""
    if held_turn.get() is not None:
        raise RuntimeError("exclusive() is not re-entrant")
    token = held_turn.set(Held(connection))
    try:
        yield held_turn.get()
    finally:
        held_turn.reset(token)


class _Connection(Statements):
    def __init__(self, connection: psycopg.Connection):
        self.connection = connection

    def rows(self, sql: str, args=()) -> list:
        cursor = self.connection.execute(POSTGRES.statement(sql), args)
        return cursor.fetchall() if cursor.description else []

    def count(self, sql: str, args=()) -> int:
        return self.connection.execute(POSTGRES.statement(sql), args).rowcount

    def many(self, sql: str, rows) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(POSTGRES.statement(sql), rows)


class PgBase(SqlStore):
    """What both PostgreSQL adapters share: the dialect, the claim and the turn's bookkeeping."""

    dialect = POSTGRES
    busy = psycopg.OperationalError
    errors = psycopg.Error

    statements: type  # the adapter's Statements over one of its connections

    def _pooled(self) -> contextlib.AbstractContextManager:
        raise NotImplementedError

    @contextlib.contextmanager
    def _read(self):
        """Inside `exclusive` the turn's connection, else a pooled one."""
        held = held_turn.get()
        if held is not None:
            yield self.statements(held.connection)
            return
        with self._pooled() as connection:
            yield self.statements(connection)

    def _answered(self) -> None:
        held = held_turn.get()
        if held is not None:
            held.answered = True

    def claim_question(self, session_name: str, question_id: str, user_id: str | None) -> bool:
        """Inside `exclusive`: True if this turn is the one to answer the question_id, False if it was
        answered already (then find_exchange returns the answer). A concurrent claimant of the same key
        waits here until the first one's turn ends; an unanswered claim is dropped when the turn ends."""
        held = held_turn.get()
        if held is None:
            raise RuntimeError("claim_question() must be called inside exclusive()")
        key = (session_name, question_id, user_id or "")
        with self._write() as db:
            if db.one(CLAIM, (*key, time.time())) is None:
                return False
        held.claim = key
        return True


class PgStore(PgBase):
    """Sessions and turns in PostgreSQL, for blocking callers; one store may be shared by threads."""

    statements = _Connection

    def __init__(self, pool: ConnectionPool, url: str):
        self.pool = pool
        self.url = url
        self.path = None  # not a file: callers that show where the store is use `url`

    @classmethod
    def open(cls, url: str, *, max_connections: int = 10) -> "PgStore":
        """Connect (a pool of up to `max_connections`) and apply any migrations not yet applied."""
        try:
            check_url(url)
            pool = ConnectionPool(url, min_size=1, max_size=max(max_connections, 2), open=False,
                                  kwargs={"autocommit": False}, name="oaicli-store")
            pool.open(wait=True, timeout=30)
        except Exception as exc:
            raise cannot_open(url, exc) from exc
        store = cls(pool, url)
        try:
            with store.pool.connection() as connection, connection.transaction():
                connection.execute(LOCK, (MIGRATION_LOCK,))
                store._apply_migrations(_Connection(connection))
        except psycopg.Error as exc:
            pool.close()
            raise cannot_migrate(url, exc) from exc
        return store

    def close(self) -> None:
        self.pool.close()

    def server_connections(self) -> int:
        """How many connections the server accepts in all (its max_connections)."""
        return int(self._one("SHOW max_connections")[0])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _pooled(self):
        """A pooled connection, in a transaction of its own."""
        return self.pool.connection()

    # Inside `exclusive` writes run in the turn's transaction as they are, without a savepoint (two round
    # trips each): a failed statement fails the turn, and the whole turn is rolled back.
    _write = PgBase._read

    @contextlib.contextmanager
    def exclusive(self, session_name: str):
        """Hold the session's lock for a turn: every instance, process and thread working on it waits.

        The lock is transaction-scoped on a connection held until the block ends, so it cannot outlive
        that connection; the block's store calls (same thread or task) run in that transaction."""
        with self.pool.connection() as connection, connection.transaction():
            connection.execute(LOCK, (session_lock_key(session_name),))
            with holding(connection) as held:
                yield
                if held.unclaim():
                    connection.execute(UNCLAIM, held.unclaim())


def check_url(url: str) -> None:
    """One plain connection first: a wrong URL or a server that is down fails now, once, instead of the
    pool retrying in the background until its timeout."""
    psycopg.connect(url, connect_timeout=10).close()


def cannot_open(url: str, exc: Exception) -> StoreError:
    return StoreError(f"Cannot open the session store {_shown(url)}: {_reason(exc)}.",
                      "Check the --store URL and that the database server is running.")


def cannot_migrate(url: str, exc: Exception) -> StoreError:
    return StoreError(f"Cannot migrate the session store {_shown(url)}: {_reason(exc)}.")


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    from psycopg.conninfo import conninfo_to_dict
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "(an unreadable PostgreSQL URL)"
    user = parts.get("user")
    host = parts.get("host", "localhost")
    return f"postgresql://{user + '@' if user else ''}{host}{':' + parts['port'] if parts.get('port') else ''}" \
           f"/{parts.get('dbname', '')}"


def _reason(exc: Exception) -> str:
    from oaicli.core.errors import redact
    return redact(" ".join(str(exc).split())) or exc.__class__.__name__
