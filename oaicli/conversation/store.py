"""The local conversation store: sessions and their turns in SQLite (WAL), with numbered migrations.

One Store may be shared by threads (every statement runs under the store's lock). Several
processes share the database file; `exclusive(name)` serializes everyone working on one session
(a lock file per session) while other sessions go on concurrently.
"""

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from oaicli.conversation.locks import ByteLocks, FileLock, SessionMutex, digest
from oaicli.conversation.rows import (  # noqa: F401 (Turn, Session, speaker_name: the store's public names)
    ROLES,
    SESSION_COLUMNS,
    TURN_COLUMNS,
    Session,
    Turn,
    content_tokens,
    session_from_row,
    speaker_name,
    split_messages,
    turn_from_row,
)
from oaicli.core.errors import InputError, OaicliError
from oaicli.core.home import unwritable

# Numbered migrations; `schema_migrations` records which ran. Append new ones, never edit old ones.
MIGRATIONS = [
    (1, "sessions and turns", """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT 'named',
            model TEXT,
            system TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX sessions_by_update ON sessions (kind, updated_at);
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            tokens INTEGER,
            tokens_encoding TEXT,
            question_id TEXT,
            model TEXT,
            usage TEXT,
            created_at REAL NOT NULL,
            user_id TEXT
        );
        CREATE INDEX turns_tail ON turns (session_id, id);
        CREATE INDEX turns_question ON turns (session_id, question_id) WHERE question_id IS NOT NULL;
    """),
    # Server-side context (chat --api responses --context previous|server): the Responses API id of each
    # stored answer, and the Conversation a session is mapped to.
    (2, "response ids and conversations", """
        ALTER TABLE turns ADD COLUMN response_id TEXT;
        ALTER TABLE sessions ADD COLUMN conversation_id TEXT;
    """),
]

# Rows read per step when walking a session backwards; grows so long tails need few queries.
_FIRST_BATCH = 32
# Seconds between checkpoints when a server moved them off its connection (checkpoint_in_background).
CHECKPOINT_EVERY = 1.0


class StoreError(OaicliError):
    """The store cannot be opened or used (a corrupt or foreign file, a full disk)."""


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





def turn_cost(turn: Turn, counter, named: bool = False) -> int:
    return counter.message_tokens(turn.role, content_tokens(turn, counter), turn.speaker() if named else None)


def group_exchanges(turns: list[Turn]) -> list[list[Turn]]:
    """Split turns (oldest first) into exchanges: a user turn with every turn up to the next user turn.

    A user turn with no answer (an imported conversation may hold one) is left out: sent, it would put two
    user messages in a row, and the same question twice when it is asked again."""
    groups: list[list[Turn]] = []
    for turn in turns:
        if turn.role == "user" or not groups:
            groups.append([turn])
        else:
            groups[-1].append(turn)
    return [group for group in groups if not _unanswered(group)]


def _unanswered(group: list[Turn]) -> bool:
    return len(group) == 1 and group[0].role == "user"


def newest_exchanges(store, session_id: int) -> Iterator[list[Turn]]:
    """The session's answered exchanges, newest first, read backwards in growing batches so that a walk
    that stops early reads only the tail. Works on any store with `_rows_before`."""
    pending: list[Turn] = []  # turns newer than the last user turn seen, newest first
    before, batch = None, _FIRST_BATCH
    while True:
        rows = store._rows_before(session_id, before, batch)
        if not rows:
            break
        for row in rows:
            pending.append(turn_from_row(row))
            if pending[-1].role == "user":
                group, pending = list(reversed(pending)), []
                if not _unanswered(group):  # not history (see group_exchanges)
                    yield group
        before = rows[-1][0]
        batch = min(batch * 4, 4096)
    if pending:  # turns before the first user turn (an imported greeting)
        yield list(reversed(pending))


def take_newest(exchanges: Iterable[list[Turn]], token_budget: int | None, max_exchanges: int | None,
                cost: Callable[[Turn], int]) -> tuple[list[Turn], bool]:
    """The newest exchanges (given newest first) while their `cost` fits `token_budget`, at most
    `max_exchanges`, oldest first; and whether the budget (not the session's length or the cap) stopped it."""
    kept: list[list[Turn]] = []
    spent = 0
    if max_exchanges is None or max_exchanges > 0:
        for group in exchanges:
            group_cost = sum(cost(turn) for turn in group)
            if token_budget is not None and spent + group_cost > token_budget:
                return _oldest_first(kept), True
            spent += group_cost
            kept.append(group)
            if max_exchanges is not None and len(kept) >= max_exchanges:
                break
    return _oldest_first(kept), False


def _oldest_first(groups: list[list[Turn]]) -> list[Turn]:
    return [turn for group in reversed(groups) for turn in group]


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


class Store:
    def __init__(self, connection: sqlite3.Connection, path: Path):
        self.db = connection
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
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
        done = {row[0] for row in self.db.execute("SELECT id FROM schema_migrations")}
        if all(number in done for number, _, _ in MIGRATIONS):
            return
        with self._write():
            done = {row[0] for row in self.db.execute("SELECT id FROM schema_migrations")}
            for number, name, sql in MIGRATIONS:
                if number not in done:
                    for statement in filter(str.strip, sql.split(";")):
                        self.db.execute(statement)
                    self.db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, time.time()))

    @contextlib.contextmanager
    def _write(self):
        """One write transaction, taken at once (BEGIN IMMEDIATE) so it never fails half-way on a busy lock."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # Sessions

    def get_session(self, name: str) -> Session | None:
        with self.lock:
            return session_from_row(self.db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE name = ?", (name,)).fetchone())

    def require_session(self, name: str) -> Session:
        session = self.get_session(name)
        if session is None:
            raise InputError(f"No session named {name!r}.", "See `oaicli sessions list`.")
        return session

    def ensure_session(self, name: str, *, model=None, system=None, kind="named") -> Session:
        """The session, created if new; a given model or system prompt replaces the stored one."""
        if not name or not name.strip():
            raise InputError("The session name is empty.")
        found = self.get_session(name)
        if found and (model is None or model == found.model) and (system is None or system == found.system):
            return found  # the common case (every envelope request) needs no write transaction
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO sessions (name, kind, model, system, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                       (name, kind, model, system, now, now))
            if model is not None:
                db.execute("UPDATE sessions SET model = ? WHERE name = ?", (model, name))
            if system is not None:
                db.execute("UPDATE sessions SET system = ? WHERE name = ?", (system, name))
            return session_from_row(db.execute(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE name = ?",
                                       (name,)).fetchone())

    def latest_session(self) -> Session | None:
        """The named session used most recently (for `chat -c`); envelope contexts are not candidates."""
        with self.lock:
            return session_from_row(self.db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE kind = 'named' "
                "ORDER BY updated_at DESC, id DESC LIMIT 1").fetchone())

    def list_sessions(self) -> list[dict]:
        with self.lock:
            rows = self.db.execute(
                "SELECT s.name, s.kind, s.model, (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id), "
                "s.created_at, s.updated_at FROM sessions s ORDER BY s.updated_at DESC, s.id DESC").fetchall()
        return [{"name": name, "kind": kind, "model": model, "turns": turns, "created_at": created,
                 "updated_at": updated} for name, kind, model, turns, created, updated in rows]

    def count_turns(self, session_id: int) -> int:
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", (session_id,)).fetchone()[0]

    # Turns

    def turns(self, session_id: int):
        """Every turn, oldest first, read lazily (for show and export)."""
        last = 0
        while True:
            with self.lock:
                rows = self.db.execute(f"SELECT {TURN_COLUMNS} FROM turns WHERE session_id = ? AND id > ? "
                                       "ORDER BY id LIMIT 1000", (session_id, last)).fetchall()
            if not rows:
                return
            for row in rows:
                yield turn_from_row(row)
            last = rows[-1][0]

    def last_turns(self, session_id: int, count: int) -> list[Turn]:
        """The newest `count` turns, oldest first (read from the end)."""
        rows = self._rows_before(session_id, None, count)
        return [turn_from_row(row) for row in reversed(rows)]

    def tail(self, session_id: int, *, token_budget: int | None, max_turns: int | None, counter,
             named: bool = False) -> list[Turn]:
        """The newest whole exchanges that fit `token_budget` (message tokens) and `max_turns` (exchanges);
        `named`: user turns will be sent with their speaker's name (see Turn.message), which costs tokens.

        Walks the session backwards from its newest turn and stops at the first exchange that does not
        fit, so only the tail is read. Counts missing from the store (or made for another tokenizer)
        are computed and cached."""
        kept, _ = take_newest(newest_exchanges(self, session_id), token_budget, max_turns,
                              lambda turn: turn_cost(turn, counter, named))
        self._cache_counts(kept)
        return kept

    def _rows_before(self, session_id: int, before: int | None, limit: int):
        with self.lock:
            if before is None:
                return self.db.execute(f"SELECT {TURN_COLUMNS} FROM turns WHERE session_id = ? "
                                       "ORDER BY id DESC LIMIT ?", (session_id, limit)).fetchall()
            return self.db.execute(f"SELECT {TURN_COLUMNS} FROM turns WHERE session_id = ? AND id < ? "
                                   "ORDER BY id DESC LIMIT ?", (session_id, before, limit)).fetchall()

    def _cache_counts(self, turns: list[Turn]) -> None:
        dirty = [(t.tokens, t.encoding, t.id) for t in turns if t.dirty]
        if not dirty:
            return
        try:
            with self._write() as db:
                db.executemany("UPDATE turns SET tokens = ?, tokens_encoding = ? WHERE id = ?", dirty)
        except sqlite3.OperationalError:
            pass  # the cache is an optimisation; a busy or read-only store must not fail a chat
        for turn in turns:
            turn.dirty = False

    def find_exchange(self, session_id: int, question_id: str, user_id: str | None = None) -> tuple[Turn, Turn] | None:
        """The stored question and answer with this question_id (and user), for idempotent retries."""
        with self.lock:
            rows = self.db.execute(f"SELECT {TURN_COLUMNS} FROM turns WHERE session_id = ? AND question_id = ? "
                                   "ORDER BY id", (session_id, question_id)).fetchall()
        turns = [turn_from_row(row) for row in rows]
        for index, turn in enumerate(turns[:-1]):
            if turn.role == "user" and (user_id is None or turn.user_id == user_id):
                answer = turns[index + 1]
                if answer.role == "assistant":
                    return turn, answer
        return None

    def add_exchange(self, session_id: int, question: Turn, answer: Turn, *, counter=None,
                     conversation_id: str | None = None) -> None:
        """Store a question and its answer in ONE transaction: both rows or neither.

        With a counter, both turns' token counts are cached at once. A `conversation_id` maps the session
        to that server-side Conversation in the same transaction."""
        now = time.time()
        if counter is not None:
            for turn in (question, answer):
                content_tokens(turn, counter)
        rows = [(session_id, t.role, t.content, t.tokens, t.encoding if t.tokens is not None else None,
                 t.question_id, t.model, json.dumps(t.usage) if t.usage is not None else None,
                 t.created_at or now, t.user_id, t.response_id) for t in (question, answer)]
        with self._write() as db:
            db.executemany("INSERT INTO turns (session_id, role, content, tokens, tokens_encoding, question_id, "
                           "model, usage, created_at, user_id, response_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           rows)
            db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
            if conversation_id is not None:
                db.execute("UPDATE sessions SET conversation_id = ? WHERE id = ?", (conversation_id, session_id))

    def last_response_id(self, session_id: int) -> str | None:
        """The Responses API id of the session's newest turn when it is an answer that has one: what the
        next turn chains on with previous_response_id."""
        with self.lock:
            row = self.db.execute("SELECT role, response_id FROM turns WHERE session_id = ? ORDER BY id DESC "
                                  "LIMIT 1", (session_id,)).fetchone()
        return row[1] if row and row[0] == "assistant" else None

    def conversation_of(self, session_id: int) -> str | None:
        """The server-side Conversation (conv_...) this session is mapped to, if any."""
        with self.lock:
            row = self.db.execute("SELECT conversation_id FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row[0] if row else None

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

    # Management

    def reset(self, name: str) -> int:
        """Remove a session's turns but keep the session; returns how many turns were removed."""
        session = self.require_session(name)
        with self._write() as db:
            removed = db.execute("DELETE FROM turns WHERE session_id = ?", (session.id,)).rowcount
            # A reset session starts a new server-side context too.
            db.execute("UPDATE sessions SET updated_at = ?, conversation_id = NULL WHERE id = ?",
                       (time.time(), session.id))
        self._checkpoint()
        return removed

    def rename(self, old: str, new: str) -> None:
        if not new.strip():
            raise InputError("The new session name is empty.")
        session = self.require_session(old)
        with self._write() as db:
            if db.execute("SELECT 1 FROM sessions WHERE name = ?", (new,)).fetchone():
                raise InputError(f"A session named {new!r} already exists.", "Delete it first or pick another name.")
            db.execute("UPDATE sessions SET name = ? WHERE id = ?", (new, session.id))

    def delete(self, name: str) -> int:
        """Delete a session and all its turns; returns how many turns were removed."""
        session = self.require_session(name)
        with self._write() as db:
            removed = db.execute("DELETE FROM turns WHERE session_id = ?", (session.id,)).rowcount
            db.execute("DELETE FROM sessions WHERE id = ?", (session.id,))
        self._checkpoint()
        return removed

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and empty it, so removed text does not linger in the log."""
        with self.lock:
            try:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:
                pass

    def export_messages(self, name: str) -> list[dict]:
        """The session as a Chat Completions messages array: the system prompt first, if set."""
        session = self.require_session(name)
        messages = [{"role": "system", "content": session.system}] if session.system else []
        messages.extend(turn.message() for turn in self.turns(session.id))
        return messages

    def is_empty(self) -> bool:
        with self.lock:
            return self.db.execute("SELECT 1 FROM sessions LIMIT 1").fetchone() is None

    def insert_copy(self, session: Session, turns) -> int:
        """Insert a session copied from another store, keeping its id, its turns' ids and cached counts
        (one transaction); the number of turns."""
        rows = [(session.id, t.id, t.role, t.content, t.tokens, t.encoding, t.question_id, t.model,
                 json.dumps(t.usage) if t.usage is not None else None, t.created_at, t.user_id, t.response_id)
                for t in turns]
        try:
            with self._write() as db:
                db.execute(f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (session.id, session.name, session.kind, session.model, session.system,
                            session.created_at, session.updated_at, session.conversation_id))
                db.executemany(f"INSERT INTO turns (session_id, {TURN_COLUMNS}) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot copy session {session.name!r}: {exc}.") from exc
        return len(rows)

    def finish_copy(self) -> None:
        """Nothing to do after a copy: SQLite's ids continue from the largest one by themselves."""

    def import_messages(self, name: str, messages: list[dict], *, replace: bool = False,
                        append: bool = False, model: str | None = None) -> int:
        """Store a messages array as a session's turns, in one transaction; returns the number of turns.

        A leading system message becomes the session's system prompt. An existing session with turns
        is refused unless `replace` (drop its turns first) or `append` is given."""
        if not name or not name.strip():
            raise InputError("The session name is empty.")
        system, turns = split_messages(messages)
        now = time.time()
        with self._write() as db:
            row = db.execute("SELECT id FROM sessions WHERE name = ?", (name,)).fetchone()
            if row is None:
                session_id = db.execute("INSERT INTO sessions (name, kind, model, system, created_at, updated_at) "
                                        "VALUES (?, 'named', ?, ?, ?, ?)", (name, model, system, now, now)).lastrowid
            else:
                session_id = row[0]
                existing = db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", (session_id,)).fetchone()[0]
                if existing and not (replace or append):
                    raise InputError(f"Session {name!r} already has {existing} turns.",
                                     "Pass --replace to overwrite them or --append to add to them.")
                if replace:
                    db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
                if system is not None or replace:
                    db.execute("UPDATE sessions SET system = ? WHERE id = ?", (system, session_id))
                if model is not None:
                    db.execute("UPDATE sessions SET model = ? WHERE id = ?", (model, session_id))
                db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
            db.executemany("INSERT INTO turns (session_id, role, content, created_at) VALUES (?, ?, ?, ?)",
                           ((session_id, role, content, now) for role, content in turns))
        return len(turns)
