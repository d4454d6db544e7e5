"""`oaicli complete`: legacy text completions (/v1/completions), streamed like chat."""

import click

from oaicli.commands.chat import sampling_options
from oaicli.cli.options import command

DEFAULT_MODEL = "gpt-3.5-turbo-instruct"


@command(None, "complete", formats=("text",))
@click.argument("prompt", required=False)
@click.option("-m", "--model", help=f"Model (default: the profile's models.complete, else {DEFAULT_MODEL}).")
@click.option("--suffix", help="Text that comes after the completion (insert mode).")
@sampling_options
@click.option("--logprobs", type=click.IntRange(0, 5), help="Log probabilities of the N most likely tokens, 0 to 5.")
@click.option("--echo", is_flag=True, default=None, help="Echo the prompt before the completion.")
@click.option("--best-of", type=click.IntRange(min=1), help="Generate N server-side and return the best (>= -n).")
def complete(prompt, **opts):
    """Complete a prompt with a completions model; streams the text as it arrives.

    The prompt comes from the argument, or from stdin when it is `-` or piped (with both, stdin is
    appended). --format json prints the response object, logprobs included.

    \b
    Example:
      oaicli complete "Once upon a time" --max-tokens 50
      oaicli complete "def fib(n):" --suffix "    return a" --format json
    """
    from oaicli.chat import run as chatrun
    from oaicli.api import client
    from oaicli.core import settings
    if opts["best_of"] is not None and opts["n"] is not None and opts["best_of"] < opts["n"]:
        raise click.BadParameter(f"--best-of ({opts['best_of']}) must be at least -n ({opts['n']}).",
                                 param_hint="'--best-of'")
    current = settings.current()
    fmt = current.format if current.format in ("json", "jsonl") else "text"
    body = {"model": opts["model"] or current.default_model("complete", DEFAULT_MODEL),
            "prompt": chatrun.read_prompt(prompt), **_fields(opts)}
    chatrun.Output(fmt, opts).send(chatrun.Requester(client.from_context(), completions=True), body)


def _fields(opts) -> dict:
    from oaicli.chat.run import request_params
    fields = request_params(opts)
    for name in ("suffix", "logprobs", "echo", "best_of"):
        if opts[name] is not None:
            fields[name] = opts[name]
    return fields
