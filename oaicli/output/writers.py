"""The output layer: renders any result as a table, one JSON or YAML document, or JSON lines, on stdout only;
`--jq EXPR` filters the document and `-r/--raw-output` prints strings without quotes, for every command."""

import json
import os
import sys
from datetime import datetime

import click

from oaicli.core.errors import ConfigError, redact
from oaicli.core.invocation import Invocation, active
from oaicli.output.escape import printable

TIMESTAMP_KEYS = {"created", "created_at", "finished_at", "expires_at", "completed_at", "started_at",
                  "cancelled_at", "failed_at", "estimated_finish", "updated_at"}
MAX_CELL = 60


def resolve_format(invocation: Invocation | None = None) -> str:
    """The format to write in: the one asked for, checked against the command's; else table on a
    terminal and json in a pipe."""
    invocation = invocation or active()
    chosen = invocation.format if invocation else None
    if not chosen:
        return "table" if (invocation.stdout_tty if invocation else sys.stdout.isatty()) else "json"
    allowed = invocation.formats
    if allowed and chosen not in allowed:  # from OAICLI_FORMAT or a profile: Click checked the flag
        raise ConfigError(f"Format {chosen!r} ({invocation.settings.source('format')}) is not one of "
                          f"{', '.join(allowed)}.", "Pass --format, or fix OAICLI_FORMAT or the profile's format.")
    return chosen


def chosen_format(invocation: Invocation | None = None) -> str | None:
    """The format asked for (flag, OAICLI_FORMAT or profile), checked like every format; None when none was:
    for commands whose default is not a table (event lines, answers, saved paths)."""
    invocation = invocation or active()
    return resolve_format(invocation) if invocation and invocation.format else None


def answer_format(invocation: Invocation | None = None) -> str:
    """Commands that print a model's answer (chat, complete, edit): json or jsonl when asked for, else text."""
    fmt = chosen_format(invocation)
    return fmt if fmt in ("json", "jsonl") else "text"


def color_enabled(stream=None) -> bool:
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR")


def write(text: str, newline: bool = True, stream=None) -> None:
    """Write a result to stdout (the invocation's) and flush at once, so pipes see each piece as it is made."""
    stream = stream or _stdout()
    stream.write(redact(text) + ("\n" if newline else ""))
    stream.flush()


def write_json_line(obj, stream=None) -> None:
    write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), stream=stream)


def _stdout():
    invocation = active()
    return invocation.stdout if invocation else sys.stdout


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)


def notice(text: str) -> None:
    """Tell the user something on stderr, unless --quiet."""
    invocation = active()
    if invocation:
        invocation.notice(text)
    else:
        click.echo(redact(text), err=True)


def format_cell(key: str, value) -> str:
    if value is None:
        return ""
    if key in TIMESTAMP_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = printable(" ".join(str(value).split()))  # a table is for reading: no live control characters
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    from tabulate import tabulate
    columns = columns or _columns_of(rows)
    headers = [_header(c) for c in columns]
    body = [[format_cell(c, row.get(c)) for c in columns] for row in rows]
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


def _header(column: str) -> str:
    column = printable(column)
    return click.style(column, bold=True) if color_enabled() else column


# A list's table starts with what identifies an item and when it was made; the other plain fields follow in the
# API's order, up to MAX_COLUMNS in all (nested objects are left to --format json/yaml, which show everything).
LEADING_COLUMNS = ("id", "name", "status", "created_at", "created")
MAX_COLUMNS = 8


def _columns_of(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    nested: set[str] = set()
    for row in rows:
        if isinstance(row, dict):
            seen.update(dict.fromkeys(row))
            nested.update(k for k, v in row.items() if isinstance(v, (dict, list)))
    leading = [c for c in LEADING_COLUMNS if c in seen and not (c == "status" and "name" in seen)]
    rest = [c for c in seen if c not in leading and c not in nested]
    columns = (leading + rest)[:MAX_COLUMNS]
    return columns or list(seen)


def render_list(page_or_items, columns: list[str] | None = None, raw: bool = False, fmt: str | None = None) -> None:
    """Render a list result: the items (or, with --raw and json, the API's page object)."""
    fmt = fmt or resolve_format()
    items = page_or_items.get("data", []) if isinstance(page_or_items, dict) else list(page_or_items)
    document = page_or_items if raw and isinstance(page_or_items, dict) else items
    if _filter_asked() or fmt in ("json", "yaml"):
        write_document(document, fmt)
    elif fmt == "jsonl":
        for item in items:
            write_json_line(item)
    elif items:
        write(table(items, columns))
    else:
        notice("No items.")


def render_object(obj: dict, fields: list[str] | None = None, fmt: str | None = None) -> None:
    """Render one object: as a two-column table of its fields, or as JSON."""
    fmt = fmt or resolve_format()
    if _filter_asked() or fmt in ("json", "yaml"):
        write_document(obj, fmt)
    elif fmt == "jsonl":
        write_json_line(obj)
    else:
        keys = fields or list(obj)
        rows = [[_header(k), format_cell(k, obj.get(k))] for k in keys]
        from tabulate import tabulate
        write(tabulate(rows, tablefmt="plain", disable_numparse=True))


def render_answer(answer, fmt: str | None = None, whole: bool = False) -> None:
    """Any API answer: a list page as a list (a table of its items; in JSON the items, or the page object with
    --raw or `whole`, as `oaicli api` prints it), an object as an object, text as it is."""
    if is_page(answer):
        render_list(answer, fmt=fmt, raw=whole or bool(_flag("raw")))
    elif isinstance(answer, dict):
        render_object(answer, fmt=fmt)
    elif isinstance(answer, str) and not _filter_asked():
        write(answer, newline=not answer.endswith("\n"))
    else:
        write_document(answer, fmt or resolve_format())


def is_page(answer) -> bool:
    return isinstance(answer, dict) and isinstance(answer.get("data"), list) and answer.get("object") in ("list", "page")


def render_events(events) -> None:
    """Server-sent events as they arrive: one compact JSON line each (jsonl whatever the format, since a stream
    is a sequence), or each filtered through --jq."""
    for event in events:
        if _filter_asked():
            write_document(event, "json", compact=True)
        else:
            write_json_line(event)


def write_document(document, fmt: str, compact: bool = False) -> None:
    """One JSON document (or YAML), after --jq when given; -r prints strings without quotes, as `jq -r`."""
    expression = _flag("jq")
    results = _jq(expression, document) if expression else [document]
    for result in results:
        if isinstance(result, str) and _flag("raw_output"):
            write(result)
        elif fmt == "yaml" and not expression:
            write(yaml_text(result), newline=False)
        elif compact or (expression and fmt == "jsonl"):
            write_json_line(result)
        else:
            write(dumps(result))


def yaml_text(document) -> str:
    """YAML by PyYAML (libyaml's emitter when present): block style, keys in the API's order, Unicode kept.
    Imported only for --format yaml."""
    import yaml
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(document, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _jq(expression: str, document) -> list:
    """The results of a jq program (the `jq` package, bindings to jq's own C library), imported only when
    --jq is given. A program that does not compile or fails on this input is bad input (exit 4)."""
    import jq

    from oaicli.core.errors import InputError
    try:
        program = jq.compile(expression)
    except ValueError as exc:
        raise InputError(f"--jq: {_first_line(exc)}.", "See https://jqlang.org/manual/ for the syntax.")
    try:
        return program.input_value(document).all()
    except ValueError as exc:
        raise InputError(f"--jq: {_first_line(exc)}.")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else exc.__class__.__name__


def _flag(name: str):
    invocation = active()
    return invocation.settings.flags.get(name) if invocation else None


def _filter_asked() -> bool:
    return bool(_flag("jq"))
