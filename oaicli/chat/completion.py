"""The body of `oaicli complete`: one legacy text completion, streamed and shown like a chat answer."""

from oaicli.api.completions import Requester, request_params
from oaicli.chat.display import AnswerDisplay
from oaicli.chat.stdin import read_prompt


def run(prompt, opts, invocation) -> None:
    current = invocation.settings
    fmt = current.format if current.format in ("json", "jsonl") else "text"
    body = {"model": opts["model"] or current.default_model("complete"),
            "prompt": read_prompt(invocation, prompt), **_fields(opts)}
    AnswerDisplay(invocation, fmt, opts).send(Requester(invocation.client(), completions=True), body)


def _fields(opts) -> dict:
    fields = request_params(opts)
    for name in ("suffix", "logprobs", "echo", "best_of"):
        if opts[name] is not None:
            fields[name] = opts[name]
    return fields
