"""What every turn of one chat invocation shares, and the turns themselves: stateless, or in a stored
session (read the tail, ask, save, all under the session's lock). A stateless turn loads no store and no
token counter."""

import click

from oaicli.api import responses as r
from oaicli.api.completions import Requester, request_params
from oaicli.api.responses import as_completion
from oaicli.api.responses_wire import ResponsesRequester
from oaicli.chat import schema as schemas
from oaicli.chat.display import AnswerDisplay
from oaicli.chat.responses_display import ResponsesDisplay
from oaicli.conversation.chat_api import chat_api, has_no_responses
from oaicli.conversation.turn import (
    TRANSCRIPT_STOP,
    Context,
    completions_only,
    is_context_error,
    shrink,
    transcript,
)
from oaicli.core.errors import ApiError, InputError, OaicliError, StreamError

# Options only the Responses API takes, and chat options it has no field for.
RESPONSES_ONLY = ("max_output_tokens", "reasoning_effort", "reasoning_summary", "schema", "store", "service_tier",
                  "background")
NOT_IN_RESPONSES = ("n", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "seed")


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
        self.api = chat_api(opts["api"] or invocation.settings.chat_api, invocation.settings.base_url)
        self.context_mode = opts.get("context") or "local"
        self._check_api_options()
        self.schema = schemas.load(opts["schema"]) if opts.get("schema") else None
        self.requester = Requester(invocation.client())
        self.display = AnswerDisplay(invocation, fmt, opts, keep_usage=bool(self.session_name))

    @property
    def responses(self) -> bool:
        """Whether turns go through POST /responses (auto: until the server says it has no such path)."""
        return self.api in ("responses", "auto")

    def _check_api_options(self) -> None:
        given = [name for name in RESPONSES_ONLY if self.opts.get(name) not in (None, False)]
        if self.api in ("responses", "auto"):
            refused = [name for name in NOT_IN_RESPONSES if self.opts.get(name) not in (None, (), {})]
            if refused:
                raise click.UsageError(f"{_flag(refused[0])} has no Responses API field; use --api chat.")
        elif given:
            raise click.UsageError(f"{_flag(given[0])} needs --api responses.")
        if self.context_mode != "local":
            if self.api != "responses":
                raise click.UsageError(f"--context {self.context_mode} needs --api responses (server-side "
                                       "context exists only in OpenAI's Responses API).")
            if not self.session_name:
                raise click.UsageError(f"--context {self.context_mode} needs --session NAME.")
            if self.opts.get("store") is False:
                raise click.UsageError(f"--context {self.context_mode} needs stored responses; drop --no-store.")
        if self.opts.get("background") and self.session_name:
            raise click.UsageError("--background answers later, so it cannot be saved in a session; drop --session.")

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
            from oaicli.conversation.stores import open_store
            self.store = open_store(self.invocation.settings.store_url)
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
            if self.context_mode == "local":
                history = context.tail(store, session.id, question) if session else []
                response = self.guarded(lambda: self.ask(context, history, question))
                conversation = None
            else:
                response, conversation = self.guarded(lambda: self.server_turn(store, session, context, question))
            # Created (or its model and system updated) only now: a failed turn leaves no trace at all.
            session = store.ensure_session(self.session_name, model=context.model, system=context.system)
            context.save(store, session.id, question, response, conversation_id=conversation)
        return response

    def prepare_tail(self, store, question: str) -> None:
        """Fit the tail once without the lock: when its upper bounds do not settle it, this builds the
        encoding (0.1-0.3 s) and caches the turns' counts, so the fit under the lock only reads them.
        Another process may add a turn in between; the fit under the lock still decides, counting at most
        that turn. (Server-held contexts send no history, so they need no preparing.)"""
        if self.context_mode != "local":
            return
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

    def server_turn(self, store, session, context, question: str) -> tuple[dict, str | None]:
        """A turn whose context the server holds: only the instructions and the new question are sent.

        previous: chained with previous_response_id on the newest stored answer; server: in the session's
        Conversation, created on first use holding the local history. A session with no server-side
        context yet sends its local history once. Returns the answer and a Conversation id to record
        (None: nothing new to record). A Conversation made for a turn that then fails is deleted, so
        both sides stay as they were."""
        new = context.first_messages(question)
        if self.context_mode == "previous":
            previous = store.last_response_id(session.id) if session else None
            answer = previous and self._unless_gone(lambda: self.send(new, previous_response_id=previous),
                                                    "previous_response_id", f"response {previous}")
            if answer:
                return answer, None
            return self.ask(context, context.tail(store, session.id, question) if session else [], question), None
        conversation = store.conversation_of(session.id) if session else None
        answer = conversation and self._unless_gone(lambda: self.send(new, conversation=conversation),
                                                    "conversation", f"conversation {conversation}")
        if answer:
            return answer, None
        history = context.tail(store, session.id, question) if session else []
        created = self.requester.client.post("/conversations", json={"items": [
            {"type": "message", "role": turn.role, "content": turn.content} for turn in history]})["id"]
        try:
            return self.send(new, conversation=created), created
        except BaseException:
            self._delete_quietly(f"/conversations/{created}")
            raise

    def _unless_gone(self, send, param: str, what: str) -> dict | None:
        """The answer; None when the server no longer has the context the request names (a stored
        response expires after 30 days, a Conversation can be deleted): the local store holds every
        turn, so the caller sends them instead of leaving the session stuck on that error."""
        try:
            return send()
        except ApiError as exc:
            if exc.status not in (400, 404) or exc.param != param:
                raise
        self.notice(f"The server no longer has {what}; sending the session's history from the local store.")
        return None

    def _delete_quietly(self, path: str) -> None:
        try:
            self.requester.client.delete(path)
        except OaicliError:
            self.notice(f"Could not delete {path.rsplit('/', 1)[-1]} on the server; it holds no turns.")

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

    def send(self, messages: list[dict], **server_context) -> dict:
        if self.responses:
            try:
                return self.send_responses(messages, **server_context)
            except ApiError as exc:
                if not has_no_responses(self.api, exc, self.invocation.settings.base_url, self.notice):
                    raise
                self.api = "chat"
        self.requester.use_completions(self.completions)
        self.display.strip_leading = self.completions
        return self.display.send(self.requester, self.body(messages))

    def send_responses(self, messages: list[dict], previous_response_id: str | None = None,
                       conversation: str | None = None) -> dict:
        body = self.responses_body(messages, previous_response_id, conversation)
        client = self.requester.client
        if self.opts.get("background"):
            return self.started_in_background(client.post("/responses", json=body))
        display = ResponsesDisplay(self.invocation, self.fmt, self.opts, self.schema)
        return display.send(ResponsesRequester(client, display.notice), body)

    def responses_body(self, messages: list[dict], previous_response_id=None, conversation=None) -> dict:
        opts = self.opts
        try:
            body = r.request_body(
                self.model, messages,
                max_output_tokens=opts.get("max_output_tokens") or opts["max_completion_tokens"] or opts["max_tokens"],
                reasoning_effort=opts.get("reasoning_effort"), reasoning_summary=opts.get("reasoning_summary"),
                response_format=opts["response_format"], schema=self.schema, store=opts.get("store"),
                service_tier=opts.get("service_tier"), previous_response_id=previous_response_id,
                conversation=conversation, background=bool(opts.get("background")))
        except ValueError as exc:
            raise InputError(f"Cannot make the request: {exc}.") from None
        for name in ("temperature", "top_p", "user"):
            if opts.get(name) is not None:
                body[name] = opts[name]
        body.update(opts.get("params") or {})
        return body

    def started_in_background(self, response: dict) -> dict:
        from oaicli.output import writers as output
        if self.fmt == "json":
            output.write(output.dumps(response), stream=self.invocation.stdout)
        elif self.fmt == "jsonl":
            output.write_json_line(response, self.invocation.stdout)
        else:
            output.write(response.get("id") or "", stream=self.invocation.stdout)
        self.notice(f"Response {response.get('id')} is {response.get('status')} in the background; "
                    f"follow it with `oaicli responses follow {response.get('id')}`.")
        return as_completion(response)

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


def _flag(name: str) -> str:
    return "-n" if name == "n" else "--" + name.replace("_", "-")
