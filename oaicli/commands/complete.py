"""`oaicli complete`: legacy text completions (/v1/completions), streamed like chat."""

import click

from oaicli.cli import completion, invocation
from oaicli.cli.options import command, sampling_options
from oaicli.core.models import DEFAULT_MODELS

DEFAULT_MODEL = DEFAULT_MODELS["complete"]


@command(None, "complete", formats=("text",))
@click.argument("prompt", required=False)
@click.option("-m", "--model", shell_complete=completion.model_ids, help=f"Model (default: the profile's models.complete, else {DEFAULT_MODEL}).")
@click.option("--suffix", help="Text that comes after the completion (insert mode); with the prompt and "
              "--max-tokens it must fit the model's context window.")
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
    if opts["best_of"] is not None and opts["n"] is not None and opts["best_of"] < opts["n"]:
        raise click.BadParameter(f"--best-of ({opts['best_of']}) must be at least -n ({opts['n']}).",
                                 param_hint="'--best-of'")
    from oaicli.chat import completion
    completion.run(prompt, opts, invocation.current())
