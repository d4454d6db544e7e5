"""What only the PostgreSQL store does, against a real throwaway server: migrations applied once by processes
starting together, the question_id claim, per-session ordering across instances, an instance killed mid-turn,
and copies between stores. The contract both stores keep is in test_store_contract.py."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oaicli.conversation import stores, tokens
from oaicli.conversation.store import Store, Turn
from oaicli.core.errors import InputError, OaicliError
from tests.postgres_server import fresh_database, postgres_dsn  # noqa: F401 (the fixture)

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary,pool]')")
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


def test_a_failed_write_inside_a_turn_undoes_the_whole_turn(store):
    session = store.ensure_session("s")
    exchange(store, session, "before", "kept")
    with pytest.raises(psycopg.errors.NotNullViolation), store.exclusive("s"):
        exchange(store, session, "first in the turn", "saved, then undone")
        store.add_exchange(session.id, Turn("user", "question"), Turn("assistant", None))
    assert [t.content for t in store.turns(session.id)] == ["before", "kept"]
    with store.exclusive("s"):  # the lock went with the turn
        exchange(store, session, "next turn", "saved")
    assert [t.content for t in store.turns(session.id)][-2:] == ["next turn", "saved"]


def test_a_question_id_is_stored_once_per_user(store):
    session = store.ensure_session("envelope:g:alice", kind="envelope")
    exchange(store, session, "q", "a", question_id="x", user_id="alice")
    with pytest.raises(psycopg.errors.UniqueViolation):
        exchange(store, session, "q again", "a again", question_id="x", user_id="alice")
    assert store.count_turns(session.id) == 2


def test_a_wrong_url_is_one_clear_error_without_the_password(database):
    with pytest.raises(OaicliError) as raised:
        PgStore.open(database.rsplit("/", 1)[0].replace("postgres@", "postgres:hunter2-pw@") + "/no_such_db")
    assert "Cannot open the session store" in raised.value.message
    assert "hunter2-pw" not in raised.value.message and "hunter2-pw" not in str(raised.value.hint)


# Several instances on one database


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
                            usage={"total_tokens": 7}, response_id="resp_1"),
                       conversation_id="conv_1")  # server-side context: both ids must survive the copy
    store.ensure_session("empty")


def _dump_sqlite(path):
    with sqlite3.connect(path) as db:
        return (db.execute("SELECT id, name, kind, model, system, created_at, updated_at, conversation_id "
                           "FROM sessions ORDER BY id").fetchall(),
                db.execute("SELECT id, session_id, role, content, tokens, tokens_encoding, question_id, model, "
                           "usage, created_at, user_id, response_id FROM turns ORDER BY id").fetchall())


def test_copy_sqlite_to_postgresql_and_back_loses_nothing(tmp_path, database):
    with Store.open(tmp_path / "from.db") as source:
        _fill(source)
    with stores.open_store(f"sqlite:///{tmp_path / 'from.db'}") as source, stores.open_store(database) as middle:
        assert stores.copy_store(source, middle) == {"sessions": 3, "turns": 4}
    with stores.open_store(database) as middle, stores.open_store(f"sqlite:///{tmp_path / 'back.db'}") as back:
        assert stores.copy_store(middle, back) == {"sessions": 3, "turns": 4}
        with pytest.raises(InputError, match="already holds sessions"):
            stores.copy_store(middle, back)
        group = middle.get_session("envelope:g:*")
        assert middle.conversation_of(group.id) == "conv_1" and middle.last_response_id(group.id) == "resp_1"
        trip = middle.get_session("trip")
        exchange(middle, trip, "after the copy", "new ids")  # the sequences were moved past the copied ids
        assert [t.id for t in middle.turns(trip.id)][-2:] == [5, 6]
    original, copied = _dump_sqlite(tmp_path / "from.db"), _dump_sqlite(tmp_path / "back.db")
    assert copied == original
    assert copied[0][1][-1] == "conv_1" and copied[1][-1][-1] == "resp_1"
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
