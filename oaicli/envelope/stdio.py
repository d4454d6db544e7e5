"""`chat --envelope`: JSON request lines on stdin, one JSON response line each on stdout."""

import json
import threading

import click

from oaicli.api import responses as r
from oaicli.api.completions import Requester, request_params
from oaicli.api.responses import as_completion
from oaicli.api.responses_wire import ResponsesRequester
from oaicli.conversation.stores import open_store
from oaicli.conversation.turn import completions_only
from oaicli.envelope.engine import Envelope, LineRunner


def run(prompt, opts, invocation) -> int:
    """Answer each request line of stdin with one response line on stdout; the exit code."""
    if prompt is not None or opts["interactive"] or opts["session"] or opts["continue_"]:
        raise click.UsageError("--envelope reads its requests from stdin; it takes no prompt, -i, --session or -c.")
    model = opts["model"] or invocation.settings.default_model("chat")
    api = opts["api"] or invocation.settings.chat_api or "chat"
    if api == "completions" or completions_only(model):
        raise click.UsageError(f"--envelope speaks chat completions; {model} is a completions-only model.")
    if api == "auto":
        raise click.UsageError("--envelope needs --api chat or --api responses, not auto.")
    server_context = opts.get("context") == "server"
    if opts.get("context") not in (None, "local", "server"):
        raise click.UsageError("--envelope keeps context locally or with --context server.")
    if server_context and api != "responses":
        raise click.UsageError("--context server needs --api responses.")
    store = open_store(invocation.settings.store_url, max_connections=opts["concurrency"] + 1)
    invocation.call_on_close(store.close)
    params = request_params(opts)
    engine = Envelope(store, model=model, system=opts["system"], group_shared=opts["group_shared"],
                      max_question_chars=opts["max_question_chars"],
                      answer_tokens=opts["max_tokens"] or opts["max_completion_tokens"],
                      context_window=opts["context_window"], stream=bool(opts["stream"]), extra_params=params,
                      max_history=opts["max_history"], server_context=server_context)
    requester = Requester(invocation.client())
    responses_requester = ResponsesRequester(invocation.client())
    lock = threading.Lock()
    stdout = invocation.stdout

    def write(obj: dict) -> None:
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        with lock:
            try:
                stdout.write(line)
            except UnicodeEncodeError:  # text stdout's encoding cannot carry goes out \u-escaped
                stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
            stdout.flush()

    def call(body: dict, on_delta) -> dict:
        if api == "responses":
            return ask_responses(body, on_delta)
        if on_delta is None:
            return requester(body)
        return requester(body, lambda event, pieces: [on_delta(text) for index, text in pieces if index == 0])

    def notice(text: str) -> None:
        if not invocation.quiet:
            with lock:
                invocation.say(text)

    def ask_responses(body: dict, on_delta) -> dict:
        """The chat body the engine made, asked through /responses; answered in chat.completion shape."""
        fields = {k: v for k, v in body.items() if k not in ("model", "messages", "stream", "stream_options",
                                                            "conversation")}
        request = {**r.request_body(body["model"], body["messages"], conversation=body.get("conversation"),
                                    stream=bool(body.get("stream"))), **fields}
        deltas = (lambda happening: on_delta(happening.text) if isinstance(happening, r.TextDelta) else None) \
            if on_delta else None
        return as_completion(responses_requester(request, deltas))

    engine.warm_up()
    LineRunner(engine, call, write, opts["concurrency"], notice=notice,
               conversations=_Conversations(invocation.client()) if server_context else None,
               ).run(request_lines(invocation.stdin))
    return 0


def request_lines(stdin):
    """stdin's lines as bytes when it has them: each line is decoded on its own (Envelope.parse), so one
    line that is not UTF-8 gets its own error response instead of ending the loop in the decoder."""
    binary = getattr(stdin, "buffer", None)
    if binary is not None:
        return iter(binary.readline, b"")
    return iter(stdin.readline, "")


class _Conversations:
    """Each envelope context's Conversation on the server (--context server)."""

    def __init__(self, client):
        self.client = client

    def create(self, history: list) -> str:
        items = [{"type": "message", "role": turn.role, "content": turn.content} for turn in history]
        return self.client.post("/conversations", json={"items": items})["id"]

    def delete(self, conversation_id: str) -> None:
        from oaicli.core.errors import OaicliError
        try:
            self.client.delete(f"/conversations/{conversation_id}")
        except OaicliError:
            pass  # an empty Conversation left behind holds no turns
