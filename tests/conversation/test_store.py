"""What only the SQLite store does: its file (where, private, WAL, foreign files), erasing deleted text, lock
files, and processes sharing one file. The contract both stores keep is in test_store_contract.py."""

import multiprocessing
import sqlite3

import pytest

from oaicli.conversation import store as store_module
from oaicli.conversation.locks import ByteLocks, SessionMutex
from oaicli.conversation.store import Store, Turn
from tests.conversation.test_store_contract import check_serialized


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "sessions.db") as opened:
        yield opened


def exchange(store, session, question, answer, **ids):
    store.add_exchange(session.id, Turn("user", question, **ids), Turn("assistant", answer, **ids))


def raw(path, sql, *args):
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def test_default_path_is_in_the_data_directory(home):
    with Store.open() as opened:
        assert opened.path == home / "sessions.db"
    assert (home / "sessions.db").exists()


def test_the_file_is_in_wal_mode_with_secure_delete(store):
    assert raw(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert store.db.execute("PRAGMA secure_delete").fetchone() == (1,)
    assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_indexes_serve_tail_reads_and_question_lookups(store):
    plan = store.db.execute("EXPLAIN QUERY PLAN SELECT id FROM turns WHERE session_id = 1 AND id < 5 "
                            "ORDER BY id DESC LIMIT 10").fetchall()
    assert "turns_tail" in str(plan)
    plan = store.db.execute("EXPLAIN QUERY PLAN SELECT id FROM turns WHERE session_id = 1 "
                            "AND question_id = 'q'").fetchall()
    assert "turns_question" in str(plan)


def test_the_store_is_private_to_its_owner(tmp_path):
    path = tmp_path / "sessions.db"
    with Store.open(path) as opened:
        opened.ensure_session("s")
        assert (tmp_path / "sessions.db-wal").stat().st_mode & 0o077 == 0
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_foreign_file_is_a_clear_error(tmp_path):
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(store_module.StoreError, match="Cannot open the session store"):
        Store.open(path)


def test_reset_erases_the_text_too(tmp_path):
    secret = "another-unique-sentence-0815"
    with Store.open(tmp_path / "sessions.db") as opened:
        session = opened.ensure_session("s")
        for _ in range(20):
            exchange(opened, session, secret, "answer")
        opened.reset("s")
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sessions.db"))
        assert secret.encode() not in on_disk


def test_delete_really_erases_the_text(tmp_path):
    path = tmp_path / "sessions.db"
    secret = "my-unique-secret-sentence-4711"
    with Store.open(path) as opened:
        session = opened.ensure_session("private")
        keep = opened.ensure_session("other")
        for _ in range(50):
            exchange(opened, session, secret, secret)
        exchange(opened, keep, "still here", "yes")
        assert opened.delete("private") == 100
        assert opened.get_session("private") is None
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sessions.db"))
        assert secret.encode() not in on_disk
        assert [t.content for t in opened.turns(keep.id)] == ["still here", "yes"]
    assert raw(path, "SELECT COUNT(*) FROM turns") == [(2,)]


# Several processes on one session: each reads the session, "calls the API" and adds an exchange,
# all under store.exclusive. Without the lock two workers would read the same turn count.

def _worker(path, name, worker, rounds, start):
    start.wait()
    with Store.open(path) as opened:
        session = opened.ensure_session(name)
        for round_ in range(rounds):
            with opened.exclusive(name):
                seen = opened.count_turns(session.id)
                opened.add_exchange(session.id, Turn("user", f"{worker}:{round_}", question_id=f"{worker}-{round_}"),
                                    Turn("assistant", str(seen), question_id=f"{worker}-{round_}"))


def test_several_processes_on_one_session_are_serialized(tmp_path):
    path = tmp_path / "sessions.db"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_worker, args=(path, "shared", n, 10, start)) for n in range(6)]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    with Store.open(path) as opened:
        check_serialized(opened, "shared", 60)


def test_locks_leave_nothing_behind_per_session(store):
    for name in ("envelope:g:alice", "envelope:g:bob", "envelope:g:carol"):
        with store.exclusive(name):
            pass
    # One lock file for the whole store, however many sessions were locked (Linux: a byte each).
    assert [p.name for p in (store.path.parent / "locks").iterdir()] == ["sessions.lock"]
    assert SessionMutex._registry == {}


def test_without_byte_locks_each_lock_file_is_removed_on_release(tmp_path, monkeypatch):
    monkeypatch.setattr(ByteLocks, "supported", staticmethod(lambda: False))
    with Store.open(tmp_path / "sessions.db") as opened:
        with opened.exclusive("envelope:g:alice"):
            assert len(list((tmp_path / "locks").iterdir())) == 1
        assert list((tmp_path / "locks").iterdir()) == []


def test_a_session_lock_excludes_other_open_stores_not_other_sessions(store):
    # serve's loop takes only the lock between processes, without blocking; another Store object (another
    # open file, as in another process) must find it taken, and a crash-free release must free it.
    with Store.open(store.path) as other:
        lock = store.file_lock("envelope:g:alice")
        assert lock.acquire(blocking=False)
        assert not other.file_lock("envelope:g:alice").acquire(blocking=False)
        bob = other.file_lock("envelope:g:bob")
        assert bob.acquire(blocking=False)
        bob.release()
        lock.release()
        again = other.file_lock("envelope:g:alice")
        assert again.acquire(blocking=False)
        again.release()


def _try_lock(store, name, result):
    lock = store.file_lock(name)
    result.value = lock.acquire(blocking=False)
    if result.value:
        lock.release()


def test_a_forked_child_is_kept_out_of_its_parents_session_lock(store):
    # A child inherits the parent's open lock file; OFD locks on a shared open file would not exclude.
    context = multiprocessing.get_context("fork")
    lock = store.file_lock("s")
    assert lock.acquire(blocking=False)
    try:
        for name, expected in (("s", False), ("other", True)):
            result = context.Value("b", 2)
            child = context.Process(target=_try_lock, args=(store, name, result))
            child.start()
            child.join(timeout=60)
            assert (child.exitcode, result.value) == (0, expected)
    finally:
        lock.release()


def test_closing_a_store_releases_its_session_locks(store):
    with Store.open(store.path) as other:
        held = Store.open(store.path)
        assert held.file_lock("s").acquire(blocking=False)
        held.close()  # as when a process dies holding it
        assert other.file_lock("s").acquire(blocking=False)


def test_checkpoints_in_background_leave_commits_to_the_log_and_lose_nothing(tmp_path):
    path = tmp_path / "sessions.db"
    opened = Store.open(path)
    opened.checkpoint_in_background(every=0.01)
    assert opened.db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    session = opened.ensure_session("s")
    for number in range(50):
        exchange(opened, session, f"q{number}", f"a{number}")
    opened.close()
    assert not opened._checkpointer.is_alive()
    assert not (tmp_path / "sessions.db-wal").exists()  # the last connection closed checkpointed it all
    assert raw(path, "SELECT COUNT(*) FROM turns") == [(100,)]
