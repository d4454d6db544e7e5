"""The body of `oaicli chat`: one turn, a stored session, the interactive loop (chatloop.py), or the
envelope loop.

Imported only when chat runs. A stateless one-shot chat stays light: no token counter, no store,
no tabulate; the session path loads the conversation core (store, tokens, context) when it needs it.
"""

import sys

import click

from oaicli.api import client as client_module
from oaicli.core import settings as settings_module
from oaicli.chat.stream import ChatAssembler, CompletionAssembler, Printer
from oaicli.core.errors import ApiError, OaicliError, StreamError

SAMPLING_FIELDS = ("temperature", "top_p", "n", "max_tokens", "presence_penalty", "frequency_penalty", "user",
                   "seed", "max_completion_tokens")
ENVELOPE_ONLY = ("concurrency", "group_shared", "max_question_chars")


def main(prompt, opts) -> int:
    settings = settings_module.current()
    model = opts["model"] or settings.default_model("chat", "gpt-3.5-turbo")
    if opts["envelope"]:
        return run_envelope(prompt, opts, model)
    _refuse_envelope_options(opts)
    if opts["session"] and opts["continue_"]:
        raise click.UsageError("Use either --session NAME or -c/--continue, not both.")
    fmt = settings.format if settings.format in ("json", "jsonl") else "text"
    interactive = opts["interactive"] or (prompt is None and not opts["messages"] and stdin_is_terminal())
    chat = Chat(opts, model, fmt)
    if interactive:
        from oaicli.chat.interactive import InteractiveLoop
        return InteractiveLoop(chat).run(prompt)
    question = read_prompt(prompt, allow_empty=bool(opts["messages"]))
    if chat.session_name:
        chat.session_turn(question)
    else:
        chat.stateless_turn(question)
    return 0


def _refuse_envelope_options(opts) -> None:
    from click.core import ParameterSource
    ctx = click.get_current_context()
    given = [name for name in ENVELOPE_ONLY if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]
    if given:
        raise click.UsageError(f"--{given[0].replace('_', '-')} only applies with --envelope.")


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_prompt(prompt: str | None, allow_empty: bool = False) -> str | None:
    """The argument, or stdin when it is `-` or piped; with both, stdin is appended after a blank line."""
    piped = None
    if prompt == "-" or not stdin_is_terminal():
        piped = sys.stdin.read()
    if prompt == "-":
        prompt = None
    parts = [part for part in (prompt, piped.strip("\n") if piped else None) if part]
    text = "\n\n".join(parts)
    if not text.strip():
        if allow_empty:
            return None
        raise click.UsageError("No prompt: give it as an argument, or pipe it on stdin.")
    return text


def request_params(opts) -> dict:
    """The request fields named by options (not model, messages, stream), --param last so it wins."""
    params = {name: opts[name] for name in SAMPLING_FIELDS if opts.get(name) is not None}
    if opts.get("stop"):
        params["stop"] = list(opts["stop"])
    if opts.get("logit_bias"):
        params["logit_bias"] = opts["logit_bias"]
    if opts.get("response_format"):
        params["response_format"] = {"type": opts["response_format"]}
    params.update(opts.get("params") or {})
    return params


class Requester:
    """Sends one chat or completions request, streamed or not, handing each event to a callback."""

    def __init__(self, client, completions: bool = False):
        self.client = client
        self.usage_refused = False
        self.use_completions(completions)

    def use_completions(self, completions: bool) -> None:
        self.completions = completions
        self.path = "/completions" if completions else "/chat/completions"

    def __call__(self, body: dict, on_event=None) -> dict:
        """The response object (assembled from the chunks when streamed)."""
        if not body.get("stream"):
            response = self.client.post(self.path, json=body)
            if on_event:
                on_event(response)
            return response
        if self.usage_refused:
            body.pop("stream_options", None)
        try:
            return self._stream(body, on_event)
        except ApiError as exc:
            if not (exc.status == 400 and "stream_options" in body and "stream_options" in
                    f"{exc.param} {exc.message}"):
                raise
            # An older server refuses stream_options: ask again without it, and stop sending it.
            self.usage_refused = True
            body.pop("stream_options")
            return self._stream(body, on_event)

    def _stream(self, body: dict, on_event) -> dict:
        assembler = CompletionAssembler() if self.completions else ChatAssembler()
        add = assembler.add
        for event in self.client.stream_events(self.path, body):
            pieces = add(event)
            if on_event:
                on_event(event, pieces)
        return assembler.result()


class Chat:
    """What every turn of this invocation shares: model, request fields, output, session."""

    def __init__(self, opts, model: str, fmt: str):
        self.opts = opts
        self.model = model
        self.fmt = fmt
        self.system = opts["system"]
        self.params = request_params(opts)
        self.explicit = opts["messages"]
        self.quiet = bool(settings_module.current().quiet)
        self.session_name = opts["session"]
        self.store = None
        if opts["continue_"]:
            self.session_name = self._latest_session()
        self.requester = Requester(client_module.from_context())
        self.output = Output(fmt, opts, keep_usage=bool(self.session_name))

    @property
    def completions(self) -> bool:
        """Whether this model holds the conversation through /v1/completions (a session may set the model)."""
        from oaicli.conversation.turn import completions_only
        return self.opts["api"] == "completions" or (self.opts["api"] is None and completions_only(self.model))

    def _latest_session(self) -> str:
        latest = self.open_store().latest_session()
        if latest is None:
            raise click.UsageError("No session to continue: start one with --session NAME.")
        return latest.name

    def open_store(self):
        if self.store is None:
            from oaicli.conversation.store import Store
            self.store = Store.open()
            click.get_current_context().call_on_close(self.store.close)
        return self.store

    def notice(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    # Turns

    def stateless_turn(self, question: str | None) -> dict:
        """No history: no token counting, no store."""
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + list(self.explicit)
        if question is not None:
            messages.append({"role": "user", "content": question})
        return self.send(messages)

    def session_turn(self, question: str) -> dict:
        """Read the tail, ask, save: all while holding the session's lock, so processes take turns."""
        store = self.open_store()
        with store.exclusive(self.session_name):
            session = store.get_session(self.session_name)
            model = self.opts["model"] or (session.model if session else None) or self.model
            system = self.system if self.system is not None else (session.system if session else None)
            context = self.context(model, system)
            history = context.tail(store, session.id, question) if session else []
            response = self.guarded(lambda: self.ask(context, history, question))
            # Created (or its model and system updated) only now: a failed turn leaves no trace at all.
            session = store.ensure_session(self.session_name, model=model, system=system)
            context.save(store, session.id, question, response)
        return response

    def context(self, model: str | None = None, system: str | None = None):
        from oaicli.conversation.turn import Context
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
            click.echo(f"\nCancelled: the turn was not saved; {where} is unchanged.", err=True)
            raise

    def ask(self, context, history: list, question: str) -> dict:
        """Send the question with the history that fits; on context_length_exceeded shrink once."""
        from oaicli.conversation.turn import is_context_error, shrink
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
        self.output.strip_leading = self.completions
        return self.output.send(self.requester, self.body(messages))

    def body(self, messages: list[dict]) -> dict:
        if not self.completions:
            return {"model": self.model, "messages": messages, **self.params}
        from oaicli.conversation.turn import TRANSCRIPT_STOP, transcript
        room = 4 - len(TRANSCRIPT_STOP)  # the API takes 4 stop sequences; the transcript needs its own
        mine = list(self.params.get("stop") or [])
        if len(mine) > room:
            self.notice(f"The transcript needs a stop sequence of its own; only your first {room} --stop are sent.")
        stop = mine[:room] + TRANSCRIPT_STOP
        body = {"model": self.model, "prompt": transcript(messages), **self.params, "stop": stop}
        body.pop("response_format", None)
        body.pop("max_completion_tokens", None)
        return body


class Output:
    """Streams or waits for one answer and shows it: text (deltas flushed as they come, choices
    labelled when n > 1), json (the response object, assembled when streamed) or jsonl (each chunk)."""

    def __init__(self, fmt: str, opts, strip_leading: bool = False, keep_usage: bool = False):
        self.fmt = fmt
        self.stream = opts["stream"] is not False
        self.usage = opts["usage"]
        self.labelled = (opts.get("n") or 1) > 1
        self.strip_leading = strip_leading
        self.want_usage = bool(opts["usage"] or fmt != "text" or keep_usage)

    def send(self, requester: Requester, body: dict) -> dict:
        if self.stream:
            body["stream"] = True
            if self.want_usage:
                body["stream_options"] = {"include_usage": True}
        printer = Printer(sys.stdout, labelled=self.labelled, strip_leading=self.strip_leading)
        on_event = self._on_event(printer) if self.stream else None
        try:
            response = requester(body, on_event)
        except Exception:
            printer.finish()  # end a half-written answer's line, so the error line starts on its own
            raise
        self.show(response, printer)
        return response

    def _on_event(self, printer: Printer):
        if self.fmt == "jsonl":
            from oaicli.output.writers import write_json_line
            return lambda event, pieces: write_json_line(event)
        if self.fmt == "json":
            return None
        return lambda event, pieces: printer(pieces) if pieces else None

    def show(self, response: dict, printer: Printer) -> None:
        from oaicli.output import writers as output
        if self.fmt == "json":
            output.write(output.dumps(response))
        elif self.fmt == "jsonl" and not self.stream:
            output.write_json_line(response)
        elif self.fmt == "text" and not self.stream:
            from oaicli.chat.stream import answer_of
            printer([(c.get("index", 0), answer_of(response, c.get("index", 0)))
                     for c in response.get("choices") or ()])
        printer.finish()
        if self.usage:
            click.echo(usage_line(response.get("usage")), err=True)


def usage_line(usage: dict | None) -> str:
    if not usage:
        return "Usage: the server did not report token usage."
    return (f"Usage: {usage.get('prompt_tokens', '?')} prompt + {usage.get('completion_tokens', '?')} completion "
            f"= {usage.get('total_tokens', '?')} tokens.")


def run_envelope(prompt, opts, model: str) -> int:
    """`chat --envelope`: JSON request lines on stdin, one JSON response line each on stdout."""
    import json
    import threading

    from oaicli.conversation.turn import completions_only
    from oaicli.envelope.engine import Envelope, LineRunner
    from oaicli.conversation.store import Store
    if prompt is not None or opts["interactive"] or opts["session"] or opts["continue_"]:
        raise click.UsageError("--envelope reads its requests from stdin; it takes no prompt, -i, --session or -c.")
    if opts["api"] == "completions" or completions_only(model):
        raise click.UsageError(f"--envelope speaks chat completions; {model} is a completions-only model.")
    store = Store.open()
    click.get_current_context().call_on_close(store.close)
    params = request_params(opts)
    engine = Envelope(store, model=model, system=opts["system"], group_shared=opts["group_shared"],
                      max_question_chars=opts["max_question_chars"],
                      answer_tokens=opts["max_tokens"] or opts["max_completion_tokens"],
                      context_window=opts["context_window"], stream=bool(opts["stream"]), extra_params=params,
                      max_history=opts["max_history"])
    requester = Requester(client_module.from_context())
    lock = threading.Lock()
    stdout = sys.stdout
    quiet = bool(settings_module.current().quiet)

    def write(obj: dict) -> None:
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        with lock:
            stdout.write(line)
            stdout.flush()

    def call(body: dict, on_delta) -> dict:
        if on_delta is None:
            return requester(body)
        return requester(body, lambda event, pieces: [on_delta(text) for index, text in pieces if index == 0])

    def notice(text: str) -> None:
        if not quiet:
            with lock:
                click.echo(text, err=True)

    engine.warm_up()
    LineRunner(engine, call, write, opts["concurrency"], notice=notice).run(iter(sys.stdin.readline, ""))
    return 0
