"""Context assembly: system prompt, newest whole exchanges that fit, question; exact at the boundary."""

import pytest

from oaicli.conversation import budget as context
from oaicli.conversation import tokens
from oaicli.conversation.store import Store, Turn
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
