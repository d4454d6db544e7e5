"""The body of `oaicli complete`: one legacy text completion, streamed and shown like a chat answer."""

from oaicli.api import client
from oaicli.api.completions import Requester, request_params
from oaicli.chat.display import AnswerDisplay
from oaicli.chat.stdin import read_prompt
from oaicli.core import settings


def run(prompt, opts) -> None:
    current = settings.current()
    fmt = current.format if current.format in ("json", "jsonl") else "text"
    body = {"model": opts["model"] or current.default_model("complete"),
            "prompt": read_prompt(prompt), **_fields(opts)}
    AnswerDisplay(fmt, opts).send(Requester(client.from_context(), completions=True), body)


def _fields(opts) -> dict:
    fields = request_params(opts)
    for name in ("suffix", "logprobs", "echo", "best_of"):
        if opts[name] is not None:
            fields[name] = opts[name]
    return fields
