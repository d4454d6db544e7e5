"""`chat --envelope`: JSON request lines on stdin, one JSON response line each on stdout."""

import json
import threading

import click

from oaicli.api.completions import request_params
from oaicli.conversation.stores import open_store
from oaicli.envelope.engine import Envelope, LineRunner
from oaicli.envelope.upstream import Upstream, choose_api


def run(prompt, opts, invocation) -> int:
    """Answer each request line of stdin with one response line on stdout; the exit code."""
    if prompt is not None or opts["interactive"] or opts["session"] or opts["continue_"]:
        raise click.UsageError("--envelope reads its requests from stdin; it takes no prompt, -i, --session or -c.")
    model = opts["model"] or invocation.settings.default_model("chat")
    context = opts.get("context") or "local"
    api = choose_api(opts["api"] or invocation.settings.chat_api, context, model, invocation.settings.base_url)
    store = open_store(invocation.settings.store_url, max_connections=opts["concurrency"] + 1)
    invocation.call_on_close(store.close)
    engine = Envelope(store, model=model, system=opts["system"], group_shared=opts["group_shared"],
                      max_question_chars=opts["max_question_chars"],
                      answer_tokens=opts["max_tokens"] or opts["max_completion_tokens"],
                      context_window=opts["context_window"], stream=bool(opts["stream"]),
                      extra_params=request_params(opts), max_history=opts["max_history"], context=context)
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

    def notice(text: str) -> None:
        if not invocation.quiet:
            with lock:
                invocation.say(text)

    engine.warm_up()
    upstream = Upstream(invocation.client(), api, notice)
    LineRunner(engine, upstream, write, opts["concurrency"], notice=notice).run(request_lines(invocation.stdin))
    return 0


def request_lines(stdin):
    """stdin's lines as bytes when it has them: each line is decoded on its own (Envelope.parse), so one
    line that is not UTF-8 gets its own error response instead of ending the loop in the decoder."""
    binary = getattr(stdin, "buffer", None)
    if binary is not None:
        return iter(binary.readline, b"")
    return iter(stdin.readline, "")
