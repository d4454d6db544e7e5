"""What every turn of one chat invocation shares, and the turns themselves: stateless, or in a stored
session (read the tail, ask, save, all under the session's lock). A stateless turn loads no store and no
token counter."""

import click

from oaicli.api.completions import Requester, request_params
from oaicli.chat.display import AnswerDisplay
from oaicli.conversation.turn import (
    TRANSCRIPT_STOP,
    Context,
    completions_only,
    is_context_error,
    shrink,
    transcript,
)
from oaicli.core.errors import ApiError, OaicliError, StreamError


class Chat:
    """What every turn of this invocation shares: model, request fields, output, session."""

    def __init__(self, opts, model: str, fmt: str, invocation):
        self.invocation = invocation
        self.opts = opts
        self.model = model
        self.fmt = fmt
        self.system = opts["system"]
        self.params = request_params(opts)
        self.explicit = opts["messages"]
        self.session_name = opts["session"]
        self.store = None
        if opts["continue_"]:
            self.session_name = self._latest_session()
        self.requester = Requester(invocation.client())
        self.display = AnswerDisplay(invocation, fmt, opts, keep_usage=bool(self.session_name))

    @property
    def completions(self) -> bool:
        """Whether this model holds the conversation through /v1/completions (a session may set the model)."""
        return self.opts["api"] == "completions" or (self.opts["api"] is None and completions_only(self.model))

    def _latest_session(self) -> str:
        latest = self.open_store().latest_session()
        if latest is None:
            raise click.UsageError("No session to continue: start one with --session NAME.")
        return latest.name

    def open_store(self):
        if self.store is None:
            # Here, not at the top: a stateless chat never opens the store (sqlite3, hashlib: ~7 ms).
            from oaicli.conversation.store import Store
            self.store = Store.open()
            self.invocation.call_on_close(self.store.close)
        return self.store

    def notice(self, text: str) -> None:
        self.invocation.notice(text)

    # Turns

    def stateless_turn(self, question: str | None) -> dict:
        """No history: no token counting, no store."""
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + list(self.explicit)
        if question is not None:
            messages.append({"role": "user", "content": question})
        return self.send(messages)

    def session_turn(self, question: str) -> dict:
        """Read the tail, ask, save, while holding the session's lock, so processes take turns. What may be
        slow and needs no lock (building the token encoding, counting the tail) is done before taking it."""
        store = self.open_store()
        self.prepare_tail(store, question)
        with store.exclusive(self.session_name):
            session, context = self.session_context(store)
            history = context.tail(store, session.id, question) if session else []
            response = self.guarded(lambda: self.ask(context, history, question))
            # Created (or its model and system updated) only now: a failed turn leaves no trace at all.
            session = store.ensure_session(self.session_name, model=context.model, system=context.system)
            context.save(store, session.id, question, response)
        return response

    def prepare_tail(self, store, question: str) -> None:
        """Fit the tail once without the lock: when its upper bounds do not settle it, this builds the
        encoding (0.1-0.3 s) and caches the turns' counts, so the fit under the lock only reads them.
        Another process may add a turn in between; the fit under the lock still decides, counting at most
        that turn."""
        session, context = self.session_context(store)
        if session is not None:
            context.tail(store, session.id, question)

    def session_context(self, store):
        """The stored session (None when new) and the context it is continued with: -m and -s when given,
        else the session's own model and system prompt."""
        session = store.get_session(self.session_name)
        model = self.opts["model"] or (session.model if session else None) or self.model
        system = self.opts["system"] if self.opts["system"] is not None else (session.system if session else None)
        return session, self.context(model, system)

    def context(self, model: str | None = None, system: str | None = None):
        self.model = model or self.model
        self.system = system
        return Context(self.model, system=system, context_window=self.opts["context_window"],
                       answer_tokens=self.opts["max_tokens"] or self.opts["max_completion_tokens"],
                       max_history=self.opts["max_history"], extra_messages=list(self.explicit))

    def guarded(self, call):
        """Run a turn; on any failure say that nothing was saved, then let the error go on."""
        where = f"session {self.session_name!r}" if self.session_name else "the conversation"
        try:
            return call()
        except OaicliError as exc:
            note = f"The turn was not saved; {where} is unchanged."
            if isinstance(exc, StreamError):  # its own hint ("Nothing was saved; try again.") would repeat it
                exc.hint = note
            else:
                exc.hint = f"{exc.hint} {note}" if exc.hint else note
            raise
        except KeyboardInterrupt:
            self.invocation.say(f"\nCancelled: the turn was not saved; {where} is unchanged.")
            raise

    def ask(self, context, history: list, question: str) -> dict:
        """Send the question with the history that fits; on context_length_exceeded shrink once."""
        messages = context.messages(history, question)
        try:
            return self.send(messages)
        except ApiError as exc:
            smaller = shrink(history) if is_context_error(exc) else None
            if smaller is None:
                raise
            self.notice(f"The server said the context was too long; retrying once without the "
                        f"{(len(history) - len(smaller)) // 2} oldest exchanges.")
            return self.send(context.messages(smaller, question))

    def send(self, messages: list[dict]) -> dict:
        self.requester.use_completions(self.completions)
        self.display.strip_leading = self.completions
        return self.display.send(self.requester, self.body(messages))

    def body(self, messages: list[dict]) -> dict:
        if not self.completions:
            return {"model": self.model, "messages": messages, **self.params}
        room = 4 - len(TRANSCRIPT_STOP)  # the API takes 4 stop sequences; the transcript needs its own
        mine = list(self.params.get("stop") or [])
        if len(mine) > room:
            self.notice(f"The transcript needs a stop sequence of its own; only your first {room} --stop are sent.")
        stop = mine[:room] + TRANSCRIPT_STOP
        body = {"model": self.model, "prompt": transcript(messages), **self.params, "stop": stop}
        body.pop("response_format", None)
        body.pop("max_completion_tokens", None)
        return body
