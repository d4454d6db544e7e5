"""The PostgreSQL store against a real throwaway server: the SQLite store's contract, migrations applied once by
processes starting together, the question_id claim, per-session ordering across instances, and copies."""

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oaicli.conversation import store as store_module
from oaicli.conversation import stores, tokens
from oaicli.conversation.store import Store, Turn
from oaicli.core.errors import InputError, OaicliError
from tests.postgres_server import fresh_database, postgres_dsn  # noqa: F401 (the fixture)

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary,pool]')")
from oaicli.conversation import pgstore  # noqa: E402 (only once psycopg is known to be there)
from oaicli.conversation.pgstore import PgStore  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


COUNTER = tokens.counter_for("gpt-3.5-turbo")


@pytest.fixture
def database(postgres_dsn):  # noqa: F811
    return fresh_database(postgres_dsn)


@pytest.fixture
def store(database):
    with PgStore.open(database) as opened:
        yield opened


def sql(url, statement, *args):
    with psycopg.connect(url) as connection:
        return connection.execute(statement, args).fetchall()


def exchange(store, session, question, answer, **ids):
    store.add_exchange(session.id, Turn("user", question, **ids), Turn("assistant", answer, **ids))


def pair_cost(question, answer, counter=COUNTER):
    return counter.count_message({"role": "user", "content": question}) + \
        counter.count_message({"role": "assistant", "content": answer})


# The store contract (the same assertions as tests/test_store.py where they apply)

def test_migrations_run_once_and_are_recorded(database):
    PgStore.open(database).close()
    PgStore.open(database).close()
    assert sql(database, "SELECT id, name FROM schema_migrations ORDER BY id") == \
        [(number, name) for number, name, _ in pgstore.MIGRATIONS]


def test_ensure_session_creates_then_continues(store):
    first = store.ensure_session("trip", model="gpt-4o", system="Be brief.")
    again = store.ensure_session("trip")
    assert again.id == first.id and again.model == "gpt-4o" and again.system == "Be brief."
    changed = store.ensure_session("trip", model="gpt-4")
    assert (changed.model, changed.system) == ("gpt-4", "Be brief.")
    assert store.get_session("nope") is None
    with pytest.raises(InputError, match="name is empty"):
        store.ensure_session("  ")


def test_sessions_are_listed_newest_first_and_latest_is_a_named_one(store):
    trip = store.ensure_session("trip", model="gpt-4o")
    store.ensure_session("envelope:456:123", kind="envelope")
    exchange(store, trip, "q", "a")
    listed = store.list_sessions()
    assert [(s["name"], s["kind"], s["turns"]) for s in listed] == [("trip", "named", 2),
                                                                  ("envelope:456:123", "envelope", 0)]
    store.ensure_session("envelope::7", kind="envelope")
    assert store.latest_session().name == "trip"


def test_an_exchange_is_stored_whole(store):
    session = store.ensure_session("s")
    store.add_exchange(session.id, Turn("user", "如果带了呢", question_id="q1", user_id="123", model="gpt-4o"),
                       Turn("assistant", "...", question_id="q1", model="gpt-4o", usage={"total_tokens": 9}))
    turns = list(store.turns(session.id))
    assert [(t.role, t.content, t.question_id) for t in turns] == [("user", "如果带了呢", "q1"),
                                                                    ("assistant", "...", "q1")]
    assert turns[0].user_id == "123" and turns[1].usage == {"total_tokens": 9}
    assert json.loads(sql(store.url, "SELECT usage FROM turns WHERE role = 'assistant'")[0][0]) == {"total_tokens": 9}


def test_an_exchange_that_fails_half_way_leaves_nothing(store):
    session = store.ensure_session("s")
    exchange(store, session, "before", "kept")
    with pytest.raises(psycopg.errors.NotNullViolation):
        store.add_exchange(session.id, Turn("user", "question"), Turn("assistant", None))
    assert [t.content for t in store.turns(session.id)] == ["before", "kept"]


def test_a_failed_exchange_inside_a_turn_leaves_the_turn_usable(store):
    session = store.ensure_session("s")
    with store.exclusive("s"):
        with pytest.raises(psycopg.errors.NotNullViolation):
            store.add_exchange(session.id, Turn("user", "question"), Turn("assistant", None))
        exchange(store, session, "retried", "saved")
    assert [t.content for t in store.turns(session.id)] == ["retried", "saved"]


def test_find_exchange_by_question_id_and_user(store):
    session = store.ensure_session("envelope:g:*", kind="envelope")
    exchange(store, session, "q-a", "a-a", question_id="x", user_id="alice")
    exchange(store, session, "q-b", "a-b", question_id="x", user_id="bob")
    found = store.find_exchange(session.id, "x", "bob")
    assert (found[0].content, found[1].content) == ("q-b", "a-b")
    assert store.find_exchange(session.id, "x")[0].content == "q-a"
    assert store.find_exchange(session.id, "x", "carol") is None
    assert store.find_exchange(session.id, "y") is None


def test_a_question_id_is_stored_once_per_user(store):
    session = store.ensure_session("envelope:g:alice", kind="envelope")
    exchange(store, session, "q", "a", question_id="x", user_id="alice")
    with pytest.raises(psycopg.errors.UniqueViolation):
        exchange(store, session, "q again", "a again", question_id="x", user_id="alice")
    assert store.count_turns(session.id) == 2


def test_tail_keeps_the_newest_whole_pairs_within_the_budget_and_cap(store):
    session = store.ensure_session("s")
    for i in range(6):
        exchange(store, session, f"question {i}", f"answer {i}")
    budget = pair_cost("question 4", "answer 4") + pair_cost("question 5", "answer 5")
    kept = store.tail(session.id, token_budget=budget, max_turns=None, counter=COUNTER)
    assert [t.content for t in kept] == ["question 4", "answer 4", "question 5", "answer 5"]
    one_short = store.tail(session.id, token_budget=budget - 1, max_turns=None, counter=COUNTER)
    assert [t.content for t in one_short] == ["question 5", "answer 5"]
    capped = store.tail(session.id, token_budget=None, max_turns=2, counter=COUNTER)
    assert [t.content for t in capped] == ["question 4", "answer 4", "question 5", "answer 5"]
    assert store.tail(session.id, token_budget=None, max_turns=0, counter=COUNTER) == []
    assert [t.content for t in store.last_turns(session.id, 2)] == ["question 5", "answer 5"]


def test_tail_skips_unanswered_questions(store):
    store.import_messages("s", [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                                {"role": "user", "content": "q2"}, {"role": "user", "content": "q2"},
                                {"role": "assistant", "content": "a2"}, {"role": "user", "content": "dangling"}])
    session = store.get_session("s")
    kept = store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    assert [t.content for t in kept] == ["q1", "a1", "q2", "a2"]


def test_tail_reads_only_the_end_of_a_long_session(store, monkeypatch):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"} for i in range(100_000)]
    assert store.import_messages("big", messages) == 100_000
    session = store.get_session("big")
    assert store.count_turns(session.id) == 100_000
    built = []
    real_turn = store_module.turn_from_row
    monkeypatch.setattr(store_module, "turn_from_row", lambda row: built.append(row[0]) or real_turn(row))
    kept = store.tail(session.id, token_budget=10 * pair_cost("message 99990", "message 99991"),
                      max_turns=None, counter=COUNTER)
    assert [t.content for t in kept][-2:] == ["message 99998", "message 99999"]
    assert len(kept) == 20
    assert len(built) < 200


def test_tail_caches_counts_and_reuses_them(store, monkeypatch):
    session = store.ensure_session("s")
    exchange(store, session, "hello there", "general kenobi")
    store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    cl100k = tokens.get_encoding("cl100k_base")
    expected = [len(cl100k.encode("hello there")), len(cl100k.encode("general kenobi"))]
    assert sql(store.url, "SELECT tokens, tokens_encoding FROM turns ORDER BY id") == \
        [(expected[0], "cl100k_base"), (expected[1], "cl100k_base")]
    counted = []
    original = tokens.TokenCounter.count_text
    monkeypatch.setattr(tokens.TokenCounter, "count_text",
                        lambda self, text: counted.append(text) or original(self, text))
    kept = store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    assert [t.tokens for t in kept] == expected
    assert "hello there" not in counted and "general kenobi" not in counted
    o200k = tokens.counter_for("gpt-4o")
    redone = store.tail(session.id, token_budget=None, max_turns=None, counter=o200k)
    assert [t.encoding for t in redone] == ["o200k_base", "o200k_base"]


def test_add_exchange_with_a_counter_caches_counts_at_once(store):
    session = store.ensure_session("s")
    store.add_exchange(session.id, Turn("user", "hello world"), Turn("assistant", "hi"), counter=COUNTER)
    assert sql(store.url, "SELECT tokens, tokens_encoding FROM turns ORDER BY id") == \
        [(2, "cl100k_base"), (1, "cl100k_base")]


def test_reset_rename_delete(store):
    session = store.ensure_session("s", model="gpt-4o", system="Be brief.")
    exchange(store, session, "q", "a")
    assert store.reset("s") == 2
    kept = store.get_session("s")
    assert (kept.id, kept.model, kept.system) == (session.id, "gpt-4o", "Be brief.")
    assert list(store.turns(session.id)) == []
    store.ensure_session("taken")
    store.rename("s", "new")
    assert store.get_session("new").id == session.id and store.get_session("s") is None
    with pytest.raises(InputError, match="already exists"):
        store.rename("new", "taken")
    with pytest.raises(InputError, match="No session named 'ghost'"):
        store.rename("ghost", "x")
    exchange(store, store.get_session("new"), "q", "a")
    assert store.delete("new") == 2
    assert store.get_session("new") is None
    assert sql(store.url, "SELECT COUNT(*) FROM turns") == [(0,)]


def test_import_export_round_trip_and_replace_or_append(store):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "昨天下雨了"},
                {"role": "assistant", "content": "会湿透"}]
    assert store.import_messages("copy", messages) == 2
    assert store.export_messages("copy") == messages
    more = [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]
    with pytest.raises(InputError, match="already has 2 turns"):
        store.import_messages("copy", more)
    store.import_messages("copy", more, append=True)
    assert [m["content"] for m in store.export_messages("copy")] == ["sys", "昨天下雨了", "会湿透", "q2", "a2"]
    store.import_messages("copy", more, replace=True)
    assert store.export_messages("copy") == more
    with pytest.raises(InputError, match="Message 0 has role 'wizard'"):
        store.import_messages("bad", [{"role": "wizard", "content": "x"}])
    assert store.get_session("bad") is None


def test_a_wrong_url_is_one_clear_error_without_the_password(database):
    with pytest.raises(OaicliError) as raised:
        PgStore.open(database.rsplit("/", 1)[0].replace("postgres@", "postgres:hunter2-pw@") + "/no_such_db")
    assert "Cannot open the session store" in raised.value.message
    assert "hunter2-pw" not in raised.value.message and "hunter2-pw" not in str(raised.value.hint)


# Several instances on one database

def _open_at_once(url, start):
    start.wait()
    PgStore.open(url).close()


def test_instances_starting_together_migrate_once(postgres_dsn):  # noqa: F811
    context = multiprocessing.get_context("spawn")
    for _ in range(3):
        url = fresh_database(postgres_dsn)
        start = context.Event()
        openers = [context.Process(target=_open_at_once, args=(url, start)) for _ in range(4)]
        for process in openers:
            process.start()
        start.set()
        for process in openers:
            process.join(timeout=120)
        assert [process.exitcode for process in openers] == [0] * 4
        assert sql(url, "SELECT COUNT(*) FROM schema_migrations") == [(len(pgstore.MIGRATIONS),)]


def _wait_until(url, query, *args):
    """Poll the server until `query` returns a row: waits for a state; the bound only turns a broken lock
    (nobody ever waits) into a failure instead of a hung suite."""
    deadline = time.monotonic() + 120
    while not sql(url, query, *args):
        assert time.monotonic() < deadline, f"the server never reached the state {query!r}"
        threading.Event().wait(0.02)


WAITING_FOR_ADVISORY = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
WAITING_FOR_ROW = ("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND query LIKE 'INSERT INTO question_claims%%'")


def test_a_session_lock_orders_two_instances(database):
    first, second = PgStore.open(database), PgStore.open(database)
    try:
        session = first.ensure_session("envelope:g:u", kind="envelope")
        order = []

        def later():
            with second.exclusive(session.name):
                order.append(second.count_turns(session.id))
                exchange(second, session, "second", "b", question_id="2")

        with first.exclusive(session.name):
            thread = threading.Thread(target=later)
            thread.start()
            _wait_until(database, WAITING_FOR_ADVISORY)  # the second instance is queued behind us
            exchange(first, session, "first", "a", question_id="1")
        thread.join(60)
        assert order == [2]  # it saw the first exchange, committed when the lock was released
        assert [t.content for t in first.turns(session.id)] == ["first", "a", "second", "b"]
    finally:
        first.close()
        second.close()


def test_threads_on_one_store_are_serialized(store):
    store.ensure_session("shared")
    start = threading.Event()

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
    turns = list(store.turns(store.get_session("shared").id))
    assert len(turns) == 120
    for index in range(0, len(turns), 2):
        assert turns[index].question_id == turns[index + 1].question_id  # never interleaved
        assert turns[index + 1].content == str(index)  # each saw every exchange before it


def _claim_and_answer(store, name, question_id, calls):
    """The envelope's flow for a question_id: claim it, call the API only when the claim is won."""
    with store.exclusive(name):
        if store.claim_question(name, question_id, "alice"):
            calls.append(question_id)
            session = store.ensure_session(name, kind="envelope")
            exchange(store, session, "q", f"answer from call {len(calls)}", question_id=question_id, user_id="alice")
        session = store.get_session(name)
        return store.find_exchange(session.id, question_id, "alice")[1].content


def test_a_repeated_question_id_calls_the_api_once_across_instances(database):
    first, second = PgStore.open(database), PgStore.open(database)
    try:
        calls, answers = [], []
        threads = [threading.Thread(target=lambda s=s: answers.append(_claim_and_answer(s, "ctx", "q1", calls)))
                   for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert calls == ["q1"]
        assert answers == ["answer from call 1", "answer from call 1"]
    finally:
        first.close()
        second.close()


def _claim_from_another_turn(store, results):
    with store.exclusive("another lock"):  # not the session's lock: only the unique key can decide
        results.append(store.claim_question("ctx", "q1", "alice"))


@pytest.mark.parametrize("answered, second_wins", [(True, False), (False, True)])
def test_the_unique_claim_makes_the_loser_wait_for_the_winner(database, answered, second_wins):
    first, second = PgStore.open(database), PgStore.open(database)
    try:
        session = first.ensure_session("ctx", kind="envelope")
        results = []
        with first.exclusive("ctx"):
            assert first.claim_question("ctx", "q1", "alice") is True
            thread = threading.Thread(target=_claim_from_another_turn, args=(second, results))
            thread.start()
            _wait_until(database, WAITING_FOR_ROW)  # the second claimant waits on our uncommitted claim
            assert results == []
            if answered:
                exchange(first, session, "q", "a", question_id="q1", user_id="alice")
        thread.join(60)
        assert results == [second_wins]
        assert (first.find_exchange(session.id, "q1", "alice") is not None) is answered
    finally:
        first.close()
        second.close()


KILLED_MID_TURN = """
import sys
sys.path.insert(0, {repo!r})
from oaicli.conversation.pgstore import PgStore
from oaicli.conversation.store import Turn
store = PgStore.open({url!r})
session = store.ensure_session("ctx", kind="envelope")
with store.exclusive("ctx"):
    store.claim_question("ctx", "q1", "alice")
    store.add_exchange(session.id, Turn("user", "half"), Turn("assistant", "never committed"))
    print("inside", flush=True)
    sys.stdin.read()  # killed here, mid-turn
"""


def test_an_instance_killed_mid_turn_leaves_nothing_and_frees_the_context(database):
    with PgStore.open(database) as survivor:
        code = KILLED_MID_TURN.format(repo=str(REPO), url=database)
        victim = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, cwd=REPO)
        try:
            assert victim.stdout.readline().strip() == "inside"
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(60)
        finally:
            if victim.poll() is None:
                victim.kill()
        calls = []
        assert _claim_and_answer(survivor, "ctx", "q1", calls) == "answer from call 1"
        assert calls == ["q1"]
        session = survivor.get_session("ctx")
        assert [t.content for t in survivor.turns(session.id)] == ["q", "answer from call 1"]


# Copies between stores and opening by URL

def _fill(store):
    counted = store.ensure_session("trip", model="gpt-4o", system="Be brief.")
    exchange(store, counted, "昨天下雨了", "会湿透")
    store.tail(counted.id, token_budget=None, max_turns=None, counter=COUNTER)  # caches token counts
    group = store.ensure_session("envelope:g:*", kind="envelope")
    store.add_exchange(group.id, Turn("user", "q", question_id="x", user_id="alice", model="gpt-4o"),
                       Turn("assistant", "a", question_id="x", user_id="alice", model="gpt-4o",
                            usage={"total_tokens": 7}))
    store.ensure_session("empty")


def _dump_sqlite(path):
    with sqlite3.connect(path) as db:
        return (db.execute("SELECT id, name, kind, model, system, created_at, updated_at FROM sessions "
                           "ORDER BY id").fetchall(),
                db.execute("SELECT id, session_id, role, content, tokens, tokens_encoding, question_id, model, "
                           "usage, created_at, user_id FROM turns ORDER BY id").fetchall())


def test_copy_sqlite_to_postgresql_and_back_loses_nothing(tmp_path, database):
    with Store.open(tmp_path / "from.db") as source:
        _fill(source)
    with stores.open_store(f"sqlite:///{tmp_path / 'from.db'}") as source, stores.open_store(database) as middle:
        assert stores.copy_store(source, middle) == {"sessions": 3, "turns": 4}
    with stores.open_store(database) as middle, stores.open_store(f"sqlite:///{tmp_path / 'back.db'}") as back:
        assert stores.copy_store(middle, back) == {"sessions": 3, "turns": 4}
        with pytest.raises(InputError, match="already holds sessions"):
            stores.copy_store(middle, back)
        trip = middle.get_session("trip")
        exchange(middle, trip, "after the copy", "new ids")  # the sequences were moved past the copied ids
        assert [t.id for t in middle.turns(trip.id)][-2:] == [5, 6]
    original, copied = _dump_sqlite(tmp_path / "from.db"), _dump_sqlite(tmp_path / "back.db")
    assert copied == original
    assert [row[4] for row in copied[1][:2]] == [COUNTER.count_text("昨天下雨了"), COUNTER.count_text("会湿透")]


def test_open_store_picks_the_backend_from_the_url(tmp_path, database, home, monkeypatch):
    with stores.open_store(f"sqlite:///{tmp_path / 'x.db'}") as opened:
        assert isinstance(opened, Store) and opened.path == tmp_path / "x.db"
    with stores.open_store(None) as opened:
        assert opened.path == home / "sessions.db"
    with stores.open_store(database) as opened:
        assert isinstance(opened, PgStore)
    monkeypatch.chdir(tmp_path)
    with stores.open_store("sqlite:///./relative.db") as opened:
        assert opened.path == Path("relative.db") and (tmp_path / "relative.db").exists()
    for wrong in ("mysql://db/x", "sqlite://host/x.db", "sessions.db"):
        with pytest.raises(InputError):
            stores.open_store(wrong)
