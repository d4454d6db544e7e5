"""The session store: migrations, atomic exchanges, tail reads, cached counts, locking across processes."""

import json
import multiprocessing
import sqlite3
import threading

import pytest

from oaicli.conversation import store as store_module
from oaicli.conversation import tokens
from oaicli.conversation.locks import ByteLocks, SessionMutex
from oaicli.conversation.store import MIGRATIONS, Store, Turn
from oaicli.core.errors import InputError


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


def test_migrations_run_once_and_are_recorded(tmp_path):
    path = tmp_path / "sessions.db"
    Store.open(path).close()
    Store.open(path).close()
    recorded = raw(path, "SELECT id, name FROM schema_migrations")
    assert recorded == [(number, name) for number, name, _ in MIGRATIONS]
    assert raw(path, "PRAGMA journal_mode") == [("wal",)]


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


def test_ensure_session_creates_then_continues(store):
    first = store.ensure_session("trip", model="gpt-4o", system="Be brief.")
    again = store.ensure_session("trip")
    assert again.id == first.id and again.model == "gpt-4o" and again.system == "Be brief."
    changed = store.ensure_session("trip", model="gpt-4")
    assert (changed.model, changed.system) == ("gpt-4", "Be brief.")
    assert store.get_session("nope") is None


@pytest.mark.parametrize("name", ["", "   "])
def test_a_session_needs_a_name(store, name):
    with pytest.raises(InputError, match="name is empty"):
        store.ensure_session(name)
    with pytest.raises(InputError, match="name is empty"):
        store.import_messages(name, [])
    assert store.list_sessions() == []


def test_sessions_are_listed_newest_first_with_envelope_contexts(store):
    trip = store.ensure_session("trip", model="gpt-4o")
    store.ensure_session("envelope:456:123", kind="envelope")
    exchange(store, trip, "q", "a")
    listed = store.list_sessions()
    assert [(s["name"], s["kind"], s["turns"]) for s in listed] == [("trip", "named", 2),
                                                                  ("envelope:456:123", "envelope", 0)]


def test_latest_session_is_the_most_recently_used_named_one(store):
    older = store.ensure_session("older")
    store.ensure_session("newer")
    exchange(store, older, "q", "a")
    store.ensure_session("envelope::7", kind="envelope")
    assert store.latest_session().name == "older"


def test_an_exchange_is_stored_whole(store):
    session = store.ensure_session("s")
    store.add_exchange(session.id, Turn("user", "如果带了呢", question_id="q1", user_id="123", model="gpt-4o"),
                       Turn("assistant", "...", question_id="q1", model="gpt-4o", usage={"total_tokens": 9}))
    turns = list(store.turns(session.id))
    assert [(t.role, t.content, t.question_id) for t in turns] == [("user", "如果带了呢", "q1"),
                                                                    ("assistant", "...", "q1")]
    assert turns[0].user_id == "123" and turns[1].usage == {"total_tokens": 9}


def test_an_exchange_that_fails_half_way_leaves_nothing(store):
    session = store.ensure_session("s")
    exchange(store, session, "before", "kept")
    with pytest.raises(sqlite3.IntegrityError):  # the answer row violates NOT NULL
        store.add_exchange(session.id, Turn("user", "question"), Turn("assistant", None))
    assert [t.content for t in store.turns(session.id)] == ["before", "kept"]


def test_find_exchange_by_question_id_and_user(store):
    session = store.ensure_session("envelope:g:*", kind="envelope")
    exchange(store, session, "q-a", "a-a", question_id="x", user_id="alice")
    exchange(store, session, "q-b", "a-b", question_id="x", user_id="bob")
    found = store.find_exchange(session.id, "x", "bob")
    assert (found[0].content, found[1].content) == ("q-b", "a-b")
    assert store.find_exchange(session.id, "x")[0].content == "q-a"
    assert store.find_exchange(session.id, "x", "carol") is None
    assert store.find_exchange(session.id, "y") is None


COUNTER = tokens.counter_for("gpt-3.5-turbo")


def pair_cost(question, answer, counter=COUNTER):
    return counter.count_message({"role": "user", "content": question}) + \
        counter.count_message({"role": "assistant", "content": answer})


def test_tail_keeps_the_newest_whole_pairs_within_the_budget(store):
    session = store.ensure_session("s")
    for i in range(6):
        exchange(store, session, f"question {i}", f"answer {i}")
    budget = pair_cost("question 4", "answer 4") + pair_cost("question 5", "answer 5")
    kept = store.tail(session.id, token_budget=budget, max_turns=None, counter=COUNTER)
    assert [t.content for t in kept] == ["question 4", "answer 4", "question 5", "answer 5"]
    one_short = store.tail(session.id, token_budget=budget - 1, max_turns=None, counter=COUNTER)
    assert [t.content for t in one_short] == ["question 5", "answer 5"]


def test_tail_caps_the_number_of_exchanges(store):
    session = store.ensure_session("s")
    for i in range(5):
        exchange(store, session, f"q{i}", f"a{i}")
    kept = store.tail(session.id, token_budget=None, max_turns=2, counter=COUNTER)
    assert [t.content for t in kept] == ["q3", "a3", "q4", "a4"]
    assert store.tail(session.id, token_budget=None, max_turns=0, counter=COUNTER) == []
    assert len(store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)) == 10


def test_tail_skips_a_trailing_unanswered_question(store):
    store.import_messages("s", [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                                {"role": "user", "content": "dangling"}])
    session = store.get_session("s")
    kept = store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    assert [t.content for t in kept] == ["q1", "a1"]


def test_tail_reads_only_the_end_of_a_long_session(store, monkeypatch):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"} for i in range(100_000)]
    store.import_messages("big", messages)
    session = store.get_session("big")
    built = []
    real_turn = store_module.turn_from_row
    monkeypatch.setattr(store_module, "turn_from_row", lambda row: built.append(row[0]) or real_turn(row))
    kept = store.tail(session.id, token_budget=10 * pair_cost("message 99990", "message 99991"),
                      max_turns=None, counter=COUNTER)
    assert [t.content for t in kept][-2:] == ["message 99998", "message 99999"]
    assert len(kept) == 20
    assert len(built) < 200  # rows turned into Turns: the tail, not 100,000


def test_tail_caches_counts_and_reuses_them(store, monkeypatch):
    session = store.ensure_session("s")
    exchange(store, session, "hello there", "general kenobi")
    store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    cached = store.db.execute("SELECT tokens, tokens_encoding FROM turns ORDER BY id").fetchall()
    cl100k = tokens.get_encoding("cl100k_base")
    expected = [len(cl100k.encode("hello there")), len(cl100k.encode("general kenobi"))]
    assert cached == [(expected[0], "cl100k_base"), (expected[1], "cl100k_base")]

    counted = []
    original = tokens.TokenCounter.count_text
    monkeypatch.setattr(tokens.TokenCounter, "count_text",
                        lambda self, text: counted.append(text) or original(self, text))
    kept = store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    assert [t.tokens for t in kept] == expected
    assert "hello there" not in counted and "general kenobi" not in counted


def test_counts_made_for_another_tokenizer_are_redone(store):
    session = store.ensure_session("s")
    exchange(store, session, "昨天下雨了", "如果带了呢")
    store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    o200k = tokens.counter_for("gpt-4o")
    kept = store.tail(session.id, token_budget=None, max_turns=None, counter=o200k)
    assert [t.encoding for t in kept] == ["o200k_base", "o200k_base"]
    assert [t.tokens for t in kept] == [o200k.count_text("昨天下雨了"), o200k.count_text("如果带了呢")]


def test_add_exchange_with_a_counter_caches_counts_at_once(store):
    session = store.ensure_session("s")
    store.add_exchange(session.id, Turn("user", "hello world"), Turn("assistant", "hi"), counter=COUNTER)
    assert store.db.execute("SELECT tokens, tokens_encoding FROM turns ORDER BY id").fetchall() == \
        [(2, "cl100k_base"), (1, "cl100k_base")]


def test_reset_keeps_the_session_and_removes_its_turns(store):
    session = store.ensure_session("s", model="gpt-4o", system="Be brief.")
    exchange(store, session, "q", "a")
    assert store.reset("s") == 2
    kept = store.get_session("s")
    assert (kept.id, kept.model, kept.system) == (session.id, "gpt-4o", "Be brief.")
    assert list(store.turns(session.id)) == []


def test_reset_erases_the_text_too(tmp_path):
    secret = "another-unique-sentence-0815"
    with Store.open(tmp_path / "sessions.db") as opened:
        session = opened.ensure_session("s")
        for _ in range(20):
            exchange(opened, session, secret, "answer")
        opened.reset("s")
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sessions.db"))
        assert secret.encode() not in on_disk


def test_rename(store):
    session = store.ensure_session("old")
    store.ensure_session("taken")
    store.rename("old", "new")
    assert store.get_session("new").id == session.id and store.get_session("old") is None
    with pytest.raises(InputError, match="already exists"):
        store.rename("new", "taken")
    with pytest.raises(InputError, match="No session named 'ghost'"):
        store.rename("ghost", "x")


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


def test_export_is_a_messages_array_with_the_system_prompt_first(store):
    session = store.ensure_session("s", system="Be brief.")
    exchange(store, session, "q", "a")
    assert store.export_messages("s") == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def test_import_then_export_round_trips(store):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "昨天下雨了"},
                {"role": "assistant", "content": "会湿透"}, {"role": "user", "content": "如果带了呢"},
                {"role": "assistant", "content": "不会"}]
    assert store.import_messages("copy", messages) == 4
    assert store.export_messages("copy") == messages
    assert store.get_session("copy").system == "sys"


def test_import_of_a_long_history_is_one_transaction(store):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(100_000)]
    assert store.import_messages("big", messages) == 100_000
    assert store.count_turns(store.get_session("big").id) == 100_000


@pytest.mark.parametrize("messages, error", [
    ({"role": "user"}, "Expected a JSON array"),
    (["hello"], "Message 0 is not an object"),
    ([{"role": "wizard", "content": "x"}], "Message 0 has role 'wizard'"),
    ([{"role": "user", "content": "ok"}, {"role": "user", "content": 5}], "Message 1 has no text content"),
])
def test_bad_imports_are_refused_whole(store, messages, error):
    with pytest.raises(InputError, match=error):
        store.import_messages("bad", messages)
    assert store.get_session("bad") is None


def test_import_into_a_session_with_turns_needs_replace_or_append(store):
    store.import_messages("s", [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}])
    more = [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]
    with pytest.raises(InputError, match="already has 2 turns"):
        store.import_messages("s", more)
    store.import_messages("s", more, append=True)
    assert [m["content"] for m in store.export_messages("s")] == ["q1", "a1", "q2", "a2"]
    store.import_messages("s", more, replace=True)
    assert [m["content"] for m in store.export_messages("s")] == ["q2", "a2"]


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


def check_serialized(opened, name, expected_exchanges):
    turns = list(opened.turns(opened.get_session(name).id))
    assert len(turns) == 2 * expected_exchanges
    for index in range(0, len(turns), 2):
        question, answer = turns[index], turns[index + 1]
        assert (question.role, answer.role) == ("user", "assistant")
        assert question.question_id == answer.question_id  # never interleaved
        assert answer.content == str(index)  # each worker saw every exchange before it
    assert len({t.question_id for t in turns}) == expected_exchanges


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


def test_threads_sharing_one_store_are_serialized(store):
    start = threading.Event()
    store.ensure_session("shared")

    def work(worker):
        start.wait()
        session = store.get_session("shared")
        for round_ in range(10):
            with store.exclusive("shared"):
                seen = store.count_turns(session.id)
                store.add_exchange(session.id, Turn("user", "q", question_id=f"{worker}-{round_}"),
                                   Turn("assistant", str(seen), question_id=f"{worker}-{round_}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join()
    check_serialized(store, "shared", 60)


def test_exclusive_on_one_session_does_not_block_another(store):
    entered = threading.Event()

    def other():
        with store.exclusive("b"):
            entered.set()

    with store.exclusive("a"):
        thread = threading.Thread(target=other)
        thread.start()
        assert entered.wait(timeout=30)
        thread.join()


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


def _open_fresh(path, start):
    start.wait()
    Store.open(path).close()


def test_processes_opening_a_new_store_at_once_migrate_it_once(tmp_path):
    # The race (switching a brand-new file to WAL) is narrow: several rounds make a regression show.
    context = multiprocessing.get_context("fork")
    for round_number in range(8):
        path = tmp_path / f"sessions-{round_number}.db"
        start = context.Event()
        openers = [context.Process(target=_open_fresh, args=(path, start)) for _ in range(6)]
        for process in openers:
            process.start()
        start.set()
        for process in openers:
            process.join(timeout=60)
        assert [process.exitcode for process in openers] == [0] * 6
        assert raw(path, "SELECT COUNT(*) FROM schema_migrations") == [(len(MIGRATIONS),)]


def test_usage_is_stored_as_json(store, tmp_path):
    session = store.ensure_session("s")
    store.add_exchange(session.id, Turn("user", "q"), Turn("assistant", "a", usage={"prompt_tokens": 3}))
    stored = raw(tmp_path / "sessions.db", "SELECT usage FROM turns WHERE role = 'assistant'")
    assert json.loads(stored[0][0]) == {"prompt_tokens": 3}


def test_tail_skips_an_unanswered_question_anywhere_so_no_two_questions_go_in_a_row(store):
    """An imported conversation ending in a question, then that question asked (and answered) again:
    the dangling copy must not be sent before the answered one."""
    store.import_messages("s", [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                                {"role": "user", "content": "q2"}, {"role": "user", "content": "q2"},
                                {"role": "assistant", "content": "a2"}])
    session = store.get_session("s")
    kept = store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    assert [t.content for t in kept] == ["q1", "a1", "q2", "a2"]
    from oaicli.conversation.store import group_exchanges
    assert [[t.content for t in g] for g in group_exchanges(list(store.turns(session.id)))] == [["q1", "a1"],
                                                                                             ["q2", "a2"]]


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
