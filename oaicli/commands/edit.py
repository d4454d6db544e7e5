"""`oaicli edit`: edits (/v1/edits), falling back to a chat completion where the server has no edits."""

import click

from oaicli.cli import completion, invocation
from oaicli.cli.options import InputFile, command
from oaicli.core.models import DEFAULT_MODELS

DEFAULT_MODEL = DEFAULT_MODELS["edit"]
FALLBACK_SYSTEM = ("You edit text. Apply the user's instruction to the text they give and reply with the "
                   "edited text only: no preamble, no explanation, no code fences.")


@command(None, "edit", formats=("text",))
@click.option("--instruction", required=True, help="How to change the input.")
@click.option("--input", "input_text", metavar="TEXT", help="The text to edit (else --input-file, else stdin).")
@click.option("--input-file", type=InputFile(allow_dash=True), help="Read the text to edit from FILE (- for stdin).")
@click.option("-m", "--model", shell_complete=completion.model_ids, help=f"Model (default: the profile's models.edit, else {DEFAULT_MODEL}).")
@click.option("-n", "n", type=click.IntRange(min=1), help="How many edits to generate.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature, 0 to 2.")
@click.option("--top-p", type=click.FloatRange(0, 1), help="Nucleus sampling, 0 to 1.")
@click.option("--no-fallback", is_flag=True, help="Fail when the server has no /v1/edits instead of using chat.")
@click.option("--fallback-model", metavar="MODEL", help="Chat model for the fallback (default: the chat default).")
def edit(instruction, input_text, input_file, model, n, temperature, top_p, no_fallback, fallback_model):
    """Edit text by instruction.

    Servers without /v1/edits (OpenAI retired it) answer 404; then the edit is made with a chat
    completion instead, stderr says so, and the output has the same shape. --no-fallback turns this off.

    \b
    Example:
      oaicli edit --instruction "Fix the spelling" --input "Wat day of the wek is it?"
      oaicli edit --instruction "Translate to French" --input-file notes.txt --format json
    """
    from oaicli.core.errors import ApiError
    from oaicli.output import writers as output
    current = invocation.current().settings
    fmt = output.answer_format()  # a bad OAICLI_FORMAT is refused before anything is sent
    text = _input(input_text, input_file)
    body = {"model": model or current.default_model("edit"), "instruction": instruction}
    for name, value in (("input", text), ("n", n), ("temperature", temperature), ("top_p", top_p)):
        if value is not None:
            body[name] = value
    api = invocation.current().client()
    try:
        response = api.post("/edits", json=body)
    except ApiError as exc:
        if exc.status != 404 or exc.code == "model_not_found":  # a wrong model is not a missing endpoint
            raise
        if no_fallback:
            exc.hint = "The server has no /v1/edits; without --no-fallback the edit is made with a chat completion."
            raise
        chat_model = fallback_model or current.default_model("chat")
        output.notice(f"The server has no /v1/edits (404); made the edit with a chat completion ({chat_model}) instead.")
        response = _edit_by_chat(api, body, chat_model)
    _show(response, fmt)


def _input(input_text: str | None, input_file) -> str | None:
    """The text to edit; an empty one (say, an empty pipe) is refused before anything is sent."""
    import sys

    from oaicli.core.errors import InputError
    if input_text is not None and input_file is not None:
        raise click.UsageError("Give the text with --input or --input-file, not both.")
    source, text = "--input", input_text
    if input_file == "-" or (input_file is None and input_text is None and not sys.stdin.isatty()):
        source, text = "stdin", sys.stdin.read()
    elif input_file is not None:
        source = input_file
        try:
            with open(input_file, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError as exc:
            raise InputError(f"{input_file} is not UTF-8 text: {exc.reason} at byte {exc.start}.")
    if text is not None and not text.strip():
        raise InputError(f"The text to edit is empty ({source} gave nothing).",
                         "Give the text with --input, --input-file or on stdin.")
    return text


def _edit_by_chat(api, body: dict, model: str) -> dict:
    """The same request as a chat completion, answered in the edit response's shape."""
    user = f"Instruction: {body['instruction']}\n\nText:\n{body.get('input') or ''}"
    request = {"model": model, "messages": [{"role": "system", "content": FALLBACK_SYSTEM},
                                            {"role": "user", "content": user}]}
    request.update({k: body[k] for k in ("n", "temperature", "top_p") if k in body})
    completion = api.post("/chat/completions", json=request)
    choices = [{"text": (c.get("message") or {}).get("content") or "", "index": c.get("index", i)}
               for i, c in enumerate(completion.get("choices") or ())]
    edited = {"object": "edit", "created": completion.get("created"), "choices": choices}
    if completion.get("usage") is not None:
        edited["usage"] = completion["usage"]
    return edited


def _show(response: dict, fmt: str | None) -> None:
    from oaicli.output import writers as output
    if fmt == "json":
        return output.write(output.dumps(response))
    if fmt == "jsonl":
        return output.write_json_line(response)
    choices = response.get("choices") or []
    for choice in choices:
        text = choice.get("text") or ""
        label = f"[{choice.get('index', 0)}] " if len(choices) > 1 else ""
        output.write(label + text, newline=not text.endswith("\n"))
