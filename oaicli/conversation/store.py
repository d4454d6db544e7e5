"""The local conversation store: sessions and their turns in SQLite (WAL), with numbered migrations.

The SQL is the shared layer's (oaicli/conversation/sql.py); this adapter brings SQLite's connection and
transactions. One Store may be shared by threads (every statement runs under the store's lock). Several
processes share the database file; `exclusive(name)` serializes everyone working on one session
(a lock file per session) while other sessions go on concurrently.
"""

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from oaicli.conversation.locks import FileLock, SessionMutex, digest
from oaicli.conversation.rows import (  # noqa: F401 (Turn, Session, speaker_name: the store's public names)
    ROLES,
    Session,
    Turn,
    speaker_name,
)
from oaicli.conversation.sql import (  # noqa: F401 (the history walk and StoreError: the store's public names)
    MIGRATIONS_TABLE,
    SQLITE,
    SqlStore,
    Statements,
    StoreError,
    group_exchanges,
    newest_exchanges,
    take_newest,
    turn_cost,
)
from oaicli.core.home import unwritable

MIGRATIONS = SQLITE.migrations()


def default_path() -> Path:
    from oaicli.core import settings
    return settings.home_dir() / "sessions.db"


def session_names(path: Path | None = None) -> list[str]:
    """The names in the store, newest first, for shell completion: read-only, creating nothing."""
    path = Path(path) if path else default_path()
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return [row[0] for row in db.execute("SELECT name FROM sessions ORDER BY updated_at DESC")]
        finally:
            db.close()
    except sqlite3.Error:
        return []


def _make_folder(folder: Path) -> None:
    """oaicli's own data folder is created private (0700); any other folder as mkdir -p would."""
    from oaicli.core import settings
    if folder == settings.home_dir():
        settings.ensure_home()
    folder.mkdir(parents=True, exist_ok=True)


class _Connection(Statements):
    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def rows(self, sql: str, args=()) -> list:
        return self.connection.execute(sql, args).fetchall()

    def count(self, sql: str, args=()) -> int:
        return self.connection.execute(sql, args).rowcount

    def many(self, sql: str, rows) -> None:
        self.connection.executemany(sql, rows)


class Store(SqlStore):
    dialect = SQLITE
    busy = sqlite3.OperationalError
    errors = sqlite3.Error

    def __init__(self, connection: sqlite3.Connection, path: Path):
        self.db = connection
        self.statements = _Connection(connection)
        self.path = path
        self.lock = threading.RLock()

    @classmethod
    def open(cls, path: Path | None = None) -> "Store":
        """Open (creating if needed) the store; runs any migrations not yet applied."""
        path = Path(path) if path else default_path()
        try:
            _make_folder(path.parent)
            if not path.exists():  # conversations are private: the file (and SQLite's -wal/-shm) 0600
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            connection = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
            store = cls(connection, path)
            store._first_steps()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise unwritable(path, exc) or StoreError(f"Cannot open the session store {path}: {exc}.",
                                                      "Move the file aside to start a new store.") from exc
        return store

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _first_steps(self, attempts: int = 100) -> None:
        """Configure and migrate. Switching a new file to WAL fails at once with "database is locked"
        (SQLite's busy timeout does not cover it) while another process opens the same new file: retry."""
        for attempt in range(attempts):
            try:
                self._configure()
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05)

    def _configure(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        # Deleted turns are overwritten with zeros, so `sessions delete` really deletes the text.
        self.db.execute("PRAGMA secure_delete=ON")

    def _migrate(self) -> None:
        """A store already migrated (the usual case) is opened without taking the write lock."""
        with self._read() as db:
            db.count(MIGRATIONS_TABLE.format(**self.dialect.types))
            done = {row[0] for row in db.rows("SELECT id FROM schema_migrations")}
        if any(number not in done for number, _, _ in MIGRATIONS):
            with self._write() as db:
                self._apply_migrations(db)

    @contextlib.contextmanager
    def _read(self):
        with self.lock:
            yield self.statements

    @contextlib.contextmanager
    def _write(self):
        """One write transaction, taken at once (BEGIN IMMEDIATE) so it never fails half-way on a busy lock."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.statements
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextlib.contextmanager
    def exclusive(self, session_name: str):
        """Hold the session's lock: other processes and threads working on it wait until this one is done.

        Threads of one process queue on a per-session mutex; processes on an flock'ed file in the
        store's `locks/` directory, named by a hash of the session name, so other sessions stay
        concurrent and a crashed process releases its lock. The file is removed on release, so idle
        sessions (one per envelope user) leave no files behind."""
        with SessionMutex(str(self.path), session_name):
            with self.file_lock(session_name):
                yield

    def file_lock(self, session_name: str) -> FileLock:
        """The session's lock between processes alone: serve's event loop orders its own requests itself
        and takes only this one, without blocking (FileLock.acquire(blocking=False))."""
        return FileLock(self.path.parent / "locks" / f"{digest(session_name)}.lock")

    def _removed(self) -> None:
        """Copy the WAL into the database and empty it, so removed text does not linger in the log."""
        with self.lock:
            try:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:
                pass
