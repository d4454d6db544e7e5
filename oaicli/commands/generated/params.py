"""Click options from the table's field descriptions: typed, enum and range checked, JSON or @file for the rest."""

import json
import os
import sys

import click

from oaicli.commands.generated.errors import BadInput, ExitFour


class Choice(ExitFour, click.Choice):
    pass


class IntRange(ExitFour, click.IntRange):
    pass


class FloatRange(ExitFour, click.FloatRange):
    pass


class Boolean(ExitFour, click.types.BoolParamType):
    pass


class Integer(ExitFour, click.types.IntParamType):
    pass


class Number(ExitFour, click.types.FloatParamType):
    pass


def read_source(value: str, param, ctx) -> str:
    """The text of `@path` (or `@-`/`-`: stdin); a missing or unreadable file is bad input, not a traceback."""
    if value in ("-", "@-"):
        return sys.stdin.read()
    path = value[1:]
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}", ctx=ctx, param=param) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc.__class__.__name__}", ctx=ctx, param=param) from None


def parse_json(text: str, param, ctx):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInput(f"not valid JSON ({exc})", ctx=ctx, param=param) from None


def json_object(read, hint: str) -> dict:
    """A request body: the text `read()` returns, parsed, which must be a JSON object; a problem reading or
    parsing it is bad input on the option `hint` names (`'--data'`)."""
    try:
        body = parse_json(read(), None, None)
    except BadInput as exc:
        raise BadInput(exc.message, param_hint=hint) from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", param_hint=hint)
    return body


class JsonValue(click.ParamType):
    """An object or array: JSON text, or @file.json. With `text_ok` (a union with a string in the spec), a value
    that does not start with `{`, `[` or `@` is the string itself."""

    name = "json"

    def __init__(self, text_ok: bool = False):
        self.text_ok = text_ok

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        if value.startswith("@"):
            return parse_json(read_source(value, param, ctx), param, ctx)
        if self.text_ok and not value.lstrip().startswith(("{", "[")):
            return value
        return parse_json(value, param, ctx)


class LocalFile(click.ParamType):
    """A file to upload: it must exist and be a regular file, checked before anything is sent."""

    name = "file"

    def convert(self, value, param, ctx):
        if not os.path.exists(value):
            raise BadInput(f"no such file: {value}", ctx=ctx, param=param)
        if not os.path.isfile(value):
            raise BadInput(f"not a regular file: {value}", ctx=ctx, param=param)
        return value


def scalar_type(described: dict) -> click.ParamType:
    kind = described.get("type")
    if described.get("enum") and kind == "string":
        return Choice([str(v) for v in described["enum"]])
    bounds = {"min": described.get("min"), "max": described.get("max"),
              "min_open": bool(described.get("min_open")), "max_open": bool(described.get("max_open"))}
    ranged = bounds["min"] is not None or bounds["max"] is not None
    if kind == "integer":
        return IntRange(**bounds) if ranged else Integer()
    if kind == "number":
        return FloatRange(**bounds) if ranged else Number()
    if kind == "boolean":
        return Boolean()
    if kind == "string":
        return click.STRING
    return JsonValue(text_ok=kind == "any")


def option_type(described: dict) -> tuple[click.ParamType, bool]:
    """(Click type, multiple) for a field: arrays of scalars and of files repeat the option."""
    kind = described["type"]
    if kind == "array":
        return scalar_type(described["items"]), True
    if kind == "files":
        return LocalFile(), True
    if kind == "file":
        return LocalFile(), False
    return scalar_type(described), False


def option_name(field_name: str) -> str:
    return "--" + field_name.removesuffix("[]").replace("_", "-").replace(".", "-").lower()


def help_text(described: dict) -> str:
    parts = [described.get("help", "")]
    if described["type"] in ("json", "any"):
        parts.append("JSON or @file.json." if described["type"] == "json" else "Text, JSON or @file.json.")
    if described["type"] in ("array", "files"):
        parts.append("Repeat for several.")
    if "default" in described:
        parts.append(f"API default: {json.dumps(described['default'])}.")
    if described.get("required"):
        parts.append("[required]")
    return " ".join(p for p in parts if p)


def make_option(described: dict, dest: str, flag: str) -> click.Option:
    param_type, multiple = option_type(described)
    return click.Option([flag, dest], type=param_type, multiple=multiple, help=help_text(described),
                        metavar=_metavar(described))


def _metavar(described: dict):
    kind = described["type"]
    if kind in ("file", "files"):
        return "PATH"
    if kind in ("json", "any"):
        return "JSON"
    return None
