"""One conversational turn, shared by `chat --session`, the envelope and `serve`: assemble the context
from the store, make the request body, shrink once on context_length_exceeded, save the exchange.

The store, token counter and context assembly are the conversation core's (oaicli/conversation/store.py,
tokens.py, budget.py); this module only strings them together.
"""

import time

from oaicli.core.models import base_model

# Models served only by /v1/completions: chat renders the conversation as a transcript for them.
COMPLETIONS_MODELS = {"text-davinci-003", "text-davinci-002", "text-davinci-001", "text-curie-001",
                      "text-babbage-001", "text-ada-001", "davinci-002", "babbage-002", "davinci", "curie",
                      "babbage", "ada", "code-davinci-002"}
# The transcript format for completions-only models (documented in the README, `chat` section).
USER_LABEL = "User:"
ASSISTANT_LABEL = "Assistant:"
TRANSCRIPT_STOP = ["\n" + USER_LABEL]


def completions_only(model: str) -> bool:
    base = base_model(model)
    return base in COMPLETIONS_MODELS or base.endswith("-instruct") or "-instruct-" in base


def transcript(messages: list[dict]) -> str:
    """Render chat messages as a prompt: the system text, then `User:`/`Assistant:` lines, ending with
    `Assistant:` so the model writes the next answer."""
    lines = []
    for message in messages:
        role, content = message.get("role"), _text_of(message.get("content"))
        if role in ("system", "developer"):
            lines.append(content + "\n")
        else:
            label = ASSISTANT_LABEL if role == "assistant" else USER_LABEL
            lines.append(f"{label} {content}")
    lines.append(ASSISTANT_LABEL)
    return "\n".join(lines)


def _text_of(content) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def is_context_error(exc: Exception) -> bool:
    """The server refused the request because the prompt exceeds the model's window."""
    code = getattr(exc, "code", None) or ""
    message = getattr(exc, "message", "") or ""
    return code == "context_length_exceeded" or (
        getattr(exc, "status", 0) == 400 and "maximum context length" in message)


def shrink(history: list) -> list | None:
    """The newer half of the history, in whole user/assistant pairs; None when there is nothing to drop."""
    if not history:
        return None
    pairs = len(history) // 2
    keep = pairs // 2
    return history[len(history) - keep * 2:] if keep else []


class Context:
    """The settings one conversation uses: model, window, answer room, history cap, token counter."""

    def __init__(self, model: str, *, system: str | None = None, context_window: int | None = None,
                 answer_tokens: int | None = None, max_history: int | None = None,
                 extra_messages: list[dict] | None = None):
        from oaicli.conversation import tokens
        self.model = model
        self.system = system
        self.window = context_window or tokens.context_window(model)
        self.answer_tokens = answer_tokens
        self.max_history = max_history
        self.extra_messages = extra_messages or []
        self.counter = tokens.counter_for(model)

    def save(self, store, session_id: int, question: str, response: dict, *, conversation_id: str | None = None,
             **ids) -> None:
        """Write the finished exchange in one transaction, with its token counts when the encoding is
        loaded anyway; else uncounted (cheap), to be counted and cached by the first tail that needs it."""
        store.add_exchange(session_id, *self.turns(question, response, **ids),
                           counter=self.counter if self.counter.loaded else None, conversation_id=conversation_id)

    def first_messages(self, question: str, speaker: str | None = None) -> list[dict]:
        """System, -g messages and the question, with no history (the server holds the context)."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return messages + list(self.extra_messages) + _question(question, speaker)

    def tail(self, store, session_id: int, question: str, speaker: str | None = None) -> list:
        """The newest stored turns that can fit, read from the end of the session; the encoding is
        loaded only when their upper bounds do not settle it (see budget.py).

        `speaker`: the asking user's id in a context several users share; every user turn is then sent
        with its speaker's `name`, so the model knows who said what."""
        from oaicli.conversation import budget
        fixed = budget.system_messages(self.system) + self.extra_messages + _question(question, speaker)
        fit = dict(fixed=fixed, counter=self.counter, context_window=self.window, answer_tokens=self.answer_tokens,
                   max_history=self.max_history, named=speaker is not None)
        cached = getattr(store, "fit_tail", None)  # a TailCache in front of the store (serve, on SQLite)
        if cached is not None:
            return cached(session_id, **fit)
        return budget.fit_tail(store, session_id, **fit)

    def messages(self, history: list, question: str, speaker: str | None = None) -> list[dict]:
        """system, explicit -g messages, the newest history that fits, the question; the -g messages
        count in the budget. Raises InputError when the question alone does not fit."""
        from oaicli.conversation import budget as context
        return context.build_messages(system=self.system, history=history, question=_question(question, speaker),
                                      model=self.model, counter=self.counter, context_window=self.window,
                                      answer_tokens=self.answer_tokens, max_history=self.max_history,
                                      prefix=self.extra_messages, named=speaker is not None)

    def turns(self, question: str, response: dict, *, question_id: str | None = None,
              user_id: str | None = None) -> tuple:
        """The two rows to store for a finished exchange: the question and the first choice's answer.
        Pass `counter=self.counter` to store.add_exchange so their token counts are cached."""
        from oaicli.api.completions import answer_of
        from oaicli.conversation.store import Turn
        now = time.time()
        answer = answer_of(response).strip() if "text" in _first_choice(response) else answer_of(response)
        model = response.get("model") or self.model
        usage = response.get("usage")
        asked = Turn(role="user", content=question, question_id=question_id, model=model, usage=None,
                     created_at=now, user_id=user_id)
        answered = Turn(role="assistant", content=answer, question_id=question_id, model=model, usage=usage,
                        created_at=now, user_id=user_id, response_id=response.get("response_id"))
        return asked, answered


def _name(speaker: str | None) -> str | None:
    from oaicli.conversation.store import speaker_name
    return speaker_name(speaker) if speaker else None


def _question(question: str, speaker: str | None) -> list[dict]:
    """The new question as its user message, named after its speaker when there is one."""
    message = {"role": "user", "content": question}
    if speaker:
        message["name"] = _name(speaker)
    return [message]


def _first_choice(response: dict) -> dict:
    choices = response.get("choices") or [{}]
    return choices[0] if isinstance(choices[0], dict) else {}
