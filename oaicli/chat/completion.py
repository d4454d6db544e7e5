"""The body of `oaicli complete`: one legacy text completion, streamed and shown like a chat answer."""

from oaicli.api.completions import Requester, request_params
from oaicli.chat.display import AnswerDisplay
from oaicli.chat.stdin import read_prompt
from oaicli.output import writers as output


def run(prompt, opts, invocation) -> None:
    current = invocation.settings
    fmt = output.answer_format(invocation)
    body = {"model": opts["model"] or current.default_model("complete"),
            "prompt": read_prompt(invocation, prompt), **_fields(opts)}
    AnswerDisplay(invocation, fmt, opts).send(Requester(invocation.client(), completions=True), body)


def _fields(opts) -> dict:
    fields = request_params(opts)
    for name in ("suffix", "logprobs", "echo", "best_of"):
        if opts[name] is not None:
            fields[name] = opts[name]
    return fields
