"""Context assembly: system prompt, newest whole exchanges that fit, question; exact at the boundary."""

import random

import pytest

from oaicli.conversation import budget as context
from oaicli.conversation import tokens
from oaicli.conversation.store import Store, Turn, turn_cost
from oaicli.core.errors import ExitCode, InputError

MODEL = "gpt-3.5-turbo"
SYSTEM = "You are a helpful assistant."
HISTORY = [("昨天下雨了,我出门没带伞,会怎么样", "如果您在雨中走了一段较长的路程,您可能会感到湿透和寒冷。"),
           ("What should I wear tomorrow?", "A raincoat and boots."),
           ("And the day after?", "The forecast says sun: a T-shirt will do.")]
QUESTION = "如果带了呢"


def history_turns():
    return [Turn(role, text) for question, answer in HISTORY for role, text in (("user", question),
                                                                                 ("assistant", answer))]


def tiktoken_count(messages, encoding="cl100k_base"):
    """OpenAI's documented formula with tiktoken directly: 3 per message, 1 per name, 3 to prime the reply."""
    enc = tokens.get_encoding(encoding)
    return sum(3 + sum(len(enc.encode(v)) + (1 if k == "name" else 0) for k, v in m.items())
               for m in messages) + 3


def request(pairs):
    messages = [{"role": "system", "content": SYSTEM}]
    for question, answer in pairs:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": QUESTION}]


def build(window, answer_tokens=100, max_history=None, history=None, model=MODEL, question=QUESTION):
    return context.build_messages(system=SYSTEM, history=history_turns() if history is None else history,
                                  question=question, model=model, counter=tokens.counter_for(model),
                                  context_window=window, answer_tokens=answer_tokens, max_history=max_history)


def window_for(messages, answer_tokens=100, encoding="cl100k_base"):
    """The smallest window that holds these messages with the answer room and the margin."""
    return tiktoken_count(messages, encoding) + answer_tokens + context.MARGIN


def test_everything_is_sent_when_it_fits():
    full = request(HISTORY)
    assert build(window_for(full) + 1000) == full


def test_trimming_at_the_exact_boundary():
    full = request(HISTORY)
    exact = window_for(full)
    assert build(exact) == full  # fits to the token
    assert build(exact - 1) == request(HISTORY[1:])  # one token short: the oldest pair goes, whole


def test_each_boundary_drops_one_more_pair():
    for keep in range(len(HISTORY), -1, -1):
        kept = HISTORY[len(HISTORY) - keep:]
        expected = request(kept)
        assert build(window_for(expected)) == expected
        if keep:
            assert build(window_for(expected) - 1) == request(kept[1:])


@pytest.mark.parametrize("model, encoding", [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")])
def test_the_boundary_holds_for_other_encodings(model, encoding):
    full = request(HISTORY)
    exact = window_for(full, encoding=encoding)
    assert build(exact, model=model) == full
    assert build(exact - 1, model=model) == request(HISTORY[1:])


def test_the_default_answer_room_is_a_quarter_of_small_windows_and_1024_at_most():
    assert context.answer_room(4096) == 1024
    assert context.answer_room(2049) == 512
    assert context.answer_room(128000) == 1024
    assert context.answer_room(128000, 50) == 50
    full = request(HISTORY)
    needed = tiktoken_count(full) + context.MARGIN
    # window w with w - min(1024, w // 4) == needed: small enough that a quarter is used
    window = next(w for w in range(needed, 4 * needed) if w - w // 4 - context.MARGIN >= tiktoken_count(full))
    assert build(window, answer_tokens=None) == full
    assert build(window - 1, answer_tokens=None) == request(HISTORY[1:])


def test_max_history_caps_exchanges():
    assert build(100_000, max_history=1) == request(HISTORY[-1:])
    assert build(100_000, max_history=0) == request([])


def test_a_question_that_does_not_fit_is_an_input_error():
    alone = request([])
    with pytest.raises(InputError) as raised:
        build(window_for(alone) - 1)
    error = raised.value
    assert error.exit_code == ExitCode.REQUEST
    assert f"needs {tiktoken_count(alone)} tokens" in error.message
    assert "too long" in error.message
    assert build(window_for(alone)) == alone  # the question alone, exactly fitting


def test_answer_room_larger_than_the_window_is_an_input_error():
    with pytest.raises(InputError, match="too long"):
        build(1000, answer_tokens=5000)


def test_history_that_breaks_pairs_is_never_split():
    # an imported history may hold a user turn followed by two assistant turns: they go together
    turns = [Turn("user", "q1"), Turn("assistant", "a1"), Turn("user", "q2"), Turn("assistant", "a2a"),
             Turn("assistant", "a2b")]
    full = context.build_messages(system=None, history=turns, question="q3", model=MODEL,
                                  counter=tokens.counter_for(MODEL), context_window=100_000,
                                  answer_tokens=10, max_history=1)
    assert [m["content"] for m in full] == ["q2", "a2a", "a2b", "q3"]


def test_an_unanswered_question_at_the_end_of_history_is_dropped():
    turns = [Turn("user", "q1"), Turn("assistant", "a1"), Turn("user", "lost")]
    messages = context.build_messages(system=None, history=turns, question="q2", model=MODEL,
                                      counter=tokens.counter_for(MODEL), context_window=100_000,
                                      answer_tokens=10, max_history=None)
    assert [m["content"] for m in messages] == ["q1", "a1", "q2"]


def test_the_question_may_be_explicit_messages():
    question = [{"role": "user", "content": "look", "name": "alice"}, {"role": "user", "content": "again"}]
    messages = build(100_000, question=question)
    assert messages[-2:] == question
    assert messages[:-2] == request(HISTORY)[:-1]


def test_budget_is_what_the_store_reads_with(tmp_path):
    """Store.tail with context.budget picks the same exchanges as build_messages."""
    with Store.open(tmp_path / "sessions.db") as store:
        session = store.ensure_session("s", system=SYSTEM)
        for question, answer in HISTORY:
            store.add_exchange(session.id, Turn("user", question), Turn("assistant", answer))
        counter = tokens.counter_for(MODEL)
        window = window_for(request(HISTORY[1:]))
        room = context.budget(system=SYSTEM, question=QUESTION, counter=counter, context_window=window,
                              answer_tokens=100)
        tail = store.tail(session.id, token_budget=room, max_turns=None, counter=counter)
        assert [t.content for t in tail] == [text for pair in HISTORY[1:] for text in pair]
        messages = context.build_messages(system=SYSTEM, history=tail, question=QUESTION, model=MODEL,
                                          counter=counter, context_window=window, answer_tokens=100, max_history=None)
        assert messages == request(HISTORY[1:])


def test_unknown_models_trim_by_the_estimate():
    counter = tokens.counter_for("local-model")
    full = request(HISTORY)
    needed = counter.count_messages(full) + 100 + context.MARGIN
    assert build(needed, model="local-model") == full
    assert build(needed - 1, model="local-model") == request(HISTORY[1:])


def test_prefix_messages_are_sent_after_the_system_prompt_and_counted():
    prefix = [{"role": "user", "content": "Answer in French."}, {"role": "assistant", "content": "D'accord."}]
    full = request(HISTORY)
    with_prefix = full[:1] + prefix + full[1:]
    exact = window_for(with_prefix)
    counter = tokens.counter_for(MODEL)

    def build_with_prefix(window):
        return context.build_messages(system=SYSTEM, history=history_turns(), question=QUESTION, model=MODEL,
                                      counter=counter, context_window=window, answer_tokens=100,
                                      max_history=None, prefix=prefix)

    assert build_with_prefix(exact) == with_prefix
    trimmed = request(HISTORY[1:])
    assert build_with_prefix(exact - 1) == trimmed[:1] + prefix + trimmed[1:]


def named_request(pairs, users=("alice", "用户B", "alice"), asker="bob"):
    """As request(), with each user turn named after its speaker (a shared group context)."""
    from oaicli.conversation.store import speaker_name
    messages = [{"role": "system", "content": SYSTEM}]
    for (question, answer), user in zip(pairs, users[len(users) - len(pairs):]):
        messages += [{"role": "user", "content": question, "name": speaker_name(user)},
                     {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": QUESTION, "name": asker}]


def test_named_turns_are_trimmed_at_the_exact_boundary_by_the_store_and_the_assembly(tmp_path):
    """Names cost tokens: Context.tail (the store's walk) and Context.messages count them to the token."""
    from oaicli.conversation.turn import Context
    users = ("alice", "用户B", "alice")
    with Store.open(tmp_path / "sessions.db") as store:
        session = store.ensure_session("envelope:g:*", system=SYSTEM, kind="envelope")
        for (question, answer), user in zip(HISTORY, users):
            store.add_exchange(session.id, Turn("user", question, user_id=user),
                               Turn("assistant", answer, user_id=user))
        full = named_request(HISTORY)
        for window, expected in ((window_for(full), full), (window_for(full) - 1, named_request(HISTORY[1:]))):
            convo = Context(MODEL, system=SYSTEM, context_window=window, answer_tokens=100)
            history = convo.tail(store, session.id, QUESTION, speaker="bob")
            assert convo.messages(history, QUESTION, speaker="bob") == expected


# Bound first: the UTF-8 bytes of the messages bound their tokens from above, so while the bound fits no
# encoding is needed; at the edge the exact count decides, and trimming is the same as exact counting.

PIECES = ["hello", " world", "  ", "\n\n", "1234567", "如果带了呢", "😀👍🏽", "naïve café", "\ud800", "Ωμέγα",
          "<|endoftext|>", "    def f(x):\n        return x", "ﬁ", "\u200b", "a" * 40, "🇫🇷", "ŉ"]
COUNTED_MODELS = ["gpt-3.5-turbo", "gpt-4o", "gpt-3.5-turbo-0301", "text-davinci-003", "local-model"]


def random_text(rng):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


def random_message(rng):
    role = rng.choice(["system", "user", "assistant", "developer", "tool"])
    kind = rng.random()
    if kind < 0.6:
        content = random_text(rng)
    elif kind < 0.85:
        content = [{"type": "text", "text": random_text(rng)}, {"type": "image_url", "image_url": {"url": "x"}}]
    else:
        content = {"weird": random_text(rng)}
    message = {"role": role, "content": content}
    if rng.random() < 0.3:
        message["name"] = random_text(rng) or "n"
    return message


@pytest.mark.parametrize("model", COUNTED_MODELS)
def test_the_byte_bound_is_never_below_the_exact_count(model):
    rng = random.Random(model)
    counter = tokens.counter_for(model)
    for _ in range(300):
        messages = [random_message(rng) for _ in range(rng.randint(0, 4))]
        assert context.token_bound(messages, counter) >= counter.count_messages(messages), messages


@pytest.mark.parametrize("model", COUNTED_MODELS)
def test_the_turn_bound_is_never_below_the_turn_cost(model):
    rng = random.Random(model)
    counter = tokens.counter_for(model)
    for _ in range(300):
        text, user = random_text(rng), rng.choice([None, "alice", "用户 B", "\x1b[31m"])
        role, named = rng.choice(["user", "assistant"]), rng.random() < 0.5
        exact = turn_cost(Turn(role, text, user_id=user), counter, named)
        assert context.turn_bound(Turn(role, text, user_id=user), counter, named) >= exact
        cached = Turn(role, text, user_id=user, tokens=counter.count_text(text), encoding=counter.cache_key)
        assert context.turn_bound(cached, counter, named) >= exact


def test_the_byte_bound_needs_no_encoding(monkeypatch):
    monkeypatch.setattr(tokens, "_encodings", {})
    messages = request(HISTORY)
    bound = context.token_bound(messages, tokens.counter_for(MODEL))
    assert tokens._encodings == {}
    utf8 = sum(len(m["content"].encode()) + len(m["role"]) for m in messages)
    assert bound == utf8 + 3 * len(messages) + 3  # the bytes and the same per-message overheads
    assert context.fits_by_bytes(messages, tokens.counter_for(MODEL), bound + 100 + context.MARGIN, 100)
    assert not context.fits_by_bytes(messages, tokens.counter_for(MODEL), bound + 99 + context.MARGIN, 100)


def test_a_history_that_fits_by_its_bytes_is_sent_whole_without_loading_the_encoding(monkeypatch):
    monkeypatch.setattr(tokens, "_encodings", {})
    assert build(16385) == request(HISTORY)
    assert build(16385, max_history=2) == request(HISTORY[1:])
    assert tokens._encodings == {}


def test_a_history_at_the_edge_loads_the_encoding_and_is_trimmed_exactly(monkeypatch):
    full = request(HISTORY)
    exact = window_for(full)  # counted with the encoding; now forget it
    monkeypatch.setattr(tokens, "_encodings", {})
    assert build(exact - 1) == request(HISTORY[1:])
    assert "cl100k_base" in tokens._encodings


@pytest.mark.parametrize("model", ["gpt-3.5-turbo", "gpt-4o", "gpt-3.5-turbo-0301"])
def test_bound_first_trimming_equals_exact_trimming_around_every_boundary(model, monkeypatch):
    """For every window from "nothing fits" to "everything fits by bytes", with and without names and a
    history cap, the bound-first choice equals the exact one."""
    counter = tokens.counter_for(model)
    users = ("alice", "用户B", "alice")
    turns = [Turn(role, text, user_id=user) for (q, a), user in zip(HISTORY, users)
             for role, text in (("user", q), ("assistant", a))]

    def choose(window, named, cap):
        try:
            return context.build_messages(system=SYSTEM, history=turns, question=QUESTION, model=model,
                                          counter=counter, context_window=window, answer_tokens=50,
                                          max_history=cap, named=named)
        except InputError:
            return "too long"

    alone = counter.count_messages(request([]))
    top = context.token_bound(request(HISTORY), counter) + 50 + context.MARGIN + 60
    for window in range(alone, top, 3):
        for named in (False, True):
            for cap in (None, 2):
                monkeypatch.setattr(tokens.TokenCounter, "loaded", property(lambda self: True))
                exact = choose(window, named, cap)
                monkeypatch.setattr(tokens.TokenCounter, "loaded", property(lambda self: False))
                assert choose(window, named, cap) == exact, (window, named, cap)


def test_a_stored_tail_that_fits_by_bytes_is_read_without_the_encoding(tmp_path, monkeypatch):
    from oaicli.conversation.turn import Context
    monkeypatch.setattr(tokens, "_encodings", {})
    with Store.open(tmp_path / "sessions.db") as store:
        session = store.ensure_session("s", system=SYSTEM)
        for question, answer in HISTORY * 4:
            store.add_exchange(session.id, Turn("user", question), Turn("assistant", answer))
        convo = Context(MODEL, system=SYSTEM)
        history = convo.tail(store, session.id, QUESTION)
        assert convo.messages(history, QUESTION) == request(HISTORY * 4)
        assert tokens._encodings == {}
        convo.save(store, session.id, QUESTION, {"choices": [{"message": {"role": "assistant", "content": "ok"}}]})
        assert tokens._encodings == {}
        counts = store.db.execute("SELECT tokens FROM turns ORDER BY id DESC LIMIT 2").fetchall()
        assert counts == [(None,), (None,)]  # stored uncounted; the first tail at the edge counts them


def test_a_stored_tail_over_its_byte_bound_is_counted_exactly_and_cached(tmp_path, monkeypatch):
    from oaicli.conversation.turn import Context
    words = [("tell me more " * 30, "here is more " * 30)] * 3  # ~4 bytes a token: 3x over by bytes, fits exactly
    with Store.open(tmp_path / "sessions.db") as store:
        session = store.ensure_session("s")
        for question, answer in words:
            store.add_exchange(session.id, Turn("user", question), Turn("assistant", answer))
        exact_needed = tokens.counter_for(MODEL).count_messages(
            [{"role": r, "content": t} for q, a in words for r, t in (("user", q), ("assistant", a))]
            + [{"role": "user", "content": QUESTION}])
        monkeypatch.setattr(tokens, "_encodings", {})
        convo = Context(MODEL, context_window=exact_needed + 50 + context.MARGIN, answer_tokens=50)
        fixed = [{"role": "user", "content": QUESTION}]
        bytes_needed = context.token_bound(fixed, convo.counter) + sum(
            context.turn_bound(t, convo.counter) for t in store.turns(session.id))
        assert bytes_needed > convo.window  # the bound alone would have cut the history
        history = convo.tail(store, session.id, QUESTION)
        assert [t.content for t in history] == [t for pair in words for t in pair]  # all kept: exact fits
        assert "cl100k_base" in tokens._encodings
        assert None not in {row[0] for row in store.db.execute("SELECT tokens FROM turns")}  # counts cached
