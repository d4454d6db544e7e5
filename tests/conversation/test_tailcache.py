"""The tail cache gives every request exactly the history a fresh read of the store gives: after its own
writes, after another connection's write, after sessions are deleted or cleared, after eviction, and when
the budget cuts the history."""

import random

import pytest

from oaicli.conversation.store import Store, Turn
from oaicli.conversation.tailcache import TailCache
from oaicli.conversation.turn import Context
from oaicli.envelope.engine import Envelope

MODEL = "gpt-3.5-turbo"


@pytest.fixture
def path(tmp_path):
    return tmp_path / "sessions.db"


@pytest.fixture
def store(path):
    with Store.open(path) as opened:
        yield opened


def exchange(cache, session_id, number, text="x", user="u1"):
    cache.add_exchange(session_id, Turn("user", f"question {number} {text}", question_id=f"q{number}", user_id=user),
                       Turn("assistant", f"answer {number} {text}", question_id=f"q{number}", user_id=user))


def fresh(path, session_id, context, question="next?"):
    """What a store read by another connection gives."""
    with Store.open(path) as other:
        return context.tail(other, session_id, question)


def same(turns, expected) -> bool:
    return [(t.id, t.role, t.content) for t in turns] == [(t.id, t.role, t.content) for t in expected]


@pytest.mark.parametrize("loaded", [False, True], ids=["as-found", "encoding-loaded"])
def test_after_its_own_writes_it_answers_from_memory_what_a_fresh_read_gives(store, path, loaded):
    cache, context = TailCache(store), Context(MODEL)
    if loaded:  # the encoding is loaded: the whole history's exact cost is kept and compared with the room
        context.counter.count_text("load")
    session = store.ensure_session("envelope:g:u", kind="envelope")
    exchange(cache, session.id, 0)
    assert same(context.tail(cache, session.id, "first?"), fresh(path, session.id, context))
    for number in range(1, 30):
        exchange(cache, session.id, number)
        got = context.tail(cache, session.id, "next?")
        assert len(got) == 2 * (number + 1) and same(got, fresh(path, session.id, context))
    assert cache.misses == 1 and cache.hits == 29  # read once, then never again


def test_another_connections_write_is_seen_at_once(store, path):
    cache, context = TailCache(store), Context(MODEL)
    session = store.ensure_session("envelope:g:u", kind="envelope")
    exchange(cache, session.id, 0)
    context.tail(cache, session.id, "q")
    with Store.open(path) as other:  # `chat --session`, another process
        exchange(other, session.id, 1, "written elsewhere")
    got = context.tail(cache, session.id, "q")
    assert got[-1].content == "answer 1 written elsewhere" and same(got, fresh(path, session.id, context))
    exchange(cache, session.id, 2)
    assert same(context.tail(cache, session.id, "q"), fresh(path, session.id, context))


@pytest.mark.parametrize("how", ["reset", "delete"])
def test_sessions_cleared_or_deleted_elsewhere_or_through_it_are_not_answered_from_memory(store, path, how):
    cache, context = TailCache(store), Context(MODEL)
    session = store.ensure_session("envelope:g:u", kind="envelope")
    for number in range(3):
        exchange(cache, session.id, number)
    assert len(context.tail(cache, session.id, "q")) == 6
    with Store.open(path) as other:  # `oaicli sessions clear|delete` while serve runs
        getattr(other, how)("envelope:g:u")
    assert context.tail(cache, session.id, "q") == []
    again = store.ensure_session("envelope:g:u", kind="envelope").id
    exchange(cache, again, 9)
    assert len(context.tail(cache, again, "q")) == 2
    getattr(cache, how)("envelope:g:u")  # through the cache itself
    assert len(cache) == 0 and context.tail(cache, again, "q") == []


def test_evicted_contexts_are_read_again_and_the_entries_stay_within_their_bounds(store, path):
    cache, context = TailCache(store, max_contexts=3, max_bytes=64 * 1024), Context(MODEL)
    sessions = [store.ensure_session(f"envelope:g:u{n}", kind="envelope").id for n in range(6)]
    for round_ in range(4):
        for session_id in sessions:
            exchange(cache, session_id, round_, "y" * 200)
            assert same(context.tail(cache, session_id, "q"), fresh(path, session_id, context))
            assert len(cache) <= 3 and cache._bytes <= 64 * 1024
    assert cache.hits == 0  # six contexts round robin through three places: each was evicted before its turn
    small = TailCache(store, max_contexts=100, max_bytes=24 * 1024)  # room for three or four of them
    for session_id in sessions:
        context.tail(small, session_id, "q")
        assert small._bytes <= 24 * 1024
    assert 0 < len(small) < 6


@pytest.mark.parametrize("loaded", [False, True], ids=["as-found", "encoding-loaded"])
def test_a_history_the_budget_cuts_is_the_same_as_a_fresh_read_whatever_the_question(store, path, loaded):
    rng = random.Random(7)
    window = 700
    cache, session = TailCache(store), store.ensure_session("envelope:g:u", kind="envelope")
    for number in range(40):
        exchange(cache, session.id, number, "word " * rng.randint(1, 40))
        for _ in range(2):
            question = "why " * rng.choice([1, 5, 60, 200])
            context = Context(MODEL, context_window=window, answer_tokens=100, max_history=rng.choice([None, 3]))
            if loaded:
                context.counter.count_text("load")
            got = context.tail(cache, session.id, question)
            assert same(got, fresh(path, session.id, context, question))
    assert cache.hits and cache.misses  # both paths were taken


def test_the_envelope_sends_the_same_request_and_replays_a_question_id_through_it(store, path):
    cached = Envelope(TailCache(store), model=MODEL, system="Be brief.")
    plain = Envelope(store, model=MODEL, system="Be brief.")
    for number in range(5):
        line = {"version": "1.0.0", "pars": {"user_id": "u", "group_id": "g", "question": f"q{number}?",
                                             "question_id": f"id{number}"}}
        parsed = cached.parse(line)
        pending = cached.begin(parsed)
        assert pending.request_body == plain.begin(plain.parse(line)).request_body
        cached.finish(pending, {"choices": [{"message": {"role": "assistant", "content": f"a{number}"}}]})
    repeated = cached.parse({"version": "1.0.0", "pars": {"user_id": "u", "group_id": "g", "question": "q2?",
                                                          "question_id": "id2"}})
    assert cached.begin(repeated)["data"]["answer"] == "a2"
    last = cached.begin(cached.parse({"version": "1.0.0", "pars": {"user_id": "u", "group_id": "g",
                                                                   "question": "more?"}}))
    contents = [m["content"] for m in last.request_body["messages"]]
    assert contents == ["Be brief."] + [x for n in range(5) for x in (f"q{n}?", f"a{n}")] + ["more?"]


@pytest.mark.parametrize("named", [False, True])
def test_a_growing_history_is_cut_at_the_same_exchange_as_a_fresh_read_when_it_stops_fitting(store, path, named):
    """The whole history's exact cost is kept up to date as exchanges are saved; the request where it
    first exceeds the room is cut exactly where a fresh read cuts it."""
    context = Context(MODEL, context_window=420, answer_tokens=100)
    context.counter.count_text("load")
    speaker = "bob" if named else None
    cache = TailCache(store)
    session = store.ensure_session("envelope:g:*", kind="envelope")
    lengths = []
    for number in range(30):
        exchange(cache, session.id, number, "tok " * (number % 7 + 1), user=f"user{number % 3}")
        got = context.tail(cache, session.id, "and?", speaker)
        with Store.open(path) as other:
            assert same(got, context.tail(other, session.id, "and?", speaker))
        lengths.append(len(got))
    assert lengths[:3] == [2, 4, 6] and 0 < lengths[-1] < 60  # it grew whole, then the budget cut it
