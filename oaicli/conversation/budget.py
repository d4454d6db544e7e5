"""Context assembly: the system prompt, the newest whole exchanges that fit, then the new question.

Budget for the request's messages = context window - room kept for the answer - MARGIN. The room
for the answer is `answer_tokens` (the request's max_tokens) when given, else the smaller of
DEFAULT_ANSWER_TOKENS and a quarter of the window, so a 4,096-token window still holds 3,000
tokens of conversation. History is dropped oldest exchange first, never half an exchange.
"""

from oaicli.conversation.store import Turn, group_exchanges, turn_cost
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
    kept: list[list[Turn]] = []
    spent = 0
    for group in reversed(group_exchanges(history)):
        if max_history is not None and len(kept) >= max_history:
            break
        cost = sum(turn_cost(turn, counter, named) for turn in group)
        if spent + cost > budget_tokens:
            break
        spent += cost
        kept.append(group)
    return [turn for group in reversed(kept) for turn in group]


def build_messages(*, system: str | None, history: list[Turn], question, model: str, counter,
                   context_window: int, answer_tokens: int | None, max_history: int | None,
                   prefix: list[dict] | None = None, named: bool = False) -> list[dict]:
    """The request's messages: system prompt, `prefix` (fixed messages such as chat's -g ones, always
    sent), the newest whole exchanges that fit, then the question.

    `max_history` caps the number of earlier exchanges (question + answer pairs); `named`: history's user
    turns carry their speaker's `name` (a shared group context). Raises InputError
    (exit code 4) when the question alone does not fit; then nothing should be sent."""
    room = budget(system=system, question=question, counter=counter, context_window=context_window,
                  answer_tokens=answer_tokens, prefix=prefix)
    kept = fit_history(history, room, counter, max_history, named)
    return (system_messages(system) + list(prefix or []) + [turn.message(named) for turn in kept]
            + question_messages(question))
