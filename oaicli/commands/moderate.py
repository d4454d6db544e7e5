"""`oaicli moderate`: classify text with /v1/moderations; exit 9 when anything is flagged."""

import click

from oaicli.cli import invocation
from oaicli.cli.options import command

COLUMNS = ["index", "flagged", "categories", "input"]


@command(None, "moderate")
@click.argument("texts", nargs=-1, metavar="[TEXT]...")
@click.option("-m", "--model", help="Moderation model (default: the API's own, omni-moderation-latest today).")
def moderate(texts, model):
    """Check text against the moderation policy. Exit 0 when nothing is flagged, 9 when anything is.

    Each TEXT is one input; with none, all of standard input is one input. The table shows each
    input with its flagged categories and their scores; --format json prints the API's answer.

    \b
    Example:
      oaicli moderate "I will hurt them" || echo "flagged (exit $?)"
      cat comment.txt | oaicli moderate --format json
    """
    from oaicli.core.errors import ExitCode, InputError
    from oaicli.output import writers as output
    inputs = list(texts) or [_stdin_text()]
    if not any(text.strip() for text in inputs):
        raise InputError("Nothing to moderate: every TEXT is blank.")
    body = {"input": inputs if len(inputs) > 1 else inputs[0]}
    chosen = model or invocation.current().settings.default_model("moderate")
    if chosen:
        body["model"] = chosen
    answer = invocation.current().client().post("/moderations", json=body)
    results = answer.get("results", [])
    _render(answer, inputs, results, output.resolve_format())
    flagged = sum(1 for result in results if result.get("flagged"))
    if flagged:
        output.notice(f"Flagged: {flagged} of {len(results)} input(s).")
        return ExitCode.FLAGGED
    output.notice(f"Nothing flagged in {len(results)} input(s).")
    return ExitCode.OK


def _stdin_text() -> str:
    import sys

    from oaicli.core.errors import InputError
    stream = sys.stdin
    text = "" if stream.isatty() else stream.read()
    if not text.strip():
        raise InputError("Nothing to moderate: give TEXT arguments or pipe text on standard input.")
    return text


def _render(answer: dict, inputs: list[str], results: list[dict], fmt: str) -> None:
    from oaicli.output import writers as output
    if fmt == "json":
        return output.write(output.dumps(answer))
    if fmt == "jsonl":
        for index, result in enumerate(results):
            output.write_json_line({"index": index, "input": _at(inputs, index), **result})
        return
    output.write(output.table([_row(index, _at(inputs, index), result) for index, result in enumerate(results)],
                              COLUMNS))


def _row(index: int, text: str, result: dict) -> dict:
    scores = result.get("category_scores") or {}
    hits = [f"{name} ({scores.get(name, 0):.2f})" for name, hit in (result.get("categories") or {}).items() if hit]
    return {"index": index, "flagged": "yes" if result.get("flagged") else "no",
            "categories": ", ".join(hits), "input": text}


def _at(inputs: list[str], index: int) -> str:
    return inputs[index] if index < len(inputs) else ""
