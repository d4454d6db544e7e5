"""`oaicli chat`: chat completions (/v1/chat/completions), streamed, with optional stored sessions,
an interactive loop, and the JSON-lines envelope for upper applications."""

import click
from click.core import ParameterSource

from oaicli.cli import completion, invocation
from oaicli.cli.options import command, sampling_options, session_store_option
from oaicli.core.models import DEFAULT_MODELS

DEFAULT_MODEL = DEFAULT_MODELS["chat"]
MESSAGE_ROLES = ("system", "developer", "user", "assistant")
ENVELOPE_ONLY = ("concurrency", "group_shared", "max_question_chars")
# What --batch cannot honour (the requests go through chat completions, one per line of the file, with no
# session): refused, because a batch silently run without them is found out only hours later.
NOT_WITH_BATCH = ("messages", "session", "continue_", "context_window", "max_history", "api", "max_output_tokens",
                  "reasoning_effort", "reasoning_summary", "schema", "store", "service_tier", "background",
                  "context", "interactive", "envelope", *ENVELOPE_ONLY)


def _check_messages(ctx, param, values):
    for role, _ in values:
        if role not in MESSAGE_ROLES:
            raise click.BadParameter(f"role {role!r} is not one of {', '.join(MESSAGE_ROLES)}.")
    return [{"role": role, "content": content} for role, content in values]


@command(None, "chat", formats=("text",))
@session_store_option
@click.argument("prompt", required=False)
@click.option("-m", "--model", shell_complete=completion.model_ids, help=f"Model (default: the profile's models.chat, else {DEFAULT_MODEL}).")
@click.option("-s", "--system", help="System prompt.")
@click.option("-g", "--message", "messages", nargs=2, multiple=True, callback=_check_messages,
              metavar="ROLE CONTENT", help="An explicit message before the prompt (few-shot examples); repeatable.")
@sampling_options
@click.option("--max-completion-tokens", type=click.IntRange(min=1), help="Most tokens to generate, reasoning "
              "included (newer models).")
@click.option("--response-format", type=click.Choice(["text", "json_object"]), help="json_object: answer in JSON.")
@click.option("--session", metavar="NAME", shell_complete=completion.session_names, help="Create or continue a stored session.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent session.")
@click.option("--context-window", type=click.IntRange(min=16), metavar="N",
              help="The model's context window in tokens (default: from the known-model table).")
@click.option("--max-history", type=click.IntRange(min=0), metavar="N", help="Send at most N earlier exchanges (question and answer pairs).")
@click.option("--api", type=click.Choice(["chat", "completions", "responses", "auto"]),
              help="chat: /v1/chat/completions (the default); responses: /v1/responses; auto: responses at "
              "OpenAI, else chat unless the server answers /responses; completions: a transcript through "
              "/v1/completions (automatic for GPT-3 models). Default: OAICLI_CHAT_API or the profile's chat_api.")
@click.option("--max-output-tokens", type=click.IntRange(min=1), metavar="N",
              help="Responses: most tokens to generate, reasoning included.")
@click.option("--reasoning-effort", type=click.Choice(["none", "minimal", "low", "medium", "high"]),
              help="Responses: how hard a reasoning model thinks.")
@click.option("--reasoning-summary", type=click.Choice(["auto", "concise", "detailed"]),
              help="Responses: stream a summary of the reasoning to stderr (hidden with -q).")
@click.option("--schema", type=click.Path(dir_okay=False), metavar="FILE",
              help="Responses: answer in JSON matching this JSON Schema (structured output); the answer is "
              "checked locally before it is printed.")
@click.option("--store/--no-store", default=None, help="Responses: whether the server keeps the response "
              "(default: it does, for 30 days).")
@click.option("--service-tier", type=click.Choice(["auto", "default", "flex", "priority"]),
              help="Responses: the processing tier.")
@click.option("--background", is_flag=True, help="Responses: start the answer in the background and print its "
              "id; collect it with `oaicli responses follow ID`.")
@click.option("--context", type=click.Choice(["local", "previous", "server"]),
              help="With --session (or --envelope) and --api responses: local (default) sends the history "
              "from the local store; previous chains on the last answer (previous_response_id); server keeps "
              "it in a Conversation. The local store records every turn either way.")
@click.option("--batch", "batch_file", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Answer every line of FILE (a JSON prompt string or messages array) through the Batch API "
              "at half price; prints the batch id, or the answers with --wait.")
@click.option("--wait", is_flag=True, help="With --batch: follow the batch and print the answers.")
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
    appended). With no prompt on a terminal, opens an interactive loop (/help lists its commands:
    /exit, /reset, /history; a line of three double quotes starts and ends multi-line input; Ctrl-C
    cancels an answer).
    --session NAME keeps the conversation; without it nothing is stored.

    \b
    Example:
      oaicli chat "Summarize RFC 2119 in one line"
      git diff | oaicli chat "Write a commit message for this diff"
      oaicli chat --session trip "It rained yesterday and I had no umbrella"
      oaicli chat --session trip "And if I had one?"
      echo '{"version":"1.0.0","pars":{"user_id":"1","question":"Hi"}}' | oaicli chat --envelope
      oaicli chat --api responses --reasoning-summary auto --usage -m o4-mini "Why is the sky blue?"
      oaicli chat --api responses --schema person.schema.json "Invent a person"
      oaicli chat --api responses --session trip --context server "Plan day one"
      oaicli chat --batch prompts.jsonl --wait --format jsonl > answers.jsonl
    """
    if opts["batch_file"]:
        _refuse_with_batch(prompt)
        from oaicli.jobs import batch_modes
        return batch_modes.chat_batch(opts, invocation.current())
    if opts["wait"]:
        raise click.UsageError("--wait only applies with --batch.")
    if opts["envelope"]:
        from oaicli.envelope import stdio
        return stdio.run(prompt, opts, invocation.current())
    _refuse_envelope_options()
    from oaicli.chat import run as chat_run
    return chat_run.main(prompt, opts, invocation.current())


def _refuse_with_batch(prompt) -> None:
    if prompt is not None:
        raise click.UsageError("--batch takes its prompts from FILE, one per line; drop the PROMPT argument.")
    ctx = click.get_current_context()
    for name in NOT_WITH_BATCH:
        if name == "api" and ctx.params.get("api") == "chat":
            continue
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
            option = next(param for param in ctx.command.params if param.name == name)
            raise click.UsageError(f"{max(option.opts, key=len)} does not apply with --batch (its requests go "
                                   "through chat completions, with no session); drop it.")


def _refuse_envelope_options() -> None:
    ctx = click.get_current_context()
    given = [name for name in ENVELOPE_ONLY if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]
    if given:
        raise click.UsageError(f"--{given[0].replace('_', '-')} only applies with --envelope.")

