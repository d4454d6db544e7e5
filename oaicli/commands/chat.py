"""`oaicli chat`: chat completions (/v1/chat/completions), streamed, with optional stored sessions,
an interactive loop, and the JSON-lines envelope for upper applications."""

import click

from oaicli.cli.options import command

DEFAULT_MODEL = "gpt-3.5-turbo"
MESSAGE_ROLES = ("system", "developer", "user", "assistant")


def _check_stop(ctx, param, value):
    if len(value) > 4:
        raise click.BadParameter(f"at most 4 stop sequences, got {len(value)}.")
    return value


def _check_logit_bias(ctx, param, values):
    """JSON objects or TOKEN=BIAS pairs (comma-separated or repeated), merged; biases -100..100."""
    import json
    merged = {}
    for value in values:
        text = value.strip()
        if text.startswith("{"):
            try:
                pairs = json.loads(text)
            except ValueError as exc:
                raise click.BadParameter(f"not valid JSON: {exc}.")
            if not isinstance(pairs, dict):
                raise click.BadParameter("the JSON must be an object of token id to bias.")
            items = list(pairs.items())
        else:
            items = [part.partition("=")[::2] for part in text.split(",") if part.strip()]
        for token, bias in items:
            merged[_token_id(token)] = _bias(token, bias)
    return merged or None


def _token_id(token) -> str:
    token = str(token).strip()
    if not token.isdigit():
        raise click.BadParameter(f"{token!r} is not a token id (an integer); use TOKEN=BIAS or a JSON object.")
    return token


def _bias(token, bias):
    try:
        number = float(bias) if isinstance(bias, str) else bias
    except ValueError:
        raise click.BadParameter(f"bias {bias!r} for token {token} is not a number.")
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not -100 <= number <= 100:
        raise click.BadParameter(f"bias {bias!r} for token {token} must be a number from -100 to 100.")
    return int(number) if float(number).is_integer() else number


def _check_params(ctx, param, values):
    import json
    params = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=JSON.")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            raise click.BadParameter(f"the value of {key} is not JSON: {raw!r} (quote strings: {key}='\"text\"').")
    return params


def _check_messages(ctx, param, values):
    for role, _ in values:
        if role not in MESSAGE_ROLES:
            raise click.BadParameter(f"role {role!r} is not one of {', '.join(MESSAGE_ROLES)}.")
    return [{"role": role, "content": content} for role, content in values]


def sampling_options(func):
    """The sampling fields chat and complete share; ranges are checked before any request."""
    for option in reversed([
        click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature, 0 to 2."),
        click.option("--top-p", type=click.FloatRange(0, 1), help="Nucleus sampling, 0 to 1."),
        click.option("-n", "n", type=click.IntRange(min=1), help="How many answers to generate (each labelled)."),
        click.option("--stop", multiple=True, callback=_check_stop, metavar="TEXT",
                     help="A sequence that ends the answer; repeatable, at most 4."),
        click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate."),
        click.option("--presence-penalty", type=click.FloatRange(-2, 2), help="-2 to 2."),
        click.option("--frequency-penalty", type=click.FloatRange(-2, 2), help="-2 to 2."),
        click.option("--logit-bias", multiple=True, callback=_check_logit_bias, metavar="JSON|TOKEN=BIAS",
                     help="Token biases, -100 to 100: a JSON object or TOKEN=BIAS pairs; repeatable."),
        click.option("--user", metavar="ID", help="An end-user id for abuse monitoring."),
        click.option("--seed", type=int, help="Ask for deterministic sampling."),
        click.option("--param", "params", multiple=True, callback=_check_params, metavar="KEY=JSON",
                     help="Any other request field, as JSON (--param logprobs=true); repeatable."),
        click.option("--stream/--no-stream", default=None,
                     help="Print the answer as it arrives (the default), or all at once."),
        click.option("--usage", is_flag=True, help="Print token usage to stderr."),
    ]):
        func = option(func)
    return func


@command(None, "chat", formats=("text",))
@click.argument("prompt", required=False)
@click.option("-m", "--model", help=f"Model (default: the profile's models.chat, else {DEFAULT_MODEL}).")
@click.option("-s", "--system", help="System prompt.")
@click.option("-g", "--message", "messages", nargs=2, multiple=True, callback=_check_messages,
              metavar="ROLE CONTENT", help="An explicit message before the prompt (few-shot examples); repeatable.")
@sampling_options
@click.option("--max-completion-tokens", type=click.IntRange(min=1), help="Most tokens to generate, reasoning "
              "included (newer models).")
@click.option("--response-format", type=click.Choice(["text", "json_object"]), help="json_object: answer in JSON.")
@click.option("--session", metavar="NAME", help="Create or continue a stored session.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent session.")
@click.option("--context-window", type=click.IntRange(min=16), metavar="N",
              help="The model's context window in tokens (default: from the known-model table).")
@click.option("--max-history", type=click.IntRange(min=0), metavar="N", help="Send at most N earlier exchanges (question and answer pairs).")
@click.option("--api", type=click.Choice(["chat", "completions"]),
              help="completions: hold the conversation through /v1/completions (automatic for GPT-3 models).")
@click.option("-i", "--interactive", is_flag=True, help="The interactive loop even when stdin is not a terminal.")
@click.option("--envelope", is_flag=True, help="Answer JSON request lines from stdin (see the README).")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --envelope: contexts answered at once.")
@click.option("--group-shared", is_flag=True, help="With --envelope: one context per group, shared by its users.")
@click.option("--max-question-chars", type=click.IntRange(min=1), default=32000, show_default=True,
              help="With --envelope: longer questions are refused.")
def chat(prompt, **opts):
    """Chat with a model; streams the answer as it arrives.

    The prompt comes from the argument, or from stdin when it is `-` or piped (with both, stdin is
    appended). With no prompt on a terminal, opens an interactive loop (/exit, /reset, /history;
    a line of three double quotes starts and ends multi-line input; Ctrl-C cancels an answer).
    --session NAME keeps the conversation; without it nothing is stored.

    \b
    Example:
      oaicli chat "Summarize RFC 2119 in one line"
      git diff | oaicli chat "Write a commit message for this diff"
      oaicli chat --session trip "It rained yesterday and I had no umbrella"
      oaicli chat --session trip "And if I had one?"
      echo '{"version":"1.0.0","pars":{"user_id":"1","question":"Hi"}}' | oaicli chat --envelope
    """
    from oaicli.chat import run as chatrun
    return chatrun.main(prompt, opts)
