"""The local conversation store: sessions and their turns in SQLite (WAL), with numbered migrations.

The SQL is the shared layer's (oaicli/conversation/sql.py); this adapter brings SQLite's connection and
transactions. One Store may be shared by threads (every statement runs under the store's lock). Several
processes share the database file; `exclusive(name)` serializes everyone working on one session
(a lock between processes keyed by the session's name) while other sessions go on concurrently.
"""

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from oaicli.conversation.locks import ByteLocks, FileLock, SessionMutex, digest
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
# Seconds between checkpoints when a server moved them off its connection (checkpoint_in_background).
CHECKPOINT_EVERY = 1.0


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


class _Checkpointer(threading.Thread):
    """Checkpoints the store's WAL every `every` seconds (PASSIVE: it never blocks a writer or a reader)."""

    def __init__(self, path: Path, every: float):
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self.path = path
        self.every = every
        self._stopping = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping.wait(self.every):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass  # a busy or full disk: the log just grows until the next try
        finally:
            db.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join()


class Store(SqlStore):
    dialect = SQLITE
    busy = sqlite3.OperationalError
    errors = sqlite3.Error

    def __init__(self, connection: sqlite3.Connection, path: Path):
        self.db = connection
        self.statements = _Connection(connection)
        self.path = path
        self.lock = threading.RLock()
        self._byte_locks = ByteLocks(path.parent / "locks") if ByteLocks.supported() else None
        self._checkpointer: "_Checkpointer | None" = None

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
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self.lock:
            self.db.close()
        if self._byte_locks is not None:
            self._byte_locks.close()

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

    def checkpoint_in_background(self, every: float = CHECKPOINT_EVERY) -> None:
        """Commits on this connection never wait for the disk (for serve's event loop): with WAL and
        synchronous=NORMAL a commit only appends to the log, but the commit that crosses the auto-
        checkpoint threshold copies the log into the database and fsyncs both, which stalled the loop
        for up to a second on a busy disk. A thread with its own connection checkpoints instead."""
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = _Checkpointer(self.path, every)
        self._checkpointer.start()

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

        Threads of one process queue on a per-session mutex; processes on a lock in the store's `locks/`
        directory keyed by a hash of the session name (one byte of a shared file, or else a file of its
        own, removed on release), so other sessions stay concurrent, a crashed process releases its
        lock, and idle sessions (one per envelope user) leave nothing behind."""
        with SessionMutex(str(self.path), session_name):
            with self.file_lock(session_name):
                yield

    def file_lock(self, session_name: str):
        """The session's lock between processes alone: serve's event loop orders its own requests itself
        and takes only this one, without blocking (acquire(blocking=False))."""
        if self._byte_locks is not None:
            return self._byte_locks.lock(session_name)
        return FileLock(self.path.parent / "locks" / f"{digest(session_name)}.lock")

    def _removed(self) -> None:
        """Copy the WAL into the database and empty it, so removed text does not linger in the log."""
        with self.lock:
            try:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:
                pass
