"""The store contract: every conversation store (SQLite, and PostgreSQL against a real throwaway server, through
its blocking adapter and through serve's async one) keeps the same promises through the one SQL layer:
migrations recorded once, whole exchanges, tail reads within a budget, cached counts, management,
import/export, and turns serialized by `exclusive`. What only one backend does is tested in test_store.py
(SQLite) and test_pgstore.py (PostgreSQL); the async adapter's turn lock is tested through serve
(tests/envelope/test_http_postgres.py)."""

import asyncio
import inspect
import itertools
import json
import multiprocessing
import sqlite3
import threading

import pytest

from oaicli.conversation import sql as sql_module
from oaicli.conversation import stores, tokens
from oaicli.conversation.store import Store, Turn, group_exchanges
from oaicli.core.errors import InputError
from tests.postgres_server import fresh_database, postgres_dsn  # noqa: F401 (the fixture)

COUNTER = tokens.counter_for("gpt-3.5-turbo")


class Backend:
    """How a test opens one kind of store and reads its tables behind its back; `fresh()`: the URL of
    another new store of the same kind, and its `raw`."""

    def __init__(self, opener, raw, fresh=None):
        self.open = opener
        self.raw = raw
        self.fresh = fresh


def sqlite_backend(tmp_path) -> Backend:
    path = tmp_path / "sessions.db"
    made = itertools.count()

    def fresh():
        other = tmp_path / f"fresh-{next(made)}.db"
        return f"sqlite:///{other}", _raw_sqlite(other)
    return Backend(lambda: Store.open(path), _raw_sqlite(path), fresh)


def _raw_sqlite(path):
    def raw(statement):
        with sqlite3.connect(path) as db:
            return db.execute(statement).fetchall()
    return raw


def postgres_backend(request) -> Backend:
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary,pool]')")
    from oaicli.conversation.pgstore import PgStore
    dsn = request.getfixturevalue("postgres_dsn")
    url = fresh_database(dsn)

    def fresh():
        other = fresh_database(dsn)
        return other, _raw_postgres(other)
    return Backend(lambda: PgStore.open(url), _raw_postgres(url), fresh)


def _raw_postgres(url: str):
    import psycopg

    def raw(statement):
        with psycopg.connect(url) as connection:
            return connection.execute(statement).fetchall()
    return raw


class OnLoop:
    """serve's async PostgreSQL store driven from a test: each call is one step on a private event loop, as
    serve runs a turn's steps (a generator it returns is read whole inside the step)."""

    def __init__(self, url: str):
        from oaicli.conversation.pgasync import AsyncPgStore
        self.loop = asyncio.new_event_loop()
        self.store = AsyncPgStore(url, max_connections=4)
        self.serving = self.store.serving()
        self.loop.run_until_complete(self.serving.__aenter__())

    def __getattr__(self, name):
        found = getattr(self.store, name)
        if not inspect.ismethod(found):
            return found
        return lambda *args, **kwargs: self.loop.run_until_complete(
            self.store.step(lambda: _whole(found(*args, **kwargs))))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.loop.run_until_complete(self.serving.__aexit__(None, None, None))
        left = asyncio.all_tasks(self.loop)  # the pool's workers end a step after it closes: as asyncio.run
        for task in left:
            task.cancel()
        if left:
            self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        self.loop.close()


def _whole(result):
    return list(result) if inspect.isgenerator(result) else result


def postgres_async_backend(request) -> Backend:
    pytest.importorskip("greenlet", reason="greenlet is not installed (pip install '.[postgres]')")
    from oaicli.conversation.pgstore import PgStore
    url = fresh_database(request.getfixturevalue("postgres_dsn"))

    def opened():
        PgStore.open(url).close()  # as serve does: the blocking adapter migrates, the async one serves
        return OnLoop(url)
    return Backend(opened, _raw_postgres(url))


BACKENDS = {"sqlite": lambda request, tmp_path: sqlite_backend(tmp_path),
            "postgresql": lambda request, tmp_path: postgres_backend(request),
            "postgresql-async": lambda request, tmp_path: postgres_async_backend(request)}
BLOCKING = ["sqlite", "postgresql"]  # the adapters whose exclusive() threads hold


@pytest.fixture(params=list(BACKENDS))
def backend(request, tmp_path):
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store(backend):
    with backend.open() as opened:
        yield opened


@pytest.fixture(params=BLOCKING)
def blocking_backend(request, tmp_path):
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture(params=BLOCKING)
def threaded_store(request, tmp_path):
    with BACKENDS[request.param](request, tmp_path).open() as opened:
        yield opened


def exchange(store, session, question, answer, **ids):
    store.add_exchange(session.id, Turn("user", question, **ids), Turn("assistant", answer, **ids))


def pair_cost(question, answer, counter=COUNTER):
    return counter.count_message({"role": "user", "content": question}) + \
        counter.count_message({"role": "assistant", "content": answer})


def test_migrations_run_once_and_are_recorded(backend):
    backend.open().close()
    with backend.open() as opened:
        migrations = opened.dialect.migrations()
    assert backend.raw("SELECT id, name FROM schema_migrations ORDER BY id") == \
        [(number, name) for number, name, _ in migrations]
    assert [name for _, name, _ in migrations][-1] == "response ids and conversations"


def _open_when_told(url, start):
    start.wait()
    stores.open_store(url).close()


def test_processes_opening_a_new_store_at_once_migrate_it_once(blocking_backend):
    """Races when a store is new (SQLite switching the file to WAL, PostgreSQL creating the tables) are
    narrow: several rounds make a regression show."""
    context = multiprocessing.get_context("forkserver")
    for _ in range(5):
        url, raw = blocking_backend.fresh()
        start = context.Event()
        openers = [context.Process(target=_open_when_told, args=(url, start)) for _ in range(5)]
        for process in openers:
            process.start()
        start.set()
        for process in openers:
            process.join(timeout=120)
        assert [process.exitcode for process in openers] == [0] * 5
        dialect = sql_module.POSTGRES if url.startswith("postgresql") else sql_module.SQLITE
        assert raw("SELECT COUNT(*) FROM schema_migrations") == [(len(dialect.migrations()),)]


def test_ensure_session_creates_then_continues(store):
    first = store.ensure_session("trip", model="gpt-4o", system="Be brief.")
    again = store.ensure_session("trip")
    assert again.id == first.id and again.model == "gpt-4o" and again.system == "Be brief."
    changed = store.ensure_session("trip", model="gpt-4")
    assert (changed.model, changed.system) == ("gpt-4", "Be brief.")
    assert store.get_session("nope") is None
    with pytest.raises(InputError, match="No session named 'nope'"):
        store.require_session("nope")


@pytest.mark.parametrize("name", ["", "   "])
def test_a_session_needs_a_name(store, name):
    with pytest.raises(InputError, match="name is empty"):
        store.ensure_session(name)
    with pytest.raises(InputError, match="name is empty"):
        store.import_messages(name, [])
    assert store.list_sessions() == [] and store.is_empty()


def test_sessions_are_listed_newest_first_with_envelope_contexts(store):
    trip = store.ensure_session("trip", model="gpt-4o")
    store.ensure_session("envelope:456:123", kind="envelope")
    exchange(store, trip, "q", "a")
    listed = store.list_sessions()
    assert [(s["name"], s["kind"], s["model"], s["turns"]) for s in listed] == \
        [("trip", "named", "gpt-4o", 2), ("envelope:456:123", "envelope", None, 0)]


def test_latest_session_is_the_most_recently_used_named_one(store):
    older = store.ensure_session("older")
    store.ensure_session("newer")
    exchange(store, older, "q", "a")
    store.ensure_session("envelope::7", kind="envelope")
    assert store.latest_session().name == "older"


def test_an_exchange_is_stored_whole(store, backend):
    session = store.ensure_session("s")
    store.add_exchange(session.id, Turn("user", "如果带了呢", question_id="q1", user_id="123", model="gpt-4o"),
                       Turn("assistant", "...", question_id="q1", model="gpt-4o", usage={"total_tokens": 9}))
    turns = list(store.turns(session.id))
    assert [(t.role, t.content, t.question_id) for t in turns] == [("user", "如果带了呢", "q1"),
                                                                    ("assistant", "...", "q1")]
    assert turns[0].user_id == "123" and turns[1].usage == {"total_tokens": 9}
    stored = backend.raw("SELECT usage FROM turns WHERE role = 'assistant'")
    assert json.loads(stored[0][0]) == {"total_tokens": 9}  # JSON text, readable by other tools


def test_an_exchange_that_fails_half_way_leaves_nothing(store):
    session = store.ensure_session("s")
    exchange(store, session, "before", "kept")
    with pytest.raises(store.errors, match="(?i)null"):  # the answer row violates NOT NULL
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


def test_response_ids_and_the_conversation_are_kept(store):
    session = store.ensure_session("s")
    assert store.conversation_of(session.id) is None and store.last_response_id(session.id) is None
    store.add_exchange(session.id, Turn("user", "q"), Turn("assistant", "a", response_id="resp_1"),
                       conversation_id="conv_1")
    assert store.conversation_of(session.id) == "conv_1" and store.last_response_id(session.id) == "resp_1"
    store.import_messages("s", [{"role": "user", "content": "dangling"}], append=True)
    assert store.last_response_id(session.id) is None  # the newest turn is not an answer
    store.reset("s")
    assert store.conversation_of(session.id) is None  # a reset session starts a new server-side context


def test_tail_keeps_the_newest_whole_pairs_within_the_budget(store):
    session = store.ensure_session("s")
    for i in range(6):
        exchange(store, session, f"question {i}", f"answer {i}")
    budget = pair_cost("question 4", "answer 4") + pair_cost("question 5", "answer 5")
    kept = store.tail(session.id, token_budget=budget, max_turns=None, counter=COUNTER)
    assert [t.content for t in kept] == ["question 4", "answer 4", "question 5", "answer 5"]
    one_short = store.tail(session.id, token_budget=budget - 1, max_turns=None, counter=COUNTER)
    assert [t.content for t in one_short] == ["question 5", "answer 5"]
    assert [t.content for t in store.last_turns(session.id, 2)] == ["question 5", "answer 5"]


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


def test_tail_skips_an_unanswered_question_anywhere_so_no_two_questions_go_in_a_row(store):
    """An imported conversation ending in a question, then that question asked (and answered) again:
    the dangling copy must not be sent before the answered one."""
    store.import_messages("s", [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                                {"role": "user", "content": "q2"}, {"role": "user", "content": "q2"},
                                {"role": "assistant", "content": "a2"}])
    session = store.get_session("s")
    kept = store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    assert [t.content for t in kept] == ["q1", "a1", "q2", "a2"]
    assert [[t.content for t in g] for g in group_exchanges(list(store.turns(session.id)))] == [["q1", "a1"],
                                                                                             ["q2", "a2"]]


def test_tail_reads_only_the_end_of_a_long_session(store, monkeypatch):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"} for i in range(100_000)]
    assert store.import_messages("big", messages) == 100_000  # one transaction
    session = store.get_session("big")
    assert store.count_turns(session.id) == 100_000
    built = []
    real_turn = sql_module.turn_from_row
    monkeypatch.setattr(sql_module, "turn_from_row", lambda row: built.append(row[0]) or real_turn(row))
    kept = store.tail(session.id, token_budget=10 * pair_cost("message 99990", "message 99991"),
                      max_turns=None, counter=COUNTER)
    assert [t.content for t in kept][-2:] == ["message 99998", "message 99999"]
    assert len(kept) == 20
    assert len(built) < 200  # rows turned into Turns: the tail, not 100,000


def test_tail_caches_counts_and_reuses_them(store, backend, monkeypatch):
    session = store.ensure_session("s")
    exchange(store, session, "hello there", "general kenobi")
    store.tail(session.id, token_budget=None, max_turns=None, counter=COUNTER)
    cl100k = tokens.get_encoding("cl100k_base")
    expected = [len(cl100k.encode("hello there")), len(cl100k.encode("general kenobi"))]
    assert backend.raw("SELECT tokens, tokens_encoding FROM turns ORDER BY id") == \
        [(expected[0], "cl100k_base"), (expected[1], "cl100k_base")]

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


def test_add_exchange_with_a_counter_caches_counts_at_once(store, backend):
    session = store.ensure_session("s")
    store.add_exchange(session.id, Turn("user", "hello world"), Turn("assistant", "hi"), counter=COUNTER)
    assert backend.raw("SELECT tokens, tokens_encoding FROM turns ORDER BY id") == \
        [(2, "cl100k_base"), (1, "cl100k_base")]


def test_reset_keeps_the_session_and_removes_its_turns(store):
    session = store.ensure_session("s", model="gpt-4o", system="Be brief.")
    exchange(store, session, "q", "a")
    assert store.reset("s") == 2
    kept = store.get_session("s")
    assert (kept.id, kept.model, kept.system) == (session.id, "gpt-4o", "Be brief.")
    assert list(store.turns(session.id)) == []


def test_rename(store):
    session = store.ensure_session("old")
    store.ensure_session("taken")
    store.rename("old", "new")
    assert store.get_session("new").id == session.id and store.get_session("old") is None
    with pytest.raises(InputError, match="already exists"):
        store.rename("new", "taken")
    with pytest.raises(InputError, match="No session named 'ghost'"):
        store.rename("ghost", "x")
    with pytest.raises(InputError, match="new session name is empty"):
        store.rename("new", " ")


def test_delete_removes_the_session_and_only_its_turns(store, backend):
    session = store.ensure_session("private")
    keep = store.ensure_session("other")
    for _ in range(5):
        exchange(store, session, "secret", "secret")
    exchange(store, keep, "still here", "yes")
    assert store.delete("private") == 10
    assert store.get_session("private") is None
    assert [t.content for t in store.turns(keep.id)] == ["still here", "yes"]
    assert backend.raw("SELECT COUNT(*) FROM turns") == [(2,)]


def test_export_is_a_messages_array_with_the_system_prompt_first(store):
    session = store.ensure_session("s", system="Be brief.")
    exchange(store, session, "q", "a")
    assert store.export_messages("s") == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def test_import_then_export_round_trips(store):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "昨天下雨了"},
                {"role": "assistant", "content": "会湿透"}, {"role": "user", "content": "如果带了呢"},
                {"role": "assistant", "content": "不会"}]
    assert store.import_messages("copy", messages, model="gpt-4o") == 4
    assert store.export_messages("copy") == messages
    assert (store.get_session("copy").system, store.get_session("copy").model) == ("sys", "gpt-4o")


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


def check_serialized(opened, name, expected_exchanges):
    """Each worker read the turn count and saved it as its answer under `exclusive`: never interleaved,
    and each saw every exchange before it."""
    turns = list(opened.turns(opened.get_session(name).id))
    assert len(turns) == 2 * expected_exchanges
    for index in range(0, len(turns), 2):
        question, answer = turns[index], turns[index + 1]
        assert (question.role, answer.role) == ("user", "assistant")
        assert question.question_id == answer.question_id
        assert answer.content == str(index)
    assert len({t.question_id for t in turns}) == expected_exchanges


def test_threads_sharing_one_store_are_serialized(threaded_store):
    store = threaded_store
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


def test_exclusive_on_one_session_does_not_block_another(threaded_store):
    store = threaded_store
    entered = threading.Event()

    def other():
        with store.exclusive("b"):
            entered.set()

    with store.exclusive("a"):
        thread = threading.Thread(target=other)
        thread.start()
        assert entered.wait(timeout=60)
        thread.join()
