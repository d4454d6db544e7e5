"""Context assembly: the system prompt, the newest whole exchanges that fit, then the new question.

Budget for the request's messages = context window - room kept for the answer - MARGIN. The room
for the answer is `answer_tokens` (the request's max_tokens) when given, else the smaller of
DEFAULT_ANSWER_TOKENS and a quarter of the window, so a 4,096-token window still holds 3,000
tokens of conversation. History is dropped oldest exchange first, never half an exchange.

Bound first: a token is at least one UTF-8 byte, so the messages' bytes (plus the per-message overheads)
bound their token count from above (token_bound). While that bound fits, no exact count is needed and no
encoding is loaded (0.1-0.3 s); only a history at the edge of its window is counted exactly, and then it is
trimmed exactly as before.
"""

from oaicli.conversation.store import Turn, group_exchanges, newest_exchanges, take_newest, turn_cost
from oaicli.conversation.tokens import byte_bound
from oaicli.core.errors import InputError

DEFAULT_ANSWER_TOKENS = 1024
# Slack for what exact counting cannot see: a server's own framing, names added later.
MARGIN = 16


def answer_room(context_window: int, answer_tokens: int | None = None) -> int:
    """Tokens kept free for the answer: answer_tokens, else min(DEFAULT_ANSWER_TOKENS, window // 4)."""
    if answer_tokens is not None:
        return answer_tokens
    return min(DEFAULT_ANSWER_TOKENS, context_window // 4)


def request_budget(context_window: int, answer_tokens: int | None = None) -> int:
    """Tokens the whole messages array may use."""
    return context_window - answer_room(context_window, answer_tokens) - MARGIN


def token_bound(messages: list[dict], counter) -> int:
    """At least counter.count_messages(messages), computed without any encoding: each text counts its
    UTF-8 bytes (cached or estimated counts are not involved), with the same per-message overheads."""
    return byte_bound(counter).count_messages(messages)


def fits_by_bytes(messages: list[dict], counter, context_window: int, answer_tokens: int | None = None) -> bool:
    """Whether the messages certainly fit the request budget, decided without loading an encoding.
    False means "count them exactly to know", not "too long"."""
    return token_bound(messages, counter) <= request_budget(context_window, answer_tokens)


def turn_bound(turn: Turn, counter, named: bool = False) -> int:
    """At least turn_cost(turn, counter, named), without an encoding: the turn's cached count when it was
    made by this tokenizer (exact, so the sum stays a bound), else its bytes."""
    bound = byte_bound(counter)
    cached = turn.tokens is not None and turn.encoding == counter.cache_key
    content = turn.tokens if cached else bound.count_text(turn.content)
    return bound.message_tokens(turn.role, content, turn.speaker() if named else None)


def fit_tail(store, session_id: int, *, fixed: list[dict], counter, context_window: int,
             answer_tokens: int | None, max_history: int | None, named: bool = False) -> list[Turn]:
    """The newest whole exchanges of a stored session (oldest first) that fit beside the `fixed` messages
    (system, -g messages, the question), read from the end of the session: by upper bounds when they settle
    it, else exactly (counts computed and cached). Raises InputError when the fixed messages do not fit."""
    kept = _fit_by_bounds(newest_exchanges(store, session_id), fixed, counter, context_window, answer_tokens,
                          max_history, named)
    if kept is not None:
        return kept
    room = budget(system=None, question=fixed, counter=counter, context_window=context_window,
                  answer_tokens=answer_tokens)
    return store.tail(session_id, token_budget=room, max_turns=max_history, counter=counter, named=named)


def fit_turns(turns: list[Turn], *, fixed: list[dict], counter, context_window: int, answer_tokens: int | None,
              max_history: int | None, named: bool = False) -> list[Turn]:
    """fit_tail over turns held in memory (a session's newest whole exchanges, oldest first): the same
    choice, by bounds when they settle it, else exactly (counts computed on the turns)."""
    kept = _fit_by_bounds(reversed(group_exchanges(turns)), fixed, counter, context_window, answer_tokens,
                          max_history, named)
    if kept is not None:
        return kept
    room = budget(system=None, question=fixed, counter=counter, context_window=context_window,
                  answer_tokens=answer_tokens)
    return fit_history(turns, room, counter, max_history, named)


def _fit_by_bounds(exchanges, fixed: list[dict], counter, context_window: int, answer_tokens: int | None,
                   max_history: int | None, named: bool) -> list[Turn] | None:
    """The exchanges (given newest first) exact counting would keep, when their upper bounds already
    settle it: every exchange the walk reaches fits by its bound, so it fits by its exact count too, and
    the same turns are kept. None when only exact counting can tell (or the encoding is loaded anyway)."""
    if counter.loaded:
        return None
    room = request_budget(context_window, answer_tokens) - token_bound(fixed, counter)
    if room < 0:
        return None
    kept, cut = take_newest(exchanges, room, max_history, lambda turn: turn_bound(turn, counter, named))
    return None if cut else kept


def question_messages(question) -> list[dict]:
    """The new turn as messages: a string or content parts become one user message; a list of
    messages (each with a role) is used as given."""
    if isinstance(question, str):
        return [{"role": "user", "content": question}]
    if isinstance(question, list) and question and all(isinstance(m, dict) and "role" in m for m in question):
        return list(question)
    return [{"role": "user", "content": question}]


def system_messages(system: str | None) -> list[dict]:
    return [{"role": "system", "content": system}] if system else []


def budget(*, system: str | None, question, counter, context_window: int, answer_tokens: int | None,
           prefix: list[dict] | None = None) -> int:
    """Tokens left for history once the system prompt, any fixed `prefix` messages, the question and
    the answer room are taken.

    Raises InputError when the question (with the system prompt and prefix) does not fit at all."""
    fixed = counter.count_messages(system_messages(system) + list(prefix or []) + question_messages(question))
    available = request_budget(context_window, answer_tokens)
    if fixed > available:
        room = answer_room(context_window, answer_tokens)
        raise InputError(
            f"The question is too long for the model's context: it needs {fixed} tokens but only {available} "
            f"of the {context_window}-token window are available ({room} kept for the answer, {MARGIN} margin).",
            "Shorten the question or the system prompt, lower --max-tokens, or raise --context-window.")
    return available - fixed


def fit_history(history: list[Turn], budget_tokens: int, counter, max_history: int | None,
                named: bool = False) -> list[Turn]:
    """The newest whole exchanges of `history` (oldest first) within budget_tokens and max_history exchanges."""
    kept, _ = take_newest(reversed(group_exchanges(history)), budget_tokens, max_history,
                          lambda turn: turn_cost(turn, counter, named))
    return kept


def build_messages(*, system: str | None, history: list[Turn], question, model: str, counter,
                   context_window: int, answer_tokens: int | None, max_history: int | None,
                   prefix: list[dict] | None = None, named: bool = False) -> list[dict]:
    """The request's messages: system prompt, `prefix` (fixed messages such as chat's -g ones, always
    sent), the newest whole exchanges that fit, then the question.

    `max_history` caps the number of earlier exchanges (question + answer pairs); `named`: history's user
    turns carry their speaker's `name` (a shared group context). Raises InputError
    (exit code 4) when the question alone does not fit; then nothing should be sent."""
    before = system_messages(system) + list(prefix or [])
    asked = question_messages(question)
    kept = _fit_by_bounds(reversed(group_exchanges(history)), before + asked, counter, context_window,
                          answer_tokens, max_history, named)
    if kept is None:
        room = budget(system=system, question=question, counter=counter, context_window=context_window,
                      answer_tokens=answer_tokens, prefix=prefix)
        kept = fit_history(history, room, counter, max_history, named)
    return before + [turn.message(named) for turn in kept] + asked
