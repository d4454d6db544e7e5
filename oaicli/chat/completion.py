"""The body of `oaicli complete`: one legacy text completion, streamed and shown like a chat answer."""

from oaicli.api.completions import Requester, request_params
from oaicli.chat.display import AnswerDisplay
from oaicli.chat.stdin import read_prompt
from oaicli.core.errors import InputError
from oaicli.output import writers as output

# What /v1/completions generates when max_tokens is not given.
API_DEFAULT_MAX_TOKENS = 16


def run(prompt, opts, invocation) -> None:
    current = invocation.settings
    fmt = output.answer_format(invocation)
    body = {"model": opts["model"] or current.default_model("complete"),
            "prompt": read_prompt(invocation, prompt), **_fields(opts)}
    check_fits(body)
    AnswerDisplay(invocation, fmt, opts).send(Requester(invocation.client(), completions=True), body)


def check_fits(body: dict) -> None:
    """Prompt, suffix and the tokens to generate must fit the model's documented context window:
    refused here, before the request, for the OpenAI models whose window and tokenizer are known."""
    from oaicli.conversation import tokens
    window = tokens.lookup(tokens.CONTEXT_WINDOWS, body["model"])
    answer = body.get("max_tokens") or API_DEFAULT_MAX_TOKENS
    text = body["prompt"] + (body.get("suffix") or "")
    if window is None or tokens.encoding_name_for(body["model"]) is None or len(text.encode()) + answer <= window:
        return  # a token is at least one byte: no need to count
    used = tokens.counter_for(body["model"]).count_text(text)
    if used + answer > window:
        what = "The prompt and --suffix take" if body.get("suffix") else "The prompt takes"
        raise InputError(f"{what} {used:,} tokens; with {answer:,} to generate that is over {body['model']}'s "
                         f"context window of {window:,} tokens.", "Shorten them, or lower --max-tokens.")


def _fields(opts) -> dict:
    fields = request_params(opts)
    for name in ("suffix", "logprobs", "echo", "best_of"):
        if opts[name] is not None:
            fields[name] = opts[name]
    return fields
